//! The store under concurrent writers, on SQLite (whose locks are per database, not per row).

use std::sync::Arc;

use trace_service::{Span, Store, Trace, Written};

fn span(id: String) -> Span {
    Span {
        id,
        parent_id: None,
        name: "step".into(),
        start_us: 1,
        duration_us: 1,
    }
}

/// Writers that read before they write (`add_spans` checks that the trace exists), writers
/// whose transaction ends early (a conflict), and deletes, all at once: each answers what it
/// did, never "database is locked". A deferred transaction that read first could not take the
/// write lock once another writer held it (SQLite answers `SQLITE_BUSY` at once there, without
/// waiting), and a conflict's transaction used to be rolled back after the reply was sent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_writes_on_sqlite_all_succeed() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(
        Store::connect(&crate::sqlite_url(dir.path()), 10)
            .await
            .unwrap(),
    );
    let trace = Trace {
        id: "shared".into(),
        name: "many writers".into(),
        spans: vec![span("root".into())],
    };
    assert_eq!(store.create(&trace).await.unwrap(), Written::Done);

    const TASKS: usize = 8;
    const ROUNDS: usize = 40;
    let tasks: Vec<_> = (0..TASKS)
        .map(|task| {
            let store = Arc::clone(&store);
            let trace = trace.clone();
            tokio::spawn(async move {
                for round in 0..ROUNDS {
                    let added = store
                        .add_spans("shared", &[span(format!("{task}-{round}"))])
                        .await;
                    assert_eq!(added.unwrap(), Written::Done, "task {task}, round {round}");
                    // A conflict: its transaction wrote nothing and ends early.
                    let again = store.create(&trace).await;
                    assert_eq!(again.unwrap(), Written::AlreadyExists);
                    let duplicate = store.add_spans("shared", &[span("root".into())]).await;
                    assert_eq!(duplicate.unwrap(), Written::AlreadyExists);
                    // A trace of its own, created and deleted.
                    let own = Trace {
                        id: format!("own-{task}-{round}"),
                        name: "brief".into(),
                        spans: vec![span("a".into())],
                    };
                    assert_eq!(store.create(&own).await.unwrap(), Written::Done);
                    assert_eq!(store.delete(&own.id).await.unwrap(), Written::Done);
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    let read = store.load("shared").await.unwrap().unwrap();
    assert_eq!(read.spans.len(), 1 + TASKS * ROUNDS);
    store.close().await;
}
