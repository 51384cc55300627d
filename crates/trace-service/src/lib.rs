#![doc = include_str!("../README.md")]

mod api;
mod cache;
mod config;
mod model;
mod server;
mod store;
mod telemetry;

pub use cache::{DEFAULT_CACHE_URL, cache_from_url, tiered_cache_url};
pub use config::Config;
pub use model::{MAX_ID_BYTES, MAX_NAME_BYTES, MAX_SPANS_PER_REQUEST, Span, Trace};
pub use server::{Server, StartError};
pub use store::{Store, StoreError, Written};
pub use telemetry::prometheus;
