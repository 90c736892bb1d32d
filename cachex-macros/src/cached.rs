//! `#[cached]`: binds a function to a named cache.
//!
//! For `fn f(n: u64) -> u64` it emits three items next to each other (in a module or in an
//! `impl` block alike, which is why the shared one is a function and not a `static`):
//! - `__cachex_prepare_f(slot, &n)`, hidden: it owns the one `static` binding (registered at
//!   link time, resolved and logged once) and forms a call's key in the caller's slot;
//! - `f` itself, whose body prepares the key and hands the original body to `run`;
//! - `f_invalidate(n)`, which prepares the same key and removes its entry.

use proc_macro2::{Span, TokenStream};
use quote::{format_ident, quote, quote_spanned};
use syn::spanned::Spanned;
use syn::{FnArg, Ident, ImplItemFn, LitInt, LitStr, Pat, ReturnType, Type};

use crate::util::{extracted, has_impl_trait, is_http_request, is_owned, is_request_state, strip_ref, written, Errors};

struct Options {
    name: Option<LitStr>,
    version: u32,
    /// Each name of `skip = "a, b"`, with the literal it was written in.
    skip: Vec<(String, LitStr)>,
    id: Option<LitStr>,
    cache_none: bool,
}

const ACCEPTED: &str = "accepted: name = \"cache\", version = N, skip = \"arg, ...\", id = \"path\", cache_none";

fn parse_options(attr: TokenStream, errors: &mut Errors) -> Options {
    let mut options = Options {
        name: None,
        version: 0,
        skip: Vec::new(),
        id: None,
        cache_none: false,
    };
    let parser = syn::meta::parser(|meta| {
        if meta.path.is_ident("name") {
            options.name = Some(meta.value()?.parse()?);
        } else if meta.path.is_ident("version") {
            options.version = meta.value()?.parse::<LitInt>()?.base10_parse()?;
        } else if meta.path.is_ident("skip") {
            let list: LitStr = meta.value()?.parse()?;
            let value = list.value();
            let names = value.split(',').map(str::trim).filter(|s| !s.is_empty());
            options.skip.extend(names.map(|name| (name.to_owned(), list.clone())));
        } else if meta.path.is_ident("id") {
            options.id = Some(meta.value()?.parse()?);
        } else if meta.path.is_ident("cache_none") {
            options.cache_none = true;
        } else {
            errors.push(meta.error(format_args!("unknown #[cached] option; {ACCEPTED}")));
            // Skip its value, if any, to report what follows too.
            if meta.input.peek(syn::Token![=]) {
                meta.value()?.parse::<syn::Expr>()?;
            } else if !meta.input.is_empty() && !meta.input.peek(syn::Token![,]) {
                meta.input.parse::<proc_macro2::Group>()?;
            }
        }
        Ok(())
    });
    if let Err(error) = syn::parse::Parser::parse2(parser, attr) {
        errors.push(error);
    }
    if options.name.is_none() {
        errors.push(syn::Error::new(
            Span::call_site(),
            "#[cached] needs the cache's name: #[cached(name = \"datasets\")], declared as [caches.datasets] in cachex.toml",
        ));
    }
    options
}

/// One argument of the function.
struct Arg {
    ident: Ident,
    ty: Type,
    kept: bool,
    /// Written `mut name`.
    mutable: bool,
}

