//! Server-rendered SVG time-series line charts, for the Container Insights pages.
//!
//! A chart is complete without JavaScript or the stylesheet (a person can save it into a
//! report): title, unit, y axis with round ticks and light gridlines, UTC time labels, a
//! legend, gaps where data is missing and an optional threshold line, all drawn with SVG
//! presentation attributes (the console's CSP forbids inline `style=`). The stylesheet
//! only refines it (`assets/insights.css`, classes `chart-*`), and `assets/charts.js`
//! adds a hover read-out from the data the SVG carries (`data-points`, `data-plot`,
//! `data-domain`). Everything here is a pure function of its inputs so the geometry can be
//! unit-tested.

use std::fmt::Write;

use chrono::{DateTime, Timelike, Utc};
use serde_json::{json, Value};

/// A CloudWatch unit, as far as charts care: it decides the y axis and number format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    /// 0–100 axis (extended if data goes beyond), values as `92.5 %`.
    Percent,
    /// Whole-number ticks.
    Count,
    /// Binary-scaled ticks (KiB, MiB, GiB).
    Bytes,
    /// CloudWatch's `None`: plain numbers.
    None,
}

impl Unit {
    /// The CloudWatch name, shown as the axis' unit.
    pub fn name(self) -> &'static str {
        match self {
            Unit::Percent => "Percent",
            Unit::Count => "Count",
            Unit::Bytes => "Bytes",
            Unit::None => "None",
        }
    }
}

/// A horizontal reference line, e.g. 90 % "threshold".
#[derive(Debug, Clone, PartialEq)]
pub struct Threshold {
    pub value: f64,
    pub label: String,
}

/// What a chart shows, besides its data.
#[derive(Debug, Clone, PartialEq)]
pub struct ChartSpec {
    /// Prefix of the ids inside the SVG (`<id>-title`); unique on the page.
    pub id: String,
    pub title: String,
    /// Under the title, e.g. "Average, 1-minute period".
    pub subtitle: String,
    pub unit: Unit,
    /// The time range, epoch seconds; the x axis spans exactly this.
    pub start: i64,
    pub end: i64,
    /// Seconds per datapoint: points further apart than twice this are not joined.
    pub period: i64,
    pub threshold: Option<Threshold>,
}

/// One line: `points` are (epoch seconds, value), in any order.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    pub label: String,
    pub points: Vec<(i64, f64)>,
}

/// Okabe–Ito's colour-blind-safe palette (its yellow left out: unreadable on white).
/// Past the last colour, series repeat the colours dashed.
pub const PALETTE: [&str; 7] = [
    "#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#000000",
];

const WIDTH: f64 = 640.0;
const LEFT: f64 = 56.0;
const RIGHT: f64 = 20.0;
const TOP: f64 = 52.0;
const PLOT_HEIGHT: f64 = 170.0;
const LEGEND_ROW: f64 = 18.0;
/// Roughly the width of one character of the 11 px labels, for the legend's layout.
const CHAR_WIDTH: f64 = 6.4;
const LEGEND_LABEL_CHARS: usize = 40;

fn plot_width() -> f64 {
    WIDTH - LEFT - RIGHT
}

/// The y axis: `min..=max` in steps of `step` (ticks at every step).
#[derive(Debug, Clone, PartialEq)]
pub struct YAxis {
    pub min: f64,
    pub max: f64,
    pub step: f64,
}

impl YAxis {
    pub fn ticks(&self) -> Vec<f64> {
        let n = ((self.max - self.min) / self.step).round() as i64;
        (0..=n).map(|i| self.min + i as f64 * self.step).collect()
    }
}

/// The smallest 1-2-5 × 10ⁿ step at least `raw`.
pub fn nice_step(raw: f64) -> f64 {
    if !raw.is_finite() || raw <= 0.0 {
        return 1.0;
    }
    let magnitude = 10f64.powf(raw.log10().floor());
    [1.0, 2.0, 5.0, 10.0]
        .iter()
        .map(|m| m * magnitude)
        .find(|step| *step >= raw * (1.0 - 1e-9))
        .unwrap_or(10.0 * magnitude)
}

