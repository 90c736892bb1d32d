//! `#[cachex::actix::dependency]`: makes a function's return type an actix-web extractor whose
//! arguments are themselves extracted from the request.
//!
//! The `impl FromRequest` is generated because its `Self` is the user's type (the runtime cannot
//! implement a foreign trait for it); its body is one call into the plugin
//! (`extract`/`extract_fallible`), which extracts the arguments as a tuple and calls the
//! function.

use proc_macro2::TokenStream;
use quote::{format_ident, quote, quote_spanned};
use syn::ext::IdentExt;
use syn::spanned::Spanned;
use syn::{FnArg, ItemFn, Pat, ReturnType, Type};

use crate::util::{last_segment, Errors};

/// actix-web extracts tuples of up to 12 extractors; longer argument lists are nested.
const TUPLE: usize = 12;

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
        errors.push(syn::Error::new(attr.span(), "#[dependency] takes no arguments"));
    }
    let sig = &function.sig;
    let ret = match &sig.output {
        ReturnType::Type(_, ty) => Some((**ty).clone()),
        ReturnType::Default => {
            errors.push(syn::Error::new(
                sig.ident.span(),
                "a dependency returns the value the handler receives",
            ));
            None
        }
    };
    let mut types = Vec::new();
    let mut described = Vec::new();
    for input in &sig.inputs {
        let FnArg::Typed(arg) = input else {
            errors.push(syn::Error::new(
                input.span(),
                "a dependency is a free function: its arguments come from the request",
            ));
            continue;
        };
        if let Type::Reference(reference) = &*arg.ty {
            errors.push(syn::Error::new(
                reference.span(),
                "dependency arguments are extracted from the request, so they are owned extractor types \
                 (web::Path<T>, web::Query<T>, web::Data<T>, another dependency), not references",
            ));
        }
        described.extend(describe(&arg.pat, &arg.ty));
        types.push((*arg.ty).clone());
    }
    if types.len() > TUPLE * TUPLE {
        errors.push(syn::Error::new(
            sig.inputs.span(),
            format!("a dependency takes at most {} arguments", TUPLE * TUPLE),
        ));
    }
    let ret = match (errors.finish(), ret) {
        (None, Some(ret)) => ret,
        // The function as written next to every error, so its callers still compile.
        (error, _) => {
            let error = error.map(syn::Error::into_compile_error);
            return quote!(#error #function);
        }
    };
    // `Result<T, E>`: the extractor is `T`, and `E` becomes the response (E: ResponseError).
    let ok = match &ret {
        Type::Path(path) => match path.path.segments.last() {
            Some(last) if last.ident == "Result" => match &last.arguments {
                syn::PathArguments::AngleBracketed(generic) => match generic.args.first() {
                    Some(syn::GenericArgument::Type(ok)) => Some(ok.clone()),
                    _ => None,
                },
                _ => None,
            },
            _ => None,
        },
        _ => None,
    };
    let (output, extract) = match &ok {
        Some(ok) => (ok, quote!(extract_fallible)),
        None => (&ret, quote!(extract)),
    };
    let names: Vec<_> = (0..types.len()).map(|i| format_ident!("__cachex_arg{i}")).collect();
    let (pattern, tuple) = if types.len() <= TUPLE {
        (quote!((#(#names,)*)), quote!((#(#types,)*)))
    } else {
        let patterns = names.chunks(TUPLE).map(|chunk| quote!((#(#chunk,)*)));
        let tuples = types.chunks(TUPLE).map(|chunk| quote!((#(#chunk,)*)));
        (quote!((#(#patterns,)*)), quote!((#(#tuples,)*)))
    };
    let name = &sig.ident;
    let call = if sig.asyncness.is_some() {
        quote!(#name(#(#names),*))
    } else {
        quote!(::std::future::ready(#name(#(#names),*)))
    };
    let cfgs: Vec<_> = function.attrs.iter().filter(|a| a.path().is_ident("cfg")).collect();
    quote! {
        #function

        // The request inputs of the produced type, for OpenAPI (nothing without `openapi`).
        #(#cfgs)*
        ::cachex::__private::dependency_params!(#output => #(#described),*);

        #(#cfgs)*
        impl ::cachex::actix::__private::actix_web::FromRequest for #output {
            type Error = ::cachex::actix::__private::actix_web::Error;
            type Future = ::cachex::actix::__private::DependencyFuture<Self>;

            fn from_request(
                req: &::cachex::actix::__private::actix_web::HttpRequest,
                payload: &mut ::cachex::actix::__private::actix_web::dev::Payload,
            ) -> Self::Future {
                ::cachex::actix::__private::#extract(req, payload, |#pattern: #tuple| #call)
            }
        }
    }
}

/// The OpenAPI parameters an argument contributes, as expressions of the `openapi` probes (see
/// `cachex_actix::__private::openapi`): a `web::Path<T>` names its parameters after the
/// argument (`dataset: web::Path<DataSet>` is the route's `{dataset}`; `web::Path(id)` names it
/// `id`; a tuple of segments takes a tuple pattern, `web::Path((owner, repo)): web::Path<(String,
/// u32)>`), a `web::Query<Q>` gives `Q`'s, any other argument its own when it is a dependency.
/// A path it cannot name is a `compile_error!` among the expressions: reported with the
/// feature `openapi` only (without it, the expressions are dropped).
fn describe(pat: &Pat, ty: &Type) -> Vec<TokenStream> {
    let probe = |ty: &Type| quote!((&&::cachex::actix::__private::openapi::Probe::<#ty>::new()));
    let (wrapper, inner) = match last_segment(ty) {
        Some((wrapper, Some(inner))) if wrapper == "Path" || wrapper == "Query" => (wrapper, inner),
        _ => {
            let probe = probe(ty);
            return vec![quote!(#probe.nested_params())];
        }
    };
    if wrapper == "Query" {
        let probe = probe(inner);
        return vec![quote!(#probe.query_params())];
    }
    let segment = |pat: &Pat| match pat {
        Pat::Ident(ident) => {
            Some(ident.ident.unraw().to_string().trim_start_matches('_').to_owned()).filter(|name| !name.is_empty())
        }
        _ => None,
    };
    // `web::Path(inner)`: the pattern inside the extractor's.
    let inside = match pat {
        Pat::TupleStruct(outer) if outer.elems.len() == 1 => outer.elems.first(),
        _ => None,
    };
    let names: Option<Vec<String>> = match (inside, inner) {
        (Some(Pat::Tuple(tuple)), Type::Tuple(elements)) if tuple.elems.len() == elements.elems.len() => {
            tuple.elems.iter().map(segment).collect()
        }
        (_, Type::Tuple(_)) => None,
        (Some(inside), _) => segment(inside).map(|name| vec![name]),
        (None, _) => segment(pat).map(|name| vec![name]),
    };
    let types: Vec<&Type> = match inner {
        Type::Tuple(elements) => elements.elems.iter().collect(),
        single => vec![single],
    };
    match names {
        Some(names) => names
            .iter()
            .zip(types)
            .map(|(name, ty)| {
                let probe = probe(ty);
                quote!(#probe.path_params(&[#name]))
            })
            .collect(),
        None => {
            let message = "the OpenAPI description names a path parameter after its argument: name it \
                           (`id: web::Path<u32>`), or destructure a path of several segments \
                           (`web::Path((owner, repo)): web::Path<(String, u32)>`), or use a struct deriving utoipa::IntoParams";
            vec![quote_spanned!(pat.span()=> ::std::compile_error!(#message))]
        }
    }
}