/// Checks the arguments, removes the `#[skip]` markers from them, and returns whether the
/// function has a receiver, and its other arguments.
fn parse_args(function: &mut ImplItemFn, options: &Options, errors: &mut Errors) -> (bool, Vec<Arg>) {
    let mut receiver = false;
    let mut args = Vec::new();
    for input in function.sig.inputs.iter_mut() {
        match input {
            FnArg::Receiver(recv) => {
                receiver = true;
                if recv.reference.is_some() && recv.mutability.is_some() {
                    errors.push(syn::Error::new(
                        recv.span(),
                        "#[cached] methods take `&self` or `self`: a cached call may not run, so it must not mutate its receiver",
                    ));
                }
            }
            FnArg::Typed(arg) => {
                let before = arg.attrs.len();
                arg.attrs.retain(|a| !a.path().is_ident("skip"));
                let skip_attr = arg.attrs.len() != before;
                let (ident, mutable) = match &*arg.pat {
                    Pat::Ident(pat) if pat.subpat.is_none() && pat.by_ref.is_none() => {
                        (pat.ident.clone(), pat.mutability.is_some())
                    }
                    other => {
                        errors.push(syn::Error::new(
                            other.span(),
                            "#[cached] arguments must be plain names (`name: Type`); destructure inside the body",
                        ));
                        continue;
                    }
                };
                if let Type::Reference(reference) = &*arg.ty {
                    if reference.mutability.is_some() {
                        errors.push(syn::Error::new(
                            arg.ty.span(),
                            "#[cached] arguments cannot be `&mut`: a cached call may not run, so it must not mutate its inputs; take `&T` or `T`",
                        ));
                    }
                }
                if has_impl_trait(&arg.ty) {
                    errors.push(syn::Error::new(
                        arg.ty.span(),
                        "#[cached] arguments cannot be `impl Trait`: the key needs a concrete type; name the type",
                    ));
                }
                let name = ident.to_string();
                let kept = !(skip_attr || name.starts_with('_') || options.skip.iter().any(|(s, _)| *s == name));
                let (unref, _) = strip_ref(&arg.ty);
                if kept && is_http_request(unref) {
                    errors.push(syn::Error::new(
                        unref.span(),
                        format!(
                            "an `HttpRequest` cannot be part of the key, and leaving it out silently would serve a result \
                             read from its headers, cookies or peer address to every caller: leave it out explicitly \
                             (`_{name}: HttpRequest` or `#[skip] {name}: HttpRequest`) when the result does not depend on it, \
                             or take the piece that matters as a keyed argument (a `#[cachex::actix::dependency]` that \
                             extracts it from the request)"
                        ),
                    ));
                }
                args.push(Arg {
                    ident,
                    ty: (*arg.ty).clone(),
                    kept,
                    mutable,
                });
            }
        }
    }
    for (skipped, literal) in &options.skip {
        if !args.iter().any(|a| a.ident == skipped) {
            let known: Vec<String> = args.iter().map(|a| format!("`{}`", a.ident)).collect();
            let known = if known.is_empty() {
                "it has none".to_owned()
            } else {
                format!("it has {}", known.join(", "))
            };
            errors.push(syn::Error::new(
                literal.span(),
                format!("skip = \"{skipped}\": the function has no argument named `{skipped}` ({known})"),
            ));
        }
    }
    (receiver, args)
}

/// Checks the signature: no generics, a concrete return value. Returns the return type.
fn check_signature(function: &ImplItemFn, errors: &mut Errors) -> Option<Type> {
    let sig = &function.sig;
    for param in sig.generics.type_params() {
        errors.push(syn::Error::new(
            param.span(),
            "#[cached] functions cannot be generic: the key and the stored type need concrete types; write one function per type",
        ));
    }
    for param in sig.generics.const_params() {
        errors.push(syn::Error::new(
            param.span(),
            "#[cached] functions cannot have const generics",
        ));
    }
    match &sig.output {
        ReturnType::Default => {
            errors.push(syn::Error::new(
                sig.ident.span(),
                "#[cached] functions must return the value to cache; this one returns ()",
            ));
            None
        }
        ReturnType::Type(_, ty) if has_impl_trait(ty) => {
            errors.push(syn::Error::new(
                ty.span(),
                "a #[cached] function cannot return `impl Trait`: the stored value needs a concrete, Serialize + DeserializeOwned + Clone type",
            ));
            None
        }
        ReturnType::Type(_, ty) => Some((**ty).clone()),
    }
}

