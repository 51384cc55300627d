//! Connection settings: URL forms, credentials, database selection, unix sockets, TLS, and
//! configuration errors.

use std::error::Error as _;
use std::time::{Duration, Instant};

mod common;

use cache_redis::{Cache, CacheError, RedisCache};
use common::everything_printed;
use redis_test_server::RedisServer;

const SECRET: &str = "hunter2-not-for-logs";

#[test]
fn building_does_no_io_and_needs_no_runtime() {
    // Nothing listens on port 1; building must still succeed, outside any runtime.
    let cache = RedisCache::from_url("redis://127.0.0.1:1/0").unwrap();
    assert!(format!("{cache:?}").contains("redis://127.0.0.1:1"));
}

#[test]
fn bad_configuration_is_invalid_config() {
    let cases = [
        RedisCache::builder().pool_size(0).build(),
        RedisCache::builder().timeout(Duration::ZERO).build(),
        RedisCache::builder().max_size(0).build(),
        RedisCache::builder().db(-1).build(),
        RedisCache::builder().url("http://127.0.0.1:6379").build(),
        RedisCache::builder().url("not a url").build(),
        RedisCache::builder()
            .url("redis://127.0.0.1/notanumber")
            .build(),
        RedisCache::builder()
            .url("redis+unix:///tmp/redis.sock")
            .port(6380)
            .build(),
    ];
    for (i, case) in cases.into_iter().enumerate() {
        match case {
            Err(CacheError::InvalidConfig { reason, .. }) => {
                assert!(!reason.is_empty(), "case {i}");
            }
            other => panic!("case {i}: expected InvalidConfig, got {other:?}"),
        }
    }
}

#[cfg(not(feature = "tls"))]
#[test]
fn rediss_url_without_the_tls_feature_is_invalid_config() {
    let err = RedisCache::from_url("rediss://127.0.0.1:6380").unwrap_err();
    assert!(matches!(err, CacheError::InvalidConfig { .. }), "{err:?}");
    assert!(err.to_string().contains("tls"), "{err}");
}

#[test]
fn debug_output_never_shows_the_password() {
    let url = format!("redis://app:{SECRET}@127.0.0.1:6390/3");
    let builder = RedisCache::builder().url(&url);
    assert!(!format!("{builder:?}").contains(SECRET), "{builder:?}");
    let cache = builder.build().unwrap();
    let shown = format!("{cache:?}");
    assert!(!shown.contains(SECRET), "{shown}");
    assert!(shown.contains("<redacted>"), "{shown}");
    assert!(shown.contains("app"), "the user name may be shown: {shown}");

    let builder = RedisCache::builder().password(SECRET);
    assert!(!format!("{builder:?}").contains(SECRET), "{builder:?}");
    let unix = RedisCache::from_url(format!("redis+unix:///tmp/r.sock?pass={SECRET}")).unwrap();
    assert!(!format!("{unix:?}").contains(SECRET), "{unix:?}");
}

#[tokio::test]
async fn an_unreachable_server_fails_fast_with_unavailable() {
    // Bind a port and close it again, so nothing listens there.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let cache = RedisCache::builder()
        .url(format!("redis://127.0.0.1:{port}"))
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    let started = Instant::now();
    let err = cache.get("k").await.unwrap_err();
    assert!(matches!(err, CacheError::Unavailable { .. }), "{err:?}");
    assert!(err.is_retryable());
    assert!(
        err.source().is_some(),
        "the redis error is kept as the source"
    );
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "a refused connection must not wait for the timeout: {:?}",
        started.elapsed()
    );
    assert!(matches!(
        cache.ping().await,
        Err(CacheError::Unavailable { .. })
    ));
}

#[tokio::test]
async fn password_and_acl_user_authenticate() {
    let server = RedisServer::builder()
        .password(SECRET)
        .acl_user("traces", SECRET, "~* +@all")
        .start();
    let port = server.port();

    let default_user = RedisCache::from_url(format!("redis://:{SECRET}@127.0.0.1:{port}")).unwrap();
    default_user.ping().await.unwrap();
    default_user.set("k", "default", None).await.unwrap();

    let acl_user = RedisCache::builder()
        .url(server.url())
        .username("traces")
        .password(SECRET)
        .build()
        .unwrap();
    assert_eq!(acl_user.get("k").await.unwrap().as_deref(), Some("default"));
}

