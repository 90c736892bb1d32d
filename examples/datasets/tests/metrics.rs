//! The datasets service's `/metrics` over real HTTP (a process of its own, so no other test
//! touches its `datasets` cache): Prometheus text whose hit counter grows by one per cached
//! request, equal to what `/cachex/stats` reports.

mod support;

use cachex_example_datasets::{configure, Source};

async fn text(url: String) -> String {
    support::get_ok(&url).await.text().await.unwrap()
}

/// The value of `cache_gets_total` for the `datasets` cache and `result`.
fn gets(metrics: &str, result: &str) -> u64 {
    let line = metrics
        .lines()
        .find(|line| {
            line.starts_with("cache_gets_total{")
                && line.contains("cache=\"datasets\"")
                && line.contains("backend=\"memory\"")
                && line.contains(&format!("result=\"{result}\""))
        })
        .unwrap_or_else(|| panic!("no cache_gets_total for datasets, {result}:\n{metrics}"));
    line.rsplit(' ').next().unwrap().parse().unwrap()
}

#[tokio::test]
async fn metrics_count_one_hit_per_cached_request_and_agree_with_the_stats_endpoint() {
    support::init_service();
    let base = support::start(|config, base| configure(config, Source::Local(format!("{base}/files"))));
    text(format!("{base}/datasets/uber1")).await; // the miss that downloads
    let before = gets(&text(format!("{base}/metrics")).await, "hit");
    for round in 1..=3 {
        text(format!("{base}/datasets/uber1")).await;
        let metrics = text(format!("{base}/metrics")).await;
        assert_eq!(gets(&metrics, "hit"), before + round, "round {round}:\n{metrics}");
        let stats: serde_json::Value = serde_json::from_str(&text(format!("{base}/cachex/stats")).await).unwrap();
        assert_eq!(stats["datasets"]["hits"].as_u64(), Some(gets(&metrics, "hit")));
        assert_eq!(stats["datasets"]["misses"].as_u64(), Some(gets(&metrics, "miss")));
    }
    let metrics = text(format!("{base}/metrics")).await;
    assert!(metrics.contains("# TYPE cache_gets_total counter"), "{metrics}");
    assert!(
        metrics.contains("# TYPE cache_load_duration_seconds histogram")
            && metrics
                .contains("cache_load_duration_seconds_bucket{cache=\"datasets\",backend=\"memory\",le=\"0.001\"}"),
        "a histogram with buckets, not a summary:\n{metrics}"
    );
    assert!(!metrics.contains("uber1"), "no key in a label:\n{metrics}");
    println!("{metrics}");
}