pub fn expand(attr: TokenStream, item: TokenStream) -> TokenStream {
    // An `ImplItemFn` parses free functions and methods alike.
    let mut function: ImplItemFn = match syn::parse2(item.clone()) {
        Ok(function) => function,
        Err(error) => {
            let error = error.into_compile_error();
            return quote!(#error #item);
        }
    };
    let mut errors = Errors::default();
    let options = parse_options(attr, &mut errors);
    let ret = check_signature(&function, &mut errors);
    let (receiver, args) = parse_args(&mut function, &options, &mut errors);
    check_no_self(ret.as_ref(), &args, &mut errors);
    match (errors.finish(), ret, &options.name) {
        (None, Some(ret), Some(name)) => generate(function, &options, name, receiver, &args, &ret),
        // The function as written (without its `#[skip]` markers) next to every error, so its
        // callers still compile and only the mistakes are reported.
        (error, ..) => {
            let error = error.map(syn::Error::into_compile_error);
            quote!(#error #function)
        }
    }
}

fn generate(
    mut function: ImplItemFn,
    options: &Options,
    cache: &LitStr,
    receiver: bool,
    args: &[Arg],
    ret: &Type,
) -> TokenStream {
    // The kind (what of the return value is cached) is decided by the type, which the macro
    // cannot see through an alias: a value the compiler picks, passed on (see cachex-core's
    // `output`).
    let kind = if options.cache_none {
        quote_spanned!(ret.span()=> ::cachex::__private::output_kind!(#ret, cache_none))
    } else {
        quote_spanned!(ret.span()=> ::cachex::__private::output_kind!(#ret))
    };
    let fn_name = function.sig.ident.clone();
    let fn_text = fn_name.to_string();
    let prepare_name = format_ident!("__cachex_prepare_{}", fn_name);
    // In an `impl` block the shared function is an associated one. A macro cannot see whether
    // it is in an `impl` block: a function with a receiver is a method, one without is free.
    let in_impl = receiver;
    let prepare_path = if in_impl {
        quote!(Self::#prepare_name)
    } else {
        quote!(#prepare_name)
    };
    let cfgs: Vec<_> = function.attrs.iter().filter(|a| a.path().is_ident("cfg")).collect();
    let lifetimes = function.sig.generics.lifetimes();

    let version = options.version;
    let function_path = match &options.id {
        Some(id) => quote!(#id),
        None => quote!(::std::concat!(::std::module_path!(), "::", #fn_text)),
    };
    let kept: Vec<&Arg> = args.iter().filter(|a| a.kept).collect();
    // Each kept argument's type without an outer reference, whether it had one, and, when it is
    // spelled like an actix-web extractor (`Path<T>`, `Query<T>`, ...), the `T` it would be keyed
    // by: the type decides, at compile time, whether it is one (only actix-web's are, the others
    // are keyed whole).
    let keyed: Vec<(&Type, bool, Option<&Type>)> = kept
        .iter()
        .map(|a| {
            let (inner, by_ref) = strip_ref(&a.ty);
            (inner, by_ref, extracted(inner))
        })
        .collect();
    let arg_infos = kept.iter().zip(&keyed).map(|(a, (inner, _, data))| {
        let name = a.ident.to_string();
        let text = written(*inner);
        match data {
            Some(data) => {
                let data_text = written(*data);
                quote!(::cachex::__private::extracted_arg_info!(#name, #inner => #text, #data => #data_text))
            }
            None => {
                let state = is_request_state(inner);
                quote! {
                    ::cachex::__private::ArgInfo {
                        name: #name,
                        written: || #text,
                        type_name: ::std::any::type_name::<#inner>,
                        caps: || ::cachex::__private::arg_caps!(#inner),
                        state: #state,
                    }
                }
            }
        }
    });
    let skipped = receiver
        .then(|| "self".to_owned())
        .into_iter()
        .chain(args.iter().filter(|a| !a.kept).map(|a| a.ident.to_string()));
    let params = kept.iter().zip(&keyed).map(|(a, (inner, ..))| {
        let ident = &a.ident;
        quote!(#ident: &#inner)
    });
    let encode = kept.iter().zip(&keyed).enumerate().map(|(i, (a, (inner, _, data)))| {
        let ident = &a.ident;
        let encode = match data {
            Some(data) => quote! {
                ::cachex::__private::encode_extracted!(__cachex_key, *__cachex_encoding, #ident, #inner, #data)
            },
            None => quote!(::cachex::__private::encode_arg!(__cachex_key, *__cachex_encoding, #ident, #inner)),
        };
        quote! {
            match __cachex_encodings.get(#i) {
                ::std::option::Option::Some(__cachex_encoding) => #encode,
                ::std::option::Option::None => __cachex_key.invalidate(),
            }
        }
    });
    let values: Vec<TokenStream> = kept
        .iter()
        .zip(&keyed)
        .map(|(a, (_, by_ref, _))| {
            let ident = &a.ident;
            if *by_ref {
                quote!(#ident)
            } else {
                quote!(&#ident)
            }
        })
        .collect();
    let prepare = quote! {
        #(#cfgs)*
        #[doc(hidden)]
        #[inline]
        #[allow(
            dead_code,
            non_snake_case,
            clippy::ptr_arg,
            clippy::needless_lifetimes,
            clippy::extra_unused_lifetimes,
            clippy::too_many_arguments
        )]
        fn #prepare_name<'__cachex_slot, #(#lifetimes),*>(
            __cachex_slot: &'__cachex_slot mut ::cachex::__private::KeySlot,
            #(#params),*
        ) -> ::std::option::Option<::cachex::__private::Prepared<'__cachex_slot>> {
            static BINDING: ::cachex::__private::Binding =
                ::cachex::__private::Binding::new(::cachex::__private::BindingInfo {
                    cache: #cache,
                    function: #function_path,
                    version: #version,
                    args: &[#(#arg_infos),*],
                    skipped: &[#(#skipped),*],
                    can_fail: || ::cachex::__private::fail!(#ret).is_some(),
                    location: ::std::concat!(::std::file!(), ":", ::std::line!()),
                });
            ::cachex::__private::inventory::submit! { ::cachex::__private::Registration(&BINDING) }
            ::cachex::__private::prepare(__cachex_slot, &BINDING, |__cachex_key, __cachex_encodings| {
                #(#encode)*
            })
        }
    };

    // The companion that removes one call's entry: same arguments, same asyncness.
    let mut companion = function.clone();
    companion.attrs.retain(|a| a.path().is_ident("cfg"));
    companion.sig.ident = format_ident!("{}_invalidate", fn_name);
    companion.sig.output = syn::parse_quote!(-> ::std::result::Result<(), ::cachex::Error>);
    for input in companion.sig.inputs.iter_mut() {
        match input {
            FnArg::Receiver(recv) if recv.reference.is_none() => *recv = syn::parse_quote!(&self),
            FnArg::Typed(arg) => {
                if let Pat::Ident(pat) = &mut *arg.pat {
                    pat.mutability = None;
                }
            }
            FnArg::Receiver(_) => {}
        }
    }
    let is_async = function.sig.asyncness.is_some();
    let prepared = quote!(#prepare_path(&mut ::std::option::Option::None, #(#values),*));
    companion.block = if is_async {
        syn::parse_quote!({ ::cachex::__private::invalidate_async(#prepared).await })
    } else {
        syn::parse_quote!({ ::cachex::__private::invalidate(#prepared) })
    };
    let doc = format!(
        "Removes the entry that `{fn_text}` cached for these arguments (cache `{}`).\n\n\
         # Errors\n\nThe backend's error, when it could not remove the entry.",
        cache.value()
    );

    // The function itself: the check of its return type, spanned at it, comes first, so an
    // uncacheable type is reported once, in the words of `CacheValue`. The arguments go to
    // `run` as a tuple, and the body as a closure of them that captures nothing (but a
    // receiver): when they are all owned, a refresh can take both to another thread.
    let names: Vec<&Ident> = args.iter().map(|a| &a.ident).collect();
    let patterns: Vec<TokenStream> = args
        .iter()
        .map(|a| {
            let ident = &a.ident;
            if a.mutable {
                quote!(mut #ident)
            } else {
                quote!(#ident)
            }
        })
        .collect();
    // The return type does not matter: a closure or an async block outlives what it captures.
    let owned = !receiver && function.sig.generics.lifetimes().next().is_none() && args.iter().all(|a| is_owned(&a.ty));
    let detach = if owned {
        let method = if is_async {
            quote_spanned!(ret.span()=> detach_async)
        } else {
            quote_spanned!(ret.span()=> detach)
        };
        // Spanned like `run`: a return type that cannot be cached is reported once, there.
        quote_spanned! {ret.span()=>
            |__cachex_args, __cachex_body| {
                #[allow(unused_imports)]
                use ::cachex::__private::{DetachNo as _, DetachYes as _};
                (&::cachex::__private::Detach::of(&__cachex_args))
                    .#method::<::cachex::__private::Chosen, _, _>(__cachex_args, __cachex_body)
            }
        }
    } else {
        quote!(::cachex::__private::inline)
    };
    for input in function.sig.inputs.iter_mut() {
        if let FnArg::Typed(arg) = input {
            if let Pat::Ident(pat) = &mut *arg.pat {
                pat.mutability = None;
            }
        }
    }
    let body = &function.block;
    let run = if is_async {
        quote_spanned! {ret.span()=>
            ::cachex::__private::run_async::<::cachex::__private::Chosen, _, _, _, _, _>(
                __cachex_prepared,
                ::cachex::__private::fail_returned!(#ret, __cachex_kind),
                (#(#names,)*),
                move |(#(#patterns,)*)| ::cachex::__private::returned_async(__cachex_kind, async move #body),
                #detach,
            ).await.into_inner()
        }
    } else {
        quote_spanned! {ret.span()=>
            ::cachex::__private::run::<::cachex::__private::Chosen, _, _, _, _>(
                __cachex_prepared,
                ::cachex::__private::fail_returned!(#ret, __cachex_kind),
                (#(#names,)*),
                move |(#(#patterns,)*)| __cachex_kind.call(move || -> #ret #body),
                #detach,
            ).into_inner()
        }
    };
    // rustc reports a failing bound of `run`/`run_async` (whose return type is inferred) at the
    // first token of the return type: the check points there too, so the two are one error.
    let checked = respan(quote!(#ret), ret.span());
    let check = quote_spanned!(ret.span()=> ::cachex::__private::cacheable::<#checked, _>(__cachex_kind););
    function.block = syn::parse_quote!({
        let __cachex_kind = #kind;
        #check
        let mut __cachex_slot = ::std::option::Option::None;
        let __cachex_prepared = #prepare_path(&mut __cachex_slot, #(#values),*);
        #run
    });
    quote! {
        #prepare

        #function

        #[doc = #doc]
        #[allow(dead_code, unused_variables, non_snake_case, clippy::ptr_arg, clippy::needless_pass_by_value)]
        #companion
    }
}

/// The tokens, every one of them at `span`.
fn respan(tokens: TokenStream, span: Span) -> TokenStream {
    tokens
        .into_iter()
        .map(|mut token| {
            if let proc_macro2::TokenTree::Group(group) = &token {
                let mut inner = proc_macro2::Group::new(group.delimiter(), respan(group.stream(), span));
                inner.set_span(span);
                token = proc_macro2::TokenTree::Group(inner);
            }
            token.set_span(span);
            token
        })
        .collect()
}

/// Whether a type names `Self`.
fn mentions_self(ty: &Type) -> bool {
    fn find(tokens: TokenStream) -> bool {
        tokens.into_iter().any(|token| match token {
            proc_macro2::TokenTree::Ident(ident) => ident == "Self",
            proc_macro2::TokenTree::Group(group) => find(group.stream()),
            _ => false,
        })
    }
    find(quote!(#ty))
}

/// The binding is a `static`, which cannot name `Self`: the types it records must be named.
fn check_no_self(ret: Option<&Type>, args: &[Arg], errors: &mut Errors) {
    let kept = args.iter().filter(|a| a.kept).map(|a| &a.ty);
    for ty in ret.into_iter().chain(kept) {
        if mentions_self(ty) {
            errors.push(syn::Error::new(
                ty.span(),
                "#[cached] cannot name `Self` in a key argument or the return type (they are recorded in a `static`): write the type's name",
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use quote::quote;

    fn expand(attr: proc_macro2::TokenStream, item: proc_macro2::TokenStream) -> String {
        super::expand(attr, item).to_string()
    }

    #[test]
    fn one_binding_shared_by_the_function_and_its_companion() {
        let out = expand(
            quote!(name = "fib"),
            quote!(
                fn f(n: u64) -> u64 {
                    n
                }
            ),
        );
        assert_eq!(out.matches("static BINDING").count(), 1, "{out}");
        assert_eq!(out.matches("Registration").count(), 1, "{out}");
        let companion = &out[out.find("fn f_invalidate").expect("a companion")..];
        assert!(
            !companion.contains("Binding") && !companion.contains("encode_arg"),
            "{companion}"
        );
        assert!(companion.contains("__cachex_prepare_f"), "{companion}");
        assert!(out.contains("allow (dead_code"), "the companion may go unused: {out}");
    }

    #[test]
    fn methods_share_an_associated_binding() {
        let out = expand(
            quote!(name = "m"),
            quote!(
                fn get(&self, id: u32) -> String {
                    id.to_string()
                }
            ),
        );
        assert_eq!(out.matches("static BINDING").count(), 1, "{out}");
        assert_eq!(out.matches("Self :: __cachex_prepare_get").count(), 2, "{out}");
    }

    #[test]
    fn a_mistake_keeps_the_function_and_reports_every_error() {
        let out = expand(
            quote!(ttl = "5m", skip = "nope"),
            quote!(
                fn f(#[skip] items: &mut Vec<u32>) -> usize {
                    items.len()
                }
            ),
        );
        assert_eq!(out.matches("compile_error").count(), 4, "{out}");
        assert!(
            out.contains("fn f (items : & mut Vec < u32 >) -> usize { items . len () }"),
            "{out}"
        );
        assert!(!out.contains("# [skip]"), "the #[skip] markers are removed: {out}");
    }

    /// An argument spelled like an extractor is handed over whole, and the type decides how it
    /// is keyed: as the `T` it carries when it is actix-web's, else whole.
    #[test]
    fn an_extractor_is_keyed_as_the_type_decides() {
        let out = expand(
            quote!(name = "users"),
            quote!(
                fn load(id: web::Path<u32>, filter: &Query<Filter>, n: u8) -> u32 {
                    *id
                }
            ),
        );
        assert!(
            out.contains("__cachex_prepare_load (& mut __cachex_slot , & id , filter , & n)"),
            "{out}"
        );
        assert!(
            out.contains("encode_extracted ! (__cachex_key , * __cachex_encoding , id , web :: Path < u32 > , u32)"),
            "{out}"
        );
        assert!(
            out.contains("extracted_arg_info ! (\"id\" , web :: Path < u32 > => \"web::Path<u32>\" , u32 => \"u32\")"),
            "{out}"
        );
        assert!(
            out.contains(
                "encode_extracted ! (__cachex_key , * __cachex_encoding , filter , Query < Filter > , Filter)"
            ),
            "{out}"
        );
        assert!(
            out.contains("encode_arg ! (__cachex_key , * __cachex_encoding , n , u8)"),
            "{out}"
        );
    }

    #[test]
    fn application_state_is_left_out_of_the_key_by_default() {
        let out = expand(
            quote!(name = "users"),
            quote!(
                fn load(id: u32, db: web::Data<Db>, _request: HttpRequest) -> u32 {
                    id
                }
            ),
        );
        assert_eq!(out.matches("state : true").count(), 1, "{out}");
        assert_eq!(out.matches("state : false").count(), 1, "{out}");
        assert!(!out.contains("compile_error"), "{out}");
    }

    /// An `HttpRequest` would be left out of the key silently: it has to be left out explicitly.
    #[test]
    fn an_http_request_is_left_out_explicitly_or_not_at_all() {
        let out = expand(
            quote!(name = "users"),
            quote!(
                fn load(id: u32, request: &actix_web::HttpRequest) -> u32 {
                    id
                }
            ),
        );
        assert_eq!(out.matches("compile_error").count(), 1, "{out}");
        assert!(
            out.contains("`_request: HttpRequest` or `#[skip] request: HttpRequest`"),
            "{out}"
        );
        for fine in [
            quote!(
                fn load(id: u32, _request: HttpRequest) -> u32 {
                    id
                }
            ),
            quote!(
                fn load(id: u32, #[skip] request: &HttpRequest) -> u32 {
                    id
                }
            ),
        ] {
            let out = expand(quote!(name = "users"), fine);
            assert!(!out.contains("compile_error"), "{out}");
        }
        let listed = expand(
            quote!(name = "users", skip = "request"),
            quote!(
                fn load(id: u32, request: HttpRequest) -> u32 {
                    id
                }
            ),
        );
        assert!(!listed.contains("compile_error"), "{listed}");
    }

    #[test]
    fn an_unparsable_item_is_kept() {
        let out = expand(
            quote!(name = "c"),
            quote!(
                struct S;
            ),
        );
        assert!(out.contains("compile_error") && out.contains("struct S ;"), "{out}");
    }
}
