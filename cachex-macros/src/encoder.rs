//! `#[cachex::encoder]`: registers a function as a named key encoder. Running it on an
//! argument is the runtime's `custom_encode`; this only records the function's name and type.

use proc_macro2::TokenStream;
use quote::quote;
use syn::{spanned::Spanned, FnArg, ItemFn, ReturnType, Type};

use crate::util::{strip_ref, Errors};

pub fn expand(attr: TokenStream, item: TokenStream) -> TokenStream {
    let function: ItemFn = match syn::parse2(item.clone()) {
        Ok(function) => function,
        Err(error) => {
            let error = error.into_compile_error();
            return quote!(#error #item);
        }
    };
    let mut errors = Errors::default();
    if !attr.is_empty() {
        errors.push(syn::Error::new(
            attr.span(),
            "#[cachex::encoder] takes no arguments: the function's name is the encoder's name",
        ));
    }
    let sig = &function.sig;
    let usage = "an encoder is `fn name(value: &T) -> impl serde::Serialize`";
    if !sig.generics.params.is_empty() || sig.asyncness.is_some() {
        errors.push(syn::Error::new(sig.span(), format!("{usage}: not generic, not async")));
    }
    if matches!(sig.output, ReturnType::Default) {
        errors.push(syn::Error::new(
            sig.span(),
            format!("{usage}: it must return the key material"),
        ));
    }
    let mut inputs = sig.inputs.iter();
    let ty = match (inputs.next(), inputs.next()) {
        (Some(FnArg::Typed(arg)), None) => match &*arg.ty {
            Type::Reference(reference) if reference.mutability.is_none() => Some(strip_ref(&arg.ty).0.clone()),
            other => {
                errors.push(syn::Error::new(
                    other.span(),
                    format!("{usage}: take the value by shared reference, `&T`"),
                ));
                None
            }
        },
        _ => {
            errors.push(syn::Error::new(
                sig.inputs.span(),
                format!("{usage}: exactly one argument"),
            ));
            None
        }
    };
    let ty = match (errors.finish(), ty) {
        (None, Some(ty)) => ty,
        // The function as written next to every error, so its callers still compile.
        (error, _) => {
            let error = error.map(syn::Error::into_compile_error);
            return quote!(#error #function);
        }
    };
    let name = &sig.ident;
    let name_text = name.to_string();
    let cfgs = function.attrs.iter().filter(|a| a.path().is_ident("cfg"));
    quote! {
        #function

        #(#cfgs)*
        ::cachex::__private::inventory::submit! {
            ::cachex::__private::EncoderRegistration {
                name: #name_text,
                function: ::std::concat!(::std::module_path!(), "::", #name_text),
                type_name: ::std::any::type_name::<#ty>,
                type_id: ::std::any::TypeId::of::<#ty>,
                encode: |value, key| ::cachex::__private::custom_encode::<#ty, _>(value, key, #name),
            }
        }
    }
}
