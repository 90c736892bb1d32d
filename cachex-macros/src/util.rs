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
