#![doc = include_str!("../README.md")]
// Feature badges on docs.rs, which builds with nightly and `--cfg docsrs`; `doc(cfg)` is not
// stable yet (Rust 1.95), so local and CI doc builds leave `docsrs` unset.
#![cfg_attr(docsrs, feature(doc_cfg))]
// Without a backend feature, no URL gets past its scheme: the readers of parameters and the
// rest of `CacheUrl::parse` go unused.
#![cfg_attr(
    not(any(feature = "memory", feature = "redis")),
    allow(dead_code, unused_variables, unreachable_code)
)]

#[cfg(feature = "memory")]
mod memory;
mod params;
mod parts;
#[cfg(feature = "redis")]
mod redis;
mod scheme;
#[cfg(feature = "tiered")]
mod tiered;

use std::fmt;
use std::str::FromStr;

pub use cache_core::{
    AnyCache, BoxError, Bytes, Cache, CacheError, CacheExt, CacheStats, Result, Ttl,
};

use crate::params::Query;
use crate::parts::Parts;
use crate::scheme::Scheme;

/// Makes the cache that `url` describes, behind an [`AnyCache`]: a `MemoryCache`, a
/// `RedisCache` (one server, a Redis Cluster or Sentinel) or a `TieredCache` of the two.
///
/// The same as [`CacheUrl::parse`] and [`CacheUrl::build`]. Does no network I/O, and needs no
/// runtime: a Redis cache connects on its first operation. The only I/O is reading the file
/// of `ca_file=`.
///
/// ```
/// use cache_url::Cache;
///
/// # #[cfg(not(feature = "memory"))] fn main() {} // memory:// needs it
/// # #[cfg(feature = "memory")]
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> cache_url::Result<()> {
/// let cache = cache_url::from_url("memory://?max_capacity=10000&time_to_idle=5m")?;
/// cache.set("user:1", "Ada", None).await?;
/// assert_eq!(cache.get("user:1").await?.as_deref(), Some("Ada"));
/// # Ok(())
/// # }
/// ```
///
/// # Errors
/// [`CacheError::InvalidConfig`] for a URL that is not valid: a scheme that is unknown or
/// whose cargo feature is off (the message names the feature), an unknown parameter (named,
/// without its value) or a bad value (named, with its value), and whatever cache-redis finds
/// wrong with the Redis part. No message repeats the URL or a password.
pub fn from_url(url: &str) -> Result<AnyCache> {
    CacheUrl::parse(url)?.build()
}

/// A cache URL, read and checked: the settings of the cache it describes, kept to
/// [`build`](Self::build) later.
///
/// `Debug` shows the settings but never the Redis URL or a password, so a configuration
/// that holds a `CacheUrl` instead of the URL's text can be logged.
///
/// ```
/// use cache_url::CacheUrl;
///
/// # #[cfg(feature = "redis")] {
/// // With the `redis` feature.
/// let url: CacheUrl = "redis://app:s3cret@cache.internal:6379/2?namespace=traces:&timeout=250ms"
///     .parse()?;
/// assert!(!format!("{url:?}").contains("s3cret"));
/// let cache = url.build()?; // no I/O: Redis is connected to by the first operation
/// # drop(cache);
/// # }
/// # Ok::<(), cache_url::CacheError>(())
/// ```
#[derive(Clone)]
pub struct CacheUrl {
    spec: Spec,
}

/// What a URL describes, by backend.
// A configuration parsed once and built once: the size of its variants does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug)]
enum Spec {
    #[cfg(feature = "memory")]
    Memory(cache_memory::MemoryCacheBuilder),
    #[cfg(feature = "redis")]
    Redis(redis::RedisSpec),
    #[cfg(feature = "tiered")]
    Tiered(tiered::TieredSpec),
}

impl CacheUrl {
    /// Reads and checks `url`; see the crate's documentation for the forms and parameters.
    ///
    /// Everything is checked here but the file of `ca_file=`, read by
    /// [`build`](Self::build): the scheme, every parameter and its value, and the Redis part of
    /// the URL (by cache-redis, as `RedisCacheBuilder::build` checks it, without I/O).
    ///
    /// # Errors
    /// [`CacheError::InvalidConfig`], as for [`from_url`].
    pub fn parse(url: &str) -> Result<Self> {
        let parts = Parts::of(url)?;
        let missing = parts.scheme.missing_features();
        if !missing.is_empty() {
            return Err(feature_off(parts.scheme, &missing));
        }
        let query = Query::parse(parts.query)?;
        let spec = match parts.scheme {
            #[cfg(feature = "memory")]
            Scheme::Memory => Spec::Memory(memory::builder(parts.body, parts.fragment, query)?),
            #[cfg(feature = "redis")]
            Scheme::Redis(scheme) => {
                let mut query = query;
                let spec = redis::RedisSpec::parse(scheme, &parts, &mut query)?;
                query.finish(scheme.name, &redis::params(scheme), |name| {
                    redis::hint(scheme, name)
                })?;
                Spec::Redis(spec)
            }
            #[cfg(feature = "tiered")]
            Scheme::Tiered(scheme) => {
                Spec::Tiered(tiered::TieredSpec::parse(scheme, &parts, query)?)
            }
            // Only schemes whose feature is off, refused above.
            #[allow(unreachable_patterns)]
            _ => return Err(feature_off(parts.scheme, &parts.scheme.missing_features())),
        };
        Ok(Self { spec })
    }

    /// Makes the cache, behind an [`AnyCache`]. Does no network I/O; each call makes a cache
    /// of its own (with its own connections).
    ///
    /// # Errors
    /// [`CacheError::InvalidConfig`] when the file of `ca_file=` cannot be read or holds no
    /// valid PEM certificate.
    pub fn build(&self) -> Result<AnyCache> {
        match self.spec {
            #[cfg(feature = "memory")]
            Spec::Memory(ref builder) => Ok(AnyCache::new(builder.clone().build()?)),
            #[cfg(feature = "redis")]
            Spec::Redis(ref spec) => Ok(AnyCache::new(spec.build()?)),
            #[cfg(feature = "tiered")]
            Spec::Tiered(ref spec) => Ok(AnyCache::new(spec.build()?)),
        }
    }
}

impl FromStr for CacheUrl {
    type Err = CacheError;

    /// [`CacheUrl::parse`].
    fn from_str(url: &str) -> Result<Self> {
        Self::parse(url)
    }
}

impl fmt::Debug for CacheUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("CacheUrl").field(&self.spec).finish()
    }
}

