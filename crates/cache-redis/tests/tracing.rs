//! Debug traces on Redis: they name the operation and the namespace, never a key, a value or
//! a password.
//!
//! Alone in its test binary: tracing caches per call site whether anyone listens, and a test
//! running at the same time on another thread, with no subscriber, would race that cache.

use std::io;
use std::sync::{Arc, Mutex};

use cache_redis::{Cache, RedisCache};
use redis_test_server::RedisServer;

/// Everything the fmt subscriber writes, for inspection.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[tokio::test(flavor = "current_thread")]
async fn debug_traces_name_the_operation_and_namespace_but_never_keys_values_or_passwords() {
    const PASSWORD: &str = "pa55-w0rd-in-url";
    const VALUE: &str = "a-secret-value";
    let server = RedisServer::builder().password(PASSWORD).start();
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::DEBUG)
        .with_writer(move || writer.clone())
        .finish();
    // The test's runtime is single-threaded: every task polls on this thread.
    let _guard = tracing::subscriber::set_default(subscriber);

    let url = server
        .url()
        .replace("redis://", &format!("redis://:{PASSWORD}@"));
    let cache = RedisCache::builder()
        .url(url)
        .namespace("traces:")
        .build()
        .unwrap();
    cache.set("private-key", VALUE, None).await.unwrap();
    assert_eq!(
        cache.get("private-key").await.unwrap().as_deref(),
        Some(VALUE)
    );
    cache.get_many(&["private-key", "other"]).await.unwrap();
    let wrong = RedisCache::builder()
        .url(server.url().replace("redis://", "redis://:wrong-pa55@"))
        .namespace("traces:")
        .build()
        .unwrap();
    assert!(wrong.get("private-key").await.is_err());

    let text = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    for op in [
        "op=\"set\"",
        "op=\"get\"",
        "op=\"mget\"",
        "keys=2",
        "namespace=\"traces:\"",
        "failed",
    ] {
        assert!(text.contains(op), "the trace must show {op}:\n{text}");
    }
    for secret in [PASSWORD, VALUE, "private-key", "wrong-pa55"] {
        assert!(
            !text.contains(secret),
            "the trace shows {secret:?}:\n{text}"
        );
    }
}