#[tokio::test]
async fn wrong_password_is_a_clear_error_without_the_password() {
    let server = RedisServer::builder().password(SECRET).start();
    let wrong = "wrong-password-also-secret";
    let cache = RedisCache::builder()
        .url(server.url())
        .password(wrong)
        .build()
        .unwrap();
    let err = cache.get("k").await.unwrap_err();
    let text = everything_printed(&err);
    assert!(
        matches!(&err, CacheError::Backend { code: Some(code), .. } if code == "WRONGPASS"),
        "{text}"
    );
    assert!(err.to_string().contains("username and password"), "{err}");
    assert!(!err.is_retryable());
    assert!(!text.contains(wrong) && !text.contains(SECRET), "{text}");

    let no_password = RedisCache::from_url(server.url()).unwrap();
    let err = no_password.set("k", "v", None).await.unwrap_err();
    assert!(
        matches!(&err, CacheError::Backend { code: Some(code), .. } if code == "NOAUTH"),
        "{}",
        everything_printed(&err)
    );
}

#[tokio::test]
async fn each_cache_uses_its_own_database() {
    let server = RedisServer::start();
    let db1 = RedisCache::builder()
        .url(server.url())
        .db(1)
        .build()
        .unwrap();
    let db2 = RedisCache::from_url(format!("redis://127.0.0.1:{}/2", server.port())).unwrap();
    db1.set("shared-key", "one", None).await.unwrap();
    db2.set("shared-key", "two", None).await.unwrap();
    assert_eq!(db1.get("shared-key").await.unwrap().as_deref(), Some("one"));
    assert_eq!(db2.get("shared-key").await.unwrap().as_deref(), Some("two"));

    // Without a namespace, clear flushes its own database only.
    db1.clear().await.unwrap();
    assert_eq!(db1.get("shared-key").await.unwrap(), None);
    assert_eq!(db2.get("shared-key").await.unwrap().as_deref(), Some("two"));

    let mut raw = raw_connection(&server).await;
    let db0: Option<String> = redis::cmd("GET")
        .arg("shared-key")
        .query_async(&mut raw)
        .await
        .unwrap();
    assert_eq!(db0, None, "db 0 was never written");
}

#[tokio::test]
async fn unix_socket_urls_work() {
    let server = RedisServer::builder().unix_socket().start();
    let path = server.unix_socket().unwrap().display().to_string();
    for url in [
        format!("redis+unix://{path}"),
        format!("unix://{path}?db=3"),
    ] {
        let cache = RedisCache::from_url(&url).unwrap();
        cache.ping().await.unwrap();
        cache.set("over-the-socket", &url, None).await.unwrap();
        assert_eq!(
            cache.get("over-the-socket").await.unwrap().as_deref(),
            Some(url.as_str())
        );
    }
    // `db=3` selected another database than the first URL's 0.
    let db3 = RedisCache::builder()
        .url(server.url())
        .db(3)
        .build()
        .unwrap();
    assert!(
        db3.get("over-the-socket")
            .await
            .unwrap()
            .unwrap()
            .starts_with("unix://")
    );
}

#[cfg(feature = "tls")]
#[tokio::test]
async fn tls_connects_with_the_given_certificate_authority() {
    let server = RedisServer::builder().tls().start();
    let url = server.tls_url().unwrap();
    let cache = RedisCache::builder()
        .url(&url)
        .ca_certificate(server.ca_cert_pem().unwrap())
        .namespace("tls:")
        .build()
        .unwrap();
    cache.ping().await.unwrap();
    cache.set("k", "over tls", None).await.unwrap();
    assert_eq!(cache.get("k").await.unwrap().as_deref(), Some("over tls"));

    // The same server is not trusted through the system's roots: an error, not a panic.
    let untrusted = RedisCache::from_url(&url).unwrap();
    let err = untrusted.ping().await.unwrap_err();
    assert!(
        matches!(err, CacheError::Unavailable { .. }),
        "{}",
        everything_printed(&err)
    );

    // Plain redis:// on the TLS port is not TLS: it fails within the timeout.
    let plain = RedisCache::builder()
        .url(format!("redis://127.0.0.1:{}", server.tls_port().unwrap()))
        .timeout(Duration::from_millis(500))
        .build()
        .unwrap();
    assert!(plain.ping().await.is_err());
}

#[cfg(feature = "tls")]
#[test]
fn a_ca_certificate_needs_a_rediss_url() {
    let err = RedisCache::builder()
        .url("redis://127.0.0.1")
        .ca_certificate(b"-----BEGIN CERTIFICATE-----".to_vec())
        .build()
        .unwrap_err();
    assert!(matches!(err, CacheError::InvalidConfig { .. }), "{err:?}");
}

async fn raw_connection(server: &RedisServer) -> redis::aio::MultiplexedConnection {
    redis::Client::open(server.url())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap()
}
