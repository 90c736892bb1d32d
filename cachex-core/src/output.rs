//! How a function's return type maps to the value a cache keeps: a plain `T` is kept whole,
//! `Result<T, E>` keeps `Ok(T)` only, `Option<T>` keeps `Some(T)` only.
//!
//! The type decides, not its spelling: `#[cached]` cannot see through a type alias
//! (`type Fetched = Result<Frame, Error>`, `std::io::Result<T>`), so the code it emits asks the
//! compiler. [`output_kind!`](crate::__output_kind) probes the return type (autoref
//! specialization, like [`probe`](crate::key::probe)) and gives a [`Kind`] value; the call then
//! runs on [`Returned<K, R>`], the return value tagged with that kind, whose [`Output`] is `R`'s
//! seen through `K`. Everything is resolved at compile time: `Returned` and `Kind` are a newtype
//! and a zero-sized value.

use std::future::Future;
use std::marker::PhantomData;

use crate::cache::CacheValue;
use crate::key::probe::Probe;

/// Marks a return type kept whole.
pub enum Whole {}
/// Marks a `Result<T, E>` whose `Ok` values are kept.
pub enum OkOnly {}
/// Marks an `Option<T>` whose `Some` values are kept.
pub enum SomeOnly {}

/// A return type of a `#[cached]` function, seen through the kind `K` (for the code `#[cached]`
/// emits, [`Chosen`]: the kind its type decided, carried by [`Returned`]).
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

/// Checks at compile time that the value a `#[cached]` function returns can be cached, seen
/// through the kind its type decides: the generated code calls it first, spanned at the return
/// type, so an uncacheable type is reported as "`T` cannot be cached" (and the same failure
/// further down is not repeated).
///
/// ```
/// use cachex_core::output::cacheable;
/// type Loaded = std::io::Result<Vec<u8>>;
/// cacheable::<Loaded, _>(cachex_core::__output_kind!(Loaded));
/// ```
#[inline(always)]
pub const fn cacheable<R: ValueOf<K>, K>(_kind: Kind<K>)
where
    R::Value: CacheValue,
{
}

/// The kind `K` ([`Whole`], [`OkOnly`] or [`SomeOnly`]) that a return type decides, as a value:
/// [`output_kind!`](crate::__output_kind) gives it, and the code `#[cached]` emits passes it on,
/// so the compiler infers `K` where the macro could not name it.
pub struct Kind<K>(PhantomData<fn() -> K>);

impl<K> Clone for Kind<K> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<K> Copy for Kind<K> {}

impl<K> Kind<K> {
    const NEW: Kind<K> = Kind(PhantomData);

    /// The return value `value`, tagged with this kind.
    #[inline(always)]
    pub fn wrap<R>(self, value: R) -> Returned<K, R> {
        Returned(value, self)
    }

    /// The return value of a blocking body, tagged with this kind.
    #[inline(always)]
    pub fn call<R>(self, body: impl FnOnce() -> R) -> Returned<K, R> {
        Returned(body(), self)
    }
}

/// `Result<T, E>` keeps `Ok` (also under `cache_none`).
pub trait KindOfResult {
    /// The kind of a `Result`.
    fn output_kind(&self) -> Kind<OkOnly> {
        Kind::NEW
    }
    /// The kind of a `Result` under `cache_none`: the same.
    fn output_kind_keeping_none(&self) -> Kind<OkOnly> {
        Kind::NEW
    }
}
impl<T, E> KindOfResult for Probe<Result<T, E>> {}

/// `Option<T>` keeps `Some`, or is kept whole under `cache_none`.
pub trait KindOfOption {
    /// The kind of an `Option`.
    fn output_kind(&self) -> Kind<SomeOnly> {
        Kind::NEW
    }
    /// The kind of an `Option` under `cache_none`: kept whole, `None` too.
    fn output_kind_keeping_none(&self) -> Kind<Whole> {
        Kind::NEW
    }
}
impl<T> KindOfOption for Probe<Option<T>> {}

/// Any other type is kept whole (the fallback, one autoref further).
pub trait KindOfAny {
    /// The kind of any other type.
    fn output_kind(&self) -> Kind<Whole> {
        Kind::NEW
    }
    /// The same under `cache_none`.
    fn output_kind_keeping_none(&self) -> Kind<Whole> {
        Kind::NEW
    }
}
impl<T: ?Sized> KindOfAny for &Probe<T> {}

/// The kind marker of [`Returned`]: the call sees its return value through the kind it carries.
pub enum Chosen {}

