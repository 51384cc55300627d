//! The command line.

use std::path::PathBuf;

use crate::chart::DEFAULT_PATH;
use crate::workload::{Result, SET_PERCENT};

/// What the user asked for.
#[derive(Debug, Clone)]
pub(crate) struct Options {
    /// Interleaved rounds per throughput group.
    pub(crate) rounds: usize,
    /// Seconds each case runs per round.
    pub(crate) secs: f64,
    /// Keep only the cases whose `group: name` contains this (case-insensitive).
    pub(crate) only: Option<String>,
    /// Also run the extra Redis cases (pool sizes 2 and 4, a deadpool checkout per op).
    pub(crate) extended: bool,
    /// Sets per 100 operations of the throughput groups.
    pub(crate) set_percent: u64,
    /// Where the hit-ratio chart goes.
    pub(crate) chart: PathBuf,
    /// `TieredCache`'s `l2_reads_in_flight`, when not its default.
    pub(crate) reads_in_flight: Option<usize>,
}

/// The usage text of `--help`.
pub(crate) const USAGE: &str = "\
cargo run --release -p cache-bench -- [OPTIONS]

Runs every comparison of BENCHMARKS.md in one process and prints the tables.

Options:
  --rounds N     interleaved rounds per throughput group (default 15)
  --secs S       seconds per case and round (default 0.4)
  --only TEXT    keep the cases whose \"group: name\" contains TEXT, ignoring case;
                 groups: in-process, redis, redis batches, cluster, cluster
                 batches, tiered, hit ratio, memory, codecs (e.g. --only
                 in-process, --only MemoryCache, --only codecs; --only cluster
                 keeps both cluster groups)
  --extended     also run RedisCache with pool_size 2 and 4, and deadpool-redis
                 with a checkout per operation
  --sets PCT     percentage of sets in the throughput groups (default 10, as the
                 issue asks; 0 or 100 tell the cost of gets and of sets apart)
  --chart PATH   where the hit-ratio group writes its SVG chart (default
                 target/cache-bench/hit-ratio.svg)
  --tiered-reads-in-flight N
                 TieredCache's l2_reads_in_flight (default: the cache's own);
                 a large N such as 1000000 sends every L2 read alone
  -h, --help     this text";

/// What the command line asks for: options, or the usage text.
#[derive(Debug)]
pub(crate) enum Parsed {
    /// Run with these options.
    Run(Options),
    /// Print [`USAGE`] and stop.
    Help,
}

impl Options {
    /// Parses the arguments after the program name.
    pub(crate) fn parse(args: impl IntoIterator<Item = String>) -> Result<Parsed> {
        let mut options = Options {
            rounds: 15,
            secs: 0.4,
            only: None,
            extended: false,
            set_percent: SET_PERCENT,
            chart: PathBuf::from(DEFAULT_PATH),
            reads_in_flight: None,
        };
        let mut args = args.into_iter();
        while let Some(arg) = args.next() {
            let mut value = |name: &str| {
                args.next()
                    .ok_or_else(|| format!("{name} needs a value\n\n{USAGE}"))
            };
            match arg.as_str() {
                "--rounds" => {
                    options.rounds = value("--rounds")?
                        .parse()
                        .map_err(|_| "--rounds takes a whole number")?;
                    if options.rounds == 0 {
                        return Err("--rounds must be at least 1".into());
                    }
                }
                "--secs" => {
                    options.secs = value("--secs")?
                        .parse()
                        .map_err(|_| "--secs takes a number of seconds")?;
                    if !(options.secs > 0.0 && options.secs.is_finite()) {
                        return Err("--secs must be positive".into());
                    }
                }
                "--sets" => {
                    options.set_percent = value("--sets")?
                        .parse()
                        .ok()
                        .filter(|&p| p <= 100)
                        .ok_or("--sets takes a percentage, 0 to 100")?;
                }
                "--only" => options.only = Some(value("--only")?.to_lowercase()),
                "--extended" => options.extended = true,
                "--chart" => options.chart = PathBuf::from(value("--chart")?),
                "--tiered-reads-in-flight" => {
                    options.reads_in_flight = Some(
                        value("--tiered-reads-in-flight")?
                            .parse()
                            .ok()
                            .filter(|&n| n > 0)
                            .ok_or("--tiered-reads-in-flight takes a whole number, at least 1")?,
                    );
                }
                "-h" | "--help" => return Ok(Parsed::Help),
                other => return Err(format!("unknown argument {other:?}\n\n{USAGE}").into()),
            }
        }
        Ok(Parsed::Run(options))
    }

    /// Whether case `name` of `group` is selected.
    pub(crate) fn selects(&self, group: &str, name: &str) -> bool {
        self.only.as_ref().is_none_or(|only| {
            format!("{group}: {name}")
                .to_lowercase()
                .contains(only.as_str())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Parsed> {
        Options::parse(args.iter().map(|a| a.to_string()))
    }

    #[test]
    fn defaults_and_flags() {
        let Ok(Parsed::Run(o)) = parse(&["--rounds", "3", "--extended", "--only", "Redis"]) else {
            panic!("should parse");
        };
        assert_eq!(
            (o.rounds, o.secs, o.extended, o.set_percent),
            (3, 0.4, true, 10)
        );
        assert!(o.selects("redis", "RedisCache"));
        assert!(o.selects("in-process", "AnyCache over RedisCache"));
        assert!(!o.selects("in-process", "MemoryCache"));
    }

    #[test]
    fn only_cluster_keeps_both_cluster_groups_and_nothing_else() {
        let Ok(Parsed::Run(o)) = parse(&["--only", "cluster"]) else {
            panic!("should parse");
        };
        assert!(o.selects("cluster", "RedisCache"));
        assert!(o.selects("cluster batches", "RedisCache get_many/set_many of 100"));
        assert!(!o.selects("redis", "RedisCache"));
        assert!(!o.selects("redis batches", "raw MGET/pipelined SET of 100"));
    }

    #[test]
    fn only_tiered_keeps_the_tiered_group_and_nothing_else() {
        let Ok(Parsed::Run(o)) = parse(&["--only", "tiered"]) else {
            panic!("should parse");
        };
        assert!(o.selects("tiered", "TieredCache"));
        assert!(o.selects("tiered", "RedisCache"));
        assert!(o.selects("tiered", "MemoryCache, max_capacity 100,000"));
        assert!(!o.selects("redis", "RedisCache"));
        assert!(!o.selects("in-process", "MemoryCache, max_capacity 100,000"));
        assert!(!o.selects(
            "hit ratio",
            "Zipf 0.99, 1M keys, capacity 100k: MemoryCache"
        ));
    }

    #[test]
    fn rejects_bad_arguments() {
        assert!(parse(&["--rounds", "0"]).is_err());
        assert!(parse(&["--secs"]).is_err());
        assert!(parse(&["--fast"]).is_err());
        assert!(parse(&["--sets", "101"]).is_err());
        assert!(matches!(parse(&["-h"]), Ok(Parsed::Help)));
    }
}
