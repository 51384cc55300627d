//! Replays the hit-ratio group's Zipf 0.7 trace (1M keys, 3M accesses, capacity 100k) on one
//! cache, chosen by the first argument, for instruction counts: the same accesses as the
//! bench's "replay of Zipf 0.7" case (get, and set on a miss), in one thread, without the
//! rest of the harness.
//!
//! ```text
//! cargo build --release -p cache-bench --example replay_ab
//! valgrind --tool=cachegrind --cache-sim=yes target/release/examples/replay_ab memory
//! valgrind --tool=cachegrind --cache-sim=yes target/release/examples/replay_ab quick_cache
//! valgrind --tool=cachegrind target/release/examples/replay_ab none
//! ```
//!
//! `none` builds the trace and the key names and replays nothing: its count is the setup to
//! subtract from the others' before dividing by the accesses. A second argument replays
//! the trace that many times (on one cache, warm after the first).

use std::time::Instant;

use cache_memory::{Bytes, Cache, MemoryCache};

/// Keys the trace draws from.
const KEYS: usize = 1_000_000;
/// Accesses of the trace.
const ACCESSES: usize = 3_000_000;
/// Entries the cache holds at most.
const CAPACITY: usize = 100_000;
/// The Zipf exponent.
const EXPONENT: f64 = 0.7;
/// The bench's seed and value size.
const SEED: u64 = 0x5eed_0013;
const VALUE_LEN: usize = 100;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let kind = args.next().unwrap_or_else(|| "memory".to_owned());
    let passes: usize = args.next().map_or(Ok(1), |n| n.parse())?;
    let trace = trace();
    let names: Vec<String> = (0..KEYS).map(|n| format!("key:{n}")).collect();
    let value = Bytes::from(vec![b'v'; VALUE_LEN]);
    // A runtime with timers, as the bench's: `MemoryCache` runs its sweep task (idle here)
    // instead of reclaiming on each write.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()?;
    let started = Instant::now();
    let hits = runtime.block_on(async {
        let mut hits = 0;
        match kind.as_str() {
            "memory" => {
                let cache = MemoryCache::builder().max_capacity(CAPACITY).build()?;
                for key in (0..passes).flat_map(|_| &trace) {
                    let key = names[*key as usize].as_str();
                    if cache.get_bytes(key).await?.is_some() {
                        hits += 1;
                    } else {
                        cache.set_bytes(key, value.clone(), None).await?;
                    }
                }
            }
            "quick_cache" => {
                let cache = quick_cache::sync::Cache::<String, Bytes>::new(CAPACITY);
                for key in (0..passes).flat_map(|_| &trace) {
                    let key = &names[*key as usize];
                    if cache.get(key.as_str()).is_some() {
                        hits += 1;
                    } else {
                        cache.insert(key.clone(), value.clone());
                    }
                }
            }
            "none" => {}
            other => {
                return Err(format!("unknown cache {other:?}: memory, quick_cache or none").into());
            }
        }
        Ok::<u64, Box<dyn std::error::Error>>(hits)
    })?;
    let accesses = passes * trace.len();
    let secs = started.elapsed().as_secs_f64();
    println!(
        "{kind}: {accesses} accesses, {:.2}% hits, {:.2}M accesses/s",
        100.0 * hits as f64 / accesses.max(1) as f64,
        accesses as f64 / secs / 1e6
    );
    Ok(())
}

/// The bench's Zipf 0.7 trace: xorshift64* from its seed, ranks drawn by binary search in
/// the cumulative distribution (crates/cache-bench/src/{rng,zipf,traces}.rs).
fn trace() -> Vec<u32> {
    let mut cdf = Vec::with_capacity(KEYS);
    let mut sum = 0.0;
    for k in 1..=KEYS {
        sum += 1.0 / (k as f64).powf(EXPONENT);
        cdf.push(sum);
    }
    for p in &mut cdf {
        *p /= sum;
    }
    if let Some(last) = cdf.last_mut() {
        *last = 1.0;
    }
    let mut state = SEED;
    (0..ACCESSES)
        .map(|_| {
            state ^= state >> 12;
            state ^= state << 25;
            state ^= state >> 27;
            let u = (state.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 11) as f64 / (1u64 << 53) as f64;
            let rank = cdf.partition_point(|&p| p <= u).min(KEYS - 1);
            u32::try_from(rank).unwrap_or(u32::MAX)
        })
        .collect()
}
