//! Probe (to be replaced by the full benchmark).
use std::path::Path;
use std::time::Instant;

use salvage_sim::{Engine, RunOptions, Scenario, ScenarioOverrides};

fn main() {
    let customers: Option<u32> = std::env::args().nth(1).and_then(|a| a.parse().ok());
    let threads: usize = std::env::args().nth(2).and_then(|a| a.parse().ok()).unwrap_or(1);
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/million.toml");
    let scenario = Scenario::load(&path, ScenarioOverrides { customers, ..Default::default() }).unwrap();
    let engine = Engine::new(&scenario);
    let t = Instant::now();
    let tallies = engine.run(&RunOptions { threads, progress: None });
    let el = t.elapsed();
    println!("{:?} {:#?}", el, tallies[0].subscriptions);
    println!("{:?}", tallies[0].refused);
    println!("{:?}", tallies[0].invariants);
}
