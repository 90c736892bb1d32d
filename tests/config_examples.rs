//! Every annotated configuration in `config/` parses, and builds where its backends are
//! compiled into this test build.

use std::path::Path;

#[test]
fn every_example_configuration_parses_and_checks() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("config");
    let mut seen = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().and_then(|e| e.to_str()) != Some("toml") {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        let loaded = cachex::config::from_toml_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        assert!(!loaded.config.caches.is_empty(), "{} declares caches", path.display());
        let available = cachex::config::available_backends();
        let buildable = loaded.config.caches.values().all(|cache| {
            let backend = cache
                .over(&loaded.config.defaults)
                .backend
                .map_or("memory", |b| b.name());
            available.split(", ").any(|name| name == backend)
        });
        if buildable {
            cachex::config::check(&loaded).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        }
        seen += 1;
    }
    assert!(seen >= 2, "config/ holds the annotated examples");
}
