//! Batches of 100 keys on Redis (issue 5): `RedisCache::get_many`/`set_many` against the same
//! commands on one raw redis-rs connection, and against redis-benchmark with `-P 16`; and on a
//! Redis Cluster (issue 12), against redis-rs's own cluster connection.

use std::collections::HashMap;
use std::sync::Arc;

use cache_redis::{Cache, RedisCache};
use futures_util::future::try_join_all;
use redis::aio::MultiplexedConnection;
use redis::cluster_async::ClusterConnection;
use redis::cluster_routing::Slot;

use crate::stores::set_px;
use crate::workload::{KEYS, Result, Store, TTL};

/// Keys per batch.
pub(crate) const BATCH: usize = 100;
/// The step between the keys of one batch, prime to [`KEYS`], so a batch spreads over the
/// key space as random keys would.
const STRIDE: usize = 7_919;

/// The [`BATCH`] keys of the batch that the workload's key `key:{n}` starts.
fn batch<'a>(keys: &'a [String], key: &str) -> Vec<&'a str> {
    let start: usize = key
        .strip_prefix("key:")
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    (0..BATCH)
        .map(|i| keys[(start + i * STRIDE) % KEYS].as_str())
        .collect()
}

/// `RedisCache` moving 100 keys per call: each get of the workload is a `get_many`, each set a
/// `set_many` with the TTL.
#[derive(Debug, Clone)]
pub(crate) struct CacheBatches {
    cache: RedisCache,
    keys: Arc<[String]>,
}

impl CacheBatches {
    /// Batches on `cache` over the workload's `keys`.
    pub(crate) fn new(cache: RedisCache, keys: Arc<[String]>) -> Self {
        Self { cache, keys }
    }
}

impl Store for CacheBatches {
    type Value = String;

    async fn get(&mut self, key: &str) -> Result<Option<String>> {
        let values = self.cache.get_many(&batch(&self.keys, key)).await?;
        Ok(values.into_iter().next().flatten())
    }

    async fn set(&mut self, key: &str, value: &str) -> Result<()> {
        let entries: Vec<(&str, &str)> = batch(&self.keys, key)
            .into_iter()
            .map(|k| (k, value))
            .collect();
        Ok(self.cache.set_many(&entries, Some(TTL)).await?)
    }
}

/// The same batches on one raw redis-rs `MultiplexedConnection`: one `MGET`, or one pipeline
/// of `SET ... PX`.
#[derive(Clone)]
pub(crate) struct RawBatches {
    conn: MultiplexedConnection,
    keys: Arc<[String]>,
}

impl RawBatches {
    /// Batches on `conn` over the workload's `keys`.
    pub(crate) fn new(conn: MultiplexedConnection, keys: Arc<[String]>) -> Self {
        Self { conn, keys }
    }
}

impl std::fmt::Debug for RawBatches {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RawBatches")
    }
}

impl Store for RawBatches {
    type Value = String;

    async fn get(&mut self, key: &str) -> Result<Option<String>> {
        let values: Vec<Option<String>> = redis::cmd("MGET")
            .arg(batch(&self.keys, key))
            .query_async(&mut self.conn)
            .await?;
        Ok(values.into_iter().next().flatten())
    }

    async fn set(&mut self, key: &str, value: &str) -> Result<()> {
        let mut pipe = redis::pipe();
        for k in batch(&self.keys, key) {
            pipe.cmd("SET")
                .arg(k)
                .arg(value)
                .arg("PX")
                .arg(TTL.as_millis() as u64);
        }
        Ok(pipe.query_async(&mut self.conn).await?)
    }
}

/// The same batches on one raw redis-rs cluster `ClusterConnection`: one `MGET` of the 100 keys
/// (redis-rs splits it by slot, sends the parts concurrently and puts the values back in
/// order), or one pipeline of `SET ... PX` per slot, the pipelines sent concurrently (a
/// pipeline must stay within one slot for redis-rs to route it).
#[derive(Clone)]
pub(crate) struct RawClusterBatches {
    conn: ClusterConnection,
    keys: Arc<[String]>,
}

impl RawClusterBatches {
    /// Batches on `conn` over the workload's `keys`.
    pub(crate) fn new(conn: ClusterConnection, keys: Arc<[String]>) -> Self {
        Self { conn, keys }
    }
}

impl std::fmt::Debug for RawClusterBatches {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RawClusterBatches")
    }
}

impl Store for RawClusterBatches {
    type Value = String;

    async fn get(&mut self, key: &str) -> Result<Option<String>> {
        let values: Vec<Option<String>> = redis::cmd("MGET")
            .arg(batch(&self.keys, key))
            .query_async(&mut self.conn)
            .await?;
        Ok(values.into_iter().next().flatten())
    }

    async fn set(&mut self, key: &str, value: &str) -> Result<()> {
        let mut by_slot: HashMap<Slot, redis::Pipeline> = HashMap::new();
        for k in batch(&self.keys, key) {
            by_slot
                .entry(Slot::for_key(k))
                .or_insert_with(redis::pipe)
                .add_command(set_px(k, value));
        }
        let conn = &self.conn;
        try_join_all(by_slot.values().map(|pipe| {
            let mut conn = conn.clone();
            async move { pipe.query_async::<()>(&mut conn).await }
        }))
        .await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_batch_holds_distinct_keys_spread_over_the_key_space() {
        let keys: Vec<String> = (0..KEYS).map(|n| format!("key:{n}")).collect();
        let b = batch(&keys, "key:99990");
        assert_eq!(b.len(), BATCH);
        assert_eq!(b[0], "key:99990");
        assert_eq!(b[1], format!("key:{}", (99_990 + STRIDE) % KEYS));
        let distinct: std::collections::HashSet<_> = b.iter().collect();
        assert_eq!(distinct.len(), BATCH);
    }
}