/// The y axis for data spanning `lo..=hi` (the threshold included): always from 0 for
/// non-negative data, 0–100 by 20 for percentages that fit, else 3–5 round steps.
pub fn y_axis(unit: Unit, lo: f64, hi: f64) -> YAxis {
    let lo = lo.min(0.0);
    if unit == Unit::Percent && lo >= 0.0 && hi <= 100.0 {
        return YAxis {
            min: 0.0,
            max: 100.0,
            step: 20.0,
        };
    }
    let hi = if hi > lo { hi } else { lo + 1.0 };
    let raw = (hi - lo) / 5.0;
    let step = match unit {
        Unit::Count => nice_step(raw).max(1.0),
        Unit::Bytes => {
            let scale = byte_scale(hi.max(-lo)).0;
            nice_step(raw / scale) * scale
        }
        Unit::Percent | Unit::None => nice_step(raw),
    };
    YAxis {
        min: (lo / step).floor() * step,
        max: (hi / step - 1e-9).ceil() * step,
        step,
    }
}

/// Label steps for the x axis, seconds: the smallest that gives at most `max_labels`.
const TIME_STEPS: [i64; 15] = [
    60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400, 172800, 345600, 604800,
];

/// Time ticks for `start..=end`: multiples of a sensible step (so they fall on round UTC
/// minutes, hours and midnights), each with its label — `HH:MM`, or the date (`Dec 04`)
/// at midnight when the range is a day or longer.
pub fn time_ticks(start: i64, end: i64, max_labels: i64) -> Vec<(i64, String)> {
    let span = (end - start).max(1);
    let step = TIME_STEPS
        .iter()
        .copied()
        .find(|s| span / s <= max_labels.max(1))
        .unwrap_or(604800);
    let mut t = start.div_euclid(step) * step;
    if t < start {
        t += step;
    }
    let mut ticks = Vec::new();
    while t <= end {
        ticks.push((t, time_label(t, span >= 86400)));
        t += step;
    }
    ticks
}

fn time_label(t: i64, dates_at_midnight: bool) -> String {
    let Some(time) = DateTime::<Utc>::from_timestamp(t, 0) else {
        return String::new();
    };
    if dates_at_midnight && time.hour() == 0 && time.minute() == 0 {
        time.format("%b %d").to_string()
    } else {
        time.format("%H:%M").to_string()
    }
}

/// Splits a series' points (sorted by time) wherever two consecutive points are more than
/// `2 × period` apart: a line is never drawn across missing data.
pub fn segments(points: &[(i64, f64)], period: i64) -> Vec<Vec<(i64, f64)>> {
    let mut out: Vec<Vec<(i64, f64)>> = Vec::new();
    let mut last: Option<i64> = None;
    for &(t, v) in points {
        if !v.is_finite() {
            continue;
        }
        match (last, out.last_mut()) {
            (Some(prev), Some(current)) if t - prev <= 2 * period.max(1) => current.push((t, v)),
            _ => out.push(vec![(t, v)]),
        }
        last = Some(t);
    }
    out
}

/// Escapes text for SVG/HTML content and attribute values.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

/// The divisor and suffix that show `v` bytes as at most four digits.
fn byte_scale(v: f64) -> (f64, &'static str) {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut scale = 1.0;
    for (i, name) in UNITS.iter().enumerate() {
        if v.abs() < scale * 1024.0 || i == UNITS.len() - 1 {
            return (scale, name);
        }
        scale *= 1024.0;
    }
    (scale, "TiB")
}

/// Shortest decimal form with at most `decimals` places (`2.50` → `2.5`, `3.0` → `3`).
fn trimmed(v: f64, decimals: usize) -> String {
    let s = format!("{v:.decimals$}");
    let s = if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    };
    if s == "-0" {
        "0".into()
    } else {
        s
    }
}

/// A value as a person reads it: `92.5 %`, `3`, `1.5 GiB`, `0.25`.
pub fn format_value(v: f64, unit: Unit) -> String {
    match unit {
        Unit::Percent => format!("{} %", trimmed(v, if v.abs() < 10.0 { 2 } else { 1 })),
        Unit::Count => trimmed(v, 1),
        Unit::Bytes => {
            let (scale, suffix) = byte_scale(v);
            format!("{} {suffix}", trimmed(v / scale, 1))
        }
        Unit::None => trimmed(v, if v.abs() < 10.0 { 3 } else { 1 }),
    }
}

