//! The MongoDB backend: one document per entry, `_id` = `prefix:hexkey`, the envelope as BSON
//! binary in `value`, `expires_at` as a BSON date with a TTL index on it (`expireAfterSeconds:
//! 0`) and an `expires_at > now` filter on every read (mongod's TTL monitor only runs every
//! 60 s). Writes are `replace_one` upserts that also refresh the expiry.
//!
//! A computation's lease is a marker document upserted only where the entry is absent or
//! expired (a live one makes the upsert a duplicate `_id`, and the lease names what is there);
//! its fill is a `replace_one` filtered on the exact bytes the lease names, so a removal, a
//! clear or another write in between leaves it matching nothing.
//!
//! The client is created outside any caller's runtime, so its background tasks run on the
//! driver's own runtime and outlive the runtime of whichever task used them first. The
//! blocking side runs each operation on a small runtime of cachex's own (one worker thread)
//! under the cache's `timeout`, like the async side, and waits for its result on the calling
//! thread (inside a tokio runtime too): a server that stops answering fails the operation
//! after `timeout`, it never hangs the caller.

use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::Duration;

use mongodb::bson::{doc, spec::BinarySubtype, Binary, DateTime, Document};
use mongodb::options::{ClientOptions, IndexOptions};
use mongodb::IndexModel;

use crate::envelope::now_millis;
use crate::error::BoxError;
use crate::lease::{self, Lease};
use crate::storage::{AsyncStorage, BoxFuture, Storage, StorageKey};

/// The per-operation timeout when the configuration sets none.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_millis(1000);
/// MongoDB's largest document.
pub const MAX_DOCUMENT_BYTES: usize = 16 * 1024 * 1024;
/// Room kept for the document's fields besides the value.
const DOCUMENT_OVERHEAD: usize = 512;
/// The expiry of an entry without TTL: far enough that no TTL monitor removes it.
const NEVER_MILLIS: i64 = 253_402_300_799_000; // 9999-12-31T23:59:59Z

/// Where a MongoDB cache keeps its entries.
///
/// ```
/// let options = cachex_core::backend::mongodb::MongoOptions::new("mongodb://u:secret@127.0.0.1:27017", "cachex", "sessions");
/// assert!(!format!("{options:?}").contains("secret"));
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct MongoOptions {
    /// `mongodb://...` or `mongodb+srv://...`, passed to the driver.
    pub url: String,
    /// The database (default `cachex`).
    pub database: String,
    /// The collection (default the cache's name).
    pub collection: String,
    /// Per-operation timeout (server selection, connect, each operation).
    pub timeout: Duration,
}

impl MongoOptions {
    /// Options with the default timeout.
    pub fn new(url: &str, database: &str, collection: &str) -> Self {
        MongoOptions {
            url: url.to_owned(),
            database: database.to_owned(),
            collection: collection.to_owned(),
            timeout: DEFAULT_TIMEOUT,
        }
    }
}

impl std::fmt::Debug for MongoOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MongoOptions")
            .field("url", &crate::redact::redact_url(&self.url))
            .field("database", &self.database)
            .field("collection", &self.collection)
            .field("timeout", &self.timeout)
            .finish()
    }
}

/// Runs blocking driver work where it may block: here, or on a helper thread when the caller
/// is inside a tokio runtime.
fn outside_runtime<T: Send>(work: impl FnOnce() -> T + Send) -> T {
    if tokio::runtime::Handle::try_current().is_err() {
        return work();
    }
    std::thread::scope(|scope| match scope.spawn(work).join() {
        Ok(value) => value,
        Err(panic) => std::panic::resume_unwind(panic),
    })
}

/// The client of one deployment (one URL and timeout), shared by every cache on it.
struct Clients {
    nonblocking: mongodb::Client,
}

/// The runtime the blocking side's operations run on.
fn helper_runtime() -> Result<&'static tokio::runtime::Runtime, BoxError> {
    static RUNTIME: OnceLock<Result<tokio::runtime::Runtime, String>> = OnceLock::new();
    RUNTIME
        .get_or_init(|| {
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .thread_name("cachex-mongodb")
                .enable_all()
                .build()
                .map_err(|e| e.to_string())
        })
        .as_ref()
        .map_err(|e| format!("cannot start the mongodb backend's helper runtime: {e}").into())
}

