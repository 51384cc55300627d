//! The cache in front of the database, chosen by `CACHE_URL`.

use cache_url::{AnyCache, Result};

/// `CACHE_URL`'s default: an in-process cache of at most 100,000 traces, named `traces` in
/// the metrics.
pub const DEFAULT_CACHE_URL: &str = "memory://?max_capacity=100000&name=traces";

/// What `CACHE_URL` is set to for several instances on one Redis: a `TieredCache` whose L1
/// holds at most 100,000 traces for at most 60 s (the bound on how stale another instance's
/// copy can be if an invalidation message is lost), over Redis database `db` under the
/// namespace `trace-service:`, with a `RedisBackplane` on that namespace.
///
/// ```
/// assert_eq!(
///     trace_service::tiered_cache_url("redis://127.0.0.1:6379/0"),
///     "tiered+redis://127.0.0.1:6379/0?namespace=trace-service:&l1_max_capacity=100000\
///      &l1_ttl=60s&name=traces"
/// );
/// ```
pub fn tiered_cache_url(redis_url: &str) -> String {
    format!(
        "tiered+{redis_url}?namespace=trace-service:&l1_max_capacity=100000&l1_ttl=60s\
         &name=traces"
    )
}

/// The cache that `url` names, or `None` for `none` (no caching: every read goes to the
/// database).
///
/// Any URL of the workspace's [`cache_url`] crate: `memory://?...`, `redis://...`,
/// `redis+cluster://...`, `redis+sentinel://...`, `rediss://...`, and a tiered cache over any
/// of them, `tiered+redis://...` (see [`tiered_cache_url`]), which several instances on one
/// Redis need to see each other's writes at once.
///
/// Builds without I/O: an unreachable Redis shows up on the first request (and is served
/// from the database then, see the `api` module).
///
/// # Errors
/// `CacheError::InvalidConfig` for a URL that is not valid; it names what is wrong and
/// never holds a password.
pub fn cache_from_url(url: &str) -> Result<Option<AnyCache>> {
    if url == "none" {
        return Ok(None);
    }
    cache_url::from_url(url).map(Some)
}

/// What `CACHE_URL` names, for the startup line: its scheme, never the rest of the URL.
pub(crate) fn describe(url: &str) -> &str {
    match url.split_once("://") {
        Some((scheme, _))
            if scheme
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'+') =>
        {
            scheme
        }
        _ if url == "none" => "none",
        _ => "not a url",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cache_url::CacheError;

    #[tokio::test]
    async fn none_memory_and_redis_urls_build_without_io() {
        assert!(cache_from_url("none").unwrap().is_none());
        assert!(cache_from_url(DEFAULT_CACHE_URL).unwrap().is_some());
        // Port 1: nothing listens there, and building does not try.
        assert!(cache_from_url("redis://127.0.0.1:1/0").unwrap().is_some());
        let tiered = cache_from_url(&tiered_cache_url("redis://127.0.0.1:1/0"))
            .unwrap()
            .unwrap();
        let debug = format!("{tiered:?}");
        assert!(debug.contains("namespace: \"trace-service:\""), "{debug}");
    }

    #[test]
    fn an_unknown_scheme_or_parameter_is_a_config_error() {
        for url in ["memcached://127.0.0.1:11211", "memory://?max_capacty=10"] {
            let err = cache_from_url(url).unwrap_err();
            assert!(matches!(err, CacheError::InvalidConfig { .. }), "{err}");
        }
    }

    #[test]
    fn describe_shows_the_scheme_only() {
        assert_eq!(
            describe("tiered+redis://:hunter2@cache:6379/0"),
            "tiered+redis"
        );
        assert_eq!(describe("none"), "none");
        assert_eq!(describe("hunter2"), "not a url");
    }
}
