//! What the fuzz targets share: a trace-like type and the check each input goes through.

use std::collections::BTreeMap;

use cache_core::Codec;
use serde::{Deserialize, Serialize};

/// A trace as a trace server caches it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Trace {
    pub trace_id: String,
    pub service: String,
    pub spans: Vec<Span>,
}

/// One operation of a [`Trace`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Span {
    pub span_id: u64,
    pub parent_id: Option<u64>,
    pub name: String,
    pub start_unix_nanos: u64,
    pub duration_nanos: i64,
    pub status: Status,
    pub attributes: BTreeMap<String, String>,
}

/// How a [`Span`] ended.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Status {
    Unset,
    Ok,
    Error { message: String },
}

/// Decodes `data` as a [`Trace`] and as a value of any shape. Either may fail; neither may
/// panic, and a trace that decodes must encode and decode again to itself.
pub fn decode_all<C>(codec: &C, data: &[u8])
where
    C: Codec<Trace> + Codec<serde_json::Value>,
{
    if let Ok(trace) = Codec::<Trace>::decode(codec, data) {
        let again = codec.encode(&trace).expect("a decoded trace encodes");
        let back: Trace = codec.decode(&again).expect("a re-encoded trace decodes");
        assert_eq!(back, trace);
    }
    let _ = Codec::<serde_json::Value>::decode(codec, data);
}

/// A few traces, small and large, for a starting corpus.
pub fn sample_traces() -> Vec<Trace> {
    let span = |id: u64, status: Status| Span {
        span_id: id,
        parent_id: id.checked_sub(1),
        name: format!("GET /users/{id}"),
        start_unix_nanos: 1_700_000_000_000_000_000 + id,
        duration_nanos: -5 + id as i64,
        status,
        attributes: BTreeMap::from([
            ("http.method".to_string(), "GET".to_string()),
            ("peer.service".to_string(), "db \u{e9}\"\\".to_string()),
        ]),
    };
    vec![
        Trace {
            trace_id: "4bf92f3577b34da6a3ce929d0e0e4736".into(),
            service: String::new(),
            spans: vec![],
        },
        Trace {
            trace_id: "00f067aa0ba902b7".into(),
            service: "checkout".into(),
            spans: vec![
                span(0, Status::Unset),
                span(1, Status::Ok),
                span(
                    2,
                    Status::Error {
                        message: "timeout".into(),
                    },
                ),
            ],
        },
        Trace {
            trace_id: "large".into(),
            service: "search".into(),
            spans: (0..40).map(|id| span(id, Status::Ok)).collect(),
        },
    ]
}
