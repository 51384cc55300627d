#![doc = include_str!("../README.md")]

mod any;
mod cache;
mod error;
#[cfg(feature = "testkit")]
pub mod testkit;

pub use any::AnyCache;
pub use cache::{Cache, MIN_TTL, normalize_ttl};
pub use error::{BoxError, CacheError, Result};
