//! Loading: built-in defaults ← `cachex.toml` (or `$CACHEX_CONFIG`) ← `CACHEX_*` environment,
//! with every error tied to the file key or environment variable it came from.

use std::path::{Path, PathBuf};

use cachex_core::{Error, Problem, Problems};
use figment::providers::{Env, Format, Toml};
use figment::{Figment, Source};

use crate::model::Config;

/// The environment variable that names the configuration file.
pub const CONFIG_ENV: &str = "CACHEX_CONFIG";
/// The file looked for in the working directory when `CACHEX_CONFIG` is not set.
pub const DEFAULT_FILE: &str = "cachex.toml";
/// The prefix of the environment variables that override the file.
pub const ENV_PREFIX: &str = "CACHEX_";

/// A configuration together with the sources it was read from, so later checks can say where
/// a bad value came from.
#[derive(Clone)]
pub struct Loaded {
    /// The configuration.
    pub config: Config,
    sources: Option<Figment>,
}

impl Loaded {
    /// A configuration made in code (its problems have no file or variable to point to).
    pub fn from_code(config: Config) -> Self {
        Loaded { config, sources: None }
    }

    /// Where the value at `path` (e.g. `["caches", "fib", "url"]`) came from.
    pub fn origin(&self, path: &[&str]) -> Option<String> {
        let figment = self.sources.as_ref()?;
        let metadata = figment.find_metadata(&path.join("."))?;
        Some(describe_origin(metadata, path))
    }
}

impl std::fmt::Debug for Loaded {
    /// The configuration (passwords hidden) and the names of its sources, never their raw values.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let sources: Vec<String> = self
            .sources
            .iter()
            .flat_map(|figment| figment.metadata())
            .map(|metadata| match &metadata.source {
                Some(source) => format!("{} ({source})", metadata.name),
                None => metadata.name.to_string(),
            })
            .collect();
        f.debug_struct("Loaded")
            .field("config", &self.config)
            .field("sources", &sources)
            .finish()
    }
}

fn describe_origin<S: AsRef<str>>(metadata: &figment::Metadata, path: &[S]) -> String {
    let dotted: Vec<&str> = path.iter().map(AsRef::as_ref).collect();
    match &metadata.source {
        Some(Source::File(file)) => format!("file {}, key `{}`", file.display(), dotted.join(".")),
        _ if metadata.name.contains("environment") => {
            format!(
                "environment variable {ENV_PREFIX}{}",
                dotted.join("__").to_ascii_uppercase()
            )
        }
        _ => metadata.name.to_string(),
    }
}

/// The configuration file to read: `$CACHEX_CONFIG` (which must exist), else `./cachex.toml`
/// if present, else none.
pub fn config_file() -> Result<Option<PathBuf>, Error> {
    match std::env::var_os(CONFIG_ENV) {
        Some(path) => {
            let path = PathBuf::from(path);
            if path.is_file() {
                Ok(Some(path))
            } else {
                Err(Error::Invalid(Problems(vec![Problem::new(
                    format!("configuration file {}", path.display()),
                    format!("{CONFIG_ENV} names a file that does not exist: create it, or unset {CONFIG_ENV} to use ./{DEFAULT_FILE}"),
                )
                .origin(format!("environment variable {CONFIG_ENV}"))])))
            }
        }
        None => Ok(Some(PathBuf::from(DEFAULT_FILE)).filter(|p| p.is_file())),
    }
}

/// The `CACHEX_*` variables that configure caches: all but `CACHEX_CONFIG` and `CACHEX_TEST_*`
/// (the test suite's own). `CACHEX_CACHES__FIB__TTL=30s` sets `caches.fib.ttl`.
pub fn env_provider() -> Env {
    Env::prefixed(ENV_PREFIX)
        .filter(|key| key != "config" && !key.starts_with("test_"))
        .split("__")
}

