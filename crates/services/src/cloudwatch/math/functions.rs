//! The metric math functions: the table of names and argument counts the parser checks,
//! and their evaluation.

use std::collections::BTreeMap;

use super::eval::{eval, map_values, scalar_series};
use super::parser::Node;
use super::{MathContext, MathError, Series, Value};

pub(crate) enum Arity {
    /// Supported, with this many arguments (inclusive range).
    Args(usize, usize),
    /// A real CloudWatch function sparkyard does not implement.
    Unsupported,
    Unknown,
}

pub(crate) fn arity(name: &str) -> Arity {
    match name {
        "METRICS" => Arity::Args(0, 1),
        "SUM" | "AVG" | "MIN" | "MAX" | "STDDEV" | "RATE" | "DIFF" | "DIFF_TIME" | "PERIOD"
        | "ABS" | "CEIL" | "FLOOR" | "LOG" | "LOG10" | "REMOVE_EMPTY" | "FIRST" | "LAST"
        | "TIME_SERIES" | "RUNNING_SUM" | "DATAPOINT_COUNT" | "EPOCH" | "MINUTE" | "HOUR" => {
            Arity::Args(1, 1)
        }
        "FILL" => Arity::Args(2, 2),
        "IF" => Arity::Args(2, 3),
        "SORT" => Arity::Args(3, 4),
        "SEARCH"
        | "ANOMALY_DETECTION_BAND"
        | "INSIGHT_RULE_METRIC"
        | "LAMBDA"
        | "SLICE"
        | "SERVICE_QUOTA"
        | "CONCAT"
        | "DAY"
        | "MONTH"
        | "YEAR" => Arity::Unsupported,
        _ => Arity::Unknown,
    }
}

#[derive(Debug, Clone, Copy)]
enum Agg {
    Sum,
    Avg,
    Min,
    Max,
    StdDev,
}

impl Agg {
    fn from_name(name: &str) -> Option<Agg> {
        Some(match name {
            "SUM" => Agg::Sum,
            "AVG" => Agg::Avg,
            "MIN" => Agg::Min,
            "MAX" => Agg::Max,
            "STDDEV" => Agg::StdDev,
            _ => return None,
        })
    }

    /// `None` for no values: no datapoint.
    fn apply(self, values: &[f64]) -> Option<f64> {
        if values.is_empty() {
            return None;
        }
        let n = values.len() as f64;
        let sum: f64 = values.iter().sum();
        Some(match self {
            Agg::Sum => sum,
            Agg::Avg => sum / n,
            Agg::Min => values.iter().copied().fold(f64::INFINITY, f64::min),
            Agg::Max => values.iter().copied().fold(f64::NEG_INFINITY, f64::max),
            Agg::StdDev => {
                let mean = sum / n;
                (values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n).sqrt()
            }
        })
    }
}

fn type_error(name: &str, expected: &str) -> MathError {
    MathError::new(format!(
        "Invalid argument for function {name}: expected {expected}"
    ))
}

