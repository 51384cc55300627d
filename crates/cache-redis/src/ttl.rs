//! A value with the time it has left, for a tiered cache that must not keep a copy longer than
//! the original: `GET` and `PTTL` of one key, in one round trip.

use std::time::Duration;

use cache_core::{Bytes, Result, Stat, Ttl};
use futures_util::future::try_join;

use crate::cluster::Route;
use crate::{Kind, RedisCache, Topology};

/// The operation's name in traces.
const OP: &str = "get_with_ttl";

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
