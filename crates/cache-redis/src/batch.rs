//! Batches: `MGET`, pipelined `SET ... PX` and multi-key `UNLINK`, one round trip per chunk.

use std::collections::BTreeMap;
use std::future::Future;
use std::time::Duration;

use cache_core::{Bytes, CacheError, Result, Stat};
use futures_util::future::join_all;

use crate::cluster::Route;
use crate::keys::{Key, ttl_millis};
use crate::{Kind, RedisCache, Topology};

/// The most keys one round trip of a batch carries: large batches are split so that one
/// command never holds Redis (single-threaded) for long, and each chunk has the timeout.
pub(crate) const CHUNK_KEYS: usize = 1_000;
/// The most value bytes one round trip of `set_many` carries (at least one entry): the
/// pipeline is packed in memory before it is sent, and must fit in the timeout.
pub(crate) const CHUNK_BYTES: usize = 1 << 20;

impl RedisCache {
    /// `MGET` per chunk of [`CHUNK_KEYS`] (in a cluster, per slot, the chunks sent
    /// concurrently); values in the order of `keys`.
    pub(crate) async fn mget<K: AsRef<str> + Sync>(
        &self,
        keys: &[K],
    ) -> Result<Vec<Option<Bytes>>> {
        self.ensure_open()?;
        let stored = self.stored_keys(keys)?;
        let groups = self.groups(&stored, |key| key.slot());
        let cmds: Vec<redis::Cmd> = groups
            .iter()
            .map(|(_, indices)| {
                let mut cmd = redis::cmd("MGET");
                for &i in indices {
                    cmd.arg(stored[i]);
                }
                cmd
            })
            .collect();
        let replies = self
            .each(groups.iter().zip(&cmds).map(|((route, indices), cmd)| {
                self.read::<Vec<Option<Vec<u8>>>>("mget", indices.len(), route.clone(), cmd)
            }))
            .await?;
        let mut values = vec![None; keys.len()];
        for ((_, indices), replies) in groups.iter().zip(replies) {
            if replies.len() != indices.len() {
                return Err(CacheError::Backend {
                    code: None,
                    message: format!(
                        "redis answered an MGET of {} keys with {} values",
                        indices.len(),
                        replies.len()
                    ),
                    source: None,
                });
            }
            for (&i, reply) in indices.iter().zip(replies) {
                values[i] = reply.map(Bytes::from);
            }
        }
        self.count_found(&values);
        Ok(values)
    }

