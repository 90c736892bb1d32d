//! `#[cachex::encoder]`: registers a function as a named key encoder.

use proc_macro2::TokenStream;
use quote::quote;
use syn::{spanned::Spanned, FnArg, ItemFn, ReturnType, Type};

use crate::util::strip_ref;

pub fn expand(attr: TokenStream, item: TokenStream) -> syn::Result<TokenStream> {
    if !attr.is_empty() {
        return Err(syn::Error::new(
            attr.span(),
            "#[cachex::encoder] takes no arguments: the function's name is the encoder's name",
        ));
    }
    let function: ItemFn = syn::parse2(item)?;
    let sig = &function.sig;
    let usage = "an encoder is `fn name(value: &T) -> impl serde::Serialize`";
    if !sig.generics.params.is_empty() || sig.asyncness.is_some() {
        return Err(syn::Error::new(sig.span(), format!("{usage}: not generic, not async")));
    }
    if matches!(sig.output, ReturnType::Default) {
        return Err(syn::Error::new(
            sig.span(),
            format!("{usage}: it must return the key material"),
        ));
    }
    let mut inputs = sig.inputs.iter();
    let ty = match (inputs.next(), inputs.next()) {
        (Some(FnArg::Typed(arg)), None) => match &*arg.ty {
            Type::Reference(reference) if reference.mutability.is_none() => strip_ref(&arg.ty).0.clone(),
            other => {
                return Err(syn::Error::new(
                    other.span(),
                    format!("{usage}: take the value by shared reference, `&T`"),
                ))
            }
        },
        _ => {
            return Err(syn::Error::new(
                sig.inputs.span(),
                format!("{usage}: exactly one argument"),
            ))
        }
    };
    let name = &sig.ident;
    let name_text = name.to_string();
    Ok(quote! {
        #function

        const _: () = {
            fn __cachex_encode(value: &dyn ::std::any::Any, key: &mut ::cachex::KeyBuilder) -> bool {
                match value.downcast_ref::<#ty>() {
                    ::std::option::Option::Some(value) => {
                        key.serde(&#name(value));
                        true
                    }
                    ::std::option::Option::None => false,
                }
            }
            ::cachex::__private::inventory::submit! {
                ::cachex::__private::EncoderRegistration {
                    name: #name_text,
                    function: ::std::concat!(::std::module_path!(), "::", #name_text),
                    type_name: ::std::any::type_name::<#ty>,
                    type_id: ::std::any::TypeId::of::<#ty>,
                    encode: __cachex_encode,
                }
            }
        };
    })
}
