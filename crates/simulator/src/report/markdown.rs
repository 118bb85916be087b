//! The report as Markdown, and the tables the HTML report shares with it.

use super::{money, span, Percentiles, PolicyReport, Report};

/// A table both renderings print.
pub(super) struct Table {
    pub title: String,
    pub note: Option<String>,
    pub head: Vec<String>,
    pub rows: Vec<Vec<String>>,
}

impl Table {
    fn markdown(&self, out: &mut String) {
        out.push_str(&format!("### {}\n\n", self.title));
        if let Some(n) = &self.note {
            out.push_str(&format!("{n}\n\n"));
        }
        out.push_str(&format!("| {} |\n", self.head.join(" | ")));
        let align: Vec<&str> = (0..self.head.len())
            .map(|i| if i == 0 { "---" } else { "---:" })
            .collect();
        out.push_str(&format!("| {} |\n", align.join(" | ")));
        for row in &self.rows {
            out.push_str(&format!("| {} |\n", row.join(" | ")));
        }
        out.push('\n');
    }
}

fn percentiles(p: &Percentiles) -> [String; 4] {
    [span(p.p50), span(p.p90), span(p.p99), span(p.max)]
}

fn pct(v: f64) -> String {
    format!("{:.1}%", v * 100.0)
}

fn both(report: &Report) -> (&PolicyReport, &PolicyReport) {
    (&report.policies[0], &report.policies[1])
}

