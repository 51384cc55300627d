//! The three groups of the issue: what each compares, set up and run.

use std::path::PathBuf;

use cache_memory::{AnyCache, MemoryCache};
use cache_redis::RedisCache;
use redis::aio::MultiplexedConnection;
use redis_test_server::RedisServer;

use crate::batches::{CacheBatches, RawBatches};
use crate::chart;
use crate::hit_ratio::{self, CACHES, Kind, Replay};
use crate::memory;
use crate::options::Options;
use crate::redis_benchmark::{self, RedisBenchmark};
use crate::report::Series;
use crate::stores::{
    BytesStore, CacheStore, CheckoutPerOp, MokaStore, MutexMap, RawDashMap, RawRedis,
    install_prometheus, memory_cache, plain_memory_cache,
};
use crate::throughput::{Case, Subject, run_group};
use crate::traces::{ACCESSES, SPECS, Shape, Trace, TraceSpec, key_name};
use crate::workload::{KEYS, Result, Workload};

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
    /// `MemoryCache` with metrics published to a Prometheus recorder.
    pub(crate) const MEMORY_METRICS: &str = "MemoryCache with metrics";
    /// `MemoryCache` with a capacity that holds every key of the workload.
    pub(crate) const MEMORY_BOUNDED: &str = "MemoryCache, max_capacity 100,000";
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
    let candidates: [(&str, MakeSubject); 8] = [
        (MEMORY_CACHE, || {
            Subject::Memory(CacheStore(plain_memory_cache()))
        }),
        (MEMORY_METRICS, || {
            // The feature's whole cost: sampled timings into a real recorder, and the
            // counts published every second by the cache's task.
            install_prometheus();
            let cache = MemoryCache::builder()
                .name("bench")
                .build()
                .expect("a name is valid");
            Subject::Memory(CacheStore(cache))
        }),
        (MEMORY_BOUNDED, || {
            // Room for every key: what the policy's bookkeeping costs, without misses.
            let cache = memory_cache()
                .max_capacity(KEYS)
                .build()
                .expect("a capacity above zero is valid");
            Subject::Memory(CacheStore(cache))
        }),
        (MEMORY_BYTES, || {
            Subject::MemoryBytes(BytesStore(plain_memory_cache()))
        }),
        (ANY_CACHE, || {
            Subject::Any(CacheStore(AnyCache::new(plain_memory_cache())))
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

/// The hit-ratio group: the table's rows, the replay rates and the chart's curves.
#[derive(Debug, Default)]
pub(crate) struct HitRatios {
    /// One row per trace of [`SPECS`], at full size.
    pub(crate) rows: Vec<HitRow>,
    /// Single-task replay rates (accesses/s) on the Zipf 0.7 trace: the median of
    /// [`REPLAY_ROUNDS`] interleaved rounds, by cache.
    pub(crate) replay: Vec<(Kind, f64)>,
    /// Where the chart was written.
    pub(crate) chart: Option<PathBuf>,
}

/// The hit ratios of the caches on one trace.
#[derive(Debug)]
pub(crate) struct HitRow {
    /// The trace.
    pub(crate) spec: TraceSpec,
    /// Each selected cache's replay.
    pub(crate) results: Vec<(Kind, Replay)>,
}

impl HitRow {
    /// The hit ratio of `kind`, if it ran.
    pub(crate) fn percent(&self, kind: Kind) -> Option<f64> {
        self.results
            .iter()
            .find(|(k, _)| *k == kind)
            .map(|(_, r)| r.percent())
    }
}

/// The name of the replay-rate comparison, for `--only`.
pub(crate) const REPLAY_CASE: &str = "replay of Zipf 0.7: MemoryCache / quick_cache";
/// Rounds of the replay-rate comparison.
pub(crate) const REPLAY_ROUNDS: usize = 3;
/// Capacities of the chart, in percent of a trace's keys.
pub(crate) const CHART_CAPACITIES: [f64; 7] = [1.0, 2.0, 5.0, 10.0, 20.0, 35.0, 50.0];
/// The chart's traces are the table's at a tenth of the keys, with this many accesses.
pub(crate) const CHART_ACCESSES: usize = 1_000_000;

/// The six traces against every selected bounded cache, the replay rates, and the chart.
pub(crate) async fn hit_ratios(opts: &Options) -> Result<HitRatios> {
    let kinds = CACHES;
    let mut group = HitRatios::default();
    for spec in SPECS {
        let selected =
            |kind: &Kind| opts.selects(HIT_RATIO, &format!("{}: {}", spec.name, kind.name()));
        let want_replay = spec.shape == Shape::Zipf(0.7) && opts.selects(HIT_RATIO, REPLAY_CASE);
        if !kinds.iter().any(selected) && !want_replay {
            continue;
        }
        let trace = Trace::new(spec.shape, spec.keys, ACCESSES);
        let names: Vec<String> = (0..trace.distinct).map(key_name).collect();
        let mut row = HitRow {
            spec,
            results: Vec::new(),
        };
        for kind in kinds.into_iter().filter(selected) {
            let result = hit_ratio::replay(kind, &trace, &names, spec.capacity).await?;
            eprintln!(
                "[{HIT_RATIO}] {}: {}: {:.2}% ({:.2}M accesses/s)",
                spec.name,
                kind.name(),
                result.percent(),
                result.rate / 1e6
            );
            row.results.push((kind, result));
        }
        if want_replay {
            group.replay = replay_rates(&spec, &trace, &names).await?;
        }
        if !row.results.is_empty() {
            group.rows.push(row);
        }
    }
    let chart_kinds: Vec<Kind> = kinds
        .iter()
        .copied()
        .filter(|kind| opts.selects(HIT_RATIO, &format!("chart: {}", kind.name())))
        .collect();
    if chart_kinds.is_empty() {
        return Ok(group);
    }
    let mut curves: Vec<chart::Panel> = Vec::new();
    for spec in SPECS {
        // One panel per shape: the table's rows that differ only in capacity share it.
        let title = chart::panel_title(&spec);
        if curves.iter().any(|panel| panel.title == title) {
            continue;
        }
        let keys = spec.keys / 10;
        let trace = Trace::new(spec.shape, keys, CHART_ACCESSES);
        let names: Vec<String> = (0..trace.distinct).map(key_name).collect();
        let mut lines = Vec::new();
        for &kind in &chart_kinds {
            let mut points = Vec::new();
            for percent in CHART_CAPACITIES {
                let capacity = ((keys as f64 * percent / 100.0) as usize).max(1);
                let result = hit_ratio::replay(kind, &trace, &names, capacity).await?;
                points.push((percent, result.percent()));
            }
            eprintln!(
                "[{HIT_RATIO}] chart: {}: {}: {points:.1?}",
                spec.name,
                kind.name()
            );
            lines.push((kind, points));
        }
        curves.push(chart::Panel { title, lines });
    }
    let path = opts.chart.clone();
    chart::write(&path, &curves)?;
    eprintln!("[{HIT_RATIO}] chart written to {}", path.display());
    group.chart = Some(path);
    Ok(group)
}

/// Replay rates of `MemoryCache` and quick_cache on `trace`, in interleaved rounds.
async fn replay_rates(
    spec: &TraceSpec,
    trace: &Trace,
    names: &[String],
) -> Result<Vec<(Kind, f64)>> {
    let compared = [Kind::MemoryCache, Kind::QuickCache];
    let mut rates = vec![Vec::new(); compared.len()];
    for _ in 0..REPLAY_ROUNDS {
        for (i, &kind) in compared.iter().enumerate() {
            rates[i].push(
                hit_ratio::replay(kind, trace, names, spec.capacity)
                    .await?
                    .rate,
            );
        }
    }
    Ok(compared
        .into_iter()
        .zip(rates)
        .map(|(kind, mut rates)| {
            rates.sort_by(f64::total_cmp);
            (kind, rates[rates.len() / 2])
        })
        .collect())
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
