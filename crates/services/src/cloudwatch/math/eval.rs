//! Evaluation of the expression tree: operands, operators and the alignment rules between
//! scalars, series and arrays. Function calls are in `functions`.

use super::parser::{BinOp, Node};
use super::{functions, MathContext, MathError, Series, Value};

pub(crate) fn eval(node: &Node, ctx: &dyn MathContext) -> Result<Value, MathError> {
    match node {
        Node::Number(n) => Ok(Value::Scalar(*n)),
        Node::Id(id) => ctx
            .value(id)
            .ok_or_else(|| MathError::new(format!("Unrecognized metric or expression id {id}"))),
        Node::Str(s) => Err(MathError::new(format!(
            "Syntax error: a string (\"{s}\") is only allowed as a function argument"
        ))),
        Node::Keyword(k) => Err(MathError::new(format!(
            "Syntax error: {k} is only allowed as an argument of FILL or SORT"
        ))),
        Node::Array(items) => {
            let mut out = Vec::new();
            for item in items {
                match eval(item, ctx)? {
                    Value::Series(s) => out.push(s),
                    // `[METRICS("a"), m3]` is one flat array.
                    Value::Array(xs) => out.extend(xs),
                    Value::Scalar(v) => out.push(scalar_series(v, ctx)),
                }
            }
            Ok(Value::Array(out))
        }
        Node::Neg(inner) => Ok(map_values(eval(inner, ctx)?, |v| Some(-v))),
        Node::Not(inner) => Ok(map_values(eval(inner, ctx)?, |v| {
            Some(if v == 0.0 { 1.0 } else { 0.0 })
        })),
        Node::Binary(op, l, r) => {
            let l = eval(l, ctx)?;
            let r = eval(r, ctx)?;
            binary(*op, l, r)
        }
        Node::Call { name, args } => functions::call(name, args, ctx),
    }
}

/// A scalar spread over the request's timestamps (what `TIME_SERIES` does).
pub(crate) fn scalar_series(v: f64, ctx: &dyn MathContext) -> Series {
    Series::new("", ctx.timestamps().into_iter().map(|t| (t, v)).collect())
}

/// `f(a, b)` for one pair of values; `None` means "no datapoint", which is what CloudWatch
/// returns for a division by zero or a result that isn't a finite number.
fn apply(op: BinOp, a: f64, b: f64) -> Option<f64> {
    let truth = |c: bool| if c { 1.0 } else { 0.0 };
    let v = match op {
        BinOp::Add => a + b,
        BinOp::Sub => a - b,
        BinOp::Mul => a * b,
        BinOp::Div if b == 0.0 => return None,
        BinOp::Div => a / b,
        BinOp::Pow => a.powf(b),
        BinOp::Gt => truth(a > b),
        BinOp::Ge => truth(a >= b),
        BinOp::Lt => truth(a < b),
        BinOp::Le => truth(a <= b),
        BinOp::Eq => truth(a == b),
        BinOp::Ne => truth(a != b),
        BinOp::And => truth(a != 0.0 && b != 0.0),
        BinOp::Or => truth(a != 0.0 || b != 0.0),
    };
    v.is_finite().then_some(v)
}

/// Applies `f` to every value; points where `f` gives `None` or a non-finite number are
/// dropped. A scalar without a result becomes an empty series: "no data".
pub(crate) fn map_values(value: Value, f: impl Fn(f64) -> Option<f64>) -> Value {
    let f = |v: f64| f(v).filter(|r| r.is_finite());
    let map_series = |s: Series| Series {
        label: s.label,
        points: s
            .points
            .into_iter()
            .filter_map(|(t, v)| f(v).map(|r| (t, r)))
            .collect(),
    };
    match value {
        Value::Scalar(v) => match f(v) {
            Some(r) => Value::Scalar(r),
            None => Value::Series(Series::default()),
        },
        Value::Series(s) => Value::Series(map_series(s)),
        Value::Array(xs) => Value::Array(xs.into_iter().map(map_series).collect()),
    }
}

/// Points of `a op b` for two series: only timestamps present in both, with `a`'s label.
fn series_op_series(op: BinOp, a: &Series, b: &Series) -> Series {
    let mut points = Vec::new();
    let (mut i, mut j) = (0, 0);
    while i < a.points.len() && j < b.points.len() {
        let (ta, va) = a.points[i];
        let (tb, vb) = b.points[j];
        if ta < tb {
            i += 1;
        } else if tb < ta {
            j += 1;
        } else {
            if let Some(v) = apply(op, va, vb) {
                points.push((ta, v));
            }
            i += 1;
            j += 1;
        }
    }
    Series::new(a.label.clone(), points)
}

pub(crate) fn binary(op: BinOp, l: Value, r: Value) -> Result<Value, MathError> {
    Ok(match (l, r) {
        (Value::Scalar(a), Value::Scalar(b)) => match apply(op, a, b) {
            Some(v) => Value::Scalar(v),
            None => Value::Series(Series::default()),
        },
        (Value::Series(s), Value::Scalar(b)) => map_values(Value::Series(s), |v| apply(op, v, b)),
        (Value::Scalar(a), Value::Series(s)) => map_values(Value::Series(s), |v| apply(op, a, v)),
        (Value::Series(a), Value::Series(b)) => Value::Series(series_op_series(op, &a, &b)),
        (Value::Array(xs), Value::Array(ys)) => {
            if xs.len() != ys.len() {
                return Err(MathError::new(format!(
                    "Arrays of time series must have the same number of elements to be combined ({} and {})",
                    xs.len(),
                    ys.len()
                )));
            }
            Value::Array(
                xs.iter()
                    .zip(&ys)
                    .map(|(a, b)| series_op_series(op, a, b))
                    .collect(),
            )
        }
        (Value::Array(xs), other) => {
            let mut out = Vec::with_capacity(xs.len());
            for s in xs {
                out.push(expect_series(binary(op, Value::Series(s), other.clone())?));
            }
            Value::Array(out)
        }
        (other, Value::Array(ys)) => {
            let mut out = Vec::with_capacity(ys.len());
            for s in ys {
                // Keep each array element's label even when it is the right operand.
                let label = s.label.clone();
                let mut r = expect_series(binary(op, other.clone(), Value::Series(s))?);
                r.label = label;
                out.push(r);
            }
            Value::Array(out)
        }
    })
}

/// Series-level helpers return a series for series inputs; a scalar only appears when a
/// scalar op scalar had no result, which `binary` already turns into an empty series.
fn expect_series(v: Value) -> Series {
    match v {
        Value::Series(s) => s,
        Value::Scalar(_) | Value::Array(_) => Series::default(),
    }
}
