//! What each failure says: a source chain that never repeats itself, a missing unix socket
//! named as such, a bad URL that names its wrong part, and never a password.

use std::error::Error;
use std::io;
use std::time::Duration;

mod common;

use cache_redis::{Cache, CacheError, RedisCache};
use common::everything_printed;
use redis_test_server::RedisServer;

const SECRET: &str = "hunter2-not-for-logs";

/// The text of `err` and of every error in its source chain, top first.
fn levels(err: &CacheError) -> Vec<String> {
    let mut levels = vec![err.to_string()];
    let mut source = err.source();
    while let Some(inner) = source {
        levels.push(inner.to_string());
        source = inner.source();
    }
    levels
}

/// Asserts that no level of `err`'s source chain prints what the next one prints: neither
/// the same text nor a text that contains it (a reporter prints every level).
fn assert_chain_does_not_repeat(err: &CacheError) {
    let levels = levels(err);
    for pair in levels.windows(2) {
        let (outer, inner) = (pair[0].trim(), pair[1].trim());
        assert!(
            !inner.is_empty() && !outer.contains(inner),
            "a level repeats the next one in {}",
            levels.join(" <- ")
        );
    }
}

/// The first `io::Error` in `err`'s source chain.
fn io_error(err: &CacheError) -> Option<&io::Error> {
    let mut source = err.source();
    while let Some(inner) = source {
        if let Some(io) = inner.downcast_ref::<io::Error>() {
            return Some(io);
        }
        source = inner.source();
    }
    None
}

fn closed_port() -> u16 {
    // Bind a port and close it again, so nothing listens there.
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[tokio::test]
async fn a_refused_connection_prints_each_cause_once_and_keeps_the_io_error() {
    let cache = RedisCache::from_url(format!("redis://127.0.0.1:{}", closed_port())).unwrap();
    let err = cache.ping().await.unwrap_err();
    assert!(matches!(err, CacheError::Unavailable { .. }), "{err:?}");
    assert!(err.to_string().contains("refused"), "{err}");
    assert_chain_does_not_repeat(&err);
    assert_eq!(
        io_error(&err).map(io::Error::kind),
        Some(io::ErrorKind::ConnectionRefused),
        "the io::Error is reachable through source(): {}",
        levels(&err).join(" <- ")
    );
}

#[tokio::test]
async fn noauth_and_wrongpass_chains_do_not_repeat_or_show_the_password() {
    let server = RedisServer::builder().password(SECRET).start();

    let no_password = RedisCache::from_url(server.url()).unwrap();
    let err = no_password.get("k").await.unwrap_err();
    assert_eq!(err.code(), Some("NOAUTH"), "{err:?}");
    assert_chain_does_not_repeat(&err);

    let wrong = "wrong-password-also-secret";
    let wrong_password = RedisCache::builder()
        .url(server.url())
        .password(wrong)
        .build()
        .unwrap();
    let err = wrong_password.get("k").await.unwrap_err();
    assert_eq!(err.code(), Some("WRONGPASS"), "{err:?}");
    assert!(err.to_string().contains("password"), "{err}");
    assert_chain_does_not_repeat(&err);
    let printed = everything_printed(&err);
    assert!(
        !printed.contains(wrong) && !printed.contains(SECRET),
        "{printed}"
    );
}

#[tokio::test]
async fn a_missing_unix_socket_says_the_file_does_not_exist() {
    let dir = std::env::temp_dir().join(format!("cache-redis-missing-{}", std::process::id()));
    let path = dir.join("does-not-exist.sock");
    let cache = RedisCache::from_url(format!("redis+unix://{}", path.display())).unwrap();
    let err = cache.ping().await.unwrap_err();
    assert!(matches!(err, CacheError::Unavailable { .. }), "{err:?}");
    let text = err.to_string();
    assert!(text.contains("does not exist"), "{text}");
    assert!(text.contains("socket"), "{text}");
    assert!(!text.contains("refused"), "{text}");
    assert_chain_does_not_repeat(&err);
    assert_eq!(
        io_error(&err).map(io::Error::kind),
        Some(io::ErrorKind::NotFound)
    );
}

#[tokio::test]
async fn a_timeout_chain_does_not_repeat() {
    let server = RedisServer::start();
    let cache = RedisCache::builder()
        .url(server.url())
        .timeout(Duration::from_millis(200))
        .build()
        .unwrap();
    cache.ping().await.unwrap();
    server.pause();
    let err = cache.get("k").await.unwrap_err();
    server.resume();
    assert!(matches!(err, CacheError::Timeout { .. }), "{err:?}");
    assert_chain_does_not_repeat(&err);
}

#[test]
fn a_bad_url_names_the_part_that_is_wrong() {
    let cases = [
        ("http://127.0.0.1:6379", "scheme"),
        ("not a url", "scheme"),
        ("localhost:6379", "scheme"),
        ("redis://127.0.0.1:99999", "port"),
        ("redis://127.0.0.1:notaport", "port"),
        ("redis://127.0.0.1:0", "port"),
        ("redis://:6379", "host"),
        ("redis://", "host"),
        ("redis://bad host:6379", "host"),
        ("redis://[::1:6379", "host"),
        ("redis://0.0.0.0:6379", "host"),
        ("redis://127.0.0.1/notanumber", "database"),
        ("redis://127.0.0.1/-1", "database"),
        ("redis+unix:///tmp/redis.sock?db=x", "database"),
        ("redis+unix://", "path"),
        ("unix://tmp/redis.sock", "path"),
        ("redis://127.0.0.1/?protocol=4", "protocol"),
    ];
    for (url, part) in cases {
        let err = RedisCache::from_url(url).unwrap_err();
        assert!(
            matches!(err, CacheError::InvalidConfig { .. }),
            "{url}: {err:?}"
        );
        let text = err.to_string();
        assert!(text.contains(part), "{url}: expected {part:?} in {text}");
    }
}

#[test]
fn an_unknown_scheme_lists_every_accepted_form() {
    let err = RedisCache::from_url("http://127.0.0.1:6379").unwrap_err();
    let text = err.to_string();
    for form in [
        "redis://",
        "rediss://",
        "valkey://",
        "valkeys://",
        "redis+unix://",
        "valkey+unix://",
        "unix://",
    ] {
        assert!(text.contains(form), "{form} missing from {text}");
    }
}

#[test]
fn a_bad_url_never_shows_its_password() {
    for url in [
        format!("http://user:{SECRET}@127.0.0.1:6379"),
        format!("redis://user:{SECRET}@127.0.0.1:99999"),
        format!("redis://user:{SECRET}@127.0.0.1:notaport"),
        format!("redis://user:{SECRET}@:6379"),
        format!("redis://user:{SECRET}@bad host"),
        format!("redis://user:{SECRET}@127.0.0.1/notanumber"),
        format!("redis://user:{SECRET}%ff@127.0.0.1"),
        format!("redis://user:{SECRET}@127.0.0.1/?protocol={SECRET}"),
        format!("unix://tmp/redis.sock?pass={SECRET}"),
        format!("redis+unix:///tmp/redis.sock?pass={SECRET}&db=x"),
        format!("{SECRET}://127.0.0.1"),
        SECRET.to_string(),
    ] {
        let err = RedisCache::from_url(&url).unwrap_err();
        assert!(matches!(err, CacheError::InvalidConfig { .. }), "{err:?}");
        let printed = everything_printed(&err);
        assert!(!printed.contains(SECRET), "{printed}");
    }
}
