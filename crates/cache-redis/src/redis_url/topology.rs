//! TEMPORARY stub, replaced by the branch issue12-urls.
use cache_core::Result;
use redis::{ConnectionInfo, RedisConnectionInfo};

pub(crate) enum Topology {
    Single(ConnectionInfo),
    Cluster(Vec<ConnectionInfo>),
    Sentinel {
        master_name: String,
        sentinels: Vec<ConnectionInfo>,
        node: RedisConnectionInfo,
        tls: bool,
    },
}

pub(crate) fn topology(text: &str) -> Result<Topology> {
    super::connection_info(text).map(Topology::Single)
}
