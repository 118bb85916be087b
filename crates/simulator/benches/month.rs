//! How long the simulator takes for a month of the seed's scenario
//! (`examples/simulator/seed-scenario.yaml`): parsing, job expansion, each policy and the
//! reports, timed separately, best of `RUNS` (default 3; `RUNS=1 cargo bench -p
//! sparkyard-simulator --bench month` for one).
//!
//! Not a test: `cargo test` does not run it. The results table is in docs/benchmarks.md.

use std::time::{Duration, Instant};

use sparkyard_simulator::{arrivals, report, shared, transient, Workload};

/// The `sparkyard` binary's allocator, so the figures are what `sparkyard simulate` takes.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const SCENARIO: &str = include_str!("../../../examples/simulator/seed-scenario.yaml");

fn time<T>(f: impl FnOnce() -> T) -> (T, Duration) {
    let start = Instant::now();
    let out = f();
    (out, start.elapsed())
}

fn main() {
    let runs: usize = std::env::var("RUNS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(3)
        .max(1);
    let mut best: Option<[Duration; 6]> = None;
    let mut facts = String::new();
    for _ in 0..runs {
        let (w, parse) = time(|| Workload::parse(SCENARIO).expect("the seed scenario parses"));
        let (jobs, expand) = time(|| arrivals::jobs(&w));
        let (t, transient_time) = time(|| transient::simulate(&w, &jobs));
        let (s, shared_time) = time(|| shared::simulate(&w, &jobs));
        let (r, build) = time(|| report::build(&w, &jobs, &t, &s));
        let (_, render) = time(|| {
            (
                report::json(&r).len(),
                report::markdown(&r).len(),
                report::html(&r).len(),
            )
        });
        let total = parse + expand + transient_time + shared_time + build + render;
        let this = [
            parse,
            expand,
            transient_time,
            shared_time,
            build + render,
            total,
        ];
        if best.is_none_or(|b| total < b[5]) {
            best = Some(this);
        }
        facts = format!(
            "{} jobs, {} shared-cluster nodes launched, {} pods preempted, {} spot interruptions",
            jobs.len(),
            s.node_launches,
            r.policies[1].totals.preempted_pods,
            s.spot_interruptions
        );
    }
    let b = best.expect("at least one run");
    println!("seed scenario, {facts} (best of {runs})");
    println!("| phase | seconds |");
    println!("|---|---:|");
    for (name, d) in [
        "parse and check the workload",
        "expand the jobs",
        "transient policy",
        "shared policy",
        "reports (build, JSON, Markdown, HTML)",
        "total",
    ]
    .iter()
    .zip(b)
    {
        println!("| {name} | {:.2} |", d.as_secs_f64());
    }
}
