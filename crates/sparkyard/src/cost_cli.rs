//! `sparkyard runs cost`: the cost records the controller writes when a run ends
//! (docs/cost.md), read through the endpoint's GetJobRunCost and ListJobRunCosts.

use std::fmt::Write as _;

use anyhow::bail;
use chrono::{DateTime, NaiveDate, Utc};
use clap::Args;
use serde_json::Value;

use crate::jobs_cli::{urlencode, EmrClient, ServerArgs};

#[derive(Args, Debug)]
pub struct CostArgs {
    /// One run's record, pod by pod. Without it: the runs since `--since`, and totals.
    pub id: Option<String>,
    #[arg(long)]
    pub virtual_cluster_id: Option<String>,
    /// Runs created at or after this time: `2026-12-01`, `2026-12-01T08:00:00Z`, or a
    /// duration back from now (`90m`, `24h`, `7d`). Default: 24 hours.
    #[arg(long)]
    pub since: Option<String>,
    /// `table` (default) or `json` (the API's records as they are).
    #[arg(long, default_value = "table")]
    pub output: Output,
    #[command(flatten)]
    pub server: ServerArgs,
}

#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum Output {
    Table,
    Json,
}

pub async fn run(api: &EmrClient, args: CostArgs) -> anyhow::Result<()> {
    match &args.id {
        Some(id) => {
            if args.since.is_some() {
                bail!("--since selects runs to total; it cannot be given with a run id");
            }
            let run = api.find_run(id, args.virtual_cluster_id.as_deref()).await?;
            let vc = run["virtualClusterId"].as_str().unwrap_or_default();
            let record = api
                .call(
                    "GET",
                    &format!("/virtualclusters/{vc}/jobruns/{id}/cost"),
                    None,
                )
                .await?;
            let record = &record["jobRunCost"];
            match args.output {
                Output::Json => println!("{}", serde_json::to_string_pretty(record)?),
                Output::Table => print!("{}", render_run(record)),
            }
        }
        None => {
            let since = parse_since(args.since.as_deref().unwrap_or("24h"), Utc::now())?;
            let vcs = match &args.virtual_cluster_id {
                Some(vc) => vec![vc.clone()],
                None => api.virtual_cluster_ids().await?,
            };
            let after = urlencode(&since.to_rfc3339_opts(chrono::SecondsFormat::Secs, true));
            let mut runs = Vec::new();
            for vc in vcs {
                let path = format!("/virtualclusters/{vc}/jobruncosts?createdAfter={after}");
                runs.extend(api.paginate(&path, "jobRunCosts").await?);
            }
            runs.sort_by(|a, b| a["id"].as_str().cmp(&b["id"].as_str()));
            match args.output {
                Output::Json => println!("{}", serde_json::to_string_pretty(&runs)?),
                Output::Table => print!("{}", render_totals(&runs, since)),
            }
        }
    }
    Ok(())
}

/// `--since`: a date, a timestamp, or a duration back from `now`.
pub fn parse_since(text: &str, now: DateTime<Utc>) -> anyhow::Result<DateTime<Utc>> {
    let text = text.trim();
    if let Ok(t) = DateTime::parse_from_rfc3339(text) {
        return Ok(t.with_timezone(&Utc));
    }
    if let Ok(day) = NaiveDate::parse_from_str(text, "%Y-%m-%d") {
        return Ok(day.and_hms_opt(0, 0, 0).unwrap_or_default().and_utc());
    }
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let seconds = match (number.parse::<i64>(), unit) {
        (Ok(n), "s") => n,
        (Ok(n), "m") => n * 60,
        (Ok(n), "h") => n * 3600,
        (Ok(n), "d") => n * 86_400,
        _ => bail!(
            "--since {text:?}: expected a date (2026-12-01), a timestamp \
             (2026-12-01T08:00:00Z) or a duration (90m, 24h, 7d)"
        ),
    };
    Ok(now - chrono::Duration::seconds(seconds))
}

fn num(v: &Value) -> f64 {
    v.as_f64().unwrap_or_default()
}

fn text(v: &Value) -> &str {
    v.as_str().unwrap_or("-")
}

