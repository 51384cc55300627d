//! The HTTP API: routes, handlers, and how their errors become responses.
//!
//! Reads go through the cache (`get_or_set_with`: one database load per missing trace
//! however many requests ask at once); every write goes to the database first and then
//! deletes the trace's key, so the next read loads the new version.

use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use cache_core::{AnyCache, Cache, CacheError, TypedCache};

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};

use crate::model::{self, Span, Trace};
use crate::store::{Store, Written};
use crate::telemetry;

/// What every handler shares.
#[derive(Debug, Clone)]
pub(crate) struct AppState {
    pub(crate) store: Store,
    /// `None` when caching is off (`CACHE_URL=none`).
    pub(crate) traces: Option<TypedCache<AnyCache, Trace>>,
    pub(crate) ttl: Duration,
}

/// What a trace id keeps as it is in a URL path: the unreserved characters of RFC 3986.
const PATH_SEGMENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// The routes of the service.
pub(crate) fn router(state: AppState) -> Router {
    Router::new()
        .route("/traces", post(create_trace))
        .route("/traces/{id}", get(read_trace).delete(delete_trace))
        .route("/traces/{id}/spans", post(add_spans))
        .route("/metrics", get(render_metrics))
        .route("/health", get(|| async { "ok" }))
        .layer(axum::middleware::from_fn(telemetry::record))
        .with_state(state)
}

/// The cache key of trace `id`.
pub(crate) fn key(id: &str) -> String {
    format!("trace:{id}")
}

/// `GET /traces/{id}`: the trace with its spans, from the cache when it holds it.
///
/// A cache that fails (Redis unreachable, a value that no longer decodes) is counted and
/// skipped: the trace is read from the database instead.
async fn read_trace(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Trace>, ApiError> {
    model::validate_id("trace id", &id).map_err(ApiError::Invalid)?;
    let Some(traces) = &state.traces else {
        return load(&state.store, &id).await.map(Json);
    };
    let store = &state.store;
    let loaded = traces
        .get_or_set_with(&key(&id), Some(state.ttl), || async {
            metrics::counter!("trace_service_cache_loads_total").increment(1);
            load(store, &id).await
        })
        .await;
    match loaded {
        Ok(trace) => Ok(Json(trace)),
        Err(CacheError::Load { source }) => Err(source
            .downcast_ref::<ApiError>()
            .cloned()
            .unwrap_or_else(|| ApiError::Internal(source.to_string()))),
        Err(err) => {
            cache_failed("read", &err);
            load(store, &id).await.map(Json)
        }
    }
}

/// `POST /traces`: stores a new trace with its spans; `409` if the id is taken.
async fn create_trace(
    State(state): State<AppState>,
    Json(trace): Json<Trace>,
) -> Result<Response, ApiError> {
    trace.validate().map_err(ApiError::Invalid)?;
    let written = state
        .store
        .create(&trace)
        .await
        .map_err(ApiError::database)?;
    // A read that raced a delete of an earlier trace with this id may have cached it.
    invalidate(&state, &trace.id).await;
    match written {
        Written::Done => {
            let id = utf8_percent_encode(&trace.id, PATH_SEGMENT);
            let location = format!("/traces/{id}");
            Ok((
                StatusCode::CREATED,
                [(header::LOCATION, location)],
                Json(trace),
            )
                .into_response())
        }
        Written::AlreadyExists => Err(ApiError::Conflict(format!(
            "a trace with id {:?} exists, or two of its spans share an id",
            trace.id
        ))),
        Written::NoSuchTrace => Err(ApiError::Internal("create found no trace".into())),
    }
}

/// `POST /traces/{id}/spans`: adds spans (a JSON array) to a trace; `404` if there is no
/// such trace, `409` if one of the span ids is taken.
async fn add_spans(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Json(spans): Json<Vec<Span>>,
) -> Result<StatusCode, ApiError> {
    model::validate_id("trace id", &id).map_err(ApiError::Invalid)?;
    model::validate_spans(&spans).map_err(ApiError::Invalid)?;
    let written = state
        .store
        .add_spans(&id, &spans)
        .await
        .map_err(ApiError::database)?;
    match written {
        Written::Done => {
            invalidate(&state, &id).await;
            Ok(StatusCode::NO_CONTENT)
        }
        Written::NoSuchTrace => Err(ApiError::NotFound),
        Written::AlreadyExists => Err(ApiError::Conflict(
            "a span with one of these ids exists in the trace".into(),
        )),
    }
}

/// `DELETE /traces/{id}`: removes a trace and its spans; `404` if there is none.
async fn delete_trace(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    model::validate_id("trace id", &id).map_err(ApiError::Invalid)?;
    let written = state.store.delete(&id).await.map_err(ApiError::database)?;
    invalidate(&state, &id).await;
    match written {
        Written::Done => Ok(StatusCode::NO_CONTENT),
        _ => Err(ApiError::NotFound),
    }
}

/// `GET /metrics`: every counter of the process, in Prometheus's text format.
async fn render_metrics() -> impl IntoResponse {
    let handle = telemetry::prometheus();
    handle.run_upkeep();
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        handle.render(),
    )
}

/// The trace from the database, or `NotFound`.
async fn load(store: &Store, id: &str) -> Result<Trace, ApiError> {
    store
        .load(id)
        .await
        .map_err(ApiError::database)?
        .ok_or(ApiError::NotFound)
}

/// Drops trace `id` from the cache after a write. The write is in the database already, so
/// a failure here does not fail the request: it is logged and counted, and the cached copy
/// lives at most its TTL.
async fn invalidate(state: &AppState, id: &str) {
    if let Some(traces) = &state.traces
        && let Err(err) = traces.cache().delete(&key(id)).await
    {
        cache_failed("invalidate", &err);
    }
}

fn cache_failed(operation: &'static str, err: &CacheError) {
    metrics::counter!("trace_service_cache_errors_total", "operation" => operation).increment(1);
    eprintln!("trace-service: cache {operation} failed, using the database: {err}");
}

/// How a request failed, as a status and a JSON body `{"error": "..."}`.
#[derive(Debug, Clone, thiserror::Error)]
pub(crate) enum ApiError {
    #[error("no such trace")]
    NotFound,
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    Conflict(String),
    /// The database failed; the message is logged, not sent.
    #[error("the database failed")]
    Database(String),
    #[error("internal error")]
    Internal(String),
}

impl ApiError {
    fn database(err: sqlx::Error) -> Self {
        Self::Database(err.to_string())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = match &self {
            Self::NotFound => StatusCode::NOT_FOUND,
            Self::Invalid(_) => StatusCode::UNPROCESSABLE_ENTITY,
            Self::Conflict(_) => StatusCode::CONFLICT,
            Self::Database(detail) | Self::Internal(detail) => {
                eprintln!("trace-service: {self}: {detail}");
                if matches!(self, Self::Database(_)) {
                    StatusCode::SERVICE_UNAVAILABLE
                } else {
                    StatusCode::INTERNAL_SERVER_ERROR
                }
            }
        };
        let body = serde_json::json!({ "error": self.to_string() });
        (status, Json(body)).into_response()
    }
}
