//! Quickstart: a cache in front of a slow lookup, with the backend chosen at run time.
//!
//! Run it from the repository root with `cargo run --example quickstart`. It uses the
//! in-memory backend, or Redis when `REDIS_URL` is set
//! (`REDIS_URL=redis://127.0.0.1:6379/0 cargo run --example quickstart`); on Redis its keys
//! live under the namespace `quickstart:`.

use std::error::Error;
use std::time::{Duration, Instant};

use cache_core::{AnyCache, Cache, CacheExt, Result};
use cache_memory::MemoryCache;
use cache_redis::RedisCache;

/// The backend for this run: Redis when `REDIS_URL` is set, else in-process memory bounded
/// to 10,000 entries.
fn choose_backend() -> Result<AnyCache> {
    match std::env::var("REDIS_URL") {
        Ok(url) if !url.is_empty() => Ok(AnyCache::new(
            RedisCache::builder()
                .url(url)
                .namespace("quickstart:")
                .build()?,
        )),
        _ => Ok(AnyCache::new(
            MemoryCache::builder().max_capacity(10_000).build()?,
        )),
    }
}

/// Stands in for a database or service call worth caching.
async fn load_trace(id: u32) -> std::io::Result<String> {
    tokio::time::sleep(Duration::from_millis(50)).await;
    Ok(format!("{{\"trace_id\":{id},\"spans\":12}}"))
}

/// Read-through: the cached value if there is one, else load it (once, however many tasks
/// ask at the same time) and keep it for a minute.
async fn trace(cache: &impl CacheExt, id: u32) -> Result<String> {
    cache
        .get_or_set_with(
            &format!("trace:{id}"),
            Some(Duration::from_secs(60)),
            || load_trace(id),
        )
        .await
}

#[tokio::main]
async fn main() -> std::result::Result<(), Box<dyn Error>> {
    let cache = choose_backend()?;
    println!("backend: {cache:?}");

    for attempt in ["first (miss)", "second (hit)"] {
        let start = Instant::now();
        let value = trace(&cache, 42).await?;
        println!("{attempt:>13}: {value} in {:.1?}", start.elapsed());
    }

    // A stampede: 100 requests for one missing trace at once run one load between them.
    let start = Instant::now();
    let requests: Vec<_> = (0..100)
        .map(|_| {
            let cache = cache.clone();
            tokio::spawn(async move { trace(&cache, 7).await })
        })
        .collect();
    for request in requests {
        request.await??;
    }
    println!(
        "100 concurrent requests for trace 7: {:.1?}",
        start.elapsed()
    );

    let traces = cache.get_many(&["trace:42", "trace:7", "trace:1"]).await?;
    println!("get_many of traces 42, 7 and 1: {traces:?}");

    cache
        .set("greeting", "hello", Some(Duration::from_millis(100)))
        .await?;
    println!("greeting now: {:?}", cache.get("greeting").await?);
    tokio::time::sleep(Duration::from_millis(150)).await;
    println!(
        "greeting after its 100 ms ttl: {:?}",
        cache.get("greeting").await?
    );

    cache.delete("trace:42").await?;
    println!("trace:42 after delete: {:?}", cache.get("trace:42").await?);

    match cache.set("bad", "ttl", Some(Duration::ZERO)).await {
        Err(err) => println!("a zero ttl is refused: {err}"),
        Ok(()) => return Err("a zero ttl was accepted".into()),
    }

    let stats = cache.stats();
    println!(
        "stats: {} hits, {} misses, {} sets, hit ratio {:.2}",
        stats.hits,
        stats.misses,
        stats.sets,
        stats.hit_ratio().unwrap_or(0.0)
    );

    cache.close().await?;
    println!("after close: {}", cache.get("greeting").await.unwrap_err());
    Ok(())
}
