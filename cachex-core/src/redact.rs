//! Hiding passwords in URLs before they reach an error, a log line or `Debug` output.

/// Replaces the password of every `scheme://user:password@host` URL in `text` with `***`.
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
        let (head, tail) = rest.split_at(pos + 3);
        out.push_str(head);
        // The authority ends at the first '/', '?', '#' or whitespace; userinfo ends at its last '@'.
        let end = tail
            .find(|c: char| c == '/' || c == '?' || c == '#' || c.is_whitespace() || c == '"' || c == '`' || c == '\'')
            .unwrap_or(tail.len());
        let authority = &tail[..end];
        match authority.rfind('@') {
            Some(at) => {
                let userinfo = &authority[..at];
                match userinfo.find(':') {
                    Some(colon) => {
                        out.push_str(&userinfo[..colon]);
                        out.push_str(":***");
                    }
                    None => out.push_str(userinfo),
                }
                out.push_str(&authority[at..]);
            }
            None => out.push_str(authority),
        }
        rest = &tail[end..];
    }
    out.push_str(rest);
    out
}

/// A URL that shows itself with its password replaced by `***` in `Debug` and `Display`.
///
/// ```
/// use cachex_core::redact::SecretUrl;
/// let url = SecretUrl::new("redis://u:pw@localhost/0");
/// assert_eq!(format!("{url:?}"), "\"redis://u:***@localhost/0\"");
/// assert_eq!(url.expose(), "redis://u:pw@localhost/0");
/// ```
#[derive(Clone, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(transparent)]
pub struct SecretUrl(String);

impl SecretUrl {
    /// Wraps a URL.
    pub fn new(url: impl Into<String>) -> Self {
        SecretUrl(url.into())
    }

    /// The URL with its password, for the client that connects.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for SecretUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(&redact(&self.0), f)
    }
}

impl std::fmt::Display for SecretUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&redact(&self.0))
    }
}
