//! CloudWatch metric math, as `GetMetricData` queries with an `Expression` and dashboard
//! graphs use it: parsing an expression ([`parse`]) and evaluating it ([`evaluate`]) against
//! the results of the request's other queries, which the caller supplies via [`MathContext`].
//! Pure code: no I/O; the CloudWatch service (`super`) owns fetching the metric data,
//! ordering queries by [`Expr::references`] and labelling results.
//!
//! Supported: numbers (`1.5`, `1e-3`), query ids (lowercase-first), `+ - * / ^`, unary minus,
//! parentheses, comparisons `> >= < <= == !=`, `AND`/`&&`, `OR`/`||`, `NOT`/`!`, arrays
//! `[m1, m2]`, string arguments, and the functions `SUM AVG MIN MAX STDDEV METRICS RATE DIFF
//! DIFF_TIME PERIOD ABS CEIL FLOOR LOG LOG10 FILL IF REMOVE_EMPTY SORT FIRST LAST TIME_SERIES
//! RUNNING_SUM DATAPOINT_COUNT EPOCH MINUTE HOUR`.
//!
//! Not supported (parse fails with a message saying so): `SEARCH`, Metrics Insights
//! `SELECT` queries, `ANOMALY_DETECTION_BAND`, `INSIGHT_RULE_METRIC`, `LAMBDA`, `SLICE`,
//! `SERVICE_QUOTA`, `CONCAT`, `DAY`, `MONTH`, `YEAR`.
//!
//! Semantics follow CloudWatch: series ∘ series keeps only timestamps present in both;
//! series ∘ scalar applies per point; array ∘ x applies per element and keeps each element's
//! label; a division by zero (or any non-finite result) drops the point, as CloudWatch returns
//! no datapoint there; aggregate functions over one series give a scalar, over an array a
//! series across the array's series per timestamp. `STDDEV` is the population standard
//! deviation. `FILL(x, REPEAT)` leaves a leading gap (no earlier value) empty and
//! `FILL(x, LINEAR)` leaves leading and trailing gaps empty.
//!
//! Error messages are the text after CloudWatch's `Error in expression <id>: ` prefix (the
//! parser doesn't know the query id); [`MathError::in_expression`] renders the full message.
//! Token positions in messages are 0-based character offsets.

mod eval;
mod functions;
mod lexer;
mod parser;

use std::fmt;

pub(crate) use parser::Node;

/// One time series: a label and its points, `(epoch seconds, value)`, ascending by timestamp
/// with at most one point per timestamp.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Series {
    pub label: String,
    pub points: Vec<(i64, f64)>,
}

impl Series {
    pub fn new(label: impl Into<String>, points: Vec<(i64, f64)>) -> Self {
        Series {
            label: label.into(),
            points,
        }
    }

    /// The value at `timestamp`, if the series has a point there.
    pub fn get(&self, timestamp: i64) -> Option<f64> {
        self.points
            .binary_search_by_key(&timestamp, |p| p.0)
            .ok()
            .map(|i| self.points[i].1)
    }
}

/// What an expression (or a query it reads) evaluates to.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Scalar(f64),
    Series(Series),
    Array(Vec<Series>),
}

#[derive(Debug, Clone, PartialEq)]
pub struct MathError {
    pub message: String,
}

impl MathError {
    pub fn new(message: impl Into<String>) -> Self {
        MathError {
            message: message.into(),
        }
    }

    /// CloudWatch's full wording for an error in query `id`:
    /// `Error in expression e1: Unrecognized token at position 4`.
    pub fn in_expression(&self, id: &str) -> String {
        format!("Error in expression {id}: {}", self.message)
    }
}

impl fmt::Display for MathError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for MathError {}

/// A parsed metric math expression.
#[derive(Debug, Clone, PartialEq)]
pub struct Expr {
    root: Node,
}

/// Parses `expression`; fails on syntax errors, unknown or unsupported functions and wrong
/// argument counts, so a bad expression is rejected before any data is read.
pub fn parse(expression: &str) -> Result<Expr, MathError> {
    parser::parse(expression).map(|root| Expr { root })
}

impl Expr {
    /// Query ids the expression reads (e.g. `["m1","m2"]`), in order of first appearance,
    /// for dependency order and cycle checks. `METRICS()` is not expanded here: see
    /// [`Expr::uses_metrics_function`].
    pub fn references(&self) -> Vec<String> {
        let mut out = Vec::new();
        self.root.walk(&mut |n| {
            if let Node::Id(id) = n {
                if !out.contains(id) {
                    out.push(id.clone());
                }
            }
        });
        out
    }

    /// Whether the expression calls `METRICS()`, i.e. reads every query of the request.
    pub fn uses_metrics_function(&self) -> bool {
        let mut found = false;
        self.root.walk(&mut |n| {
            if matches!(n, Node::Call { name, .. } if name == "METRICS") {
                found = true;
            }
        });
        found
    }
}

/// What an expression can see of the request it belongs to.
pub trait MathContext {
    /// The result of another query (metric stat or expression), `None` if there is no such id.
    fn value(&self, id: &str) -> Option<Value>;
    /// Ids of the request's queries, in request order, for `METRICS()` / `METRICS("filter")`.
    fn metric_ids(&self) -> Vec<String>;
    /// The request's period, seconds.
    fn period(&self) -> i64;
    /// The request's aligned period starts, ascending: where `FILL` fills and where a scalar
    /// becomes a series (`TIME_SERIES`).
    fn timestamps(&self) -> Vec<i64>;
}

/// Evaluates `expr`; a `Scalar` result is for the caller to spread over the request's
/// timestamps (CloudWatch returns the scalar at every period).
pub fn evaluate(expr: &Expr, ctx: &dyn MathContext) -> Result<Value, MathError> {
    eval::eval(&expr.root, ctx)
}

#[cfg(test)]
mod tests;