/// Runs `op` on the helper runtime under `timeout` and blocks the calling thread until it is
/// done or timed out.
fn bounded<T: Send + 'static>(
    timeout: Duration,
    op: impl std::future::Future<Output = mongodb::error::Result<T>> + Send + 'static,
) -> Result<T, BoxError> {
    let runtime = helper_runtime()?;
    let (tx, rx) = std::sync::mpsc::sync_channel(1);
    runtime.spawn(async move {
        let result = match tokio::time::timeout(timeout, op).await {
            Ok(result) => result.map_err(BoxError::from),
            Err(_) => Err(format!("mongodb did not answer within {timeout:?}").into()),
        };
        let _ = tx.send(result);
    });
    // The task answers by `timeout`; the margin only guards against a helper that is gone.
    match rx.recv_timeout(timeout.saturating_add(Duration::from_secs(5))) {
        Ok(result) => result,
        Err(_) => Err(format!("mongodb did not answer within {timeout:?}").into()),
    }
}

/// The clients of each deployment, by URL and timeout.
type Deployments = Vec<((String, Duration), Arc<Clients>)>;

static DEPLOYMENTS: Mutex<Deployments> = Mutex::new(Vec::new());

fn clients(url: &str, timeout: Duration) -> Result<Arc<Clients>, BoxError> {
    crate::redact::remember(url);
    let mut deployments = DEPLOYMENTS.lock().unwrap_or_else(PoisonError::into_inner);
    let key = (url.to_owned(), timeout);
    if let Some((_, clients)) = deployments.iter().find(|(k, _)| *k == key) {
        return Ok(Arc::clone(clients));
    }
    let clients = outside_runtime(|| -> Result<Clients, BoxError> {
        let mut options = ClientOptions::parse(url).run()?;
        options.connect_timeout = Some(timeout);
        options.server_selection_timeout = Some(timeout);
        options.app_name.get_or_insert_with(|| "cachex".to_owned());
        Ok(Clients {
            nonblocking: mongodb::Client::with_options(options)?,
        })
    })?;
    let clients = Arc::new(clients);
    deployments.push((key, Arc::clone(&clients)));
    Ok(clients)
}

/// Escapes regular-expression metacharacters.
///
/// ```
/// assert_eq!(cachex_core::backend::mongodb::regex_escape("a.b*"), "a\\.b\\*");
/// ```
pub fn regex_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if "\\.^$|?*+()[]{}/-".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// One MongoDB cache.
#[derive(Clone)]
pub struct MongoStore {
    clients: Arc<Clients>,
    options: Arc<MongoOptions>,
    own_ids: String,
    index: Arc<OnceLock<()>>,
}

impl MongoStore {
    /// A store for the cache whose prefix is `prefix`. It tries to create the TTL index now;
    /// a server that is down then is not an error (the first write tries again).
    pub fn new(options: &MongoOptions, prefix: &str) -> Result<Self, BoxError> {
        let store = MongoStore {
            clients: clients(&options.url, options.timeout)?,
            options: Arc::new(options.clone()),
            own_ids: format!("^{}:[0-9a-f]{{64}}$", regex_escape(prefix)),
            index: Arc::new(OnceLock::new()),
        };
        if let Err(error) = store.ensure_index() {
            tracing::warn!(collection = %options.collection, %error, "cachex could not create the TTL index yet");
        }
        Ok(store)
    }

    fn collection(&self) -> mongodb::Collection<Document> {
        self.clients
            .nonblocking
            .database(&self.options.database)
            .collection(&self.options.collection)
    }

    fn ttl_index() -> IndexModel {
        IndexModel::builder()
            .keys(doc! { "expires_at": 1 })
            .options(
                IndexOptions::builder()
                    .expire_after(Duration::ZERO)
                    .name("cachex_expires_at".to_owned())
                    .build(),
            )
            .build()
    }

