//! `RedisCache` on a master found through Redis Sentinel (1 master, 1 replica, 3 sentinels,
//! private, on free loopback ports): the conformance suite, credentials, and the cache
//! followed through a failover.

mod load;

use std::time::{Duration, Instant};

use cache_core::testkit;
use cache_redis::{AnyCache, Cache, RedisCache};
use redis_test_server::{RedisSentinels, RedisSentinelsBuilder};
use tokio::sync::Mutex;

use crate::load::Load;

/// One set of sentinels at a time.
static SERIAL: Mutex<()> = Mutex::const_new(());

const TIMEOUT: Duration = Duration::from_millis(500);

async fn start(builder: RedisSentinelsBuilder) -> RedisSentinels {
    tokio::task::spawn_blocking(move || builder.start())
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_conformance_suite_passes_through_sentinels() {
    let _serial = SERIAL.lock().await;
    let sentinels = start(RedisSentinels::builder()).await;
    let cache = RedisCache::builder()
        .url(sentinels.url())
        .namespace("conformance:")
        .build()
        .unwrap();
    testkit::run_all(cache).await;
    let any = RedisCache::builder()
        .sentinel(sentinels.master_name(), sentinels.sentinel_urls())
        .build()
        .unwrap();
    testkit::run_all(AnyCache::new(any)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credentials_of_the_master_and_of_the_sentinels_are_used_and_never_printed() {
    let _serial = SERIAL.lock().await;
    let sentinels = start(
        RedisSentinels::builder()
            .password("data-s3cret")
            .sentinel_password("sentinel-s3cret"),
    )
    .await;
    let cache = RedisCache::builder()
        .sentinel(sentinels.master_name(), sentinels.sentinel_urls())
        .password("data-s3cret")
        .sentinel_credentials(None, "sentinel-s3cret")
        .timeout(TIMEOUT)
        .build()
        .unwrap();
    cache.set("k", "v", None).await.unwrap();
    assert_eq!(cache.get("k").await.unwrap().as_deref(), Some("v"));
    let printed = format!("{cache:?}");
    assert!(
        !printed.contains("data-s3cret") && !printed.contains("sentinel-s3cret"),
        "{printed}"
    );
    // Wrong sentinel credentials: a clear error, without either password.
    let refused = RedisCache::builder()
        .sentinel(sentinels.master_name(), sentinels.sentinel_urls())
        .password("data-s3cret")
        .sentinel_credentials(None, "not-the-pw")
        .timeout(TIMEOUT)
        .build()
        .unwrap();
    let err = refused.get("k").await.unwrap_err();
    let printed = format!("{err} {err:?}");
    assert!(
        !printed.contains("not-the-pw") && !printed.contains("data-s3cret"),
        "{printed}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_master_name_is_a_clear_error() {
    let _serial = SERIAL.lock().await;
    let sentinels = start(RedisSentinels::builder()).await;
    let cache = RedisCache::builder()
        .sentinel("no-such-master", sentinels.sentinel_urls())
        .timeout(TIMEOUT)
        .build()
        .unwrap();
    let err = cache.get("k").await.unwrap_err();
    assert!(err.to_string().contains("master"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_sentinel_failover_writes_reach_the_new_master_within_5_s() {
    let _serial = SERIAL.lock().await;
    let sentinels = start(RedisSentinels::builder()).await;
    let cache = RedisCache::builder()
        .url(sentinels.url())
        .namespace("fo:")
        .timeout(TIMEOUT)
        .build()
        .unwrap();
    let load = Load::start(&cache, 64, 16);
    assert!(load.wait_for_calls(2_000, Duration::from_secs(30)).await);
    let old_master = sentinels.master_port();
    let (sentinels, took) = tokio::task::spawn_blocking(move || {
        let took = sentinels.failover();
        (sentinels, took)
    })
    .await
    .unwrap();
    let switched = Instant::now();
    let new_master = sentinels.master_port();
    assert_ne!(old_master, new_master);
    eprintln!("SENTINEL FAILOVER switched masters in {took:?}");
    // A write of this cache lands on the new master within 5 s of the switch.
    let mut reached = None;
    let mut n = 0u64;
    while switched.elapsed() < Duration::from_secs(5) {
        n += 1;
        let value = format!("probe-{n}");
        if cache.set("probe", &value, None).await.is_ok() {
            let on_new = sentinels.cli(new_master, &["GET", "fo:probe"]);
            if on_new.trim() == value {
                reached = Some(switched.elapsed());
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let reached = reached.expect("no write reached the new master within 5 s of the switch");
    eprintln!("writes reached the new master {reached:?} after the switch");
    assert!(load.wait_for_calls(2_000, Duration::from_secs(30)).await);
    let report = load.stop().await;
    eprintln!(
        "load: {} calls, {} failed {:?}, {} wrong, {} stale (writes the old master took after \
         the promotion, lost), longest {:?}",
        report.calls,
        report.failed(),
        report.errors,
        report.wrong,
        report.stale,
        report.longest
    );
    assert_eq!(report.wrong, 0, "{:?}", report.wrong_examples);
    assert_eq!(report.unexpected_errors(), 0, "{:?}", report.errors);
    assert!(report.longest <= TIMEOUT.mul_f64(1.5) + Duration::from_millis(100));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_demoted_master_answering_readonly_makes_the_cache_find_the_new_one() {
    let _serial = SERIAL.lock().await;
    let sentinels = start(RedisSentinels::builder()).await;
    let cache = RedisCache::builder()
        .url(sentinels.url())
        .timeout(TIMEOUT)
        .build()
        .unwrap();
    cache.set("k", "before", None).await.unwrap();
    let old_master = sentinels.master_port();
    let (sentinels, _took) = tokio::task::spawn_blocking(move || {
        let took = sentinels.failover();
        (sentinels, took)
    })
    .await
    .unwrap();
    // Demote the old master as the sentinels will (they do it only once they see it again,
    // up to 10 s later), without closing its clients: its connections answer READONLY.
    let new_master = sentinels.master_port();
    sentinels.cli(
        old_master,
        &["REPLICAOF", "127.0.0.1", &new_master.to_string()],
    );
    let role = sentinels.cli(old_master, &["ROLE"]);
    assert!(role.contains("slave"), "{role}");
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        match cache.set("k", "after", None).await {
            Ok(()) => break,
            Err(err) if Instant::now() < deadline => {
                eprintln!("while failing over: {err}");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(err) => panic!("writes still fail 5 s after the failover: {err}"),
        }
    }
    let new_master = sentinels.master_port();
    assert_eq!(sentinels.cli(new_master, &["GET", "k"]).trim(), "after");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_replica_serves_reads_when_asked_to() {
    let _serial = SERIAL.lock().await;
    let sentinels = start(RedisSentinels::builder()).await;
    let cache = RedisCache::builder()
        .url(sentinels.url())
        .read_from_replicas(true)
        .timeout(TIMEOUT)
        .build()
        .unwrap();
    cache.set("k", "v", None).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    while cache.get("k").await.unwrap().is_none() {
        assert!(
            Instant::now() < deadline,
            "the write never reached the replica"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let stats = sentinels.cli(sentinels.replica_port(), &["INFO", "commandstats"]);
    assert!(stats.contains("cmdstat_get:calls="), "{stats}");
    let on_master = sentinels.cli(sentinels.master_port(), &["INFO", "commandstats"]);
    assert!(!on_master.contains("cmdstat_get:"), "{on_master}");
}

/// The least-privilege rules of the README for the data nodes behind sentinels.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_acl_user_with_the_readme_rules_can_use_every_operation_behind_sentinels() {
    let _serial = SERIAL.lock().await;
    let rules = "traces on >pw resetkeys ~traces:* resetchannels -@all +get +mget +set \
                 +unlink +scan +ping +role";
    let sentinels = start(RedisSentinels::builder().config("user", rules)).await;
    let cache = RedisCache::builder()
        .sentinel(sentinels.master_name(), sentinels.sentinel_urls())
        .username("traces")
        .password("pw")
        .namespace("traces:")
        .timeout(TIMEOUT)
        .build()
        .unwrap();
    cache.ping().await.unwrap();
    cache
        .set_many(&[("a", "1"), ("b", "2")], None)
        .await
        .unwrap();
    assert_eq!(
        cache.get_many(&["a", "b", "c"]).await.unwrap(),
        [Some("1".to_owned()), Some("2".to_owned()), None]
    );
    cache.delete_many(&["a"]).await.unwrap();
    cache.delete("b").await.unwrap();
    cache.set("c", "3", None).await.unwrap();
    cache.clear().await.unwrap();
    assert_eq!(cache.get("c").await.unwrap(), None);
}
