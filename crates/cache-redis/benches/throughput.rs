//! `RedisCache` against one raw redis-rs `MultiplexedConnection` shared by the same tasks, side
//! by side in one run on a private redis-server.
//!
//! `cargo bench -p cache-redis --bench throughput` (env `BENCH_ROUNDS`, default 15, and
//! `BENCH_SECS` per case and round, default 0.6: many short rounds, so that a noisy host
//! slows each pair alike). 64 tasks on a 2-worker tokio runtime, 90% GET
//! / 10% SET with a 300 s TTL over 100,000 pre-populated keys `key:{n}` with 100-byte values,
//! fixed seeds. Rounds interleave the cases; the table shows each case's median round and
//! the median of its per-round ratios to the anchor. `BENCH_ONLY`
//! keeps the cases whose name contains it.

use std::time::{Duration, Instant};

use cache_redis::{Cache, RedisCache};
use redis::aio::MultiplexedConnection;
use redis_test_server::RedisServer;

const KEYS: u64 = 100_000;
const TASKS: usize = 64;
const TTL: Duration = Duration::from_secs(300);

#[derive(Clone)]
enum Target {
    Raw(MultiplexedConnection),
    /// deadpool-redis used as its docs show: a connection checked out per operation.
    Checkout(deadpool_redis::Pool),
    Cache(RedisCache),
}

impl Target {
    async fn get(&mut self, key: &str) -> Option<String> {
        match self {
            Self::Raw(conn) => redis::cmd("GET")
                .arg(key)
                .query_async::<Option<String>>(conn)
                .await
                .expect("raw GET"),
            Self::Checkout(pool) => redis::cmd("GET")
                .arg(key)
                .query_async::<Option<String>>(&mut pool.get().await.expect("checkout"))
                .await
                .expect("pooled GET"),
            Self::Cache(cache) => cache.get(key).await.expect("cache get"),
        }
    }

    async fn set(&mut self, key: &str, value: &str) {
        match self {
            Self::Raw(conn) => redis::cmd("SET")
                .arg(key)
                .arg(value)
                .arg("PX")
                .arg(TTL.as_millis() as u64)
                .query_async::<()>(conn)
                .await
                .expect("raw SET"),
            Self::Checkout(pool) => redis::cmd("SET")
                .arg(key)
                .arg(value)
                .arg("PX")
                .arg(TTL.as_millis() as u64)
                .query_async::<()>(&mut pool.get().await.expect("checkout"))
                .await
                .expect("pooled SET"),
            Self::Cache(cache) => cache.set(key, value, Some(TTL)).await.expect("cache set"),
        }
    }
}

/// xorshift64*: a fixed-seed stream of key numbers and operation choices.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
}

struct Round {
    ops_per_sec: f64,
    p50: Duration,
    p99: Duration,
}

async fn round(target: &Target, secs: f64, seed: u64) -> Round {
    let value = "v".repeat(100);
    let run_for = Duration::from_secs_f64(secs);
    let tasks: Vec<_> = (0..TASKS)
        .map(|task| {
            let mut target = target.clone();
            let value = value.clone();
            tokio::spawn(async move {
                let mut rng = Rng(seed ^ ((task as u64 + 1) * 0x9e37_79b9_7f4a_7c15));
                let mut latencies = Vec::with_capacity(1 << 16);
                let started = Instant::now();
                while started.elapsed() < run_for {
                    let key = format!("key:{}", rng.next() % KEYS);
                    let op = Instant::now();
                    if rng.next().is_multiple_of(10) {
                        target.set(&key, &value).await;
                    } else {
                        std::hint::black_box(target.get(&key).await);
                    }
                    latencies.push(op.elapsed());
                }
                (latencies, started.elapsed())
            })
        })
        .collect();
    let mut all = Vec::new();
    let mut elapsed = Duration::ZERO;
    for task in tasks {
        let (latencies, took) = task.await.expect("bench task");
        all.extend(latencies);
        elapsed = elapsed.max(took);
    }
    all.sort_unstable();
    Round {
        ops_per_sec: all.len() as f64 / elapsed.as_secs_f64(),
        p50: all[all.len() / 2],
        p99: all[all.len() * 99 / 100],
    }
}

