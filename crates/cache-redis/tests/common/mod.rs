//! Helpers shared by the test binaries that check what errors print.

use std::error::Error as _;

use cache_redis::CacheError;

/// Everything `err` prints, `Display` and `Debug`, source chain included.
pub(crate) fn everything_printed(err: &CacheError) -> String {
    let mut text = format!("{err} / {err:?}");
    let mut source = err.source();
    while let Some(inner) = source {
        text.push_str(&format!(" / {inner} / {inner:?}"));
        source = inner.source();
    }
    text
}
