//! OpenAPI through the dependency chain (feature `openapi`): a handler that names the type a
//! `#[dependency]` produces gets the parameters of the whole chain, with none written by hand.

use actix_web::web;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, OpenApi};

#[derive(Deserialize, IntoParams)]
pub struct Filter {
    /// Only items with this tag.
    pub tag: String,
    /// At most this many.
    pub limit: Option<u32>,
}

pub struct Owner(pub u32);

#[cachex::actix::dependency]
fn owner(id: web::Path<u32>) -> Owner {
    Owner(id.into_inner())
}

#[derive(Clone, Serialize, Deserialize)]
pub struct Items(pub Vec<String>);

/// The second link of the chain: its own query, and the first link's path.
#[cachex::actix::dependency]
fn items(owner: Owner, filter: web::Query<Filter>, _state: web::Data<String>) -> Items {
    Items(vec![format!("{} {}", owner.0, filter.tag)])
}

pub struct Settings(pub String);

/// App state only: no request input.
#[cachex::actix::dependency]
fn settings(state: web::Data<String>) -> Settings {
    Settings(state.get_ref().clone())
}

#[utoipa::path(get, path = "/owners/{id}/items", params(Items), responses((status = 200)))]
pub async fn list(items: Items) -> web::Json<Vec<String>> {
    web::Json(items.0)
}

#[utoipa::path(get, path = "/settings", params(Settings), responses((status = 200)))]
pub async fn show(settings: Settings) -> String {
    settings.0
}

#[derive(OpenApi)]
#[openapi(paths(list, show))]
struct Doc;

#[test]
fn a_chain_of_two_dependencies_gives_the_handler_both_parameters() {
    let doc = Doc::openapi();
    let operation = doc.paths.paths["/owners/{id}/items"].get.as_ref().unwrap();
    let json = serde_json::to_value(operation.parameters.as_ref().unwrap()).unwrap();
    let found: Vec<(&str, &str)> = json
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p["name"].as_str().unwrap(), p["in"].as_str().unwrap()))
        .collect();
    assert_eq!(found, [("id", "path"), ("tag", "query"), ("limit", "query")], "{json}");
    assert_eq!(json[0]["required"], true);
    assert_eq!(json[0]["schema"]["type"], "integer", "{json}");
    assert_eq!(json[1]["required"], true);
    assert_eq!(json[1]["description"], "Only items with this tag.");
    assert_eq!(json[2]["required"], false);
}

#[test]
fn a_dependency_on_app_state_alone_adds_no_parameter() {
    let doc = Doc::openapi();
    let operation = doc.paths.paths["/settings"].get.as_ref().unwrap();
    let parameters = serde_json::to_value(&operation.parameters).unwrap();
    assert!(operation.parameters.as_ref().is_none_or(Vec::is_empty), "{parameters}");
}
