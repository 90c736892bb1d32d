//! The argument encoding that `#[cached]` generates code for: how an argument type becomes
//! key material, which encodings it supports (probed at compile time), and the macros the
//! generated code calls.

use std::any::Any;
use std::fmt;

use super::KeyBuilder;

/// How one argument becomes key material, as resolved from the configuration at init.
#[derive(Clone, Copy)]
pub enum ArgEncoding {
    /// `serde::Serialize` (the default).
    Serde,
    /// `Display` text.
    Display,
    /// `Debug` text.
    Debug,
    /// Left out of the key.
    Skip,
    /// A function marked `#[cachex::encoder]`.
    Custom(CustomEncodeFn),
}

/// The type-erased entry point of a `#[cachex::encoder]` function.
pub type CustomEncodeFn = fn(&dyn Any, &mut KeyBuilder<'_>) -> bool;

impl fmt::Debug for ArgEncoding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ArgEncoding::Serde => "serde",
            ArgEncoding::Display => "display",
            ArgEncoding::Debug => "debug",
            ArgEncoding::Skip => "skip",
            ArgEncoding::Custom(_) => "custom",
        })
    }
}

/// Which encodings an argument type supports, found at compile time by [`probe`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ArgCaps {
    /// The type implements `serde::Serialize`.
    pub serde: bool,
    /// The type implements `Display`.
    pub display: bool,
    /// The type implements `Debug`.
    pub debug: bool,
    /// The type is `'static + Sized`, so a `#[cachex::encoder]` for it can be used.
    pub type_id: Option<std::any::TypeId>,
}

/// Compile-time detection of the traits an argument type implements ("autoref
/// specialisation"). Generated code calls `(&Probe::<T>::NEW).serde()` and friends with a
/// concrete `T`; method resolution picks the `…Yes` impl when the bound holds.
pub mod probe {
    use super::KeyBuilder;
    use std::any::{Any, TypeId};
    use std::marker::PhantomData;

    /// The probe for one type.
    pub struct Probe<T: ?Sized>(PhantomData<T>);

    impl<T: ?Sized> Probe<T> {
        /// The only value of the probe.
        pub const NEW: Probe<T> = Probe(PhantomData);
    }