    /// Checks every entry, then pipelines `SET key value [PX ms]` per chunk; in a cluster,
    /// sends one `SET` per entry instead, concurrently, [`CHUNK_KEYS`] at a time.
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
        let set = |key: &Key<'_>, value: &[u8]| {
            let mut cmd = redis::cmd("SET");
            cmd.arg(key).arg(value);
            if let Some(ms) = ttl {
                cmd.arg("PX").arg(ms);
            }
            cmd
        };
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
            if let Topology::Direct(direct) = &self.inner.topology {
                let mut pipe = redis::pipe();
                for (key, value) in chunk {
                    pipe.add_command(set(key, value));
                }
                self.run_pipeline::<()>(direct, "set_many", chunk.len(), Kind::Write, &pipe)
                    .await?;
                self.count(Stat::Set, chunk.len());
            } else {
                // Not a pipeline: on `ASK`, each command must go to the importing node with
                // its own `ASKING`, and a pipeline would send every command after one `ASKING`.
                let cmds: Vec<(Route, redis::Cmd)> = chunk
                    .iter()
                    .map(|(key, value)| (Route::Slot(key.slot()), set(key, value)))
                    .collect();
                let done = self
                    .each(
                        cmds.iter().map(|(route, cmd)| {
                            self.query::<()>("set_many", 1, route.clone(), cmd)
                        }),
                    )
                    .await;
                // After an error, some entries of the chunk may be stored: none is counted.
                self.count(Stat::Set, done?.len());
            }
            rest = later;
        }
        Ok(())
    }

    /// `UNLINK` per chunk of [`CHUNK_KEYS`] (in a cluster, per slot).
    pub(crate) async fn unlink_many<K: AsRef<str> + Sync>(&self, keys: &[K]) -> Result<()> {
        self.ensure_open()?;
        let stored = self.stored_keys(keys)?;
        let groups = self.groups(&stored, |key| key.slot());
        self.unlink_groups("delete_many", &groups, |cmd, i| {
            cmd.arg(stored[i]);
        })
        .await
    }

    /// `UNLINK` of keys found by `SCAN`, stored names as they are.
    pub(crate) async fn unlink_found(&self, found: Vec<Vec<u8>>) -> Result<()> {
        let groups = self.groups(&found, |key| crate::cluster::slots::slot(&[key]));
        self.unlink_groups("unlink", &groups, |cmd, i| {
            cmd.arg(&found[i]);
        })
        .await
    }

    async fn unlink_groups(
        &self,
        op: &'static str,
        groups: &[(Route, Vec<usize>)],
        add_key: impl Fn(&mut redis::Cmd, usize),
    ) -> Result<()> {
        let cmds: Vec<redis::Cmd> = groups
            .iter()
            .map(|(_, indices)| {
                let mut cmd = redis::cmd("UNLINK");
                for &i in indices {
                    add_key(&mut cmd, i);
                }
                cmd
            })
            .collect();
        let done = self
            .each(groups.iter().zip(&cmds).map(|((route, indices), cmd)| {
                self.query::<()>(op, indices.len(), route.clone(), cmd)
            }))
            .await?;
        let deleted: usize = groups.iter().map(|(_, indices)| indices.len()).sum();
        debug_assert_eq!(done.len(), groups.len());
        self.count(Stat::Delete, deleted);
        Ok(())
    }

    /// The positions of `keys` in groups of at most [`CHUNK_KEYS`] that one command can
    /// carry, each with its route: in order on one server, by slot in a cluster.
    fn groups<T>(&self, keys: &[T], slot: impl Fn(&T) -> u16) -> Vec<(Route, Vec<usize>)> {
        if !self.inner.topology.is_cluster() {
            return (0..keys.len())
                .step_by(CHUNK_KEYS)
                .map(|start| {
                    let end = (start + CHUNK_KEYS).min(keys.len());
                    (Route::Slot(0), (start..end).collect())
                })
                .collect();
        }
        let mut by_slot: BTreeMap<u16, Vec<usize>> = BTreeMap::new();
        for (i, key) in keys.iter().enumerate() {
            by_slot.entry(slot(key)).or_default().push(i);
        }
        by_slot
            .into_iter()
            .flat_map(|(slot, indices)| {
                indices
                    .chunks(CHUNK_KEYS)
                    .map(|chunk| (Route::Slot(slot), chunk.to_vec()))
                    .collect::<Vec<_>>()
            })
            .collect()
    }

    /// Runs `calls`: one after the other on one server (one round trip each), all at once in
    /// a cluster (they go to different nodes). The first error, after every call ended.
    async fn each<T, F>(&self, calls: impl Iterator<Item = F>) -> Result<Vec<T>>
    where
        F: Future<Output = Result<T>>,
    {
        if self.inner.topology.is_cluster() {
            join_all(calls).await.into_iter().collect()
        } else {
            let mut out = Vec::new();
            for call in calls {
                out.push(call.await?);
            }
            Ok(out)
        }
    }

    /// Every key with its namespace, checked against the size limit before any I/O.
    pub(crate) fn stored_keys<'a, K: AsRef<str>>(&'a self, keys: &'a [K]) -> Result<Vec<Key<'a>>> {
        keys.iter()
            .map(|key| self.inner.keys.key(key.as_ref()))
            .collect()
    }
}
