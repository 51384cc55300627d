#![doc = include_str!("../README.md")]
// Feature badges on docs.rs, which builds with nightly and `--cfg docsrs`; `doc(cfg)` is not
// stable yet (Rust 1.95), so local and CI doc builds leave `docsrs` unset.
#![cfg_attr(docsrs, feature(doc_cfg))]

mod any;
pub mod backplane;
mod cache;
mod codec;
mod error;
mod load;
#[cfg(feature = "metrics")]
#[cfg_attr(docsrs, doc(cfg(feature = "metrics")))]
pub mod metrics;
pub mod runtime;
mod stats;
#[cfg(feature = "testkit")]
#[cfg_attr(docsrs, doc(cfg(feature = "testkit")))]
pub mod testkit;
mod typed;

pub use any::AnyCache;
pub use bytes::Bytes;
pub use cache::{Cache, MIN_TTL, Ttl, normalize_ttl, utf8};
pub use codec::Codec;
#[cfg(feature = "lz4")]
pub use codec::Compressed;
#[cfg(feature = "serde")]
pub use codec::Json;
#[cfg(feature = "msgpack")]
pub use codec::MsgPack;
pub use error::{BoxError, CacheError, Result};
pub use load::{CacheExt, SingleFlight};
pub use stats::{CacheStats, Stat, StatsCounters};
pub use typed::TypedCache;

/// The name of a cache whose builder was given none: its `cache` label in metrics, and what
/// its `Debug` output and tracing spans show.
pub const DEFAULT_NAME: &str = "default";
