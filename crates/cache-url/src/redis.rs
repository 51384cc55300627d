//! The Redis forms: this crate's parameters set on a `RedisCacheBuilder`, and the rest of
//! the URL (redis-rs's own parameters included) handed to `RedisCacheBuilder::url`, which
//! reads and checks it.

use std::path::PathBuf;

use cache_core::Result;
use cache_redis::{RedisCache, RedisCacheBuilder};

use crate::invalid;
use crate::params::{Query, bytes, count, positive_duration, switch};
use crate::parts::Parts;
use crate::scheme::{RedisScheme, Topology};

/// The parameters redis-rs reads from every URL form: the RESP version.
const REDIS_RS: [&str; 1] = ["protocol"];
/// The parameters redis-rs reads from a unix socket URL: the database and the credentials.
const REDIS_RS_UNIX: [&str; 4] = ["protocol", "db", "user", "pass"];

/// A Redis URL, read: the builder, and the CA certificate's file (read by `build`).
///
/// `Debug` never prints the URL (the builder's redacts it) or a password.
#[derive(Clone, Debug)]
pub(crate) struct RedisSpec {
    /// Shown by `Debug`, for a reader to tell the topology.
    #[allow(dead_code)]
    scheme: &'static str,
    builder: RedisCacheBuilder,
    /// `name=`, already set on the builder; a tiered URL names its other parts with it too.
    pub(crate) name: Option<String>,
    // Only TLS schemes take it, and they need the `tls` feature.
    #[cfg_attr(not(feature = "tls"), allow(dead_code))]
    ca_file: Option<PathBuf>,
}

impl RedisSpec {
    /// Takes this crate's Redis parameters and redis-rs's from `query`, leaving the rest
    /// for the caller to refuse (with [`finish`]).
    pub(crate) fn parse(
        scheme: RedisScheme,
        parts: &Parts<'_>,
        query: &mut Query<'_>,
    ) -> Result<Self> {
        let mut builder = RedisCacheBuilder::default();
        let name = query.take("name");
        if let Some(name) = &name {
            builder = builder.name(name.clone());
        }
        if let Some(namespace) = query.take("namespace") {
            builder = builder.namespace(namespace);
        }
        if let Some(value) = query.take("timeout") {
            builder = builder.timeout(positive_duration("timeout", &value)?);
        }
        if let Some(value) = query.take("pool_size") {
            builder = builder.pool_size(count("pool_size", &value)?);
        }
        if let Some(value) = query.take("max_size") {
            builder = builder.max_size(bytes("max_size", &value, 1)?);
        }
        if matches!(scheme.topology, Topology::Cluster | Topology::Sentinel)
            && let Some(value) = query.take("read_from_replicas")
        {
            builder = builder.read_from_replicas(switch("read_from_replicas", &value)?);
        }
        if scheme.topology == Topology::Sentinel {
            let username = query.take("sentinel_username");
            match query.take("sentinel_password") {
                Some(password) => builder = builder.sentinel_credentials(username, password),
                None if username.is_some() => {
                    return Err(invalid(
                        "the cache url's sentinel_username needs a sentinel_password".into(),
                    ));
                }
                None => {}
            }
        }
        let ca_file = if scheme.tls {
            query.take("ca_file").map(PathBuf::from)
        } else {
            None
        };
        let handed_on = query.take_raw(if scheme.topology == Topology::Unix {
            &REDIS_RS_UNIX
        } else {
            &REDIS_RS
        });
        let mut url = format!("{}://{}", scheme.name, parts.body);
        if !handed_on.is_empty() {
            url.push('?');
            url.push_str(&handed_on.join("&"));
        }
        if let Some(fragment) = parts.fragment {
            url.push('#');
            url.push_str(fragment);
        }
        let builder = builder.url(url);
        // cache-redis checks the URL when it builds, without I/O: a cache made and dropped
        // finds what is wrong with it now rather than in `CacheUrl::build`.
        builder.clone().build()?;
        Ok(Self {
            scheme: scheme.name,
            builder,
            name,
            ca_file,
        })
    }

    /// Makes the cache: reads the CA certificate's file, if any, then builds (no I/O).
    pub(crate) fn build(&self) -> Result<RedisCache> {
        let builder = self.builder.clone();
        #[cfg(feature = "tls")]
        let builder = match &self.ca_file {
            Some(path) => builder.ca_certificate(std::fs::read(path).map_err(|err| {
                cache_core::CacheError::InvalidConfig {
                    reason: format!("the cache url's ca_file {path:?} cannot be read"),
                    source: Some(Box::new(err)),
                }
            })?),
            None => builder,
        };
        builder.build()
    }
}

/// This crate's parameters that `scheme` reads, and redis-rs's.
pub(crate) fn params(scheme: RedisScheme) -> Vec<&'static str> {
    let mut params = vec!["name", "namespace", "timeout", "pool_size", "max_size"];
    if matches!(scheme.topology, Topology::Cluster | Topology::Sentinel) {
        params.push("read_from_replicas");
    }
    if scheme.topology == Topology::Sentinel {
        params.extend(["sentinel_username", "sentinel_password"]);
    }
    if scheme.tls {
        params.push("ca_file");
    }
    if scheme.topology == Topology::Unix {
        params.extend(REDIS_RS_UNIX);
    } else {
        params.extend(REDIS_RS);
    }
    params
}

/// Where a parameter that `scheme` does not read belongs, when that is known.
pub(crate) fn hint(scheme: RedisScheme, name: &str) -> Option<&'static str> {
    match name {
        "db" => Some(match scheme.topology {
            Topology::Cluster => "a redis cluster has only db 0",
            Topology::Sentinel => "the database is the path after the master name: /mymaster/2",
            Topology::Single | Topology::Unix => "the database is the path: redis://host:6379/2",
        }),
        "user" | "username" | "pass" | "password" => {
            Some("credentials go before the host: redis://user:password@host")
        }
        "read_from_replicas" => {
            Some("read_from_replicas applies to redis+cluster:// and redis+sentinel:// urls")
        }
        "sentinel_username" | "sentinel_password" => {
            Some("sentinel credentials apply to redis+sentinel:// urls")
        }
        "ca_file" => Some("ca_file applies to the tls forms: rediss://, rediss+cluster://, ..."),
        "max_capacity" | "max_bytes" | "time_to_idle" | "keep_expired_for" | "sweep_interval" => {
            Some(
                "memory settings are for memory:// urls, and l1_max_capacity and l1_max_bytes for tiered+ urls",
            )
        }
        _ => None,
    }
}
