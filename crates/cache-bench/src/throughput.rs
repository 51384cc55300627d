//! The throughput groups: cases run in interleaved rounds, then summarised as [`Series`].

use std::time::{Duration, Instant};

use cache_memory::{AnyCache, Cache, MemoryCache};
use cache_redis::RedisCache;

use crate::batches::{BATCH, CacheBatches, RawBatches, RawClusterBatches};
use crate::histogram::Histogram;
use crate::redis_benchmark::RedisBenchmark;
use crate::report::{Series, format_percent, median};
use crate::stores::{
    BytesStore, CacheStore, CheckoutPerOp, MokaStore, MutexMap, RawCluster, RawDashMap, RawRedis,
};
use crate::tiered::TieredOverRedis;
use crate::workload::{self, Result, Workload};

/// How long each case runs, untimed, before the first round: connections open, maps grow.
const WARM_UP: Duration = Duration::from_millis(200);
/// The seed of round `r` is `SEED + r`, the same for every case of the round.
const SEED: u64 = 42;

/// What a case measures.
#[derive(Debug)]
pub(crate) enum Subject {
    /// `MemoryCache` through `Cache` with static dispatch.
    Memory(CacheStore<MemoryCache>),
    /// A `MemoryCache` with a capacity below the key space, through `Cache` with static
    /// dispatch; its hits are counted.
    Bounded(CacheStore<MemoryCache>),
    /// `TieredCache` over a bounded `MemoryCache` and a `RedisCache`, static dispatch; its
    /// L1 hits are counted.
    Tiered(CacheStore<TieredOverRedis>),
    /// `MemoryCache` through `get_bytes`/`set_bytes`, static dispatch.
    MemoryBytes(BytesStore<MemoryCache>),
    /// `AnyCache` (boxed futures) over a `MemoryCache`.
    Any(CacheStore<AnyCache>),
    /// moka `future::Cache` with per-entry expiry.
    Moka(MokaStore),
    /// A bare `DashMap` with expiry times.
    Dash(RawDashMap),
    /// One `tokio::sync::Mutex<HashMap>`.
    Mutex(MutexMap),
    /// `RedisCache` through `Cache` with static dispatch, on one server or a cluster.
    Redis(CacheStore<RedisCache>),
    /// One raw redis-rs `MultiplexedConnection`.
    RawRedis(RawRedis),
    /// One raw redis-rs cluster `ClusterConnection`.
    RawCluster(RawCluster),
    /// deadpool-redis with a checkout per operation.
    Checkout(CheckoutPerOp),
    /// `RedisCache` moving 100 keys per call; its rate counts keys.
    Batches(CacheBatches),
    /// The same batches on one raw connection; its rate counts keys.
    RawBatches(RawBatches),
    /// The same batches on one raw cluster connection; its rate counts keys.
    RawClusterBatches(RawClusterBatches),
    /// The `redis-benchmark` tool.
    External(RedisBenchmark),
}

/// A named case of a group.
#[derive(Debug)]
pub(crate) struct Case {
    /// As printed.
    pub(crate) name: String,
    /// What it runs.
    pub(crate) subject: Subject,
}

impl Case {
    /// A case named `name`.
    pub(crate) fn new(name: impl Into<String>, subject: Subject) -> Self {
        Self {
            name: name.into(),
            subject,
        }
    }
}

/// The latency record of one round.
#[derive(Debug)]
enum Latency {
    /// Sampled by the harness.
    Sampled(Histogram),
    /// Percentiles reported by an external tool.
    Reported { p50: Duration, p99: Duration },
}

/// Reads served in process so far, of all reads, as a case counts them.
#[derive(Debug, Clone, Copy, Default)]
struct Reads {
    /// Reads served in process: a bounded cache's hits, a tiered cache's L1 hits.
    hits: u64,
    /// All reads.
    total: u64,
    /// A tiered cache's batches of L2 reads, and the reads they carried.
    batches: u64,
    batched: u64,
}