/// A tick's label: as many decimals as the step needs, bytes in the step's binary unit.
fn tick_label(v: f64, axis: &YAxis, unit: Unit) -> String {
    let (v, step) = match unit {
        Unit::Bytes => {
            let (scale, suffix) = byte_scale(axis.max.abs().max(axis.min.abs()));
            let step = axis.step / scale;
            return format!("{} {suffix}", trimmed(v / scale, decimals_for(step)));
        }
        _ => (v, axis.step),
    };
    trimmed(v, decimals_for(step))
}

fn decimals_for(step: f64) -> usize {
    if step >= 1.0 {
        0
    } else {
        (-step.log10().floor()) as usize
    }
}

/// Maps data to the plot's pixels.
struct Scale {
    start: i64,
    end: i64,
    axis: YAxis,
}

impl Scale {
    fn x(&self, t: i64) -> f64 {
        let span = (self.end - self.start).max(1) as f64;
        LEFT + (t - self.start) as f64 / span * plot_width()
    }

    fn y(&self, v: f64) -> f64 {
        let span = self.axis.max - self.axis.min;
        TOP + PLOT_HEIGHT - (v - self.axis.min) / span * PLOT_HEIGHT
    }
}

/// Where each legend entry goes: (x, row), wrapping at the chart's width.
fn legend_layout(labels: &[String]) -> Vec<(f64, usize)> {
    let mut x = LEFT;
    let mut row = 0;
    labels
        .iter()
        .map(|label| {
            let width =
                22.0 + label.chars().count().min(LEGEND_LABEL_CHARS) as f64 * CHAR_WIDTH + 16.0;
            if x + width > WIDTH - RIGHT && x > LEFT {
                x = LEFT;
                row += 1;
            }
            let at = (x, row);
            x += width;
            at
        })
        .collect()
}

fn short_label(label: &str) -> String {
    if label.chars().count() <= LEGEND_LABEL_CHARS {
        return label.to_string();
    }
    let mut s: String = label.chars().take(LEGEND_LABEL_CHARS - 1).collect();
    s.push('…');
    s
}

/// Rounds for the data attributes (the read-out shows at most three decimals).
fn rounded(v: f64) -> Value {
    let r = (v * 1000.0).round() / 1000.0;
    if r.fract() == 0.0 && r.abs() < 1e15 {
        json!(r as i64)
    } else {
        json!(r)
    }
}

