//! The database: traces and spans in SQLite or PostgreSQL through one `AnyPool`, the schema
//! migrations, and a count of the statements sent.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use sqlx::any::{AnyPoolOptions, AnyRow};
use sqlx::migrate::{Migration, MigrationType, Migrator};
use sqlx::{AnyPool, Row};

use crate::config::database_kind;
use crate::model::{Span, Trace};

/// The schema, applied at startup by sqlx's migrator (table `_sqlx_migrations`). Written in
/// the SQL that SQLite and PostgreSQL share, so one list serves both.
const MIGRATIONS: &[(i64, &str, &str)] = &[(
    1,
    "traces and spans",
    "CREATE TABLE traces (
         id TEXT PRIMARY KEY,
         name TEXT NOT NULL
     );
     CREATE TABLE spans (
         trace_id TEXT NOT NULL REFERENCES traces (id),
         id TEXT NOT NULL,
         parent_id TEXT,
         name TEXT NOT NULL,
         start_us BIGINT NOT NULL,
         duration_us BIGINT NOT NULL,
         PRIMARY KEY (trace_id, id)
     );",
)];

/// One read of a trace with its spans: a single statement, so it sees one snapshot.
const SELECT_TRACE: &str = "SELECT t.name, s.id, s.parent_id, s.name, s.start_us, s.duration_us
     FROM traces t LEFT JOIN spans s ON s.trace_id = t.id
     WHERE t.id = $1
     ORDER BY s.start_us, s.id";

/// The traces and spans tables, with a count of the statements sent to the database.
#[derive(Debug, Clone)]
pub struct Store {
    pool: AnyPool,
    /// How a write transaction begins: `BEGIN IMMEDIATE` on SQLite, `BEGIN` elsewhere.
    ///
    /// SQLite locks the whole database for writing. A deferred transaction (plain `BEGIN`)
    /// takes that lock at its first write, and one that has read before cannot wait for it
    /// there: SQLite answers "database is locked" at once, without the busy timeout, to rule
    /// out a deadlock between two readers that both want to write. `BEGIN IMMEDIATE` takes the
    /// lock first, waiting up to the busy timeout (5 s), so concurrent writers queue.
    /// PostgreSQL locks rows and needs neither.
    begin_write: &'static str,
    queries: Arc<AtomicU64>,
}

/// What a write found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Written {
    /// The write was applied.
    Done,
    /// The trace does not exist.
    NoSuchTrace,
    /// A trace, or a span of the trace, with that id already exists; nothing was written.
    AlreadyExists,
}

impl Store {
    /// Connects to `url` (`sqlite:` or `postgres:`) with at most `max_connections`, and
    /// applies the migrations that have not been applied yet.
    ///
    /// # Errors
    /// When the database cannot be reached within 10 seconds, or a migration fails.
    pub async fn connect(url: &str, max_connections: u32) -> Result<Self, StoreError> {
        sqlx::any::install_default_drivers();
        let pool = AnyPoolOptions::new()
            .max_connections(max_connections)
            .acquire_timeout(Duration::from_secs(10))
            .connect(url)
            .await
            .map_err(StoreError::Connect)?;
        let migrations = MIGRATIONS
            .iter()
            .map(|&(version, description, sql)| {
                Migration::new(
                    version,
                    description.into(),
                    MigrationType::Simple,
                    sqlx::SqlSafeStr::into_sql_str(sql),
                    false,
                )
            })
            .collect();
        Migrator::with_migrations(migrations)
            .run(&pool)
            .await
            .map_err(StoreError::Migrate)?;
        let begin_write = if database_kind(url).eq_ignore_ascii_case("sqlite") {
            "BEGIN IMMEDIATE"
        } else {
            "BEGIN"
        };
        Ok(Self {
            pool,
            begin_write,
            queries: Arc::new(AtomicU64::new(0)),
        })
    }

    /// How many statements this store sent (`BEGIN`, `COMMIT` and `ROLLBACK` included,
    /// migrations not).
    pub fn queries(&self) -> u64 {
        self.queries.load(Ordering::Relaxed)
    }

    /// The trace `id` with its spans, `None` if there is none. One statement.
    ///
    /// # Errors
    /// Those of the database.
    pub async fn load(&self, id: &str) -> Result<Option<Trace>, sqlx::Error> {
        self.count(1);
        let rows = sqlx::query(SELECT_TRACE)
            .bind(id)
            .fetch_all(&self.pool)
            .await?;
        let Some(first) = rows.first() else {
            return Ok(None);
        };
        let mut trace = Trace {
            id: id.to_owned(),
            name: first.try_get(0)?,
            spans: Vec::with_capacity(rows.len()),
        };
        for row in &rows {
            if let Some(span) = span_of(row)? {
                trace.spans.push(span);
            }
        }
        Ok(Some(trace))
    }

