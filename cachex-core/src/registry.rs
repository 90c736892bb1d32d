//! The link-time registry: every `#[cached]` function and every `#[cachex::encoder]` registers
//! itself through `inventory`, so `init()` can check all of them before the first call.

use std::any::{Any, TypeId};
use std::collections::BTreeSet;
use std::marker::PhantomData;
use std::sync::{Arc, OnceLock};

use crate::cache::{Cache, OnError};
use crate::error::Problem;
use crate::key::{ArgCaps, ArgEncoding, CustomEncodeFn, KeyBuilder, Seed};
use crate::runtime::{self, Runtime};

/// One argument of a cached function, as the macro saw it.
#[derive(Debug)]
pub struct ArgInfo {
    /// The argument's name.
    pub name: &'static str,
    /// The type keyed, as written in the source, without its outer reference (`Url`, `str`):
    /// for an actix-web extractor, the data it carries (`web::Path<u32>` is keyed as `u32`).
    pub written: fn() -> &'static str,
    /// `std::any::type_name` of that type.
    pub type_name: fn() -> &'static str,
    /// The encodings the type supports.
    pub caps: fn() -> ArgCaps,
    /// Request state by its written name (`Data<T>`): left out of the key when it is
    /// actix-web's, unless an encoder entry names its type.
    pub state: bool,
}

/// An extractor that carries request data, keyed as that data: actix-web's `web::Path<T>`,
/// `web::Query<T>`, `web::Json<T>`, `web::Form<T>` and `web::ReqData<T>` are keyed by their
/// `T`. The actix plugin implements it for them, with a marker type `M` of its own (so that it
/// may implement this trait for actix-web's types); any other type, even one of these names,
/// is keyed whole. Which applies is found at compile time ([`ExtractProbe`]).
pub trait Extractor<M> {
    /// The data carried, what the argument is keyed by.
    type Data: ?Sized;
    /// The data.
    fn data(&self) -> &Self::Data;
}

/// Finds out whether an argument of type `W`, spelled like an extractor of `T`, is one
/// ([`Extractor`]): `(&ExtractProbe::<W, T>::NEW).extracted()` is the way from `&W` to `&T`
/// when it is, `None` when `W` is to be keyed whole (autoref specialization, resolved where `W`
/// is concrete).
pub struct ExtractProbe<W: ?Sized, T: ?Sized>(PhantomData<fn(&W, &T)>);

impl<W: ?Sized, T: ?Sized> ExtractProbe<W, T> {
    /// The only value of the probe.
    pub const NEW: Self = ExtractProbe(PhantomData);
}

/// `W` is an [`Extractor`] of `T`.
pub trait ExtractorYes<M, W: ?Sized, T: ?Sized> {
    /// The way from the extractor to its data.
    fn extracted(&self) -> Option<fn(&W) -> &T>;
}

impl<M, W: ?Sized + Extractor<M, Data = T>, T: ?Sized> ExtractorYes<M, W, T> for ExtractProbe<W, T> {
    #[inline(always)]
    fn extracted(&self) -> Option<fn(&W) -> &T> {
        Some(<W as Extractor<M>>::data)
    }
}

/// `W` is not an extractor: it is keyed whole.
pub trait ExtractorNo<W: ?Sized, T: ?Sized> {
    /// None.
    fn extracted(&self) -> Option<fn(&W) -> &T>;
}

impl<W: ?Sized, T: ?Sized> ExtractorNo<W, T> for &ExtractProbe<W, T> {
    #[inline(always)]
    fn extracted(&self) -> Option<fn(&W) -> &T> {
        None
    }
}

/// The way from an argument of type `$whole` to the `$data` it carries when it is an
/// [`Extractor`], else `None`: used by the code `#[cached]` emits.
#[doc(hidden)]
#[macro_export]
macro_rules! __extracted {
    ($whole:ty, $data:ty) => {{
        #[allow(unused_imports)]
        use $crate::registry::{ExtractorNo as _, ExtractorYes as _};
        (&$crate::registry::ExtractProbe::<$whole, $data>::NEW).extracted()
    }};
}

