//! The tables printed at the end, and which of the figures hold.

use crate::batches::BATCH;
use crate::codecs::{self, CodecRow};
use crate::groups::HitResult;
use crate::groups::names::*;
use crate::hit_ratio;
use crate::memory;
use crate::options::Options;
use crate::report::{Figure, Series, Table, format_ratio, ratio, throughput_table};
use crate::workload::{KEYS, SAMPLE_EVERY, SET_PERCENT, TASKS, WORKERS};

/// Everything one run measured; a group that was not selected is empty.
#[derive(Debug, Default)]
pub(crate) struct Results {
    /// The in-process throughput group.
    pub(crate) in_process: Vec<Series>,
    /// The Redis throughput group.
    pub(crate) redis: Vec<Series>,
    /// The Redis batch group, in keys per second.
    pub(crate) batches: Vec<Series>,
    /// Hit ratios of the bounded caches.
    pub(crate) hit_ratios: Vec<HitResult>,
    /// Bytes per entry, by case.
    pub(crate) memory: Vec<(&'static str, f64)>,
    /// Speed and size of each codec.
    pub(crate) codecs: Vec<CodecRow>,
}

/// The index of the series named `name`.
fn find(series: &[Series], name: &str) -> Option<usize> {
    series.iter().position(|s| s.name == name)
}

/// The anchors of a group that are present, as table columns.
fn anchors<'a>(series: &[Series], wanted: &[(&str, &'a str)]) -> Vec<(usize, &'a str)> {
    wanted
        .iter()
        .filter_map(|&(name, title)| find(series, name).map(|i| (i, title)))
        .collect()
}

/// Prints every table and the targets to stdout.
pub(crate) fn print(results: &Results, opts: &Options) {
    let (rounds, secs, sets) = (opts.rounds, opts.secs, opts.set_percent);
    let method = format!(
        "{TASKS} tasks on {WORKERS} tokio workers, {}% get / {sets}% set (TTL 300 s) on {KEYS} \
         pre-populated keys, 100-byte values; ops/s of the median round of {rounds} \
         interleaved rounds of {secs} s; ratios are medians of per-round ratios; p50/p99 over \
         1 op in {SAMPLE_EVERY}",
        100 - sets
    );
    if !results.in_process.is_empty() {
        println!("\n## In process\n\n{method}\n");
        let a = anchors(
            &results.in_process,
            &[
                (MOKA, "moka"),
                (DASHMAP, "raw DashMap"),
                (MUTEX, "Mutex<HashMap>"),
            ],
        );
        print!("{}", throughput_table(&results.in_process, &a));
    }
    if !results.redis.is_empty() {
        println!(
            "\n## Redis (private redis-server on the same machine)\n\n{method}; redis-benchmark: \
             rate of the same mix from its GET and SET runs, its GET percentiles\n"
        );
        let a = anchors(
            &results.redis,
            &[
                (RAW_REDIS, "raw"),
                (REDIS_BENCHMARK, "redis-benchmark"),
                (REDIS_BENCHMARK_P16, "redis-benchmark -P 16"),
            ],
        );
        print!("{}", throughput_table(&results.redis, &a));
    }
    if !results.batches.is_empty() {
        println!(
            "\n## Redis batches of 100 keys (issue 5)\n\nThe same tasks and mix, each get a \
             `get_many` and each set a `set_many` of {BATCH} keys spread over the key space; \
             the rate counts keys (ops/s x {BATCH}), latencies are per batch; redis-benchmark \
             -P 16: keys/s of the same mix from its GET and SET runs\n"
        );
        let a = anchors(
            &results.batches,
            &[
                (RAW_BATCHES, "raw batches"),
                (REDIS_BENCHMARK_P16, "redis-benchmark -P 16"),
            ],
        );
        print!("{}", throughput_table(&results.batches, &a));
    }
    if !results.hit_ratios.is_empty() {
        println!(
            "\n## Hit ratio\n\nZipf({}) over {} keys, capacity {}, one task, get then set on a \
             miss; {} accesses of warm-up, then {} counted; moka's pending tasks run once \
             after the warm-up\n",
            hit_ratio::EXPONENT,
            hit_ratio::UNIVERSE,
            hit_ratio::CAPACITY,
            hit_ratio::WARM_UP,
            hit_ratio::MEASURED
        );
        let moka = results.hit_ratios.iter().find(|h| h.name == MOKA);
        let mut table = Table::new(["case", "hit ratio", "vs moka", "entries at the end"]);
        for h in &results.hit_ratios {
            table.row([
                h.name.to_owned(),
                format!("{:.2}%", h.ratio.percent()),
                moka.map_or(String::new(), |m| {
                    format!("{:+.2} points", h.ratio.percent() - m.ratio.percent())
                }),
                h.entries.to_string(),
            ]);
        }
        print!("{table}");
    }
    if !results.memory.is_empty() {
        println!(
            "\n## Memory per entry\n\nGrowth of the resident set while inserting {} entries \
             `key:{{n}}` with 100-byte values and a 300 s TTL, each case in a fresh process; \
             the payload (key and value bytes) is {:.1} bytes per entry\n",
            memory::ENTRIES,
            memory::payload_per_entry()
        );
        let raw = results.memory.iter().find(|(name, _)| *name == DASHMAP);
        let mut table = Table::new(["case", "bytes/entry", "vs raw DashMap"]);
        for &(name, bytes) in &results.memory {
            table.row([
                name.to_owned(),
                format!("{bytes:.0}"),
                raw.map_or(String::new(), |&(_, r)| format_ratio(bytes / r)),
            ]);
        }
        print!("{table}");
    }
    if !results.codecs.is_empty() {
        codecs::print(&results.codecs, opts);
    }
    println!("\n## Targets (issues 4 and 5)\n");
    if sets != SET_PERCENT {
        println!("(measured with {sets}% sets, not the issue's {SET_PERCENT}%)\n");
    }
    for line in targets(results) {
        println!("- {line}");
    }
}

