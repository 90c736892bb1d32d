//! One deploy of a service that keeps its values in a shared file cache. `deploy <dir>` calls
//! each cached function once and prints, per function, whether its body ran and whether the
//! value it returned is the one its own body returns.

#![allow(dead_code)] // the `_invalidate` companions are not called here

use std::sync::atomic::{AtomicBool, Ordering};

use cachex::{cached, CacheConfig, Config};
use serde::{Deserialize, Serialize};

#[cfg(not(feature = "v2"))]
mod types {
    use super::*;

    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    pub struct Person {
        pub first: String,
        pub last: String,
    }

    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    pub enum Access {
        User,
        Admin,
    }

    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    pub struct Balance {
        pub cents: i64,
    }

    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    pub struct Counter {
        pub hits: u32,
    }

    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    pub struct Profile {
        pub name: String,
    }

    pub fn person() -> Person {
        Person {
            first: "Ada".into(),
            last: "Lovelace".into(),
        }
    }
    pub fn access() -> Access {
        Access::User
    }
    pub fn balance() -> Balance {
        Balance { cents: -5 }
    }
    pub fn counter() -> Counter {
        Counter { hits: 7 }
    }
    pub fn profile() -> Profile {
        Profile { name: "Ada".into() }
    }
}

/// The next deploy: the same type names, other shapes.
#[cfg(feature = "v2")]
mod types {
    use super::*;

    /// Fields swapped.
    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    pub struct Person {
        pub last: String,
        pub first: String,
    }

    /// Variants reordered.
    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    pub enum Access {
        Admin,
        User,
    }

    /// Signedness changed.
    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    pub struct Balance {
        pub cents: u64,
    }

    /// Width changed.
    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    pub struct Counter {
        pub hits: u64,
    }

    /// A field added.
    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    pub struct Profile {
        pub name: String,
        pub email: Option<String>,
    }

    pub fn person() -> Person {
        Person {
            last: "Lovelace".into(),
            first: "Ada".into(),
        }
    }
    pub fn access() -> Access {
        Access::User
    }
    pub fn balance() -> Balance {
        Balance { cents: 5 }
    }
    pub fn counter() -> Counter {
        Counter { hits: 7 }
    }
    pub fn profile() -> Profile {
        Profile {
            name: "Ada".into(),
            email: Some("ada@example.com".into()),
        }
    }
}

static RAN: AtomicBool = AtomicBool::new(false);

macro_rules! cached_twins {
    ($($name:ident -> $ty:ident),* $(,)?) => {
        $(
            #[cached(name = "deploy")]
            fn $name() -> types::$ty {
                RAN.store(true, Ordering::SeqCst);
                types::$name()
            }
        )*

        fn report() {
            $(
                RAN.store(false, Ordering::SeqCst);
                let returned = $name();
                let ran = RAN.load(Ordering::SeqCst);
                let own = returned == types::$name();
                println!("{} ran={ran} own={own} value={returned:?}", stringify!($name));
            )*
        }
    };
}

cached_twins! {
    person -> Person,
    access -> Access,
    balance -> Balance,
    counter -> Counter,
    profile -> Profile,
}

fn main() {
    let dir = std::env::args().nth(1).expect("usage: deploy <cache directory>");
    cachex::init_with(Config::new().cache("deploy", CacheConfig::file(dir))).expect("valid configuration");
    report();
}
