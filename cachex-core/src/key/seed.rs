//! The identity of one binding in its keys: the blake3 seed of its digests and the
//! process-local id that stands for it in in-process keys.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Mutex, PoisonError};

use super::{Key, KEY_FORMAT_VERSION};

/// The seed of every key of one binding: blake3 over format version, cache name, function
/// path and version attribute. Arguments are then hashed with blake3 keyed by this seed.
pub fn binding_seed(cache: &str, function: &str, version: u32) -> [u8; 32] {
    let mut hasher = blake3::Hasher::new();
    hasher.update(&KEY_FORMAT_VERSION.to_le_bytes());
    for part in [cache, function] {
        hasher.update(&(part.len() as u64).to_le_bytes());
        hasher.update(part.as_bytes());
    }
    hasher.update(&version.to_le_bytes());
    *hasher.finalize().as_bytes()
}

/// The identity of one binding in its keys: the blake3 seed that keys its digests, and a
/// process-local number that stands for the seed in in-process keys (equal numbers exactly
/// when the seeds are equal).
///
/// ```
/// use cachex_core::key::Seed;
/// assert_eq!(Seed::new("fib", "app::fib", 0), Seed::new("fib", "app::fib", 0));
/// assert_ne!(Seed::new("fib", "app::fib", 0), Seed::new("fib", "app::fib", 1));
/// ```
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Seed {
    pub(super) digest: [u8; 32],
    pub(super) local: u32,
}

/// The function identity of direct-access keys.
const DIRECT: &str = "<direct>";

/// Set in the local id of an in-process key that holds a digest instead of literal material.
pub(super) const DIGESTED: u32 = 1 << 31;

impl Seed {
    /// The seed of the binding of `function` (its identity in keys) to cache `cache`.
    pub fn new(cache: &str, function: &str, version: u32) -> Seed {
        let digest = binding_seed(cache, function, version);
        Seed {
            digest,
            local: local_id(&digest),
        }
    }

    /// The seed of the keys of direct access through a cache handle.
    pub fn direct(cache: &str) -> Seed {
        Seed::new(cache, DIRECT, 0)
    }

    /// The seed of direct-access keys when only their digest is wanted: no process-local id is
    /// interned (that takes a lock).
    pub(super) fn direct_digest_only(cache: &str) -> Seed {
        Seed {
            digest: binding_seed(cache, DIRECT, 0),
            local: Seed::UNBOUND.local,
        }
    }

    /// The seed of keys that never meet a binding's keys (a singleton's per-argument cells).
    pub const UNBOUND: Seed = Seed {
        digest: [0; 32],
        local: 0,
    };

    /// The blake3 seed.
    pub fn digest(&self) -> &[u8; 32] {
        &self.digest
    }
}

impl fmt::Debug for Seed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Seed({})", Key(self.digest).to_hex())
    }
}

/// The process-local id of a seed: 1, 2, 3... in order of first use (0 is [`Seed::UNBOUND`]).
fn local_id(digest: &[u8; 32]) -> u32 {
    static IDS: Mutex<Option<HashMap<[u8; 32], u32>>> = Mutex::new(None);
    let mut ids = IDS.lock().unwrap_or_else(PoisonError::into_inner);
    let ids = ids.get_or_insert_with(HashMap::new);
    let next = u32::try_from(ids.len() + 1).unwrap_or(DIGESTED - 1).min(DIGESTED - 1);
    *ids.entry(*digest).or_insert(next)
}