/// The [`ArgInfo`] of an argument `$name: $whole` spelled like an extractor of `$data`: that
/// of `$data` when it is an [`Extractor`], else its own. Used by the code `#[cached]` emits.
#[doc(hidden)]
#[macro_export]
macro_rules! __extracted_arg_info {
    ($name:expr, $whole:ty => $whole_text:expr, $data:ty => $data_text:expr) => {
        $crate::registry::ArgInfo {
            name: $name,
            written: || match $crate::__extracted!($whole, $data) {
                ::std::option::Option::Some(_) => $data_text,
                ::std::option::Option::None => $whole_text,
            },
            type_name: || match $crate::__extracted!($whole, $data) {
                ::std::option::Option::Some(_) => ::std::any::type_name::<$data>(),
                ::std::option::Option::None => ::std::any::type_name::<$whole>(),
            },
            caps: || match $crate::__extracted!($whole, $data) {
                ::std::option::Option::Some(_) => $crate::__arg_caps!($data),
                ::std::option::Option::None => $crate::__arg_caps!($whole),
            },
            state: false,
        }
    };
}

/// Encodes an argument `$value: &$whole` spelled like an extractor of `$data`: as its data when
/// it is an [`Extractor`], else whole. Used by the code `#[cached]` emits.
#[doc(hidden)]
#[macro_export]
macro_rules! __encode_extracted {
    ($builder:expr, $encoding:expr, $value:expr, $whole:ty, $data:ty) => {
        match $crate::__extracted!($whole, $data) {
            ::std::option::Option::Some(data) => $crate::__encode_arg!($builder, $encoding, data($value), $data),
            ::std::option::Option::None => $crate::__encode_arg!($builder, $encoding, $value, $whole),
        }
    };
}

/// What `#[cached]` records about one function.
#[derive(Debug)]
pub struct BindingInfo {
    /// The cache it is bound to.
    pub cache: &'static str,
    /// Its path, `module::function` (or `module::Type::method` is not knowable: `module::method`).
    pub function: &'static str,
    /// The `version` attribute.
    pub version: u32,
    /// The arguments that are part of the key, in order.
    pub args: &'static [ArgInfo],
    /// The arguments left out of the key (`_`-prefixed, `skip`, the receiver).
    pub skipped: &'static [&'static str],
    /// Whether the return type can carry a `cachex::Error` (for `on_error = "fail"`).
    pub can_fail: fn() -> bool,
    /// Where the function is defined, `file:line`.
    pub location: &'static str,
}

/// The state of one `#[cached]` function: its info and, once resolved, its cache and encoders.
pub struct Binding {
    info: BindingInfo,
    resolved: OnceLock<Option<Resolved>>,
}

/// A binding resolved against the running configuration.
pub struct Resolved {
    pub(crate) cache: Arc<Cache>,
    pub(crate) seed: Seed,
    pub(crate) encodings: Box<[ArgEncoding]>,
}

impl Binding {
    /// A binding, unresolved until its first call (or `init()`).
    pub const fn new(info: BindingInfo) -> Self {
        Binding {
            info,
            resolved: OnceLock::new(),
        }
    }

    /// What the macro recorded.
    pub fn info(&self) -> &BindingInfo {
        &self.info
    }

