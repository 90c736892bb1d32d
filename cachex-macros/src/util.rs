//! Helpers shared by the macros.

use proc_macro2::TokenStream;
use quote::ToTokens;
use syn::Type;

/// The type as written, with spaces only where two words meet (`Vec<u8>`, `dyn Trait`).
pub fn written(ty: &impl ToTokens) -> String {
    let text = ty.to_token_stream().to_string();
    let chars: Vec<char> = text.chars().collect();
    let word = |c: char| c.is_alphanumeric() || c == '_';
    let mut out = String::with_capacity(text.len());
    for (i, &c) in chars.iter().enumerate() {
        if c == ' ' {
            let before = i > 0 && word(chars[i - 1]);
            let after = chars.get(i + 1).is_some_and(|&n| word(n));
            if !(before && after) {
                continue;
            }
        }
        out.push(c);
    }
    out
}

/// The type without one outer reference, and whether there was one.
pub fn strip_ref(ty: &Type) -> (&Type, bool) {
    match ty {
        Type::Reference(reference) => (&reference.elem, true),
        Type::Group(group) => strip_ref(&group.elem),
        other => (other, false),
    }
}

/// Whether a type contains `impl Trait` anywhere.
pub fn has_impl_trait(ty: &Type) -> bool {
    let mut found = false;
    find_impl(ty.to_token_stream(), &mut found);
    found
}

fn find_impl(tokens: TokenStream, found: &mut bool) {
    for token in tokens {
        match token {
            proc_macro2::TokenTree::Ident(ident) if ident == "impl" => *found = true,
            proc_macro2::TokenTree::Group(group) => find_impl(group.stream(), found),
            _ => {}
        }
    }
}

/// Whether a type, as written, is owned: it borrows nothing (no reference or lifetime but
/// `'static`, no trait object, no `Self`, none of the standard types whose lifetime is often
/// left out, like `Cow<str>`). A `#[cached]` function whose arguments are all owned can be
/// refreshed on another thread; whether they are also `Send` is found out by the compiler.
pub fn is_owned(ty: &Type) -> bool {
    match ty {
        Type::Reference(reference) => {
            reference.mutability.is_none()
                && reference.lifetime.as_ref().is_some_and(|l| l.ident == "static")
                && is_owned(&reference.elem)
        }
        Type::Path(path) => {
            path.qself.is_none()
                && path.path.segments.iter().all(|segment| {
                    let name = segment.ident.to_string();
                    let arguments = match &segment.arguments {
                        syn::PathArguments::None => Vec::new(),
                        syn::PathArguments::AngleBracketed(angle) => angle.args.iter().collect(),
                        syn::PathArguments::Parenthesized(_) => return false,
                    };
                    let named_lifetime = arguments.iter().any(|a| matches!(a, syn::GenericArgument::Lifetime(_)));
                    name != "Self"
                        && (named_lifetime || !HIDDEN_LIFETIME.contains(&name.as_str()))
                        && arguments.iter().all(|argument| match argument {
                            syn::GenericArgument::Lifetime(lifetime) => lifetime.ident == "static",
                            syn::GenericArgument::Type(ty) => is_owned(ty),
                            syn::GenericArgument::Const(_) => true,
                            _ => false,
                        })
                })
        }
        Type::Tuple(tuple) => tuple.elems.iter().all(is_owned),
        Type::Array(array) => is_owned(&array.elem),
        Type::Slice(slice) => is_owned(&slice.elem),
        Type::Paren(paren) => is_owned(&paren.elem),
        Type::Group(group) => is_owned(&group.elem),
        _ => false,
    }
}

/// Standard types with a lifetime parameter that a signature may leave out (`Cow<str>`).
const HIDDEN_LIFETIME: [&str; 8] = [
    "Cow",
    "Ref",
    "RefMut",
    "MutexGuard",
    "RwLockReadGuard",
    "RwLockWriteGuard",
    "Formatter",
    "Arguments",
];

/// The last segment of a path type: its name and its one type argument, if it has one.
pub fn last_segment(ty: &Type) -> Option<(String, Option<&Type>)> {
    let Type::Path(path) = ty else {
        return None;
    };
    let segment = path.path.segments.last()?;
    let argument = match &segment.arguments {
        syn::PathArguments::AngleBracketed(angle) if angle.args.len() == 1 => match angle.args.first() {
            Some(syn::GenericArgument::Type(inner)) => Some(inner),
            _ => None,
        },
        _ => None,
    };
    Some((segment.ident.to_string(), argument))
}

