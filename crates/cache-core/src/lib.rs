#![doc = include_str!("../README.md")]
// Feature badges on docs.rs, which builds with nightly and `--cfg docsrs`; `doc(cfg)` is not
// stable yet (Rust 1.95), so local and CI doc builds leave `docsrs` unset.
#![cfg_attr(docsrs, feature(doc_cfg))]

mod any;
mod cache;
mod error;
mod load;
pub mod runtime;
mod stats;
#[cfg(feature = "testkit")]
#[cfg_attr(docsrs, doc(cfg(feature = "testkit")))]
pub mod testkit;
#[cfg(feature = "serde")]
mod typed;

pub use any::AnyCache;
pub use bytes::Bytes;
pub use cache::{Cache, MIN_TTL, normalize_ttl, utf8};
pub use error::{BoxError, CacheError, Result};
pub use load::{CacheExt, SingleFlight};
pub use stats::{CacheStats, Stat, StatsCounters};
#[cfg(feature = "serde")]
pub use typed::{Codec, Json, TypedCache};
