//! The cluster groups (issue 12): `RedisCache` on a private Redis Cluster against one raw
//! redis-rs `ClusterConnection`, for single keys and for batches of 100 keys across slots.

use cache_redis::RedisCache;
use futures_util::future::try_join_all;
use redis::cluster::ClusterClient;
use redis::cluster_async::ClusterConnection;
use redis_test_server::RedisCluster;

use crate::batches::{CacheBatches, RawClusterBatches};
use crate::groups::names::{CACHE_BATCHES, REDIS_CACHE};
use crate::options::Options;
use crate::redis_benchmark;
use crate::report::Series;
use crate::stores::{CacheStore, RawCluster};
use crate::throughput::{Case, Subject, run_group};
use crate::workload::{Result, Workload};

/// The group of single-key operations on the cluster.
pub(crate) const CLUSTER: &str = "cluster";
/// The group of batches on the cluster.
pub(crate) const CLUSTER_BATCHES: &str = "cluster batches";
/// One raw redis-rs cluster connection, the cluster's anchor.
pub(crate) const RAW_CLUSTER: &str = "raw ClusterConnection";
/// `MGET` and per-slot pipelines of `SET` through the raw cluster connection.
pub(crate) const RAW_CLUSTER_BATCHES: &str = "raw MGET/per-slot pipelined SET of 100";
/// How the cluster is made, as the tables say it.
pub(crate) const SHAPE: &str = "3 primaries + 3 replicas, all on this machine";

/// Keys written per round trip of concurrent `SET`s while the cluster is populated.
const POPULATE_CHUNK: usize = 1_000;

/// What the cluster groups measured; a group that was not selected is empty.
#[derive(Debug, Default)]
pub(crate) struct ClusterSeries {
    /// Single keys, in ops/s.
    pub(crate) single: Vec<Series>,
    /// Batches of 100 keys, in keys/s.
    pub(crate) batches: Vec<Series>,
}

/// The single-key cases the options select, in the order they run.
fn single_cases(opts: &Options) -> Vec<&'static str> {
    [RAW_CLUSTER, REDIS_CACHE]
        .into_iter()
        .filter(|name| opts.selects(CLUSTER, name))
        .collect()
}

/// The batch cases the options select, in the order they run.
fn batch_cases(opts: &Options) -> Vec<&'static str> {
    [RAW_CLUSTER_BATCHES, CACHE_BATCHES]
        .into_iter()
        .filter(|name| opts.selects(CLUSTER_BATCHES, name))
        .collect()
}

/// Fails before anything runs when a cluster case is selected and `redis-server` or
/// `redis-cli` (which creates the cluster) is missing.
pub(crate) fn check_programs(opts: &Options) -> Result<()> {
    if single_cases(opts).is_empty() && batch_cases(opts).is_empty() {
        return Ok(());
    }
    redis_benchmark::require("redis-server")?;
    redis_benchmark::require("redis-cli")
}

/// Both cluster groups in interleaved rounds, on one private Redis Cluster started here when a
/// case of either is selected.
pub(crate) async fn run(opts: &Options, work: &Workload) -> Result<ClusterSeries> {
    let (single, batches) = (single_cases(opts), batch_cases(opts));
    if single.is_empty() && batches.is_empty() {
        return Ok(ClusterSeries::default());
    }
    eprintln!("[{CLUSTER}] starting a private Redis Cluster: {SHAPE}");
    // `start` blocks for a few seconds, and panics (after printing the nodes' logs) when the
    // cluster does not come up.
    let cluster = tokio::task::spawn_blocking(RedisCluster::start)
        .await
        .map_err(|_| "the private Redis Cluster did not start; its message is above")?;
    let raw = ClusterClient::new(cluster.seed_urls())?
        .get_async_connection()
        .await?;
    populate(&raw, work).await?;
    let url = cluster.url();
    let result = async {
        let mut series = ClusterSeries::default();
        if !single.is_empty() {
            let mut cases = Vec::new();
            for name in single {
                let subject = match name {
                    RAW_CLUSTER => Subject::RawCluster(RawCluster(raw.clone())),
                    _ => Subject::Redis(CacheStore(RedisCache::from_url(url.as_str())?)),
                };
                cases.push(Case::new(name, subject));
            }
            series.single = run_group(CLUSTER, &cases, work, opts.rounds, opts.secs).await?;
        }
        if !batches.is_empty() {
            let mut cases = Vec::new();
            for name in batches {
                let subject = match name {
                    RAW_CLUSTER_BATCHES => Subject::RawClusterBatches(RawClusterBatches::new(
                        raw.clone(),
                        work.shared_keys(),
                    )),
                    _ => Subject::Batches(CacheBatches::new(
                        RedisCache::from_url(url.as_str())?,
                        work.shared_keys(),
                    )),
                };
                cases.push(Case::new(name, subject));
            }
            series.batches =
                run_group(CLUSTER_BATCHES, &cases, work, opts.rounds, opts.secs).await?;
        }
        Ok(series)
    }
    .await;
    // Every connection (the cases went with the block above) closes before the nodes go.
    drop(raw);
    drop(cluster);
    result
}

/// Writes the harness's 100,000 keys `key:{n}` through `conn`, [`POPULATE_CHUNK`] concurrent
/// `SET`s at a time (consecutive keys fall in different slots, so they are not pipelined).
async fn populate(conn: &ClusterConnection, work: &Workload) -> Result<()> {
    for chunk in work.keys().chunks(POPULATE_CHUNK) {
        try_join_all(chunk.iter().map(|key| {
            let mut conn = conn.clone();
            let mut cmd = redis::cmd("SET");
            cmd.arg(key).arg(work.value());
            async move { cmd.query_async::<()>(&mut conn).await }
        }))
        .await?;
    }
    Ok(())
}
