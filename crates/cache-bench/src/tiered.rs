//! The tiered group (issue 14): `TieredCache` (a bounded `MemoryCache` in front of a
//! `RedisCache`) beside `RedisCache` alone and a bounded `MemoryCache` alone, on keys drawn
//! from a Zipf distribution over 1,000,000 keys, with one private redis-server.

use std::time::{Duration, Instant};

use cache_memory::{Cache, MemoryCache};
use cache_redis::{RedisBackplane, RedisCache};
use cache_tiered::TieredCache;
use futures_util::future::try_join_all;
use redis_test_server::RedisServer;

use crate::groups::names::{MEMORY_BOUNDED, REDIS_CACHE};
use crate::options::Options;
use crate::redis_benchmark;
use crate::report::Series;
use crate::stores::{CacheStore, memory_cache};
use crate::throughput::{Case, Subject, run_group};
use crate::traces::{Shape, Trace};
use crate::workload::{Result, TTL, Workload};

/// The group.
pub(crate) const TIERED: &str = "tiered";
/// `TieredCache` over a bounded `MemoryCache` and a `RedisCache`.
pub(crate) const TIERED_CACHE: &str = "TieredCache";
/// Distinct keys, all written to Redis before the rounds.
pub(crate) const KEYS: usize = 1_000_000;
/// The exponent of the Zipf distribution the keys are drawn from.
pub(crate) const EXPONENT: f64 = 0.99;
/// Entries the L1 of `TieredCache`, and the `MemoryCache` alone, hold at most.
pub(crate) const CAPACITY: usize = 100_000;
/// How long L1 keeps a value it read from L2 or wrote.
pub(crate) const L1_TTL: Duration = Duration::from_secs(180);
/// Key numbers in the sequence the tasks follow, each from its own random place: more than
/// any case's 64 tasks get through in a round, 4 bytes each.
pub(crate) const SEQUENCE: usize = 4_000_000;
/// Keys per `set_many` while Redis is populated (the cache sends them 1,000 per pipeline).
const POPULATE_BATCH: usize = 10_000;
/// Operations the cases with a bounded cache (the L1 of `TieredCache`, the `MemoryCache`
/// alone; both start empty) run untimed before the rounds, so that the rounds see their
/// steady hit ratio: more than the hit-ratio group's warm-up of 600,000 accesses.
pub(crate) const WARM_UP_OPS: u64 = 1_000_000;
/// The longest a warm-up runs on a slow machine.
const WARM_UP_LONGEST: Duration = Duration::from_secs(8);
/// `set_many` calls in flight at once while Redis is populated.
const POPULATE_CONCURRENCY: usize = 4;

/// The tiered case's cache: with `RedisBackplane`, as a deployment runs it, each write also
/// publishes an invalidation on the cache's channel, which this one instance receives and
/// ignores as its own.
pub(crate) type TieredOverRedis = TieredCache<MemoryCache, RedisCache, RedisBackplane>;

/// The cases the options select, in the order they run.
fn cases(opts: &Options) -> Vec<&'static str> {
    [REDIS_CACHE, TIERED_CACHE, MEMORY_BOUNDED]
        .into_iter()
        .filter(|name| opts.selects(TIERED, name))
        .collect()
}

/// Whether a selected case needs the redis-server.
fn needs_redis(cases: &[&str]) -> bool {
    cases.iter().any(|&name| name != MEMORY_BOUNDED)
}

/// Fails before anything runs when a selected case needs `redis-server` and it is missing.
pub(crate) fn check_programs(opts: &Options) -> Result<()> {
    if needs_redis(&cases(opts)) {
        redis_benchmark::require("redis-server")?;
    }
    Ok(())
}

