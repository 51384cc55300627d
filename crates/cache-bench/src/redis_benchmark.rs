//! `redis-benchmark`, the server's own load generator, as the limit of what a client can get.

use std::process::Command;
use std::time::Duration;

use crate::workload::{Result, TTL, VALUE_LEN};

/// How to install the Redis programs when one is missing.
const INSTALL: &str = "install them with `sudo apt-get install -y redis-server redis-tools` \
    (Debian/Ubuntu) or `brew install redis` (macOS), or leave the Redis group out with \
    `--only in-process`, `--only hit` or `--only memory`";

/// Fails, saying how to install it, when `program` (`redis-server`, `redis-benchmark`) is not
/// on `PATH`.
pub(crate) fn require(program: &str) -> Result<()> {
    match Command::new(program).arg("--version").output() {
        Ok(_) => Ok(()),
        Err(e) => Err(not_found(program, &e).into()),
    }
}

/// The message for a program that cannot be started.
fn not_found(program: &str, e: &std::io::Error) -> String {
    if e.kind() == std::io::ErrorKind::NotFound {
        format!("{program} was not found on PATH; the Redis group needs it: {INSTALL}")
    } else {
        format!("cannot run {program}: {e}")
    }
}

/// Parallel connections, as many as the harness's tasks.
const CLIENTS: usize = 64;
/// Requests per run of the GET test and of the SET test without pipelining, for a round of
/// 0.5 s (scaled with the round length): about 0.5 s and 0.1 s on the reference machine.
const GETS_PER_HALF_SECOND: f64 = 50_000.0;
const SETS_PER_HALF_SECOND: f64 = 10_000.0;
/// How many times more requests a pipelined run makes (it is that much faster).
const PIPELINE_SCALE: f64 = 6.0;

/// One configuration of redis-benchmark against the private server.
#[derive(Debug, Clone)]
pub(crate) struct RedisBenchmark {
    port: u16,
    pipeline: Option<u32>,
    /// The share of sets in the mix, 0 to 1.
    set_share: f64,
}

/// The GET and SET runs of one round, combined into the harness's mix.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Outcome {
    /// Throughput of the mix, for 10% sets `1 / (0.9 / get + 0.1 / set)`.
    pub(crate) ops_per_sec: f64,
    /// Median latency of the GET run, as redis-benchmark reports it.
    pub(crate) p50: Duration,
    /// 99th percentile latency of the GET run.
    pub(crate) p99: Duration,
}

/// One line of `--csv` output.
#[derive(Debug, Clone, Copy, PartialEq)]
struct CsvLine {
    rps: f64,
    p50_ms: f64,
    p99_ms: f64,
}

impl RedisBenchmark {
    /// Runs against the server on `port` of 127.0.0.1, with `-P pipeline` when given, and
    /// reports the rate of a mix with `set_percent` sets in 100 operations.
    pub(crate) fn new(port: u16, pipeline: Option<u32>, set_percent: u64) -> Self {
        Self {
            port,
            pipeline,
            set_share: set_percent.min(100) as f64 / 100.0,
        }
    }

    /// One round: a GET run, then a `SET ... PX` run, on random keys `key:<12 digits>` of
    /// 100,000 (which the harness wrote beforehand), scaled to last about `secs`.
    pub(crate) fn round(&self, secs: f64) -> Result<Outcome> {
        let scale = secs / 0.5 * self.pipeline.map_or(1.0, |_| PIPELINE_SCALE);
        let value = "v".repeat(VALUE_LEN);
        let ttl = TTL.as_millis().to_string();
        let get = self.run(
            (GETS_PER_HALF_SECOND * scale) as u64,
            &["GET", "key:__rand_int__"],
        )?;
        let set = self.run(
            (SETS_PER_HALF_SECOND * scale) as u64,
            &["SET", "key:__rand_int__", &value, "PX", &ttl],
        )?;
        Ok(Outcome {
            ops_per_sec: 1.0 / ((1.0 - self.set_share) / get.rps + self.set_share / set.rps),
            p50: Duration::from_secs_f64(get.p50_ms / 1e3),
            p99: Duration::from_secs_f64(get.p99_ms / 1e3),
        })
    }

    /// Runs one command `requests` times and parses the result.
    fn run(&self, requests: u64, command: &[&str]) -> Result<CsvLine> {
        let mut cmd = Command::new("redis-benchmark");
        cmd.args(["-h", "127.0.0.1", "-p", &self.port.to_string()])
            .args(["-c", &CLIENTS.to_string(), "-n", &requests.to_string()])
            .args(["-r", &crate::workload::KEYS.to_string(), "--csv"]);
        if let Some(p) = self.pipeline {
            cmd.args(["-P", &p.to_string()]);
        }
        let out = cmd
            .args(command)
            .output()
            .map_err(|e| not_found("redis-benchmark", &e))?;
        let stdout = String::from_utf8_lossy(&out.stdout);
        if !out.status.success() {
            return Err(format!(
                "redis-benchmark failed ({}): {}{}",
                out.status,
                stdout.trim(),
                String::from_utf8_lossy(&out.stderr).trim()
            )
            .into());
        }
        parse_csv(&stdout)
            .ok_or_else(|| format!("unexpected redis-benchmark output: {}", stdout.trim()).into())
    }
}

/// The first data line of redis-benchmark's `--csv` output (7.x columns: test, rps,
/// avg, min, p50, p95, p99, max latency in ms).
fn parse_csv(text: &str) -> Option<CsvLine> {
    let line = text
        .lines()
        .find(|l| l.starts_with('"') && !l.starts_with("\"test\""))?;
    // The test name is quoted and may hold anything but quotes; the numbers follow it.
    let rest = line.get(1..)?.split_once("\",")?.1;
    let fields: Vec<f64> = rest
        .split(',')
        .map(|f| f.trim_matches('"').parse().ok())
        .collect::<Option<_>>()?;
    match fields[..] {
        [rps, _avg, _min, p50_ms, _p95, p99_ms, _max] => Some(CsvLine {
            rps,
            p50_ms,
            p99_ms,
        }),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_csv_of_redis_benchmark_7() {
        let text = "\"test\",\"rps\",\"avg_latency_ms\",\"min_latency_ms\",\"p50_latency_ms\",\"p95_latency_ms\",\"p99_latency_ms\",\"max_latency_ms\"\n\
            \"SET key:__rand_int__ vvv PX 300000\",\"728597.44\",\"1.264\",\"0.320\",\"1.239\",\"1.743\",\"2.527\",\"4.407\"\n";
        assert_eq!(
            parse_csv(text),
            Some(CsvLine {
                rps: 728_597.44,
                p50_ms: 1.239,
                p99_ms: 2.527
            })
        );
    }

    #[test]
    fn rejects_other_output() {
        assert_eq!(parse_csv("ERROR: connection refused\n"), None);
        assert_eq!(parse_csv("\"GET\",\"12\"\n"), None);
    }
}