    /// An encoder function for `T`.
    pub type EncodeFn<T> = fn(&T, &mut KeyBuilder<'_>);

    macro_rules! capability {
        ($yes:ident, $no:ident, $method:ident, [$($bound:tt)*], $body:expr) => {
            #[doc = concat!("`", stringify!($method), "` is supported.")]
            pub trait $yes<T: ?Sized> {
                #[doc = concat!("The `", stringify!($method), "` encoder of `T`.")]
                fn $method(&self) -> Option<EncodeFn<T>>;
            }
            impl<T: ?Sized + $($bound)*> $yes<T> for Probe<T> {
                #[inline]
                fn $method(&self) -> Option<EncodeFn<T>> {
                    Some($body)
                }
            }
            #[doc = concat!("`", stringify!($method), "` is not supported.")]
            pub trait $no<T: ?Sized> {
                #[doc = concat!("No `", stringify!($method), "` encoder.")]
                fn $method(&self) -> Option<EncodeFn<T>>;
            }
            impl<T: ?Sized> $no<T> for &Probe<T> {
                #[inline]
                fn $method(&self) -> Option<EncodeFn<T>> {
                    None
                }
            }
        };
    }

    capability!(SerdeYes, SerdeNo, serde, [serde::Serialize], |v, k| k.serde(v));
    capability!(BytesYes, BytesNo, byte_sequence, [crate::key::ByteSequence], |v, k| k
        .byte_sequence(v.bytes()));
    capability!(IntegerYes, IntegerNo, integer, [crate::key::Integer], |v, k| k
        .integer(*v));
    capability!(UnorderedYes, UnorderedNo, unordered, [crate::key::Unordered], |v, k| v
        .write_key(k));
    capability!(DisplayYes, DisplayNo, display, [std::fmt::Display], |v, k| k.display(v));
    capability!(DebugYes, DebugNo, debug, [std::fmt::Debug], |v, k| k.debug(v));

    /// The type can be seen as `&dyn Any` (for `#[cachex::encoder]` functions).
    pub trait AnyYes<T: ?Sized> {
        /// The conversion to `&dyn Any`.
        fn any(&self) -> Option<fn(&T) -> &dyn Any>;
        /// The `TypeId` of `T`.
        fn type_id(&self) -> Option<TypeId>;
    }
    impl<T: Any> AnyYes<T> for Probe<T> {
        #[inline]
        fn any(&self) -> Option<fn(&T) -> &dyn Any> {
            Some(|v| v)
        }
        fn type_id(&self) -> Option<TypeId> {
            Some(TypeId::of::<T>())
        }
    }
    /// The type cannot be seen as `&dyn Any`.
    pub trait AnyNo<T: ?Sized> {
        /// No conversion.
        fn any(&self) -> Option<fn(&T) -> &dyn Any>;
        /// No `TypeId`.
        fn type_id(&self) -> Option<TypeId>;
    }
    impl<T: ?Sized> AnyNo<T> for &Probe<T> {
        #[inline]
        fn any(&self) -> Option<fn(&T) -> &dyn Any> {
            None
        }
        fn type_id(&self) -> Option<TypeId> {
            None
        }
    }

    /// The return type can carry a `cachex::Error` (`Result<T, E>` with `E: From<cachex::Error>`).
    pub trait FailYes<R> {
        /// The conversion from a cachex error into the return type.
        fn fail(&self) -> Option<fn(crate::Error) -> R>;
    }
    impl<T, E: From<crate::Error>> FailYes<Result<T, E>> for Probe<Result<T, E>> {
        #[inline]
        fn fail(&self) -> Option<fn(crate::Error) -> Result<T, E>> {
            Some(|e| Err(E::from(e)))
        }
    }
    /// The return type cannot carry a `cachex::Error`.
    pub trait FailNo<R> {
        /// No conversion.
        fn fail(&self) -> Option<fn(crate::Error) -> R>;
    }
    impl<R> FailNo<R> for &Probe<R> {
        #[inline]
        fn fail(&self) -> Option<fn(crate::Error) -> R> {
            None
        }
    }
}

/// Encodes one argument of a generated call: used by the code `#[cached]` emits.
///
/// `$ty` is the argument's type without its outer reference; `$value` a `&$ty`.
#[doc(hidden)]
#[macro_export]
macro_rules! __encode_arg {
    ($builder:expr, $encoding:expr, $value:expr, $ty:ty) => {{
        #[allow(unused_imports)]
        use $crate::key::probe::{
            AnyNo, AnyYes, BytesNo, BytesYes, DebugNo, DebugYes, DisplayNo, DisplayYes, IntegerNo, IntegerYes, SerdeNo,
            SerdeYes, UnorderedNo, UnorderedYes,
        };
        let probe = $crate::key::probe::Probe::<$ty>::NEW;
        let builder: &mut $crate::KeyBuilder = $builder;
        let value: &$ty = $value;
        // Each arm calls its own encoder: a function known at compile time, so it inlines
        // (through one function pointer for all arms, every argument was an indirect call).
        let run = |encode: ::std::option::Option<$crate::key::probe::EncodeFn<$ty>>,
                   builder: &mut $crate::KeyBuilder| {
            match encode {
                ::std::option::Option::Some(encode) => encode(value, builder),
                ::std::option::Option::None => builder.invalidate(),
            }
        };
        match $encoding {
            $crate::ArgEncoding::Serde => run(
                (&probe)
                    .integer()
                    .or_else(|| (&probe).byte_sequence())
                    .or_else(|| (&probe).unordered())
                    .or_else(|| (&probe).serde()),
                builder,
            ),
            $crate::ArgEncoding::Display => run((&probe).display(), builder),
            $crate::ArgEncoding::Debug => run((&probe).debug(), builder),
            $crate::ArgEncoding::Skip => builder.skip(),
            $crate::ArgEncoding::Custom(custom) => match (&probe).any() {
                ::std::option::Option::Some(as_any) if custom(as_any(value), builder) => {}
                _ => builder.invalidate(),
            },
        }
    }};
}

/// The [`ArgCaps`] of a concrete type: used by the code `#[cached]` emits.
#[doc(hidden)]
#[macro_export]
macro_rules! __arg_caps {
    ($ty:ty) => {{
        #[allow(unused_imports)]
        use $crate::key::probe::{AnyNo, AnyYes, DebugNo, DebugYes, DisplayNo, DisplayYes, SerdeNo, SerdeYes};
        let probe = $crate::key::probe::Probe::<$ty>::NEW;
        $crate::ArgCaps {
            serde: (&probe).serde().is_some(),
            display: (&probe).display().is_some(),
            debug: (&probe).debug().is_some(),
            type_id: (&probe).type_id(),
        }
    }};
}
