//! Two chart kinds as inline SVG, sized and labelled for a slide: lines over time (one
//! point per hour, the x axis in days or hours) and grouped bars (one group per category).
//! No script, no external font or stylesheet: the report is one self-contained file.

use std::fmt::Write;

const WIDTH: f64 = 760.0;
const HEIGHT: f64 = 340.0;
const LEFT: f64 = 70.0;
const RIGHT: f64 = 20.0;
const TOP: f64 = 62.0;
const BOTTOM: f64 = 56.0;

pub struct Series<'a> {
    pub name: &'a str,
    pub color: &'a str,
    pub values: Vec<f64>,
}

pub fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// An axis top and tick step: 1, 2, 2.5 or 5 × a power of ten, about five ticks.
fn nice_axis(max: f64) -> (f64, f64) {
    if max.is_nan() || max <= 0.0 || !max.is_finite() {
        return (1.0, 0.2);
    }
    let raw = max / 5.0;
    let magnitude = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 2.5, 5.0, 10.0]
        .iter()
        .map(|m| m * magnitude)
        .find(|s| *s >= raw)
        .unwrap_or(10.0 * magnitude);
    ((max / step).ceil() * step, step)
}

/// The y axis for every value of `series`, drawn; returns its top.
fn series_axis(out: &mut String, series: &[Series], format: &dyn Fn(f64) -> String) -> f64 {
    let max = series
        .iter()
        .flat_map(|s| s.values.iter().copied())
        .fold(0.0, f64::max);
    let (top, step) = nice_axis(max);
    y_axis(out, top, step, format);
    top
}

fn frame(out: &mut String, title: &str, y_label: &str) {
    let _ = write!(
        out,
        r##"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {HEIGHT}" width="{WIDTH}" height="{HEIGHT}" font-family="Helvetica, Arial, sans-serif" font-size="12" role="img" aria-label="{t}">"##,
        t = escape(title)
    );
    let _ = write!(
        out,
        r##"<rect width="{WIDTH}" height="{HEIGHT}" fill="#ffffff"/><text x="{LEFT}" y="22" font-size="16" font-weight="bold" fill="#222">{}</text>"##,
        escape(title)
    );
    let _ = write!(
        out,
        r##"<text transform="translate(16,{y}) rotate(-90)" text-anchor="middle" fill="#444">{}</text>"##,
        escape(y_label),
        y = TOP + (HEIGHT - TOP - BOTTOM) / 2.0
    );
}

fn y_axis(out: &mut String, top: f64, step: f64, format: &dyn Fn(f64) -> String) {
    let plot_h = HEIGHT - TOP - BOTTOM;
    let mut v = 0.0;
    while v <= top + step / 2.0 {
        let y = TOP + plot_h - v / top * plot_h;
        let _ = write!(
            out,
            r##"<line x1="{LEFT}" x2="{x2}" y1="{y:.1}" y2="{y:.1}" stroke="#e3e3e3"/><text x="{tx}" y="{ty:.1}" text-anchor="end" fill="#555">{}</text>"##,
            escape(&format(v)),
            x2 = WIDTH - RIGHT,
            tx = LEFT - 6.0,
            ty = y + 4.0
        );
        v += step;
    }
}

/// The x axis line, the legend and the end of the `<svg>`.
fn close(out: &mut String, plot_h: f64, series: &[Series]) {
    let _ = write!(
        out,
        r##"<line x1="{LEFT}" x2="{x2}" y1="{y}" y2="{y}" stroke="#333"/>"##,
        x2 = WIDTH - RIGHT,
        y = TOP + plot_h
    );
    legend(out, series);
    out.push_str("</svg>");
}

fn legend(out: &mut String, series: &[Series]) {
    let mut x = WIDTH - RIGHT;
    for s in series.iter().rev() {
        let width = 22.0 + 7.0 * s.name.chars().count() as f64;
        x -= width;
        let _ = write!(
            out,
            r##"<rect x="{x:.1}" y="30" width="12" height="12" fill="{c}"/><text x="{tx:.1}" y="40" fill="#333">{n}</text>"##,
            c = s.color,
            tx = x + 16.0,
            n = escape(s.name)
        );
    }
}

