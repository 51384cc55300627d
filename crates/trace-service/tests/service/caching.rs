//! What the cache changes: reads served from it until a write through the service
//! invalidates them, one load per missing trace, and instances sharing a Redis.

use std::time::Duration;

use hyper::StatusCode;
use redis_test_server::RedisServer;
use serde_json::{Value, json};
use sqlx::AnyPool;

use crate::http::Client;
use crate::{eventually, sqlite_url, start};

/// A connection of the test's own to the service's database, to change rows behind its back.
async fn database(url: &str) -> AnyPool {
    sqlx::any::install_default_drivers();
    AnyPool::connect(url)
        .await
        .expect("the test's own connection")
}

async fn rename_behind_the_service(db: &AnyPool, id: &str, name: &str) {
    let renamed = sqlx::query("UPDATE traces SET name = $1 WHERE id = $2")
        .bind(name)
        .bind(id)
        .execute(db)
        .await
        .unwrap();
    assert_eq!(renamed.rows_affected(), 1);
}

fn trace(id: &str, name: &str) -> Value {
    json!({
        "id": id,
        "name": name,
        "spans": [{ "id": "root", "name": name, "start_us": 10, "duration_us": 5 }],
    })
}

fn span(id: &str) -> Value {
    json!([{ "id": id, "parent_id": "root", "name": "child", "start_us": 11, "duration_us": 1 }])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cached_read_is_served_after_the_row_changed_until_a_write_invalidates_it() {
    let dir = tempfile::tempdir().unwrap();
    let url = sqlite_url(dir.path());
    let server = start(&url, trace_service::DEFAULT_CACHE_URL).await;
    let client = Client::new(server.local_addr());
    let db = database(&url).await;

    assert_eq!(
        client.post("/traces", &trace("t1", "old")).await.status,
        StatusCode::CREATED
    );
    let before = server.db_queries();
    assert_eq!(client.get("/traces/t1").await.json()["name"], "old");
    assert_eq!(
        server.db_queries(),
        before + 1,
        "the first read loads the trace"
    );

    rename_behind_the_service(&db, "t1", "new").await;
    let queries = server.db_queries();
    for _ in 0..3 {
        assert_eq!(
            client.get("/traces/t1").await.json()["name"],
            "old",
            "served from the cache"
        );
    }
    assert_eq!(server.db_queries(), queries, "cached reads send no query");

    // A write through the service invalidates the cached copy: the next read sees the row.
    let added = client.post("/traces/t1/spans", &span("child")).await;
    assert_eq!(added.status, StatusCode::NO_CONTENT);
    let read = client.get("/traces/t1").await.json();
    assert_eq!(read["name"], "new");
    assert_eq!(read["spans"].as_array().unwrap().len(), 2);

    // The same for a delete: the stale copy goes with it.
    rename_behind_the_service(&db, "t1", "newer").await;
    assert_eq!(client.get("/traces/t1").await.json()["name"], "new");
    assert_eq!(
        client.delete("/traces/t1").await.status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(client.get("/traces/t1").await.status, StatusCode::NOT_FOUND);

    db.close().await;
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_cache_every_read_goes_to_the_database() {
    let dir = tempfile::tempdir().unwrap();
    let url = sqlite_url(dir.path());
    let server = start(&url, "none").await;
    let client = Client::new(server.local_addr());
    let db = database(&url).await;

    assert_eq!(
        client.post("/traces", &trace("t1", "old")).await.status,
        StatusCode::CREATED
    );
    assert_eq!(client.get("/traces/t1").await.json()["name"], "old");
    rename_behind_the_service(&db, "t1", "new").await;
    let before = server.db_queries();
    assert_eq!(client.get("/traces/t1").await.json()["name"], "new");
    assert_eq!(client.get("/traces/t1").await.json()["name"], "new");
    assert_eq!(server.db_queries(), before + 2, "one query per read");

    db.close().await;
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_reads_of_an_uncached_trace_load_it_once() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(&sqlite_url(dir.path()), trace_service::DEFAULT_CACHE_URL).await;
    let client = Client::new(server.local_addr());
    assert_eq!(
        client.post("/traces", &trace("hot", "hot")).await.status,
        StatusCode::CREATED
    );

    let before = server.db_queries();
    let barrier = std::sync::Arc::new(tokio::sync::Barrier::new(50));
    let readers: Vec<_> = (0..50)
        .map(|_| {
            let barrier = std::sync::Arc::clone(&barrier);
            tokio::spawn(async move {
                barrier.wait().await;
                client.get("/traces/hot").await
            })
        })
        .collect();
    let all = async {
        for reader in readers {
            let reply = reader.await.unwrap();
            assert_eq!(reply.status, StatusCode::OK);
            assert_eq!(reply.json()["name"], "hot");
        }
    };
    tokio::time::timeout(Duration::from_secs(30), all)
        .await
        .expect("the readers finish");
    assert_eq!(
        server.db_queries(),
        before + 1,
        "50 concurrent reads, one load"
    );

    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_on_one_redis_see_each_others_writes() {
    let redis = RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    let url = sqlite_url(dir.path());
    let cache_url = trace_service::tiered_cache_url(&redis.url());
    let a = start(&url, &cache_url).await;
    let b = start(&url, &cache_url).await;
    let (client_a, client_b) = (Client::new(a.local_addr()), Client::new(b.local_addr()));
    let db = database(&url).await;

    // Written through a, read through both: b's first read finds it in Redis, not the
    // database.
    assert_eq!(
        client_a.post("/traces", &trace("t1", "old")).await.status,
        StatusCode::CREATED
    );
    assert_eq!(client_a.get("/traces/t1").await.json()["name"], "old");
    let b_before = b.db_queries();
    assert_eq!(client_b.get("/traces/t1").await.json()["name"], "old");
    assert_eq!(b.db_queries(), b_before, "b read a's load from Redis");

    // Both serve their cached copy after the row changed behind them...
    rename_behind_the_service(&db, "t1", "new").await;
    assert_eq!(client_a.get("/traces/t1").await.json()["name"], "old");
    assert_eq!(client_b.get("/traces/t1").await.json()["name"], "old");

    // ...until a write through b: b reads the new row at once, a as soon as the
    // invalidation reaches it.
    assert_eq!(
        client_b.post("/traces/t1/spans", &span("c")).await.status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(client_b.get("/traces/t1").await.json()["name"], "new");
    assert!(
        eventually(Duration::from_secs(10), async || {
            client_a.get("/traces/t1").await.json()["name"] == "new"
        })
        .await,
        "a kept serving its copy from before b's write"
    );
    assert_eq!(
        client_a.get("/traces/t1").await.json()["spans"]
            .as_array()
            .unwrap()
            .len(),
        2
    );

    // A delete through a reaches b the same way.
    assert_eq!(client_b.get("/traces/t1").await.status, StatusCode::OK);
    assert_eq!(
        client_a.delete("/traces/t1").await.status,
        StatusCode::NO_CONTENT
    );
    assert!(
        eventually(Duration::from_secs(10), async || {
            client_b.get("/traces/t1").await.status == StatusCode::NOT_FOUND
        })
        .await,
        "b kept serving a deleted trace"
    );

    db.close().await;
    a.shutdown().await;
    b.shutdown().await;
}
