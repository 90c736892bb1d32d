//! `#[singleton]`: a function whose value is built once per distinct arguments and shared as
//! `Arc<T>`.

use proc_macro2::TokenStream;
use quote::{format_ident, quote, quote_spanned};
use syn::spanned::Spanned;
use syn::{FnArg, ItemFn, Pat, ReturnType, Type};

use crate::util::has_impl_trait;

pub fn expand(attr: TokenStream, item: TokenStream) -> syn::Result<TokenStream> {
    if !attr.is_empty() {
        return Err(syn::Error::new(attr.span(), "#[singleton] takes no arguments"));
    }
    let mut function: ItemFn = syn::parse2(item)?;
    let sig = &function.sig;
    if let Some(param) = sig.generics.type_params().next() {
        return Err(syn::Error::new(
            param.span(),
            "#[singleton] functions cannot be generic",
        ));
    }
    let ret: Type = match &sig.output {
        ReturnType::Type(_, ty) if !has_impl_trait(ty) => (**ty).clone(),
        _ => {
            return Err(syn::Error::new(
                sig.ident.span(),
                "#[singleton] functions return the value to share (a concrete type, or Result<T, E>)",
            ))
        }
    };
    let mut args = Vec::new();
    for input in &sig.inputs {
        match input {
            FnArg::Typed(arg) => match &*arg.pat {
                Pat::Ident(pat) => args.push(pat.ident.clone()),
                other => {
                    return Err(syn::Error::new(
                        other.span(),
                        "#[singleton] arguments must be plain names",
                    ))
                }
            },
            FnArg::Receiver(recv) => {
                return Err(syn::Error::new(
                    recv.span(),
                    "#[singleton] is for free functions, not methods",
                ))
            }
        }
    }
    // Result<T, E> shares Ok values as Result<Arc<T>, E>; anything else is T shared as Arc<T>.
    let result_parts = match &ret {
        Type::Path(path) => path.path.segments.last().and_then(|last| {
            if last.ident != "Result" {
                return None;
            }
            match &last.arguments {
                syn::PathArguments::AngleBracketed(generic) if generic.args.len() == 2 => {
                    let mut it = generic.args.iter();
                    Some((it.next()?.clone(), it.next()?.clone()))
                }
                _ => None,
            }
        }),
        _ => None,
    };
    let is_async = sig.asyncness.is_some();
    let name = sig.ident.clone();
    let cell = format_ident!("__CACHEX_SINGLETON_{}", name.to_string().to_uppercase());
    let (value_ty, new_ret, fallible) = match &result_parts {
        Some((ok, err)) => (
            quote!(#ok),
            quote!(::std::result::Result<::std::sync::Arc<#ok>, #err>),
            true,
        ),
        None => (quote!(#ret), quote!(::std::sync::Arc<#ret>), false),
    };
    let cell_ty = if is_async {
        quote!(::cachex::__private::AsyncSingleton<#value_ty>)
    } else {
        quote!(::cachex::__private::Singleton<#value_ty>)
    };
    let key = if args.is_empty() {
        quote!(::std::option::Option::Some(::cachex::__private::NO_ARGUMENTS))
    } else {
        quote! {{
            let mut __cachex_key = ::cachex::KeyBuilder::new(&::cachex::__private::Seed::UNBOUND);
            #( __cachex_key.serde(&#args); )*
            __cachex_key.finish()
        }}
    };
    let body = &function.block;
    let build = match (is_async, fallible) {
        (true, true) => quote!(|| async move #body),
        (true, false) => quote!(|| async move { ::std::result::Result::<#ret, ::std::convert::Infallible>::Ok(#body) }),
        (false, true) => quote!(move || #body),
        (false, false) => quote!(move || ::std::result::Result::<#ret, ::std::convert::Infallible>::Ok(#body)),
    };
    let get = if is_async {
        quote!(#cell.get_or_try_init(#key, #build).await)
    } else {
        quote!(#cell.get_or_try_init(#key, #build))
    };
    let result = if fallible {
        get
    } else {
        quote!(match #get {
            ::std::result::Result::Ok(value) => value,
            ::std::result::Result::Err(never) => match never {},
        })
    };
    function.sig.output = syn::parse2(quote_spanned!(ret.span()=> -> #new_ret))?;
    function.block = syn::parse2(quote!({ #result }))?;
    let kind = if is_async { quote!(async) } else { quote!(sync) };
    let registration = if args.is_empty() {
        quote! { ::cachex::__private::singleton_data!(#kind, #value_ty, #cell, #name, #fallible); }
    } else {
        quote!()
    };
    let vis = &function.vis;
    Ok(quote! {
        #[doc(hidden)]
        #[allow(non_upper_case_globals)]
        #vis static #cell: #cell_ty = <#cell_ty>::new();

        #function

        #registration
    })
}
