//! Connection sharing: concurrent operations share a few multiplexed connections, while the
//! deadpool pool creates, health-checks and replaces them.
//!
//! Checking a connection out of the pool for every operation costs a recycle `PING` round trip
//! per operation and keeps each connection to one caller at a time (measured at 0.19x the
//! throughput of one shared multiplexed connection). Instead the cache keeps one *lane* per
//! pool slot. A lane holds a pooled connection for as long as it stays healthy, and every
//! operation routed to the lane sends its command on a clone of that connection's multiplexed
//! handle, so commands from many tasks are pipelined on one socket.
//!
//! A lane gives its connection up when a command on it fails in a way that may have broken it
//! ([`Connections::retire`]): an I/O or protocol error detaches it from the pool for good; a
//! timeout with no reply on the connection since the operation started hands it back to the
//! pool, whose recycle `PING` decides whether it is reused. A connection that is merely slow
//! (it answered something meanwhile) is kept.
//!
//! An empty lane is refilled by a task of its own, spawned by the first operation that finds
//! it empty: operations wait for the refill up to their own deadline, but giving up (or never
//! being polled again) does not cancel it, so a refill that takes longer than one operation's
//! deadline still completes and serves the next ones. A refill that fails hands its error to
//! every operation that waited for it; operations in the back-off that follows (50 ms,
//! doubling up to 2 s) get that error at once, so a dead or refusing server sees one
//! connection attempt per lane and back-off, not one per operation. A refill is a
//! [`Job`](crate::job::Job): one at a time per lane, taken over when it stalls.

use std::cell::Cell;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::Duration;

use deadpool::managed::{Object, Pool};
use redis::aio::MultiplexedConnection;
use redis::{FromRedisValue, RedisError};
use tokio::sync::Notify;
use tokio::time::Instant;

mod refill;

use crate::manager::NodeManager;
use crate::{errors, sync};

pub(crate) use self::refill::RefillError;
use self::refill::{LaneOf, Next, Refills};
use crate::job::Running;

thread_local! {
    /// xorshift state choosing the lane of each operation started on this thread: random, so
    /// caches used in turn on one thread still spread over all their lanes, and per thread,
    /// so the workers do not contend on a shared counter.
    static LANE_RNG: Cell<u64> = Cell::new(lane_seed());
}

fn lane_seed() -> u64 {
    static NEXT: AtomicU64 = AtomicU64::new(0x9e37_79b9_7f4a_7c15);
    NEXT.fetch_add(0x9e37_79b9_7f4a_7c15, Ordering::Relaxed) | 1
}

fn random_lane(lanes: usize) -> usize {
    if lanes == 1 {
        return 0;
    }
    LANE_RNG.with(|state| {
        let mut x = state.get();
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        state.set(x);
        // Lanes number at most the pool size, far below `u32::MAX`.
        ((x >> 32) % lanes as u64) as usize
    })
}

/// A lane whose connection has not answered for this long (ms) hands it back to the pool for a
/// health check before the next operation uses it: after a quiet spell Redis may have
/// restarted, or closed the connection as idle, and a write on a dead connection fails
/// without being retried.
pub(crate) const IDLE_CHECK_MS: u64 = 5_000;

/// The least age (ms) of a connection replaced for answering `READONLY`.
const READONLY_RETRY_MS: u64 = 1_000;

/// The pool and the lanes that share its connections.
pub(crate) struct Connections {
    shared: Arc<Shared>,
}

struct Shared {
    pool: Pool<NodeManager>,
    lanes: Box<[Lane]>,
    /// Tags each installed connection, so a late `retire` never removes its replacement.
    next_generation: AtomicU64,
    closed: AtomicBool,
    /// The bound on one refill, which runs on its own and is not cut short by callers.
    refill_timeout: Duration,
    /// The same in whole milliseconds.
    refill_bound_ms: u64,
    /// Zero of the millisecond clock of `Lane::last_reply`.
    epoch: Instant,
}

