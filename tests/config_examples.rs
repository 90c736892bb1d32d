//! Every annotated configuration in `config/`, and the datasets service's, parses, and builds
//! where its backends are compiled into this test build.

use std::path::Path;

#[test]
fn every_example_configuration_parses_and_checks() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let examples = std::fs::read_dir(root.join("config"))
        .unwrap()
        .map(|entry| entry.unwrap().path());
    let mut seen = 0;
    for path in examples.chain([root.join("examples/datasets/cachex.toml")]) {
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
    assert!(seen >= 3, "config/ holds the annotated examples");
}
