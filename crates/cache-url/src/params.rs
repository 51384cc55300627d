//! The query parameters of a cache URL: read once, each taken by the backend that knows it,
//! and what is left refused by name. Values are read here too: durations, sizes, counts,
//! switches and fractions, each error naming the parameter and its value.

use std::time::Duration;

use cache_core::Result;
use url::form_urlencoded;

use crate::invalid;

/// The query parameters of a URL not taken yet.
pub(crate) struct Query<'a> {
    params: Vec<Param<'a>>,
}

struct Param<'a> {
    /// Percent-decoded.
    name: String,
    /// Percent-decoded.
    value: String,
    /// `name=value` as written, to hand on to cache-redis unchanged.
    #[cfg_attr(not(feature = "redis"), allow(dead_code))]
    raw: &'a str,
}

impl<'a> Query<'a> {
    /// Reads `query` (without its `?`); empty pieces (`&&`, a trailing `&`) are skipped.
    ///
    /// # Errors
    /// `InvalidConfig` for a parameter given twice.
    pub(crate) fn parse(query: Option<&'a str>) -> Result<Self> {
        let mut params: Vec<Param<'a>> = Vec::new();
        for raw in query.unwrap_or_default().split('&') {
            let Some((name, value)) = form_urlencoded::parse(raw.as_bytes()).next() else {
                continue;
            };
            if params.iter().any(|param| param.name == name) {
                return Err(invalid(format!(
                    "the cache url gives the parameter {} twice",
                    shown(&name)
                )));
            }
            params.push(Param {
                name: name.into_owned(),
                value: value.into_owned(),
                raw,
            });
        }
        Ok(Self { params })
    }

    /// The value of `name`, taken out of the query.
    pub(crate) fn take(&mut self, name: &str) -> Option<String> {
        let index = self.params.iter().position(|param| param.name == name)?;
        Some(self.params.remove(index).value)
    }

    #[cfg(feature = "redis")]
    /// The parameters named in `names`, taken out of the query as written, in their order.
    pub(crate) fn take_raw(&mut self, names: &[&str]) -> Vec<&'a str> {
        let (taken, kept) = std::mem::take(&mut self.params)
            .into_iter()
            .partition(|param| names.contains(&param.name.as_str()));
        self.params = kept;
        taken.into_iter().map(|param| param.raw).collect()
    }

    /// Fails on the first parameter left, named if its name looks like one (never its value):
    /// `scheme` reads only `known`, and `hint` may say where the parameter belongs.
    ///
    /// # Errors
    /// `InvalidConfig` naming the parameter.
    pub(crate) fn finish(
        self,
        scheme: &str,
        known: &[&str],
        hint: impl Fn(&str) -> Option<&'static str>,
    ) -> Result<()> {
        let Some(param) = self.params.first() else {
            return Ok(());
        };
        let reads = match known {
            [] => "no parameters".to_owned(),
            known => known.join(", "),
        };
        let hint = hint(&param.name).map_or(String::new(), |hint| format!("; {hint}"));
        Err(invalid(format!(
            "the cache url has an unknown parameter {}{hint}; a {scheme}:// url reads {reads}",
            shown(&param.name)
        )))
    }
}

/// A parameter's name in backquotes if it looks like one (up to 32 letters, digits, `_` and
/// `-`); otherwise a stand-in, since it may be a stray piece of a password.
fn shown(name: &str) -> String {
    let named = (1..=32).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if named {
        format!("`{name}`")
    } else {
        "(not shown: it does not look like a parameter name)".into()
    }
}

/// The error for a bad value of a known parameter: its name, its value and what is expected.
fn bad_value(name: &str, value: &str, expected: &str) -> cache_core::CacheError {
    invalid(format!(
        "the cache url's parameter {name}={value:?} is not valid: expected {expected}"
    ))
}

/// A duration: a whole number and a unit, `ms`, `s`, `m`, `h` or `d` (`500ms`, `30s`, `5m`).
/// A number without a unit is refused, so that no one guesses which unit it is.
pub(crate) fn duration(name: &str, value: &str) -> Result<Duration> {
    const EXPECTED: &str = "a whole number and a unit, ms, s, m, h or d, as in 500ms or 30s";
    let digits = value.bytes().take_while(u8::is_ascii_digit).count();
    let (number, unit) = value.split_at(digits);
    let number: u64 = number
        .parse()
        .map_err(|_| bad_value(name, value, EXPECTED))?;
    let seconds = |factor: u64| number.checked_mul(factor).map(Duration::from_secs);
    match unit {
        "ms" => Some(Duration::from_millis(number)),
        "s" => Some(Duration::from_secs(number)),
        "m" => seconds(60),
        "h" => seconds(3_600),
        "d" => seconds(86_400),
        _ => return Err(bad_value(name, value, EXPECTED)),
    }
    .ok_or_else(|| bad_value(name, value, "a duration that fits in 64 bits of seconds"))
}