    fn ensure_index(&self) -> Result<(), BoxError> {
        if self.index.get().is_some() {
            return Ok(());
        }
        let collection = self.collection();
        bounded(self.options.timeout, async move {
            collection.create_index(Self::ttl_index()).await
        })?;
        let _ = self.index.set(());
        Ok(())
    }

    async fn ensure_index_async(&self) -> Result<(), BoxError> {
        if self.index.get().is_some() {
            return Ok(());
        }
        self.timed(self.collection().create_index(Self::ttl_index())).await?;
        let _ = self.index.set(());
        Ok(())
    }

    async fn timed<T, E: Into<BoxError>>(
        &self,
        op: impl std::future::IntoFuture<Output = Result<T, E>>,
    ) -> Result<T, BoxError> {
        if !crate::backend::in_tokio_runtime() {
            return Err("the async side of the mongodb backend needs a tokio runtime".into());
        }
        match tokio::time::timeout(self.options.timeout, op.into_future()).await {
            Ok(result) => result.map_err(Into::into),
            Err(_) => Err(format!("mongodb did not answer within {:?}", self.options.timeout).into()),
        }
    }

    fn live(key: &str) -> Document {
        doc! { "_id": key, "expires_at": { "$gt": DateTime::from_millis(now_millis() as i64) } }
    }

    fn document(&self, key: &str, value: &[u8], ttl: Option<Duration>) -> Result<Document, BoxError> {
        if value.len() + key.len() + DOCUMENT_OVERHEAD > MAX_DOCUMENT_BYTES {
            return Err(format!(
                "a value of {} bytes would make a document over MongoDB's {} byte limit; it was not stored",
                value.len(),
                MAX_DOCUMENT_BYTES
            )
            .into());
        }
        let expires = match ttl.filter(|t| !t.is_zero()) {
            Some(ttl) => (now_millis() as i64).saturating_add(ttl.as_millis().min(i64::MAX as u128) as i64),
            None => NEVER_MILLIS,
        };
        Ok(doc! {
            "_id": key,
            "value": Binary { subtype: BinarySubtype::Generic, bytes: value.to_vec() },
            "expires_at": DateTime::from_millis(expires),
        })
    }

    /// The stored bytes of a found document; a document without a binary value gives bytes
    /// that do not decode, so it is counted and recomputed like any corrupt entry.
    fn value(found: Option<Document>) -> Option<Vec<u8>> {
        found.map(|doc| match doc.get("value") {
            Some(mongodb::bson::Bson::Binary(binary)) => binary.bytes.clone(),
            _ => Vec::new(),
        })
    }

    fn own(&self) -> Document {
        doc! { "_id": { "$regex": self.own_ids.clone() } }
    }
}

/// Whether `error` is a duplicate `_id` (E11000): an upsert met a live document.
fn duplicate_key(error: &mongodb::error::Error) -> bool {
    use mongodb::error::{ErrorKind, WriteFailure};
    match &*error.kind {
        ErrorKind::Write(WriteFailure::WriteError(failure)) => failure.code == 11000,
        ErrorKind::Command(failure) => failure.code == 11000,
        _ => false,
    }
}

/// A lease's bytes: the `value` field the lease found (a marker's, a value's, or whatever a
/// corrupt document holds there; absent when it has none), as a BSON document.
fn lease_of(value: Option<&mongodb::bson::Bson>) -> Result<Lease, mongodb::error::Error> {
    let mut found = Document::new();
    if let Some(value) = value {
        found.insert("value", value.clone());
    }
    let mut bytes = Vec::new();
    found
        .to_writer(&mut bytes)
        .map_err(|e| mongodb::error::Error::custom(e.to_string()))?;
    Ok(Lease::Held(bytes))
}

/// The filter of the document `key` while its `value` is still the one `lease` found.
fn holding(key: &str, lease: &[u8]) -> Result<Document, BoxError> {
    let found = Document::from_reader(lease)?;
    Ok(match found.get("value") {
        Some(value) => doc! { "_id": key, "value": value.clone() },
        None => doc! { "_id": key, "value": { "$exists": false } },
    })
}

/// Whether `lease` names a marker (what a release removes).
fn names_marker(lease: &[u8]) -> bool {
    Document::from_reader(lease).is_ok_and(|found| {
        matches!(found.get("value"), Some(mongodb::bson::Bson::Binary(binary)) if lease::is_marker(&binary.bytes))
    })
}

