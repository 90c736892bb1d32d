//! `#[singleton]`: a function whose value is built once per distinct arguments and shared as
//! `Arc<T>`. The cell, the key and the build are the runtime's (`Singleton`, `AsyncSingleton`,
//! `singleton_key`); this only wires the function's body to them.

use proc_macro2::TokenStream;
use quote::{format_ident, quote, quote_spanned};
use syn::spanned::Spanned;
use syn::{FnArg, ItemFn, Pat, ReturnType, Type};

use crate::util::{has_impl_trait, Errors};

pub fn expand(attr: TokenStream, item: TokenStream) -> TokenStream {
    let mut function: ItemFn = match syn::parse2(item.clone()) {
        Ok(function) => function,
        Err(error) => {
            let error = error.into_compile_error();
            return quote!(#error #item);
        }
    };
    let mut errors = Errors::default();
    if !attr.is_empty() {
        errors.push(syn::Error::new(attr.span(), "#[singleton] takes no arguments"));
    }
    let sig = &function.sig;
    for param in sig.generics.type_params() {
        errors.push(syn::Error::new(
            param.span(),
            "#[singleton] functions cannot be generic",
        ));
    }
    let ret = match &sig.output {
        ReturnType::Type(_, ty) if !has_impl_trait(ty) => Some((**ty).clone()),
        _ => {
            errors.push(syn::Error::new(
                sig.ident.span(),
                "#[singleton] functions return the value to share (a concrete type, or Result<T, E>)",
            ));
            None
        }
    };
    let mut args = Vec::new();
    for input in &sig.inputs {
        match input {
            FnArg::Typed(arg) => match &*arg.pat {
                Pat::Ident(pat) => args.push(pat.ident.clone()),
                other => errors.push(syn::Error::new(
                    other.span(),
                    "#[singleton] arguments must be plain names",
                )),
            },
            FnArg::Receiver(recv) => errors.push(syn::Error::new(
                recv.span(),
                "#[singleton] is for free functions, not methods",
            )),
        }
    }
    let ret = match (errors.finish(), ret) {
        (None, Some(ret)) => ret,
        // The function as written next to every error, so its callers still compile.
        (error, _) => {
            let error = error.map(syn::Error::into_compile_error);
            return quote!(#error #function);
        }
    };

    // Result<T, E> shares Ok values as Result<Arc<T>, E>; anything else is T shared as Arc<T>.
    let ok_type = match &ret {
        Type::Path(path) => path.path.segments.last().and_then(|last| match &last.arguments {
            syn::PathArguments::AngleBracketed(generic) if last.ident == "Result" && generic.args.len() == 2 => {
                let mut it = generic.args.iter();
                Some((it.next()?.clone(), it.next()?.clone()))
            }
            _ => None,
        }),
        _ => None,
    };
    let is_async = function.sig.asyncness.is_some();
    let name = function.sig.ident.clone();
    let cell = format_ident!("__CACHEX_SINGLETON_{}", name.to_string().to_uppercase());
    let (value_ty, new_ret, get) = match &ok_type {
        Some((ok, err)) => (
            quote!(#ok),
            quote!(::std::result::Result<::std::sync::Arc<#ok>, #err>),
            quote!(get_or_try_init),
        ),
        None => (quote!(#ret), quote!(::std::sync::Arc<#ret>), quote!(get_or_init)),
    };
    let cell_ty = if is_async {
        quote!(::cachex::__private::AsyncSingleton<#value_ty>)
    } else {
        quote!(::cachex::__private::Singleton<#value_ty>)
    };
    let key = if args.is_empty() {
        quote!(::std::option::Option::Some(::cachex::__private::NO_ARGUMENTS))
    } else {
        quote!(::cachex::__private::singleton_key(|__cachex_key| { #( __cachex_key.serde(&#args); )* }))
    };
    let body = &function.block;
    function.block = if is_async {
        syn::parse_quote!({ #cell.#get(#key, || async move #body).await })
    } else {
        syn::parse_quote!({ #cell.#get(#key, move || -> #ret #body) })
    };
    function.sig.output = syn::parse_quote_spanned!(ret.span()=> -> #new_ret);
    let cfgs: Vec<_> = function.attrs.iter().filter(|a| a.path().is_ident("cfg")).collect();
    let registration = if args.is_empty() {
        let call = if is_async {
            quote!(#name().await)
        } else {
            quote!(#name())
        };
        quote! {
            #(#cfgs)*
            ::cachex::__private::singleton_data!(#value_ty, #cell, #call);
        }
    } else {
        quote!()
    };
    let vis = &function.vis;
    let cell_item = quote_spanned! {name.span()=>
        #(#cfgs)*
        #[doc(hidden)]
        #[allow(non_upper_case_globals)]
        #vis static #cell: #cell_ty = <#cell_ty>::new();
    };
    quote! {
        #cell_item

        #function

        #registration
    }
}