/// A [`duration`] greater than zero.
pub(crate) fn positive_duration(name: &str, value: &str) -> Result<Duration> {
    let duration = duration(name, value)?;
    if duration.is_zero() {
        return Err(bad_value(name, value, "a duration greater than zero"));
    }
    Ok(duration)
}

/// A whole number from 1 up.
pub(crate) fn count(name: &str, value: &str) -> Result<usize> {
    value
        .parse::<usize>()
        .ok()
        .filter(|&count| count > 0)
        .ok_or_else(|| bad_value(name, value, "a whole number from 1 up"))
}

/// A number of bytes from `min` up: a whole number, alone or with a unit, `KB`, `MB`, `GB`
/// (powers of 1000) or `KiB`, `MiB`, `GiB` (powers of 1024), in any case.
pub(crate) fn bytes(name: &str, value: &str, min: usize) -> Result<usize> {
    let expected = || {
        format!(
            "a number of bytes from {min} up, alone or with a unit KB, MB, GB, KiB, MiB or \
             GiB, as in 64MiB"
        )
    };
    let digits = value.bytes().take_while(u8::is_ascii_digit).count();
    let (number, unit) = value.split_at(digits);
    let factor: usize = match unit.to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "kb" => 1_000,
        "mb" => 1_000_000,
        "gb" => 1_000_000_000,
        "kib" => 1 << 10,
        "mib" => 1 << 20,
        "gib" => 1 << 30,
        _ => return Err(bad_value(name, value, &expected())),
    };
    number
        .parse::<usize>()
        .ok()
        .and_then(|number| number.checked_mul(factor))
        .filter(|&bytes| bytes >= min)
        .ok_or_else(|| bad_value(name, value, &expected()))
}

/// `true` or `false`.
#[cfg(feature = "redis")]
pub(crate) fn switch(name: &str, value: &str) -> Result<bool> {
    match value {
        "true" => Ok(true),
        "false" => Ok(false),
        _ => Err(bad_value(name, value, "true or false")),
    }
}

#[cfg(feature = "tiered")]
/// A fraction in `range` (`0.1`, `0.8`), described as `expected`.
pub(crate) fn fraction(
    name: &str,
    value: &str,
    range: impl Fn(f64) -> bool,
    expected: &str,
) -> Result<f64> {
    value
        .parse::<f64>()
        .ok()
        .filter(|&fraction| range(fraction))
        .ok_or_else(|| bad_value(name, value, expected))
}

#[cfg(feature = "tiered")]
/// A circuit breaker: consecutive failures and the break duration, `5/10s`.
pub(crate) fn breaker(name: &str, value: &str) -> Result<(u32, Duration)> {
    const EXPECTED: &str = "failures/duration, at least 1 failure and a duration above zero, \
                            as in 5/10s";
    let (failures, duration) = value
        .split_once('/')
        .ok_or_else(|| bad_value(name, value, EXPECTED))?;
    let failures = failures
        .parse::<u32>()
        .ok()
        .filter(|&failures| failures > 0)
        .ok_or_else(|| bad_value(name, value, EXPECTED))?;
    let duration =
        positive_duration(name, duration).map_err(|_| bad_value(name, value, EXPECTED))?;
    Ok((failures, duration))
}

#[cfg(test)]
mod tests {
    use cache_core::CacheError;

    use super::*;

    fn reason<T: std::fmt::Debug>(result: Result<T>) -> String {
        match result {
            Err(CacheError::InvalidConfig { reason, .. }) => reason,
            other => panic!("expected InvalidConfig, got {other:?}"),
        }
    }

