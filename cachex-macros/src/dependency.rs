//! `#[cachex::actix::dependency]`: makes a function's return type an actix-web extractor whose
//! arguments are themselves extracted from the request.

use proc_macro2::TokenStream;
use quote::quote;
use syn::spanned::Spanned;
use syn::{FnArg, ItemFn, ReturnType, Type};

pub fn expand(attr: TokenStream, item: TokenStream) -> syn::Result<TokenStream> {
    if !attr.is_empty() {
        return Err(syn::Error::new(attr.span(), "#[dependency] takes no arguments"));
    }
    let function: ItemFn = syn::parse2(item)?;
    let sig = &function.sig;
    let ret: Type = match &sig.output {
        ReturnType::Type(_, ty) => (**ty).clone(),
        ReturnType::Default => {
            return Err(syn::Error::new(
                sig.ident.span(),
                "a dependency returns the value the handler receives",
            ))
        }
    };
    // `Result<T, E>`: the extractor is `T`, and `E` becomes the response (E: ResponseError).
    let (output, fallible) = match &ret {
        Type::Path(path) => match path.path.segments.last() {
            Some(last) if last.ident == "Result" => match &last.arguments {
                syn::PathArguments::AngleBracketed(generic) => match generic.args.first() {
                    Some(syn::GenericArgument::Type(ok)) => (ok.clone(), true),
                    _ => (ret.clone(), false),
                },
                _ => (ret.clone(), false),
            },
            _ => (ret.clone(), false),
        },
        _ => (ret.clone(), false),
    };
    let mut extractions = Vec::new();
    let mut names = Vec::new();
    for (index, input) in sig.inputs.iter().enumerate() {
        let FnArg::Typed(arg) = input else {
            return Err(syn::Error::new(
                input.span(),
                "a dependency is a free function: its arguments come from the request",
            ));
        };
        if let Type::Reference(reference) = &*arg.ty {
            return Err(syn::Error::new(
                reference.span(),
                "dependency arguments are extracted from the request, so they are owned extractor types \
                 (web::Path<T>, web::Query<T>, web::Data<T>, another dependency), not references",
            ));
        }
        let ty = &arg.ty;
        let name = quote::format_ident!("__cachex_arg{index}");
        extractions.push(quote! {
            let #name = <#ty as ::cachex::actix::__private::actix_web::FromRequest>::from_request(&__cachex_req, &mut __cachex_payload)
                .await
                .map_err(::std::convert::Into::<::cachex::actix::__private::actix_web::Error>::into)?;
        });
        names.push(name);
    }
    let name = &sig.ident;
    let call = if sig.asyncness.is_some() {
        quote!(#name(#(#names),*).await)
    } else {
        quote!(#name(#(#names),*))
    };
    let result = if fallible {
        quote!(#call.map_err(::std::convert::Into::<::cachex::actix::__private::actix_web::Error>::into))
    } else {
        quote!(::std::result::Result::Ok(#call))
    };
    Ok(quote! {
        #function

        impl ::cachex::actix::__private::actix_web::FromRequest for #output {
            type Error = ::cachex::actix::__private::actix_web::Error;
            type Future = ::std::pin::Pin<::std::boxed::Box<dyn ::std::future::Future<Output = ::std::result::Result<Self, Self::Error>>>>;

            fn from_request(
                req: &::cachex::actix::__private::actix_web::HttpRequest,
                payload: &mut ::cachex::actix::__private::actix_web::dev::Payload,
            ) -> Self::Future {
                let __cachex_req = req.clone();
                let mut __cachex_payload = payload.take();
                ::std::boxed::Box::pin(async move {
                    #(#extractions)*
                    #result
                })
            }
        }
    })
}
