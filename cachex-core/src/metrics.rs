//! Metrics an operator already knows how to read (feature `metrics`), through the `metrics`
//! crate's facade: nothing is recorded until the application installs a recorder (an exporter,
//! such as `metrics-exporter-prometheus`). Names follow Micrometer's cache meters, so
//! existing dashboards work:
//!
//! | metric | labels | from |
//! | --- | --- | --- |
//! | `cache_gets_total` | `cache`, `backend`, `result` = `hit` \| `miss` | `Stats::hits`, `Stats::misses` |
//! | `cache_puts_total` | `cache`, `backend` | `Stats::stores` |
//! | `cache_evictions_total` | `cache`, `backend`, `cause` = `size` \| `expired` | `Stats::evictions`, `Stats::expirations` (memory) |
//! | `cache_load_total` | `cache`, `backend`, `result` = `success` \| `failure` | `Stats::loads`, `Stats::load_failures` |
//! | `cache_stale_served_total` | `cache`, `backend` | `Stats::stale_served` |
//! | `cache_backend_errors_total` | `cache`, `backend`, `operation` | `Stats::backend_errors` |
//! | `cache_load_duration_seconds` (histogram) | `cache`, `backend` | each computation to cache |
//! | `cache_backend_duration_seconds` (histogram) | `cache`, `backend`, `operation` | each operation of a byte-storing backend |
//!
//! The counters are the ones [`stats()`](crate::CacheHandle::stats) reads: the hot path keeps
//! its own striped counters, and [`publish`] sets each metric to their sum. Call it before
//! rendering (the `/metrics` route does), so metrics and `stats()` never disagree; a memory hit
//! costs the same with the feature on. The histograms are recorded when the computation or
//! the operation happens, on the recorder installed then. No key is ever a label, and there is
//! no hit-ratio gauge (it derives from `cache_gets_total`).

#[cfg(feature = "metrics")]
use crate::stats::Operation as Op;
use crate::Cache;

/// When something timed started (nothing without the feature).
#[derive(Clone, Copy)]
pub(crate) struct Started {
    #[cfg(feature = "metrics")]
    at: std::time::Instant,
}

/// Now, for a duration to record.
#[inline]
pub(crate) fn start() -> Started {
    Started {
        #[cfg(feature = "metrics")]
        at: std::time::Instant::now(),
    }
}

/// Records the duration of a computation to cache.
#[inline]
pub(crate) fn load_duration(cache: &Cache, started: Started) {
    #[cfg(feature = "metrics")]
    ::metrics::histogram!("cache_load_duration_seconds", "cache" => cache.settings.name.clone(), "backend" => cache.kind())
        .record(started.at.elapsed());
    #[cfg(not(feature = "metrics"))]
    let _ = (cache, started);
}

/// Records the duration of a backend operation.
#[inline]
pub(crate) fn backend_duration(cache: &Cache, operation: crate::stats::Operation, started: Started) {
    #[cfg(feature = "metrics")]
    ::metrics::histogram!(
        "cache_backend_duration_seconds",
        "cache" => cache.settings.name.clone(),
        "backend" => cache.kind(),
        "operation" => operation.name()
    )
    .record(started.at.elapsed());
    #[cfg(not(feature = "metrics"))]
    let _ = (cache, operation, started);
}

/// The bucket bounds (seconds) of `cache_load_duration_seconds`: pass them to the exporter, so
/// Prometheus gets a histogram, not a summary.
#[cfg(feature = "metrics")]
pub const LOAD_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

/// The bucket bounds (seconds) of `cache_backend_duration_seconds`.
#[cfg(feature = "metrics")]
pub const BACKEND_BUCKETS: &[f64] = &[
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0,
];

