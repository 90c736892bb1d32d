//! Metrics (feature `metrics`) with a recorder installed: misses, hits, an eviction, a failed
//! computation and a backend failure, each counter and histogram count asserted exactly, and
//! the same numbers as `stats()`.
#![cfg(all(feature = "metrics", feature = "redis"))]

use std::time::Duration;

use cachex::{cached, CacheConfig, Config, LocalConfig};
use metrics_util::debugging::{DebugValue, DebuggingRecorder};

#[cached(name = "m_memory")]
fn square(n: u64) -> u64 {
    n * n
}

#[cached(name = "m_memory")]
fn positive(n: i64) -> Option<i64> {
    (n > 0).then_some(n)
}

#[cached(name = "m_down")]
fn remote(n: u64) -> u64 {
    n + 1
}

/// One metric of a snapshot: its name, its labels, its value.
type Metric = (String, Vec<(String, String)>, DebugValue);

/// The value of the metric `name` whose labels include `labels`.
fn find<'a>(snapshot: &'a [Metric], name: &str, labels: &[(&str, &str)]) -> &'a DebugValue {
    let found: Vec<&DebugValue> = snapshot
        .iter()
        .filter(|(n, l, _)| n == name && labels.iter().all(|(k, v)| l.iter().any(|(lk, lv)| lk == k && lv == v)))
        .map(|(_, _, value)| value)
        .collect();
    assert_eq!(found.len(), 1, "{name} {labels:?}: {found:?}");
    found[0]
}

fn counter(snapshot: &[Metric], name: &str, labels: &[(&str, &str)]) -> u64 {
    match find(snapshot, name, labels) {
        DebugValue::Counter(value) => *value,
        other => panic!("{name}: not a counter: {other:?}"),
    }
}

fn samples(snapshot: &[Metric], name: &str, labels: &[(&str, &str)]) -> usize {
    match find(snapshot, name, labels) {
        DebugValue::Histogram(samples) => samples.len(),
        other => panic!("{name}: not a histogram: {other:?}"),
    }
}

#[test]
fn each_counter_and_histogram_counts_exactly_what_happened() {
    let dead_port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    cachex::init_with(
        Config::new()
            .cache("m_memory", CacheConfig::memory().max_entries(2))
            .cache(
                "m_down",
                CacheConfig::redis(&format!("redis://127.0.0.1:{dead_port}/0")).timeout(Duration::from_millis(250)),
            )
            // A local tier whose invalidation channel never comes up: bypassed.
            .cache(
                "m_tiered",
                CacheConfig::redis(&format!("redis://127.0.0.1:{dead_port}/0"))
                    .timeout(Duration::from_millis(250))
                    .local(LocalConfig::new(Duration::from_secs(60))),
            ),
    )
    .unwrap();
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    metrics::with_local_recorder(&recorder, || {
        assert_eq!(square(3), 9); // miss, load, put
        assert_eq!(square(3), 9); // hit
        assert_eq!(square(4), 16); // miss, load, put
        assert_eq!(square(5), 25); // miss, load, put: three entries in a cache of two, one evicted
        assert_eq!(positive(-1), None); // miss, a failed load, no put
        assert_eq!(remote(1), 2); // the backend's read fails (bypass: computed, not cached)
        cachex::metrics::publish();
    });
    let snapshot: Vec<Metric> = snapshotter
        .snapshot()
        .into_vec()
        .into_iter()
        .map(|(key, _, _, value)| {
            let key = key.key();
            let labels = key
                .labels()
                .map(|l| (l.key().to_owned(), l.value().to_owned()))
                .collect();
            (key.name().to_owned(), labels, value)
        })
        .collect();
    let memory = [("cache", "m_memory"), ("backend", "memory")];
    let with = |extra: (&'static str, &'static str)| {
        let mut labels = memory.to_vec();
        labels.push(extra);
        labels
    };
    assert_eq!(counter(&snapshot, "cache_gets_total", &with(("result", "hit"))), 1);
    assert_eq!(counter(&snapshot, "cache_gets_total", &with(("result", "miss"))), 4);
    assert_eq!(counter(&snapshot, "cache_puts_total", &memory), 3);
    assert_eq!(counter(&snapshot, "cache_load_total", &with(("result", "success"))), 3);
    assert_eq!(counter(&snapshot, "cache_load_total", &with(("result", "failure"))), 1);
    assert_eq!(counter(&snapshot, "cache_evictions_total", &with(("cause", "size"))), 1);
    assert_eq!(
        counter(&snapshot, "cache_evictions_total", &with(("cause", "expired"))),
        0
    );
    assert_eq!(samples(&snapshot, "cache_load_duration_seconds", &memory), 4);
    let down = [("cache", "m_down"), ("backend", "redis"), ("operation", "get")];
    assert_eq!(counter(&snapshot, "cache_backend_errors_total", &down), 1);
    assert_eq!(samples(&snapshot, "cache_backend_duration_seconds", &down), 1);
    assert_eq!(
        counter(
            &snapshot,
            "cache_gets_total",
            &[("cache", "m_down"), ("result", "miss")]
        ),
        0
    );
    let gauge = |cache: &str| match find(&snapshot, "cache_local_bypassed", &[("cache", cache)]) {
        DebugValue::Gauge(value) => value.into_inner(),
        other => panic!("cache_local_bypassed: not a gauge: {other:?}"),
    };
    assert_eq!(gauge("m_tiered"), 1.0, "no channel: bypassed");
    assert_eq!(gauge("m_memory"), 0.0);
    assert_eq!(counter(&snapshot, "cache_local_hits_total", &memory), 0);
    assert_eq!(
        counter(&snapshot, "cache_local_bypasses_total", &[("cache", "m_tiered")]),
        0,
        "never connected: nothing lost"
    );
    assert_eq!(
        counter(&snapshot, "cache_invalidations_total", &[("cache", "m_tiered")]),
        0
    );
    assert!(cachex::cache("m_tiered").unwrap().stats().local_bypassed);
    assert_eq!(
        counter(&snapshot, "cache_unannounced_total", &[("cache", "m_tiered")]),
        cachex::cache("m_tiered").unwrap().stats().unannounced,
        "the metric and stats() agree"
    );
    // stats() reads the same numbers.
    let stats = cachex::cache("m_memory").unwrap().stats();
    assert_eq!((stats.hits, stats.misses, stats.stores, stats.evictions), (1, 4, 3, 1));
    assert_eq!((stats.loads, stats.load_failures), (3, 1));
    assert_eq!(cachex::cache("m_down").unwrap().stats().backend_errors.get, 1);
}
