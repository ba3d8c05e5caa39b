//! The simulation engine's benchmark (not a test): 1,000,000 monthly subscriptions over 12
//! cycles through the real aggregates and process manager, against a bare loop that only applies
//! the same events to fresh aggregates.
//!
//! ```sh
//! cargo bench -p salvage-sim --bench engine                     # 1,000,000 customers
//! cargo bench -p salvage-sim --bench engine -- --customers 100000 --threads 1
//! cargo bench -p salvage-sim --bench engine -- --engine-only      # phase 1 only
//! ```
//!
//! Phase 1 runs the scenario `benches/million.toml` with the engine (wall time, CPU time of all
//! threads, peak resident memory). Phase 2 runs it again in chunks of customers, recording every
//! committed event (not timed), then applies each customer's events to fresh aggregates, timed
//! by the threads' CPU clocks (the bare loop). The ratio is engine CPU time / bare loop CPU time.

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use salvage_sim::engine::{apply_recorded, Recorded};
use salvage_sim::tally::Tally;
use salvage_sim::{Engine, RunOptions, Scenario, ScenarioOverrides};

/// Customers recorded, then applied, at a time by a thread in phase 2.
const RECORD_CHUNK: u64 = 2_000;

/// CPU time (user + system) of the whole process, from /proc/self/stat (Linux, USER_HZ = 100).
fn cpu_time() -> Option<Duration> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    let after_name = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(Duration::from_millis((utime + stime) * 10))
}

/// CPU time of the calling thread, from /proc/thread-self/stat (Linux, USER_HZ = 100).
fn thread_cpu_time() -> Option<Duration> {
    let stat = std::fs::read_to_string("/proc/thread-self/stat").ok()?;
    let after_name = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(Duration::from_millis((utime + stime) * 10))
}

/// Peak resident memory of the process so far (VmHWM), in MiB.
fn peak_rss_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

fn arg(name: &str) -> Option<String> {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
}

fn main() {
    let customers: Option<u32> = arg("--customers").and_then(|v| v.parse().ok());
    let threads: usize = arg("--threads")
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/million.toml");
    let scenario = match Scenario::load(
        &path,
        ScenarioOverrides {
            customers,
            ..Default::default()
        },
    ) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(2);
        }
    };
    let engine = Engine::new(&scenario);
    let n = u64::from(scenario.spec.population.customers);

    // Phase 1: the engine.
    let cpu0 = cpu_time();
    let t0 = Instant::now();
    let tallies = engine.run(&RunOptions {
        threads,
        progress: None,
    });
    let wall = t0.elapsed();
    let engine_cpu = cpu_time().zip(cpu0).map(|(a, b)| a - b);
    let peak = peak_rss_mib();
    let t: &Tally = &tallies[0];

    if std::env::args().any(|a| a == "--engine-only") {
        println!(
            "engine: {:.2} s wall, {:.2} s CPU, {} subscriptions",
            wall.as_secs_f64(),
            engine_cpu.map_or(0.0, |d| d.as_secs_f64()),
            t.subscriptions.created
        );
        return;
    }

    // Phase 2: the bare apply loop over the same events. Each thread records a chunk of
    // customers (not timed), then applies each customer's events to fresh aggregates, timed by
    // the thread's own CPU clock (so other processes on the machine do not count).
    let next = AtomicU64::new(0);
    let applied = AtomicU64::new(0);
    let bare = Mutex::new(Duration::ZERO);
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| {
                let mut runner = engine.runner(0);
                let mut scratch = Tally::default();
                let mut own = Duration::ZERO;
                loop {
                    let lo = next.fetch_add(RECORD_CHUNK, Ordering::Relaxed);
                    if lo >= n {
                        break;
                    }
                    let mut chunk: Vec<Vec<Recorded>> = Vec::new();
                    for c in lo..(lo + RECORD_CHUNK).min(n) {
                        let mut events = Vec::new();
                        runner.customer(c, &mut scratch, Some(&mut events));
                        chunk.push(events);
                    }
                    let before = thread_cpu_time();
                    let mut k = 0;
                    for events in chunk {
                        k += apply_recorded(events);
                    }
                    if let (Some(a), Some(b)) = (before, thread_cpu_time()) {
                        own += b - a;
                    }
                    applied.fetch_add(k as u64, Ordering::Relaxed);
                }
                if let Ok(mut b) = bare.lock() {
                    *b += own;
                }
            });
        }
    });
    let bare = bare.into_inner().unwrap_or_default();
    let events = applied.into_inner();

    let secs = |d: Duration| d.as_secs_f64();
    let sub = &t.subscriptions;
    let cycles = sub.advanced.values().sum::<u64>();
    println!("| measure | value |");
    println!("|---|---|");
    println!("| subscriptions created | {} |", sub.created);
    println!(
        "| rebills billed (first attempts) | {} |",
        sub.rebills + sub.trial_completions
    );
    println!("| cycle advances | {cycles} |");
    println!(
        "| recycle re-attempts on the billing gateway | {} |",
        t.recycle.gateway_reattempts
    );
    println!(
        "| FlexFactor hand-overs / recovered | {} / {} |",
        t.routes[2].submitted, t.routes[2].recovered
    );
    println!("| events committed (and applied by the bare loop) | {events} |");
    println!("| threads | {threads} |");
    println!("| engine wall time | {:.2} s |", secs(wall));
    match engine_cpu {
        Some(cpu) => println!("| engine CPU time (all threads) | {:.2} s |", secs(cpu)),
        None => println!("| engine CPU time (all threads) | n/a |"),
    }
    println!(
        "| engine throughput | {:.0} events/s wall |",
        events as f64 / secs(wall)
    );
    println!("| bare apply loop CPU time | {:.2} s |", secs(bare));
    if let Some(cpu) = engine_cpu {
        println!(
            "| engine / bare loop (CPU time) | {:.1}x |",
            secs(cpu) / secs(bare).max(1e-9)
        );
    }
    match peak {
        Some(m) => println!("| peak resident memory (engine phase) | {m:.0} MiB |"),
        None => println!("| peak resident memory (engine phase) | n/a |"),
    }
    if wall > Duration::from_secs(60) {
        eprintln!("the engine took more than the 60 s budget");
    }
}
