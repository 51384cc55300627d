//! The three groups of the issue: what each compares, set up and run.

use cache_memory::{AnyCache, MemoryCache};
use cache_redis::RedisCache;
use redis::aio::MultiplexedConnection;
use redis_test_server::RedisServer;

use crate::batches::{CacheBatches, RawBatches};
use crate::hit_ratio::{self, HitRatio};
use crate::memory;
use crate::options::Options;
use crate::redis_benchmark::{self, RedisBenchmark};
use crate::report::Series;
use crate::stores::{
    BytesStore, CacheStore, CheckoutPerOp, MokaStore, MutexMap, RawDashMap, RawRedis,
};
use crate::throughput::{Case, Subject, run_group};
use crate::workload::{KEYS, Result, Workload};
use crate::zipf::Zipf;

/// Group and case names, shared by the tables and the targets.
pub(crate) mod names {
    /// The in-process group.
    pub(crate) const IN_PROCESS: &str = "in-process";
    /// The Redis group.
    pub(crate) const REDIS: &str = "redis";
    /// The Redis batch group.
    pub(crate) const REDIS_BATCHES: &str = "redis batches";
    /// The hit-ratio group.
    pub(crate) const HIT_RATIO: &str = "hit ratio";
    /// The memory-per-entry group.
    pub(crate) const MEMORY: &str = "memory";

    /// `MemoryCache`, static dispatch.
    pub(crate) const MEMORY_CACHE: &str = "MemoryCache";
    /// `MemoryCache` read with `get_bytes`.
    pub(crate) const MEMORY_BYTES: &str = "MemoryCache get_bytes";
    /// `AnyCache` over `MemoryCache`.
    pub(crate) const ANY_CACHE: &str = "AnyCache over MemoryCache";
    /// moka, the in-process anchor for speed and hit ratio.
    pub(crate) const MOKA: &str = "moka future::Cache";
    /// The raw map, the in-process limit.
    pub(crate) const DASHMAP: &str = "raw DashMap";
    /// The original design.
    pub(crate) const MUTEX: &str = "Mutex<HashMap> (original design)";
    /// `RedisCache` with its defaults.
    pub(crate) const REDIS_CACHE: &str = "RedisCache";
    /// One raw redis-rs connection, the Redis anchor.
    pub(crate) const RAW_REDIS: &str = "raw MultiplexedConnection";
    /// redis-benchmark without pipelining.
    pub(crate) const REDIS_BENCHMARK: &str = "redis-benchmark -c 64";
    /// redis-benchmark with 16 commands per pipeline.
    pub(crate) const REDIS_BENCHMARK_P16: &str = "redis-benchmark -c 64 -P 16";
    /// `RedisCache::get_many`/`set_many` of 100 keys.
    pub(crate) const CACHE_BATCHES: &str = "RedisCache get_many/set_many of 100";
    /// `MGET`/pipelined `SET` of 100 keys on one raw connection.
    pub(crate) const RAW_BATCHES: &str = "raw MGET/pipelined SET of 100";
}

use names::*;

/// Builds a case's subject, only when the case is selected.
type MakeSubject = fn() -> Subject;

/// Interleaved rounds of the in-process caches; `None` when none is selected.
pub(crate) async fn in_process(opts: &Options, work: &Workload) -> Result<Option<Vec<Series>>> {
    let candidates: [(&str, MakeSubject); 6] = [
        (MEMORY_CACHE, || {
            Subject::Memory(CacheStore(MemoryCache::new()))
        }),
        (MEMORY_BYTES, || {
            Subject::MemoryBytes(BytesStore(MemoryCache::new()))
        }),
        (ANY_CACHE, || {
            Subject::Any(CacheStore(AnyCache::new(MemoryCache::new())))
        }),
        (MOKA, || {
            Subject::Moka(MokaStore(crate::stores::moka_cache(None)))
        }),
        (DASHMAP, || Subject::Dash(RawDashMap::default())),
        (MUTEX, || Subject::Mutex(MutexMap::default())),
    ];
    let mut cases = Vec::new();
    for (name, make) in candidates {
        if opts.selects(IN_PROCESS, name) {
            let case = Case::new(name, make());
            case.subject.populate(work).await?;
            cases.push(case);
        }
    }
    if cases.is_empty() {
        return Ok(None);
    }
    run_group(IN_PROCESS, &cases, work, opts.rounds, opts.secs)
        .await
        .map(Some)
}

