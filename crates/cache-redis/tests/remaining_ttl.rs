//! `get_bytes_with_ttl` and its batch form `get_many_bytes_with_ttl`: the value and the time
//! it has left, read in one round trip (one per chunk for a batch), on one server and on a
//! cluster.

use std::collections::BTreeSet;
use std::time::Duration;

use cache_redis::{AnyCache, Bytes, Cache, RedisCache, Ttl};
use redis_test_server::{RedisCluster, RedisServer, key_slot};
use tokio::sync::Mutex;

/// One cluster at a time in this binary.
static SERIAL: Mutex<()> = Mutex::const_new(());

/// Checks what `cache` reports for a key with a 10 s TTL, one without expiry, one whose TTL
/// was removed by an overwrite, and a missing one; every key under `prefix`.
async fn reports_the_time_left<C: Cache>(cache: &C, prefix: &str) {
    let key = |name: &str| format!("{prefix}{name}");
    cache
        .set(&key("ten"), "10 s", Some(Duration::from_secs(10)))
        .await
        .unwrap();
    cache.set(&key("forever"), "no ttl", None).await.unwrap();
    cache
        .set(&key("persisted"), "ttl", Some(Duration::from_secs(10)))
        .await
        .unwrap();
    cache.set(&key("persisted"), "no ttl", None).await.unwrap();

    let (value, ttl) = cache
        .get_bytes_with_ttl(&key("ten"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(value, Bytes::from("10 s"));
    match ttl {
        Ttl::Remaining(left) => assert!(
            left > Duration::from_secs(9) && left <= Duration::from_secs(10),
            "a 10 s TTL read back at once has {left:?} left"
        ),
        other => panic!("a 10 s TTL read back as {other:?}"),
    }
    assert_eq!(
        cache.get_bytes_with_ttl(&key("forever")).await.unwrap(),
        Some((Bytes::from("no ttl"), Ttl::Never))
    );
    assert_eq!(
        cache.get_bytes_with_ttl(&key("persisted")).await.unwrap(),
        Some((Bytes::from("no ttl"), Ttl::Never))
    );
    assert_eq!(
        cache.get_bytes_with_ttl(&key("missing")).await.unwrap(),
        None
    );

    // The batch says the same, in the order asked, a key asked twice answered twice.
    let asked = ["ten", "missing", "forever", "persisted", "ten"].map(key);
    let batch = cache.get_many_bytes_with_ttl(&asked).await.unwrap();
    assert_eq!(batch.len(), asked.len());
    for i in [0, 4] {
        let (value, ttl) = batch[i].clone().unwrap();
        assert_eq!(value, Bytes::from("10 s"));
        assert!(
            matches!(ttl, Ttl::Remaining(left) if left > Duration::from_secs(9) && left <= Duration::from_secs(10)),
            "a 10 s TTL read back by a batch as {ttl:?}"
        );
    }
    assert_eq!(batch[1], None);
    assert_eq!(batch[2], Some((Bytes::from("no ttl"), Ttl::Never)));
    assert_eq!(batch[3], Some((Bytes::from("no ttl"), Ttl::Never)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_remaining_ttl_comes_with_the_value_on_one_server() {
    let server = RedisServer::start();
    let cache = RedisCache::builder()
        .url(server.url())
        .namespace("ttl:")
        .build()
        .unwrap();
    reports_the_time_left(&cache, "").await;
    // Reads, counted as `get` counts them: three hits and a miss, then four and one in the
    // batch.
    let stats = cache.stats();
    assert_eq!((stats.hits, stats.misses), (7, 2), "{stats:?}");

    // Through `AnyCache`, which must forward the override rather than say `Unknown`.
    reports_the_time_left(&AnyCache::new(cache.clone()), "any-").await;

    // An expired entry is a miss here too.
    cache
        .set("short", "v", Some(Duration::from_millis(20)))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(cache.get_bytes_with_ttl("short").await.unwrap(), None);

    // The namespace applies: the stored key is `ttl:ten`.
    let bare = RedisCache::from_url(server.url()).unwrap();
    assert_eq!(bare.get_bytes_with_ttl("ten").await.unwrap(), None);
    assert!(bare.get_bytes_with_ttl("ttl:ten").await.unwrap().is_some());

    cache.close().await.unwrap();
    assert!(cache.get_bytes_with_ttl("ten").await.is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_remaining_ttl_comes_with_the_value_on_a_cluster() {
    let _serial = SERIAL.lock().await;
    let cluster =
        tokio::task::spawn_blocking(|| RedisCluster::builder().replicas_per_primary(0).start())
            .await
            .unwrap();
    let cache = RedisCache::builder()
        .url(cluster.url())
        .namespace("ttl:")
        .build()
        .unwrap();
    let prefixes = ["a-", "b-", "c-", "d-", "e-"];
    for prefix in prefixes {
        reports_the_time_left(&cache, prefix).await;
    }
    // The keys were served by more than one node.
    let nodes: BTreeSet<u16> = prefixes
        .iter()
        .map(|prefix| cluster.primary_for_slot(key_slot(format!("ttl:{prefix}ten"))))
        .collect();
    assert!(nodes.len() > 1, "{nodes:?}");
    let stats = cache.stats();
    assert_eq!((stats.hits, stats.misses), (35, 10), "{stats:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_with_ttls_crosses_chunks_in_key_order() {
    let server = RedisServer::start();
    let cache = RedisCache::builder()
        .url(server.url())
        .namespace("ttl-chunks:")
        .build()
        .unwrap();
    // More than two chunks of 1,000 keys; every third key is missing, every other one
    // written has a TTL.
    let keys: Vec<String> = (0..2_500).map(|i| format!("k{i}")).collect();
    for (i, key) in keys.iter().enumerate().filter(|(i, _)| i % 3 != 0) {
        let ttl = (i % 2 == 0).then_some(Duration::from_secs(60));
        cache.set(key, &format!("v{i}"), ttl).await.unwrap();
    }
    let before = cache.stats();
    let batch = cache.get_many_bytes_with_ttl(&keys).await.unwrap();
    assert_eq!(batch.len(), keys.len());
    for (i, entry) in batch.iter().enumerate() {
        match entry {
            None => assert_eq!(i % 3, 0, "key {i} was written"),
            Some((value, ttl)) => {
                assert_ne!(i % 3, 0, "key {i} was never written");
                assert_eq!(*value, Bytes::from(format!("v{i}")));
                if i % 2 == 0 {
                    assert!(
                        matches!(ttl, Ttl::Remaining(left) if *left <= Duration::from_secs(60)),
                        "{ttl:?}"
                    );
                } else {
                    assert_eq!(*ttl, Ttl::Never);
                }
            }
        }
    }
    let after = cache.stats();
    let missing = keys.len().div_ceil(3) as u64;
    assert_eq!(after.hits - before.hits, keys.len() as u64 - missing);
    assert_eq!(after.misses - before.misses, missing);
    let none: [&str; 0] = [];
    assert!(
        cache
            .get_many_bytes_with_ttl(&none)
            .await
            .unwrap()
            .is_empty()
    );
}