/// One shared connection slot.
struct Lane {
    state: Mutex<LaneState>,
    /// Woken when a refill ends, well or badly, and when the lane is emptied
    /// ([`Shared::take_held`]).
    refilled: Notify,
    /// The start (ms since `Shared::epoch`) of the latest operation the lane's connection
    /// answered: the operation's start rather than the reply's time, which saves a clock read
    /// per operation. A timed-out operation's connection counts as alive if it answered an
    /// operation started no earlier than the timed-out one.
    last_reply: AtomicU64,
}

#[derive(Default)]
struct LaneState {
    held: Option<Held>,
    refills: Refills,
}

struct Held {
    /// The pool's object: while a lane holds it, the pool counts it as in use.
    pooled: Object<NodeManager>,
    generation: u64,
    /// When the lane got it (ms since `Shared::epoch`).
    installed: u64,
}

/// A connection handle for one operation.
struct Lease {
    /// A clone of the lane's multiplexed handle; commands on it share the lane's socket.
    conn: MultiplexedConnection,
    id: LeaseId,
}

/// Names the connection a [`Lease`] came from, kept after the lease itself is gone.
#[derive(Debug, Clone, Copy)]
pub(crate) struct LeaseId {
    pub(crate) lane: usize,
    generation: u64,
}

/// Why an operation gives up its lane's connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Retire {
    /// The connection failed (I/O error, protocol error): drop it and let the pool open
    /// another; the other lanes' connections likely broke too and get health-checked.
    Broken,
    /// The connection reached a primary that was demoted to a replica: a new connection may
    /// reach the new primary (a failover behind DNS or a proxy). Replaced at most once a
    /// second, since a cache pointed at a replica would otherwise reconnect on every write.
    ReadOnly,
    /// The connection did not answer in time: hand it back to the pool, which `PING`s it
    /// before it is used again.
    Suspect,
}

impl Connections {
    /// A pool of at most `lanes` + 1 connections made by `manager`, shared over `lanes` lanes;
    /// opening, checking and waiting for one connection are each bounded by `connect_bound`.
    /// Does no I/O.
    ///
    /// The spare connection lets a replacement open while a stalled attempt (spawned on a
    /// runtime that is no longer driven) keeps its slot.
    pub(crate) fn open(
        manager: NodeManager,
        lanes: usize,
        connect_bound: Duration,
    ) -> Result<Self, cache_core::CacheError> {
        let pool = Pool::builder(manager)
            .max_size(lanes.saturating_add(1))
            .wait_timeout(Some(connect_bound))
            .create_timeout(Some(connect_bound))
            .recycle_timeout(Some(connect_bound))
            .runtime(deadpool::Runtime::Tokio1)
            .build()
            .map_err(|err| cache_core::CacheError::InvalidConfig {
                reason: "the connection pool could not be built".into(),
                source: Some(Box::new(err)),
            })?;
        Ok(Self::new(pool, lanes, connect_bound))
    }

    /// Shares the connections of `pool` over `lanes` lanes (at least one, at most the pool's
    /// size); each refill may take up to `refill_timeout`.
    fn new(pool: Pool<NodeManager>, lanes: usize, refill_timeout: Duration) -> Self {
        let lanes = (0..lanes.max(1))
            .map(|_| Lane {
                state: Mutex::new(LaneState::default()),
                refilled: Notify::new(),
                last_reply: AtomicU64::new(0),
            })
            .collect();
        Self {
            shared: Arc::new(Shared {
                pool,
                lanes,
                next_generation: AtomicU64::new(0),
                closed: AtomicBool::new(false),
                refill_timeout,
                refill_bound_ms: millis(refill_timeout),
                epoch: Instant::now(),
            }),
        }
    }

