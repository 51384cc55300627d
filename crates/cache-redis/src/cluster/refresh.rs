//! The slot map: fetched with `CLUSTER SLOTS` by one background [`Job`] at a time (on
//! `MOVED`, on errors, when it is old), installed whole, and patched at once by a `MOVED`.

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use cache_core::CacheError;
use redis::{ErrorKind, RedisError, Value};
use tokio::time::Instant;

use super::slots::{Range, SLOTS, parse_cluster_slots};
use super::{Node, REFRESH_INTERVAL_MS, Shared, SlotMap, UNSERVED, distinct};
use crate::connections::{RefillError, Request, SendError, millis};
use crate::errors;
use crate::job::{Host, Job, Running, State};
use crate::sync::{lock, write};

/// The slot-map refreshes of a cluster, under its lock.
#[derive(Default)]
pub(super) struct Refresh {
    job: Job<RedisError>,
    /// The node that answered the last refresh, asked first next time.
    answered: Option<String>,
}

impl Shared {
    /// The slot map, after a first refresh if there is none yet. Fails with the error of the
    /// last refresh when it failed and no new one may start yet.
    pub(super) async fn current_map(self: &Arc<Self>) -> Result<Arc<SlotMap>, CacheError> {
        loop {
            if let Some(map) = self.map() {
                return Ok(map);
            }
            if self.closed.load(Ordering::SeqCst) {
                return Err(CacheError::Closed);
            }
            let refreshed = self.refreshed.notified();
            tokio::pin!(refreshed);
            refreshed.as_mut().enable();
            let running = self.refresh_soon();
            // Read after `refresh_soon`, which waits for a refresh that is installing its map.
            if let Some(map) = self.map() {
                return Ok(map);
            }
            if !running {
                let refresh = lock(&self.refresh);
                return Err(match refresh.job.failed() {
                    Some((_, err)) => errors::from_redis(err.clone(), self.ask_bound),
                    None => CacheError::Unavailable {
                        reason: "the redis cluster's slot map is not known yet; retry shortly"
                            .into(),
                        source: None,
                    },
                });
            }
            refreshed.await;
        }
    }

    /// Starts a refresh of the slot map in the background, unless one runs or one started
    /// less than [`REFRESH_INTERVAL_MS`] ago. Whether a refresh runs now.
    pub(super) fn refresh_soon(self: &Arc<Self>) -> bool {
        if self.closed.load(Ordering::SeqCst) {
            return false;
        }
        let number = {
            let mut refresh = lock(&self.refresh);
            let now = self.now_ms();
            match refresh.job.state(now, self.refresh_bound_ms()) {
                State::Running(_) => return true,
                State::Idle
                    if refresh.job.started().is_some_and(|started| {
                        now.saturating_sub(started) < REFRESH_INTERVAL_MS
                    }) =>
                {
                    return false;
                }
                State::Idle | State::Stalled => refresh.job.start(now),
            }
        };
        tokio::spawn(refresh(Running::new(Arc::clone(self), number)));
        true
    }

    /// Milliseconds since the cache was built, the clock of the refreshes.
    pub(super) fn now_ms(&self) -> u64 {
        millis(self.epoch.elapsed())
    }

    /// [`refresh_bound`](Self::refresh_bound) in whole milliseconds.
    pub(super) fn refresh_bound_ms(&self) -> u64 {
        millis(self.refresh_bound())
    }

    /// The bound on one whole refresh: every candidate asked in turn.
    pub(super) fn refresh_bound(&self) -> Duration {
        self.ask_bound.saturating_mul(4)
    }

    /// Asks for `CLUSTER SLOTS`: first the node that answered last time, then the map's
    /// primaries, its replicas, and the seeds. The ranges and the node that answered.
    pub(super) async fn fetch_ranges(&self) -> Result<(Vec<Range>, String), RedisError> {
        let answered = lock(&self.refresh).answered.clone();
        let candidates = {
            // Let go of before the questions, as it keeps its nodes alive.
            let map = self.map();
            let seeds = self.seeds.iter().map(String::as_str);
            distinct(
                answered
                    .as_deref()
                    .into_iter()
                    .chain(map.iter().flat_map(|map| map.addrs()))
                    .chain(seeds),
            )
        };
        let mut last_err = None;
        let mut cmd = redis::cmd("CLUSTER");
        cmd.arg("SLOTS");
        for addr in candidates {
            let Ok(node) = self.node(&addr) else {
                continue;
            };
            let connections = &node.connections;
            let started = connections.now_ms();
            let mut leased = None;
            let asked = tokio::time::timeout(
                self.ask_bound,
                connections.send::<Value>(started, None, Request::Cmd(&cmd), false, &mut leased),
            )
            .await;
            let err = match asked {
                Ok(Ok(reply)) => match parse_cluster_slots(&reply, &node.host) {
                    Some(ranges) if !ranges.is_empty() => return Ok((ranges, node.addr.clone())),
                    _ => RedisError::from((
                        ErrorKind::Parse,
                        "the redis cluster answered CLUSTER SLOTS with an unexpected reply",
                    )),
                },
                Ok(Err(
                    SendError::NotSent(RefillError::Redis(err)) | SendError::Failed(err, _),
                )) => err,
                Ok(Err(SendError::NotSent(_))) => continue,
                Err(_elapsed) => {
                    connections.retire_if_silent(leased, started);
                    errors::timed_out()
                }
            };
            last_err = Some(err);
        }
        Err(last_err.unwrap_or_else(|| {
            RedisError::from((
                ErrorKind::Io,
                "no node of the redis cluster could be asked for its slots",
            ))
        }))
    }

