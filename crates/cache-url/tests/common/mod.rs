//! Helpers shared by the test binaries.

#![allow(dead_code, unreachable_pub)]

use std::error::Error as _;

use cache_url::{CacheError, CacheUrl};

/// Everything `err` prints, `Display` and `Debug`, source chain included.
pub fn everything_printed(err: &CacheError) -> String {
    let mut text = format!("{err} / {err:?}");
    let mut source = err.source();
    while let Some(inner) = source {
        text.push_str(&format!(" / {inner} / {inner:?}"));
        source = inner.source();
    }
    text
}

/// The reason of the `InvalidConfig` that parsing `url` gives; panics on anything else.
pub fn reason(url: &str) -> String {
    match CacheUrl::parse(url) {
        Err(CacheError::InvalidConfig { reason, .. }) => reason,
        Err(other) => panic!("{url}: expected InvalidConfig, got {other:?}"),
        Ok(parsed) => panic!("{url}: expected InvalidConfig, got {parsed:?}"),
    }
}

/// Checks that `url` is refused with a reason containing each of `expected`.
pub fn refused(url: &str, expected: &[&str]) {
    let reason = reason(url);
    for part in expected {
        assert!(reason.contains(part), "{url}: {reason:?} lacks {part:?}");
    }
    // `from_url` refuses it the same way.
    match cache_url::from_url(url) {
        Err(CacheError::InvalidConfig { reason: again, .. }) => assert_eq!(again, reason),
        other => panic!("{url}: from_url gave {other:?}"),
    }
}
