//! A value with the time it has left, for a tiered cache that must not keep a copy longer than
//! the original: `GET` and `PTTL` of one key, in one round trip; `MGET` and a `PTTL` per key
//! for a batch, in one round trip per chunk.

use std::time::Duration;

use cache_core::{Bytes, CacheError, Result, Stat, Ttl};
use futures_util::future::{join_all, try_join};
use redis::{FromRedisValue, ParsingError, Value};

use crate::batch::CHUNK_KEYS;
use crate::cluster::Route;
use crate::{Kind, RedisCache, Topology};

/// The operation's name in traces.
const OP: &str = "get_with_ttl";
/// The batch's name in traces.
const OP_MANY: &str = "get_many_with_ttl";

impl RedisCache {
    /// `GET key` and `PTTL key`: pipelined on one server and behind sentinels; in a cluster,
    /// two commands routed to the key's node and sent at once, so that they share one round
    /// trip (on one connection, the default `pool_size`, Redis runs them in the order sent).
    /// A read: sent again after a lost connection, to a replica with `read_from_replicas`;
    /// counted as a hit or a miss.
    pub(crate) async fn get_with_ttl(&self, key: &str) -> Result<Option<(Bytes, Ttl)>> {
        let key = self.inner.keys.key(key)?;
        let mut get = redis::cmd("GET");
        get.arg(key);
        let mut pttl = redis::cmd("PTTL");
        pttl.arg(key);
        let (value, ms): (Option<Vec<u8>>, i64) = match &self.inner.topology {
            Topology::Cluster(cluster) => {
                let route = Route::Slot(key.slot());
                self.traced(OP, 1, || async {
                    self.ready()?;
                    let timeout = self.inner.timeout;
                    // Boxed, as `run` boxes the cluster's future.
                    try_join(
                        Box::pin(cluster.attempt(timeout, Kind::Read, &route, &get)),
                        Box::pin(cluster.attempt(timeout, Kind::Read, &route, &pttl)),
                    )
                    .await
                })
                .await?
            }
            Topology::Direct(direct) => {
                let mut pipe = redis::pipe();
                pipe.add_command(get).add_command(pttl);
                self.run_pipeline(direct, OP, 1, Kind::Read, &pipe).await?
            }
        };
        let entry = entry(value, ms);
        self.count(
            if entry.is_some() {
                Stat::Hit
            } else {
                Stat::Miss
            },
            1,
        );
        Ok(entry)
    }
}

impl RedisCache {
    /// `MGET` of a chunk of [`CHUNK_KEYS`] keys and `PTTL` of each, in one pipeline (one
    /// round trip per chunk, the chunks one after the other) on one server and behind
    /// sentinels; in a cluster, [`get_with_ttl`](Self::get_with_ttl) per key,
    /// [`CHUNK_KEYS`] at a time concurrently (a pipeline there would have to be split by
    /// slot and could not follow an `ASK` per command). Entries in the order of `keys`;
    /// counted as hits and misses, like `get_many`.
    pub(crate) async fn get_many_with_ttl<K: AsRef<str> + Sync>(
        &self,
        keys: &[K],
    ) -> Result<Vec<Option<(Bytes, Ttl)>>> {
        self.ensure_open()?;
        let direct = match &self.inner.topology {
            Topology::Direct(direct) => direct,
            Topology::Cluster(_) => {
                let mut entries = Vec::with_capacity(keys.len());
                for chunk in keys.chunks(CHUNK_KEYS) {
                    let read = join_all(chunk.iter().map(|key| self.get_with_ttl(key.as_ref())));
                    for entry in read.await {
                        entries.push(entry?);
                    }
                }
                return Ok(entries);
            }
        };
        let stored = self.stored_keys(keys)?;
        let mut entries = Vec::with_capacity(keys.len());
        for chunk in stored.chunks(CHUNK_KEYS) {
            let mut pipe = redis::pipe();
            let mut mget = redis::cmd("MGET");
            for key in chunk {
                mget.arg(key);
            }
            pipe.add_command(mget);
            for key in chunk {
                pipe.cmd("PTTL").arg(key);
            }
            let replies: WithTtls = self
                .run_pipeline(direct, OP_MANY, chunk.len(), Kind::Read, &pipe)
                .await?;
            if replies.values.len() != chunk.len() {
                return Err(CacheError::Backend {
                    code: None,
                    message: format!(
                        "redis answered an MGET of {} keys with {} values",
                        chunk.len(),
                        replies.values.len()
                    ),
                    source: None,
                });
            }
            entries.extend(
                replies
                    .values
                    .into_iter()
                    .zip(replies.pttls)
                    .map(|(value, pttl_ms)| entry(value, pttl_ms)),
            );
        }
        self.count_found(&entries);
        Ok(entries)
    }
}

/// The replies to a pipeline of `MGET k1 .. kn` and `PTTL k1` .. `PTTL kn`.
struct WithTtls {
    values: Vec<Option<Vec<u8>>>,
    pttls: Vec<i64>,
}

impl FromRedisValue for WithTtls {
    fn from_redis_value(v: Value) -> std::result::Result<Self, ParsingError> {
        let mut replies = Vec::<Value>::from_redis_value(v)?.into_iter();
        let Some(mget) = replies.next() else {
            return Err("a pipeline of MGET and PTTLs was answered with no reply".into());
        };
        let values = Vec::<Option<Vec<u8>>>::from_redis_value(mget)?;
        let pttls = i64::from_redis_values(replies.collect())?;
        if pttls.len() != values.len() {
            return Err(format!(
                "a pipeline of MGET and PTTLs was answered with {} values and {} ttls",
                values.len(),
                pttls.len()
            )
            .into());
        }
        Ok(Self { values, pttls })
    }
}

/// The entry that a `GET` reply and a `PTTL` reply describe. `PTTL` answers -1 for a key
/// without expiry, -2 for a missing key: a value whose key was gone by the `PTTL` (it expired
/// or was deleted in between) is a miss.
fn entry(value: Option<Vec<u8>>, pttl_ms: i64) -> Option<(Bytes, Ttl)> {
    let value = value?;
    let ttl = match pttl_ms {
        -1 => Ttl::Never,
        ms => Ttl::Remaining(Duration::from_millis(u64::try_from(ms).ok()?)),
    };
    Some((Bytes::from(value), ttl))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pttl_replies_read_as_the_time_left() {
        let value = || Some(b"v".to_vec());
        assert_eq!(entry(value(), -1), Some((Bytes::from("v"), Ttl::Never)));
        assert_eq!(
            entry(value(), 1_500),
            Some((
                Bytes::from("v"),
                Ttl::Remaining(Duration::from_millis(1_500))
            ))
        );
        assert_eq!(
            entry(value(), 0),
            Some((Bytes::from("v"), Ttl::Remaining(Duration::ZERO)))
        );
        // Gone between the GET and the PTTL.
        assert_eq!(entry(value(), -2), None);
        assert_eq!(entry(None, -2), None);
        assert_eq!(entry(None, 10), None);
    }
}
