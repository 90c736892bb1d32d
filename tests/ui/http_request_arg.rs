// An `HttpRequest` argument would be left out of the key without a word: a result read from
// its headers would be served to every caller. It must be left out explicitly.
use cachex::actix::__private::actix_web::HttpRequest;

#[cachex::cached(name = "c")]
fn greeting(lang: String, request: &HttpRequest) -> String {
    let agent = request.headers().get("user-agent").map(|v| v.len()).unwrap_or(0);
    format!("{lang} {agent}")
}

// Left out explicitly: these compile.
#[cachex::cached(name = "c")]
fn named(lang: String, _request: HttpRequest) -> String {
    lang
}

#[cachex::cached(name = "c")]
fn marked(lang: String, #[skip] request: &HttpRequest) -> String {
    format!("{lang}{}", request.path().len())
}

fn main() {
    let request = cachex::actix::__private::actix_web::test::TestRequest::default().to_http_request();
    greeting("en".to_owned(), &request);
    named("en".to_owned(), request.clone());
    marked("en".to_owned(), &request);
}
