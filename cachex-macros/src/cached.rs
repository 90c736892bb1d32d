//! `#[cached]`: binds a function to a named cache.

use proc_macro2::{Span, TokenStream};
use quote::{format_ident, quote, quote_spanned};
use syn::spanned::Spanned;
use syn::{FnArg, Ident, ImplItemFn, LitInt, LitStr, Pat, ReturnType, Type};

use crate::util::{has_impl_trait, strip_ref, written};

struct Options {
    name: LitStr,
    version: u32,
    skip: Vec<String>,
    id: Option<LitStr>,
    cache_none: bool,
}

fn parse_options(attr: TokenStream) -> syn::Result<Options> {
    let mut name = None;
    let mut version = 0;
    let mut skip = Vec::new();
    let mut id = None;
    let mut cache_none = false;
    let parser = syn::meta::parser(|meta| {
        if meta.path.is_ident("name") {
            name = Some(meta.value()?.parse::<LitStr>()?);
        } else if meta.path.is_ident("version") {
            version = meta.value()?.parse::<LitInt>()?.base10_parse()?;
        } else if meta.path.is_ident("skip") {
            let list: LitStr = meta.value()?.parse()?;
            skip.extend(
                list.value()
                    .split(',')
                    .map(|s| s.trim().to_owned())
                    .filter(|s| !s.is_empty()),
            );
        } else if meta.path.is_ident("id") {
            id = Some(meta.value()?.parse::<LitStr>()?);
        } else if meta.path.is_ident("cache_none") {
            cache_none = true;
        } else {
            return Err(meta.error(
                "unknown #[cached] option; accepted: name = \"cache\", version = N, skip = \"arg, ...\", id = \"path\", cache_none",
            ));
        }
        Ok(())
    });
    syn::parse::Parser::parse2(parser, attr)?;
    let name = name.ok_or_else(|| {
        syn::Error::new(
            Span::call_site(),
            "#[cached] needs the cache's name: #[cached(name = \"datasets\")], declared as [caches.datasets] in cachex.toml",
        )
    })?;
    Ok(Options {
        name,
        version,
        skip,
        id,
        cache_none,
    })
}

/// One argument of the function.
struct Arg {
    ident: Ident,
    ty: Type,
    kept: bool,
}

