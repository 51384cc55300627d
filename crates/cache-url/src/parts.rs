//! A cache URL's text split into its scheme, the part handed on to the backend, its query
//! and its fragment, none of them decoded. Nothing here ever copies the user info (which may
//! hold a password) into an error.

use cache_core::Result;

use crate::invalid;
use crate::scheme::{FORMS, Scheme};

/// A cache URL, split.
#[derive(Clone, Copy)]
pub(crate) struct Parts<'a> {
    pub(crate) scheme: Scheme,
    /// What follows `scheme://` before the query: user info, hosts, path.
    pub(crate) body: &'a str,
    /// What follows the first `?` after the host, without it.
    pub(crate) query: Option<&'a str>,
    /// What follows the first `#` after the host, without it.
    pub(crate) fragment: Option<&'a str>,
}

impl<'a> Parts<'a> {
    /// Splits `text`.
    ///
    /// The user info runs to the last `@` before the first `/` after `scheme://`, as
    /// cache-redis reads its multi-server forms, so that a password keeps an `@` that was not
    /// percent-encoded. A `?` or `#` before that `@` is refused: it is either part of a
    /// password that must be percent-encoded, or a query that holds an `@` before any path,
    /// and reading it either way could hand a facade parameter to Redis or name a piece of a
    /// password in an error.
    ///
    /// # Errors
    /// `InvalidConfig` for a scheme that is missing or unknown, and for the ambiguity above;
    /// neither repeats any of the URL.
    pub(crate) fn of(text: &'a str) -> Result<Self> {
        // As `url` trims: leading and trailing C0 controls and spaces.
        let text = text.trim_matches(|c: char| c <= ' ');
        let (scheme, rest) = text
            .split_once(':')
            .and_then(|(scheme, rest)| Some((Scheme::of(scheme)?, rest.strip_prefix("//")?)))
            .ok_or_else(|| {
                // The scheme is not repeated: a URL mangled enough may have its password there.
                invalid(format!(
                    "the cache url's scheme is missing or not one this crate reads; {FORMS}"
                ))
            })?;
        let authority = rest.find('/').map_or(rest, |slash| &rest[..slash]);
        let userinfo_end = authority.rfind('@').map_or(0, |at| at + 1);
        if rest[..userinfo_end].contains(['?', '#']) {
            return Err(invalid(
                "the cache url has an `@` after a `?` or `#` and before any `/`; percent-encode \
                 `?` and `#` in a password (%3F, %23), and `@` in a parameter's value (%40)"
                    .into(),
            ));
        }
        let (before_fragment, fragment) = split_off(rest, userinfo_end, '#');
        let (body, query) = split_off(before_fragment, userinfo_end, '?');
        Ok(Self {
            scheme,
            body,
            query,
            fragment,
        })
    }
}

/// `text` before and after the first `separator` at or after `from`.
fn split_off(text: &str, from: usize, separator: char) -> (&str, Option<&str>) {
    match text[from..].find(separator) {
        Some(at) => (&text[..from + at], Some(&text[from + at + 1..])),
        None => (text, None),
    }
}

#[cfg(test)]
mod tests {
    use cache_core::CacheError;

    use super::*;

    fn split(text: &str) -> (String, &str, Option<&str>, Option<&str>) {
        let parts = Parts::of(text).unwrap();
        (parts.scheme.name(), parts.body, parts.query, parts.fragment)
    }

    fn reason(text: &str) -> String {
        match Parts::of(text) {
            Err(CacheError::InvalidConfig { reason, .. }) => reason,
            Err(other) => panic!("{text}: {other:?}"),
            Ok(_) => panic!("{text}: accepted"),
        }
    }

    #[test]
    fn the_query_and_fragment_are_split_off_after_the_user_info() {
        assert_eq!(split("memory://"), ("memory".into(), "", None, None));
        assert_eq!(
            split(" memory://?max_capacity=10 "),
            ("memory".into(), "", Some("max_capacity=10"), None)
        );
        assert_eq!(
            split("redis://u:p@w@h:1/2?namespace=a&timeout=1s#insecure"),
            (
                "redis".into(),
                "u:p@w@h:1/2",
                Some("namespace=a&timeout=1s"),
                Some("insecure")
            )
        );
        assert_eq!(
            split("REDIS+cluster://h1:1,h2:2?namespace=a/b@c"),
            (
                "redis+cluster".into(),
                "h1:1,h2:2",
                Some("namespace=a/b@c"),
                None
            )
        );
        assert_eq!(
            split("redis+unix:///run/redis.sock?db=1&pass=a@b"),
            (
                "redis+unix".into(),
                "/run/redis.sock",
                Some("db=1&pass=a@b"),
                None
            )
        );
        assert_eq!(
            split("tiered+redis://h/0#frag?not=query"),
            ("tiered+redis".into(), "h/0", None, Some("frag?not=query"))
        );
    }

    #[test]
    fn a_missing_or_unknown_scheme_is_refused_without_repeating_it() {
        for text in [
            "",
            "localhost:6379",
            "http://h",
            "secret@h",
            "redis:/h",
            "redis:h",
            "s3cret://h",
        ] {
            let reason = reason(text);
            assert!(reason.contains("scheme"), "{text}: {reason}");
            assert!(!reason.contains("s3cret"), "{reason}");
        }
    }

    #[test]
    fn an_at_sign_after_a_question_mark_in_the_authority_is_refused() {
        for text in [
            "redis://user:Pw1?Pw2@h",
            "redis://user:Pw1#Pw2@h/0",
            "redis://h?namespace=a@b",
            "tiered+redis+cluster://u:Pw1?Pw2=Pw3@h1,h2",
        ] {
            let reason = reason(text);
            assert!(reason.contains("percent-encode"), "{text}: {reason}");
            for secret in ["Pw1", "Pw2", "Pw3", "namespace"] {
                assert!(!reason.contains(secret), "{text}: {reason}");
            }
        }
    }
}
