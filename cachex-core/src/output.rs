//! How a function's return type maps to the value a cache keeps: a plain `T` is kept whole,
//! `Result<T, E>` keeps `Ok(T)` only, `Option<T>` keeps `Some(T)` only.

use crate::cache::CacheValue;

/// Marks a return type kept whole.
pub enum Whole {}
/// Marks a `Result<T, E>` whose `Ok` values are kept.
pub enum OkOnly {}
/// Marks an `Option<T>` whose `Some` values are kept.
pub enum SomeOnly {}

/// A return type of a `#[cached]` function, seen through the kind `K` the macro chose.
///
/// ```
/// use cachex_core::output::{OkOnly, Output};
/// let ok: Result<u32, String> = Ok(3);
/// assert_eq!(Output::<OkOnly>::value(&ok), Some(&3));
/// let err: Result<u32, String> = Err("no".into());
/// assert_eq!(Output::<OkOnly>::value(&err), None);
/// ```
pub trait Output<K>: Sized {
    /// The part of the return value that is cached.
    type Value: CacheValue;
    /// The cacheable part of a computed return value, if it is to be cached.
    fn value(&self) -> Option<&Self::Value>;
    /// The return value rebuilt from a cached value.
    fn from_value(value: Self::Value) -> Self;
}

impl<T: CacheValue> Output<Whole> for T {
    type Value = T;
    #[inline]
    fn value(&self) -> Option<&T> {
        Some(self)
    }
    #[inline]
    fn from_value(value: T) -> Self {
        value
    }
}

impl<T: CacheValue, E> Output<OkOnly> for Result<T, E> {
    type Value = T;
    #[inline]
    fn value(&self) -> Option<&T> {
        self.as_ref().ok()
    }
    #[inline]
    fn from_value(value: T) -> Self {
        Ok(value)
    }
}

impl<T: CacheValue> Output<SomeOnly> for Option<T> {
    type Value = T;
    #[inline]
    fn value(&self) -> Option<&T> {
        self.as_ref()
    }
    #[inline]
    fn from_value(value: T) -> Self {
        Some(value)
    }
}
