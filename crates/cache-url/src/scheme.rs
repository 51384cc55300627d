//! The schemes a cache URL may start with, and the cargo feature each one needs.

/// How the Redis part of a URL reaches its servers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Topology {
    /// `redis://`, `rediss://`, `valkey://`, `valkeys://`.
    Single,
    /// `redis+unix://`, `valkey+unix://`, `unix://`.
    Unix,
    /// `redis+cluster://`, `rediss+cluster://`.
    Cluster,
    /// `redis+sentinel://`, `rediss+sentinel://`.
    Sentinel,
}

/// A scheme that cache-redis reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RedisScheme {
    /// The scheme, lowercase, as cache-redis is given it.
    pub(crate) name: &'static str,
    pub(crate) topology: Topology,
    /// Whether it connects over TLS (feature `tls`).
    pub(crate) tls: bool,
}

/// Every scheme cache-redis reads (`cache_redis::RedisCacheBuilder::url`).
const REDIS_SCHEMES: [RedisScheme; 11] = [
    redis("redis", Topology::Single, false),
    redis("rediss", Topology::Single, true),
    redis("valkey", Topology::Single, false),
    redis("valkeys", Topology::Single, true),
    redis("redis+unix", Topology::Unix, false),
    redis("valkey+unix", Topology::Unix, false),
    redis("unix", Topology::Unix, false),
    redis("redis+cluster", Topology::Cluster, false),
    redis("rediss+cluster", Topology::Cluster, true),
    redis("redis+sentinel", Topology::Sentinel, false),
    redis("rediss+sentinel", Topology::Sentinel, true),
];

const fn redis(name: &'static str, topology: Topology, tls: bool) -> RedisScheme {
    RedisScheme {
        name,
        topology,
        tls,
    }
}

/// The prefix of a tiered URL's scheme: `tiered+` and a Redis scheme.
const TIERED_PREFIX: &str = "tiered+";

/// What a URL's scheme asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Scheme {
    /// `memory://`.
    Memory,
    /// One of the Redis schemes.
    Redis(RedisScheme),
    /// `tiered+` and one of the Redis schemes: memory over Redis.
    Tiered(RedisScheme),
}

impl Scheme {
    /// The scheme named `name`, in any case.
    pub(crate) fn of(name: &str) -> Option<Self> {
        let name = name.to_ascii_lowercase();
        if name == "memory" {
            return Some(Self::Memory);
        }
        if let Some(redis) = name.strip_prefix(TIERED_PREFIX) {
            return redis_scheme(redis).map(Self::Tiered);
        }
        redis_scheme(&name).map(Self::Redis)
    }

    /// The cargo features of cache-url this scheme needs that are off (`tls` stands for
    /// `redis` too, which it enables).
    pub(crate) fn missing_features(self) -> Vec<&'static str> {
        let tls = |redis: RedisScheme| redis.tls && !cfg!(feature = "tls");
        let mut missing = Vec::new();
        match self {
            Self::Memory if !cfg!(feature = "memory") => missing.push("memory"),
            Self::Memory => {}
            Self::Redis(redis) if tls(redis) => missing.push("tls"),
            Self::Redis(_) if !cfg!(feature = "redis") => missing.push("redis"),
            Self::Redis(_) => {}
            Self::Tiered(redis) => {
                if !cfg!(feature = "tiered") {
                    missing.push("tiered");
                }
                if tls(redis) {
                    missing.push("tls");
                }
            }
        }
        missing
    }

    /// The scheme as written in docs and errors, such as `tiered+redis+cluster`.
    pub(crate) fn name(self) -> String {
        match self {
            Self::Memory => "memory".into(),
            Self::Redis(redis) => redis.name.into(),
            Self::Tiered(redis) => format!("{TIERED_PREFIX}{}", redis.name),
        }
    }
}

fn redis_scheme(name: &str) -> Option<RedisScheme> {
    REDIS_SCHEMES
        .iter()
        .copied()
        .find(|scheme| scheme.name == name)
}

/// Every accepted form, for the error about a scheme that is missing or unknown.
pub(crate) const FORMS: &str = "expected memory://[?params], redis://, rediss://, valkey://, \
    valkeys://, redis+unix://, valkey+unix://, unix://, redis+cluster://, rediss+cluster://, \
    redis+sentinel:// or rediss+sentinel:// followed by what cache-redis reads, or tiered+ \
    followed by one of the redis forms";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_scheme_is_recognised_in_any_case() {
        assert_eq!(Scheme::of("memory"), Some(Scheme::Memory));
        assert_eq!(Scheme::of("MEMORY"), Some(Scheme::Memory));
        for redis in REDIS_SCHEMES {
            assert_eq!(Scheme::of(redis.name), Some(Scheme::Redis(redis)));
            assert_eq!(
                Scheme::of(&format!("Tiered+{}", redis.name.to_uppercase())),
                Some(Scheme::Tiered(redis))
            );
            assert_eq!(
                Scheme::of(redis.name).map(Scheme::name).as_deref(),
                Some(redis.name)
            );
        }
        for unknown in [
            "",
            "http",
            "tiered",
            "tiered+memory",
            "tiered+tiered+redis",
            "redis+tiered",
        ] {
            assert_eq!(Scheme::of(unknown), None, "{unknown}");
        }
    }

    #[test]
    fn a_scheme_names_the_features_it_misses() {
        let missing = |name: &str| Scheme::of(name).unwrap().missing_features();
        let off = |on: bool, feature: &'static str| if on { vec![] } else { vec![feature] };
        assert_eq!(missing("memory"), off(cfg!(feature = "memory"), "memory"));
        assert_eq!(missing("unix"), off(cfg!(feature = "redis"), "redis"));
        assert_eq!(
            missing("redis+cluster"),
            off(cfg!(feature = "redis"), "redis")
        );
        assert_eq!(missing("rediss"), off(cfg!(feature = "tls"), "tls"));
        assert_eq!(
            missing("tiered+redis"),
            off(cfg!(feature = "tiered"), "tiered")
        );
        let mut both = off(cfg!(feature = "tiered"), "tiered");
        both.extend(off(cfg!(feature = "tls"), "tls"));
        assert_eq!(missing("tiered+rediss+sentinel"), both);
    }
}
