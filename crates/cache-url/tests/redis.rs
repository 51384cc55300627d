//! The Redis forms, each against a private server: one server over TCP and a unix socket, a
//! Redis Cluster, Sentinel and TLS; every parameter applied, every mistake named, no password
//! printed.

#![cfg(feature = "redis")]

mod common;

use cache_core::testkit;
use cache_url::{Cache, CacheError, CacheUrl, from_url};
use common::{everything_printed, reason, refused};
use redis_test_server::{RedisCluster, RedisSentinels, RedisServer};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_url_builds_a_cache_with_every_parameter() {
    let server = RedisServer::start();
    let url = format!(
        "{}2?namespace=url%3A&timeout=500ms&pool_size=2&max_size=1KiB&protocol=resp3&name=traces",
        server.url()
    );
    let cache = from_url(&url).unwrap();
    let debug = format!("{cache:?}");
    for setting in [
        "name: \"traces\"",
        "db: 2",
        "namespace: \"url:\"",
        "pool_size: 2",
        "timeout: 500ms",
        "max_size: 1024",
    ] {
        assert!(debug.contains(setting), "{debug} lacks {setting}");
    }
    cache.set("k", "v", None).await.unwrap();
    assert_eq!(cache.get("k").await.unwrap().as_deref(), Some("v"));
    // The namespace is a literal prefix in the database of the URL.
    let raw = from_url(&format!("{}2", server.url())).unwrap();
    assert_eq!(raw.get("url:k").await.unwrap().as_deref(), Some("v"));
    assert_eq!(
        from_url(&server.url()).unwrap().get("url:k").await.unwrap(),
        None
    );
    // max_size bounds values before any I/O.
    assert!(matches!(
        cache.set("big", &"x".repeat(2_000), None).await,
        Err(CacheError::TooLarge { .. })
    ));
    let conformance = from_url(&format!("{}?namespace=conformance:", server.url())).unwrap();
    testkit::run_all(conformance).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credentials_in_the_url_reach_redis_and_are_never_printed() {
    let server = RedisServer::builder().password("pw-s3cret").start();
    let port = server.port();
    let url = format!("redis://:pw-s3cret@127.0.0.1:{port}/0?namespace=auth:");
    let parsed = CacheUrl::parse(&url).unwrap();
    assert!(!format!("{parsed:?}").contains("s3cret"), "{parsed:?}");
    let cache = parsed.build().unwrap();
    assert!(!format!("{cache:?}").contains("s3cret"), "{cache:?}");
    cache.set("k", "v", None).await.unwrap();
    assert_eq!(cache.get("k").await.unwrap().as_deref(), Some("v"));

    // A wrong password: refused by the server, and not printed either.
    let wrong = from_url(&format!("redis://:wrong-s3cret@127.0.0.1:{port}/0")).unwrap();
    let err = wrong.get("k").await.unwrap_err();
    assert!(!everything_printed(&err).contains("s3cret"), "{err:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_unix_socket_url_hands_its_own_parameters_to_redis() {
    let server = RedisServer::builder().unix_socket().start();
    let url = format!(
        "{}?db=3&protocol=2&namespace=sock:&timeout=1s",
        server.unix_url().unwrap()
    );
    let cache = from_url(&url).unwrap();
    assert!(format!("{cache:?}").contains("db: 3"), "{cache:?}");
    cache.set("k", "v", None).await.unwrap();
    assert_eq!(cache.get("k").await.unwrap().as_deref(), Some("v"));
    let raw = from_url(&format!("{}?db=3", server.unix_url().unwrap())).unwrap();
    assert_eq!(raw.get("sock:k").await.unwrap().as_deref(), Some("v"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cluster_url_builds_a_cluster_cache() {
    let cluster = tokio::task::spawn_blocking(RedisCluster::start)
        .await
        .unwrap();
    let url = format!(
        "{}?namespace={{url}}:&read_from_replicas=true&timeout=2s",
        cluster.url()
    );
    let cache = from_url(&url).unwrap();
    assert!(
        format!("{cache:?}").contains("redis+cluster://"),
        "{cache:?}"
    );
    cache.set("k", "v", None).await.unwrap();
    // Written to the primary, maybe read from a lagging replica.
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(5);
    while cache.get("k").await.unwrap().as_deref() != Some("v") {
        assert!(tokio::time::Instant::now() < deadline, "never read back");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let primaries = from_url(&format!("{}?namespace={{url}}:", cluster.url())).unwrap();
    assert_eq!(primaries.get("k").await.unwrap().as_deref(), Some("v"));
    tokio::task::spawn_blocking(move || drop(cluster))
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sentinel_url_builds_a_cache_on_the_master() {
    let sentinels = tokio::task::spawn_blocking(RedisSentinels::start)
        .await
        .unwrap();
    let url = format!("{}?namespace=sentinel:&timeout=2s", sentinels.url());
    let cache = from_url(&url).unwrap();
    assert!(
        format!("{cache:?}").contains("redis+sentinel://"),
        "{cache:?}"
    );
    cache.set("k", "v", None).await.unwrap();
    assert_eq!(cache.get("k").await.unwrap().as_deref(), Some("v"));
    tokio::task::spawn_blocking(move || drop(sentinels))
        .await
        .unwrap();
}

#[cfg(feature = "tls")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rediss_url_trusts_the_ca_of_ca_file() {
    let server = RedisServer::builder().tls().start();
    let ca_file = std::env::temp_dir().join(format!(
        "cache-url-test-ca-{}-{}.pem",
        std::process::id(),
        server.port()
    ));
    std::fs::write(&ca_file, server.ca_cert_pem().unwrap()).unwrap();
    let escaped: String =
        url::form_urlencoded::byte_serialize(ca_file.to_str().unwrap().as_bytes()).collect();
    let url = format!(
        "{}?ca_file={escaped}&namespace=tls:",
        server.tls_url().unwrap()
    );
    let cache = from_url(&url).unwrap();
    cache.set("k", "v", None).await.unwrap();
    assert_eq!(cache.get("k").await.unwrap().as_deref(), Some("v"));

    // The file is read by build: a parsed URL whose file is gone fails to build, naming it.
    let parsed = CacheUrl::parse(&url).unwrap();
    std::fs::remove_file(&ca_file).unwrap();
    let Err(CacheError::InvalidConfig { reason, source }) = parsed.build() else {
        panic!("built without its ca_file")
    };
    assert!(
        reason.contains("ca_file") && reason.contains("cache-url-test-ca"),
        "{reason}"
    );
    assert!(source.is_some());
}

#[test]
fn an_unknown_parameter_is_named_with_where_it_belongs() {
    let cases: [(&str, &[&str]); 10] = [
        (
            "redis://h/?nmespace=a",
            &[
                "unknown parameter `nmespace`",
                "a redis:// url reads name, namespace, timeout, pool_size, max_size, protocol",
            ],
        ),
        ("redis://h/?db=2", &["`db`", "the database is the path"]),
        (
            "redis://h/?password=s3cret",
            &["`password`", "credentials go before the host"],
        ),
        ("redis+cluster://h1,h2?db=1", &["`db`", "only db 0"]),
        ("redis+sentinel://h/m?db=1", &["`db`", "/mymaster/2"]),
        (
            "redis://h/?read_from_replicas=true",
            &[
                "`read_from_replicas`",
                "redis+cluster:// and redis+sentinel://",
            ],
        ),
        (
            "redis+cluster://h?sentinel_password=x",
            &["`sentinel_password`", "redis+sentinel://"],
        ),
        ("redis://h/?ca_file=/ca.pem", &["`ca_file`", "rediss://"]),
        (
            "redis://h/?max_capacity=10",
            &["`max_capacity`", "memory://"],
        ),
        (
            "unix:///run/redis.sock?timeout=1s&namespace=a&sweep_interval=1s",
            &["`sweep_interval`", "db, user, pass"],
        ),
    ];
    for (url, expected) in cases {
        refused(url, expected);
    }
    // The value of an unknown parameter is never printed, whatever it holds.
    assert!(!reason("redis://h/?secret=hunter2").contains("hunter2"));
}

#[test]
fn a_bad_value_is_named_with_its_value() {
    let cases = [
        ("redis://h/?timeout=1", "timeout=\"1\""),
        ("redis://h/?timeout=0ms", "timeout=\"0ms\""),
        ("redis://h/?pool_size=0", "pool_size=\"0\""),
        ("redis://h/?max_size=huge", "max_size=\"huge\""),
        (
            "redis+cluster://h?read_from_replicas=yes",
            "read_from_replicas=\"yes\"",
        ),
        (
            "redis+sentinel://h/m?sentinel_username=admin",
            "sentinel_username needs a sentinel_password",
        ),
        ("redis://h/?namespace=a&namespace=b", "`namespace` twice"),
    ];
    for (url, named) in cases {
        refused(url, &[named]);
    }
}

/// The Redis part of a URL is checked by cache-redis when the URL is parsed, without I/O,
/// and its errors name the part without repeating the URL.
#[test]
fn what_cache_redis_refuses_is_refused_by_parse() {
    let cases = [
        ("redis://u:s3cret@h:99999/?namespace=a", "port"),
        ("redis://u:s3cret@h/x", "database"),
        ("redis://u:s3cret@h/?protocol=9", "protocol"),
        ("redis+cluster://u:s3cret@h1,:7000", "2nd node"),
        ("redis+sentinel://u:s3cret@h1:26379", "master name"),
        ("unix://relative.sock?pass=s3cret", "path"),
        ("redis+cluster://u:s3cret@h#frag", "fragment"),
    ];
    for (url, part) in cases {
        let reason = reason(url);
        assert!(reason.contains(part), "{url}: {reason}");
        assert!(!reason.contains("s3cret"), "{url}: {reason}");
    }
}

#[cfg(not(feature = "tls"))]
#[test]
fn a_tls_url_without_the_tls_feature_names_it() {
    refused(
        "rediss://u:s3cret@h/?ca_file=x",
        &["`tls` feature of cache-url"],
    );
}
