#![doc = include_str!("../README.md")]

mod batches;
mod chart;
mod cluster;
mod codecs;
mod groups;
mod histogram;
mod hit_ratio;
mod memory;
mod options;
mod redis_benchmark;
mod report;
mod rng;
mod stores;
mod summary;
mod throughput;
mod tiered;
mod traces;
mod workload;
mod zipf;

use std::process::ExitCode;
use std::time::Instant;

use options::{Options, Parsed};
use summary::Results;
use workload::{Result, WORKERS, Workload};

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1).peekable();
    let result = if args.peek().map(String::as_str) == Some(memory::CHILD_FLAG) {
        let id = args.nth(1).unwrap_or_default();
        memory::child_main(&id)
    } else {
        match Options::parse(args) {
            Ok(Parsed::Help) => {
                println!("{}", options::USAGE);
                Ok(())
            }
            Ok(Parsed::Run(opts)) => run(&opts),
            Err(e) => Err(e),
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("cache-bench: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Runs the selected groups and prints the results.
fn run(opts: &Options) -> Result<()> {
    let started = Instant::now();
    if cfg!(debug_assertions) {
        eprintln!("cache-bench: a debug build; run with --release for figures worth reading");
    }
    groups::check_redis_programs(opts)?;
    cluster::check_programs(opts)?;
    tiered::check_programs(opts)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(WORKERS)
        .enable_all()
        .build()?;
    let work = Workload::new(opts.set_percent);
    let mut results = Results::default();
    if let Some(series) = runtime.block_on(groups::in_process(opts, &work))? {
        results.in_process = series;
    }
    if let Some(series) = runtime.block_on(groups::redis(opts, &work))? {
        results.redis = series;
    }
    if let Some(series) = runtime.block_on(groups::redis_batches(opts, &work))? {
        results.batches = series;
    }
    results.cluster = runtime.block_on(cluster::run(opts, &work))?;
    results.tiered = runtime.block_on(tiered::run(opts))?;
    results.hit_ratios = runtime.block_on(groups::hit_ratios(opts))?;
    results.memory = groups::memory_per_entry(opts)?;
    results.codecs = runtime.block_on(codecs::run(opts))?;
    summary::print(&results, opts);
    eprintln!(
        "cache-bench: done in {:.0} s",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}