/// The extra Redis cases of `--extended`.
const EXTENDED: [&str; 3] = [
    "RedisCache pool_size 2",
    "RedisCache pool_size 4",
    "deadpool-redis, checkout per operation",
];

/// The Redis cases the options select, in the order they run.
fn redis_cases(opts: &Options) -> Vec<&'static str> {
    let extended = if opts.extended { &EXTENDED[..] } else { &[] };
    [RAW_REDIS, REDIS_CACHE]
        .iter()
        .chain(extended)
        .chain(&[REDIS_BENCHMARK, REDIS_BENCHMARK_P16])
        .copied()
        .filter(|name| opts.selects(REDIS, name))
        .collect()
}

/// The batch cases the options select, in the order they run.
fn batch_cases(opts: &Options) -> Vec<&'static str> {
    [RAW_BATCHES, CACHE_BATCHES, REDIS_BENCHMARK_P16]
        .into_iter()
        .filter(|name| opts.selects(REDIS_BATCHES, name))
        .collect()
}

/// Fails before anything runs when a selected Redis case needs a program that is missing.
pub(crate) fn check_redis_programs(opts: &Options) -> Result<()> {
    let cases: Vec<_> = redis_cases(opts)
        .into_iter()
        .chain(batch_cases(opts))
        .collect();
    if !cases.is_empty() {
        redis_benchmark::require("redis-server")?;
    }
    if cases.iter().any(|name| name.starts_with("redis-benchmark")) {
        redis_benchmark::require("redis-benchmark")?;
    }
    Ok(())
}

/// Batches of 100 keys against a private redis-server of their own, in interleaved rounds;
/// `None` when no batch case is selected.
pub(crate) async fn redis_batches(opts: &Options, work: &Workload) -> Result<Option<Vec<Series>>> {
    let selected = batch_cases(opts);
    if selected.is_empty() {
        return Ok(None);
    }
    let (server, raw) = populated_server(work).await?;
    let url = server.url();
    let mut cases = Vec::new();
    for name in selected {
        let subject = match name {
            RAW_BATCHES => Subject::RawBatches(RawBatches::new(raw.clone(), work.shared_keys())),
            CACHE_BATCHES => Subject::Batches(CacheBatches::new(
                RedisCache::from_url(url.as_str())?,
                work.shared_keys(),
            )),
            _ => Subject::External(RedisBenchmark::new(
                server.port(),
                Some(16),
                opts.set_percent,
            )),
        };
        cases.push(Case::new(name, subject));
    }
    let series = run_group(REDIS_BATCHES, &cases, work, opts.rounds, opts.secs).await;
    drop(cases);
    drop(server);
    series.map(Some)
}

/// Interleaved rounds against a private redis-server, started here when a Redis case is
/// selected; `None` when none is.
pub(crate) async fn redis(opts: &Options, work: &Workload) -> Result<Option<Vec<Series>>> {
    let selected = redis_cases(opts);
    if selected.is_empty() {
        return Ok(None);
    }
    let (server, raw) = populated_server(work).await?;
    let url = server.url();
    let cache = |pool_size| {
        RedisCache::builder()
            .url(url.as_str())
            .pool_size(pool_size)
            .build()
    };
    let mut cases = Vec::new();
    for name in selected {
        let subject = match name {
            RAW_REDIS => Subject::RawRedis(RawRedis(raw.clone())),
            REDIS_CACHE => Subject::Redis(CacheStore(RedisCache::from_url(url.as_str())?)),
            REDIS_BENCHMARK => {
                Subject::External(RedisBenchmark::new(server.port(), None, opts.set_percent))
            }
            REDIS_BENCHMARK_P16 => Subject::External(RedisBenchmark::new(
                server.port(),
                Some(16),
                opts.set_percent,
            )),
            "RedisCache pool_size 2" => Subject::Redis(CacheStore(cache(2)?)),
            "RedisCache pool_size 4" => Subject::Redis(CacheStore(cache(4)?)),
            _ => Subject::Checkout(CheckoutPerOp(
                deadpool_redis::Config::from_url(url.as_str())
                    .create_pool(Some(deadpool_redis::Runtime::Tokio1))?,
            )),
        };
        cases.push(Case::new(name, subject));
    }
    let series = run_group(REDIS, &cases, work, opts.rounds, opts.secs).await;
    // The caches close their connections before the server goes.
    drop(cases);
    drop(server);
    series.map(Some)
}