/// A `#[cached]` function's return value `R`, tagged with the kind `K` its type decided: what
/// the generated call computes, stores and returns, unwrapped by [`into_inner`](Self::into_inner).
///
/// ```
/// use cachex_core::output::{Chosen, Output};
/// type Fetched = Result<u32, String>;
/// let kind = cachex_core::__output_kind!(Fetched);
/// let err: Fetched = Err("down".into());
/// assert_eq!(Output::<Chosen>::value(&kind.wrap(err)), None, "an Err is not cached");
/// assert_eq!(Output::<Chosen>::value(&kind.wrap(Fetched::Ok(3))), Some(&3));
/// let whole = cachex_core::__output_kind!(Option<u32>, cache_none);
/// assert_eq!(Output::<Chosen>::value(&whole.wrap(None::<u32>)), Some(&None));
/// ```
pub struct Returned<K, R>(R, Kind<K>);

impl<K, R> Returned<K, R> {
    /// The return value.
    #[inline(always)]
    pub fn into_inner(self) -> R {
        self.0
    }

    /// The probe for whether `R` can carry a `cachex::Error` (see [`fail_returned!`](crate::__fail_returned)).
    #[inline(always)]
    pub const fn fail_probe(_kind: Kind<K>) -> FailProbe<K, R> {
        FailProbe(PhantomData)
    }
}

impl<K, R: Output<K>> Output<Chosen> for Returned<K, R> {
    #[inline(always)]
    fn value(&self) -> Option<&Self::Value> {
        self.0.value()
    }
    #[inline(always)]
    fn from_value(value: Self::Value) -> Self {
        Returned(R::from_value(value), Kind::NEW)
    }
}

impl<K, R: ValueOf<K>> ValueOf<Chosen> for Returned<K, R> {
    type Value = R::Value;
    #[inline(always)]
    fn into_value(self) -> Option<R::Value> {
        self.0.into_value()
    }
}

/// The future of an async body, its output tagged with `kind`.
#[inline(always)]
pub async fn returned_async<K, F: Future>(kind: Kind<K>, body: F) -> Returned<K, F::Output> {
    kind.wrap(body.await)
}

/// Finds out whether a [`Returned<K, R>`] can carry a `cachex::Error`.
pub struct FailProbe<K, R>(PhantomData<fn() -> (K, R)>);

/// `R` is `Result<T, E>` with `E: From<cachex::Error>`.
pub trait ReturnedFailYes<K, R> {
    /// The conversion from a cachex error into the tagged return value.
    fn fail(&self) -> Option<fn(crate::Error) -> Returned<K, R>>;
}
impl<K, T, E: From<crate::Error>> ReturnedFailYes<K, Result<T, E>> for FailProbe<K, Result<T, E>> {
    #[inline(always)]
    fn fail(&self) -> Option<fn(crate::Error) -> Returned<K, Result<T, E>>> {
        Some(|error| Returned(Err(E::from(error)), Kind::NEW))
    }
}

/// `R` cannot carry a `cachex::Error`.
pub trait ReturnedFailNo<K, R> {
    /// No conversion.
    fn fail(&self) -> Option<fn(crate::Error) -> Returned<K, R>>;
}
impl<K, R> ReturnedFailNo<K, R> for &FailProbe<K, R> {
    #[inline(always)]
    fn fail(&self) -> Option<fn(crate::Error) -> Returned<K, R>> {
        None
    }
}

/// The [`Kind`] a return type decides: `OkOnly` for `Result<T, E>` however it is spelled,
/// `SomeOnly` for `Option<T>` (`Whole` with `cache_none`), `Whole` for anything else. Used by
/// the code `#[cached]` emits.
#[doc(hidden)]
#[macro_export]
macro_rules! __output_kind {
    ($ret:ty) => {{
        #[allow(unused_imports)]
        use $crate::output::{KindOfAny as _, KindOfOption as _, KindOfResult as _};
        (&$crate::key::probe::Probe::<$ret>::NEW).output_kind()
    }};
    ($ret:ty, cache_none) => {{
        #[allow(unused_imports)]
        use $crate::output::{KindOfAny as _, KindOfOption as _, KindOfResult as _};
        (&$crate::key::probe::Probe::<$ret>::NEW).output_kind_keeping_none()
    }};
}

/// [`__fail!`](crate::__fail) for the tagged return value of a call of kind `$kind`.
#[doc(hidden)]
#[macro_export]
macro_rules! __fail_returned {
    ($ret:ty, $kind:expr) => {{
        #[allow(unused_imports)]
        use $crate::output::{ReturnedFailNo as _, ReturnedFailYes as _};
        (&$crate::output::Returned::<_, $ret>::fail_probe($kind)).fail()
    }};
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