/// The `T` of a type spelled like an actix-web extractor that carries request data:
/// `web::Path<T>`, `web::Query<T>`, `web::Json<T>`, `web::Form<T>`, `web::ReqData<T>` (by the
/// name of the last path segment). Whether the type is actix-web's, and so keyed as its `T`, is
/// for the compiler to find out (cachex-core's `registry::Extractor`): a type of another crate
/// with one of these names is keyed whole.
pub fn extracted(ty: &Type) -> Option<&Type> {
    match last_segment(ty)? {
        (name, Some(inner)) if matches!(name.as_str(), "Path" | "Query" | "Json" | "Form" | "ReqData") => Some(inner),
        _ => None,
    }
}

/// Whether a type is named like application state, left out of keys by default when it is
/// actix-web's (checked at init by its full name): `web::Data<T>`.
pub fn is_request_state(ty: &Type) -> bool {
    matches!(last_segment(ty), Some((name, Some(_))) if name == "Data")
}

/// Whether a type is named like actix-web's `HttpRequest`, which a `#[cached]` function must
/// leave out of its key explicitly.
pub fn is_http_request(ty: &Type) -> bool {
    matches!(last_segment(ty), Some((name, None)) if name == "HttpRequest")
}

/// Every error a macro finds, reported together (`syn::Error::combine`).
#[derive(Default)]
pub struct Errors(Option<syn::Error>);

impl Errors {
    /// Adds one error.
    pub fn push(&mut self, error: syn::Error) {
        match &mut self.0 {
            Some(errors) => errors.combine(error),
            None => self.0 = Some(error),
        }
    }

    /// All the errors as one, if any.
    pub fn finish(self) -> Option<syn::Error> {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::{extracted, is_http_request, is_owned, is_request_state};

    #[test]
    fn extractors_are_recognised_by_name_and_state_is_left_out() {
        let ty = |text: &str| syn::parse_str::<syn::Type>(text).unwrap();
        for (wrapper, inner) in [
            ("web::Path<u32>", "u32"),
            ("actix_web::web::Query<Filter>", "Filter"),
            ("Json<HashMap<String, u8>>", "HashMap<String, u8>"),
            ("web::Form<(u8, String)>", "(u8, String)"),
            ("web::ReqData<User>", "User"),
        ] {
            let found = extracted(&ty(wrapper)).map(|t| quote::quote!(#t).to_string());
            let expected = ty(inner);
            assert_eq!(found, Some(quote::quote!(#expected).to_string()), "{wrapper}");
        }
        assert!(extracted(&ty("std::path::PathBuf")).is_none());
        assert!(
            extracted(&ty("Path")).is_none(),
            "std::path::Path takes no type argument"
        );
        assert!(is_request_state(&ty("web::Data<Db>")));
        assert!(!is_request_state(&ty("Database")) && !is_request_state(&ty("Data")));
        assert!(!is_request_state(&ty("actix_web::HttpRequest")));
        assert!(is_http_request(&ty("actix_web::HttpRequest")) && is_http_request(&ty("HttpRequest")));
        assert!(!is_http_request(&ty("HttpRequestHead")) && !is_http_request(&ty("web::Data<HttpRequest>")));
    }

    #[test]
    fn owned_types_borrow_nothing() {
        let owned = [
            "u64",
            "String",
            "Vec<(u8, String)>",
            "&'static str",
            "Cow<'static, str>",
            "web::Path<u32>",
            "[u8; 4]",
            "Option<Box<[u8]>>",
        ];
        for ty in owned {
            assert!(is_owned(&syn::parse_str(ty).unwrap()), "{ty}");
        }
        let borrowed = [
            "&str",
            "&'a str",
            "Cow<str>",
            "Vec<&str>",
            "Box<dyn Fn()>",
            "Self",
            "Foo<'a>",
            "fn(u8)",
            "*const u8",
            "<T as Tr>::A",
            "std::cell::Ref<u8>",
        ];
        for ty in borrowed {
            assert!(!is_owned(&syn::parse_str(ty).unwrap()), "{ty}");
        }
    }
}
