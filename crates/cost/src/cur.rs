//! Cost records as Cost and Usage Report line items: the columns a FinOps team's Athena
//! views over a CUR 2.0 data export read for EMR on EKS (the uplift, product
//! `ElasticMapReduce`, operation `StartJobRun`) and EKS split cost allocation (pod rows,
//! operation `EKSPod-EC2`, `split_line_item_*`), with job-run tags as cost allocation tags
//! (`resource_tags_user_<key>`). docs/cost.md lists every column and where it comes from.
//!
//! One line item set per run: two EMR rows (vCPU-hours, GB-hours) carrying the run's
//! charge, and two EKS rows per pod (vCPU-hours, GB-hours) carrying the pod's EC2 share as
//! `split_line_item_split_cost`, their `line_item_unblended_cost` zero as in AWS's split
//! rows (the instance's own line carries the EC2 cost there). So the EMR rows' unblended
//! cost sums to the run's EMR charge and the split costs to its EC2 share.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use chrono::{DateTime, Datelike, NaiveDate, SecondsFormat, Utc};

use crate::{PodCost, RunCost};

/// What a line item needs to know about the run beyond its cost record.
#[derive(Debug, Clone)]
pub struct RunIdentity {
    pub account_id: String,
    pub cluster_name: String,
    pub namespace: String,
    pub virtual_cluster_id: String,
    pub job_run_id: String,
    pub job_run_arn: String,
    pub tags: BTreeMap<String, String>,
}

/// One CUR value.
#[derive(Debug, Clone, PartialEq)]
pub enum Cell {
    Text(String),
    Number(f64),
    Time(DateTime<Utc>),
}

/// The fixed columns, in order (`resource_tags_user_*` follow, one per tag key of the
/// export's runs).
pub const COLUMNS: [&str; 32] = [
    "identity_line_item_id",
    "identity_time_interval",
    "bill_bill_type",
    "bill_billing_entity",
    "bill_billing_period_start_date",
    "bill_billing_period_end_date",
    "bill_payer_account_id",
    "line_item_line_item_type",
    "line_item_usage_account_id",
    "line_item_usage_start_date",
    "line_item_usage_end_date",
    "line_item_product_code",
    "line_item_usage_type",
    "line_item_operation",
    "line_item_resource_id",
    "line_item_availability_zone",
    "line_item_usage_amount",
    "line_item_currency_code",
    "line_item_unblended_rate",
    "line_item_unblended_cost",
    "line_item_blended_rate",
    "line_item_blended_cost",
    "line_item_line_item_description",
    "product_region_code",
    "product_instance_type",
    "pricing_unit",
    "pricing_term",
    "split_line_item_parent_resource_id",
    "split_line_item_split_usage",
    "split_line_item_split_usage_ratio",
    "split_line_item_split_cost",
    "split_line_item_unused_cost",
];

/// A row: the fixed columns' values and the run's tags.
#[derive(Debug, Clone, PartialEq)]
pub struct LineItem {
    pub cells: Vec<Cell>,
    pub tags: BTreeMap<String, String>,
}

/// `resource_tags_user_<key>`: the CUR's column for a user-defined cost allocation tag,
/// with characters Athena cannot take in a column name made underscores.
pub fn tag_column(key: &str) -> String {
    let clean: String = key
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '_'
            }
        })
        .collect();
    format!("resource_tags_user_{clean}")
}

/// AWS's usage-type prefix of a region (`USE1-…`); the region code itself for regions
/// this table does not know.
pub fn usage_type_prefix(region: &str) -> String {
    match region {
        "us-east-1" => "USE1".into(),
        "us-east-2" => "USE2".into(),
        "us-west-1" => "USW1".into(),
        "us-west-2" => "USW2".into(),
        "eu-west-1" => "EU".into(),
        "eu-west-2" => "EUW2".into(),
        "eu-central-1" => "EUC1".into(),
        "ap-northeast-1" => "APN1".into(),
        "ap-southeast-1" => "APS1".into(),
        "ap-southeast-2" => "APS2".into(),
        other => other.to_uppercase(),
    }
}

fn first_of_month(day: NaiveDate) -> NaiveDate {
    day.with_day(1).unwrap_or(day)
}