    /// The binding's cache and encoders, initialising cachex on the first call; `None` when
    /// cachex could not initialise or the binding is invalid (the call then runs uncached,
    /// and the reason was logged once).
    #[inline]
    pub fn resolved(&'static self) -> Option<&'static Resolved> {
        self.resolved
            .get_or_init(|| {
                let runtime = runtime::runtime().ok()?;
                match resolve(&self.info, runtime) {
                    Ok(resolved) => Some(resolved),
                    Err(problems) => {
                        for problem in problems {
                            tracing::error!(%problem, "cachex binding is invalid, calls run uncached");
                        }
                        None
                    }
                }
            })
            .as_ref()
    }
}

/// The link-time record of one binding.
pub struct Registration(pub &'static Binding);

inventory::collect!(Registration);

/// The link-time record of one `#[cachex::encoder]` function.
pub struct EncoderRegistration {
    /// The name configurations select it by (the function's name).
    pub name: &'static str,
    /// The function's path.
    pub function: &'static str,
    /// `std::any::type_name` of the type it encodes.
    pub type_name: fn() -> &'static str,
    /// `TypeId` of the type it encodes.
    pub type_id: fn() -> TypeId,
    /// The type-erased encoder.
    pub encode: CustomEncodeFn,
}

inventory::collect!(EncoderRegistration);

/// Runs a `#[cachex::encoder]` function `encode` on an argument seen as `&dyn Any`: writes
/// its result into `key` with `serde` and returns true when the argument is a `T`, false
/// (nothing written) otherwise. The code `#[cachex::encoder]` emits wraps it into the
/// [`EncoderRegistration::encode`] function.
///
/// ```
/// use cachex_core::key::Seed;
/// use cachex_core::registry::custom_encode;
/// use cachex_core::KeyBuilder;
/// let seed = Seed::new("c", "f", 0);
/// let mut key = KeyBuilder::new(&seed);
/// assert!(custom_encode(&42u32, &mut key, |n: &u32| n / 10));
/// assert!(!custom_encode(&"text", &mut key, |n: &u32| n / 10));
/// ```
pub fn custom_encode<T: Any, S: serde::Serialize>(
    value: &dyn Any,
    key: &mut KeyBuilder<'_>,
    encode: impl FnOnce(&T) -> S,
) -> bool {
    match value.downcast_ref::<T>() {
        Some(value) => {
            key.serde(&encode(value));
            true
        }
        None => false,
    }
}

/// Every `#[cached]` function linked into this binary.
pub fn bindings() -> impl Iterator<Item = &'static Binding> {
    inventory::iter::<Registration>.into_iter().map(|r| r.0)
}

/// Every `#[cachex::encoder]` function linked into this binary.
pub fn encoders() -> impl Iterator<Item = &'static EncoderRegistration> {
    inventory::iter::<EncoderRegistration>.into_iter()
}

/// The encoder names a configuration may use.
pub const BUILTIN_ENCODERS: [&str; 4] = ["serde", "display", "debug", "skip"];

fn accepted_encoders() -> String {
    let mut names: Vec<String> = BUILTIN_ENCODERS.iter().map(|s| s.to_string()).collect();
    names.extend(encoders().map(|e| e.name.to_owned()));
    names.join(", ")
}

/// Checks one argument's configured (or default) encoder against its type.
fn arg_encoding(info: &BindingInfo, arg: &ArgInfo, cache: &Cache) -> Result<ArgEncoding, Problem> {
    let type_name = (arg.type_name)();
    let written = (arg.written)();
    let caps = (arg.caps)();
    let configured_encoders = &cache.settings.encoders;
    let configured = configured_encoders
        .get(type_name)
        .map(|name| (name, type_name))
        .or_else(|| configured_encoders.get(written).map(|name| (name, written)));
    let subject = format!(
        "argument `{}: {written}` of `{}` ({})",
        arg.name, info.function, info.location
    );
    let supported = {
        let mut s = Vec::new();
        if caps.serde {
            s.push("serde");
        }
        if caps.display {
            s.push("display");
        }
        if caps.debug {
            s.push("debug");
        }
        s.push("skip");
        s.join(", ")
    };
    let Some((name, matched)) = configured else {
        // Only actix-web's: a type of another crate named `Data` is keyed like any other.
        return if arg.state && type_name.starts_with("actix_web::") {
            Ok(ArgEncoding::Skip)
        } else if caps.serde {
            Ok(ArgEncoding::Serde)
        } else {
            Err(Problem::new(
                subject,
                format!(
                    "`{type_name}` does not implement serde::Serialize, so it needs an encoder: add \
                     [caches.{}.encoders] \"{type_name}\" = one of {supported} (or a #[cachex::encoder] for it), \
                     or leave the argument out of the key with a leading `_` or #[cached(skip = \"{}\")] \
                     (actix extractors need none of these: web::Path<T>, web::Query<T>, web::Json<T>, web::Form<T> and web::ReqData<T> \
                     are keyed by their T, and web::Data<T> is left out of the key)",
                    cache.settings.name, arg.name
                ),
            ))
        };
    };
    let unsupported = |encoder: &str| {
        Problem::new(
            subject.clone(),
            format!(
                "encoder `{encoder}` (from [caches.{}.encoders] \"{matched}\") cannot encode `{type_name}`: \
                 it does not implement the trait it needs; this type supports {supported}",
                cache.settings.name
            ),
        )
    };
    match name.as_str() {
        "serde" if caps.serde => Ok(ArgEncoding::Serde),
        "display" if caps.display => Ok(ArgEncoding::Display),
        "debug" if caps.debug => Ok(ArgEncoding::Debug),
        "skip" => Ok(ArgEncoding::Skip),
        builtin @ ("serde" | "display" | "debug") => Err(unsupported(builtin)),
        custom => {
            let mut found = encoders().filter(|e| e.name == custom);
            let Some(encoder) = found.next() else {
                return Err(Problem::new(
                    subject,
                    format!(
                        "unknown encoder `{custom}` in [caches.{}.encoders] \"{matched}\"; accepted: {}",
                        cache.settings.name,
                        accepted_encoders()
                    ),
                ));
            };
            if let Some(other) = found.next() {
                return Err(Problem::new(
                    subject,
                    format!(
                        "two #[cachex::encoder] functions are named `{custom}` ({} and {}): rename one",
                        encoder.function, other.function
                    ),
                ));
            }
            if caps.type_id != Some((encoder.type_id)()) {
                return Err(Problem::new(
                    subject,
                    format!(
                        "encoder `{custom}` ({}) takes `&{}`, but this argument is `{type_name}`",
                        encoder.function,
                        (encoder.type_name)()
                    ),
                ));
            }
            Ok(ArgEncoding::Custom(encoder.encode))
        }
    }
}