/// The group in interleaved rounds, on one private redis-server started here when a case
/// that needs it is selected; empty when no case is.
pub(crate) async fn run(opts: &Options) -> Result<Vec<Series>> {
    let selected = cases(opts);
    if selected.is_empty() {
        return Ok(Vec::new());
    }
    let started = Instant::now();
    let sequence =
        tokio::task::spawn_blocking(|| Trace::new(Shape::Zipf(EXPONENT), KEYS, SEQUENCE))
            .await?
            .accesses;
    let work = Workload::with_sequence(KEYS, sequence, opts.set_percent)?;
    eprintln!(
        "[{TIERED}] {SEQUENCE} Zipf {EXPONENT} key numbers and {KEYS} key names made in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    let server = needs_redis(&selected).then(RedisServer::start);
    let url = server.as_ref().map(RedisServer::url).unwrap_or_default();
    if server.is_some() {
        let started = Instant::now();
        populate(&RedisCache::from_url(url.as_str())?, &work).await?;
        eprintln!(
            "[{TIERED}] {KEYS} keys written to Redis in {:.1} s",
            started.elapsed().as_secs_f64()
        );
    }
    let mut cases = Vec::new();
    for name in selected {
        let subject = match name {
            REDIS_CACHE => Subject::Redis(CacheStore(RedisCache::from_url(url.as_str())?)),
            TIERED_CACHE => {
                let l1 = memory_cache().max_capacity(CAPACITY).build()?;
                let l2 = RedisCache::from_url(url.as_str())?;
                let backplane = RedisBackplane::for_cache(&l2);
                let mut builder = TieredCache::builder(l1, l2)
                    .backplane(backplane)
                    .l1_ttl(L1_TTL);
                if let Some(reads) = opts.reads_in_flight {
                    eprintln!("[{TIERED}] TieredCache with l2_reads_in_flight {reads}");
                    builder = builder.l2_reads_in_flight(reads);
                }
                let cache = builder.build()?;
                Subject::Tiered(CacheStore(cache))
            }
            _ => {
                let cache = memory_cache().max_capacity(CAPACITY).build()?;
                Subject::Bounded(CacheStore(cache))
            }
        };
        if name != REDIS_CACHE {
            let started = Instant::now();
            let ops = subject.warm_up(&work, WARM_UP_OPS, WARM_UP_LONGEST).await?;
            eprintln!(
                "[{TIERED}] {name} warmed up with {ops} operations in {:.1} s",
                started.elapsed().as_secs_f64()
            );
        }
        cases.push(Case::new(name, subject));
    }
    let series = run_group(TIERED, &cases, &work, opts.rounds, opts.secs).await;
    // The caches close their connections before the server goes.
    drop(cases);
    drop(server);
    series
}

/// Writes every key of `work` with the workload's TTL through `cache`, [`POPULATE_BATCH`]
/// keys per `set_many`, [`POPULATE_CONCURRENCY`] of them at a time.
async fn populate(cache: &RedisCache, work: &Workload) -> Result<()> {
    for group in work.keys().chunks(POPULATE_BATCH * POPULATE_CONCURRENCY) {
        try_join_all(group.chunks(POPULATE_BATCH).map(|chunk| async move {
            let entries: Vec<(&str, &str)> = chunk
                .iter()
                .map(|key| (key.as_str(), work.value()))
                .collect();
            cache.set_many(&entries, Some(TTL)).await
        }))
        .await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::options::Parsed;

    fn options(args: &[&str]) -> Options {
        match Options::parse(args.iter().map(|a| a.to_string())) {
            Ok(Parsed::Run(opts)) => opts,
            other => panic!("should parse: {other:?}"),
        }
    }

    #[test]
    fn the_default_run_has_all_three_cases_on_one_server() {
        let selected = cases(&options(&[]));
        assert_eq!(selected, [REDIS_CACHE, TIERED_CACHE, MEMORY_BOUNDED]);
        assert!(needs_redis(&selected));
    }

    #[test]
    fn the_memory_case_alone_starts_no_server() {
        let selected = cases(&options(&["--only", "tiered: MemoryCache"]));
        assert_eq!(selected, [MEMORY_BOUNDED]);
        assert!(!needs_redis(&selected));
    }
}
