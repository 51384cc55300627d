//! `cargo run -p trace-service`: the service on its defaults, or on what `DATABASE_URL`,
//! `CACHE_URL` and `BIND` say.

use std::process::ExitCode;

use trace_service::{Config, Server, StartError};

#[tokio::main]
async fn main() -> ExitCode {
    match run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("trace-service: {err}");
            let mut source = std::error::Error::source(&err);
            while let Some(cause) = source {
                eprintln!("  caused by: {cause}");
                source = cause.source();
            }
            ExitCode::FAILURE
        }
    }
}

async fn run() -> Result<(), StartError> {
    let config = Config::from_env().map_err(StartError::Config)?;
    let server = Server::start(config.clone()).await?;
    eprintln!(
        "trace-service: listening on http://{} ({config:?})",
        server.local_addr()
    );
    stopped().await;
    eprintln!("trace-service: stopping");
    server.shutdown().await;
    Ok(())
}

/// Resolves on Ctrl-C or SIGTERM.
async fn stopped() {
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        () = terminate => {}
    }
}
