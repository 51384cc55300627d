//! The tables printed at the end, and which of the figures hold.

use crate::batches::BATCH;
use crate::cluster::{self, ClusterSeries, RAW_CLUSTER, RAW_CLUSTER_BATCHES};
use crate::codecs::{self, CodecRow};
use crate::groups::names::*;
use crate::groups::{HitRatios, REPLAY_ROUNDS};
use crate::hit_ratio::{CACHES, Kind};
use crate::memory;
use crate::options::Options;
use crate::report::{Figure, Series, Table, format_percent, format_ratio, ratio, throughput_table};
use crate::tiered::{self, TIERED_CACHE};
use crate::traces::{self, Shape};
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
    /// The cluster groups.
    pub(crate) cluster: ClusterSeries,
    /// The tiered group.
    pub(crate) tiered: Vec<Series>,
    /// Hit ratios of the bounded caches.
    pub(crate) hit_ratios: HitRatios,
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

/// What the in-process tables say about hashing: the anchor is `DashMap` as a user writes
/// it, with std's default hasher, while `MemoryCache` hashes with foldhash.
const HASHERS: &str = "the raw DashMap hashes with std's default hasher (SipHash, as \
     `DashMap::new()` does), MemoryCache with foldhash (random seed per cache)";

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
        println!("\n## In process\n\n{method}; {HASHERS}\n");
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
    if !results.cluster.single.is_empty() {
        println!(
            "\n## Redis Cluster (issue 12; a private cluster started by the harness: {})\n\n\
             {method}; the anchor is one redis-rs `ClusterConnection` shared by the tasks\n",
            cluster::SHAPE
        );
        let a = anchors(&results.cluster.single, &[(RAW_CLUSTER, "raw")]);
        print!("{}", throughput_table(&results.cluster.single, &a));
    }
    if !results.cluster.batches.is_empty() {
        println!(
            "\n## Redis Cluster batches of 100 keys across slots (issue 12)\n\nThe same cluster, \
             tasks and mix, each get a `get_many` and each set a `set_many` of {BATCH} keys \
             spread over the key space (so over nearly {BATCH} slots); the anchor sends one \
             `MGET` of the {BATCH} keys through the raw `ClusterConnection` (redis-rs splits it \
             by slot and sends the parts concurrently), and for a set one pipeline of \
             `SET ... PX` per slot, all of them concurrently; the rate counts keys (ops/s x \
             {BATCH}), latencies are per batch\n"
        );
        let a = anchors(
            &results.cluster.batches,
            &[(RAW_CLUSTER_BATCHES, "raw cluster batches")],
        );
        print!("{}", throughput_table(&results.cluster.batches, &a));
    }
    if !results.tiered.is_empty() {
        print_tiered(&results.tiered, opts);
    }
    if !results.hit_ratios.rows.is_empty() || !results.hit_ratios.replay.is_empty() {
        print_hit_ratios(&results.hit_ratios);
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
    println!("\n## Targets (issues 4, 5, 11, 12, 13, 14 and 15)\n");
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
    ratio_figure(&results.in_process, MEMORY_BOUNDED, MOKA, 3.0);
    ratio_figure(&results.in_process, MEMORY_BOUNDED, DASHMAP, 0.85);
    ratio_figure(&results.in_process, MEMORY_BYTES, DASHMAP, 1.1);
    ratio_figure(&results.in_process, MEMORY_METRICS, MEMORY_CACHE, 0.9);
    ratio_figure(&results.in_process, ANY_CACHE, DASHMAP, 0.75);
    ratio_figure(&results.redis, REDIS_CACHE, RAW_REDIS, 0.95);
    ratio_figure(&results.batches, CACHE_BATCHES, REDIS_BENCHMARK_P16, 0.5);
    ratio_figure(&results.cluster.single, REDIS_CACHE, RAW_CLUSTER, 0.9);
    ratio_figure(
        &results.cluster.batches,
        CACHE_BATCHES,
        RAW_CLUSTER_BATCHES,
        0.9,
    );
    ratio_figure(&results.tiered, TIERED_CACHE, REDIS_CACHE, 5.0);
    ratio_figure(&results.tiered, TIERED_CACHE, MEMORY_BOUNDED, 0.5);
    lines.push(tiered_hit_ratios(&results.tiered));
    hit_ratio_targets(&results.hit_ratios, &mut lines);
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

/// The tiered group's table.
fn print_tiered(series: &[Series], opts: &Options) {
    println!(
        "\n## Tiered cache (issue 14; one private redis-server on the same machine)\n\n\
         {TASKS} tasks on {WORKERS} tokio workers, {}% get / {}% set (TTL 300 s), 100-byte \
         values, keys drawn from a Zipf {} distribution over {} keys (a sequence of {} key \
         numbers made beforehand, each task from its own random place in it), all written to \
         Redis before the rounds; `{TIERED_CACHE}`: L1 a `MemoryCache` with max_capacity {} \
         (filled by sets and by reads that hit L2), l1_ttl {} s, L2 a `RedisCache`, backplane a \
         `RedisBackplane` (each write also publishes its key); `{MEMORY_BOUNDED}` alone: filled by sets only (a get that misses stays a miss); \
         both bounded caches start empty and run {} operations untimed before the rounds; \
         ops/s of the median round of {} interleaved rounds of {} s; ratios are medians of \
         per-round ratios; p50/p99 over 1 op in {SAMPLE_EVERY}; reads served in process: L1 \
         hits of `{TIERED_CACHE}`, hits of the `MemoryCache`, over the measured rounds\n",
        100 - opts.set_percent,
        opts.set_percent,
        tiered::EXPONENT,
        tiered::KEYS,
        tiered::SEQUENCE,
        tiered::CAPACITY,
        tiered::L1_TTL.as_secs(),
        tiered::WARM_UP_OPS,
        opts.rounds,
        opts.secs,
    );
    let a = anchors(
        series,
        &[(REDIS_CACHE, "RedisCache"), (MEMORY_BOUNDED, "MemoryCache")],
    );
    print!("{}", throughput_table(series, &a));
}

/// The L1 hit ratio of the tiered case, and the bounded `MemoryCache`'s beside it.
fn tiered_hit_ratios(series: &[Series]) -> String {
    let share = |name| {
        find(series, name)
            .and_then(|i| series[i].hit_ratio)
            .map(format_percent)
    };
    match (share(TIERED_CACHE), share(MEMORY_BOUNDED)) {
        (Some(l1), Some(memory)) => format!(
            "L1 hit ratio of {TIERED_CACHE} (no target): {l1}; {MEMORY_BOUNDED} alone: {memory}"
        ),
        (Some(l1), None) => format!("L1 hit ratio of {TIERED_CACHE} (no target): {l1}"),
        _ => format!("not run: L1 hit ratio of {TIERED_CACHE}"),
    }
}

/// The hit-ratio table, the replay rates and where the chart is.
fn print_hit_ratios(group: &HitRatios) {
    println!(
        "\n## Hit ratio (issue 13)\n\nEach trace replayed by one task: get, and set on a miss; \
         {} accesses, the first {}% as warm-up; moka's pending tasks run once after the \
         warm-up\n",
        traces::ACCESSES,
        traces::WARM_UP_PERCENT
    );
    let kinds: Vec<Kind> = CACHES
        .into_iter()
        .filter(|kind| group.rows.iter().any(|row| row.percent(*kind).is_some()))
        .collect();
    let mut header = vec!["trace".to_owned()];
    header.extend(kinds.iter().map(|kind| kind.name().to_owned()));
    let mut table = Table::new(header);
    for row in &group.rows {
        let mut cells = vec![row.spec.name.to_owned()];
        cells.extend(kinds.iter().map(|kind| {
            row.percent(*kind)
                .map_or(String::new(), |p| format!("{p:.1}%"))
        }));
        table.row(cells);
    }
    print!("{table}");
    if !group.replay.is_empty() {
        println!(
            "\nSingle-task replay of the Zipf 0.7 trace, accesses/s, median of {REPLAY_ROUNDS} \
             interleaved rounds:"
        );
        for (kind, rate) in &group.replay {
            println!("- {}: {:.2}M", kind.name(), rate / 1e6);
        }
    }
    if let Some(path) = &group.chart {
        println!("\nChart: {}", path.display());
    }
}

/// Issue 13's hit-ratio and replay targets.
fn hit_ratio_targets(group: &HitRatios, lines: &mut Vec<String>) {
    if group.rows.is_empty() {
        lines.push("not run: hit ratios".to_owned());
    }
    for row in &group.rows {
        let (Some(ours), Some(moka), Some(quick)) = (
            row.percent(Kind::MemoryCache),
            row.percent(Kind::Moka),
            row.percent(Kind::QuickCache),
        ) else {
            lines.push(format!("not run: hit ratio on {}", row.spec.name));
            continue;
        };
        lines.push(
            Figure {
                what: format!("hit ratio on {}, MemoryCache - best anchor", row.spec.name),
                value: ours - moka.max(quick),
                bound: -1.0,
                at_least: true,
                unit: " points",
            }
            .to_string(),
        );
        if matches!(row.spec.shape, Shape::Zipf(_)) {
            lines.push(
                Figure {
                    what: format!("hit ratio on {}, MemoryCache - moka", row.spec.name),
                    value: ours - moka,
                    bound: 0.0,
                    at_least: true,
                    unit: " points",
                }
                .to_string(),
            );
        }
    }
    let rate = |kind| group.replay.iter().find(|(k, _)| *k == kind).map(|r| r.1);
    lines.push(match (rate(Kind::MemoryCache), rate(Kind::QuickCache)) {
        (Some(ours), Some(quick)) => Figure {
            what: "Zipf 0.7 replay, MemoryCache / quick_cache".to_owned(),
            value: ours / quick,
            bound: 0.8,
            at_least: true,
            unit: "x",
        }
        .to_string(),
        _ => "not run: replay rate".to_owned(),
    });
}