    /// Installs a map built from `ranges`, and forgets the nodes no longer in it.
    pub(super) fn install(&self, ranges: &[Range]) -> Result<(), CacheError> {
        let mut map = SlotMap {
            owner: vec![UNSERVED; SLOTS].into_boxed_slice(),
            shards: Vec::new(),
            fetched: Instant::now(),
        };
        for range in ranges {
            let known = map.shards.len();
            let index = map.shard_index(&self.node(&range.primary)?);
            if let Some(added) = map.shards.get_mut(known) {
                // The shard was just added: its replicas are those of its primary's first range.
                added.replicas = range
                    .replicas
                    .iter()
                    .map(|addr| self.node(addr))
                    .collect::<Result<_, _>>()?;
            }
            for slot in range.first..=range.last {
                map.owner[usize::from(slot)] = index;
            }
        }
        let kept: HashSet<&str> = self
            .seeds
            .iter()
            .map(String::as_str)
            .chain(map.addrs())
            .collect();
        lock(&self.nodes).retain(|addr, _| kept.contains(addr.as_str()));
        *write(&self.map) = Some(Arc::new(map));
        Ok(())
    }

    /// Notes a `MOVED` from `from`: `slot` is now served by the primary at `addr`. Refreshes
    /// the whole map in the background, since a moved slot often means more changed.
    pub(super) fn moved(
        self: &Arc<Self>,
        slot: u16,
        addr: &str,
        from: &Node,
    ) -> Result<(), CacheError> {
        let node = self.redirected_to(addr, from)?;
        let owned_by = |map: &SlotMap| {
            map.shards
                .get(usize::from(map.owner[usize::from(slot)]))
                .is_some_and(|shard| shard.primary.addr == node.addr)
        };
        // Most redirections of a slot come after the first one updated it.
        let known = self.map().is_some_and(|map| owned_by(&map));
        if !known {
            let mut guard = write(&self.map);
            if let Some(map) = guard.as_mut()
                && !owned_by(map)
            {
                let map = Arc::make_mut(map);
                map.owner[usize::from(slot)] = map.shard_index(&node);
            }
        }
        self.refresh_soon();
        Ok(())
    }
}

impl Host for Arc<Shared> {
    type Error = RedisError;

    fn with_job<R>(&self, f: impl FnOnce(&mut Job<RedisError>) -> R) -> R {
        f(&mut lock(&self.refresh).job)
    }

    fn wake(&self) {
        self.refreshed.notify_waiters();
    }

    fn dropped() -> RedisError {
        RedisError::from((
            ErrorKind::Io,
            "the slot map refresh was dropped; its runtime shut down",
        ))
    }
}

/// Refresh `job.number` of the slot map: asks for it and installs it, unless a newer refresh
/// took over.
async fn refresh(mut job: Running<Arc<Shared>>) {
    let shared = Arc::clone(&job.host);
    let outcome = tokio::time::timeout(shared.refresh_bound(), shared.fetch_ranges()).await;
    job.finished();
    {
        let mut refresh = lock(&shared.refresh);
        if !refresh.job.is_current(job.number) {
            return;
        }
        let outcome = match outcome {
            Ok(Ok((ranges, answered))) => match shared.install(&ranges) {
                Ok(()) => {
                    refresh.answered = Some(answered);
                    Ok(())
                }
                // The cache was closed, or a node's address or pool was refused.
                Err(err) => Err(RedisError::from((
                    ErrorKind::Io,
                    "the slot map could not be installed",
                    err.to_string(),
                ))),
            },
            Ok(Err(err)) => Err(err),
            Err(_elapsed) => Err(errors::timed_out()),
        };
        refresh.job.end(job.number, outcome);
    }
    shared.refreshed.notify_waiters();
}
