//! The codec group: encode and decode speed and encoded size of a trace-like value of about
//! 1 KiB and 64 KiB of JSON, per codec, and the bytes each puts on the wire to Redis.

use std::collections::BTreeMap;
use std::hint::black_box;
use std::time::{Duration, Instant};

use cache_redis::{Cache, Codec, Compressed, Json, MsgPack, RedisCache, TypedCache};
use redis::aio::MultiplexedConnection;
use redis_test_server::RedisServer;
use serde::{Deserialize, Serialize};

use crate::options::Options;
use crate::redis_benchmark;
use crate::report::{Table, median};
use crate::rng::Rng;
use crate::workload::Result;

/// The group's name, as `--only` matches it.
pub(crate) const CODECS: &str = "codecs";

/// The value sizes, as JSON: a label and the least number of bytes.
const SIZES: [(&str, usize); 2] = [("1 KiB", 1024), ("64 KiB", 64 * 1024)];

/// Values written and read per wire measurement, so that the `INFO` calls around them
/// weigh little.
const WIRE_REPEATS: u64 = 20;

/// A trace as a trace server caches it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Trace {
    trace_id: String,
    service: String,
    spans: Vec<Span>,
}

/// One operation of a [`Trace`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Span {
    span_id: u64,
    parent_id: Option<u64>,
    name: String,
    start_unix_nanos: u64,
    duration_nanos: u64,
    attributes: BTreeMap<String, String>,
}

/// A trace whose JSON is at least `min_json` bytes: spans of a web request with the names,
/// attribute keys and repeated values real traces have, and random ids and timings.
fn trace(min_json: usize, rng: &mut Rng) -> Trace {
    const NAMES: [&str; 5] = [
        "GET /api/users/{id}",
        "SELECT users WHERE id = ?",
        "redis GET",
        "render profile.html",
        "POST /api/events",
    ];
    let mut trace = Trace {
        trace_id: format!("{:016x}{:016x}", rng.next_u64(), rng.next_u64()),
        service: "profile-frontend".into(),
        spans: Vec::new(),
    };
    let mut start = 1_700_000_000_000_000_000 + rng.next_u64() % 1_000_000_000;
    while serde_json::to_vec(&trace).map_or(0, |json| json.len()) < min_json {
        let n = trace.spans.len();
        start += rng.next_u64() % 100_000;
        let attributes = BTreeMap::from([
            ("http.method".to_owned(), "GET".to_owned()),
            ("http.status_code".to_owned(), "200".to_owned()),
            (
                "http.url".to_owned(),
                format!("/api/users/{}", rng.next_u64() % 100_000),
            ),
            (
                "net.peer.name".to_owned(),
                format!("10.0.{}.{}", rng.next_u64() % 4, rng.next_u64() % 256),
            ),
            ("thread.name".to_owned(), format!("worker-{}", n % 8)),
        ]);
        trace.spans.push(Span {
            span_id: rng.next_u64(),
            parent_id: trace.spans.last().map(|parent| parent.span_id),
            name: NAMES[n % NAMES.len()].to_owned(),
            start_unix_nanos: start,
            duration_nanos: rng.next_u64() % 5_000_000,
            attributes,
        });
    }
    trace
}

/// The codecs compared, by name.
fn codecs() -> Vec<(&'static str, Box<dyn Codec<Trace>>)> {
    vec![
        ("Json", Box::new(Json)),
        ("MsgPack", Box::new(MsgPack)),
        ("Compressed<Json>", Box::new(Compressed::new(Json))),
        ("Compressed<MsgPack>", Box::new(Compressed::new(MsgPack))),
    ]
}

/// One codec on one value size.
#[derive(Debug, Clone)]
pub(crate) struct CodecRow {
    /// The codec.
    codec: &'static str,
    /// The value's size label.
    size: &'static str,
    /// The value's index in the traces measured.
    trace: usize,
    /// The value's JSON size, the unit of the MB/s columns.
    json_bytes: usize,
    /// What the codec stores.
    encoded_bytes: usize,
    /// Encodes per second, one per round.
    encodes: Vec<f64>,
    /// Decodes per second, one per round.
    decodes: Vec<f64>,
    /// Bytes into Redis for one `set` and out of it for one `get`, when measured.
    wire: Option<(f64, f64)>,
}