pub(crate) fn call(name: &str, args: &[Node], ctx: &dyn MathContext) -> Result<Value, MathError> {
    if let Some(agg) = Agg::from_name(name) {
        return Ok(aggregate(agg, eval(&args[0], ctx)?));
    }
    match name {
        "METRICS" => metrics(args, ctx),
        "RATE" => per_series(name, eval(&args[0], ctx)?, |s| {
            pairwise(s, |(t0, v0), (t1, v1)| (v1 - v0) / (t1 - t0) as f64)
        }),
        "DIFF" => per_series(name, eval(&args[0], ctx)?, |s| {
            pairwise(s, |(_, v0), (_, v1)| v1 - v0)
        }),
        "DIFF_TIME" => per_series(name, eval(&args[0], ctx)?, |s| {
            pairwise(s, |(t0, _), (t1, _)| (t1 - t0) as f64)
        }),
        "RUNNING_SUM" => per_series(name, eval(&args[0], ctx)?, |s| {
            let mut total = 0.0;
            s.points
                .iter()
                .map(|&(t, v)| {
                    total += v;
                    (t, total)
                })
                .collect()
        }),
        "EPOCH" => per_series(name, eval(&args[0], ctx)?, |s| {
            s.points.iter().map(|&(t, _)| (t, t as f64)).collect()
        }),
        "MINUTE" => per_series(name, eval(&args[0], ctx)?, |s| {
            s.points
                .iter()
                .map(|&(t, _)| (t, t.rem_euclid(3600).div_euclid(60) as f64))
                .collect()
        }),
        "HOUR" => per_series(name, eval(&args[0], ctx)?, |s| {
            s.points
                .iter()
                .map(|&(t, _)| (t, t.rem_euclid(86_400).div_euclid(3600) as f64))
                .collect()
        }),
        "PERIOD" => match eval(&args[0], ctx)? {
            Value::Scalar(_) => Err(type_error(name, "a time series or an array of time series")),
            _ => Ok(Value::Scalar(ctx.period() as f64)),
        },
        "DATAPOINT_COUNT" => match eval(&args[0], ctx)? {
            Value::Series(s) => Ok(Value::Scalar(s.points.len() as f64)),
            _ => Err(type_error(name, "a time series")),
        },
        "ABS" => Ok(map_values(eval(&args[0], ctx)?, |v| Some(v.abs()))),
        "CEIL" => Ok(map_values(eval(&args[0], ctx)?, |v| Some(v.ceil()))),
        "FLOOR" => Ok(map_values(eval(&args[0], ctx)?, |v| Some(v.floor()))),
        "LOG" => Ok(map_values(eval(&args[0], ctx)?, |v| Some(v.ln()))),
        "LOG10" => Ok(map_values(eval(&args[0], ctx)?, |v| Some(v.log10()))),
        "TIME_SERIES" => match eval(&args[0], ctx)? {
            Value::Scalar(v) => Ok(Value::Series(scalar_series(v, ctx))),
            _ => Err(type_error(name, "a scalar")),
        },
        "FILL" => fill(args, ctx),
        "IF" => {
            let cond = eval(&args[0], ctx)?;
            let yes = eval(&args[1], ctx)?;
            let no = args.get(2).map(|n| eval(n, ctx)).transpose()?;
            if_value(cond, &yes, no.as_ref())
        }
        "REMOVE_EMPTY" => Ok(match eval(&args[0], ctx)? {
            Value::Array(xs) => {
                Value::Array(xs.into_iter().filter(|s| !s.points.is_empty()).collect())
            }
            other => other,
        }),
        "FIRST" | "LAST" => match eval(&args[0], ctx)? {
            Value::Array(xs) => {
                let pick = if name == "FIRST" {
                    xs.into_iter().next()
                } else {
                    xs.into_iter().last()
                };
                Ok(Value::Series(pick.unwrap_or_default()))
            }
            Value::Series(s) => Ok(Value::Series(s)),
            Value::Scalar(_) => Err(type_error(name, "an array of time series")),
        },
        "SORT" => sort(args, ctx),
        // The parser only lets known, supported names through.
        _ => Err(MathError::new(format!("Unknown function {name}"))),
    }
}

/// One series: a scalar over its points (no data if it has none). An array: a series with,
/// per timestamp, the aggregate over the array's series that have a point there.
fn aggregate(agg: Agg, value: Value) -> Value {
    match value {
        Value::Scalar(v) => Value::Scalar(agg.apply(&[v]).unwrap_or(v)),
        Value::Series(s) => {
            let values: Vec<f64> = s.points.iter().map(|p| p.1).collect();
            match agg.apply(&values) {
                Some(v) => Value::Scalar(v),
                None => Value::Series(Series::new(s.label, Vec::new())),
            }
        }
        Value::Array(xs) => {
            let mut by_time: BTreeMap<i64, Vec<f64>> = BTreeMap::new();
            for s in &xs {
                for &(t, v) in &s.points {
                    by_time.entry(t).or_default().push(v);
                }
            }
            let points = by_time
                .into_iter()
                .filter_map(|(t, vs)| agg.apply(&vs).map(|v| (t, v)))
                .collect();
            Value::Series(Series::new("", points))
        }
    }
}

