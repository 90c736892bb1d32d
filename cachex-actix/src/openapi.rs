//! OpenAPI through the dependency chain (feature `openapi`): `#[dependency]` makes the type it
//! produces describe the request inputs it is built from, as utoipa's `IntoParams`, so a
//! handler names the dependency (`params(Frame)`) instead of repeating its parameters.
//!
//! Each argument of a dependency contributes, by its type (found at compile time):
//! - `web::Path<T>`: `T`'s own parameters when `T: IntoParams`, else one required path
//!   parameter named after the argument (the route's `{name}`) with `T`'s schema;
//! - `web::Query<Q>`: `Q`'s parameters when `Q: IntoParams`;
//! - another dependency: its parameters, all the way down the chain;
//! - anything else (`web::Data<T>`, `HttpRequest`): nothing.

use std::marker::PhantomData;

pub use utoipa;
use utoipa::openapi::path::{Parameter, ParameterBuilder, ParameterIn};
use utoipa::openapi::Required;
use utoipa::{IntoParams, PartialSchema};

/// Which description an argument of type `T` contributes (autoref specialization: the
/// generated code calls `(&&Probe::<T>::new()).path_params(..)` and friends with a concrete
/// `T`; the `IntoParams` impl applies when the bound holds).
///
/// ```
/// use cachex_actix::__private::openapi::{NestedNone as _, NestedViaParams as _, PathViaParams as _, PathViaSchema as _, Probe};
/// let id = (&&Probe::<u32>::new()).path_params(&["id"]);
/// assert_eq!((id.len(), id[0].name.as_str()), (1, "id"));
/// assert!((&&Probe::<actix_web::web::Data<String>>::new()).nested_params().is_empty());
/// ```
pub struct Probe<T: ?Sized>(PhantomData<T>);

impl<T: ?Sized> Probe<T> {
    /// The probe of `T`.
    pub const fn new() -> Self {
        Probe(PhantomData)
    }
}

impl<T: ?Sized> Default for Probe<T> {
    fn default() -> Self {
        Probe::new()
    }
}

/// `web::Path<T>` where `T: IntoParams` (a struct of the route's segments).
pub trait PathViaParams {
    /// `T`'s parameters, in the path.
    fn path_params(self, names: &[&str]) -> Vec<Parameter>;
}

impl<T: IntoParams> PathViaParams for &&Probe<T> {
    fn path_params(self, _names: &[&str]) -> Vec<Parameter> {
        T::into_params(|| Some(ParameterIn::Path))
    }
}

/// `web::Path<T>` where `T` has a schema (a number, a string, an enum): one parameter per name.
pub trait PathViaSchema {
    /// A required path parameter for each name, with `T`'s schema.
    fn path_params(self, names: &[&str]) -> Vec<Parameter>;
}

impl<T: PartialSchema> PathViaSchema for &Probe<T> {
    fn path_params(self, names: &[&str]) -> Vec<Parameter> {
        names.iter().map(|name| path_param(name, T::schema())).collect()
    }
}

/// `web::Query<Q>` where `Q: IntoParams`.
pub trait QueryViaParams {
    /// `Q`'s parameters, in the query.
    fn query_params(self) -> Vec<Parameter>;
}

impl<T: IntoParams> QueryViaParams for &&Probe<T> {
    fn query_params(self) -> Vec<Parameter> {
        T::into_params(|| Some(ParameterIn::Query))
    }
}

/// `web::Query<Q>` where `Q` describes nothing (a `HashMap`).
pub trait QueryNone {
    /// No parameters.
    fn query_params(self) -> Vec<Parameter>;
}

impl<T: ?Sized> QueryNone for &Probe<T> {
    fn query_params(self) -> Vec<Parameter> {
        Vec::new()
    }
}

/// Another dependency (its type implements `IntoParams` through its own `#[dependency]`).
pub trait NestedViaParams {
    /// The dependency's parameters.
    fn nested_params(self) -> Vec<Parameter>;
}

impl<T: IntoParams> NestedViaParams for &&Probe<T> {
    fn nested_params(self) -> Vec<Parameter> {
        T::into_params(|| None)
    }
}

/// Anything else (app state, the request): nothing.
pub trait NestedNone {
    /// No parameters.
    fn nested_params(self) -> Vec<Parameter>;
}

impl<T: ?Sized> NestedNone for &Probe<T> {
    fn nested_params(self) -> Vec<Parameter> {
        Vec::new()
    }
}

/// A required path parameter.
pub fn path_param(name: &str, schema: utoipa::openapi::RefOr<utoipa::openapi::schema::Schema>) -> Parameter {
    ParameterBuilder::new()
        .name(name)
        .parameter_in(ParameterIn::Path)
        .required(Required::True)
        .schema(Some(schema))
        .build()
}

/// The parameters of every argument, in order, each once (two dependencies of one chain may
/// both read `{dataset}`).
pub fn collect<const N: usize>(groups: [Vec<Parameter>; N]) -> Vec<Parameter> {
    let mut all: Vec<Parameter> = Vec::new();
    for parameter in groups.into_iter().flatten() {
        if !all
            .iter()
            .any(|seen| seen.name == parameter.name && seen.parameter_in == parameter.parameter_in)
        {
            all.push(parameter);
        }
    }
    all
}
