//! Hiding secrets in URLs before they reach an error, a log line or `Debug` output: the
//! password of the userinfo (whatever characters it holds), and the value of every query
//! parameter whose name contains `pass`, `secret`, `token` or `key` (case-insensitive).
//!
//! A URL is redacted by its shape, so one that does not parse is hidden too: the userinfo is
//! everything between `//` and the last `@`; with no `@`, a text after `scheme://user:` that is
//! not a port (up to the next `/`, `?` or `#`) may be a password whose `@host` is missing, and
//! is hidden as one (`redis://app:hunter2` shows `redis://app:***`).
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

/// Whether `port` reads as a port number (digits up to 65535; empty is no port at all).
fn is_port(port: &str) -> bool {
    port.is_empty() || (port.bytes().all(|b| b.is_ascii_digit()) && port.parse::<u16>().is_ok())
}

/// Whether an authority with no userinfo reads as hosts: `name`, `name:port`, `[v6]` or
/// `[v6]:port`, separated by commas, with a name before every port.
fn hosts_parse(authority: &str) -> bool {
    authority.split(',').all(|host| match host.strip_prefix('[') {
        Some(v6) => v6
            .split_once(']')
            .is_some_and(|(_, tail)| match tail.strip_prefix(':') {
                Some(port) => is_port(port),
                None => tail.is_empty(),
            }),
        None => match host.split_once(':') {
            Some((name, port)) => !name.is_empty() && !port.contains(':') && is_port(port),
            None => true,
        },
    })
}

/// The possible password of a URL with no `@`: the text after the first `:` of its authority
/// (up to the next `/`, `?` or `#`) when the authority does not read as hosts and ports
/// (`redis://app:hunter2`, `redis://:hunter2`), as the byte range of `url` it spans.
fn hostless_password(url: &str) -> Option<std::ops::Range<usize>> {
    let (scheme, rest) = url.split_once("://")?;
    let authority = &rest[..rest.find(['/', '?', '#']).unwrap_or(rest.len())];
    // With an `@` anywhere, the userinfo runs to the last one (a password may hold `/`, `?`, `#`).
    if rest.contains('@') || hosts_parse(authority) {
        return None;
    }
    let colon = authority.find(':')?;
    let start = scheme.len() + 3 + colon + 1;
    (colon + 1 < authority.len()).then(|| start..scheme.len() + 3 + authority.len())
}

/// Whether `url` has no `@` and a text after `scheme://user:` that is not a port: a password
/// whose `@host` is missing, as far as anyone can tell. [`redact_url`] hides that text, and an
/// error about such a URL must not quote it.
///
/// ```
/// use cachex_core::redact::hostless_password_in;
/// assert!(hostless_password_in("redis://app:hunter2hunter2"));
/// assert!(hostless_password_in("redis://:hunter2/0"));
/// assert!(!hostless_password_in("redis://db:6379/0"));
/// assert!(!hostless_password_in("redis://app:hunter2@db:notaport/0"));
/// ```
pub fn hostless_password_in(url: &str) -> bool {
    hostless_password(url).is_some()
}

/// The secrets of one whole URL: the userinfo's password (or, with no `@`, a text after
/// `user:` that is not a port) and the secret query values.
fn secrets_of(url: &str) -> Vec<&str> {
    let mut found = Vec::new();
    if let Some(range) = hostless_password(url) {
        found.push(&url[range]);
    }
    let Some((_, rest)) = url.split_once("://") else {
        return found;
    };
    let query_from = match rest.rfind('@') {
        Some(at) => {
            match rest[..at].split_once(':') {
                Some((_, password)) => found.push(password),
                // `user@secret@host`: no `:`, several `@`; everything before the last one goes.
                None if rest[..at].contains('@') => found.push(&rest[..at]),
                None => {}
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
/// password may hold `/`, `#`, `?`, `@`, spaces), and every secret query value. A URL that
/// does not parse is redacted by its shape: with several `@` and no `:` before them, the whole
/// userinfo; with no `@`, a text after `scheme://user:` that is not a port (a password whose
/// `@host` is missing).
///
/// ```
/// use cachex_core::redact::redact_url;
/// assert_eq!(redact_url("redis://app:p/a#s?s@db:6379/0"), "redis://app:***@db:6379/0");
/// assert_eq!(redact_url("redis://app:hunter2hunter2"), "redis://app:***");
/// assert_eq!(redact_url("redis://app:hunter2/0?x=1"), "redis://app:***/0?x=1");
/// assert_eq!(redact_url("redis://app@pw@db:6379"), "redis://***@db:6379");
/// assert_eq!(redact_url("redis://db:6379/0"), "redis://db:6379/0");
/// assert_eq!(
///     redact_url("redis+unix:///tmp/r.sock?db=0&pass=s3cret"),
///     "redis+unix:///tmp/r.sock?db=0&pass=***"
/// );
/// assert_eq!(redact_url("mongodb://h/?tlsCertificateKeyFilePassword=x&w=1"), "mongodb://h/?tlsCertificateKeyFilePassword=***&w=1");
/// ```
pub fn redact_url(url: &str) -> String {
    let mut out = String::with_capacity(url.len());
    if let Some(range) = hostless_password(url) {
        // No `@`: what follows the hidden text is a path, a query and a fragment.
        out.push_str(&url[..range.start]);
        out.push_str(MASK);
        push_redacted_query(&mut out, &url[range.end..]);
        return out;
    }
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
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
                // `user@secret@host`: no `:`, several `@`; everything before the last one goes.
                None if userinfo.contains('@') => out.push_str(MASK),
                None => out.push_str(userinfo),
            }
            out.push('@');
            &rest[at + 1..]
        }
        None => rest,
    };
    push_redacted_query(&mut out, after_user);
    out
}

/// Pushes the part of a URL after its userinfo (hosts, path, query, fragment) with every
/// secret query value replaced.
fn push_redacted_query(out: &mut String, after_user: &str) {
    let Some(q) = after_user.find('?') else {
        out.push_str(after_user);
        return;
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
    // The remembered secrets first: a URL cut at a space in its password still holds the
    // whole password here.
    let mut text = text.to_owned();
    {
        let remembered = REMEMBERED.lock().unwrap_or_else(PoisonError::into_inner);
        for secret in remembered.iter().rev() {
            if text.contains(secret.as_str()) {
                text = text.replace(secret.as_str(), MASK);
            }
        }
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text.as_str();
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
        let url = &rest[scheme_start..end];
        // A punctuation mark after a URL (`cannot reach redis://db:6379: refused`) is not part
        // of it when the URL reads as hosts and ports without it.
        let url = match url.char_indices().next_back() {
            Some((i, c))
                if matches!(c, ':' | ',' | '.' | ';' | ')')
                    && hostless_password(url).is_some()
                    && hostless_password(&url[..i]).is_none() =>
            {
                &url[..i]
            }
            _ => url,
        };
        out.push_str(&redact_url(url));
        rest = &rest[scheme_start + url.len()..];
    }
    out.push_str(rest);
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