    /// A connection for one operation started at `now` (from [`now_ms`](Self::now_ms)), on
    /// lane `index`. When the lane is empty, or its connection has answered
    /// nothing for [`IDLE_CHECK_MS`], waits for the lane's refill, starting one unless one
    /// runs or the lane backs off after a failure. Must run inside a tokio runtime.
    /// Cancel-safe: a refill goes on without its waiters.
    ///
    /// # Errors
    /// The error of the refill this call waited for, the last refill's error while the lane
    /// backs off, and [`RefillError::Closed`] after [`close`](Self::close).
    async fn lease(&self, now: u64, index: usize) -> Result<Lease, RefillError> {
        let lane = &self.shared.lanes[index];
        let mut waited_for = None;
        loop {
            let idle = {
                let mut state = lane.lock();
                match &state.held {
                    Some(held) if lane.fresh(now) => return Ok(held.lease(index)),
                    // Silent for a while: Redis may have restarted or closed it meanwhile.
                    // The pool's recycle `PING` checks it in the refill below.
                    Some(_) => state.held.take(),
                    None => None,
                }
            };
            // Back to the pool outside the lane's lock.
            drop(idle);
            // Registered before the state is read again, so a refill ending in between still
            // wakes this call.
            let refilled = lane.refilled.notified();
            tokio::pin!(refilled);
            refilled.as_mut().enable();
            let spawn = {
                let mut state = lane.lock();
                if let Some(held) = &state.held {
                    return Ok(held.lease(index));
                }
                if self.shared.closed.load(Ordering::SeqCst) {
                    return Err(RefillError::Closed);
                }
                let now = self.shared.now_ms();
                match state
                    .refills
                    .next(now, waited_for, self.shared.refill_bound_ms)
                {
                    Next::Fail(err) => return Err(err),
                    Next::Wait(number) => {
                        waited_for = Some(number);
                        None
                    }
                    Next::Spawn(number) => {
                        waited_for = Some(number);
                        Some(number)
                    }
                }
            };
            // Spawned outside the lane's lock: a task dropped at once (its runtime is shutting
            // down) ends its refill in `Drop`, which takes that lock.
            if let Some(number) = spawn {
                let host = LaneOf {
                    shared: Arc::clone(&self.shared),
                    index,
                };
                tokio::spawn(refill::run(Running::new(host, number)));
            }
            refilled.await;
        }
    }

    /// `lane` if it exists, else a random lane.
    fn lane_index(&self, lane: Option<usize>) -> usize {
        match lane {
            Some(lane) if lane < self.shared.lanes.len() => lane,
            _ => random_lane(self.shared.lanes.len()),
        }
    }

    /// What [`lease`](Self::lease) returns at once, without waiting: the connection of `lane`
    /// (or else of a random lane) when it holds one that answered within [`IDLE_CHECK_MS`] of
    /// `now`; otherwise the index of the lane chosen, for `lease` to wait on.
    fn lease_held(&self, now: u64, lane: Option<usize>) -> Result<Lease, usize> {
        let index = self.lane_index(lane);
        let lane = &self.shared.lanes[index];
        match &lane.lock().held {
            Some(held) if lane.fresh(now) => Ok(held.lease(index)),
            _ => Err(index),
        }
    }

    /// Notes that the connection of `id` answered (with a value or a server error) an
    /// operation started at `started` (from [`now_ms`](Self::now_ms)).
    fn replied(&self, id: &LeaseId, started: u64) {
        if let Some(lane) = self.shared.lanes.get(id.lane) {
            // A plain store, at most once per millisecond and lane: no contended write per
            // operation. Racing stores may set an older millisecond; harmless.
            if lane.last_reply.load(Ordering::Relaxed) < started {
                lane.last_reply.store(started, Ordering::Relaxed);
            }
        }
    }

    /// Milliseconds since the cache was built, the clock of the lanes.
    pub(crate) fn now_ms(&self) -> u64 {
        self.shared.now_ms()
    }

    /// `at` on the clock of [`now_ms`](Self::now_ms): an operation that reads the clock for
    /// its deadline anyway takes its start from the same reading.
    pub(crate) fn ms_at(&self, at: Instant) -> u64 {
        self.shared.ms_at(at)
    }