/// `METRICS()` / `METRICS("filter")`: the request's queries whose id contains the filter.
fn metrics(args: &[Node], ctx: &dyn MathContext) -> Result<Value, MathError> {
    let filter = match args.first() {
        None => None,
        Some(Node::Str(s)) => Some(s.as_str()),
        Some(_) => return Err(type_error("METRICS", "a string")),
    };
    let mut out = Vec::new();
    for id in ctx.metric_ids() {
        if filter.is_some_and(|f| !id.contains(f)) {
            continue;
        }
        match ctx.value(&id) {
            Some(Value::Series(s)) => out.push(s),
            Some(Value::Array(xs)) => out.extend(xs),
            Some(Value::Scalar(v)) => {
                let mut s = scalar_series(v, ctx);
                s.label = id;
                out.push(s);
            }
            None => {}
        }
    }
    Ok(Value::Array(out))
}

/// Applies a series transform to a series, or to each element of an array (keeping labels).
fn per_series(
    name: &str,
    value: Value,
    f: impl Fn(&Series) -> Vec<(i64, f64)>,
) -> Result<Value, MathError> {
    let apply = |s: Series| {
        let points = f(&s).into_iter().filter(|p| p.1.is_finite()).collect();
        Series::new(s.label, points)
    };
    match value {
        Value::Series(s) => Ok(Value::Series(apply(s))),
        Value::Array(xs) => Ok(Value::Array(xs.into_iter().map(apply).collect())),
        Value::Scalar(_) => Err(type_error(name, "a time series or an array of time series")),
    }
}

/// `f(previous point, point)` at each point after the first.
fn pairwise(s: &Series, f: impl Fn((i64, f64), (i64, f64)) -> f64) -> Vec<(i64, f64)> {
    s.points
        .windows(2)
        .map(|w| (w[1].0, f(w[0], w[1])))
        .collect()
}

const FILL_VALUE: &str = "a number, a time series, REPEAT or LINEAR as the fill value";

enum Filler {
    Value(Value),
    Repeat,
    Linear,
}

/// `FILL(x, value | REPEAT | LINEAR)`: adds a point at each of the request's timestamps
/// where `x` has none.
fn fill(args: &[Node], ctx: &dyn MathContext) -> Result<Value, MathError> {
    let target = eval(&args[0], ctx)?;
    let filler = match &args[1] {
        Node::Keyword(k) if k == "REPEAT" => Filler::Repeat,
        Node::Keyword(k) if k == "LINEAR" => Filler::Linear,
        // The parser lets only REPEAT and LINEAR through as keywords here.
        Node::Keyword(_) => return Err(type_error("FILL", FILL_VALUE)),
        other => match eval(other, ctx)? {
            Value::Array(_) => return Err(type_error("FILL", FILL_VALUE)),
            v => Filler::Value(v),
        },
    };
    let timestamps = ctx.timestamps();
    let fill_one = |s: Series| {
        let mut by_time: BTreeMap<i64, f64> = s.points.iter().copied().collect();
        for &t in &timestamps {
            if by_time.contains_key(&t) {
                continue;
            }
            let before = s.points.iter().rev().find(|p| p.0 < t).copied();
            let after = s.points.iter().find(|p| p.0 > t).copied();
            let value = match &filler {
                Filler::Value(Value::Scalar(v)) => Some(*v),
                Filler::Value(Value::Series(f)) => f.get(t),
                Filler::Value(Value::Array(_)) => None,
                Filler::Repeat => before.map(|p| p.1),
                Filler::Linear => match (before, after) {
                    (Some((t0, v0)), Some((t1, v1))) => {
                        Some(v0 + (v1 - v0) * (t - t0) as f64 / (t1 - t0) as f64)
                    }
                    _ => None,
                },
            };
            if let Some(v) = value.filter(|v| v.is_finite()) {
                by_time.insert(t, v);
            }
        }
        Series::new(s.label, by_time.into_iter().collect())
    };
    match target {
        Value::Series(s) => Ok(Value::Series(fill_one(s))),
        Value::Array(xs) => Ok(Value::Array(xs.into_iter().map(fill_one).collect())),
        Value::Scalar(_) => Err(type_error(
            "FILL",
            "a time series or an array of time series",
        )),
    }
}