    /// Stores a new trace and its spans in one transaction.
    ///
    /// # Errors
    /// Those of the database.
    pub async fn create(&self, trace: &Trace) -> Result<Written, sqlx::Error> {
        let mut tx = self.begin().await?;
        self.count(1);
        let inserted = sqlx::query(
            "INSERT INTO traces (id, name) VALUES ($1, $2) ON CONFLICT (id) DO NOTHING",
        )
        .bind(&trace.id)
        .bind(&trace.name)
        .execute(&mut *tx)
        .await?;
        if inserted.rows_affected() == 0 {
            return self.end(tx, Written::AlreadyExists).await;
        }
        if !self.insert_spans(&mut tx, &trace.id, &trace.spans).await? {
            return self.end(tx, Written::AlreadyExists).await;
        }
        self.end(tx, Written::Done).await
    }

    /// Adds spans to the trace `id` in one transaction.
    ///
    /// # Errors
    /// Those of the database.
    pub async fn add_spans(&self, id: &str, spans: &[Span]) -> Result<Written, sqlx::Error> {
        let mut tx = self.begin().await?;
        self.count(1);
        let exists = sqlx::query("SELECT 1 FROM traces WHERE id = $1")
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?;
        if exists.is_none() {
            return self.end(tx, Written::NoSuchTrace).await;
        }
        if !self.insert_spans(&mut tx, id, spans).await? {
            return self.end(tx, Written::AlreadyExists).await;
        }
        self.end(tx, Written::Done).await
    }

    /// Deletes the trace `id` and its spans in one transaction.
    ///
    /// # Errors
    /// Those of the database.
    pub async fn delete(&self, id: &str) -> Result<Written, sqlx::Error> {
        let mut tx = self.begin().await?;
        self.count(2);
        sqlx::query("DELETE FROM spans WHERE trace_id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        let deleted = sqlx::query("DELETE FROM traces WHERE id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        self.count(1);
        tx.commit().await?;
        Ok(if deleted.rows_affected() == 0 {
            Written::NoSuchTrace
        } else {
            Written::Done
        })
    }

    /// Closes the pool: waits for the connections in use to come back, then closes them all.
    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// Inserts `spans` of trace `id`, one statement each; `false` if one of them exists.
    async fn insert_spans(
        &self,
        tx: &mut sqlx::Transaction<'static, sqlx::Any>,
        id: &str,
        spans: &[Span],
    ) -> Result<bool, sqlx::Error> {
        for span in spans {
            self.count(1);
            let inserted = sqlx::query(
                "INSERT INTO spans (trace_id, id, parent_id, name, start_us, duration_us)
                 VALUES ($1, $2, $3, $4, $5, $6)",
            )
            .bind(id)
            .bind(&span.id)
            .bind(span.parent_id.as_deref())
            .bind(&span.name)
            .bind(span.start_us)
            .bind(span.duration_us)
            .execute(&mut **tx)
            .await;
            match inserted {
                Ok(_) => {}
                Err(sqlx::Error::Database(err)) if err.is_unique_violation() => return Ok(false),
                Err(err) => return Err(err),
            }
        }
        Ok(true)
    }

    /// Begins a write transaction (see [`Store::begin_write`]).
    async fn begin(&self) -> Result<sqlx::Transaction<'static, sqlx::Any>, sqlx::Error> {
        self.count(1);
        self.pool.begin_with(self.begin_write).await
    }

    /// Commits `tx` if the write was applied, and otherwise rolls it back, before the caller
    /// answers: a transaction dropped instead is rolled back later, on the connection's own
    /// schedule, and on SQLite it holds the write lock until then.
    async fn end(
        &self,
        tx: sqlx::Transaction<'static, sqlx::Any>,
        written: Written,
    ) -> Result<Written, sqlx::Error> {
        self.count(1);
        if written == Written::Done {
            tx.commit().await?;
        } else {
            tx.rollback().await?;
        }
        Ok(written)
    }

    fn count(&self, statements: u64) {
        self.queries.fetch_add(statements, Ordering::Relaxed);
        metrics::counter!("trace_service_db_queries_total").increment(statements);
    }
}

/// The span in a row of [`SELECT_TRACE`]; `None` for the one row of a trace without spans.
fn span_of(row: &AnyRow) -> Result<Option<Span>, sqlx::Error> {
    let Some(id) = row.try_get::<Option<String>, _>(1)? else {
        return Ok(None);
    };
    Ok(Some(Span {
        id,
        parent_id: row.try_get(2)?,
        name: row.try_get(3)?,
        start_us: row.try_get(4)?,
        duration_us: row.try_get(5)?,
    }))
}

/// Why the store could not start.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database could not be reached, or refused the connection.
    #[error("cannot connect to the database; check DATABASE_URL and that the server runs")]
    Connect(#[source] sqlx::Error),
    /// A migration failed.
    #[error("the database schema could not be migrated")]
    Migrate(#[source] sqlx::migrate::MigrateError),
}
