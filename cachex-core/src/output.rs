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
pub trait Output<K>: ValueOf<K, Value: CacheValue> + Sized {
    /// The cacheable part of a computed return value, if it is to be cached.
    fn value(&self) -> Option<&Self::Value>;
    /// The return value rebuilt from a cached value.
    fn from_value(value: Self::Value) -> Self;
}

impl<T: CacheValue> Output<Whole> for T {
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
    #[inline]
    fn value(&self) -> Option<&T> {
        self.as_ref()
    }
    #[inline]
    fn from_value(value: T) -> Self {
        Some(value)
    }
}

/// The part of a return type that a cache keeps, seen through the kind `K`, without requiring
/// that it be cacheable: what [`cacheable`] checks, so that the bound that fails on an
/// uncacheable type is [`CacheValue`]'s, with its message in the user's words.
pub trait ValueOf<K> {
    /// The part of the return value that is cached.
    type Value;
    /// The cacheable part of a computed return value, taken out of it.
    fn into_value(self) -> Option<Self::Value>;
}

impl<T> ValueOf<Whole> for T {
    type Value = T;
    fn into_value(self) -> Option<T> {
        Some(self)
    }
}

impl<T, E> ValueOf<OkOnly> for Result<T, E> {
    type Value = T;
    fn into_value(self) -> Option<T> {
        self.ok()
    }
}

impl<T> ValueOf<SomeOnly> for Option<T> {
    type Value = T;
    fn into_value(self) -> Option<T> {
        self
    }
}

/// Checks at compile time that the value a `#[cached]` function returns can be cached: the
/// generated code calls it first, spanned at the return type, so an uncacheable type is
/// reported as "`T` cannot be cached" (and the same failure further down is not repeated).
///
/// ```
/// use cachex_core::output::{cacheable, OkOnly};
/// cacheable::<OkOnly, Result<Vec<u8>, std::io::Error>>();
/// ```
#[inline(always)]
pub const fn cacheable<K, R: ValueOf<K>>()
where
    R::Value: CacheValue,
{
}

/// The conversion of a `cachex::Error` into a `#[cached]` function's return type, when it
/// has one (`Result<T, E>` with `E: From<cachex::Error>`): used by the code `#[cached]` emits.
#[doc(hidden)]
#[macro_export]
macro_rules! __fail {
    ($ret:ty) => {{
        #[allow(unused_imports)]
        use $crate::key::probe::{FailNo as _, FailYes as _};
        (&$crate::key::probe::Probe::<$ret>::NEW).fail()
    }};
}
