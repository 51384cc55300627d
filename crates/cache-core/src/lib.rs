#![doc = include_str!("../README.md")]

mod any;
mod cache;
mod error;
mod load;
pub mod runtime;
mod stats;
#[cfg(feature = "testkit")]
pub mod testkit;
#[cfg(feature = "serde")]
mod typed;

pub use any::AnyCache;
pub use cache::{Cache, MIN_TTL, normalize_ttl};
pub use error::{BoxError, CacheError, Result};
pub use load::{CacheExt, SingleFlight};
pub use stats::{CacheStats, Stat, StatsCounters};
#[cfg(feature = "serde")]
pub use typed::{Codec, Json, TypedCache};