/// The error for a scheme whose cargo feature is off.
fn feature_off(scheme: Scheme, missing: &[&str]) -> CacheError {
    let features = match missing {
        [one] => format!("the `{one}` feature"),
        many => format!(
            "the {} features",
            many.iter()
                .map(|feature| format!("`{feature}`"))
                .collect::<Vec<_>>()
                .join(" and ")
        ),
    };
    invalid(format!(
        "a {}:// url needs {features} of cache-url; enable it in Cargo.toml",
        scheme.name()
    ))
}

fn invalid(reason: String) -> CacheError {
    CacheError::InvalidConfig {
        reason,
        source: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reason(url: &str) -> String {
        match CacheUrl::parse(url) {
            Err(CacheError::InvalidConfig { reason, .. }) => reason,
            Err(other) => panic!("{url}: {other:?}"),
            Ok(_) => panic!("{url}: accepted"),
        }
    }

    /// Each scheme whose feature is off in this build names the feature to enable, and
    /// nothing of the URL but its scheme.
    #[test]
    fn a_scheme_whose_feature_is_off_names_the_feature() {
        let cases = [
            (
                "memory://?max_capacity=1",
                "`memory` feature",
                cfg!(feature = "memory"),
            ),
            (
                "redis://u:s3cret@h/0",
                "`redis` feature",
                cfg!(feature = "redis"),
            ),
            (
                "redis+cluster://u:s3cret@h1,h2",
                "`redis` feature",
                cfg!(feature = "redis"),
            ),
            (
                "unix:///run/redis.sock?pass=s3cret",
                "`redis` feature",
                cfg!(feature = "redis"),
            ),
            (
                "rediss://u:s3cret@h",
                "`tls` feature",
                cfg!(feature = "tls"),
            ),
            (
                "tiered+redis://u:s3cret@h",
                "`tiered` feature",
                cfg!(feature = "tiered"),
            ),
            (
                "tiered+rediss+sentinel://u:s3cret@h/m",
                "the `tiered` and `tls` features",
                cfg!(feature = "tiered") || cfg!(feature = "tls"),
            ),
        ];
        let mut checked = 0;
        for (url, feature, on) in cases {
            if on {
                continue;
            }
            let reason = reason(url);
            assert!(reason.contains(feature), "{url}: {reason}");
            assert!(reason.contains("of cache-url"), "{url}: {reason}");
            assert!(!reason.contains("s3cret"), "{url}: {reason}");
            checked += 1;
        }
        // Every build but the all-features one has a feature off.
        assert!(checked > 0 || cfg!(all(feature = "memory", feature = "tiered", feature = "tls")));
    }
}
