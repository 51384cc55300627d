//! Cross-backend tests and the quickstart example of the workspace; not published.
//!
//! The workspace README follows, so that its code blocks are compiled and run as doctests.
#![doc = include_str!("../../README.md")]
