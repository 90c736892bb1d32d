//! A local tier in front of Redis for an ACL user, against a real `redis-server`: a user that
//! may not use the cache's invalidation channel is an `init()` problem naming the cache, the
//! user, the channel and the rule to add; a subscription the server refuses at run time keeps
//! the tier bypassed (it never serves what it cannot hear about).
#![cfg(feature = "redis")]

mod support;

use std::collections::HashMap;
use std::time::Duration;

use cachex::{CacheConfig, Config, LocalConfig};
use support::redis_server::RedisServer;
use support::wait_until;

const PATIENCE: Duration = Duration::from_secs(10);

fn acl(server: &RedisServer, rules: &[&str]) {
    redis::cmd("ACL")
        .arg("SETUSER")
        .arg(rules)
        .query::<()>(&mut server.client())
        .unwrap();
}

/// How many commands the server refused for a channel (`ACL LOG`: Redis 7.0 has no such
/// counter in `INFO`).
fn channel_refusals(server: &RedisServer) -> i64 {
    let log: Vec<HashMap<String, redis::Value>> = redis::cmd("ACL").arg("LOG").query(&mut server.client()).unwrap();
    log.iter()
        .filter(|entry| {
            entry
                .get("reason")
                .and_then(|r| redis::from_redis_value_ref::<String>(r).ok())
                .as_deref()
                == Some("channel")
        })
        .filter_map(|entry| {
            entry
                .get("count")
                .and_then(|c| redis::from_redis_value_ref::<i64>(c).ok())
        })
        .sum()
}

fn tiered(server: &RedisServer, user: &str) -> CacheConfig {
    CacheConfig::redis(&format!("redis://{user}:secret-pw@127.0.0.1:{}/0", server.port))
        .timeout(Duration::from_secs(2))
        .local(LocalConfig::new(Duration::from_secs(3600)))
}

#[test]
fn a_user_without_the_channel_is_refused_at_init_and_a_refused_subscription_never_serves() {
    let server = RedisServer::start();
    // What Debian's redis 7 gives a new user (acl-pubsub-default resetchannels), said outright.
    acl(
        &server,
        &["nochannel", "on", ">secret-pw", "~*", "+@all", "resetchannels"],
    );
    let error = cachex::init_with(Config::new().cache("acl_tier", tiered(&server, "nochannel")))
        .expect_err("a tier whose channel the user may not use");
    let text = error.to_string();
    for expected in [
        "cache `acl_tier`, key `local`",
        "the redis user `nochannel`",
        "`cachex:acl_tier:invalidations`",
        "ACL SETUSER nochannel &cachex:acl_tier:invalidations",
    ] {
        assert!(text.contains(expected), "`{expected}` missing from: {text}");
    }
    assert!(!text.contains("secret-pw"), "{text}");

    // A user with the channel: init passes and the tier serves.
    acl(
        &server,
        &[
            "app",
            "on",
            ">secret-pw",
            "~*",
            "+@all",
            "&cachex:acl_tier:invalidations",
        ],
    );
    cachex::init_with(Config::new().cache("acl_tier", tiered(&server, "app"))).unwrap();
    let handle = cachex::cache("acl_tier").unwrap();
    wait_until("the tier serving", PATIENCE, || !handle.stats().local_bypassed);
    handle.set("k", &1u32).unwrap();
    assert_eq!(handle.get::<_, u32>("k").unwrap(), Some(1));
    assert_eq!(handle.stats().local_hits, 1);

    // The channel is taken away and the subscriber cut off: its new SUBSCRIBE is refused, and
    // the tier stays bypassed, reading Redis, for as long as that lasts.
    // (Redis disconnects the user's subscribers itself when it loses the channel.)
    let refusals = channel_refusals(&server);
    acl(&server, &["app", "resetchannels"]);
    wait_until("a refused subscription", PATIENCE, || {
        channel_refusals(&server) > refusals
    });
    assert!(
        handle.stats().local_bypassed,
        "a tier whose subscription was refused serves"
    );
    redis::cmd("SET")
        .arg(format!(
            "cachex:acl_tier:{}",
            cachex::Key::direct("acl_tier", "k").unwrap().to_hex()
        ))
        .arg(cachex::envelope::encode(&2u32, None).unwrap())
        .query::<()>(&mut server.client())
        .unwrap();
    assert_eq!(
        handle.get::<_, u32>("k").unwrap(),
        Some(2),
        "read from Redis, not the tier"
    );
    assert_eq!(handle.stats().local_hits, 1);

    // The channel given back: the tier serves again.
    acl(&server, &["app", "&cachex:acl_tier:invalidations"]);
    wait_until("the tier serving again", PATIENCE, || !handle.stats().local_bypassed);
}