/// Takes the lease of `key` (see [`crate::lease`]): `marker` (in `document`) where the entry is
/// absent or expired; else what a live entry holds.
async fn take_lease(
    collection: mongodb::Collection<Document>,
    key: String,
    marker: Vec<u8>,
    document: Document,
) -> mongodb::error::Result<Lease> {
    let absent = doc! { "_id": &key, "expires_at": { "$lte": DateTime::from_millis(now_millis() as i64) } };
    match collection.replace_one(absent, document).upsert(true).await {
        Ok(_) => {
            return lease_of(Some(
                &Binary {
                    subtype: BinarySubtype::Generic,
                    bytes: marker,
                }
                .into(),
            ))
        }
        Err(error) if duplicate_key(&error) => {}
        Err(error) => return Err(error),
    }
    // A live entry: a value (the fill replaces exactly it), or another computation's marker.
    let Some(found) = collection.find_one(MongoStore::live(&key)).await? else {
        // The entry went in between: the next miss leases it.
        return Ok(Lease::HeldElsewhere);
    };
    match found.get("value") {
        Some(mongodb::bson::Bson::Binary(binary)) if lease::is_marker(&binary.bytes) => Ok(Lease::HeldElsewhere),
        value => lease_of(value),
    }
}

/// Writes `document` where `filter` (the entry still as its lease found it) matches.
async fn fill_leased(
    collection: mongodb::Collection<Document>,
    filter: Document,
    document: Document,
) -> mongodb::error::Result<bool> {
    Ok(collection.replace_one(filter, document).await?.matched_count == 1)
}

impl MongoStore {
    /// The marker document of a lease of `key` for `lease_for`, and the marker.
    fn marker_document(&self, key: &str, lease_for: Duration) -> Result<(Vec<u8>, Document), BoxError> {
        let marker = lease::marker(lease_for);
        let document = self.document(key, &marker, Some(lease_for))?;
        Ok((marker, document))
    }
}

impl Storage for MongoStore {
    fn get(&self, key: &StorageKey<'_>) -> Result<Option<Vec<u8>>, BoxError> {
        let key = &key.text();
        let (collection, filter) = (self.collection(), Self::live(key));
        let found = bounded(self.options.timeout, async move { collection.find_one(filter).await })?;
        Ok(Self::value(found))
    }

    fn set(&self, key: &StorageKey<'_>, value: &[u8], ttl: Option<Duration>) -> Result<(), BoxError> {
        let key = &key.text();
        let document = self.document(key, value, ttl)?;
        self.ensure_index()?;
        let (collection, id) = (self.collection(), doc! { "_id": key });
        bounded(self.options.timeout, async move {
            collection.replace_one(id, document).upsert(true).await
        })?;
        Ok(())
    }

    fn delete(&self, key: &StorageKey<'_>) -> Result<(), BoxError> {
        let key = &key.text();
        let (collection, id) = (self.collection(), doc! { "_id": key });
        bounded(self.options.timeout, async move { collection.delete_one(id).await })?;
        Ok(())
    }

    fn clear(&self) -> Result<(), BoxError> {
        let (collection, own) = (self.collection(), self.own());
        bounded(self.options.timeout, async move { collection.delete_many(own).await })?;
        Ok(())
    }

    fn lease(&self, key: &StorageKey<'_>, lease_for: Duration) -> Result<Lease, BoxError> {
        let key = key.text();
        let (marker, document) = self.marker_document(&key, lease_for)?;
        self.ensure_index()?;
        bounded(
            self.options.timeout,
            take_lease(self.collection(), key, marker, document),
        )
    }

    fn fill(&self, key: &StorageKey<'_>, lease: &Lease, value: &[u8], ttl: Option<Duration>) -> Result<bool, BoxError> {
        let Lease::Held(expected) = lease else {
            return Ok(false);
        };
        let key = key.text();
        let document = self.document(&key, value, ttl)?;
        let filter = holding(&key, expected)?;
        bounded(self.options.timeout, fill_leased(self.collection(), filter, document))
    }