pub(super) fn tables(report: &Report) -> Vec<Table> {
    let (t, s) = both(report);
    let (tt, st) = (&t.totals, &s.totals);
    let row = |label: &str, a: String, b: String| vec![label.to_string(), a, b];
    let mut tables = vec![Table {
        title: "Totals".into(),
        note: None,
        head: vec![
            "".into(),
            "transient (EMR on EC2)".into(),
            "shared (EMR on EKS)".into(),
        ],
        rows: vec![
            row("total cost, USD", money(tt.cost_usd), money(st.cost_usd)),
            row("EC2, USD", money(tt.ec2_usd), money(st.ec2_usd)),
            row("EMR charge, USD", money(tt.emr_usd), money(st.emr_usd)),
            row(
                "EKS control plane, USD",
                money(tt.eks_usd),
                money(st.eks_usd),
            ),
            row(
                "EC2 no pod accounts for (idle, daemons), USD",
                money(tt.unattributed_ec2_usd),
                money(st.unattributed_ec2_usd),
            ),
            row(
                "jobs completed / failed / unfinished",
                format!("{} / {} / {}", tt.completed, tt.failed, tt.unfinished),
                format!("{} / {} / {}", st.completed, st.failed, st.unfinished),
            ),
            row(
                "wait p50 / p90 / p99 / max",
                percentiles(&tt.wait_seconds).join(" / "),
                percentiles(&st.wait_seconds).join(" / "),
            ),
            row(
                "completion p50 / p90 / p99 / max",
                percentiles(&tt.completion_seconds).join(" / "),
                percentiles(&st.completion_seconds).join(" / "),
            ),
            row(
                "node-hours (of which spot)",
                format!("{:.0} ({:.0})", tt.node_hours, tt.spot_node_hours),
                format!("{:.0} ({:.0})", st.node_hours, st.spot_node_hours),
            ),
            row(
                "nodes: peak / mean",
                format!("{} / {:.1}", tt.peak_nodes, tt.mean_nodes),
                format!("{} / {:.1}", st.peak_nodes, st.mean_nodes),
            ),
            row(
                "CPU utilisation (requested / node vCPU)",
                pct(tt.cpu_utilisation),
                pct(st.cpu_utilisation),
            ),
            row(
                "instances launched",
                tt.node_launches.to_string(),
                st.node_launches.to_string(),
            ),
            row(
                "pods preempted / lost to spot / disrupted",
                format!(
                    "{} / {} / {}",
                    tt.preempted_pods, tt.interrupted_pods, tt.disrupted_pods
                ),
                format!(
                    "{} / {} / {}",
                    st.preempted_pods, st.interrupted_pods, st.disrupted_pods
                ),
            ),
            row(
                "spot interruptions (nodes)",
                tt.spot_interruptions.to_string(),
                st.spot_interruptions.to_string(),
            ),
            row(
                "job retries",
                tt.retries.to_string(),
                st.retries.to_string(),
            ),
        ],
    }];
    let pairs = || t.categories.iter().zip(&s.categories);
    tables.push(Table {
        title: "Cost by category (USD)".into(),
        note: Some(
            "Transient: each job's cluster (EC2 + EMR on EC2's charge). Shared: EMR on EKS's charge on the category's pods plus their share of their nodes' EC2 price (the dominant resource); idle capacity is in the totals only."
                .into(),
        ),
        head: ["category", "jobs", "transient", "shared", "saving", "per job: transient", "per job: shared"]
            .map(String::from)
            .to_vec(),
        rows: pairs()
            .map(|(a, b)| {
                vec![
                    a.name.clone(),
                    a.jobs.to_string(),
                    money(a.cost_usd),
                    money(b.cost_usd),
                    if a.cost_usd > 0.0 {
                        pct((a.cost_usd - b.cost_usd) / a.cost_usd)
                    } else {
                        "–".into()
                    },
                    money(a.cost_per_job_usd),
                    money(b.cost_per_job_usd),
                ]
            })
            .collect(),
    });
    for (title, note, pick) in [
        (
            "Wait: submission → driver running",
            "Percentiles over each category's jobs (p50 / p90 / p99 / max).",
            (|c: &super::CategoryReport| c.wait_seconds)
                as fn(&super::CategoryReport) -> Percentiles,
        ),
        (
            "Completion: submission → job done",
            "Successful jobs only.",
            |c: &super::CategoryReport| c.completion_seconds,
        ),
    ] {
        tables.push(Table {
            title: title.into(),
            note: Some(note.into()),
            head: ["category", "transient", "shared"]
                .map(String::from)
                .to_vec(),
            rows: pairs()
                .map(|(a, b)| {
                    vec![
                        a.name.clone(),
                        percentiles(&pick(a)).join(" / "),
                        percentiles(&pick(b)).join(" / "),
                    ]
                })
                .collect(),
        });
    }
    tables.push(Table {
        title: "Disruption on the shared cluster".into(),
        note: Some("Pods deleted by kube-scheduler's preemption, lost with an interrupted spot node, or evicted by Karpenter's consolidation; retries are job attempts started again after a lost driver.".into()),
        head: ["category", "preempted", "lost to spot", "disrupted", "retries", "failed", "unfinished"]
            .map(String::from)
            .to_vec(),
        rows: s
            .categories
            .iter()
            .map(|c| {
                vec![
                    c.name.clone(),
                    c.preempted_pods.to_string(),
                    c.interrupted_pods.to_string(),
                    c.disrupted_pods.to_string(),
                    c.retries.to_string(),
                    c.failed.to_string(),
                    c.unfinished.to_string(),
                ]
            })
            .collect(),
    });
    let mut types: Vec<&String> = t
        .launches_by_instance_type
        .keys()
        .chain(s.launches_by_instance_type.keys())
        .collect();
    types.sort();
    types.dedup();
    tables.push(Table {
        title: "Instances launched by type".into(),
        note: None,
        head: ["instance type", "transient", "shared"]
            .map(String::from)
            .to_vec(),
        rows: types
            .into_iter()
            .map(|ty| {
                let n = |p: &PolicyReport| {
                    p.launches_by_instance_type
                        .get(ty)
                        .copied()
                        .unwrap_or(0)
                        .to_string()
                };
                vec![ty.clone(), n(t), n(s)]
            })
            .collect(),
    });
    tables
}

