//! One server at a fixed address, or the master that sentinels name: every command goes to
//! it, with no routing (see [`cluster`](crate::cluster) for the other case).

use std::sync::Arc;
use std::time::Duration;

use cache_core::{CacheError, Result};
use redis::FromRedisValue;

use crate::Kind;
use crate::connections::{Connections, Request, SendError};
use crate::errors;
use crate::manager::Sentinels;

/// One server at a fixed address, or the master that sentinels name, followed through
/// failovers, with connections to its replicas for reads with `read_from_replicas`.
pub(crate) struct Direct {
    pub(crate) master: Connections,
    pub(crate) replicas: Option<Connections>,
    pub(crate) sentinels: Option<Arc<Sentinels>>,
}

impl Direct {
    /// Sends `request` within `timeout`: to the server, or to the master (a read to a
    /// replica with `read_from_replicas`).
    pub(crate) async fn send<T: FromRedisValue + Send>(
        &self,
        timeout: Duration,
        kind: Kind,
        request: Request<'_>,
    ) -> Result<T> {
        let Some(sentinels) = &self.sentinels else {
            return single(&self.master, timeout, kind, request).await;
        };
        sentinels.watch(&self.master, self.replicas.as_ref());
        let replicas = self.replicas.as_ref().filter(|_| kind == Kind::Read);
        // Boxed, like the cluster's, so that one server's future stays small.
        Box::pin(behind_sentinels(
            &self.master,
            replicas,
            timeout,
            kind,
            request,
        ))
        .await
    }

    /// Closes the pools; later commands fail with [`CacheError::Closed`].
    pub(crate) fn close(&self) {
        self.master.close();
        if let Some(replicas) = &self.replicas {
            replicas.close();
        }
    }
}

/// Sends `request` to the one server within `timeout`, on a leased connection; the deadline
/// covers the lease too.
///
/// A timeout with no reply on the connection since the operation started, or an error that
/// may have broken the connection, retires the connection from its lane. Only reads are sent
/// again, and only when their connection was lost: a write that failed midway has an unknown
/// outcome.
async fn single<T: FromRedisValue + Send>(
    connections: &Connections,
    timeout: Duration,
    kind: Kind,
    request: Request<'_>,
) -> Result<T> {
    // One clock read for both the deadline and the lanes' clock.
    let now = tokio::time::Instant::now();
    let started = connections.ms_at(now);
    let mut leased = None;
    let outcome = tokio::time::timeout_at(now + timeout, async {
        let mut again = kind != Kind::Write;
        let mut lane = None;
        loop {
            match connections
                .send(started, lane, request, false, &mut leased)
                .await
            {
                Ok(value) => return Ok(value),
                Err(SendError::NotSent(err)) => return Err(errors::from_refill(err, timeout)),
                Err(SendError::Failed(err, id)) => {
                    if again && errors::lost_connection(&err) {
                        // On the same lane, which now waits for a new connection: another
                        // lane may hold a dead one too.
                        again = false;
                        lane = Some(id.lane);
                        continue;
                    }
                    return Err(errors::from_redis(err, timeout));
                }
            }
        }
    })
    .await;
    match outcome {
        Ok(result) => result,
        Err(_elapsed) => {
            connections.retire_if_silent(leased, started);
            Err(CacheError::Timeout { after: timeout })
        }
    }
}

/// A read sent to a replica when there are `replicas`, else (or when no replica can serve
/// it) to the master; both within `timeout`.
async fn behind_sentinels<T: FromRedisValue + Send>(
    master: &Connections,
    replicas: Option<&Connections>,
    timeout: Duration,
    kind: Kind,
    request: Request<'_>,
) -> Result<T> {
    let Some(replicas) = replicas else {
        return single(master, timeout, kind, request).await;
    };
    let deadline = tokio::time::Instant::now() + timeout;
    // Half the time for the replica, so that the master can still answer if it is silent.
    match single(replicas, timeout / 2, Kind::Read, request).await {
        Err(CacheError::Unavailable { .. } | CacheError::Timeout { .. }) => {}
        done => return done,
    }
    let left = deadline.saturating_duration_since(tokio::time::Instant::now());
    if left.is_zero() {
        return Err(CacheError::Timeout { after: timeout });
    }
    single(master, left, Kind::Read, request)
        .await
        .map_err(|err| match err {
            CacheError::Timeout { .. } => CacheError::Timeout { after: timeout },
            other => other,
        })
}
