//! Namespaces: literal prefixes, `clear` of one leaving the others, and the least-privilege ACL
//! user the README recommends.

use cache_redis::{Cache, CacheError, RedisCache};
use redis_test_server::RedisServer;

fn cache(server: &RedisServer, namespace: &str) -> RedisCache {
    RedisCache::builder()
        .url(server.url())
        .namespace(namespace)
        .build()
        .unwrap()
}

async fn stored_keys(server: &RedisServer) -> Vec<String> {
    let mut raw = redis::Client::open(server.url())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let mut keys: Vec<String> = redis::cmd("KEYS")
        .arg("*")
        .query_async(&mut raw)
        .await
        .unwrap();
    keys.sort();
    keys
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_namespace_is_a_literal_prefix() {
    let server = RedisServer::start();
    cache(&server, "traces:")
        .set("abc", "1", None)
        .await
        .unwrap();
    cache(&server, "").set("plain", "2", None).await.unwrap();
    assert_eq!(stored_keys(&server).await, ["plain", "traces:abc"]);
    assert_eq!(
        cache(&server, "")
            .get("traces:abc")
            .await
            .unwrap()
            .as_deref(),
        Some("1")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clearing_one_namespace_leaves_the_others() {
    let server = RedisServer::start();
    // `app*:` unescaped would match every `app…:` key; `[ab]:` would match `a:` and `b:`.
    let namespaces = ["app*:", "appX:", "app:", "[ab]:", "a:", r"back\slash:", "b"];
    for ns in namespaces {
        let c = cache(&server, ns);
        // More than one SCAN step's worth for the one that is cleared.
        let count = if ns == "app*:" { 2_500 } else { 50 };
        for i in 0..count {
            c.set(&format!("key{i}"), ns, None).await.unwrap();
        }
    }
    let mut cleared = Vec::new();
    for ns in ["app*:", "[ab]:", r"back\slash:"] {
        cache(&server, ns).clear().await.unwrap();
        cleared.push(ns);
        for other in namespaces {
            let expected = (!cleared.contains(&other)).then(|| other.to_owned());
            for i in [0, 49] {
                assert_eq!(
                    cache(&server, other).get(&format!("key{i}")).await.unwrap(),
                    expected,
                    "namespace {other:?} key{i} after clearing {cleared:?}"
                );
            }
        }
    }
    let left = stored_keys(&server).await;
    assert_eq!(left.len(), 4 * 50, "{left:?}");
    assert!(left.iter().all(|k| !k.starts_with("app*:")));
}

/// The least-privilege setup of the README: a user limited to the namespace's keys and to the
/// commands the cache sends can do everything, `clear` included, and nothing outside.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_acl_user_limited_to_the_namespace_can_use_every_operation() {
    let rules = "resetkeys ~traces:* resetchannels -@all +get +mget +set +unlink +scan +ping";
    let server = RedisServer::builder()
        .acl_user("traces", "pw", rules)
        .start();
    let admin = cache(&server, "other:");
    admin.set("untouched", "yes", None).await.unwrap();

    let limited = RedisCache::builder()
        .url(server.url())
        .username("traces")
        .password("pw")
        .namespace("traces:")
        .build()
        .unwrap();
    limited.ping().await.unwrap();
    limited
        .set("k", "v", Some(std::time::Duration::from_secs(60)))
        .await
        .unwrap();
    limited.set("k2", "v2", None).await.unwrap();
    assert_eq!(limited.get("k").await.unwrap().as_deref(), Some("v"));
    limited.delete("k2").await.unwrap();
    assert_eq!(limited.get("k2").await.unwrap(), None);
    limited
        .set_many(
            &[("b1", "1"), ("b2", "2")],
            Some(std::time::Duration::from_secs(60)),
        )
        .await
        .unwrap();
    assert_eq!(
        limited.get_many(&["b1", "b2", "k2"]).await.unwrap(),
        [Some("1".to_owned()), Some("2".to_owned()), None]
    );
    limited.delete_many(&["b1", "b2"]).await.unwrap();
    assert_eq!(limited.get("b1").await.unwrap(), None);
    limited.clear().await.unwrap();
    assert_eq!(limited.get("k").await.unwrap(), None);
    assert_eq!(
        admin.get("untouched").await.unwrap().as_deref(),
        Some("yes")
    );

    // The same user outside its key pattern is refused with the server's code.
    let outside = RedisCache::builder()
        .url(server.url())
        .username("traces")
        .password("pw")
        .namespace("other:")
        .build()
        .unwrap();
    let err = outside.get("untouched").await.unwrap_err();
    assert!(
        matches!(&err, CacheError::Backend { code: Some(code), .. } if code == "NOPERM"),
        "{err:?}"
    );
    // And the cache keeps working after the refusal.
    assert_eq!(limited.get("k").await.unwrap(), None);
}
