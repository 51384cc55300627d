//! `memory://` URLs: the parameters of a `MemoryCacheBuilder`.

use std::time::Duration;

use cache_core::Result;
use cache_memory::{MemoryCache, MemoryCacheBuilder};

use crate::invalid;
use crate::params::{Query, bytes, count, duration, positive_duration};

/// The parameters of a `memory://` URL.
pub(crate) const PARAMS: [&str; 6] = [
    "name",
    "max_capacity",
    "max_bytes",
    "time_to_idle",
    "keep_expired_for",
    "sweep_interval",
];

/// The longest `time_to_idle` a `MemoryCache` takes: 73 years of 365 days.
const MAX_TIME_TO_IDLE: Duration = Duration::from_secs(73 * 365 * 86_400);

/// The builder a `memory://` URL describes; `body` (between `memory://` and the query) must be
/// empty or `/`, and there is no fragment.
pub(crate) fn builder(
    body: &str,
    fragment: Option<&str>,
    mut query: Query<'_>,
) -> Result<MemoryCacheBuilder> {
    if !matches!(body, "" | "/") || fragment.is_some() {
        return Err(invalid(
            "a memory:// url has no host, path or fragment; its settings are query parameters, \
             as in memory://?max_capacity=10000"
                .into(),
        ));
    }
    let mut builder = bounds(
        MemoryCache::builder(),
        &mut query,
        "max_capacity",
        "max_bytes",
    )?;
    if let Some(name) = query.take("name") {
        builder = builder.name(name);
    }
    if let Some(value) = query.take("time_to_idle") {
        let idle = positive_duration("time_to_idle", &value)?;
        // `MemoryCacheBuilder::build`'s bound, checked here so that `CacheUrl::parse` finds it.
        if idle > MAX_TIME_TO_IDLE {
            return Err(invalid(format!(
                "the cache url's parameter time_to_idle={value:?} is not valid: expected at \
                 most 73 years"
            )));
        }
        builder = builder.time_to_idle(idle);
    }
    if let Some(value) = query.take("keep_expired_for") {
        builder = builder.keep_expired_for(duration("keep_expired_for", &value)?);
    }
    if let Some(value) = query.take("sweep_interval") {
        builder = builder.sweep_interval(positive_duration("sweep_interval", &value)?);
    }
    query.finish("memory", &PARAMS, |name| match name {
        "l1_max_capacity" | "l1_max_bytes" | "l1_ttl" => {
            Some("the l1_ settings are for tiered+redis:// urls")
        }
        _ => None,
    })?;
    Ok(builder)
}

/// The entry and byte bounds, read from the parameters `capacity` and `max_bytes` (named
/// `l1_max_capacity` and `l1_max_bytes` in a tiered URL).
pub(crate) fn bounds(
    mut builder: MemoryCacheBuilder,
    query: &mut Query<'_>,
    capacity: &str,
    max_bytes: &str,
) -> Result<MemoryCacheBuilder> {
    if let Some(value) = query.take(capacity) {
        builder = builder.max_capacity(count(capacity, &value)?);
    }
    if let Some(value) = query.take(max_bytes) {
        builder = builder.max_bytes(bytes(max_bytes, &value, MemoryCache::ENTRY_OVERHEAD)?);
    }
    Ok(builder)
}
