//! Stale serving, in the terms of HTTP (RFC 5861): what a lookup found (fresh, stale, nothing),
//! and the two windows after `ttl` in which a stale value is still good for something.
//!
//! - `stale_while_revalidate`: a call returns the stale value at once and one refresh of the key
//!   starts (in the background when the arguments can be owned, else by that caller while the
//!   others keep getting the stale value).
//! - `stale_if_error`: a computation that fails (an `Err`, a `None` that is not cached, a panic)
//!   returns the stale value instead.
//!
//! An entry is stored for `ttl` plus the longer of the two windows.

use std::time::Duration;

/// The stale windows of one cache (zero = off).
///
/// ```
/// use std::time::Duration;
/// use cachex_core::StaleWindows;
/// let windows = StaleWindows { while_revalidate: Duration::from_secs(30), if_error: Duration::from_secs(600) };
/// assert_eq!(windows.kept(), Duration::from_secs(600));
/// assert!(StaleWindows::default().is_off());
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StaleWindows {
    /// How long after `ttl` a call is answered with the stale value while one refresh runs.
    pub while_revalidate: Duration,
    /// How long after `ttl` a failed computation is answered with the stale value.
    pub if_error: Duration,
}

impl StaleWindows {
    /// How long an entry is kept after it stops being fresh: the longer window.
    pub fn kept(&self) -> Duration {
        self.while_revalidate.max(self.if_error)
    }

    /// Whether neither window is set.
    pub fn is_off(&self) -> bool {
        self.kept().is_zero()
    }
}

/// What a lookup found under a key.
#[derive(Clone)]
pub(crate) enum Found<V> {
    /// A value within its `ttl`.
    Fresh(V),
    /// A value past its `ttl`, still stored for a stale window.
    Stale(Stale<V>),
    /// Nothing usable.
    Miss,
}

/// A value past its `ttl`, and how long past it.
#[derive(Clone)]
pub(crate) struct Stale<V> {
    pub(crate) value: V,
    pub(crate) past: Duration,
}

impl<V> Found<V> {
    /// The value if it is fresh: what a direct `get` returns.
    pub(crate) fn fresh(self) -> Option<V> {
        match self {
            Found::Fresh(value) => Some(value),
            Found::Stale(_) | Found::Miss => None,
        }
    }
}