/// The chart as SVG markup. `data-last` is the largest of the series' latest values and
/// `data-max` the largest value shown (both empty without data), so a test can read them
/// without parsing paths.
pub fn line_chart(spec: &ChartSpec, series: &[Series]) -> String {
    let end = spec.end.max(spec.start + 1);
    let mut sorted: Vec<Series> = series
        .iter()
        .map(|s| {
            let mut points: Vec<(i64, f64)> = s
                .points
                .iter()
                .copied()
                .filter(|(t, v)| v.is_finite() && *t >= spec.start && *t <= end)
                .collect();
            points.sort_by_key(|p| p.0);
            points.dedup_by_key(|p| p.0);
            Series {
                label: s.label.clone(),
                points,
            }
        })
        .collect();
    sorted.retain(|s| !s.label.is_empty() || !s.points.is_empty());
    let values = || sorted.iter().flat_map(|s| s.points.iter().map(|p| p.1));
    let has_data = values().next().is_some();
    let data_max = values().fold(f64::NEG_INFINITY, f64::max);
    let data_min = values().fold(f64::INFINITY, f64::min);
    let last = sorted
        .iter()
        .filter_map(|s| s.points.last().map(|p| p.1))
        .fold(f64::NEG_INFINITY, f64::max);
    let threshold = spec.threshold.as_ref().map(|t| t.value);
    let (lo, hi) = if has_data {
        (
            data_min,
            data_max.max(threshold.unwrap_or(f64::NEG_INFINITY)),
        )
    } else {
        (0.0, threshold.unwrap_or(0.0))
    };
    let axis = y_axis(spec.unit, lo, hi);
    let scale = Scale {
        start: spec.start,
        end,
        axis,
    };

    let labels: Vec<String> = sorted.iter().map(|s| short_label(&s.label)).collect();
    let legend = legend_layout(&labels);
    let rows = legend.iter().map(|l| l.1 + 1).max().unwrap_or(0);
    let axis_bottom = TOP + PLOT_HEIGHT;
    let legend_top = axis_bottom + 40.0;
    let height = legend_top + rows as f64 * LEGEND_ROW + 4.0;
    let id = escape(&spec.id);
    let attr = |v: Option<f64>| v.map(|v| trimmed(v, 3)).unwrap_or_default();

    let mut svg = String::with_capacity(4096);
    let points_json = Value::Array(
        sorted
            .iter()
            .enumerate()
            .map(|(i, s)| {
                json!({
                    "l": s.label,
                    "c": PALETTE[i % PALETTE.len()],
                    "p": s.points.iter().map(|(t, v)| json!([t, rounded(*v)])).collect::<Vec<_>>(),
                })
            })
            .collect(),
    );
    let _ = write!(
        svg,
        r##"<svg xmlns="http://www.w3.org/2000/svg" class="chart" id="{id}-svg" viewBox="0 0 {WIDTH} {height}" width="{WIDTH}" height="{height}" role="img" aria-labelledby="{id}-title {id}-desc" font-family="system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif" font-size="11" fill="#16191f" data-unit="{unit}" data-last="{last}" data-max="{max}" data-period="{period}" data-plot="{LEFT} {TOP} {pw} {PLOT_HEIGHT}" data-domain="{start} {end} {ymin} {ymax}" data-points="{points}">"##,
        unit = spec.unit.name(),
        last = attr(has_data.then_some(last)),
        max = attr(has_data.then_some(data_max)),
        period = spec.period,
        pw = plot_width(),
        start = spec.start,
        ymin = trimmed(scale.axis.min, 6),
        ymax = trimmed(scale.axis.max, 6),
        points = escape(&points_json.to_string()),
    );
    let _ = write!(
        svg,
        r#"<title id="{id}-title">{title}</title><desc id="{id}-desc">{desc}</desc>"#,
        title = escape(&spec.title),
        desc = escape(&describe(
            spec,
            &sorted,
            has_data.then_some(last),
            has_data.then_some(data_max)
        )),
    );
    let _ = write!(
        svg,
        r##"<text class="chart-title" x="{LEFT}" y="18" font-size="14" font-weight="700">{title}</text><text class="chart-subtitle" x="{LEFT}" y="34" fill="#5f6b7a">{subtitle}</text><text class="chart-utc" x="{right}" y="34" text-anchor="end" fill="#5f6b7a">Times in UTC</text><text class="chart-unit" x="{ux}" y="{uy}" text-anchor="end" fill="#5f6b7a">{unit}</text>"##,
        title = escape(&spec.title),
        subtitle = escape(&spec.subtitle),
        right = WIDTH - RIGHT,
        ux = LEFT - 8.0,
        uy = TOP - 8.0,
        unit = spec.unit.name(),
    );

    // Gridlines and y ticks.
    svg.push_str(r##"<g class="chart-grid" stroke="#e9ebed" stroke-width="1">"##);
    for v in scale.axis.ticks() {
        let y = scale.y(v);
        let _ = write!(
            svg,
            r#"<line x1="{LEFT}" y1="{y:.1}" x2="{x2}" y2="{y:.1}"/>"#,
            x2 = WIDTH - RIGHT
        );
    }
    svg.push_str("</g>");
    svg.push_str(r##"<g class="chart-y" text-anchor="end" fill="#5f6b7a">"##);
    for v in scale.axis.ticks() {
        let _ = write!(
            svg,
            r#"<text x="{x}" y="{y:.1}">{label}</text>"#,
            x = LEFT - 8.0,
            y = scale.y(v) + 4.0,
            label = escape(&tick_label(v, &scale.axis, spec.unit)),
        );
    }
    svg.push_str("</g>");

    // X axis: baseline, tick marks, labels.
    let _ = write!(
        svg,
        r##"<g class="chart-x" fill="#5f6b7a"><line x1="{LEFT}" y1="{axis_bottom}" x2="{x2}" y2="{axis_bottom}" stroke="#8c8c94" stroke-width="1"/>"##,
        x2 = WIDTH - RIGHT
    );
    let max_labels = (plot_width() / 70.0).floor() as i64;
    for (t, label) in time_ticks(spec.start, end, max_labels) {
        let x = scale.x(t);
        let _ = write!(
            svg,
            r##"<line x1="{x:.1}" y1="{axis_bottom}" x2="{x:.1}" y2="{y2}" stroke="#8c8c94" stroke-width="1"/><text x="{x:.1}" y="{ty}" text-anchor="middle" data-t="{t}">{label}</text>"##,
            y2 = axis_bottom + 4.0,
            ty = axis_bottom + 17.0,
            label = escape(&label),
        );
    }
    svg.push_str("</g>");

    if let Some(t) = &spec.threshold {
        let y = scale.y(t.value);
        let _ = write!(
            svg,
            r##"<g class="chart-threshold" data-v="{v}"><line x1="{LEFT}" y1="{y:.1}" x2="{x2}" y2="{y:.1}" stroke="#d91515" stroke-width="1.5" stroke-dasharray="6 4"/><text x="{x2}" y="{ty:.1}" text-anchor="end" fill="#d91515">{label}</text></g>"##,
            v = trimmed(t.value, 3),
            x2 = WIDTH - RIGHT - 2.0,
            ty = y - 4.0,
            label = escape(&format!("{} {}", t.label, format_value(t.value, spec.unit))),
        );
    }

    for (i, s) in sorted.iter().enumerate() {
        let colour = PALETTE[i % PALETTE.len()];
        let dash = if i >= PALETTE.len() {
            r#" stroke-dasharray="5 3""#
        } else {
            ""
        };
        let _ = write!(
            svg,
            r#"<g class="chart-series" data-series="{i}" data-label="{label}" data-last="{last}">"#,
            label = escape(&s.label),
            last = attr(s.points.last().map(|p| p.1)),
        );
        for segment in segments(&s.points, spec.period) {
            if let [(t, v)] = segment.as_slice() {
                let _ = write!(
                    svg,
                    r#"<circle cx="{x:.1}" cy="{y:.1}" r="2.5" fill="{colour}"/>"#,
                    x = scale.x(*t),
                    y = scale.y(*v),
                );
                continue;
            }
            let d: Vec<String> = segment
                .iter()
                .enumerate()
                .map(|(j, (t, v))| {
                    format!(
                        "{}{:.1} {:.1}",
                        if j == 0 { "M" } else { "L" },
                        scale.x(*t),
                        scale.y(*v)
                    )
                })
                .collect();
            let _ = write!(
                svg,
                r#"<path d="{d}" fill="none" stroke="{colour}" stroke-width="2" stroke-linejoin="round" stroke-linecap="round"{dash}/>"#,
                d = d.join(" "),
            );
        }
        svg.push_str("</g>");
    }

    if !has_data {
        let _ = write!(
            svg,
            r##"<text class="chart-empty" x="{x}" y="{y}" text-anchor="middle" font-size="13" fill="#5f6b7a">No data for this period</text>"##,
            x = LEFT + plot_width() / 2.0,
            y = TOP + PLOT_HEIGHT / 2.0,
        );
    }

    svg.push_str(r#"<g class="chart-legend">"#);
    for (i, (label, (x, row))) in labels.iter().zip(&legend).enumerate() {
        let colour = PALETTE[i % PALETTE.len()];
        let y = legend_top + *row as f64 * LEGEND_ROW;
        let dash = if i >= PALETTE.len() {
            r#" stroke-dasharray="5 3""#
        } else {
            ""
        };
        let _ = write!(
            svg,
            r#"<line x1="{x}" y1="{ly}" x2="{x2}" y2="{ly}" stroke="{colour}" stroke-width="3"{dash}/><text x="{tx}" y="{ty}">{label}</text>"#,
            ly = y - 4.0,
            x2 = x + 16.0,
            tx = x + 22.0,
            ty = y,
            label = escape(label),
        );
    }
    svg.push_str("</g>");

    // Where the read-out listens (transparent; charts.js draws into the chart).
    let _ = write!(
        svg,
        r##"<rect class="chart-hit" x="{LEFT}" y="{TOP}" width="{pw}" height="{PLOT_HEIGHT}" fill="#ffffff" fill-opacity="0"/></svg>"##,
        pw = plot_width(),
    );
    svg
}

/// The chart in words, for screen readers (`<desc>`).
fn describe(spec: &ChartSpec, series: &[Series], last: Option<f64>, max: Option<f64>) -> String {
    let (Some(last), Some(max)) = (last, max) else {
        return format!("{}: no data for this period.", spec.title);
    };
    let names: Vec<&str> = series.iter().map(|s| s.label.as_str()).collect();
    format!(
        "{}, {}: {}. Latest {}, highest {}.",
        spec.title,
        spec.subtitle,
        names.join(", "),
        format_value(last, spec.unit),
        format_value(max, spec.unit)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(unit: Unit) -> ChartSpec {
        ChartSpec {
            id: "chart-x".into(),
            title: "CPU utilization".into(),
            subtitle: "Average, 1-minute period".into(),
            unit,
            start: 1_764_800_000,
            end: 1_764_803_600,
            period: 60,
            threshold: None,
        }
    }

    #[test]
    fn steps_are_one_two_five() {
        assert_eq!(nice_step(0.7), 1.0);
        assert_eq!(nice_step(1.0), 1.0);
        assert_eq!(nice_step(1.3), 2.0);
        assert_eq!(nice_step(3.0), 5.0);
        assert_eq!(nice_step(7.0), 10.0);
        assert_eq!(nice_step(230.0), 500.0);
        assert!((nice_step(0.03) - 0.05).abs() < 1e-12);
        assert_eq!(nice_step(0.0), 1.0);
    }

    #[test]
    fn percentages_use_zero_to_hundred() {
        let a = y_axis(Unit::Percent, 3.0, 92.5);
        assert_eq!(a.ticks(), vec![0.0, 20.0, 40.0, 60.0, 80.0, 100.0]);
        // Above 100 (usage over capacity), round steps from the data.
        let a = y_axis(Unit::Percent, 0.0, 130.0);
        assert_eq!((a.min, a.max, a.step), (0.0, 150.0, 50.0));
    }

    #[test]
    fn counts_get_whole_round_ticks_from_zero() {
        let a = y_axis(Unit::Count, 2.0, 3.0);
        assert_eq!((a.min, a.max, a.step), (0.0, 3.0, 1.0));
        let a = y_axis(Unit::Count, 0.0, 0.0);
        assert_eq!((a.min, a.max, a.step), (0.0, 1.0, 1.0));
        let a = y_axis(Unit::Count, 4.0, 37.0);
        assert_eq!((a.min, a.max, a.step), (0.0, 40.0, 10.0));
        let a = y_axis(Unit::None, 0.0, 0.42);
        assert_eq!(a.step, 0.1);
        assert!((a.max - 0.5).abs() < 1e-9);
    }

    #[test]
    fn bytes_step_in_binary_units() {
        let gib = 1024.0 * 1024.0 * 1024.0;
        let a = y_axis(Unit::Bytes, 0.0, 3.3 * gib);
        assert_eq!(a.step, gib);
        assert_eq!(a.max, 4.0 * gib);
        assert_eq!(tick_label(2.0 * gib, &a, Unit::Bytes), "2 GiB");
        assert_eq!(format_value(1.5 * gib, Unit::Bytes), "1.5 GiB");
    }

    #[test]
    fn time_ticks_fall_on_round_utc_times() {
        // 1 hour: every 10 minutes, HH:MM.
        let start = 1_764_849_720; // 2025-12-04 12:02 UTC
        let ticks = time_ticks(start, start + 3600, 8);
        assert_eq!(ticks.first().unwrap().1, "12:10");
        assert!(ticks.iter().all(|(t, _)| t % 600 == 0));
        assert_eq!(ticks.len(), 6);
        // 15 minutes: every 2 minutes.
        let ticks = time_ticks(start, start + 900, 8);
        assert!(ticks.iter().all(|(t, _)| t % 120 == 0));
        // A week: one label a day, as dates.
        let ticks = time_ticks(start, start + 7 * 86400, 8);
        assert!(
            ticks.iter().all(|(t, l)| t % 86400 == 0 && l.len() == 6),
            "{ticks:?}"
        );
        assert_eq!(ticks[0].1, "Dec 05");
        // A day: three-hourly, the date at midnight.
        let ticks = time_ticks(start, start + 86400, 8);
        assert!(ticks.iter().any(|(_, l)| l == "Dec 05"));
        assert!(ticks.iter().any(|(_, l)| l == "15:00"));
    }

    #[test]
    fn gaps_longer_than_two_periods_split_the_line() {
        let points = [
            (0, 1.0),
            (60, 2.0),
            (120, 3.0),
            (300, 4.0),
            (360, f64::NAN),
            (420, 5.0),
        ];
        let s = segments(&points, 60);
        assert_eq!(s.len(), 2, "{s:?}");
        assert_eq!(s[0].len(), 3);
        // 300 → 420 is exactly two periods: joined (the NaN is skipped).
        assert_eq!(s[1], vec![(300, 4.0), (420, 5.0)]);
        assert!(segments(&[], 60).is_empty());
    }

    #[test]
    fn values_scale_into_the_plot() {
        let s = Scale {
            start: 0,
            end: 100,
            axis: y_axis(Unit::Percent, 0.0, 50.0),
        };
        assert_eq!(s.x(0), LEFT);
        assert_eq!(s.x(100), WIDTH - RIGHT);
        assert_eq!(s.y(0.0), TOP + PLOT_HEIGHT);
        assert_eq!(s.y(100.0), TOP);
        assert_eq!(s.y(50.0), TOP + PLOT_HEIGHT / 2.0);
    }

    #[test]
    fn text_is_escaped() {
        assert_eq!(
            escape(r#"<a href="x">&'"#),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;"
        );
        let mut sp = spec(Unit::Count);
        sp.title = "<script>alert(1)</script>".into();
        let svg = line_chart(
            &sp,
            &[Series {
                label: "node\"><b>".into(),
                points: vec![(sp.start + 60, 1.0)],
            }],
        );
        assert!(!svg.contains("<script>"));
        assert!(!svg.contains("<b>"));
        assert!(svg.contains("&lt;script&gt;"));
        assert!(!svg.contains("style="), "CSP forbids inline styles");
    }

    #[test]
    fn charts_carry_last_and_max_and_split_paths() {
        let mut sp = spec(Unit::Percent);
        sp.threshold = Some(Threshold {
            value: 90.0,
            label: "threshold".into(),
        });
        let s = sp.start;
        let svg = line_chart(
            &sp,
            &[
                Series {
                    label: "ins-node-a".into(),
                    // Newest first, as GetMetricData answers by default.
                    points: vec![
                        (s + 900, 92.5),
                        (s + 840, 99.0),
                        (s + 120, 10.0),
                        (s + 60, 5.0),
                    ],
                },
                Series {
                    label: "ins-node-b".into(),
                    points: vec![(s + 60, 20.0), (s + 900, 40.0)],
                },
            ],
        );
        assert!(svg.contains(r#"data-last="92.5""#), "{svg}");
        assert!(svg.contains(r#"data-max="99""#));
        // node-a: two segments (a gap from +120 to +840); node-b: two lone points.
        let series_a = svg.split(r#"data-series="0""#).nth(1).unwrap();
        let series_a = series_a.split("</g>").next().unwrap();
        assert_eq!(series_a.matches("<path").count(), 2);
        let series_b = svg.split(r#"data-series="1""#).nth(1).unwrap();
        let series_b = series_b.split("</g>").next().unwrap();
        assert_eq!(series_b.matches("<circle").count(), 2);
        assert!(svg.contains("threshold 90 %"));
        assert!(svg.contains(">ins-node-b</text>"));
        assert!(!svg.contains("No data for this period"));
    }

    #[test]
    fn empty_charts_say_so() {
        let svg = line_chart(&spec(Unit::Percent), &[]);
        assert!(svg.contains("No data for this period"));
        assert!(svg.contains(r#"data-last="""#));
        let svg = line_chart(
            &spec(Unit::Count),
            &[Series {
                label: "Nodes".into(),
                points: vec![],
            }],
        );
        assert!(svg.contains("No data for this period"));
    }

    #[test]
    fn values_read_naturally() {
        assert_eq!(format_value(92.5, Unit::Percent), "92.5 %");
        assert_eq!(format_value(4.256, Unit::Percent), "4.26 %");
        assert_eq!(format_value(3.0, Unit::Count), "3");
        assert_eq!(format_value(0.0, Unit::None), "0");
    }

    #[test]
    fn legends_wrap() {
        let labels: Vec<String> = (0..12)
            .map(|i| format!("ip-10-0-0-{i}.ec2.internal"))
            .collect();
        let layout = legend_layout(&labels);
        assert!(layout.iter().all(|(x, _)| *x >= LEFT && *x < WIDTH - RIGHT));
        assert!(layout.last().unwrap().1 >= 2);
    }
}