/// Runs the group when `--only` selects it; an empty result otherwise.
pub(crate) async fn run(opts: &Options) -> Result<Vec<CodecRow>> {
    let selected: Vec<_> = codecs()
        .into_iter()
        .filter(|(name, _)| opts.selects(CODECS, name))
        .collect();
    if selected.is_empty() {
        return Ok(Vec::new());
    }
    let mut rng = Rng::new(11);
    let traces: Vec<_> = SIZES
        .iter()
        .map(|&(label, bytes)| (label, trace(bytes, &mut rng)))
        .collect();
    let mut rows = Vec::new();
    for (index, (size, trace)) in traces.iter().enumerate() {
        let json_bytes = serde_json::to_vec(trace)?.len();
        for (codec, encoder) in &selected {
            let encoded = encoder.encode(trace)?;
            if encoder.decode(&encoded)? != *trace {
                return Err(format!("{codec} does not decode what it encoded").into());
            }
            rows.push(CodecRow {
                codec,
                size,
                trace: index,
                json_bytes,
                encoded_bytes: encoded.len(),
                encodes: Vec::new(),
                decodes: Vec::new(),
                wire: None,
            });
        }
    }
    // Interleaved rounds, as in the other groups: a slow spell slows every codec alike.
    let budget = Duration::from_secs_f64(opts.secs / 4.0);
    for round in 0..opts.rounds {
        for row in &mut rows {
            let codec = codec_named(&selected, row.codec)?;
            let trace = &traces[row.trace].1;
            let encoded = codec.encode(trace)?;
            row.encodes
                .push(per_second(budget, || drop(black_box(codec.encode(trace)))));
            row.decodes.push(per_second(budget, || {
                drop(black_box(codec.decode(&encoded)))
            }));
        }
        eprintln!("[{CODECS}] round {}/{} done", round + 1, opts.rounds);
    }
    if let Err(e) = redis_benchmark::require("redis-server") {
        eprintln!("[{CODECS}] bytes on the wire not measured: {e}");
    } else {
        wire_bytes(&mut rows, &selected, &traces).await?;
    }
    Ok(rows)
}

/// The codec called `name` among `codecs`.
fn codec_named<'a>(
    codecs: &'a [(&'static str, Box<dyn Codec<Trace>>)],
    name: &str,
) -> Result<&'a dyn Codec<Trace>> {
    codecs
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, codec)| &**codec)
        .ok_or_else(|| format!("no codec named {name}").into())
}

/// Operations per second of `op`, run for about `budget`.
fn per_second(budget: Duration, mut op: impl FnMut()) -> f64 {
    op();
    let started = Instant::now();
    let mut done = 0u64;
    while started.elapsed() < budget {
        op();
        done += 1;
    }
    done as f64 / started.elapsed().as_secs_f64()
}