/// Lines over `hours` hourly points; the x axis is labelled in days (or hours for spans
/// under two days).
pub fn line_chart(
    title: &str,
    y_label: &str,
    series: &[Series],
    format: &dyn Fn(f64) -> String,
) -> String {
    let mut out = String::new();
    frame(&mut out, title, y_label);
    let hours = series
        .iter()
        .map(|s| s.values.len())
        .max()
        .unwrap_or(0)
        .max(1);
    let top = series_axis(&mut out, series, format);
    let plot_w = WIDTH - LEFT - RIGHT;
    let plot_h = HEIGHT - TOP - BOTTOM;
    let x_of = |h: f64| LEFT + h / hours as f64 * plot_w;
    // x ticks: days when the span is two days or more, else hours.
    let (unit, unit_hours) = if hours >= 48 {
        ("day", 24)
    } else {
        ("hour", 1)
    };
    let units = hours / unit_hours;
    let every = [1, 2, 5, 7, 10, 14, 30, 60, 90]
        .into_iter()
        .find(|e| units / e <= 12)
        .unwrap_or(180);
    for u in (0..=units).step_by(every) {
        let x = x_of((u * unit_hours) as f64);
        let _ = write!(
            out,
            r##"<line x1="{x:.1}" x2="{x:.1}" y1="{y1}" y2="{y2}" stroke="#999"/><text x="{x:.1}" y="{ty}" text-anchor="middle" fill="#555">{u}</text>"##,
            y1 = TOP + plot_h,
            y2 = TOP + plot_h + 5.0,
            ty = TOP + plot_h + 18.0
        );
    }
    let _ = write!(
        out,
        r##"<text x="{x}" y="{y}" text-anchor="middle" fill="#444">{unit}s since start</text>"##,
        x = LEFT + plot_w / 2.0,
        y = HEIGHT - 12.0
    );
    for s in series {
        let mut points = String::new();
        for (h, v) in s.values.iter().enumerate() {
            let y = TOP + plot_h - v / top * plot_h;
            let _ = write!(points, "{:.1},{:.1} ", x_of(h as f64 + 0.5), y);
        }
        let _ = write!(
            out,
            r##"<polyline fill="none" stroke="{}" stroke-width="1.5" points="{}"/>"##,
            s.color,
            points.trim_end()
        );
    }
    close(&mut out, plot_h, series);
    out
}

/// Grouped bars: one group per label, one bar per series; values printed above bars.
pub fn bar_chart(
    title: &str,
    y_label: &str,
    groups: &[String],
    series: &[Series],
    format: &dyn Fn(f64) -> String,
) -> String {
    let mut out = String::new();
    frame(&mut out, title, y_label);
    let top = series_axis(&mut out, series, format);
    let plot_w = WIDTH - LEFT - RIGHT;
    let plot_h = HEIGHT - TOP - BOTTOM;
    let group_w = plot_w / groups.len().max(1) as f64;
    let bar_w = (group_w * 0.8 / series.len().max(1) as f64).min(48.0);
    for (g, label) in groups.iter().enumerate() {
        let left = LEFT + g as f64 * group_w + (group_w - bar_w * series.len() as f64) / 2.0;
        for (i, s) in series.iter().enumerate() {
            let v = s.values.get(g).copied().unwrap_or(0.0);
            let h = v / top * plot_h;
            let x = left + i as f64 * bar_w;
            let y = TOP + plot_h - h;
            let _ = write!(
                out,
                r##"<rect x="{x:.1}" y="{y:.1}" width="{w:.1}" height="{h:.1}" fill="{c}"><title>{n}: {val}</title></rect>"##,
                w = bar_w - 2.0,
                c = s.color,
                n = escape(s.name),
                val = escape(&format(v))
            );
            if series.len() <= 4 {
                let _ = write!(
                    out,
                    r##"<text x="{tx:.1}" y="{ty:.1}" text-anchor="middle" font-size="10" fill="#333">{}</text>"##,
                    escape(&format(v)),
                    tx = x + (bar_w - 2.0) / 2.0,
                    ty = y - 3.0
                );
            }
        }
        let _ = write!(
            out,
            r##"<text x="{x:.1}" y="{y}" text-anchor="middle" fill="#333">{}</text>"##,
            escape(label),
            x = LEFT + (g as f64 + 0.5) * group_w,
            y = TOP + plot_h + 18.0
        );
    }
    close(&mut out, plot_h, series);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn axes_round_up_to_nice_numbers() {
        assert_eq!(nice_axis(37.0), (40.0, 10.0));
        assert_eq!(nice_axis(0.8), (0.8, 0.2));
        assert_eq!(nice_axis(1234.0), (1250.0, 250.0));
        assert_eq!(nice_axis(0.0), (1.0, 0.2));
    }

    #[test]
    fn charts_are_self_contained_svg() {
        let s = [Series {
            name: "a & b",
            color: "#123456",
            values: vec![1.0, 3.0, 2.0],
        }];
        let line = line_chart("T", "nodes", &s, &|v| format!("{v}"));
        assert!(line.starts_with("<svg") && line.ends_with("</svg>"));
        assert!(line.contains("a &amp; b") && line.contains("<polyline"));
        let bars = bar_chart(
            "T",
            "USD",
            &["x".into(), "y".into(), "z".into()],
            &s,
            &|v| format!("{v}"),
        );
        assert_eq!(
            bars.matches("<rect x=").count(),
            3 + 1,
            "three bars and a legend swatch"
        );
    }
}