impl Subject {
    /// Writes the workload's keys (for the in-process cases; a Redis group populates its
    /// server or cluster once for all cases, the tiered case included).
    pub(crate) async fn populate(&self, work: &Workload) -> Result<()> {
        match self {
            Self::Memory(s) | Self::Bounded(s) => workload::populate(s, work).await,
            Self::MemoryBytes(s) => workload::populate(s, work).await,
            Self::Any(s) => workload::populate(s, work).await,
            Self::Moka(s) => workload::populate(s, work).await,
            Self::Dash(s) => workload::populate(s, work).await,
            Self::Mutex(s) => workload::populate(s, work).await,
            Self::Redis(_)
            | Self::Tiered(_)
            | Self::RawRedis(_)
            | Self::RawCluster(_)
            | Self::Checkout(_)
            | Self::Batches(_)
            | Self::RawBatches(_)
            | Self::RawClusterBatches(_)
            | Self::External(_) => Ok(()),
        }
    }

    /// Runs the workload untimed, in rounds of a quarter second, until `ops` operations are
    /// done or `longest` has passed: a cache whose content follows the reads (a bounded or
    /// tiered cache) then starts the measured rounds near its steady hit ratio. Returns the
    /// operations done.
    pub(crate) async fn warm_up(
        &self,
        work: &Workload,
        ops: u64,
        longest: Duration,
    ) -> Result<u64> {
        let started = Instant::now();
        let mut done = 0.0;
        let mut seed = SEED.wrapping_mul(1_000);
        while done < ops as f64 && started.elapsed() < longest {
            let (rate, _) = self.round(work, 0.25, seed).await?;
            done += rate * 0.25;
            seed += 1;
        }
        Ok(done as u64)
    }

    /// One round of `secs` seconds: ops/s and latencies.
    async fn round(&self, work: &Workload, secs: f64, seed: u64) -> Result<(f64, Latency)> {
        let run_for = Duration::from_secs_f64(secs);
        let mut round = match self {
            Self::Memory(s) | Self::Bounded(s) => workload::round(s, work, run_for, seed).await?,
            Self::Tiered(s) => workload::round(s, work, run_for, seed).await?,
            Self::MemoryBytes(s) => workload::round(s, work, run_for, seed).await?,
            Self::Any(s) => workload::round(s, work, run_for, seed).await?,
            Self::Moka(s) => workload::round(s, work, run_for, seed).await?,
            Self::Dash(s) => workload::round(s, work, run_for, seed).await?,
            Self::Mutex(s) => workload::round(s, work, run_for, seed).await?,
            Self::Redis(s) => workload::round(s, work, run_for, seed).await?,
            Self::RawRedis(s) => workload::round(s, work, run_for, seed).await?,
            Self::RawCluster(s) => workload::round(s, work, run_for, seed).await?,
            Self::Checkout(s) => workload::round(s, work, run_for, seed).await?,
            Self::Batches(s) => workload::round(s, work, run_for, seed).await?,
            Self::RawBatches(s) => workload::round(s, work, run_for, seed).await?,
            Self::RawClusterBatches(s) => workload::round(s, work, run_for, seed).await?,
            Self::External(tool) => {
                let out = tool.round(secs)?;
                let latency = Latency::Reported {
                    p50: out.p50,
                    p99: out.p99,
                };
                return Ok((out.ops_per_sec, latency));
            }
        };
        if matches!(
            self,
            Self::Batches(_) | Self::RawBatches(_) | Self::RawClusterBatches(_)
        ) {
            // Keys moved, as redis-benchmark counts them.
            round.ops *= BATCH as u64;
        }
        Ok((round.ops_per_sec(), Latency::Sampled(round.latencies)))
    }