fn next_month(day: NaiveDate) -> NaiveDate {
    let first = first_of_month(day);
    first
        .checked_add_months(chrono::Months::new(1))
        .unwrap_or(first)
}

fn midnight(day: NaiveDate) -> DateTime<Utc> {
    day.and_hms_opt(0, 0, 0).unwrap_or_default().and_utc()
}

/// The line items of one run's cost record.
pub fn line_items(run: &RunIdentity, cost: &RunCost) -> Vec<LineItem> {
    let (Some(start), Some(end)) = (
        cost.pods.iter().map(|p| p.usage.start).min(),
        cost.pods.iter().map(|p| p.usage.end).max(),
    ) else {
        return Vec::new();
    };
    let prefix = usage_type_prefix(&cost.region);
    let day = start.date_naive();
    let base = Base {
        run,
        region: &cost.region,
        period: (midnight(first_of_month(day)), midnight(next_month(day))),
    };
    let mut out = Vec::new();
    // The EMR on EKS uplift: what Athena's `emr_uplift_per_vc` view sums.
    for (unit, amount, rate) in [
        ("vCPU-Hours", cost.vcpu_hours, cost.rates.vcpu_hour),
        ("GB-Hours", cost.gb_hours, cost.rates.gb_hour),
    ] {
        out.push(base.row(Row {
            id: format!("{}/emr/{unit}", run.job_run_id),
            start,
            end,
            product: "ElasticMapReduce",
            usage_type: format!("{prefix}-EMR-EKS-{unit}"),
            operation: "StartJobRun",
            resource: run.job_run_arn.clone(),
            zone: String::new(),
            amount,
            rate,
            cost: amount * rate,
            description: format!(
                "${rate} per {unit} for Amazon EMR on Amazon EKS requested {}",
                if unit == "GB-Hours" { "memory" } else { "vCPU" }
            ),
            instance_type: String::new(),
            unit,
            term: "OnDemand",
            split: None,
        }));
    }
    // EKS split cost allocation: each pod's share of its instance.
    for pod in &cost.pods {
        out.extend(pod_rows(&base, pod, &prefix));
    }
    out
}

fn pod_rows(base: &Base, pod: &PodCost, prefix: &str) -> Vec<LineItem> {
    let usage = &pod.usage;
    let node = usage.node.as_ref();
    // The pod's EC2 share, split between its vCPU and memory rows by how much of the node
    // each of them is.
    let (cpu_fraction, memory_fraction) = match node {
        Some(n) if n.vcpu > 0.0 && n.memory_bytes > 0.0 => {
            (usage.vcpu / n.vcpu, usage.memory_bytes / n.memory_bytes)
        }
        _ => (0.0, 0.0),
    };
    let cpu_part = if cpu_fraction + memory_fraction > 0.0 {
        cpu_fraction / (cpu_fraction + memory_fraction)
    } else {
        0.5
    };
    let r = base.run;
    let resource = format!(
        "arn:aws:eks:{}:{}:pod/{}/{}/{}",
        base.region, r.account_id, r.cluster_name, r.namespace, usage.name
    );
    let term = match node.map(|n| n.capacity_type) {
        Some(sparkyard_scheduling::node::CapacityType::Spot) => "Spot",
        _ => "OnDemand",
    };
    [
        ("vCPU-Hours", pod.vcpu_hours, cpu_fraction, cpu_part),
        ("GB-Hours", pod.gb_hours, memory_fraction, 1.0 - cpu_part),
    ]
    .into_iter()
    .map(|(unit, amount, ratio, part)| {
        let split_cost = pod.ec2_usd * part;
        base.row(Row {
            id: format!("{}/pod/{}/{unit}", r.job_run_id, usage.name),
            start: usage.start,
            end: usage.end,
            product: "AmazonEKS",
            usage_type: format!("{prefix}-EKS-EC2-{unit}"),
            operation: "EKSPod-EC2",
            resource: resource.clone(),
            zone: node.map(|n| n.zone.clone()).unwrap_or_default(),
            amount,
            rate: 0.0,
            cost: 0.0,
            description: format!("{unit} allocated to pod {}", usage.name),
            instance_type: node.map(|n| n.instance_type.clone()).unwrap_or_default(),
            unit,
            term,
            split: Some(Split {
                parent: node.map(|n| n.name.clone()).unwrap_or_default(),
                usage: amount,
                ratio,
                cost: split_cost,
            }),
        })
    })
    .collect()
}