    /// Stops sharing the connection of `id`, unless its lane already replaced it.
    ///
    /// A broken connection usually means the others broke too (Redis restarted, failed over
    /// or dropped its clients): every other lane then hands its connection back to the pool as
    /// well, so it is health-checked before its next command rather than failing a write.
    pub(crate) fn retire(&self, id: &LeaseId, why: Retire) {
        let Some(lane) = self.shared.lanes.get(id.lane) else {
            return;
        };
        let now = self.shared.now_ms();
        let taken = {
            let mut state = lane.lock();
            match &state.held {
                Some(current) if current.generation != id.generation => None,
                Some(current)
                    if why == Retire::ReadOnly
                        && now.saturating_sub(current.installed) < READONLY_RETRY_MS =>
                {
                    None
                }
                Some(_) => state.held.take(),
                None => None,
            }
        };
        let Some(held) = taken else {
            return;
        };
        match why {
            Retire::Suspect => drop(held),
            Retire::ReadOnly => held.detach(),
            Retire::Broken => {
                held.detach();
                drop(self.shared.take_held(Some(id.lane)));
            }
        }
    }

    /// After an operation started at `started` ran out of time on the connection of
    /// `leased`: hands the connection back to the pool for a health check, unless it answered
    /// something since (then it is slow, not stuck).
    pub(crate) fn retire_if_silent(&self, leased: Option<LeaseId>, started: u64) {
        if let Some(id) = leased
            && !self.shared.lanes.get(id.lane).is_some_and(|lane| {
                // Answered an operation started no earlier than this one.
                lane.last_reply.load(Ordering::Relaxed) >= started
            })
        {
            self.retire(&id, Retire::Suspect);
        }
    }

    /// Stops using every connection, open or pooled, and forgets the back-off: the next
    /// operations open new ones at once (to a new master, after a failover behind sentinels).
    /// A refill running now is disowned, since it may be connecting to the old address.
    pub(crate) fn reset(&self) {
        // First, so that no connection opened before, idle or handed back later, is reused.
        self.shared.pool.manager().forget_older();
        for lane in &*self.shared.lanes {
            lane.lock().refills.disown();
        }
        self.shared.pool.retain(|_, _| false);
        // Operations that waited for the disowned refills start others.
        self.shared
            .take_held(None)
            .into_iter()
            .for_each(Held::detach);
    }

    /// Whether [`close`](Self::close) was called.
    pub(crate) fn is_closed(&self) -> bool {
        self.shared.closed.load(Ordering::SeqCst)
    }

    /// A handle that does not keep the connections open.
    pub(crate) fn downgrade(&self) -> WeakConnections {
        WeakConnections(Arc::downgrade(&self.shared))
    }

    /// Empties every lane and closes the pool; later leases fail with [`RefillError::Closed`].
    pub(crate) fn close(&self) {
        self.shared.closed.store(true, Ordering::SeqCst);
        drop(self.shared.take_held(None));
        self.shared.pool.close();
    }

    /// What opens this pool's connections.
    pub(crate) fn manager(&self) -> &NodeManager {
        self.shared.pool.manager()
    }

    /// The number of lanes: the connections that operations are shared over.
    pub(crate) fn lanes(&self) -> usize {
        self.shared.lanes.len()
    }
}

/// [`Connections`] that may have been dropped.
pub(crate) struct WeakConnections(Weak<Shared>);

impl WeakConnections {
    pub(crate) fn upgrade(&self) -> Option<Connections> {
        self.0.upgrade().map(|shared| Connections { shared })
    }
}

impl Shared {
    /// Empties every lane but `except`, waking the operations that wait on them; the
    /// connections taken are dropped by the caller, outside the lanes' locks.
    fn take_held(&self, except: Option<usize>) -> Vec<Held> {
        let mut taken = Vec::new();
        for (index, lane) in self.lanes.iter().enumerate() {
            if Some(index) != except {
                taken.extend(lane.lock().held.take());
                lane.refilled.notify_waiters();
            }
        }
        taken
    }