    /// The reads served in process so far, for the cases that count them.
    fn reads(&self) -> Option<Reads> {
        match self {
            Self::Bounded(s) => {
                let stats = s.0.stats();
                Some(Reads {
                    hits: stats.hits,
                    total: stats.hits + stats.misses,
                    ..Reads::default()
                })
            }
            Self::Tiered(s) => {
                let stats = s.0.tiered_stats();
                Some(Reads {
                    hits: stats.l1_hits,
                    total: stats.l1_hits + stats.l2_hits + stats.misses,
                    batches: stats.l2_batches,
                    batched: stats.l2_batched_reads,
                })
            }
            _ => None,
        }
    }
}

/// Runs `cases` in `rounds` interleaved rounds of `secs` each, after one warm-up round per
/// case, printing a progress line per case and round to stderr.
///
/// Latencies: percentiles over every sampled operation of every round; for an external tool,
/// the median over rounds of the percentiles it reports. The cases that count their reads
/// served in process (a bounded or tiered cache) have their hit ratio over the measured
/// rounds, the warm-up left out.
pub(crate) async fn run_group(
    group: &str,
    cases: &[Case],
    work: &Workload,
    rounds: usize,
    secs: f64,
) -> Result<Vec<Series>> {
    for case in cases {
        case.subject
            .round(work, WARM_UP.as_secs_f64(), SEED - 1)
            .await?;
    }
    let mut per_case: Vec<(Vec<f64>, Vec<Latency>, Option<Reads>)> = cases
        .iter()
        .map(|case| {
            (
                Vec::new(),
                Vec::new(),
                case.subject.reads().map(|_| Reads::default()),
            )
        })
        .collect();
    for r in 0..rounds {
        for (case, (rates, latencies, reads)) in cases.iter().zip(&mut per_case) {
            let before = case.subject.reads();
            let (rate, latency) = case.subject.round(work, secs, SEED + r as u64).await?;
            let mut served = String::new();
            if let (Some(sum), Some(before), Some(after)) = (reads, before, case.subject.reads()) {
                let (hits, total) = (after.hits - before.hits, after.total - before.total);
                sum.hits += hits;
                sum.total += total;
                if total > 0 {
                    served = format!(
                        ", {} of reads in process",
                        format_percent(hits as f64 / total as f64)
                    );
                }
                let batches = after.batches - before.batches;
                if batches > 0 {
                    let batched = after.batched - before.batched;
                    let misses = total - hits;
                    served += &format!(
                        ", {batched} of {misses} L2 reads in {batches} batches ({:.1} a batch)",
                        batched as f64 / batches as f64
                    );
                }
            }
            eprintln!(
                "[{group}] round {}/{rounds} {}: {rate:.0} ops/s{served}",
                r + 1,
                case.name
            );
            rates.push(rate);
            latencies.push(latency);
        }
    }
    Ok(cases
        .iter()
        .zip(per_case)
        .map(|(case, (rounds, latencies, reads))| {
            let (p50, p99) = summarise(&latencies);
            Series {
                name: case.name.clone(),
                rounds,
                p50,
                p99,
                hit_ratio: reads
                    .filter(|reads| reads.total > 0)
                    .map(|reads| reads.hits as f64 / reads.total as f64),
            }
        })
        .collect())
}

/// p50 and p99 of a case over its rounds.
fn summarise(latencies: &[Latency]) -> (Duration, Duration) {
    let mut merged = Histogram::default();
    let mut reported: (Vec<f64>, Vec<f64>) = (Vec::new(), Vec::new());
    for latency in latencies {
        match latency {
            Latency::Sampled(h) => merged.merge(h),
            Latency::Reported { p50, p99 } => {
                reported.0.push(p50.as_secs_f64());
                reported.1.push(p99.as_secs_f64());
            }
        }
    }
    if merged.len() > 0 {
        (merged.quantile(0.5), merged.quantile(0.99))
    } else if reported.0.is_empty() {
        (Duration::ZERO, Duration::ZERO)
    } else {
        (
            Duration::from_secs_f64(median(&reported.0)),
            Duration::from_secs_f64(median(&reported.1)),
        )
    }
}