/// The figures, each measured or said to be missing.
fn targets(results: &Results) -> Vec<String> {
    let mut lines = Vec::new();
    let mut ratio_figure = |series: &[Series], case: &str, anchor: &str, bound: f64| {
        let what = format!("{case} / {anchor}");
        match (find(series, case), find(series, anchor)) {
            (Some(c), Some(a)) => lines.push(
                Figure {
                    what,
                    value: ratio(&series[c].rounds, &series[a].rounds),
                    bound,
                    at_least: true,
                    unit: "x",
                }
                .to_string(),
            ),
            _ => lines.push(format!("not run: {what}")),
        }
    };
    ratio_figure(&results.in_process, MEMORY_CACHE, MOKA, 3.0);
    ratio_figure(&results.in_process, MEMORY_CACHE, DASHMAP, 0.85);
    ratio_figure(&results.in_process, MEMORY_BYTES, DASHMAP, 1.1);
    ratio_figure(&results.in_process, ANY_CACHE, DASHMAP, 0.75);
    ratio_figure(&results.redis, REDIS_CACHE, RAW_REDIS, 0.95);
    ratio_figure(&results.batches, CACHE_BATCHES, REDIS_BENCHMARK_P16, 0.5);
    let hit = |name| results.hit_ratios.iter().find(|h| h.name == name);
    lines.push(match (hit(MEMORY_CACHE), hit(MOKA)) {
        (Some(m), Some(k)) => Figure {
            what: format!("hit ratio, {MEMORY_CACHE} - moka"),
            value: m.ratio.percent() - k.ratio.percent(),
            bound: -5.0,
            at_least: true,
            unit: " points",
        }
        .to_string(),
        _ => "not run: hit ratio".to_owned(),
    });
    let bytes = |name| results.memory.iter().find(|m| m.0 == name).map(|m| m.1);
    lines.push(match (bytes(MEMORY_CACHE), bytes(DASHMAP)) {
        (Some(m), Some(r)) => Figure {
            what: format!("memory per entry, {MEMORY_CACHE} / raw DashMap"),
            value: m / r,
            bound: 1.15,
            at_least: false,
            unit: "x",
        }
        .to_string(),
        _ => "not run: memory per entry".to_owned(),
    });
    lines
}
