//! Batches: `MGET`, pipelined `SET ... PX` and multi-key `UNLINK`, one round trip per chunk.

use std::time::Duration;

use cache_core::{Bytes, CacheError, Result, Stat};
use deadpool_redis::redis;

use crate::RedisCache;
use crate::keys::{Key, ttl_millis};

/// The most keys one round trip of a batch carries: large batches are split so that one
/// command never holds Redis (single-threaded) for long, and each chunk has the timeout.
pub(crate) const CHUNK_KEYS: usize = 1_000;
/// The most value bytes one round trip of `set_many` carries (at least one entry): the
/// pipeline is packed in memory before it is sent, and must fit in the timeout.
pub(crate) const CHUNK_BYTES: usize = 1 << 20;

impl RedisCache {
    /// `MGET` per chunk of [`CHUNK_KEYS`]; values in the order of `keys`.
    pub(crate) async fn mget<K: AsRef<str> + Sync>(
        &self,
        keys: &[K],
    ) -> Result<Vec<Option<Bytes>>> {
        self.ensure_open()?;
        let stored = self.stored_keys(keys)?;
        let mut values = Vec::with_capacity(keys.len());
        for chunk in stored.chunks(CHUNK_KEYS) {
            let mut cmd = redis::cmd("MGET");
            for key in chunk {
                cmd.arg(key);
            }
            let replies: Vec<Option<Vec<u8>>> = self.read("mget", chunk.len(), &cmd).await?;
            if replies.len() != chunk.len() {
                return Err(CacheError::Backend {
                    code: None,
                    message: format!(
                        "redis answered an MGET of {} keys with {} values",
                        chunk.len(),
                        replies.len()
                    ),
                    source: None,
                });
            }
            values.extend(replies.into_iter().map(|reply| reply.map(Bytes::from)));
        }
        let hits = values.iter().filter(|v| v.is_some()).count();
        self.count(Stat::Hit, hits);
        self.count(Stat::Miss, values.len() - hits);
        Ok(values)
    }

    /// Checks every entry, then pipelines `SET key value [PX ms]` per chunk.
    pub(crate) async fn pipelined_set<'a>(
        &self,
        entries: impl Iterator<Item = (&'a str, &'a [u8])>,
        ttl: Option<Duration>,
    ) -> Result<()> {
        self.ensure_open()?;
        let ttl = ttl_millis(ttl)?;
        let keys = &self.inner.keys;
        let checked = entries
            .map(|(key, value)| Ok((keys.key(key)?, keys.value(value)?)))
            .collect::<Result<Vec<_>>>()?;
        let mut rest = &checked[..];
        while !rest.is_empty() {
            let mut bytes = 0;
            let take = rest
                .iter()
                .take(CHUNK_KEYS)
                .take_while(|(_, value)| {
                    bytes += value.len();
                    bytes <= CHUNK_BYTES
                })
                .count()
                .max(1);
            let (chunk, later) = rest.split_at(take);
            let mut pipe = redis::pipe();
            for (key, value) in chunk {
                let cmd = pipe.cmd("SET").arg(key).arg(*value);
                if let Some(ms) = ttl {
                    cmd.arg("PX").arg(ms);
                }
            }
            self.with_connection(
                "set_many",
                chunk.len(),
                crate::Attempts::Once,
                |mut conn| {
                    let pipe = &pipe;
                    async move { pipe.query_async::<()>(&mut conn).await }
                },
            )
            .await?;
            self.count(Stat::Set, chunk.len());
            rest = later;
        }
        Ok(())
    }

    /// `UNLINK` per chunk of [`CHUNK_KEYS`].
    pub(crate) async fn unlink_many<K: AsRef<str> + Sync>(&self, keys: &[K]) -> Result<()> {
        self.ensure_open()?;
        let stored = self.stored_keys(keys)?;
        for chunk in stored.chunks(CHUNK_KEYS) {
            let mut cmd = redis::cmd("UNLINK");
            for key in chunk {
                cmd.arg(key);
            }
            self.query::<()>("delete_many", chunk.len(), &cmd).await?;
            self.count(Stat::Delete, chunk.len());
        }
        Ok(())
    }

    /// Every key with its namespace, checked against the size limit before any I/O.
    fn stored_keys<'a, K: AsRef<str>>(&'a self, keys: &'a [K]) -> Result<Vec<Key<'a>>> {
        keys.iter()
            .map(|key| self.inner.keys.key(key.as_ref()))
            .collect()
    }
}
