//! The report as one self-contained HTML page: the plots a person would put on a slide
//! (nodes over time per policy, cost by category, wait percentiles, CPU utilisation)
//! as inline SVG, then the Markdown report's tables.

use super::markdown::{assumptions, tables, READING};
use super::svg::{bar_chart, escape, line_chart, Series};
use super::{money, Report};

const TRANSIENT: &str = "#e8743b";
const TRANSIENT_LIGHT: &str = "#f5b896";
const SHARED: &str = "#1f77b4";
const SHARED_LIGHT: &str = "#8fbbd9";

/// Markdown's `**bold**` as `<b>`, the rest escaped.
fn inline(text: &str) -> String {
    let mut out = String::new();
    for (i, part) in escape(text).split("**").enumerate() {
        if i % 2 == 1 {
            out.push_str(&format!("<b>{part}</b>"));
        } else {
            out.push_str(part);
        }
    }
    out
}

fn charts(report: &Report) -> Vec<String> {
    let (t, s) = (&report.policies[0], &report.policies[1]);
    let mut charts = Vec::new();
    charts.push(line_chart(
        "Nodes over time (hourly mean)",
        "nodes",
        &[
            Series {
                name: "transient",
                color: TRANSIENT,
                values: t.hourly.iter().map(|h| h.nodes_mean).collect(),
            },
            Series {
                name: "shared",
                color: SHARED,
                values: s.hourly.iter().map(|h| h.nodes_mean).collect(),
            },
        ],
        &|v| format!("{v:.0}"),
    ));
    let mut groups: Vec<String> = t.categories.iter().map(|c| c.name.clone()).collect();
    let mut transient_cost: Vec<f64> = t.categories.iter().map(|c| c.cost_usd).collect();
    let mut shared_cost: Vec<f64> = s.categories.iter().map(|c| c.cost_usd).collect();
    groups.push("idle capacity".into());
    transient_cost.push(t.totals.unattributed_ec2_usd);
    shared_cost.push(s.totals.unattributed_ec2_usd);
    charts.push(bar_chart(
        "Cost by category (USD)",
        "USD",
        &groups,
        &[
            Series {
                name: "transient",
                color: TRANSIENT,
                values: transient_cost,
            },
            Series {
                name: "shared",
                color: SHARED,
                values: shared_cost,
            },
        ],
        &|v| money(v).trim_end_matches(".00").to_string(),
    ));
    let minutes = |v: Option<f64>| v.unwrap_or(0.0) / 60.0;
    let names: Vec<String> = t.categories.iter().map(|c| c.name.clone()).collect();
    charts.push(bar_chart(
        "Wait until the driver runs (minutes, p50 and p90)",
        "minutes",
        &names,
        &[
            Series {
                name: "transient p50",
                color: TRANSIENT_LIGHT,
                values: t
                    .categories
                    .iter()
                    .map(|c| minutes(c.wait_seconds.p50))
                    .collect(),
            },
            Series {
                name: "transient p90",
                color: TRANSIENT,
                values: t
                    .categories
                    .iter()
                    .map(|c| minutes(c.wait_seconds.p90))
                    .collect(),
            },
            Series {
                name: "shared p50",
                color: SHARED_LIGHT,
                values: s
                    .categories
                    .iter()
                    .map(|c| minutes(c.wait_seconds.p50))
                    .collect(),
            },
            Series {
                name: "shared p90",
                color: SHARED,
                values: s
                    .categories
                    .iter()
                    .map(|c| minutes(c.wait_seconds.p90))
                    .collect(),
            },
        ],
        &|v| format!("{v:.1}"),
    ));
    charts.push(line_chart(
        "CPU utilisation: requested / node vCPU (hourly)",
        "utilisation",
        &[
            Series {
                name: "transient",
                color: TRANSIENT,
                values: t.hourly.iter().map(|h| h.cpu_utilisation).collect(),
            },
            Series {
                name: "shared",
                color: SHARED,
                values: s.hourly.iter().map(|h| h.cpu_utilisation).collect(),
            },
        ],
        &|v| format!("{:.0}%", v * 100.0),
    ));
    charts
}

