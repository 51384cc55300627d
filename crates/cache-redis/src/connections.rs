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
//! ([`Connections::retire`]): an I/O error detaches it from the pool for good, a timeout hands it
//! back to the pool, whose recycle `PING` decides whether it is reused. The next operation on
//! the lane checks a connection out of the pool again, so a restarted server is picked up
//! without rebuilding the cache.

use std::cell::Cell;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};

use deadpool_redis::redis::aio::MultiplexedConnection;
use deadpool_redis::{Connection, Pool, PoolError};

thread_local! {
    /// Round-robin counter choosing the lane of the next operation started on this thread;
    /// per thread, so worker threads do not contend on one counter.
    static NEXT_LANE: Cell<usize> = const { Cell::new(0) };
}

/// The pool and the lanes that share its connections.
pub(crate) struct Connections {
    pool: Pool,
    lanes: Box<[Lane]>,
    /// Tags each installed connection, so a late `retire` never removes its replacement.
    next_generation: AtomicU64,
    closed: AtomicBool,
}

/// One shared connection slot.
struct Lane {
    held: Mutex<Option<Held>>,
    /// Serializes refills, so a burst of operations on an empty lane checks out one connection.
    refill: tokio::sync::Mutex<()>,
}

struct Held {
    /// The pool's object: while a lane holds it, the pool counts it as in use.
    pooled: Connection,
    generation: u64,
}

/// A connection handle for one operation.
pub(crate) struct Lease {
    /// A clone of the lane's multiplexed handle; commands on it share the lane's socket.
    pub(crate) conn: MultiplexedConnection,
    lane: usize,
    generation: u64,
}

/// Why an operation gives up its lane's connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Retire {
    /// The connection failed (I/O error, protocol error): drop it and let the pool open another.
    Broken,
    /// The connection did not answer in time: hand it back to the pool, which `PING`s it before
    /// it is used again.
    Suspect,
}

impl Connections {
    /// Shares the connections of `pool` over `lanes` lanes (at least one, at most the pool's size).
    pub(crate) fn new(pool: Pool, lanes: usize) -> Self {
        let lanes = (0..lanes.max(1))
            .map(|_| Lane {
                held: Mutex::new(None),
                refill: tokio::sync::Mutex::new(()),
            })
            .collect();
        Self {
            pool,
            lanes,
            next_generation: AtomicU64::new(0),
            closed: AtomicBool::new(false),
        }
    }

    /// A connection for one operation: the next lane's, checking one out of the pool when the
    /// lane is empty. Cancel-safe: dropping the future leaves the lane empty or filled, never
    /// half-filled.
    ///
    /// # Errors
    /// The pool's error when the lane is empty and no connection can be checked out, and
    /// [`PoolError::Closed`] after [`close`](Self::close).
    pub(crate) async fn lease(&self) -> Result<Lease, PoolError> {
        let index = match self.lanes.len() {
            1 => 0,
            lanes => NEXT_LANE.with(|next| {
                let index = next.get();
                next.set(index.wrapping_add(1));
                index % lanes
            }),
        };
        let lane = &self.lanes[index];
        if let Some(lease) = lane.lease(index) {
            return Ok(lease);
        }
        let _refilling = lane.refill.lock().await;
        if let Some(lease) = lane.lease(index) {
            return Ok(lease);
        }
        let pooled = self.pool.get().await?;
        let generation = self.next_generation.fetch_add(1, Ordering::Relaxed);
        let conn = MultiplexedConnection::clone(&pooled);
        let mut held = lane.lock();
        // Checked under the lane's lock: `close` sets the flag before it empties the lanes, so
        // either it sees this connection or this sees the flag.
        if self.closed.load(Ordering::SeqCst) {
            return Err(PoolError::Closed);
        }
        *held = Some(Held { pooled, generation });
        Ok(Lease {
            conn,
            lane: index,
            generation,
        })
    }

    /// Stops sharing the connection `lease` came from, unless the lane already replaced it.
    pub(crate) fn retire(&self, lease: &LeaseId, why: Retire) {
        let Some(lane) = self.lanes.get(lease.lane) else {
            return;
        };
        let taken = {
            let mut held = lane.lock();
            match &*held {
                Some(current) if current.generation == lease.generation => held.take(),
                _ => None,
            }
        };
        if let Some(Held { pooled, .. }) = taken {
            match why {
                Retire::Broken => drop(Connection::take(pooled)),
                Retire::Suspect => drop(pooled),
            }
        }
    }

    /// Empties every lane and closes the pool; later leases fail with [`PoolError::Closed`].
    pub(crate) fn close(&self) {
        self.closed.store(true, Ordering::SeqCst);
        for lane in &*self.lanes {
            let taken = lane.lock().take();
            drop(taken);
        }
        self.pool.close();
    }

    /// The number of lanes, which is also the most connections the cache opens at once.
    pub(crate) fn lanes(&self) -> usize {
        self.lanes.len()
    }
}

impl Lane {
    fn lock(&self) -> MutexGuard<'_, Option<Held>> {
        // No code panics while holding this lock; recover the data if that ever changes.
        self.held.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn lease(&self, lane: usize) -> Option<Lease> {
        let held = self.lock();
        let current = held.as_ref()?;
        Some(Lease {
            conn: MultiplexedConnection::clone(&current.pooled),
            lane,
            generation: current.generation,
        })
    }
}

/// Names the connection a [`Lease`] came from, kept after the lease itself is gone.
#[derive(Debug, Clone, Copy)]
pub(crate) struct LeaseId {
    lane: usize,
    generation: u64,
}

impl Lease {
    /// The lane and connection this lease came from.
    pub(crate) fn id(&self) -> LeaseId {
        LeaseId {
            lane: self.lane,
            generation: self.generation,
        }
    }
}