/// `IF(cond, yes[, no])`. A scalar condition picks a whole branch. A series condition gives
/// a point per condition point: the chosen branch's value there (a series branch without a
/// point there, or a missing `no`, gives none). Arrays apply element by element.
fn if_value(cond: Value, yes: &Value, no: Option<&Value>) -> Result<Value, MathError> {
    let element = |v: &Value, i: usize| -> Value {
        match v {
            Value::Array(xs) => Value::Series(xs.get(i).cloned().unwrap_or_default()),
            other => other.clone(),
        }
    };
    match cond {
        Value::Scalar(c) => Ok(if c != 0.0 {
            yes.clone()
        } else {
            no.cloned().unwrap_or(Value::Series(Series::default()))
        }),
        Value::Series(c) => {
            let width = [Some(yes), no].into_iter().flatten().find_map(|v| match v {
                Value::Array(xs) => Some(xs.len()),
                _ => None,
            });
            match width {
                None => Ok(Value::Series(if_series(&c, yes, no))),
                Some(n) => Ok(Value::Array(
                    (0..n)
                        .map(|i| {
                            let y = element(yes, i);
                            let n = no.map(|v| element(v, i));
                            let mut s = if_series(&c, &y, n.as_ref());
                            if let Value::Series(src) = &y {
                                s.label = src.label.clone();
                            }
                            s
                        })
                        .collect(),
                )),
            }
        }
        Value::Array(cs) => {
            let mut out = Vec::with_capacity(cs.len());
            for (i, c) in cs.into_iter().enumerate() {
                let y = element(yes, i);
                let n = no.map(|v| element(v, i));
                out.push(if_series(&c, &y, n.as_ref()));
            }
            Ok(Value::Array(out))
        }
    }
}

fn if_series(cond: &Series, yes: &Value, no: Option<&Value>) -> Series {
    let at = |v: &Value, t: i64| match v {
        Value::Scalar(x) => Some(*x),
        Value::Series(s) => s.get(t),
        Value::Array(_) => None,
    };
    let points = cond
        .points
        .iter()
        .filter_map(|&(t, c)| {
            let branch = if c != 0.0 { Some(yes) } else { no };
            branch.and_then(|b| at(b, t)).map(|v| (t, v))
        })
        .collect();
    Series::new(cond.label.clone(), points)
}

/// `SORT(array, AVG|MIN|MAX|SUM|STDDEV, ASC|DESC[, limit])`; series without data sort last.
fn sort(args: &[Node], ctx: &dyn MathContext) -> Result<Value, MathError> {
    let xs = match eval(&args[0], ctx)? {
        Value::Array(xs) => xs,
        Value::Series(s) => vec![s],
        Value::Scalar(_) => return Err(type_error("SORT", "an array of time series")),
    };
    let agg = match &args[1] {
        Node::Keyword(k) => Agg::from_name(k),
        _ => None,
    }
    .ok_or_else(|| {
        type_error(
            "SORT",
            "AVG, MIN, MAX, SUM or STDDEV as the second argument",
        )
    })?;
    let descending = match &args[2] {
        Node::Keyword(k) if k == "ASC" => false,
        Node::Keyword(k) if k == "DESC" => true,
        _ => return Err(type_error("SORT", "ASC or DESC as the third argument")),
    };
    let limit = match args.get(3) {
        None => None,
        Some(n) => match eval(n, ctx)? {
            Value::Scalar(v) if v >= 0.0 && v.fract() == 0.0 => Some(v as usize),
            _ => return Err(type_error("SORT", "a non-negative integer as the limit")),
        },
    };
    let mut keyed: Vec<(Option<f64>, Series)> = xs
        .into_iter()
        .map(|s| {
            let values: Vec<f64> = s.points.iter().map(|p| p.1).collect();
            (agg.apply(&values), s)
        })
        .collect();
    // Stable sort keeps request order among equal keys.
    keyed.sort_by(|(a, _), (b, _)| match (a, b) {
        (Some(a), Some(b)) => {
            let ord = a.total_cmp(b);
            if descending {
                ord.reverse()
            } else {
                ord
            }
        }
        (Some(_), None) => std::cmp::Ordering::Less,
        (None, Some(_)) => std::cmp::Ordering::Greater,
        (None, None) => std::cmp::Ordering::Equal,
    });
    let mut out: Vec<Series> = keyed.into_iter().map(|(_, s)| s).collect();
    if let Some(limit) = limit {
        out.truncate(limit);
    }
    Ok(Value::Array(out))
}
