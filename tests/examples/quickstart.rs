//! Quickstart: a cache in front of a slow lookup, with the backend chosen at run time.
//!
//! Run it from the repository root with `cargo run --example quickstart`. It uses the
//! in-memory backend, or Redis when `REDIS_URL` is set
//! (`REDIS_URL=redis://127.0.0.1:6379/0 cargo run --example quickstart`); on Redis its keys
//! live under the namespace `quickstart:`.

use std::error::Error;
use std::time::{Duration, Instant};

use cache_core::{AnyCache, Cache, Result};
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
async fn load_trace(id: u32) -> String {
    tokio::time::sleep(Duration::from_millis(50)).await;
    format!("{{\"trace_id\":{id},\"spans\":12}}")
}

/// Read-through: the cached value if there is one, else load it and keep it for a minute.
async fn trace(cache: &impl Cache, id: u32) -> Result<String> {
    let key = format!("trace:{id}");
    if let Some(hit) = cache.get(&key).await? {
        return Ok(hit);
    }
    let value = load_trace(id).await;
    cache
        .set(&key, &value, Some(Duration::from_secs(60)))
        .await?;
    Ok(value)
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

    cache.close().await?;
    println!("after close: {}", cache.get("greeting").await.unwrap_err());
    Ok(())
}