/// Resolves one binding against a runtime: its cache, and an encoder for each argument.
pub(crate) fn resolve(info: &BindingInfo, runtime: &Runtime) -> Result<Resolved, Vec<Problem>> {
    let cache = runtime.cache(info.cache).map_err(|e| {
        vec![Problem::new(
            format!("`{}` ({})", info.function, info.location),
            format!("#[cached(name = \"{}\")]: {e}", info.cache),
        )]
    })?;
    let mut problems = Vec::new();
    let twins: Vec<&str> = bindings()
        .filter(|b| b.info.cache == info.cache && b.info.function == info.function && b.info.version == info.version)
        .map(|b| b.info.location)
        .collect();
    if twins.len() > 1 {
        problems.push(Problem::new(
            format!("`{}` ({})", info.function, info.location),
            format!(
                "{} cached functions share the identity `{}` in cache `{}` ({}), so they would read each \
                 other's entries: give each a distinct #[cached(id = \"...\")]",
                twins.len(),
                info.function,
                info.cache,
                twins.join(", ")
            ),
        ));
    }
    let mut encodings = Vec::with_capacity(info.args.len());
    for arg in info.args {
        match arg_encoding(info, arg, &cache) {
            Ok(encoding) => encodings.push(encoding),
            Err(problem) => problems.push(problem),
        }
    }
    if cache.settings.on_error == OnError::Fail && !(info.can_fail)() {
        problems.push(Problem::new(
            format!("`{}` ({})", info.function, info.location),
            format!(
                "cache `{}` has on_error = \"fail\", but this function's return type cannot carry a \
                 cachex::Error: return Result<T, E> with E: From<cachex::Error>, or set on_error = \"bypass\"",
                info.cache
            ),
        ));
    }
    if !problems.is_empty() {
        return Err(problems);
    }
    Ok(Resolved {
        seed: Seed::new(info.cache, info.function, info.version),
        cache,
        encodings: encodings.into_boxed_slice(),
    })
}

/// Checks every binding in the binary against `runtime`, returning every problem found.
pub fn check_bindings(runtime: &Runtime) -> Vec<Problem> {
    let mut problems = Vec::new();
    for binding in bindings() {
        if let Err(found) = resolve(&binding.info, runtime) {
            problems.extend(found);
        }
    }
    warn_unused_encoders(runtime);
    problems
}

/// An encoder entry that matches no argument of any function bound to its cache is likely a
/// typo; it is logged (other binaries sharing the configuration may use it).
fn warn_unused_encoders(runtime: &Runtime) {
    let mut used: BTreeSet<(&str, &str)> = BTreeSet::new();
    for binding in bindings() {
        for arg in binding.info.args {
            used.insert((binding.info.cache, (arg.type_name)()));
            used.insert((binding.info.cache, (arg.written)()));
        }
    }
    for cache in runtime.caches() {
        for type_name in cache.settings.encoders.keys() {
            if !used.contains(&(cache.settings.name.as_str(), type_name.as_str())) {
                tracing::warn!(
                    cache = %cache.settings.name,
                    type_name = %type_name,
                    "cachex encoder entry matches no argument of a function bound to this cache in this binary"
                );
            }
        }
    }
}
