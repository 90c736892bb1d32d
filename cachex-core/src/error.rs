//! The error type of cachex and the list of configuration or binding problems it carries.

use std::fmt;

use crate::redact::redact;

/// A boxed error from a storage engine or its client.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Everything that can go wrong in cachex.
///
/// Messages never contain a password from a URL: every message passes through
/// [`redact`](crate::redact::redact) before it is shown.
///
/// ```
/// let err = cachex_core::Error::UnknownCache("sessions".into());
/// assert!(err.to_string().contains("sessions"));
/// ```
#[derive(thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The configuration or the bindings in the binary are invalid; every problem is listed.
    #[error("{0}")]
    Invalid(Problems),
    /// A storage engine failed (down, timed out, refused the value).
    #[error("cache `{cache}`: {backend} backend: {}", redact(&.source.to_string()))]
    Backend {
        /// The cache whose backend failed.
        cache: String,
        /// The kind of backend (`memory`, `file`, `redis`, ...).
        backend: &'static str,
        /// What the engine or its client reported.
        #[source]
        source: BoxError,
    },
    /// A value could not be encoded for storage.
    #[error("cache `{cache}`: cannot encode the value: {}", redact(.message))]
    Encode {
        /// The cache the value was meant for.
        cache: String,
        /// What the encoder reported.
        message: String,
    },
    /// `cachex::init` (or `init_with`) was called after cachex had been initialised.
    #[error(
        "cachex is already initialised: call cachex::init() once, first thing in main, before any cached function runs"
    )]
    AlreadyInitialized,
    /// No cache of this name exists in the running configuration.
    #[error("no cache named `{0}`: declare it as [caches.{0}] in cachex.toml, or bind a function to it with #[cached(name = \"{0}\")]")]
    UnknownCache(String),
    /// The configuration could not be loaded, so caching is off for this process.
    #[error("cachex could not initialise, caching is off: {}", redact(.0))]
    NotInitialized(String),
}

impl fmt::Debug for Error {
    /// The message, with URL passwords hidden (a backend's own error may quote its URL).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let variant = match self {
            Error::Invalid(_) => "Invalid",
            Error::Backend { .. } => "Backend",
            Error::Encode { .. } => "Encode",
            Error::AlreadyInitialized => "AlreadyInitialized",
            Error::UnknownCache(_) => "UnknownCache",
            Error::NotInitialized(_) => "NotInitialized",
        };
        write!(f, "{variant}({:?})", redact(&self.to_string()))
    }
}

impl From<Error> for std::io::Error {
    fn from(err: Error) -> Self {
        std::io::Error::other(err)
    }
}

/// One thing wrong with the configuration or a binding: what, where it came from, and the fix.
///
/// ```
/// let p = cachex_core::Problem::new("cache `fib`, key `ttl`", "invalid duration `3x`")
///     .origin("environment variable CACHEX_CACHES__FIB__TTL");
/// assert!(p.to_string().contains("CACHEX_CACHES__FIB__TTL"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// What the problem is about, e.g. "cache `fib`, key `ttl`".
    pub subject: String,
    /// Where the bad value came from (a file and key, or an environment variable).
    pub origin: Option<String>,
    /// What is wrong and how to fix it.
    pub message: String,
}

impl Problem {
    /// A problem about `subject` with a message saying what is wrong (URL passwords hidden).
    pub fn new(subject: impl Into<String>, message: impl Into<String>) -> Self {
        Problem {
            subject: redact(&subject.into()),
            origin: None,
            message: redact(&message.into()),
        }
    }

    /// Records where the bad value came from.
    pub fn origin(mut self, origin: impl Into<String>) -> Self {
        self.origin = Some(redact(&origin.into()));
        self
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.origin {
            Some(origin) => write!(f, "{} (from {}): {}", self.subject, origin, self.message),
            None => write!(f, "{}: {}", self.subject, self.message),
        }
    }
}

/// Every problem found in one check, shown as one message with one problem per line.
///
/// ```
/// use cachex_core::{Problem, Problems};
/// let problems = Problems(vec![Problem::new("cache `a`", "bad"), Problem::new("cache `b`", "worse")]);
/// assert_eq!(problems.to_string().lines().count(), 3);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problems(pub Vec<Problem>);

impl fmt::Display for Problems {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.0.len();
        write!(
            f,
            "cachex found {n} problem{} in its configuration or bindings:",
            if n == 1 { "" } else { "s" }
        )?;
        for problem in &self.0 {
            write!(f, "\n  - {problem}")?;
        }
        Ok(())
    }
}
