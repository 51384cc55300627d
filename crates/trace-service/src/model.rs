//! What the service stores: a trace and its spans, and the rules a trace must follow.

use serde::{Deserialize, Serialize};

/// The longest trace or span id accepted, in bytes.
pub const MAX_ID_BYTES: usize = 128;
/// The longest trace or span name accepted, in bytes.
pub const MAX_NAME_BYTES: usize = 1024;
/// The most spans one request may carry.
pub const MAX_SPANS_PER_REQUEST: usize = 10_000;

/// A trace: one operation through a system, made of spans. The body of `POST /traces` and
/// of the answer to `GET /traces/{id}`, and the value the cache holds (as JSON).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Trace {
    /// Chosen by the client (such as an OpenTelemetry trace id in hex), unique.
    pub id: String,
    /// What the trace is of, such as the root operation's name.
    pub name: String,
    /// Its spans, ordered by start time, then id.
    #[serde(default)]
    pub spans: Vec<Span>,
}

/// One timed step of a trace.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Span {
    /// Unique within its trace.
    pub id: String,
    /// The span this one ran inside, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent_id: Option<String>,
    /// The operation it timed.
    pub name: String,
    /// When it started, in microseconds since the Unix epoch.
    pub start_us: i64,
    /// How long it took, in microseconds (0 or more).
    pub duration_us: i64,
}

impl Trace {
    /// Checks the limits of a trace sent to the service; the message says what is wrong.
    ///
    /// # Errors
    /// A message naming the first field over its limit.
    pub fn validate(&self) -> Result<(), String> {
        validate_id("trace id", &self.id)?;
        validate_name("trace name", &self.name)?;
        validate_spans(&self.spans)
    }
}

/// Checks a trace or span id: 1 to [`MAX_ID_BYTES`] bytes.
pub(crate) fn validate_id(what: &str, id: &str) -> Result<(), String> {
    if id.is_empty() || id.len() > MAX_ID_BYTES {
        return Err(format!("a {what} is 1 to {MAX_ID_BYTES} bytes long"));
    }
    Ok(())
}

fn validate_name(what: &str, name: &str) -> Result<(), String> {
    if name.len() > MAX_NAME_BYTES {
        return Err(format!("a {what} is at most {MAX_NAME_BYTES} bytes long"));
    }
    Ok(())
}

/// Checks the spans of one request: how many, and each span's fields.
pub(crate) fn validate_spans(spans: &[Span]) -> Result<(), String> {
    if spans.len() > MAX_SPANS_PER_REQUEST {
        return Err(format!(
            "a request carries at most {MAX_SPANS_PER_REQUEST} spans"
        ));
    }
    for span in spans {
        validate_id("span id", &span.id)?;
        if let Some(parent) = &span.parent_id {
            validate_id("parent span id", parent)?;
        }
        validate_name("span name", &span.name)?;
        if span.duration_us < 0 {
            return Err(format!("span {:?} has a negative duration", span.id));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn span(id: &str, duration_us: i64) -> Span {
        Span {
            id: id.into(),
            parent_id: None,
            name: "db.query".into(),
            start_us: 1,
            duration_us,
        }
    }

    #[test]
    fn a_trace_within_the_limits_is_valid() {
        let trace = Trace {
            id: "4bf92f3577b34da6".into(),
            name: "GET /".into(),
            spans: vec![span("a", 0), span("b", 12)],
        };
        assert_eq!(trace.validate(), Ok(()));
    }

    #[test]
    fn empty_or_long_ids_and_negative_durations_are_refused() {
        let mut trace = Trace {
            id: String::new(),
            name: "n".into(),
            spans: vec![],
        };
        assert!(trace.validate().unwrap_err().contains("trace id"));
        trace.id = "x".repeat(MAX_ID_BYTES + 1);
        assert!(trace.validate().is_err());
        trace.id = "x".repeat(MAX_ID_BYTES);
        trace.spans = vec![span("a", -1)];
        assert!(trace.validate().unwrap_err().contains("negative"));
    }

    #[test]
    fn unknown_fields_are_refused() {
        let body = r#"{"id": "t", "name": "n", "spans": [], "extra": 1}"#;
        assert!(serde_json::from_str::<Trace>(body).is_err());
    }
}