fn env(name: &str, default: f64) -> f64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() {
    let rounds = env("BENCH_ROUNDS", 15.0) as usize;
    let secs = env("BENCH_SECS", 0.6);
    let server = RedisServer::start();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");
    runtime.block_on(async {
        let mut raw = redis::Client::open(server.url())
            .expect("url")
            .get_multiplexed_async_connection()
            .await
            .expect("raw connection");
        let value = "v".repeat(100);
        for chunk in (0..KEYS).collect::<Vec<_>>().chunks(1000) {
            let mut pipe = redis::pipe();
            for n in chunk {
                pipe.cmd("SET").arg(format!("key:{n}")).arg(&value).ignore();
            }
            pipe.query_async::<()>(&mut raw).await.expect("populate");
        }
        let cache = |pool_size| {
            Target::Cache(
                RedisCache::builder()
                    .url(server.url())
                    .pool_size(pool_size)
                    .build()
                    .expect("cache"),
            )
        };
        let cases = [
            ("raw MultiplexedConnection (anchor)", Target::Raw(raw.clone())),
            ("RedisCache (default, pool_size 1)", cache(cache_redis::DEFAULT_POOL_SIZE)),
            ("RedisCache pool_size 2", cache(2)),
            ("RedisCache pool_size 4", cache(4)),
            (
                "deadpool-redis, checkout per operation",
                Target::Checkout(
                    deadpool_redis::Config::from_url(server.url())
                        .create_pool(Some(deadpool_redis::Runtime::Tokio1))
                        .expect("pool"),
                ),
            ),
        ];
        // `BENCH_ONLY=pool_size 1` keeps the cases whose name contains it (for profiling).
        let only = std::env::var("BENCH_ONLY").unwrap_or_default();
        let cases: Vec<_> = cases
            .into_iter()
            .filter(|(name, _)| name.contains(only.as_str()))
            .collect();
        // Warm-up: open every connection.
        for (_, target) in &cases {
            round(target, 0.2, 1).await;
        }
        let mut results: Vec<Vec<Round>> = cases.iter().map(|_| Vec::new()).collect();
        for r in 0..rounds {
            for (i, (name, target)) in cases.iter().enumerate() {
                let result = round(target, secs, 42 + r as u64).await;
                eprintln!(
                    "round {}/{rounds} {name}: {:.0} ops/s",
                    r + 1,
                    result.ops_per_sec
                );
                results[i].push(result);
            }
        }
        // The ratio of each round to the anchor's run in the same round, then the median: a
        // noisy host slows both sides of a pair alike.
        let ratios: Vec<f64> = results
            .iter()
            .map(|case| {
                let mut per_round: Vec<f64> = case
                    .iter()
                    .zip(&results[0])
                    .map(|(c, a)| c.ops_per_sec / a.ops_per_sec)
                    .collect();
                per_round.sort_by(f64::total_cmp);
                per_round[per_round.len() / 2]
            })
            .collect();
        let medians: Vec<&Round> = results
            .iter_mut()
            .map(|rounds| {
                rounds.sort_by(|a, b| a.ops_per_sec.total_cmp(&b.ops_per_sec));
                &rounds[rounds.len() / 2]
            })
            .collect();
        println!(
            "\n{TASKS} tasks, 2 workers, 90% GET / 10% SET PX, {KEYS} keys, 100-byte values; median of {rounds} rounds of {secs} s\n"
        );
        println!("| case | ops/s | p50 | p99 | vs raw (median of per-round ratios) |");
        println!("|---|---:|---:|---:|---:|");
        for (((name, _), m), ratio) in cases.iter().zip(&medians).zip(&ratios) {
            println!(
                "| {name} | {:.0} | {:.0?} | {:.0?} | {:.2}x |",
                m.ops_per_sec,
                m.p50,
                m.p99,
                ratio
            );
        }
    });
}