/// Sets every cache's counters on the installed recorder, and describes them: call it before
/// rendering (a `/metrics` route), or on a timer for a push exporter.
///
/// ```
/// # fn main() -> Result<(), cachex_core::Error> {
/// let users = cachex_core::cache("doc_metrics_users")?;
/// users.set(&1, &"ada".to_owned())?;
/// cachex_core::metrics::publish(); // with no recorder installed: nothing recorded
/// # Ok(()) }
/// ```
#[cfg(feature = "metrics")]
pub fn publish() {
    describe();
    for cache in crate::caches() {
        let stats = cache.stats();
        let name: ::metrics::SharedString = cache.name().to_owned().into();
        let backend = cache.backend();
        let counter = |metric: &'static str, label: Option<(&'static str, &'static str)>, value: u64| {
            let mut labels = vec![
                ::metrics::Label::new("cache", name.clone()),
                ::metrics::Label::new("backend", backend),
            ];
            if let Some((key, label)) = label {
                labels.push(::metrics::Label::new(key, label));
            }
            ::metrics::counter!(metric, labels).absolute(value);
        };
        counter("cache_gets_total", Some(("result", "hit")), stats.hits);
        counter("cache_gets_total", Some(("result", "miss")), stats.misses);
        counter("cache_puts_total", None, stats.stores);
        counter("cache_evictions_total", Some(("cause", "size")), stats.evictions);
        counter("cache_evictions_total", Some(("cause", "expired")), stats.expirations);
        counter("cache_load_total", Some(("result", "success")), stats.loads);
        counter("cache_load_total", Some(("result", "failure")), stats.load_failures);
        counter("cache_stale_served_total", None, stats.stale_served);
        counter("cache_local_hits_total", None, stats.local_hits);
        counter("cache_local_bypasses_total", None, stats.local_bypasses);
        counter("cache_invalidations_total", None, stats.invalidations);
        counter("cache_unannounced_total", None, stats.unannounced);
        counter("cache_fills_refused_total", None, stats.fills_refused);
        ::metrics::gauge!("cache_local_bypassed", "cache" => name.clone(), "backend" => backend)
            .set(f64::from(u8::from(stats.local_bypassed)));
        for operation in Op::ALL {
            counter(
                "cache_backend_errors_total",
                Some(("operation", operation.name())),
                stats.backend_errors.of(operation),
            );
        }
    }
}

/// Describes the metrics to the installed recorder (what `# HELP` shows).
#[cfg(feature = "metrics")]
fn describe() {
    use ::metrics::{describe_counter, describe_histogram, Unit};
    describe_counter!(
        "cache_gets_total",
        "Cache lookups, by result (hit: a fresh value; miss: none)"
    );
    describe_counter!("cache_puts_total", "Values written to the cache");
    describe_counter!(
        "cache_evictions_total",
        "Entries evicted, by cause (size: a bound; expired: the TTL)"
    );
    describe_counter!("cache_load_total", "Computations of values to cache, by result");
    describe_counter!("cache_stale_served_total", "Calls answered with a value past its TTL");
    describe_counter!("cache_backend_errors_total", "Backend failures, by operation");
    describe_counter!(
        "cache_local_hits_total",
        "Hits answered by the local tier (part of cache_gets_total)"
    );
    describe_counter!(
        "cache_local_bypasses_total",
        "Times the local tier's invalidation channel was lost (each emptied and bypassed the tier)"
    );
    describe_counter!(
        "cache_invalidations_total",
        "Invalidations from other processes applied to the local tier"
    );
    describe_counter!(
        "cache_unannounced_total",
        "Writes, removals and clears of a tiered cache that failed or were dropped, so other processes may not have been told"
    );
    describe_counter!(
        "cache_fills_refused_total",
        "Computed values not stored because their entry changed while they were computed"
    );
    ::metrics::describe_gauge!(
        "cache_local_bypassed",
        "1 while the local tier is bypassed (its invalidation channel is down), else 0"
    );
    describe_histogram!(
        "cache_load_duration_seconds",
        Unit::Seconds,
        "Duration of the computations of values to cache"
    );
    describe_histogram!(
        "cache_backend_duration_seconds",
        Unit::Seconds,
        "Duration of backend operations"
    );
}
