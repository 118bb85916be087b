//! `sparkyard simulate --workload FILE`: the cost simulator's command line. Reads the
//! workload file, runs both policies in virtual time (`sparkyard_simulator`, pure), prints
//! their totals and writes `report.md`, `report.html` and `report.json` into `--out`
//! (docs/simulator.md).

use std::path::{Path, PathBuf};

use clap::Args;
use sparkyard_simulator::{report, Workload};

#[derive(Args, Debug)]
pub struct SimulateArgs {
    /// The workload file (YAML): job categories and the two cluster policies, e.g.
    /// examples/simulator/seed-scenario.yaml.
    #[arg(long, value_name = "FILE")]
    pub workload: PathBuf,
    /// Where report.md, report.html and report.json are written (created if missing).
    #[arg(long, value_name = "DIR", default_value = "simulation")]
    pub out: PathBuf,
    /// The random seed, instead of the file's.
    #[arg(long)]
    pub seed: Option<u64>,
    /// The simulated span, instead of the file's (`1d`, `12h`).
    #[arg(long, value_name = "DURATION")]
    pub duration: Option<String>,
}

/// Runs the simulation; a bad file or an unwritable directory ends the process with a
/// one-line `error: …` naming the file (and the field) at fault.
pub fn run(args: SimulateArgs) -> anyhow::Result<()> {
    if let Err(message) = simulate(&args) {
        eprintln!("error: {message}");
        std::process::exit(2);
    }
    Ok(())
}

fn write(dir: &Path, name: &str, text: &str) -> Result<(), String> {
    let path = dir.join(name);
    std::fs::write(&path, text).map_err(|e| format!("{}: {e}", path.display()))
}

fn simulate(args: &SimulateArgs) -> Result<(), String> {
    let file = args.workload.display();
    let text = std::fs::read_to_string(&args.workload).map_err(|e| format!("{file}: {e}"))?;
    let mut workload = Workload::parse(&text).map_err(|e| format!("{file}: {e}"))?;
    if let Some(duration) = &args.duration {
        workload = workload
            .with_duration(duration)
            .map_err(|e| format!("--duration: {}", e.message))?;
    }
    if let Some(seed) = args.seed {
        workload.seed = seed;
    }
    let report = sparkyard_simulator::simulate(&workload);
    std::fs::create_dir_all(&args.out).map_err(|e| format!("{}: {e}", args.out.display()))?;
    write(&args.out, "report.json", &report::json(&report))?;
    write(&args.out, "report.md", &report::markdown(&report))?;
    write(&args.out, "report.html", &report::html(&report))?;
    print!("{}", report::summary(&report));
    println!(
        "\nreports: {}",
        ["report.md", "report.html", "report.json"]
            .map(|f| args.out.join(f).display().to_string())
            .join(", ")
    );
    Ok(())
}
