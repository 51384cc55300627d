//! Many tasks on shared connections: nothing lost, and cancelled calls never mix up replies.

use std::sync::Arc;
use std::time::Duration;

use cache_redis::{Cache, RedisCache};
use redis_test_server::RedisServer;
use tokio::sync::Barrier;

const WATCHDOG: Duration = Duration::from_secs(60);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_fifty_six_concurrent_writers_lose_nothing() {
    let server = RedisServer::start();
    let cache = RedisCache::builder()
        .url(server.url())
        .namespace("writers:")
        .build()
        .unwrap();
    let barrier = Arc::new(Barrier::new(256));
    let writers: Vec<_> = (0..256)
        .map(|task| {
            let (cache, barrier) = (cache.clone(), Arc::clone(&barrier));
            tokio::spawn(async move {
                barrier.wait().await;
                for i in 0..20 {
                    let ttl = (i % 2 == 0).then_some(Duration::from_secs(600));
                    cache
                        .set(&format!("{task}:{i}"), &format!("value {task} {i}"), ttl)
                        .await?;
                }
                cache_redis::Result::<()>::Ok(())
            })
        })
        .collect();
    tokio::time::timeout(WATCHDOG, async {
        for writer in writers {
            writer.await.unwrap().unwrap();
        }
    })
    .await
    .expect("256 writers did not finish within the watchdog");
    let mut lost = Vec::new();
    for task in 0..256 {
        for i in 0..20 {
            let got = cache.get(&format!("{task}:{i}")).await.unwrap();
            if got.as_deref() != Some(format!("value {task} {i}").as_str()) {
                lost.push((task, i, got));
            }
        }
    }
    assert!(
        lost.is_empty(),
        "{} writes lost: {:?}",
        lost.len(),
        &lost[..lost.len().min(5)]
    );
}

/// 2,000 operations each dropped right after its first poll, so its command may be in flight
/// on a shared connection when its future goes away; then every read of a known key must
/// still get that key's own value.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelled_calls_never_make_a_later_read_return_another_keys_value() {
    let server = RedisServer::start();
    let cache = RedisCache::builder()
        .url(server.url())
        .namespace("cancel:")
        .pool_size(2)
        .build()
        .unwrap();
    const KEYS: usize = 100;
    for k in 0..KEYS {
        cache
            .set(&format!("k{k}"), &format!("value of k{k}"), None)
            .await
            .unwrap();
    }

    tokio::time::timeout(WATCHDOG, async {
        let storm: Vec<_> = (0..8)
            .map(|task| {
                let cache = cache.clone();
                tokio::spawn(async move {
                    let mut cancelled = 0;
                    for i in 0..250 {
                        let k = (task * 250 + i) % KEYS;
                        let key = format!("k{k}");
                        let value = format!("value of k{k}");
                        // The op is polled once (it sends its command), then the ready
                        // branch wins and the op's future is dropped.
                        tokio::select! {
                            biased;
                            _ = async {
                                match i % 3 {
                                    0 => cache.get(&key).await.map(drop),
                                    // Rewrites the same value: whether it lands or not, the
                                    // expected value of the key stays the same.
                                    1 => cache.set(&key, &value, None).await,
                                    _ => cache.set(&format!("scratch{i}"), &"s".repeat(i * 100), None).await,
                                }
                            } => {}
                            () = std::future::ready(()) => cancelled += 1,
                        }
                    }
                    cancelled
                })
            })
            .collect();
        let mut cancelled = 0;
        for task in storm {
            cancelled += task.await.unwrap();
        }
        assert_eq!(cancelled, 2_000, "every call is dropped after its first poll");

        let mut wrong = Vec::new();
        for round in 0..3 {
            let reads: Vec<_> = (0..KEYS)
                .map(|k| {
                    let cache = cache.clone();
                    tokio::spawn(async move { (k, cache.get(&format!("k{k}")).await.unwrap()) })
                })
                .collect();
            for read in reads {
                let (k, got) = read.await.unwrap();
                if got.as_deref() != Some(format!("value of k{k}").as_str()) {
                    wrong.push((round, k, got));
                }
            }
        }
        assert!(wrong.is_empty(), "{} wrong values: {:?}", wrong.len(), &wrong[..wrong.len().min(5)]);
    })
    .await
    .expect("the cancellation test did not finish within the watchdog");
}