    #[test]
    fn durations_need_a_unit() {
        let ok = [
            ("500ms", Duration::from_millis(500)),
            ("0s", Duration::ZERO),
            ("30s", Duration::from_secs(30)),
            ("5m", Duration::from_secs(300)),
            ("2h", Duration::from_secs(7_200)),
            ("1d", Duration::from_secs(86_400)),
        ];
        for (text, expected) in ok {
            assert_eq!(duration("timeout", text).unwrap(), expected, "{text}");
        }
        for text in [
            "",
            "30",
            "s",
            "1.5s",
            "-1s",
            "1 s",
            "1S",
            "1sec",
            "10us",
            "99999999999999999999d",
        ] {
            let reason = reason(duration("timeout", text));
            assert!(reason.contains(&format!("timeout={text:?}")), "{reason}");
        }
        assert!(reason(positive_duration("l1_ttl", "0ms")).contains("l1_ttl=\"0ms\""));
    }

    #[test]
    fn sizes_take_decimal_and_binary_units() {
        let ok = [
            ("1", 1),
            ("96B", 96),
            ("2KB", 2_000),
            ("64MiB", 64 << 20),
            ("1gib", 1 << 30),
            ("3mb", 3_000_000),
        ];
        for (text, expected) in ok {
            assert_eq!(bytes("max_bytes", text, 1).unwrap(), expected, "{text}");
        }
        for text in ["", "0", "1.5MiB", "MiB", "12 MB", "1TB", "-1"] {
            assert!(
                reason(bytes("max_bytes", text, 1)).contains("max_bytes="),
                "{text}"
            );
        }
        assert!(reason(bytes("l1_max_bytes", "95", 96)).contains("from 96 up"));
    }

    #[test]
    fn counts_are_whole_numbers_from_one() {
        assert_eq!(count("pool_size", "4").unwrap(), 4);
        for text in ["0", "-1", "x", ""] {
            assert!(reason(count("pool_size", text)).contains("pool_size="));
        }
    }

    #[cfg(feature = "redis")]
    #[test]
    fn switches_are_true_or_false() {
        assert!(switch("read_from_replicas", "true").unwrap());
        assert!(!switch("read_from_replicas", "false").unwrap());
        assert!(reason(switch("read_from_replicas", "yes")).contains("true or false"));
    }

    #[cfg(feature = "tiered")]
    #[test]
    fn fractions_and_breakers() {
        let below_one = |f: f64| (0.0..1.0).contains(&f);
        assert_eq!(fraction("ttl_jitter", "0.1", below_one, "").unwrap(), 0.1);
        for text in ["1", "-0.1", "NaN", "inf", "x"] {
            assert!(reason(fraction("ttl_jitter", text, below_one, "")).contains("ttl_jitter="));
        }
        assert_eq!(
            breaker("circuit_breaker", "5/10s").unwrap(),
            (5, Duration::from_secs(10))
        );
        for text in ["5", "0/10s", "5/0s", "5/10", "x/1s", "5/10s/1"] {
            let reason = reason(breaker("circuit_breaker", text));
            assert!(
                reason.contains(&format!("circuit_breaker={text:?}")),
                "{reason}"
            );
        }
    }

    #[test]
    fn parameters_are_taken_once_and_what_is_left_is_named() {
        let mut query = Query::parse(Some("a=1&&protocol=3&b=%41&db=2&")).unwrap();
        assert_eq!(query.take("b").as_deref(), Some("A"));
        assert_eq!(query.take("b"), None);
        #[cfg(feature = "redis")]
        assert_eq!(query.take_raw(&["db", "protocol"]), ["protocol=3", "db=2"]);
        #[cfg(not(feature = "redis"))]
        let _ = (query.take("db"), query.take("protocol"));
        let reason = reason(query.finish("redis", &["b"], |_| Some("try b")));
        assert!(
            reason.contains("unknown parameter `a`; try b; a redis:// url reads b"),
            "{reason}"
        );
        assert!(
            Query::parse(None)
                .unwrap()
                .finish("memory", &[], |_| None)
                .is_ok()
        );
    }

    #[test]
    fn a_name_that_does_not_look_like_one_is_not_repeated() {
        for query in ["s3cr%3At=1", "hunter2!", "a%20b"] {
            let parsed = Query::parse(Some(query)).unwrap();
            let reason = reason(parsed.finish("memory", &[], |_| None));
            assert!(reason.contains("not shown"), "{reason}");
        }
        let reason = reason(Query::parse(Some("x=1&x=2")).map(|_| ()));
        assert!(reason.contains("`x` twice"), "{reason}");
    }
}