/// Fills each row's bytes on the wire: a private redis-server's `total_net_input_bytes` and
/// `total_net_output_bytes` before and after [`WIRE_REPEATS`] `TypedCache::set`s and `get`s
/// through a `RedisCache`, less the same for no operation (the `INFO` calls themselves).
async fn wire_bytes(
    rows: &mut [CodecRow],
    codecs: &[(&'static str, Box<dyn Codec<Trace>>)],
    traces: &[(&'static str, Trace)],
) -> Result<()> {
    let server = RedisServer::start();
    let cache = RedisCache::from_url(server.url())?;
    let mut info = redis::Client::open(server.url())?
        .get_multiplexed_async_connection()
        .await?;
    // Connects the cache's pool, outside any measurement.
    cache.set("codecs:warm-up", "", None).await?;
    let idle = net_bytes(&mut info).await?;
    let idle = {
        let again = net_bytes(&mut info).await?;
        (again.0 - idle.0, again.1 - idle.1)
    };
    for row in rows {
        let codec = codec_named(codecs, row.codec)?;
        let trace = &traces[row.trace].1;
        let typed = TypedCache::with_codec(cache.clone(), codec);
        let before = net_bytes(&mut info).await?;
        for _ in 0..WIRE_REPEATS {
            typed.set("codecs:wire", trace, None).await?;
        }
        let after_sets = net_bytes(&mut info).await?;
        for _ in 0..WIRE_REPEATS {
            black_box(typed.get("codecs:wire").await?);
        }
        let after_gets = net_bytes(&mut info).await?;
        let per_op =
            |delta: u64, idle: u64| delta.saturating_sub(idle) as f64 / WIRE_REPEATS as f64;
        row.wire = Some((
            per_op(after_sets.0 - before.0, idle.0),
            per_op(after_gets.1 - after_sets.1, idle.1),
        ));
    }
    cache.close().await?;
    drop(server);
    Ok(())
}

/// The server's `total_net_input_bytes` and `total_net_output_bytes`.
async fn net_bytes(conn: &mut MultiplexedConnection) -> Result<(u64, u64)> {
    let text: String = redis::cmd("INFO").arg("stats").query_async(conn).await?;
    let field = |name: &str| -> Result<u64> {
        text.lines()
            .find_map(|line| line.strip_prefix(name)?.strip_prefix(':'))
            .and_then(|value| value.trim().parse().ok())
            .ok_or_else(|| format!("INFO stats has no {name}").into())
    };
    Ok((
        field("total_net_input_bytes")?,
        field("total_net_output_bytes")?,
    ))
}

/// Prints the group's table to stdout.
pub(crate) fn print(rows: &[CodecRow], opts: &Options) {
    println!(
        "\n## Codecs\n\nA trace (a trace id, a service, spans with ids, names, timestamps and 5 \
         string attributes each) of about 1 KiB and 64 KiB as JSON, through each codec on one \
         thread; `Compressed` with its defaults (LZ4 from 1 KiB on). Times per operation and \
         MB/s of the median of {} interleaved rounds of {:.2} s; MB/s counts the value's JSON \
         size for every codec, so the columns compare work done on the same value. Wire: bytes \
         into a private redis-server per `TypedCache::set` (the RESP `SET` command, key \
         included) and out of it per `get`, from its `INFO stats`\n",
        opts.rounds,
        opts.secs / 4.0
    );
    let mut table = Table::new([
        "codec",
        "value",
        "encoded bytes",
        "vs JSON",
        "encode",
        "encode MB/s",
        "decode",
        "decode MB/s",
        "set: bytes to Redis",
        "get: bytes from Redis",
    ]);
    for row in rows {
        let json = rows
            .iter()
            .find(|r| r.size == row.size && r.codec == "Json")
            .map(|r| r.encoded_bytes);
        let encodes = median(&row.encodes);
        let decodes = median(&row.decodes);
        let mb_per_s = |per_s: f64| format!("{:.0}", per_s * row.json_bytes as f64 / 1e6);
        let micros = |per_s: f64| format!("{:.1} µs", 1e6 / per_s);
        let (to_redis, from_redis) = row.wire.map_or((String::new(), String::new()), |w| {
            (format!("{:.0}", w.0), format!("{:.0}", w.1))
        });
        table.row([
            row.codec.to_owned(),
            format!("{} ({} B JSON)", row.size, row.json_bytes),
            row.encoded_bytes.to_string(),
            json.map_or(String::new(), |j| {
                format!("{:.0}%", 100.0 * row.encoded_bytes as f64 / j as f64)
            }),
            micros(encodes),
            mb_per_s(encodes),
            micros(decodes),
            mb_per_s(decodes),
            to_redis,
            from_redis,
        ]);
    }
    print!("{table}");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn traces_are_just_over_their_json_size() {
        let mut rng = Rng::new(1);
        for (_, bytes) in SIZES {
            let json = serde_json::to_vec(&trace(bytes, &mut rng)).unwrap().len();
            assert!((bytes..bytes + 512).contains(&json), "{json} for {bytes}");
        }
    }

    #[test]
    fn every_codec_reads_back_the_trace() {
        let trace = trace(4096, &mut Rng::new(2));
        for (name, codec) in codecs() {
            let bytes = codec.encode(&trace).unwrap();
            assert_eq!(codec.decode(&bytes).unwrap(), trace, "{name}");
        }
    }
}