pub(super) fn assumptions(report: &Report) -> Vec<String> {
    let a = &report.assumptions;
    vec![
        format!(
            "EMR on EKS: ${}/vCPU-hour + ${}/GB-hour of requested pod resources, per second ({} rates for {}).",
            a.emr_on_eks_usd_per_vcpu_hour, a.emr_on_eks_usd_per_gb_hour, a.emr_on_eks_rates, report.workload.region
        ),
        format!(
            "Transient: a cluster per job, bootstrap {}–{} drawn uniformly per job; 1 × {} primary + core nodes of the cheapest fleet among {}; EC2 on-demand + EMR on EC2's charge at {:.0}% of on-demand, per second with a 1-minute minimum.",
            span(Some(a.transient_bootstrap_seconds[0])),
            span(Some(a.transient_bootstrap_seconds[1])),
            a.transient_primary_instance_type,
            a.transient_core_instance_types.join(", "),
            a.transient_emr_uplift_fraction * 100.0
        ),
        format!(
            "Shared: node group {}, NodePools {}; a Karpenter node is Ready {} after launch; spot nodes are interrupted at {} per node-hour; EC2 at the catalog's price per second (1-minute minimum); the EKS control plane at ${}/hour.",
            a.shared_node_group,
            a.shared_node_pools.join(", "),
            span(Some(a.shared_boot_seconds)),
            a.shared_spot_interruptions_per_node_hour,
            a.shared_control_plane_usd_per_hour
        ),
        format!(
            "Both: {} from submission to the driver pod, {} container start, {} EMR image pull on a node's first pod (shared), {} for a deleted pod to exit, {} attempt(s) per job.",
            span(Some(a.submit_seconds)),
            span(Some(a.container_start_seconds)),
            span(Some(a.image_pull_seconds)),
            span(Some(a.pod_exit_seconds)),
            a.max_attempts
        ),
    ]
}

pub(super) const READING: &[&str] = &[
    "**Wait** is what a job's owner feels first: the transient policy pays the cluster's bootstrap on every job; the shared one pays only when the cluster is full (scheduling waits, Karpenter's batch window and node boot, an image pull on a fresh node).",
    "**Cost** on the shared cluster is EC2 for every node-second plus EMR on EKS's charge on requested pod resources. EC2 that no pod's share accounts for is capacity paid for but idle (and DaemonSets); utilisation shows how much of the node vCPU pods requested.",
    "**Preempted** executors are Spark's to replace; the work they had in flight is done again. A lost **driver** fails its attempt, and the job is retried while attempts remain.",
    "Everything is simulated: no Spark runs. Job durations come from the workload's work figures; the decisions (placement, preemption, launches, consolidation) are the embedded cluster's own code.",
];

pub fn markdown(report: &Report) -> String {
    let w = &report.workload;
    let mut out = String::new();
    out.push_str(&format!(
        "# Cost simulation{}\n\n",
        w.name
            .as_deref()
            .map(|n| format!(": {n}"))
            .unwrap_or_default()
    ));
    out.push_str(&format!(
        "{} jobs over {} from {} (seed {}, region {}), on one transient EMR-on-EC2 cluster per job and on one shared EKS cluster with Karpenter.\n\n",
        w.jobs, w.duration, w.start, w.seed, w.region
    ));
    out.push_str("| category | jobs | executors | driver priority | executor priority | work per job (executor-slot hours) |\n|---|---:|---:|---:|---:|---:|\n");
    for c in &w.categories {
        out.push_str(&format!(
            "| {} | {} | {} | {} | {} | {:.2} |\n",
            c.name, c.jobs, c.executors, c.driver_priority, c.executor_priority, c.work_hours_mean
        ));
    }
    out.push('\n');
    out.push_str("## Results\n\n");
    for t in tables(report) {
        t.markdown(&mut out);
    }
    out.push_str("## Assumptions\n\n");
    for a in assumptions(report) {
        out.push_str(&format!("- {a}\n"));
    }
    out.push_str("\n## How to read this report\n\n");
    for r in READING {
        out.push_str(&format!("- {r}\n"));
    }
    out
}