struct Base<'a> {
    run: &'a RunIdentity,
    region: &'a str,
    period: (DateTime<Utc>, DateTime<Utc>),
}

struct Row {
    id: String,
    start: DateTime<Utc>,
    end: DateTime<Utc>,
    product: &'static str,
    usage_type: String,
    operation: &'static str,
    resource: String,
    zone: String,
    amount: f64,
    rate: f64,
    cost: f64,
    description: String,
    instance_type: String,
    unit: &'static str,
    term: &'static str,
    split: Option<Split>,
}

struct Split {
    parent: String,
    usage: f64,
    ratio: f64,
    cost: f64,
}

impl Base<'_> {
    fn row(&self, row: Row) -> LineItem {
        use Cell::{Number, Text, Time};
        let interval = format!(
            "{}/{}",
            row.start.to_rfc3339_opts(SecondsFormat::Secs, true),
            row.end.to_rfc3339_opts(SecondsFormat::Secs, true)
        );
        let split = row.split.as_ref();
        let text = |s: &str| Text(s.to_string());
        let cells = vec![
            Text(row.id),
            Text(interval),
            text("Anniversary"),
            text("AWS"),
            Time(self.period.0),
            Time(self.period.1),
            text(&self.run.account_id),
            text("Usage"),
            text(&self.run.account_id),
            Time(row.start),
            Time(row.end),
            text(row.product),
            Text(row.usage_type),
            text(row.operation),
            Text(row.resource),
            Text(row.zone),
            Number(row.amount),
            text("USD"),
            Number(row.rate),
            Number(row.cost),
            Number(row.rate),
            Number(row.cost),
            Text(row.description),
            text(self.region),
            Text(row.instance_type),
            text(row.unit),
            text(row.term),
            text(split.map(|s| s.parent.as_str()).unwrap_or_default()),
            Number(split.map(|s| s.usage).unwrap_or_default()),
            Number(split.map(|s| s.ratio).unwrap_or_default()),
            Number(split.map(|s| s.cost).unwrap_or_default()),
            Number(0.0),
        ];
        LineItem {
            cells,
            tags: self.run.tags.clone(),
        }
    }
}

/// Every tag key of `items`, sorted: the export's `resource_tags_user_*` columns.
pub fn tag_keys(items: &[LineItem]) -> Vec<String> {
    let keys: BTreeSet<&String> = items.iter().flat_map(|i| i.tags.keys()).collect();
    keys.into_iter().cloned().collect()
}

/// The report as CSV (RFC 4180: a header, `\n` line ends, fields quoted when they hold a
/// comma, quote or line break; timestamps as CUR writes them, `2026-12-05T10:00:00Z`).
pub fn to_csv(items: &[LineItem]) -> String {
    let keys = tag_keys(items);
    let mut out = String::new();
    let header: Vec<String> = COLUMNS
        .iter()
        .map(|c| c.to_string())
        .chain(keys.iter().map(|k| tag_column(k)))
        .collect();
    let _ = writeln!(out, "{}", header.join(","));
    for item in items {
        let mut fields: Vec<String> = item
            .cells
            .iter()
            .map(|cell| match cell {
                Cell::Text(s) => quote(s),
                Cell::Number(n) => format!("{n}"),
                Cell::Time(t) => t.to_rfc3339_opts(SecondsFormat::Secs, true),
            })
            .collect();
        fields.extend(
            keys.iter()
                .map(|k| quote(item.tags.get(k).map(String::as_str).unwrap_or_default())),
        );
        let _ = writeln!(out, "{}", fields.join(","));
    }
    out
}

