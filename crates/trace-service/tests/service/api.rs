//! The HTTP API, on SQLite and on PostgreSQL.

use std::time::Duration;

use hyper::StatusCode;
use serde_json::json;

use crate::http::Client;
use crate::postgres::PostgresServer;
use crate::{eventually, sqlite_url, start};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_works_end_to_end_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(&sqlite_url(dir.path()), trace_service::DEFAULT_CACHE_URL).await;
    exercise_the_api(Client::new(server.local_addr())).await;
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_works_end_to_end_on_postgres() {
    let postgres = PostgresServer::start();
    let server = start(&postgres.url(), trace_service::DEFAULT_CACHE_URL).await;
    exercise_the_api(Client::new(server.local_addr())).await;
    server.shutdown().await;
    // A second start finds the schema in place and applies nothing again.
    let server = start(&postgres.url(), "none").await;
    let reply = Client::new(server.local_addr()).get("/traces/kept").await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    server.shutdown().await;
}

/// Every route and its errors; leaves the trace `kept` behind.
async fn exercise_the_api(client: Client) {
    let missing = client.get("/traces/4bf92f35").await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    assert_eq!(missing.json(), json!({ "error": "no such trace" }));

    let trace = json!({
        "id": "4bf92f35",
        "name": "GET /checkout",
        "spans": [
            { "id": "b", "parent_id": "a", "name": "SELECT cart", "start_us": 1_700_000_000_000_100_i64, "duration_us": 800 },
            { "id": "a", "name": "GET /checkout", "start_us": 1_700_000_000_000_000_i64, "duration_us": 2_500 },
        ],
    });
    let created = client.post("/traces", &trace).await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    assert_eq!(created.location.as_deref(), Some("/traces/4bf92f35"));
    assert_eq!(created.json(), trace);

    // Spans come back ordered by start time.
    let read = client.get("/traces/4bf92f35").await;
    assert_eq!(read.status, StatusCode::OK);
    let body = read.json();
    assert_eq!(body["name"], "GET /checkout");
    let ids: Vec<&str> = body["spans"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["a", "b"]);
    assert_eq!(body["spans"][1]["parent_id"], "a");
    assert!(body["spans"][0].get("parent_id").is_none());

    let again = client.post("/traces", &trace).await;
    assert_eq!(again.status, StatusCode::CONFLICT, "{}", again.body);

    // Spans added later show up in the next read (the write invalidated the cached copy).
    let span = json!([{ "id": "c", "parent_id": "a", "name": "POST /pay", "start_us": 1_700_000_000_000_900_i64, "duration_us": 1_200 }]);
    let added = client.post("/traces/4bf92f35/spans", &span).await;
    assert_eq!(added.status, StatusCode::NO_CONTENT, "{}", added.body);
    let read = client.get("/traces/4bf92f35").await.json();
    assert_eq!(read["spans"].as_array().unwrap().len(), 3);
    assert_eq!(read["spans"][2]["id"], "c");
    let duplicate = client.post("/traces/4bf92f35/spans", &span).await;
    assert_eq!(duplicate.status, StatusCode::CONFLICT, "{}", duplicate.body);
    // A rejected batch adds none of its spans.
    let mixed = json!([
        { "id": "d", "name": "new", "start_us": 1, "duration_us": 1 },
        { "id": "c", "name": "taken", "start_us": 2, "duration_us": 1 },
    ]);
    let rejected = client.post("/traces/4bf92f35/spans", &mixed).await;
    assert_eq!(rejected.status, StatusCode::CONFLICT);
    let read = client.get("/traces/4bf92f35").await.json();
    assert_eq!(read["spans"].as_array().unwrap().len(), 3);
    let nowhere = client.post("/traces/unknown/spans", &span).await;
    assert_eq!(nowhere.status, StatusCode::NOT_FOUND);

    // Bad input: 400 for JSON that does not parse, 422 for JSON that breaks a rule.
    let garbled = client.post_raw("/traces", "{\"id\": ").await;
    assert_eq!(garbled.status, StatusCode::BAD_REQUEST);
    let unknown_field = client
        .post(
            "/traces",
            &json!({ "id": "x", "name": "n", "colour": "red" }),
        )
        .await;
    assert_eq!(unknown_field.status, StatusCode::UNPROCESSABLE_ENTITY);
    let empty_id = client
        .post("/traces", &json!({ "id": "", "name": "n" }))
        .await;
    assert_eq!(empty_id.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        empty_id.json()["error"]
            .as_str()
            .unwrap()
            .contains("trace id")
    );
    let negative = json!([{ "id": "e", "name": "n", "start_us": 1, "duration_us": -1 }]);
    let negative = client.post("/traces/4bf92f35/spans", &negative).await;
    assert_eq!(negative.status, StatusCode::UNPROCESSABLE_ENTITY);

    // A trace without spans, and ids that need escaping in a path.
    let plain = json!({ "id": "kept", "name": "cron", "spans": [] });
    assert_eq!(
        client.post("/traces", &plain).await.status,
        StatusCode::CREATED
    );
    assert_eq!(client.get("/traces/kept").await.json(), plain);
    let odd = json!({ "id": "a b/ü", "name": "odd", "spans": [] });
    let created = client.post("/traces", &odd).await;
    assert_eq!(created.status, StatusCode::CREATED);
    assert_eq!(created.location.as_deref(), Some("/traces/a%20b%2F%C3%BC"));
    let read = client.get("/traces/a%20b%2F%C3%BC").await;
    assert_eq!(read.status, StatusCode::OK, "{}", read.body);
    assert_eq!(read.json(), odd);

    // Delete: 204, then 404 for the trace and for a second delete.
    assert_eq!(
        client.delete("/traces/4bf92f35").await.status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        client.get("/traces/4bf92f35").await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        client.delete("/traces/4bf92f35").await.status,
        StatusCode::NOT_FOUND
    );
    // The id is free again, with none of the old spans.
    let reborn = json!({ "id": "4bf92f35", "name": "again", "spans": [] });
    assert_eq!(
        client.post("/traces", &reborn).await.status,
        StatusCode::CREATED
    );
    assert_eq!(client.get("/traces/4bf92f35").await.json(), reborn);

    let metrics = client.get("/metrics").await;
    assert_eq!(metrics.status, StatusCode::OK);
    assert!(
        metrics.body.contains(
            "trace_service_http_requests_total{method=\"GET\",route=\"/traces/{id}\",status=\"200\"}"
        ),
        "{}",
        metrics.body
    );
    assert!(metrics.body.contains("trace_service_db_queries_total"));
    // The cache's own metrics (cache-url's `metrics` feature), published at most once a
    // second: the reads above hit it.
    let cache_hits = |body: &str| {
        body.lines().any(|line| {
            line.starts_with("cache_requests_total{")
                && line.contains("backend=\"memory\"")
                && line.contains("cache=\"traces\"")
                && line.contains("result=\"hit\"")
        })
    };
    let mut last = String::new();
    assert!(
        eventually(Duration::from_secs(10), async || {
            last = client.get("/metrics").await.body;
            cache_hits(&last)
        })
        .await,
        "no cache hits on /metrics:\n{last}"
    );
}