/// Loads the configuration from `$CACHEX_CONFIG` or `./cachex.toml` and the environment.
///
/// ```no_run
/// let loaded = cachex_config::load()?;
/// println!("{} caches declared", loaded.config.caches.len());
/// # Ok::<(), cachex_core::Error>(())
/// ```
pub fn load() -> Result<Loaded, Error> {
    let mut figment = Figment::new();
    if let Some(file) = config_file()? {
        figment = figment.merge(Toml::file_exact(file));
    }
    from_figment(figment.merge(env_provider()))
}

/// Loads the configuration from a file and the environment.
pub fn load_file(path: &Path) -> Result<Loaded, Error> {
    from_figment(Figment::new().merge(Toml::file_exact(path)).merge(env_provider()))
}

/// Parses a TOML document alone (no environment): what the tests of `config/` use.
///
/// ```
/// let loaded = cachex_config::from_toml_str("[caches.fib]\nbackend = \"memory\"\nttl = \"30s\"\n")?;
/// assert!(loaded.config.caches.contains_key("fib"));
/// # Ok::<(), cachex_core::Error>(())
/// ```
pub fn from_toml_str(toml: &str) -> Result<Loaded, Error> {
    from_figment(Figment::new().merge(Toml::string(toml)))
}

/// Extracts the configuration from any figment (for users who compose their own sources).
pub fn from_figment(figment: Figment) -> Result<Loaded, Error> {
    match figment.extract::<Config>() {
        Ok(config) => Ok(Loaded {
            config,
            sources: Some(figment),
        }),
        Err(errors) => Err(Error::Invalid(Problems(
            errors.into_iter().map(|e| problem(&e)).collect(),
        ))),
    }
}

/// The subject of a configuration path: "cache `fib`, key `ttl`", "`[defaults]`, key `ttl`".
pub fn subject(path: &[&str]) -> String {
    match path {
        ["caches", name, rest @ ..] if !rest.is_empty() => format!("cache `{name}`, key `{}`", rest.join(".")),
        ["caches", name] => format!("cache `{name}`"),
        ["defaults", rest @ ..] if !rest.is_empty() => format!("[defaults], key `{}`", rest.join(".")),
        [] => "configuration".to_owned(),
        other => format!("key `{}`", other.join(".")),
    }
}

/// What kind of value a type error found, without the value.
fn value_kind(actual: &figment::error::Actual) -> &'static str {
    use figment::error::Actual;
    match actual {
        Actual::Bool(_) => "a boolean",
        Actual::Unsigned(_) | Actual::Signed(_) => "an integer",
        Actual::Float(_) => "a float",
        Actual::Char(_) | Actual::Str(_) => "a string",
        Actual::Bytes(_) => "bytes",
        Actual::Seq => "a sequence",
        Actual::Map => "a map",
        _ => "another kind of value",
    }
}

fn problem(error: &figment::Error) -> Problem {
    let path: Vec<&str> = error.path.iter().map(String::as_str).collect();
    // A signing key is a secret: say what kind of value was found, never the value.
    let secret = path.iter().any(|key| key.starts_with("signing_key"));
    let message = match &error.kind {
        figment::error::Kind::InvalidType(actual, expected) if secret => {
            format!("invalid type: found {}, expected {expected}", value_kind(actual))
        }
        _ if secret => "invalid value (not shown: it is a secret); accepted: a string of at least 32 bytes".into(),
        figment::error::Kind::UnknownField(field, expected) => format!(
            "unknown key `{field}`; accepted keys: {}",
            expected.iter().map(|e| format!("`{e}`")).collect::<Vec<_>>().join(", ")
        ),
        figment::error::Kind::UnknownVariant(found, expected) => format!(
            "unknown value `{found}`; accepted values: {}",
            expected.iter().map(|e| format!("`{e}`")).collect::<Vec<_>>().join(", ")
        ),
        kind => {
            let text = kind.to_string();
            if path.last().is_some_and(|k| *k == "ttl" || *k == "timeout") {
                format!(
                    "{text}; accepted: a duration such as \"30s\", \"5m\", \"1h 30m\", \"250ms\" or \"0s\" for none"
                )
            } else {
                text
            }
        }
    };
    let problem = Problem::new(subject(&path), message);
    match &error.metadata {
        Some(metadata) => problem.origin(describe_origin(metadata, &path)),
        None => problem,
    }
}
