//! Hash slots: which of the 16,384 slots a key belongs to, and the slot map that
//! `CLUSTER SLOTS` describes.

use redis::Value;

/// The number of hash slots of a Redis Cluster.
pub(crate) const SLOTS: usize = 16_384;

/// CRC16-CCITT (XMODEM: polynomial 0x1021, initial value 0), the hash of Redis Cluster.
const CRC16_TABLE: [u16; 256] = {
    let mut table = [0u16; 256];
    let mut i = 0;
    while i < 256 {
        let mut crc = (i as u16) << 8;
        let mut bit = 0;
        while bit < 8 {
            crc = if crc & 0x8000 != 0 {
                (crc << 1) ^ 0x1021
            } else {
                crc << 1
            };
            bit += 1;
        }
        table[i] = crc;
        i += 1;
    }
    table
};

fn crc16(parts: &[&[u8]]) -> u16 {
    let mut crc = 0u16;
    for part in parts {
        for &byte in *part {
            crc = (crc << 8) ^ CRC16_TABLE[usize::from((crc >> 8) as u8 ^ byte)];
        }
    }
    crc
}

/// The slot of the key made of `parts` in turn (a namespace, then the caller's key): the
/// CRC16 of the whole key, or of its hash tag, the bytes between the first `{` and the first
/// `}` after it, when there are any.
pub(crate) fn slot(parts: &[&[u8]]) -> u16 {
    let whole = parts.iter().flat_map(|part| part.iter().copied());
    let open = whole.clone().position(|b| b == b'{');
    if let Some(open) = open {
        let after = whole.clone().skip(open + 1);
        if let Some(len) = after.clone().position(|b| b == b'}')
            && len > 0
        {
            let tag: Vec<u8> = after.take(len).collect();
            return crc16(&[&tag]) % SLOTS as u16;
        }
    }
    crc16(parts) % SLOTS as u16
}

/// One range of `CLUSTER SLOTS`: its slots, its primary and its replicas (`host:port`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Range {
    pub(crate) first: u16,
    pub(crate) last: u16,
    pub(crate) primary: String,
    pub(crate) replicas: Vec<String>,
}

/// Reads a `CLUSTER SLOTS` reply from the node at `asked_host`; `None` for a reply of
/// another shape. A node whose host is empty is on `asked_host` (as the Redis docs say); a
/// node whose endpoint is unknown (`?`) is left out.
pub(crate) fn parse_cluster_slots(reply: &Value, asked_host: &str) -> Option<Vec<Range>> {
    let Value::Array(entries) = reply else {
        return None;
    };
    let mut ranges = Vec::with_capacity(entries.len());
    for entry in entries {
        let Value::Array(fields) = entry else {
            return None;
        };
        let first = slot_number(fields.first()?)?;
        let last = slot_number(fields.get(1)?)?;
        let mut nodes = fields[2..].iter().map(|node| node_addr(node, asked_host));
        let Some(primary) = nodes.next().flatten().flatten() else {
            // A range whose primary is unknown is left unserved.
            continue;
        };
        let replicas = nodes.collect::<Option<Vec<_>>>()?;
        ranges.push(Range {
            first,
            last,
            primary,
            replicas: replicas.into_iter().flatten().collect(),
        });
    }
    Some(ranges)
}

fn slot_number(value: &Value) -> Option<u16> {
    match value {
        Value::Int(n) => u16::try_from(*n).ok().filter(|&n| usize::from(n) < SLOTS),
        _ => None,
    }
}

/// `Some(None)` for a node with an unknown endpoint, `None` for a malformed one.
fn node_addr(node: &Value, asked_host: &str) -> Option<Option<String>> {
    let Value::Array(fields) = node else {
        return None;
    };
    let host = match fields.first()? {
        Value::BulkString(bytes) => String::from_utf8(bytes.clone()).ok()?,
        Value::SimpleString(text) => text.clone(),
        Value::Nil => String::new(),
        _ => return None,
    };
    let port = match fields.get(1)? {
        Value::Int(port) => u16::try_from(*port).ok()?,
        _ => return None,
    };
    if host == "?" || port == 0 {
        return Some(None);
    }
    let host = if host.is_empty() { asked_host } else { &host };
    Some(Some(join_host_port(host, port)))
}

/// `host:port`, with an IPv6 address in brackets.
pub(crate) fn join_host_port(host: &str, port: u16) -> String {
    if host.contains(':') && !host.starts_with('[') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// Splits `host:port` (`[v6]:port` too) back into its parts.
pub(crate) fn split_host_port(addr: &str) -> Option<(String, u16)> {
    let (host, port) = addr.rsplit_once(':')?;
    let host = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    Some((host.to_owned(), port.parse().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_match_the_redis_cluster_spec() {
        // Values from the Redis Cluster specification and `CLUSTER KEYSLOT`.
        assert_eq!(crc16(&[b"123456789"]), 0x31C3);
        assert_eq!(slot(&[b"foo"]), 12182);
        assert_eq!(slot(&[b"bar"]), 5061);
        assert_eq!(slot(&[b""]), 0);
        // A hash tag: only what is between the first `{` and the next `}` counts.
        assert_eq!(slot(&[b"{user1000}.following"]), slot(&[b"user1000"]));
        assert_eq!(slot(&[b"{traces}:", b"abc"]), slot(&[b"traces"]));
        assert_eq!(slot(&[b"{tr", b"aces}:abc"]), slot(&[b"traces"]));
        // An empty tag is no tag: the whole key is hashed.
        assert_eq!(slot(&[b"foo{}{bar}"]), crc16(&[b"foo{}{bar}"]) % 16384);
        assert_eq!(slot(&[b"foo{{bar}}zap"]), slot(&[b"{bar"]));
        assert_eq!(slot(&[b"ns:", b"foo"]), slot(&[b"ns:foo"]));
    }

    #[test]
    fn cluster_slots_replies_are_read() {
        let node = |host: &str, port: i64| {
            Value::Array(vec![
                Value::BulkString(host.as_bytes().to_vec()),
                Value::Int(port),
                Value::BulkString(b"id".to_vec()),
            ])
        };
        let reply = Value::Array(vec![
            Value::Array(vec![
                Value::Int(0),
                Value::Int(5460),
                node("10.0.0.1", 7000),
                node("", 7003),
            ]),
            Value::Array(vec![
                Value::Int(5461),
                Value::Int(16383),
                node("::1", 7001),
                node("?", 7004),
            ]),
        ]);
        let ranges = parse_cluster_slots(&reply, "10.0.0.9").unwrap();
        assert_eq!(
            ranges,
            vec![
                Range {
                    first: 0,
                    last: 5460,
                    primary: "10.0.0.1:7000".into(),
                    replicas: vec!["10.0.0.9:7003".into()],
                },
                Range {
                    first: 5461,
                    last: 16383,
                    primary: "[::1]:7001".into(),
                    replicas: vec![],
                },
            ]
        );
        assert_eq!(split_host_port("[::1]:7001"), Some(("::1".into(), 7001)));
        assert_eq!(
            split_host_port("10.0.0.1:7000"),
            Some(("10.0.0.1".into(), 7000))
        );
        assert!(parse_cluster_slots(&Value::Int(1), "h").is_none());
        let bad = Value::Array(vec![Value::Array(vec![Value::Int(0), Value::Int(99_999)])]);
        assert!(parse_cluster_slots(&bad, "h").is_none());
    }
}