pub fn html(report: &Report) -> String {
    let w = &report.workload;
    let (t, s) = (&report.policies[0].totals, &report.policies[1].totals);
    let title = format!(
        "Cost simulation{}",
        w.name
            .as_deref()
            .map(|n| format!(": {n}"))
            .unwrap_or_default()
    );
    let mut out = String::new();
    out.push_str(&format!(
        r#"<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<style>
body {{ font-family: Helvetica, Arial, sans-serif; margin: 2em auto; max-width: 980px; color: #222; }}
h1 {{ margin-bottom: 0.2em; }}
.lede {{ color: #555; }}
.headline {{ display: flex; gap: 1.5em; margin: 1.5em 0; }}
.headline > div {{ flex: 1; border: 1px solid #ddd; border-radius: 6px; padding: 0.8em 1em; }}
.headline .n {{ font-size: 1.8em; font-weight: bold; }}
.charts svg {{ display: block; margin: 1.5em 0; max-width: 100%; height: auto; border: 1px solid #eee; }}
table {{ border-collapse: collapse; margin: 0.5em 0 1.5em; font-size: 0.92em; }}
th, td {{ border-bottom: 1px solid #e3e3e3; padding: 0.3em 0.7em; text-align: right; }}
th:first-child, td:first-child {{ text-align: left; }}
th {{ background: #f6f6f6; }}
</style></head><body>
"#,
        title = escape(&title)
    ));
    out.push_str(&format!(
        "<h1>{}</h1>\n<p class=\"lede\">{} jobs over {} from {} (seed {}, region {}): one transient EMR-on-EC2 cluster per job against one shared EKS cluster with Karpenter.</p>\n",
        escape(&title),
        w.jobs,
        escape(&w.duration),
        escape(&w.start),
        w.seed,
        escape(&w.region)
    ));
    let saving = if t.cost_usd > 0.0 {
        format!("{:.0}%", (t.cost_usd - s.cost_usd) / t.cost_usd * 100.0)
    } else {
        "–".into()
    };
    out.push_str(&format!(
        "<div class=\"headline\"><div>transient<div class=\"n\">${}</div></div><div>shared<div class=\"n\">${}</div></div><div>saving<div class=\"n\">{}</div></div><div>wait p90<div class=\"n\">{} → {}</div></div></div>\n",
        money(t.cost_usd),
        money(s.cost_usd),
        saving,
        super::span(t.wait_seconds.p90),
        super::span(s.wait_seconds.p90)
    ));
    out.push_str("<div class=\"charts\">\n");
    for c in charts(report) {
        out.push_str(&c);
        out.push('\n');
    }
    out.push_str("</div>\n");
    for table in tables(report) {
        out.push_str(&format!("<h3>{}</h3>\n", escape(&table.title)));
        if let Some(n) = &table.note {
            out.push_str(&format!("<p>{}</p>\n", escape(n)));
        }
        out.push_str("<table><tr>");
        for h in &table.head {
            out.push_str(&format!("<th>{}</th>", escape(h)));
        }
        out.push_str("</tr>\n");
        for row in &table.rows {
            out.push_str("<tr>");
            for cell in row {
                out.push_str(&format!("<td>{}</td>", escape(cell)));
            }
            out.push_str("</tr>\n");
        }
        out.push_str("</table>\n");
    }
    out.push_str("<h2>Assumptions</h2>\n<ul>\n");
    for a in assumptions(report) {
        out.push_str(&format!("<li>{}</li>\n", escape(&a)));
    }
    out.push_str("</ul>\n<h2>How to read this report</h2>\n<ul>\n");
    for r in READING {
        out.push_str(&format!("<li>{}</li>\n", inline(r)));
    }
    out.push_str("</ul>\n</body></html>\n");
    out
}
