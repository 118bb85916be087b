//! Prometheus text exposition helpers shared by sparkyard's `/metrics` listener.
//!
//! prometheus-client 0.24 writes OpenMetrics text: counters are declared without their
//! `_total` suffix (`# TYPE x counter` then `x_total 3`), info metrics as `info`, and the
//! output ends with `# EOF`; it also writes label values as they are, unescaped. A scrape
//! that asks for (and a server that answers with) the classic `text/plain; version=0.0.4`
//! format needs each `# TYPE` line to name the samples it declares. [`to_prometheus_text`]
//! turns OpenMetrics fragments from several registries into one 0.0.4 document, keeping
//! each metric family once; [`Escaped`] escapes label values for collectors that take
//! them from objects (labels, names, reasons).

use std::collections::HashSet;
use std::fmt::Write as _;

use prometheus_client::encoding::{
    DescriptorEncoder, EncodeLabelValue, LabelValueEncoder, NoLabelSet,
};
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Registry;

/// The content type of the classic Prometheus text format.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// A label value written with the text format's escapes (`\\`, `\"`, `\n`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Escaped(pub String);

impl EncodeLabelValue for Escaped {
    fn encode(&self, encoder: &mut LabelValueEncoder) -> Result<(), std::fmt::Error> {
        for c in self.0.chars() {
            match c {
                '\\' => encoder.write_str("\\\\")?,
                '"' => encoder.write_str("\\\"")?,
                '\n' => encoder.write_str("\\n")?,
                c => encoder.write_char(c)?,
            }
        }
        Ok(())
    }
}

/// One series' labels, in order.
pub type Labels = Vec<(String, Escaped)>;

/// Labels from `(name, value)` pairs.
pub fn labels(pairs: &[(&str, &str)]) -> Labels {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), Escaped(v.to_string())))
        .collect()
}

/// Whether a family's series are gauges or counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Gauge,
    /// Declared without `_total`; the encoder appends it to the samples.
    Counter,
}

/// A metric family computed at scrape time: its descriptor and its series.
#[derive(Debug, Clone)]
pub struct FamilyRows {
    pub name: &'static str,
    pub help: &'static str,
    pub kind: Kind,
    pub rows: Vec<(Labels, f64)>,
}

impl FamilyRows {
    pub fn gauge(name: &'static str, help: &'static str) -> FamilyRows {
        FamilyRows {
            name,
            help,
            kind: Kind::Gauge,
            rows: Vec::new(),
        }
    }

    pub fn counter(name: &'static str, help: &'static str) -> FamilyRows {
        FamilyRows {
            kind: Kind::Counter,
            ..FamilyRows::gauge(name, help)
        }
    }

    pub fn push(&mut self, labels: Labels, value: f64) {
        self.rows.push((labels, value));
    }
}

/// Writes families through a collector's encoder (each family's descriptor even when it
/// has no series, as kube-state-metrics does).
pub fn encode_families(
    encoder: &mut DescriptorEncoder,
    families: &[FamilyRows],
) -> Result<(), std::fmt::Error> {
    for family in families {
        let metric_type = match family.kind {
            Kind::Gauge => MetricType::Gauge,
            Kind::Counter => MetricType::Counter,
        };
        let mut metric = encoder.encode_descriptor(family.name, family.help, None, metric_type)?;
        for (labels, value) in &family.rows {
            let mut series = metric.encode_family(labels)?;
            match family.kind {
                Kind::Gauge => series.encode_gauge(value)?,
                Kind::Counter => series.encode_counter::<NoLabelSet, f64, f64>(value, None)?,
            }
        }
    }
    Ok(())
}

/// A registry's OpenMetrics text, without the `# EOF` line (a fragment of a scrape).
pub fn openmetrics(registry: &Registry) -> String {
    let mut out = String::new();
    let _ = prometheus_client::encoding::text::encode_registry(&mut out, registry);
    out
}

/// One family's lines, as read from an OpenMetrics fragment.
struct Block {
    name: String,
    help: Option<String>,
    kind: Option<String>,
    samples: Vec<String>,
}

fn split_blocks(text: &str) -> Vec<Block> {
    let mut blocks: Vec<Block> = Vec::new();
    for line in text.lines() {
        if line.is_empty() || line == "# EOF" {
            continue;
        }
        if let Some(rest) = line.strip_prefix("# ") {
            let mut parts = rest.splitn(3, ' ');
            let (Some(what), Some(name)) = (parts.next(), parts.next()) else {
                continue;
            };
            if !matches!(what, "HELP" | "TYPE" | "UNIT") {
                continue; // a plain comment
            }
            let tail = parts.next().unwrap_or("").to_string();
            if blocks.last().is_none_or(|b| b.name != name) {
                blocks.push(Block {
                    name: name.to_string(),
                    help: None,
                    kind: None,
                    samples: Vec::new(),
                });
            }
            let block = blocks.last_mut().expect("just pushed");
            match what {
                "HELP" => block.help = Some(tail),
                "TYPE" => block.kind = Some(tail),
                _ => {} // UNIT: not part of the 0.0.4 format (the name carries it)
            }
            continue;
        }
        if line.starts_with('#') {
            continue;
        }
        // An exemplar (` # {…} v`) is OpenMetrics only.
        let sample = match line.find(" # ") {
            Some(i) => &line[..i],
            None => line,
        };
        match blocks.last_mut() {
            Some(block) => block.samples.push(sample.to_string()),
            None => blocks.push(Block {
                name: String::new(),
                help: None,
                kind: None,
                samples: vec![sample.to_string()],
            }),
        }
    }
    blocks
}

