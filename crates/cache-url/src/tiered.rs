//! `tiered+<redis form>://` URLs: a `MemoryCache` over a `RedisCache`, kept coherent by a
//! `RedisBackplane` on the Redis cache's namespace.

use std::time::Duration;

use cache_core::Result;
use cache_memory::{MemoryCache, MemoryCacheBuilder};
use cache_redis::RedisBackplane;
use cache_tiered::{TieredCache, TieredCacheBuilder};

use crate::memory;
use crate::params::{Query, breaker, fraction, positive_duration};
use crate::parts::Parts;
use crate::redis::{self, RedisSpec};
use crate::scheme::RedisScheme;

/// The parameters of a tiered URL besides the Redis ones.
pub(crate) const PARAMS: [&str; 8] = [
    "l1_max_capacity",
    "l1_max_bytes",
    "l1_ttl",
    "ttl_jitter",
    "fail_safe",
    "l2_timeout",
    "circuit_breaker",
    "eager_refresh",
];

/// A tiered URL, read.
#[derive(Clone, Debug)]
pub(crate) struct TieredSpec {
    l1: MemoryCacheBuilder,
    l2: RedisSpec,
    settings: Settings,
}

/// The settings of the `TieredCacheBuilder`, each `None` for its default.
#[derive(Clone, Debug, Default)]
struct Settings {
    l1_ttl: Option<Duration>,
    ttl_jitter: Option<f64>,
    fail_safe: Option<Duration>,
    l2_timeout: Option<Duration>,
    circuit_breaker: Option<(u32, Duration)>,
    eager_refresh: Option<f64>,
}

impl TieredSpec {
    pub(crate) fn parse(
        scheme: RedisScheme,
        parts: &Parts<'_>,
        mut query: Query<'_>,
    ) -> Result<Self> {
        let mut l1 = memory::bounds(
            MemoryCache::builder(),
            &mut query,
            "l1_max_capacity",
            "l1_max_bytes",
        )?;
        let below_one = |f: f64| (0.0..1.0).contains(&f);
        let between = |f: f64| f > 0.0 && f < 1.0;
        let settings = Settings {
            l1_ttl: take(&mut query, "l1_ttl", positive_duration)?,
            ttl_jitter: take(&mut query, "ttl_jitter", |name, value| {
                fraction(
                    name,
                    value,
                    below_one,
                    "a fraction at least 0 and below 1, as in 0.1",
                )
            })?,
            fail_safe: take(&mut query, "fail_safe", positive_duration)?,
            l2_timeout: take(&mut query, "l2_timeout", positive_duration)?,
            circuit_breaker: take(&mut query, "circuit_breaker", breaker)?,
            eager_refresh: take(&mut query, "eager_refresh", |name, value| {
                fraction(
                    name,
                    value,
                    between,
                    "a fraction above 0 and below 1, as in 0.8",
                )
            })?,
        };
        if settings.l2_timeout.is_some() && settings.fail_safe.is_none() {
            return Err(crate::invalid(
                "the cache url's l2_timeout gives up on L2 to serve a fail-safe value: it needs \
                 fail_safe"
                    .into(),
            ));
        }
        if let Some(max_stale) = settings.fail_safe {
            // What the fail-safe serves: L1 keeps expired entries that long.
            l1 = l1.keep_expired_for(max_stale);
        }
        let l2 = RedisSpec::parse(scheme, parts, &mut query)?;
        if let Some(name) = &l2.name {
            // One name for the three caches: their metrics tell them apart by `backend`.
            l1 = l1.name(name.clone());
        }
        let mut known = PARAMS.to_vec();
        known.extend(redis::params(scheme));
        query.finish(&format!("tiered+{}", scheme.name), &known, |name| {
            redis::hint(scheme, name)
        })?;
        Ok(Self { l1, l2, settings })
    }

    /// Makes the cache (no I/O).
    pub(crate) fn build(
        &self,
    ) -> Result<TieredCache<MemoryCache, cache_redis::RedisCache, RedisBackplane>> {
        let l2 = self.l2.build()?;
        let backplane = RedisBackplane::for_cache(&l2);
        let l1 = self.l1.clone().build()?;
        let s = &self.settings;
        let mut builder: TieredCacheBuilder<_, _, _> =
            TieredCache::builder(l1, l2).backplane(backplane);
        if let Some(name) = &self.l2.name {
            builder = builder.name(name.clone());
        }
        if let Some(l1_ttl) = s.l1_ttl {
            builder = builder.l1_ttl(l1_ttl);
        }
        if let Some(jitter) = s.ttl_jitter {
            builder = builder.ttl_jitter(jitter);
        }
        if let Some(max_stale) = s.fail_safe {
            builder = builder.fail_safe(max_stale);
        }
        if let Some(timeout) = s.l2_timeout {
            builder = builder.l2_timeout(timeout);
        }
        if let Some((failures, duration)) = s.circuit_breaker {
            builder = builder.circuit_breaker(failures, duration);
        }
        if let Some(fraction) = s.eager_refresh {
            builder = builder.eager_refresh(fraction);
        }
        builder.build()
    }
}

/// The value of `name`, read by `read`, if given.
fn take<T>(
    query: &mut Query<'_>,
    name: &str,
    read: impl Fn(&str, &str) -> Result<T>,
) -> Result<Option<T>> {
    query.take(name).map(|value| read(name, &value)).transpose()
}
