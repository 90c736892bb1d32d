//! A hasher for keys that are hashes already (a precomputed key hash, a `TypeId`, a task id):
//! it passes the `u64` they write through instead of hashing it again.

use std::hash::{BuildHasher, Hasher};

/// Builds [`PassThroughHasher`]s.
#[derive(Clone, Copy, Default)]
pub(crate) struct PassThrough;

impl BuildHasher for PassThrough {
    type Hasher = PassThroughHasher;
    #[inline]
    fn build_hasher(&self) -> PassThroughHasher {
        PassThroughHasher(0)
    }
}

/// The words written, folded together; bytes, should a key write any, are mixed in too.
#[derive(Default)]
pub(crate) struct PassThroughHasher(u64);

impl Hasher for PassThroughHasher {
    #[inline]
    fn write_u64(&mut self, word: u64) {
        self.0 ^= word;
    }
    fn write(&mut self, bytes: &[u8]) {
        for &byte in bytes {
            self.0 = (self.0 ^ u64::from(byte)).wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    #[inline]
    fn finish(&self) -> u64 {
        self.0
    }
}