/// A private redis-server holding the harness's keys, and a raw connection to it.
async fn populated_server(work: &Workload) -> Result<(RedisServer, MultiplexedConnection)> {
    let server = RedisServer::start();
    let mut raw = redis::Client::open(server.url())?
        .get_multiplexed_async_connection()
        .await?;
    populate_redis(&mut raw, work).await?;
    Ok((server, raw))
}

/// Writes the 100,000 keys `key:{n}` of the harness and the 100,000 keys `key:{n:012}` that
/// redis-benchmark's `__rand_int__` names, in pipelines of 1,000.
async fn populate_redis(
    conn: &mut redis::aio::MultiplexedConnection,
    work: &Workload,
) -> Result<()> {
    for start in (0..KEYS).step_by(1000) {
        let mut pipe = redis::pipe();
        for n in start..(start + 1000).min(KEYS) {
            pipe.cmd("SET")
                .arg(&work.keys()[n])
                .arg(work.value())
                .ignore();
            pipe.cmd("SET")
                .arg(format!("key:{n:012}"))
                .arg(work.value())
                .ignore();
        }
        pipe.query_async::<()>(conn).await?;
    }
    Ok(())
}

/// A hit-ratio result: the case, its ratio, and how many entries it held at the end.
#[derive(Debug, Clone)]
pub(crate) struct HitResult {
    /// The case.
    pub(crate) name: &'static str,
    /// Hits among the measured accesses.
    pub(crate) ratio: HitRatio,
    /// Entries held after the stream (moka after `run_pending_tasks`).
    pub(crate) entries: u64,
}

/// `MemoryCache` and moka, both bounded to 100,000 entries, on the same Zipf stream.
pub(crate) async fn hit_ratios(opts: &Options) -> Result<Vec<HitResult>> {
    let mut results = Vec::new();
    let want_memory = opts.selects(HIT_RATIO, MEMORY_CACHE);
    let want_moka = opts.selects(HIT_RATIO, MOKA);
    if !want_memory && !want_moka {
        return Ok(results);
    }
    let zipf = Zipf::new(hit_ratio::UNIVERSE, hit_ratio::EXPONENT);
    if want_memory {
        let cache = MemoryCache::builder()
            .max_capacity(hit_ratio::CAPACITY)
            .build()?;
        let ratio = hit_ratio::measure(&CacheStore(cache.clone()), &zipf, async || ()).await?;
        eprintln!("[{HIT_RATIO}] {MEMORY_CACHE}: {:.2}%", ratio.percent());
        results.push(HitResult {
            name: MEMORY_CACHE,
            ratio,
            entries: cache.entry_count() as u64,
        });
    }
    if want_moka {
        let cache = crate::stores::moka_cache(Some(hit_ratio::CAPACITY as u64));
        let settle = async || cache.run_pending_tasks().await;
        let ratio = hit_ratio::measure(&MokaStore(cache.clone()), &zipf, settle).await?;
        cache.run_pending_tasks().await;
        eprintln!("[{HIT_RATIO}] {MOKA}: {:.2}%", ratio.percent());
        results.push(HitResult {
            name: MOKA,
            ratio,
            entries: cache.entry_count(),
        });
    }
    Ok(results)
}

/// Bytes per entry of each memory case, each in a child process.
pub(crate) fn memory_per_entry(opts: &Options) -> Result<Vec<(&'static str, f64)>> {
    let mut results = Vec::new();
    for (id, name) in memory::CASES {
        if opts.selects(MEMORY, name) {
            let bytes = memory::measure(id)?;
            eprintln!("[{MEMORY}] {name}: {bytes:.0} bytes per entry");
            results.push((name, bytes));
        }
    }
    Ok(results)
}