/// One run, pod by pod.
pub fn render_run(record: &Value) -> String {
    let mut out = String::new();
    let name = record["name"]
        .as_str()
        .map(|n| format!(" ({n})"))
        .unwrap_or_default();
    let _ = writeln!(
        out,
        "job run {}{name} on virtual cluster {}: {}",
        text(&record["id"]),
        text(&record["virtualClusterId"]),
        text(&record["state"]),
    );
    let cost = &record["cost"];
    if cost.is_null() {
        let _ = writeln!(
            out,
            "no cost record: it is written when the run ends, for the pods that started"
        );
        return out;
    }
    let rates = &cost["rates"];
    let _ = writeln!(
        out,
        "EMR on EKS rates in {} ({}): ${} per vCPU-hour, ${} per GB-hour\n",
        text(&cost["region"]),
        text(&cost["ratesSource"]),
        num(&rates["vcpuHour"]),
        num(&rates["gbHour"]),
    );
    let _ = writeln!(
        out,
        "{:<44}  {:<10}  {:<13}  {:<9}  {:<11}  {:>7}  {:>5}  {:>6}  {:>9}  {:>9}  {:>9}",
        "POD",
        "ROLE",
        "INSTANCE",
        "CAPACITY",
        "ZONE",
        "SECONDS",
        "VCPU",
        "GIB",
        "EC2 USD",
        "EMR USD",
        "TOTAL USD"
    );
    for pod in cost["pods"].as_array().into_iter().flatten() {
        let node = &pod["node"];
        let _ = writeln!(
            out,
            "{:<44}  {:<10}  {:<13}  {:<9}  {:<11}  {:>7}  {:>5.2}  {:>6.2}  {:>9.6}  {:>9.6}  {:>9.6}",
            text(&pod["name"]),
            text(&pod["role"]),
            text(&node["instanceType"]),
            text(&node["capacityType"]),
            node["zone"].as_str().filter(|z| !z.is_empty()).unwrap_or("-"),
            pod["seconds"].as_u64().unwrap_or_default(),
            num(&pod["vcpu"]),
            num(&pod["memoryBytes"]) / (1u64 << 30) as f64,
            num(&pod["ec2Usd"]),
            num(&pod["emrUsd"]),
            num(&pod["ec2Usd"]) + num(&pod["emrUsd"]),
        );
    }
    let _ = writeln!(
        out,
        "\nvCPU-hours {:.6}   GB-hours {:.6}   EC2 ${:.6}   EMR on EKS ${:.6}   total ${:.6}",
        num(&cost["vcpuHours"]),
        num(&cost["gbHours"]),
        num(&cost["ec2Usd"]),
        num(&cost["emrUsd"]),
        num(&cost["ec2Usd"]) + num(&cost["emrUsd"]),
    );
    out
}

/// Runs and their totals.
pub fn render_totals(runs: &[Value], since: DateTime<Utc>) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<19}  {:<25}  {:<10}  {:<20}  {:>10}  {:>10}  {:>10}  {:>10}  {:>10}  NAME",
        "ID",
        "VIRTUAL CLUSTER",
        "STATE",
        "CREATED",
        "VCPU-H",
        "GB-H",
        "EC2 USD",
        "EMR USD",
        "TOTAL USD"
    );
    let mut totals = [0.0f64; 4];
    let mut without = 0;
    for run in runs {
        let cost = &run["cost"];
        if cost.is_null() {
            without += 1;
        }
        let figures = [
            num(&cost["vcpuHours"]),
            num(&cost["gbHours"]),
            num(&cost["ec2Usd"]),
            num(&cost["emrUsd"]),
        ];
        for (total, figure) in totals.iter_mut().zip(figures) {
            *total += figure;
        }
        let _ = writeln!(
            out,
            "{:<19}  {:<25}  {:<10}  {:<20}  {:>10.4}  {:>10.4}  {:>10.6}  {:>10.6}  {:>10.6}  {}",
            text(&run["id"]),
            text(&run["virtualClusterId"]),
            text(&run["state"]),
            text(&run["createdAt"]),
            figures[0],
            figures[1],
            figures[2],
            figures[3],
            figures[2] + figures[3],
            run["name"].as_str().unwrap_or_default(),
        );
    }
    let _ = writeln!(
        out,
        "\n{} runs since {}: vCPU-hours {:.4}, GB-hours {:.4}, EC2 ${:.6}, EMR on EKS ${:.6}, total ${:.6}",
        runs.len(),
        since.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        totals[0],
        totals[1],
        totals[2],
        totals[3],
        totals[2] + totals[3],
    );
    if without > 0 {
        let _ = writeln!(
            out,
            "{without} of them have no cost record yet (still active, or no pod started)"
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn now() -> DateTime<Utc> {
        "2026-12-05T12:00:00Z".parse().unwrap()
    }

    #[test]
    fn since_takes_dates_timestamps_and_durations() {
        let at = |s: &str| parse_since(s, now()).unwrap().to_rfc3339();
        assert_eq!(at("2026-12-01"), "2026-12-01T00:00:00+00:00");
        assert_eq!(at("2026-12-01T08:30:00Z"), "2026-12-01T08:30:00+00:00");
        assert_eq!(at("90m"), "2026-12-05T10:30:00+00:00");
        assert_eq!(at("7d"), "2026-11-28T12:00:00+00:00");
        let e = parse_since("yesterday", now()).unwrap_err().to_string();
        assert!(e.contains("--since \"yesterday\""), "{e}");
    }

    #[test]
    fn totals_sum_the_runs_and_count_the_ones_without_a_record() {
        let runs = [
            json!({"id": "a", "virtualClusterId": "vc1", "state": "COMPLETED",
                   "createdAt": "2026-12-05T10:00:00Z",
                   "cost": {"vcpuHours": 1.0, "gbHours": 4.0, "ec2Usd": 0.5, "emrUsd": 0.25}}),
            json!({"id": "b", "virtualClusterId": "vc2", "state": "RUNNING",
                   "createdAt": "2026-12-05T11:00:00Z"}),
        ];
        let text = render_totals(&runs, now());
        assert!(text.contains("2 runs since 2026-12-05T12:00:00Z: vCPU-hours 1.0000, GB-hours 4.0000, EC2 $0.500000, EMR on EKS $0.250000, total $0.750000"), "{text}");
        assert!(text.contains("1 of them have no cost record yet"), "{text}");
    }
}
