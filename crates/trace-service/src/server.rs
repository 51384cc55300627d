//! A running service: the store, the cache, and the HTTP server on its listener.

use std::future::IntoFuture;
use std::net::SocketAddr;
use std::time::Duration;

use cache_core::{Cache, CacheError, TypedCache};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::api::{self, AppState};
use crate::cache::cache_from_url;
use crate::config::Config;
use crate::store::{Store, StoreError};
use crate::telemetry;

/// The service, serving HTTP on its own task until [`shutdown`](Self::shutdown) (or drop).
///
/// ```no_run
/// use trace_service::{Config, Server};
///
/// # #[tokio::main] async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let server = Server::start(Config::default().bind(([127, 0, 0, 1], 0).into())).await?;
/// println!("listening on http://{}", server.local_addr());
/// server.shutdown().await;
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct Server {
    addr: SocketAddr,
    state: AppState,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<std::io::Result<()>>,
}

impl Server {
    /// Connects to the database (applying its migrations), builds the cache, binds
    /// `config.bind` and starts serving on a task of the current runtime.
    ///
    /// # Errors
    /// [`StartError`] saying which of the three failed.
    pub async fn start(config: Config) -> Result<Self, StartError> {
        let store = Store::connect(&config.database_url, config.database_max_connections).await?;
        // Installs the recorder before the cache and the first request record anything.
        telemetry::prometheus();
        let traces = cache_from_url(&config.cache_url)
            .map_err(StartError::Cache)?
            .map(TypedCache::new);
        let listener = TcpListener::bind(config.bind)
            .await
            .map_err(|err| StartError::Bind(config.bind, err))?;
        let addr = listener
            .local_addr()
            .map_err(|err| StartError::Bind(config.bind, err))?;
        let state = AppState {
            store,
            traces,
            ttl: config.cache_ttl,
        };
        let (stop, stopped) = oneshot::channel::<()>();
        let serve = axum::serve(listener, api::router(state.clone()))
            .with_graceful_shutdown(async move {
                // A dropped sender stops the server too.
                let _ = stopped.await;
            })
            .into_future();
        let task = tokio::spawn(serve);
        Ok(Self {
            addr,
            state,
            stop: Some(stop),
            task,
        })
    }

    /// The address it listens on (with the port chosen when `bind` had port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// How many statements this instance sent to the database so far.
    pub fn db_queries(&self) -> u64 {
        self.state.store.queries()
    }

    /// Stops accepting connections, waits up to 10 seconds for the requests in flight,
    /// then closes the cache and the database pool.
    pub async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        match tokio::time::timeout(Duration::from_secs(10), &mut self.task).await {
            Ok(Ok(Ok(()))) => {}
            Ok(Ok(Err(err))) => eprintln!("trace-service: the server failed: {err}"),
            Ok(Err(err)) => eprintln!("trace-service: the server task failed: {err}"),
            Err(_) => {
                eprintln!("trace-service: requests still running after 10 s; stopping them");
                self.task.abort();
            }
        }
        if let Some(traces) = &self.state.traces
            && let Err(err) = traces.cache().close().await
        {
            eprintln!("trace-service: closing the cache failed: {err}");
        }
        self.state.store.close().await;
    }
}

/// Why the service could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// A setting in the environment does not parse.
    #[error("bad configuration: {0}")]
    Config(String),
    /// The database could not be reached or migrated.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// `CACHE_URL` does not name a cache this service can build.
    #[error("cannot build the cache named by CACHE_URL")]
    Cache(#[source] CacheError),
    /// The listening address could not be bound.
    #[error("cannot listen on {0}")]
    Bind(SocketAddr, #[source] std::io::Error),
}