/// Turns OpenMetrics fragments (prometheus-client's text output, with or without `# EOF`;
/// text already in the 0.0.4 format passes unchanged) into one document in the classic
/// Prometheus text format, version 0.0.4: a counter `x` is declared as `x_total`, an
/// info metric `x` as the gauge `x_info`, `# UNIT` and `# EOF` lines and exemplars are
/// dropped, and a help text's doubled final period (prometheus-client's `register` adds
/// one) is made single. A family already written by an earlier fragment is skipped, so every family
/// appears once.
pub fn to_prometheus_text<I, S>(fragments: I) -> String
where
    I: IntoIterator<Item = S>,
    S: AsRef<str>,
{
    let mut seen: HashSet<String> = HashSet::new();
    let mut out = String::new();
    for fragment in fragments {
        for block in split_blocks(fragment.as_ref()) {
            let (name, kind) = match block.kind.as_deref() {
                Some("counter") if !block.name.ends_with("_total") => {
                    (format!("{}_total", block.name), Some("counter"))
                }
                Some("info") => (format!("{}_info", block.name), Some("gauge")),
                Some("gauge") => (block.name.clone(), Some("gauge")),
                Some("counter") => (block.name.clone(), Some("counter")),
                Some("histogram") => (block.name.clone(), Some("histogram")),
                Some("summary") => (block.name.clone(), Some("summary")),
                Some(_) => (block.name.clone(), Some("untyped")),
                None => (block.name.clone(), None),
            };
            if !block.name.is_empty() && !seen.insert(name.clone()) {
                continue;
            }
            if !block.name.is_empty() {
                if let Some(help) = &block.help {
                    // `Registry::register` appends a period to the help text; help texts
                    // written as sentences would end in two.
                    let help = help
                        .strip_suffix('.')
                        .filter(|h| h.ends_with('.'))
                        .unwrap_or(help);
                    let _ = writeln!(out, "# HELP {name} {help}");
                }
                if let Some(kind) = kind {
                    let _ = writeln!(out, "# TYPE {name} {kind}");
                }
            }
            for sample in &block.samples {
                out.push_str(sample);
                out.push('\n');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use prometheus_client::metrics::counter::Counter;
    use prometheus_client::metrics::family::Family;
    use prometheus_client::metrics::histogram::Histogram;

    #[test]
    fn counters_are_declared_with_total_and_families_appear_once() {
        let mut registry = Registry::default();
        let requests: Family<Vec<(String, String)>, Counter> = Family::default();
        requests
            .get_or_create(&vec![("code".to_string(), "200".to_string())])
            .inc_by(3);
        registry.register("requests", "Requests.", requests);
        let latency = Histogram::new([0.5, 1.0]);
        latency.observe(0.7);
        registry.register("latency_seconds", "Latency.", latency);
        let first = openmetrics(&registry);
        let text = to_prometheus_text([first.clone() + "# EOF\n", first]);
        assert_eq!(
            text,
            "# HELP requests_total Requests.\n# TYPE requests_total counter\nrequests_total{code=\"200\"} 3\n\
             # HELP latency_seconds Latency.\n# TYPE latency_seconds histogram\n\
             latency_seconds_sum 0.7\nlatency_seconds_count 1\n\
             latency_seconds_bucket{le=\"0.5\"} 0\nlatency_seconds_bucket{le=\"1.0\"} 1\n\
             latency_seconds_bucket{le=\"+Inf\"} 1\n"
        );
    }

    #[test]
    fn label_values_are_escaped() {
        #[derive(Debug)]
        struct One;
        impl prometheus_client::collector::Collector for One {
            fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
                let mut f = FamilyRows::gauge("x", "X.");
                f.push(labels(&[("a", "q\"b\\s\nn")]), 1.0);
                encode_families(&mut encoder, &[f])
            }
        }
        let mut registry = Registry::default();
        registry.register_collector(Box::new(One));
        let text = to_prometheus_text([openmetrics(&registry)]);
        assert!(text.contains("x{a=\"q\\\"b\\\\s\\nn\"} 1"), "{text}");
    }

    #[test]
    fn text_already_in_the_classic_format_passes() {
        let classic = "# HELP a_total A.\n# TYPE a_total counter\na_total 1\n# HELP g G.\n# TYPE g gauge\ng{x=\"1\"} 2\n";
        assert_eq!(to_prometheus_text([classic]), classic);
    }
}