fn quote(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{cost_of_run, NodeShape, PodUsage};
    use sparkyard_scheduling::node::CapacityType;

    fn run() -> RunIdentity {
        RunIdentity {
            account_id: "123456789012".into(),
            cluster_name: "eks-emr-cluster".into(),
            namespace: "monthly-batch".into(),
            virtual_cluster_id: "vc1".into(),
            job_run_id: "run1".into(),
            job_run_arn:
                "arn:aws:emr-containers:us-east-1:123456789012:/virtualclusters/vc1/jobruns/run1"
                    .into(),
            tags: BTreeMap::from([("team".into(), "finance, EU".into())]),
        }
    }

    fn cost() -> RunCost {
        let node = NodeShape::from_catalog("ip-1", "m5.2xlarge", CapacityType::Spot, "us-east-1a");
        let at = |s: &str| s.parse::<DateTime<Utc>>().unwrap();
        let pod = |name: &str, role: &str, vcpu: f64| PodUsage {
            name: name.into(),
            role: role.into(),
            start: at("2026-12-05T10:00:00Z"),
            end: at("2026-12-05T10:10:00Z"),
            vcpu,
            memory_bytes: 4.0 * 1024.0 * 1024.0 * 1024.0,
            node: node.clone(),
        };
        cost_of_run(
            &[
                pod("spark-run1-driver", "driver", 1.0),
                pod("exec-1", "executor", 2.0),
            ],
            "us-east-1",
        )
    }

    #[test]
    fn the_emr_rows_carry_the_charge_and_the_split_rows_the_ec2_share() {
        let cost = cost();
        let items = line_items(&run(), &cost);
        assert_eq!(items.len(), 2 + 2 * 2);
        let col = |name: &str| COLUMNS.iter().position(|c| *c == name).unwrap();
        let num = |i: &LineItem, name: &str| match &i.cells[col(name)] {
            Cell::Number(n) => *n,
            other => panic!("{other:?}"),
        };
        let text = |i: &LineItem, name: &str| match &i.cells[col(name)] {
            Cell::Text(s) => s.clone(),
            other => panic!("{other:?}"),
        };
        let emr: Vec<&LineItem> = items
            .iter()
            .filter(|i| text(i, "line_item_operation") == "StartJobRun")
            .collect();
        let emr_cost: f64 = emr.iter().map(|i| num(i, "line_item_unblended_cost")).sum();
        assert!((emr_cost - cost.emr_usd).abs() < 1e-12);
        assert_eq!(text(emr[0], "line_item_product_code"), "ElasticMapReduce");
        assert_eq!(
            text(emr[0], "line_item_usage_type"),
            "USE1-EMR-EKS-vCPU-Hours"
        );
        // Athena's view takes the virtual cluster id as the third '/'-part.
        assert_eq!(
            text(emr[0], "line_item_resource_id").split('/').nth(2),
            Some("vc1")
        );
        let split: f64 = items
            .iter()
            .map(|i| num(i, "split_line_item_split_cost"))
            .sum();
        assert!(
            (split - cost.ec2_usd).abs() < 1e-12,
            "{split} vs {}",
            cost.ec2_usd
        );
        let pod = items
            .iter()
            .find(|i| text(i, "line_item_operation") == "EKSPod-EC2")
            .unwrap();
        // The compute view: cluster ARN from parts 1–2, namespace as part 3.
        let resource = text(pod, "line_item_resource_id");
        let parts: Vec<&str> = resource.split('/').collect();
        assert_eq!(parts[0], "arn:aws:eks:us-east-1:123456789012:pod");
        assert_eq!((parts[1], parts[2]), ("eks-emr-cluster", "monthly-batch"));
        assert_eq!(text(pod, "pricing_term"), "Spot");
        assert!(text(pod, "line_item_usage_type").ends_with("EKS-EC2-vCPU-Hours"));
    }

    #[test]
    fn csv_has_the_columns_the_tags_and_quotes_what_needs_it() {
        let csv = to_csv(&line_items(&run(), &cost()));
        let mut lines = csv.lines();
        let header = lines.next().unwrap();
        assert!(header.starts_with("identity_line_item_id,identity_time_interval,"));
        assert!(header.ends_with(",resource_tags_user_team"));
        let first = lines.next().unwrap();
        assert!(first.ends_with(",\"finance, EU\""), "{first}");
        assert!(
            first.contains(",2026-12-01T00:00:00Z,2027-01-01T00:00:00Z,"),
            "{first}"
        );
        assert_eq!(csv.lines().count(), 1 + 6);
        assert_eq!(
            tag_column("cost-center:Team"),
            "resource_tags_user_cost_center_team"
        );
    }
}
