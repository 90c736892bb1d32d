//! Hiding secrets in URLs before they reach an error, a log line or `Debug` output: the
//! password of the userinfo (whatever characters it holds), and the value of every query
//! parameter whose name contains `pass`, `secret`, `token` or `key` (case-insensitive).
//!
//! Free text (a client's error message) is redacted URL by URL; as a second line of defence,
//! the secrets of every [`SecretUrl`] this process made are remembered and replaced wherever
//! they appear, so a client that quotes a password on its own (or a URL cut at a space in its
//! password) shows `***` too.

use std::collections::BTreeSet;
use std::sync::{Mutex, PoisonError};

use percent_encoding::percent_decode_str;

/// What replaces a secret.
const MASK: &str = "***";

/// Secrets shorter than this are not searched for in free text (they would mask ordinary
/// words); the URL-by-URL redaction still hides them.
const MIN_REMEMBERED: usize = 4;

static REMEMBERED: Mutex<BTreeSet<String>> = Mutex::new(BTreeSet::new());

/// Whether a query parameter's name says its value is a secret.
fn secret_name(name: &str) -> bool {
    let name = percent_decode_str(name).decode_utf8_lossy().to_ascii_lowercase();
    ["pass", "secret", "token", "key"]
        .iter()
        .any(|word| name.contains(word))
}

/// The secrets of one whole URL: the userinfo's password and the secret query values.
fn secrets_of(url: &str) -> Vec<&str> {
    let mut found = Vec::new();
    let Some((_, rest)) = url.split_once("://") else {
        return found;
    };
    let query_from = match rest.rfind('@') {
        Some(at) => {
            if let Some((_, password)) = rest[..at].split_once(':') {
                found.push(password);
            }
            at
        }
        None => 0,
    };
    if let Some(q) = rest[query_from..].find('?') {
        let query = &rest[query_from + q + 1..];
        let query = query.split('#').next().unwrap_or(query);
        for pair in query.split(['&', ';']) {
            if let Some((name, value)) = pair.split_once('=') {
                if secret_name(name) {
                    found.push(value);
                }
            }
        }
    }
    found
}

/// Remembers the secrets of `url`, so that free text quoting them is redacted too.
pub(crate) fn remember(url: &str) {
    let secrets: Vec<String> = secrets_of(url)
        .into_iter()
        .flat_map(|secret| {
            [
                secret.to_owned(),
                percent_decode_str(secret).decode_utf8_lossy().into_owned(),
            ]
        })
        .filter(|secret| secret.len() >= MIN_REMEMBERED && secret != MASK)
        .collect();
    if !secrets.is_empty() {
        REMEMBERED
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .extend(secrets);
    }
}

/// Redacts one whole URL: everything between the userinfo's first `:` and its last `@` (a
/// password may hold `/`, `#`, `?`, `@`, spaces), and every secret query value.
///
/// ```
/// use cachex_core::redact::redact_url;
/// assert_eq!(redact_url("redis://app:p/a#s?s@db:6379/0"), "redis://app:***@db:6379/0");
/// assert_eq!(
///     redact_url("redis+unix:///tmp/r.sock?db=0&pass=s3cret"),
///     "redis+unix:///tmp/r.sock?db=0&pass=***"
/// );
/// assert_eq!(redact_url("mongodb://h/?tlsCertificateKeyFilePassword=x&w=1"), "mongodb://h/?tlsCertificateKeyFilePassword=***&w=1");
/// ```
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let mut out = String::with_capacity(url.len());
    out.push_str(scheme);
    out.push_str("://");
    let after_user = match rest.rfind('@') {
        Some(at) => {
            let userinfo = &rest[..at];
            match userinfo.split_once(':') {
                Some((user, _)) => {
                    out.push_str(user);
                    out.push(':');
                    out.push_str(MASK);
                }
                None => out.push_str(userinfo),
            }
            out.push('@');
            &rest[at + 1..]
        }
        None => rest,
    };
    let Some(q) = after_user.find('?') else {
        out.push_str(after_user);
        return out;
    };
    out.push_str(&after_user[..=q]);
    let (query, fragment) = match after_user[q + 1..].split_once('#') {
        Some((query, fragment)) => (query, Some(fragment)),
        None => (&after_user[q + 1..], None),
    };
    let mut start = 0;
    for (i, c) in query.char_indices().chain(std::iter::once((query.len(), '&'))) {
        if c != '&' && c != ';' {
            continue;
        }
        let pair = &query[start..i];
        match pair.split_once('=') {
            Some((name, _)) if secret_name(name) => {
                out.push_str(name);
                out.push('=');
                out.push_str(MASK);
            }
            _ => out.push_str(pair),
        }
        if i < query.len() {
            out.push(c);
        }
        start = i + 1;
    }
    if let Some(fragment) = fragment {
        out.push('#');
        out.push_str(fragment);
    }
    out
}

/// Replaces the secrets of every URL in `text` (see [`redact_url`]) with `***`, and every
/// secret of a [`SecretUrl`] made in this process wherever it appears.
///
/// ```
/// use cachex_core::redact::redact;
/// assert_eq!(
///     redact("cannot reach redis://app:s3cret@db:6379/0"),
///     "cannot reach redis://app:***@db:6379/0"
/// );
/// assert_eq!(redact("redis://:s3cret@db"), "redis://:***@db");
/// assert_eq!(redact("no url here"), "no url here");
/// ```
pub fn redact(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(pos) = rest.find("://") {
        // The scheme: the letters, digits, `+`, `-` and `.` before `://`.
        let scheme_start = rest[..pos]
            .rfind(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.')))
            .map_or(0, |i| i + 1);
        out.push_str(&rest[..scheme_start]);
        // A URL in free text ends at whitespace or a quote.
        let end = rest[pos + 3..]
            .find(|c: char| c.is_whitespace() || matches!(c, '"' | '`' | '\'' | '<' | '>'))
            .map_or(rest.len(), |i| pos + 3 + i);
        out.push_str(&redact_url(&rest[scheme_start..end]));
        rest = &rest[end..];
    }
    out.push_str(rest);
    let remembered = REMEMBERED.lock().unwrap_or_else(PoisonError::into_inner);
    for secret in remembered.iter().rev() {
        if out.contains(secret.as_str()) {
            out = out.replace(secret.as_str(), MASK);
        }
    }
    out
}

/// A URL that shows itself with its secrets replaced by `***` in `Debug` and `Display` (see
/// [`redact_url`]).
///
/// ```
/// use cachex_core::redact::SecretUrl;
/// let url = SecretUrl::new("redis://u:pw@localhost/0");
/// assert_eq!(format!("{url:?}"), "\"redis://u:***@localhost/0\"");
/// assert_eq!(url.expose(), "redis://u:pw@localhost/0");
/// ```
#[derive(Clone, PartialEq, Eq, serde::Serialize)]
#[serde(transparent)]
pub struct SecretUrl(String);

impl SecretUrl {
    /// Wraps a URL (and remembers its secrets, so error messages quoting them hide them).
    pub fn new(url: impl Into<String>) -> Self {
        let url = url.into();
        remember(&url);
        SecretUrl(url)
    }

    /// The URL with its password, for the client that connects.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl<'de> serde::Deserialize<'de> for SecretUrl {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer).map(SecretUrl::new)
    }
}

impl std::fmt::Debug for SecretUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(&redact_url(&self.0), f)
    }
}

impl std::fmt::Display for SecretUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&redact_url(&self.0))
    }
}
