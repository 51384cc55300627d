//! `RedisCache` on a Redis Cluster (3 primaries, 3 replicas, private, on free loopback ports):
//! the conformance suite, batches across slots, namespaces, and the cache followed through a
//! primary killed under load, a live resharding and a manual failover.
//!
//! The tests that start a cluster run one at a time: six servers each, with a 2 s node
//! timeout, on a 2-core machine.

mod load;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use cache_core::testkit;
use cache_redis::{AnyCache, Cache, CacheError, RedisCache};
use redis_test_server::{RedisCluster, hash_tag_for_slot, key_slot};
use tokio::sync::Mutex;

use crate::load::Load;

/// One cluster at a time.
static SERIAL: Mutex<()> = Mutex::const_new(());

/// The bound of every call in the fault tests.
const TIMEOUT: Duration = Duration::from_millis(500);

fn cache(cluster: &RedisCluster, namespace: &str) -> RedisCache {
    RedisCache::builder()
        .url(cluster.url())
        .namespace(namespace)
        .timeout(TIMEOUT)
        .build()
        .unwrap()
}

/// Starts a cluster off the runtime's threads.
async fn start(builder: redis_test_server::RedisClusterBuilder) -> RedisCluster {
    tokio::task::spawn_blocking(move || builder.start())
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_conformance_suite_passes_on_a_cluster() {
    let _serial = SERIAL.lock().await;
    let cluster = start(RedisCluster::builder()).await;
    let namespaced = RedisCache::builder()
        .url(cluster.url())
        .namespace("conformance:")
        .build()
        .unwrap();
    testkit::run_all(namespaced).await;
    // Without a namespace `clear` is `FLUSHDB` on every primary.
    testkit::run_all(RedisCache::from_url(cluster.url()).unwrap()).await;
    let any = RedisCache::builder()
        .cluster_nodes(cluster.seed_urls())
        .namespace("any:")
        .build()
        .unwrap();
    testkit::run_all(AnyCache::new(any)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batches_spread_over_slots_keep_key_order_and_clear_keeps_other_namespaces() {
    let _serial = SERIAL.lock().await;
    let cluster = start(RedisCluster::builder()).await;
    let a = cache(&cluster, "a:");
    let b = cache(&cluster, "b:");
    let keys: Vec<String> = (0..600).map(|i| format!("key-{i}")).collect();
    let slots: BTreeSet<u16> = keys.iter().map(|k| key_slot(format!("a:{k}"))).collect();
    assert!(slots.len() > 500, "the keys should spread over many slots");
    let entries: Vec<(String, String)> = keys
        .iter()
        .step_by(2)
        .map(|k| (k.clone(), format!("value of {k}")))
        .collect();
    a.set_many(&entries, None).await.unwrap();
    b.set_many(&entries, None).await.unwrap();
    let values = a.get_many(&keys).await.unwrap();
    for (i, value) in values.iter().enumerate() {
        let expected = (i % 2 == 0).then(|| format!("value of key-{i}"));
        assert_eq!(value, &expected, "key-{i}");
    }
    // Every primary holds some of both namespaces.
    for port in cluster.primary_ports() {
        let size: u64 = cluster.cli(port, &["DBSIZE"]).trim().parse().unwrap();
        assert!(size > 0, "primary {port} holds no key");
    }
    let deleted: Vec<&String> = keys.iter().take(100).collect();
    a.delete_many(&deleted).await.unwrap();
    assert!(
        a.get_many(&deleted)
            .await
            .unwrap()
            .iter()
            .all(Option::is_none)
    );

    a.clear().await.unwrap();
    assert!(a.get_many(&keys).await.unwrap().iter().all(Option::is_none));
    let kept = b.get_many(&keys).await.unwrap();
    assert_eq!(kept.iter().filter(|v| v.is_some()).count(), entries.len());
    for port in cluster.primary_ports() {
        let size: u64 = cluster.cli(port, &["DBSIZE"]).trim().parse().unwrap();
        assert!(size > 0, "clearing a: emptied primary {port} of b:'s keys");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_namespace_with_a_hash_tag_keeps_every_key_on_one_node() {
    let _serial = SERIAL.lock().await;
    let cluster = start(RedisCluster::builder()).await;
    let cache = cache(&cluster, "{traces}:");
    let entries: Vec<(String, String)> =
        (0..200).map(|i| (format!("t{i}"), i.to_string())).collect();
    cache.set_many(&entries, None).await.unwrap();
    let sizes: Vec<u64> = cluster
        .primary_ports()
        .into_iter()
        .map(|port| cluster.cli(port, &["DBSIZE"]).trim().parse().unwrap())
        .collect();
    assert_eq!(sizes.iter().filter(|&&n| n > 0).count(), 1, "{sizes:?}");
    assert_eq!(sizes.iter().sum::<u64>(), 200);
    cache.clear().await.unwrap();
    assert!(cache.get("t1").await.unwrap().is_none());
}

#[tokio::test]
async fn a_cluster_has_only_db_0() {
    let err = RedisCache::from_url("redis+cluster://127.0.0.1:7000,127.0.0.1:7001/2").unwrap_err();
    assert!(matches!(err, CacheError::InvalidConfig { .. }), "{err:?}");
    let err = RedisCache::builder()
        .cluster_nodes(["redis://127.0.0.1:7000"])
        .db(1)
        .build()
        .unwrap_err();
    assert!(err.to_string().contains("db 0"), "{err}");
    let err = RedisCache::builder()
        .cluster_nodes(["redis://:a@127.0.0.1:7000", "redis://:b@127.0.0.1:7001"])
        .build()
        .unwrap_err();
    assert!(err.to_string().contains("same credentials"), "{err}");
    assert!(!format!("{err:?}").contains(":a@"));
}

/// Every call fails fast, as on a single dead server: also the calls right after a failed
/// look-up of the slot map, too soon for another one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cluster_that_cannot_be_reached_fails_fast_on_every_call() {
    // A port where nothing listens any more.
    let server = redis_test_server::RedisServer::start();
    let port = server.port();
    drop(server);
    let cache = RedisCache::builder()
        .url(format!("redis+cluster://127.0.0.1:{port}"))
        .timeout(Duration::from_secs(2))
        .build()
        .unwrap();
    for _ in 0..4 {
        let started = Instant::now();
        let err = cache.get("k").await.unwrap_err();
        assert!(matches!(err, CacheError::Unavailable { .. }), "{err:?}");
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "an unreachable cluster must fail fast, not wait for the 2 s timeout: {:?}",
            started.elapsed()
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credentials_work_on_a_cluster_and_are_never_printed() {
    let _serial = SERIAL.lock().await;
    let cluster = start(RedisCluster::builder().password("clu-s3cret")).await;
    let cache = cache(&cluster, "auth:");
    cache.ping().await.unwrap();
    cache.set("k", "v", None).await.unwrap();
    assert_eq!(cache.get("k").await.unwrap().as_deref(), Some("v"));
    assert!(!format!("{cache:?}").contains("clu-s3cret"));
    let wrong = cluster.url().replace("clu-s3cret", "wrong-pw");
    let refused = RedisCache::builder()
        .url(wrong)
        .timeout(TIMEOUT)
        .build()
        .unwrap();
    let err = refused.get("k").await.unwrap_err();
    let printed = format!("{err} {err:?}");
    assert!(
        !printed.contains("wrong-pw") && !printed.contains("clu-s3cret"),
        "{printed}"
    );
    assert!(!format!("{refused:?}").contains("wrong-pw"));
}

/// Writes to every one of the 16,384 slots until each has succeeded once, or `within`
/// passes; returns the slots that never took a write.
async fn write_every_slot(cache: &RedisCache, within: Duration) -> Vec<u16> {
    let start = Instant::now();
    let deadline = start + within;
    let mut missing: Vec<u16> = (0..16_384).collect();
    let mut last_error = None;
    while !missing.is_empty() && Instant::now() < deadline {
        let mut still = Vec::new();
        for chunk in missing.chunks(512) {
            let calls = chunk.iter().map(|&slot| {
                let cache = cache.clone();
                async move {
                    let key = format!("{{{}}}", hash_tag_for_slot(slot));
                    (slot, cache.set(&key, "x", None).await)
                }
            });
            for (slot, result) in futures_util::future::join_all(calls).await {
                if let Err(err) = result {
                    still.push(slot);
                    last_error = Some(err);
                }
            }
        }
        missing = still;
    }
    eprintln!(
        "writes to every slot: {} missing after {:?}; last error: {last_error:?}",
        missing.len(),
        start.elapsed()
    );
    missing
}

fn print_report(what: &str, report: &load::Report) {
    eprintln!(
        "{what}: {} calls, {} failed {:?}, {} wrong, {} stale, longest call {:?}",
        report.calls,
        report.failed(),
        report.errors,
        report.wrong,
        report.stale,
        report.longest
    );
}

/// Kills a primary with `kill -9` under a 64-task load and follows the cache through the
/// failover; with `full_coverage` off, the other primaries' slots must never fail.
async fn kill_a_primary_under_load(full_coverage: bool) {
    let _serial = SERIAL.lock().await;
    let mut cluster = start(RedisCluster::builder().require_full_coverage(full_coverage)).await;
    let cache = cache(&cluster, "");
    assert!(
        write_every_slot(&cache, Duration::from_secs(10))
            .await
            .is_empty()
    );
    let load = Load::start(&cache, 64, 32);
    assert!(load.wait_for_calls(2_000, Duration::from_secs(30)).await);

    let victim_slot = key_slot("load-0-0");
    let (mut cluster, killed, victim_slots, failover) = tokio::task::spawn_blocking(move || {
        let killed_primary = cluster.primary_for_slot(victim_slot);
        let victim_slots: Vec<std::ops::RangeInclusive<u16>> = cluster
            .slot_ranges()
            .into_iter()
            .filter(|(_, port)| *port == killed_primary)
            .map(|(range, _)| range)
            .collect();
        let killed = cluster.kill_primary_for_slot(victim_slot);
        let failover = cluster.wait_for_failover(killed, Duration::from_secs(30));
        (cluster, killed, victim_slots, failover)
    })
    .await
    .unwrap();
    let done = Instant::now();
    eprintln!("primary {killed} killed; the cluster failed over in {failover:?}");
    // Every slot takes a write within 2 s of the failover completing.
    let missing = write_every_slot(&cache, Duration::from_secs(2)).await;
    let recovered = done.elapsed();
    assert!(
        missing.is_empty(),
        "{} slots still refused writes 2 s after the failover, such as {:?}",
        missing.len(),
        &missing[..missing.len().min(5)]
    );
    assert!(load.wait_for_calls(2_000, Duration::from_secs(30)).await);
    let report = load.stop().await;
    print_report("kill -9 of a primary", &report);
    eprintln!("every slot served writes again {recovered:?} after the failover");
    assert_eq!(
        report.wrong + report.stale,
        0,
        "{:?}",
        report.wrong_examples
    );
    assert_eq!(report.unexpected_errors(), 0, "{:?}", report.errors);
    assert!(
        report.longest <= TIMEOUT.mul_f64(1.5) + Duration::from_millis(100),
        "a call took {:?}",
        report.longest
    );
    if !full_coverage {
        let elsewhere: Vec<&String> = report
            .failed_keys
            .iter()
            .filter(|key| {
                let slot = key_slot(key.as_str());
                !victim_slots.iter().any(|range| range.contains(&slot))
            })
            .collect();
        assert!(
            elsewhere.is_empty(),
            "{} calls failed on slots of the primaries still up, such as {:?}",
            elsewhere.len(),
            &elsewhere[..elsewhere.len().min(5)]
        );
    }
    // The killed node comes back as a replica; the cache keeps working.
    let cluster_back = tokio::task::spawn_blocking(move || {
        cluster.restart_node(killed);
        cluster
    })
    .await
    .unwrap();
    // A write may fail on a connection that the restart broke (its outcome is unknown,
    // so it is not resent), as `Unavailable`; the next one takes a new connection.
    let deadline = Instant::now() + Duration::from_secs(2);
    loop {
        match cache.set("after", "restart", None).await {
            Ok(()) => break,
            Err(err @ (CacheError::Unavailable { .. } | CacheError::Timeout { .. }))
                if Instant::now() < deadline =>
            {
                eprintln!("a write after the restart failed: {err}");
            }
            Err(err) => panic!("writes fail after the killed node restarted: {err:?}"),
        }
    }
    drop(cluster_back);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_primary_is_followed_to_its_replica_within_the_deadline() {
    kill_a_primary_under_load(true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_full_coverage_other_slots_never_fail_while_a_primary_is_down() {
    kill_a_primary_under_load(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_live_resharding_of_1000_slots_fails_no_call_and_returns_no_wrong_value() {
    let _serial = SERIAL.lock().await;
    let cluster = start(RedisCluster::builder()).await;
    let cache = cache(&cluster, "");
    let load = Load::start(&cache, 64, 32);
    assert!(load.wait_for_calls(2_000, Duration::from_secs(30)).await);
    let primaries = cluster.primary_ports();
    let (from, to) = (primaries[0], primaries[1]);
    let started = Instant::now();
    let outcome = tokio::task::spawn_blocking(move || {
        let outcome = cluster.reshard(from, to, 1_000);
        (cluster, outcome)
    })
    .await
    .unwrap();
    let (cluster, outcome) = outcome;
    outcome.unwrap_or_else(|err| panic!("the resharding failed: {err}"));
    eprintln!("1000 slots resharded in {:?}", started.elapsed());
    assert!(load.wait_for_calls(2_000, Duration::from_secs(30)).await);
    let report = load.stop().await;
    print_report("resharding", &report);
    assert_eq!(
        report.wrong + report.stale,
        0,
        "{:?}",
        report.wrong_examples
    );
    assert_eq!(report.failed(), 0, "{:?}", report.errors);
    // The slots moved and the cache serves them from their new owner.
    let moved = cluster
        .slot_ranges()
        .into_iter()
        .filter(|(_, port)| *port == to)
        .map(|(range, _)| range.count())
        .sum::<usize>();
    assert!(moved >= 1_000 + 5_000, "{moved}");
    assert!(
        write_every_slot(&cache, Duration::from_secs(5))
            .await
            .is_empty()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_manual_failover_returns_no_wrong_value() {
    let _serial = SERIAL.lock().await;
    let cluster = start(RedisCluster::builder()).await;
    let cache = cache(&cluster, "");
    let load = Load::start(&cache, 64, 32);
    assert!(load.wait_for_calls(2_000, Duration::from_secs(30)).await);
    let primary = cluster.primary_for_slot(key_slot("load-0-0"));
    let replica = cluster
        .replica_of(primary)
        .expect("the primary has a replica");
    let took = tokio::task::spawn_blocking(move || {
        let took = cluster.failover(replica);
        (cluster, took)
    })
    .await
    .unwrap();
    let (_cluster, took) = took;
    eprintln!("CLUSTER FAILOVER took {took:?}");
    assert!(load.wait_for_calls(2_000, Duration::from_secs(30)).await);
    let report = load.stop().await;
    print_report("CLUSTER FAILOVER", &report);
    assert_eq!(
        report.wrong + report.stale,
        0,
        "{:?}",
        report.wrong_examples
    );
    assert_eq!(report.unexpected_errors(), 0, "{:?}", report.errors);
    assert!(
        write_every_slot(&cache, Duration::from_secs(5))
            .await
            .is_empty()
    );
}

/// The `GET` calls a node served, from `INFO commandstats`.
fn gets_served(cluster: &RedisCluster, port: u16) -> u64 {
    let stats = cluster.cli(port, &["INFO", "commandstats"]);
    stats
        .lines()
        .find_map(|line| line.strip_prefix("cmdstat_get:calls="))
        .and_then(|rest| rest.split(',').next())
        .map_or(0, |n| n.parse().unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_serve_reads_when_asked_to() {
    let _serial = SERIAL.lock().await;
    let cluster = start(RedisCluster::builder()).await;
    let cache = RedisCache::builder()
        .url(cluster.url())
        .read_from_replicas(true)
        .timeout(TIMEOUT)
        .build()
        .unwrap();
    let keys: Vec<String> = (0..200).map(|i| format!("r{i}")).collect();
    for key in &keys {
        cache.set(key, key, None).await.unwrap();
    }
    // Redis lists a replica in `CLUSTER SLOTS` only once it has replicated something; the
    // cache asks again a second later.
    tokio::time::sleep(Duration::from_millis(1_200)).await;
    cache.get("any").await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    // Replicas lag their primaries a little: read until every write is visible.
    let deadline = Instant::now() + Duration::from_secs(5);
    for key in &keys {
        loop {
            match cache.get(key).await.unwrap() {
                Some(value) => {
                    assert_eq!(&value, key);
                    break;
                }
                None if Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
                None => panic!("{key} never became visible"),
            }
        }
    }
    let on_replicas: u64 = cluster
        .replica_ports()
        .into_iter()
        .map(|port| gets_served(&cluster, port))
        .sum();
    let on_primaries: u64 = cluster
        .primary_ports()
        .into_iter()
        .map(|port| gets_served(&cluster, port))
        .sum();
    eprintln!("GETs served: {on_replicas} by replicas, {on_primaries} by primaries");
    assert!(on_replicas >= 50, "{on_replicas} GETs on replicas");
}

/// The least-privilege rules of the README for a cluster: every operation works, replica
/// reads included.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_acl_user_with_the_readme_rules_can_use_every_operation_on_a_cluster() {
    let _serial = SERIAL.lock().await;
    let rules = "traces on >pw resetkeys ~traces:* resetchannels -@all +get +mget +set \
                 +unlink +scan +ping +cluster|slots +asking +readonly";
    let cluster = start(RedisCluster::builder().config("user", rules)).await;
    let url = cluster
        .url()
        .replace("redis+cluster://", "redis+cluster://traces:pw@");
    let cache = RedisCache::builder()
        .url(url)
        .namespace("traces:")
        .read_from_replicas(true)
        .timeout(TIMEOUT)
        .build()
        .unwrap();
    cache.ping().await.unwrap();
    let entries: Vec<(String, String)> =
        (0..100).map(|i| (format!("k{i}"), i.to_string())).collect();
    cache
        .set_many(&entries, Some(Duration::from_secs(60)))
        .await
        .unwrap();
    cache.set("one", "1", None).await.unwrap();
    let keys: Vec<&String> = entries.iter().map(|(k, _)| k).collect();
    // Replicas may lag: a read that misses is asked again.
    let deadline = Instant::now() + Duration::from_secs(5);
    while cache
        .get_many(&keys)
        .await
        .unwrap()
        .iter()
        .any(Option::is_none)
    {
        assert!(Instant::now() < deadline, "the writes never became visible");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    cache.delete_many(&keys).await.unwrap();
    cache.delete("one").await.unwrap();
    cache.set("two", "2", None).await.unwrap();
    cache.clear().await.unwrap();
    for port in cluster.primary_ports() {
        assert_eq!(cluster.cli(port, &["DBSIZE"]).trim(), "0");
    }
}
