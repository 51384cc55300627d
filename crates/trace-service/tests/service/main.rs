//! The service end to end: real HTTP against servers these tests start themselves (a
//! SQLite file in a temporary directory, a private PostgreSQL, a private Redis).

mod api;
mod caching;
mod http;
mod postgres;
mod store;

use std::error::Error as _;
use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use trace_service::{Config, Server};

/// A SQLite database in `dir`, created on first use.
fn sqlite_url(dir: &Path) -> String {
    format!("sqlite://{}?mode=rwc", dir.join("traces.db").display())
}

/// An instance on a free loopback port.
async fn start(database_url: &str, cache_url: &str) -> Server {
    let config = Config::default()
        .database_url(database_url)
        .cache_url(cache_url)
        .bind(SocketAddr::from(([127, 0, 0, 1], 0)));
    Server::start(config)
        .await
        .unwrap_or_else(|err| panic!("the service did not start: {err} ({:?})", err.source()))
}

/// Waits until `check` holds, up to `within`.
async fn eventually(within: Duration, mut check: impl AsyncFnMut() -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < within {
        if check().await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    false
}
