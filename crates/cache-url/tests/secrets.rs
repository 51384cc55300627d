//! No error and no `Debug` output holds a password of the URL, on every path this crate's
//! parsing can take: each URL below carries `S3CRET` as a password and fails somewhere else.

#![cfg(all(feature = "tiered", feature = "tls"))]

mod common;

use cache_url::{CacheError, CacheUrl, from_url};
use common::everything_printed;

const SECRET: &str = "S3CRET";

/// Each URL fails on a different check; `S3CRET` is always a password (or `pass=` of a unix
/// socket, or the sentinels' password).
const FAILING: [&str; 27] = [
    // The scheme and the split.
    "S3CRET://h",
    "redis//u:S3CRET@h",
    "http://u:S3CRET@h",
    "redis://u:S3CRET?x@h/",
    "redis://u:S3CRET#x@h/",
    "memory://u:S3CRET@",
    // This crate's parameters: unknown, given twice, bad values.
    "redis://u:S3CRET@h/?nope=1",
    "redis://u:S3CRET@h/?timeout=1s&timeout=2s",
    "redis://u:S3CRET@h/?timeout=soon",
    "redis://u:S3CRET@h/?pool_size=0",
    "redis://u:S3CRET@h/?max_size=0",
    "redis://u:S3CRET@h/?read_from_replicas=true",
    "rediss+cluster://u:S3CRET@h1,h2?read_from_replicas=maybe",
    "redis+sentinel://u:S3CRET@h/m?sentinel_username=admin",
    "unix:///run/redis.sock?pass=S3CRET&db=1&timeout=0s",
    "tiered+redis://u:S3CRET@h/?l1_ttl=0s",
    "tiered+redis://u:S3CRET@h/?l2_timeout=5ms",
    "tiered+rediss://u:S3CRET@h/?circuit_breaker=x",
    // What cache-redis refuses.
    "redis://u:S3CRET@h:99999/",
    "redis://u:S3CRET@/0",
    "redis://u:S3CRET@h/db",
    "redis://u:S3CRET@0.0.0.0/",
    "rediss://u:S3CRET@h/#notinsecure",
    "redis+cluster://u:S3CRET@h1,,h3",
    "redis+sentinel://u:S3CRET@h1,h2",
    "tiered+redis+cluster://u:S3CRET@h/2",
    "unix://u:S3CRET@relative.sock",
];

#[test]
fn no_error_holds_the_password() {
    for url in FAILING {
        let err = CacheUrl::parse(url).expect_err(url);
        assert!(
            matches!(err, CacheError::InvalidConfig { .. }),
            "{url}: {err:?}"
        );
        let printed = everything_printed(&err);
        assert!(!printed.contains(SECRET), "{url}: {printed}");
        let again = from_url(url).expect_err(url);
        assert!(!everything_printed(&again).contains(SECRET), "{url}");
    }
}

#[test]
fn no_debug_output_holds_the_password() {
    for url in [
        "redis://app:S3CRET@h:6379/1?namespace=n:",
        "rediss://app:S3CRET@h/#insecure",
        "valkey://:S3CRET@h",
        "redis+unix:///run/redis.sock?user=app&pass=S3CRET&db=2",
        "redis+cluster://app:S3CRET@h1:7000,h2:7001?read_from_replicas=true",
        "rediss+sentinel://app:S3CRET@h1,h2/mymaster/3?sentinel_password=S3CRET",
        "tiered+redis://app:S3CRET@h/?fail_safe=1m",
        "tiered+rediss+cluster://app:S3CRET@h1,h2?l1_max_capacity=10",
        "tiered+redis+sentinel://app:S3CRET@h/m?sentinel_username=s&sentinel_password=S3CRET",
    ] {
        let parsed = CacheUrl::parse(url).unwrap_or_else(|err| panic!("{url}: {err}"));
        let debug = format!("{parsed:?} {parsed:#?}");
        assert!(!debug.contains(SECRET), "{url}: {debug}");
        assert!(debug.contains("<redacted>"), "{url}: {debug}");
        let cache = parsed.build().unwrap();
        let debug = format!("{cache:?} {cache:#?}");
        assert!(!debug.contains(SECRET), "{url}: {debug}");
    }
}