fn parse_args(function: &mut ImplItemFn, options: &Options) -> syn::Result<(Option<TokenStream>, Vec<Arg>)> {
    let mut receiver = None;
    let mut args = Vec::new();
    for input in function.sig.inputs.iter_mut() {
        match input {
            FnArg::Receiver(recv) => {
                if recv.reference.is_some() && recv.mutability.is_some() {
                    return Err(syn::Error::new(
                        recv.span(),
                        "#[cached] methods take `&self` or `self`: a cached call may not run, so it must not mutate its receiver",
                    ));
                }
                receiver = Some(quote!(#recv));
            }
            FnArg::Typed(arg) => {
                let before = arg.attrs.len();
                arg.attrs.retain(|a| !a.path().is_ident("skip"));
                let skip_attr = arg.attrs.len() != before;
                let ident = match &*arg.pat {
                    Pat::Ident(pat) if pat.subpat.is_none() => pat.ident.clone(),
                    other => {
                        return Err(syn::Error::new(
                            other.span(),
                            "#[cached] arguments must be plain names (`name: Type`); destructure inside the body",
                        ))
                    }
                };
                if let Type::Reference(reference) = &*arg.ty {
                    if reference.mutability.is_some() {
                        return Err(syn::Error::new(
                            arg.ty.span(),
                            "#[cached] arguments cannot be `&mut`: a cached call may not run, so it must not mutate its inputs; take `&T` or `T`",
                        ));
                    }
                }
                if has_impl_trait(&arg.ty) {
                    return Err(syn::Error::new(
                        arg.ty.span(),
                        "#[cached] arguments cannot be `impl Trait`: the key needs a concrete type; name the type",
                    ));
                }
                let name = ident.to_string();
                let kept = !(skip_attr || name.starts_with('_') || options.skip.contains(&name));
                args.push(Arg {
                    ident,
                    ty: (*arg.ty).clone(),
                    kept,
                });
            }
        }
    }
    for skipped in &options.skip {
        if !args.iter().any(|a| a.ident == skipped) {
            return Err(syn::Error::new(
                options.name.span(),
                format!("skip = \"{skipped}\": the function has no argument named `{skipped}`"),
            ));
        }
    }
    Ok((receiver, args))
}

pub fn expand(attr: TokenStream, item: TokenStream) -> syn::Result<TokenStream> {
    let options = parse_options(attr)?;
    // An `ImplItemFn` parses free functions and methods alike.
    let mut function: ImplItemFn = syn::parse2(item)?;
    let sig = &function.sig;
    if let Some(param) = sig.generics.type_params().next() {
        return Err(syn::Error::new(
            param.span(),
            "#[cached] functions cannot be generic: the key and the stored type need concrete types; write one function per type",
        ));
    }
    if let Some(param) = sig.generics.const_params().next() {
        return Err(syn::Error::new(
            param.span(),
            "#[cached] functions cannot have const generics",
        ));
    }
    let ret: Type = match &sig.output {
        ReturnType::Default => {
            return Err(syn::Error::new(
                sig.ident.span(),
                "#[cached] functions must return the value to cache; this one returns ()",
            ))
        }
        ReturnType::Type(_, ty) => (**ty).clone(),
    };
    if has_impl_trait(&ret) {
        return Err(syn::Error::new(
            ret.span(),
            "a #[cached] function cannot return `impl Trait`: the stored value needs a concrete, Serialize + DeserializeOwned + Clone type",
        ));
    }
    let (receiver, args) = parse_args(&mut function, &options)?;
    let kind = output_kind(&ret, options.cache_none);

    let cache_name = &options.name;
    let fn_name = function.sig.ident.clone();
    let fn_text = fn_name.to_string();
    let version = options.version;
    let function_path = match &options.id {
        Some(id) => quote!(#id),
        None => quote!(::std::concat!(::std::module_path!(), "::", #fn_text)),
    };
    let arg_infos = args.iter().filter(|a| a.kept).map(|a| {
        let name = a.ident.to_string();
        let (inner, _) = strip_ref(&a.ty);
        let text = written(inner);
        quote! {
            ::cachex::__private::ArgInfo {
                name: #name,
                written: #text,
                type_name: ::std::any::type_name::<#inner>,
                caps: || ::cachex::__private::arg_caps!(#inner),
            }
        }
    });
    let skipped_names = args.iter().filter(|a| !a.kept).map(|a| a.ident.to_string());
    let receiver_name = receiver.as_ref().map(|_| "self");
    let skipped_names = receiver_name.into_iter().map(str::to_owned).chain(skipped_names);
    let binding = quote! {
        static __CACHEX_BINDING: ::cachex::__private::Binding =
            ::cachex::__private::Binding::new(::cachex::__private::BindingInfo {
                cache: #cache_name,
                function: #function_path,
                version: #version,
                args: &[#(#arg_infos),*],
                skipped: &[#(#skipped_names),*],
                can_fail: || {
                    #[allow(unused_imports)]
                    use ::cachex::__private::{FailNo as _, FailYes as _};
                    (&::cachex::__private::Probe::<#ret>::NEW).fail().is_some()
                },
                location: ::std::concat!(::std::file!(), ":", ::std::line!()),
            });
    };
    let encode_args = args.iter().filter(|a| a.kept).enumerate().map(|(i, a)| {
        let ident = &a.ident;
        let (inner, is_ref) = strip_ref(&a.ty);
        let value = if is_ref { quote!(#ident) } else { quote!(&#ident) };
        quote! {
            match __cachex_encodings.get(#i) {
                ::std::option::Option::Some(__cachex_encoding) => {
                    ::cachex::__private::encode_arg!(__cachex_key, *__cachex_encoding, #value, #inner)
                }
                ::std::option::Option::None => __cachex_key.invalidate(),
            }
        }
    });
    let prepare = quote! {
        ::cachex::__private::prepare(&mut __cachex_slot, &__CACHEX_BINDING, |__cachex_key, __cachex_encodings| {
            #(#encode_args)*
        })
    };
    let fail = quote_spanned! {ret.span()=>
        {
            #[allow(unused_imports)]
            use ::cachex::__private::{FailNo as _, FailYes as _};
            (&::cachex::__private::Probe::<#ret>::NEW).fail()
        }
    };
    let body = &function.block;
    let is_async = function.sig.asyncness.is_some();
    let run = if is_async {
        quote_spanned! {ret.span()=>
            ::cachex::__private::run_async::<#kind, #ret>(__cachex_prepared, __cachex_fail, async move #body).await
        }
    } else {
        quote_spanned! {ret.span()=>
            ::cachex::__private::run::<#kind, #ret>(__cachex_prepared, __cachex_fail, move || -> #ret #body)
        }
    };
    let new_body: syn::Block = syn::parse2(quote! {{
        #binding
        ::cachex::__private::inventory::submit! { ::cachex::__private::Registration(&__CACHEX_BINDING) }
        let mut __cachex_slot: ::cachex::__private::KeySlot = ::std::option::Option::None;
        let __cachex_prepared = #prepare;
        let __cachex_fail = #fail;
        #run
    }})?;

    // The companion that removes one call's entry: same arguments, same asyncness.
    let mut companion = function.clone();
    companion.attrs.retain(|a| a.path().is_ident("cfg"));
    companion.sig.ident = format_ident!("{}_invalidate", fn_name);
    companion.sig.output = syn::parse2(quote!(-> ::std::result::Result<(), ::cachex::Error>))?;
    if let Some(FnArg::Receiver(recv)) = companion.sig.inputs.first_mut() {
        if recv.reference.is_none() {
            *recv = syn::parse2(quote!(&self))?;
        }
    }
    let invalidate = if is_async {
        quote!(::cachex::__private::invalidate_async(__cachex_prepared).await)
    } else {
        quote!(::cachex::__private::invalidate(__cachex_prepared))
    };
    companion.block = syn::parse2(quote! {{
        #binding
        let mut __cachex_slot: ::cachex::__private::KeySlot = ::std::option::Option::None;
        let __cachex_prepared = #prepare;
        #invalidate
    }})?;
    let doc = format!(
        "Removes the entry that `{fn_text}` cached for these arguments (cache `{}`).",
        options.name.value()
    );
    function.block = new_body;
    Ok(quote! {
        #function

        #[doc = #doc]
        #[allow(unused_variables, clippy::ptr_arg, clippy::needless_pass_by_value)]
        #companion
    })
}

/// How the return type is cached: `Result` keeps `Ok`, `Option` keeps `Some` (unless
/// `cache_none`), anything else is kept whole.
fn output_kind(ret: &Type, cache_none: bool) -> TokenStream {
    let last = match ret {
        Type::Path(path) => path.path.segments.last().map(|s| s.ident.to_string()),
        _ => None,
    };
    match last.as_deref() {
        Some("Result") => quote!(::cachex::__private::OkOnly),
        Some("Option") if !cache_none => quote!(::cachex::__private::SomeOnly),
        _ => quote!(::cachex::__private::Whole),
    }
}