    fn release(&self, key: &StorageKey<'_>, lease: &Lease) -> Result<(), BoxError> {
        let Lease::Held(marker) = lease else {
            return Ok(());
        };
        let (collection, filter) = (self.collection(), holding(&key.text(), marker)?);
        if names_marker(marker) {
            bounded(self.options.timeout, async move { collection.delete_one(filter).await })?;
        }
        Ok(())
    }
}

impl AsyncStorage for MongoStore {
    fn get<'a>(&'a self, key: &'a StorageKey<'a>) -> BoxFuture<'a, Result<Option<Vec<u8>>, BoxError>> {
        let key = key.text();
        Box::pin(async move {
            Ok(Self::value(
                self.timed(self.collection().find_one(Self::live(&key))).await?,
            ))
        })
    }

    fn set<'a>(
        &'a self,
        key: &'a StorageKey<'a>,
        value: &'a [u8],
        ttl: Option<Duration>,
    ) -> BoxFuture<'a, Result<(), BoxError>> {
        let key = key.text();
        Box::pin(async move {
            let document = self.document(&key, value, ttl)?;
            self.ensure_index_async().await?;
            let collection = self.collection();
            self.timed(collection.replace_one(doc! { "_id": key }, document).upsert(true))
                .await?;
            Ok(())
        })
    }

    fn delete<'a>(&'a self, key: &'a StorageKey<'a>) -> BoxFuture<'a, Result<(), BoxError>> {
        let key = key.text();
        Box::pin(async move {
            self.timed(self.collection().delete_one(doc! { "_id": key })).await?;
            Ok(())
        })
    }

    fn clear(&self) -> BoxFuture<'_, Result<(), BoxError>> {
        Box::pin(async move {
            self.timed(self.collection().delete_many(self.own())).await?;
            Ok(())
        })
    }

    fn lease<'a>(&'a self, key: &'a StorageKey<'a>, lease_for: Duration) -> BoxFuture<'a, Result<Lease, BoxError>> {
        let key = key.text();
        Box::pin(async move {
            let (marker, document) = self.marker_document(&key, lease_for)?;
            self.ensure_index_async().await?;
            self.timed(take_lease(self.collection(), key, marker, document)).await
        })
    }

    fn fill<'a>(
        &'a self,
        key: &'a StorageKey<'a>,
        lease: &'a Lease,
        value: &'a [u8],
        ttl: Option<Duration>,
    ) -> BoxFuture<'a, Result<bool, BoxError>> {
        let key = key.text();
        Box::pin(async move {
            let Lease::Held(expected) = lease else {
                return Ok(false);
            };
            let document = self.document(&key, value, ttl)?;
            let filter = holding(&key, expected)?;
            self.timed(fill_leased(self.collection(), filter, document)).await
        })
    }

    fn release<'a>(&'a self, key: &'a StorageKey<'a>, lease: &'a Lease) -> BoxFuture<'a, Result<(), BoxError>> {
        let key = key.text();
        Box::pin(async move {
            if let Lease::Held(marker) = lease {
                if names_marker(marker) {
                    self.timed(self.collection().delete_one(holding(&key, marker)?)).await?;
                }
            }
            Ok(())
        })
    }
}

/// The mongodb backend: `url`, `database` (default `cachex`), `collection` (default the
/// cache's name), `timeout`.
pub const KIND: super::Kind = super::Kind {
    name: "mongodb",
    keys: &["url", "timeout", "database", "collection"],
    url_schemes: &["mongodb", "mongodb+srv"],
    stores_bytes: true,
    build: |spec| {
        let options = MongoOptions {
            url: spec.required_url("mongodb")?.to_owned(),
            database: spec.database.unwrap_or("cachex").to_owned(),
            collection: spec.collection.unwrap_or(spec.name).to_owned(),
            timeout: spec.timeout.unwrap_or(DEFAULT_TIMEOUT),
        };
        let store = MongoStore::new(&options, spec.prefix)
            .map_err(|e| super::SettingProblem::new("url", format!("not a usable mongodb URL: {e}")))?;
        Ok(super::Backend::bytes("mongodb", store))
    },
};
