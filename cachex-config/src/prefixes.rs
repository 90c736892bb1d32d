//! Where a cache's entries live, to find two caches whose one prefix would make them read and
//! clear each other's entries.
//!
//! Two caches share a namespace when their effective prefixes are equal and their backends
//! store in one place: the same redis server (or cluster) and database, the same mongodb
//! deployment, database and collection, the same memcached server, the same file directory.
//! A memory cache is a store of its own: it never shares one.
//!
//! A prefix that starts another (`app` and `app:x`) shares nothing on any backend: every
//! backend matches its own entries as the prefix, `:` and exactly 64 hex digits (redis' `SCAN`
//! pattern, the file backend's names, mongodb's anchored `_id` regex) or as
//! `prefix:generation:hex` under its own `prefix:gen` (memcached), and the longer prefix's
//! entries have more after `app:` than that.

use std::collections::BTreeSet;
use std::path::{Component, Path, PathBuf};

use crate::model::{BackendKind, CacheConfig};

/// Where one cache's entries are stored, as far as the configuration tells.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Location {
    /// Redis: the servers (`host:port`, or `unix:<path>`) and the database.
    Redis { servers: BTreeSet<String>, db: String },
    /// MongoDB: the servers (or the `+srv` record), the database and the collection.
    Mongodb {
        servers: BTreeSet<String>,
        database: String,
        collection: String,
    },
    /// Memcached: the servers.
    Memcached { servers: BTreeSet<String> },
    /// A file cache's directory.
    File(PathBuf),
}

impl Location {
    /// Whether two caches at `self` and `other` store in one place (two server lists that
    /// share a server name one deployment).
    pub(crate) fn shared_with(&self, other: &Location) -> bool {
        let meet = |a: &BTreeSet<String>, b: &BTreeSet<String>| a.intersection(b).next().is_some();
        match (self, other) {
            (Location::Redis { servers: a, db: x }, Location::Redis { servers: b, db: y }) => x == y && meet(a, b),
            (
                Location::Mongodb {
                    servers: a,
                    database: d1,
                    collection: c1,
                },
                Location::Mongodb {
                    servers: b,
                    database: d2,
                    collection: c2,
                },
            ) => d1 == d2 && c1 == c2 && meet(a, b),
            (Location::Memcached { servers: a }, Location::Memcached { servers: b }) => meet(a, b),
            (Location::File(a), Location::File(b)) => a == b,
            _ => false,
        }
    }

    /// The place in the user's terms (hosts, database, directory; never a URL's userinfo).
    pub(crate) fn describe(&self) -> String {
        let list = |servers: &BTreeSet<String>| servers.iter().cloned().collect::<Vec<_>>().join(",");
        match self {
            Location::Redis { servers, db } => {
                format!("the same redis server and database ({}, db {db})", list(servers))
            }
            Location::Mongodb {
                servers,
                database,
                collection,
            } => format!(
                "the same mongodb collection ({}, database `{database}`, collection `{collection}`)",
                list(servers)
            ),
            Location::Memcached { servers } => format!("the same memcached server ({})", list(servers)),
            Location::File(path) => format!("the same directory ({})", path.display()),
        }
    }
}

/// The hosts of a URL's authority (after the userinfo, which is never read), lowercased, each
/// with `default_port` when it names none.
fn servers(authority: &str, default_port: u16) -> BTreeSet<String> {
    authority
        .split(',')
        .filter(|host| !host.is_empty())
        .map(|host| {
            let host = host.to_ascii_lowercase();
            let has_port = match host.rfind(']') {
                Some(close) => host[close..].contains(':'),
                None => host.contains(':'),
            };
            if has_port {
                host
            } else {
                format!("{host}:{default_port}")
            }
        })
        .collect()
}

/// The value of query parameter `name` in `query`, if set.
fn query_value<'a>(query: &'a str, name: &str) -> Option<&'a str> {
    query
        .split(['&', ';'])
        .filter_map(|pair| pair.split_once('='))
        .find(|(key, _)| key.eq_ignore_ascii_case(name))
        .map(|(_, value)| value)
}

/// A URL cut into its scheme, its authority after the userinfo, its path and its query.
fn parts(url: &str) -> Option<(&str, &str, &str, &str)> {
    let (scheme, rest) = url.split_once("://")?;
    let rest = rest.split('#').next().unwrap_or_default();
    let (before_query, query) = rest.split_once('?').unwrap_or((rest, ""));
    let (authority, path) = match before_query.find('/') {
        Some(slash) => before_query.split_at(slash),
        None => (before_query, ""),
    };
    // The userinfo ends at the last '@' of the authority (a password may hold any character).
    let hosts = authority.rfind('@').map_or(authority, |at| &authority[at + 1..]);
    Some((scheme, hosts, path, query))
}

/// A directory as compared between caches: its canonical path when it exists, else the path
/// with `.` components and trailing slashes dropped.
fn directory(path: &Path) -> PathBuf {
    std::fs::canonicalize(path).unwrap_or_else(|_| path.components().filter(|c| *c != Component::CurDir).collect())
}

/// Where cache `name`, with `effective` settings, stores its entries (`None` for memory, and
/// when the configuration does not say: no URL, a URL of another shape).
pub(crate) fn location(name: &str, effective: &CacheConfig) -> Option<Location> {
    let url = effective.url.as_ref().map(|url| url.expose());
    match effective.backend.unwrap_or(BackendKind::Memory) {
        BackendKind::Memory => None,
        BackendKind::File => effective.path.as_deref().map(|path| Location::File(directory(path))),
        BackendKind::Redis => {
            let (scheme, hosts, path, query) = parts(url?)?;
            let (servers, db) = match scheme {
                "unix" | "redis+unix" => (
                    BTreeSet::from([format!("unix:{}", path)]),
                    query_value(query, "db").unwrap_or("0"),
                ),
                "redis-cluster" | "rediss-cluster" => (servers(hosts, 6379), "0"),
                _ => {
                    let db = path.trim_start_matches('/').split('/').next().unwrap_or_default();
                    let db = if db.is_empty() {
                        query_value(query, "db").unwrap_or("0")
                    } else {
                        db
                    };
                    (servers(hosts, 6379), db)
                }
            };
            // `01` and `1` are one database.
            let db = db.parse::<u64>().map_or_else(|_| db.to_owned(), |db| db.to_string());
            Some(Location::Redis { servers, db })
        }
        BackendKind::Mongodb => {
            let (scheme, hosts, _, _) = parts(url?)?;
            let servers = if scheme == "mongodb+srv" {
                BTreeSet::from([format!("srv:{}", hosts.to_ascii_lowercase())])
            } else {
                servers(hosts, 27017)
            };
            Some(Location::Mongodb {
                servers,
                database: effective.database.clone().unwrap_or_else(|| "cachex".to_owned()),
                collection: effective.collection.clone().unwrap_or_else(|| name.to_owned()),
            })
        }
        BackendKind::Memcached => {
            let (_, hosts, _, _) = parts(url?)?;
            Some(Location::Memcached {
                servers: servers(hosts, 11211),
            })
        }
    }
}