    fn now_ms(&self) -> u64 {
        self.ms_at(Instant::now())
    }

    fn ms_at(&self, at: Instant) -> u64 {
        millis(at.saturating_duration_since(self.epoch))
    }
}

impl Lane {
    /// Whether the lane's connection answered within [`IDLE_CHECK_MS`] of `now`.
    fn fresh(&self, now: u64) -> bool {
        now.saturating_sub(self.last_reply.load(Ordering::Relaxed)) <= IDLE_CHECK_MS
    }

    fn lock(&self) -> MutexGuard<'_, LaneState> {
        // No code panics while holding this lock; recover the data if that ever changes.
        sync::lock(&self.state)
    }
}

impl Held {
    /// Closes the connection rather than pooling it: it may be broken, or reach a server
    /// that no longer plays its part (a demoted or former master).
    fn detach(self) {
        drop(Object::take(self.pooled));
    }

    fn lease(&self, lane: usize) -> Lease {
        Lease {
            conn: MultiplexedConnection::clone(&self.pooled),
            id: LeaseId {
                lane,
                generation: self.generation,
            },
        }
    }
}

/// A command, or a pipeline, borrowed for one operation.
#[derive(Clone, Copy)]
pub(crate) enum Request<'a> {
    Cmd(&'a redis::Cmd),
    Pipe(&'a redis::Pipeline),
}

/// Why [`Connections::send`] failed.
pub(crate) enum SendError {
    /// No connection could be had: the request was not sent.
    NotSent(RefillError),
    /// The request was sent on the connection of the [`LeaseId`], and failed.
    Failed(RedisError, LeaseId),
}

impl Connections {
    /// Sends `request` once on a leased connection (see [`lease`](Self::lease)), after
    /// `ASKING` in the same write when `asking` (a cluster's `ASK` redirection). Notes the
    /// reply, or retires the connection when the error may have broken it. `leased` is set
    /// as soon as a connection is leased, so that a caller whose deadline passes can tell
    /// which connection did not answer.
    pub(crate) async fn send<T: FromRedisValue>(
        &self,
        started: u64,
        lane: Option<usize>,
        request: Request<'_>,
        asking: bool,
        leased: &mut Option<LeaseId>,
    ) -> Result<T, SendError> {
        let Lease { mut conn, id } = match self.lease_held(started, lane) {
            Ok(lease) => lease,
            // Waiting for a refill is rare: boxed, so that every command's future stays small.
            Err(index) => Box::pin(self.lease(started, index))
                .await
                .map_err(SendError::NotSent)?,
        };
        *leased = Some(id);
        // The rarer requests are boxed, so that the future of a plain command stays small.
        let sent = match request {
            Request::Cmd(cmd) if asking => {
                Box::pin(async {
                    // One write: on a shared connection, `ASKING` applies to the next command
                    // only if nothing is sent between the two.
                    let mut pipe = redis::pipe();
                    pipe.cmd("ASKING").ignore().add_command(cmd.clone());
                    pipe.query_async::<(T,)>(&mut conn)
                        .await
                        .map(|(value,)| value)
                })
                .await
            }
            Request::Cmd(cmd) => cmd.query_async(&mut conn).await,
            Request::Pipe(pipe) => Box::pin(pipe.query_async(&mut conn)).await,
        };
        match sent {
            Ok(value) => {
                self.replied(&id, started);
                Ok(value)
            }
            Err(err) => {
                match errors::retires(&err) {
                    Some(why) => self.retire(&id, why),
                    // A server error is an answer: the connection is alive.
                    None => self.replied(&id, started),
                }
                Err(SendError::Failed(err, id))
            }
        }
    }
}

/// `duration` in whole milliseconds, saturating.
pub(crate) fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}
