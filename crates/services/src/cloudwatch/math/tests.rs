//! End-to-end tests of `parse` + `evaluate` against a fixed request context.

use std::collections::HashMap;

use super::*;

struct Ctx {
    values: HashMap<String, Value>,
    ids: Vec<String>,
}

impl MathContext for Ctx {
    fn value(&self, id: &str) -> Option<Value> {
        self.values.get(id).cloned()
    }
    fn metric_ids(&self) -> Vec<String> {
        self.ids.clone()
    }
    fn period(&self) -> i64 {
        60
    }
    fn timestamps(&self) -> Vec<i64> {
        vec![0, 60, 120, 180, 240]
    }
}

fn s(label: &str, points: &[(i64, f64)]) -> Series {
    Series::new(label, points.to_vec())
}

fn ctx() -> Ctx {
    let mut values = HashMap::new();
    values.insert(
        "m1".to_string(),
        Value::Series(s("m1", &[(0, 1.0), (60, 2.0), (120, 3.0), (180, 4.0)])),
    );
    values.insert(
        "m2".to_string(),
        Value::Series(s("m2", &[(60, 10.0), (120, 0.0), (240, 5.0)])),
    );
    values.insert(
        "errors".to_string(),
        Value::Series(s("Errors", &[(0, 2.0), (60, 4.0)])),
    );
    values.insert("nodata".to_string(), Value::Series(s("Empty", &[])));
    values.insert("k".to_string(), Value::Scalar(7.0));
    Ctx {
        values,
        ids: vec!["m1".into(), "m2".into(), "errors".into(), "nodata".into()],
    }
}

fn run(expression: &str) -> Value {
    let expr = parse(expression).unwrap_or_else(|e| panic!("{expression}: {e}"));
    evaluate(&expr, &ctx()).unwrap_or_else(|e| panic!("{expression}: {e}"))
}

fn run_err(expression: &str) -> String {
    match parse(expression) {
        Err(e) => e.message,
        Ok(expr) => evaluate(&expr, &ctx()).unwrap_err().message,
    }
}

fn points(v: Value) -> Vec<(i64, f64)> {
    match v {
        Value::Series(s) => s.points,
        other => panic!("expected a series, got {other:?}"),
    }
}

fn array(v: Value) -> Vec<Series> {
    match v {
        Value::Array(xs) => xs,
        other => panic!("expected an array, got {other:?}"),
    }
}

fn scalar(v: Value) -> f64 {
    match v {
        Value::Scalar(x) => x,
        other => panic!("expected a scalar, got {other:?}"),
    }
}

fn approx(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-9
}

#[test]
fn scalar_arithmetic() {
    assert_eq!(scalar(run("1 + 2 * 3")), 7.0);
    assert_eq!(scalar(run("(1 + 2) * 3")), 9.0);
    assert_eq!(scalar(run("2 ^ 3 ^ 2")), 512.0);
    assert_eq!(scalar(run("-2 ^ 2")), -4.0);
    assert_eq!(scalar(run("10 / 4 - 1")), 1.5);
    assert_eq!(scalar(run("k * 2")), 14.0);
    assert_eq!(scalar(run("1e-3 * 1000")), 1.0);
}

#[test]
fn scalar_division_by_zero_is_no_data() {
    assert_eq!(run("1 / 0"), Value::Series(Series::default()));
}

#[test]
fn series_op_scalar_per_point() {
    assert_eq!(
        points(run("m1 * 10")),
        vec![(0, 10.0), (60, 20.0), (120, 30.0), (180, 40.0)]
    );
    assert_eq!(
        points(run("100 - m1")),
        vec![(0, 99.0), (60, 98.0), (120, 97.0), (180, 96.0)]
    );
    assert_eq!(
        points(run("-m1")),
        vec![(0, -1.0), (60, -2.0), (120, -3.0), (180, -4.0)]
    );
}

#[test]
fn series_op_series_keeps_common_timestamps() {
    assert_eq!(points(run("m1 + m2")), vec![(60, 12.0), (120, 3.0)]);
    // m2 is 0 at 120: that point is dropped, as CloudWatch returns no datapoint.
    assert_eq!(points(run("m1 / m2")), vec![(60, 0.2)]);
    assert_eq!(points(run("m1 / 0")), vec![]);
}

#[test]
fn series_label_is_kept_on_series_results() {
    match run("m1 * 2") {
        Value::Series(s) => assert_eq!(s.label, "m1"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn aggregates_of_one_series_are_scalars() {
    assert_eq!(scalar(run("SUM(m1)")), 10.0);
    assert_eq!(scalar(run("AVG(m1)")), 2.5);
    assert_eq!(scalar(run("MIN(m1)")), 1.0);
    assert_eq!(scalar(run("MAX(m1)")), 4.0);
    assert!(approx(scalar(run("STDDEV(m1)")), 1.25f64.sqrt()));
    assert_eq!(
        points(run("m1 - AVG(m1)")),
        vec![(0, -1.5), (60, -0.5), (120, 0.5), (180, 1.5)]
    );
    // No data in, no data out.
    assert_eq!(points(run("SUM(nodata)")), vec![]);
    assert_eq!(scalar(run("MAX(3)")), 3.0);
}

#[test]
fn aggregates_of_arrays_are_series_per_timestamp() {
    assert_eq!(
        points(run("SUM([m1, m2])")),
        vec![(0, 1.0), (60, 12.0), (120, 3.0), (180, 4.0), (240, 5.0)]
    );
    assert_eq!(
        points(run("MAX([m1, m2])")),
        vec![(0, 1.0), (60, 10.0), (120, 3.0), (180, 4.0), (240, 5.0)]
    );
    assert_eq!(points(run("AVG([m1, m2])"))[1], (60, 6.0));
    assert_eq!(points(run("STDDEV([m1, m2])"))[1], (60, 4.0));
    assert_eq!(points(run("MIN([m1, m2])"))[2], (120, 0.0));
}

#[test]
fn metrics_function() {
    let all = array(run("METRICS()"));
    assert_eq!(
        all.iter().map(|s| s.label.as_str()).collect::<Vec<_>>(),
        vec!["m1", "m2", "Errors", "Empty"]
    );
    let filtered = array(run("METRICS(\"err\")"));
    assert_eq!(filtered.len(), 1);
    assert_eq!(filtered[0].label, "Errors");
    assert_eq!(points(run("SUM(METRICS('m'))"))[1], (60, 12.0));
    let e = parse("SUM(METRICS())").unwrap();
    assert!(e.uses_metrics_function());
    assert!(e.references().is_empty());
}

#[test]
fn array_op_keeps_each_label() {
    let xs = array(run("METRICS(\"m\") * 2"));
    assert_eq!(xs[0].label, "m1");
    assert_eq!(xs[1].label, "m2");
    assert_eq!(xs[1].points, vec![(60, 20.0), (120, 0.0), (240, 10.0)]);
    let ys = array(run("100 / [m1, m2]"));
    assert_eq!(ys[1].label, "m2");
    assert_eq!(ys[1].points, vec![(60, 10.0), (240, 20.0)]);
    let zs = array(run("[m1, m2] - m1"));
    assert_eq!(
        zs[0].points,
        vec![(0, 0.0), (60, 0.0), (120, 0.0), (180, 0.0)]
    );
    assert_eq!(zs[1].points, vec![(60, 8.0), (120, -3.0)]);
}

#[test]
fn array_literal_flattens_and_spreads_scalars() {
    let xs = array(run("[METRICS(\"m\"), errors, 5]"));
    assert_eq!(xs.len(), 4);
    assert_eq!(xs[3].points.len(), 5);
}

#[test]
fn array_op_array_pairwise_or_error() {
    let xs = array(run("[m1, m2] + [m2, m1]"));
    assert_eq!(xs[0].points, vec![(60, 12.0), (120, 3.0)]);
    assert!(run_err("[m1, m2] + [m1]").contains("same number of elements"));
}

#[test]
fn rate_diff_diff_time_running_sum() {
    let ctx = ctx();
    let mut values = ctx.values.clone();
    values.insert(
        "c".into(),
        Value::Series(s("c", &[(0, 10.0), (60, 70.0), (180, 130.0)])),
    );
    let ctx = Ctx { values, ..ctx };
    let eval = |e: &str| evaluate(&parse(e).unwrap(), &ctx).unwrap();
    assert_eq!(points(eval("RATE(c)")), vec![(60, 1.0), (180, 0.5)]);
    assert_eq!(points(eval("DIFF(c)")), vec![(60, 60.0), (180, 60.0)]);
    assert_eq!(points(eval("DIFF_TIME(c)")), vec![(60, 60.0), (180, 120.0)]);
    assert_eq!(
        points(eval("RUNNING_SUM(c)")),
        vec![(0, 10.0), (60, 80.0), (180, 210.0)]
    );
    let rates = array(eval("RATE(METRICS(\"m\"))"));
    assert_eq!(rates[0].label, "m1");
    assert_eq!(rates[0].points.len(), 3);
    assert!(evaluate(&parse("RATE(5)").unwrap(), &ctx)
        .unwrap_err()
        .message
        .contains("expected a time series"));
}

#[test]
fn period_and_time_functions() {
    assert_eq!(scalar(run("PERIOD(m1)")), 60.0);
    assert_eq!(points(run("m1 / PERIOD(m1)"))[0], (0, 1.0 / 60.0));
    assert_eq!(scalar(run("DATAPOINT_COUNT(m2)")), 3.0);
    assert_eq!(
        points(run("EPOCH(m2)")),
        vec![(60, 60.0), (120, 120.0), (240, 240.0)]
    );
    assert_eq!(
        points(run("MINUTE(m2)")),
        vec![(60, 1.0), (120, 2.0), (240, 4.0)]
    );
    assert_eq!(points(run("HOUR(m2)"))[0], (60, 0.0));
}

#[test]
fn abs_ceil_floor_log() {
    assert_eq!(scalar(run("ABS(-3)")), 3.0);
    assert_eq!(
        points(run("ABS(m1 - 3)")),
        vec![(0, 2.0), (60, 1.0), (120, 0.0), (180, 1.0)]
    );
    assert_eq!(scalar(run("CEIL(1.2)")), 2.0);
    assert_eq!(scalar(run("FLOOR(1.8)")), 1.0);
    assert!(approx(scalar(run("LOG10(1000)")), 3.0));
    // log(0) is -infinity: the point is dropped.
    assert_eq!(
        points(run("LOG(m2)")),
        vec![(60, 10f64.ln()), (240, 5f64.ln())]
    );
}

#[test]
fn fill_with_value_repeat_linear() {
    assert_eq!(
        points(run("FILL(m2, 0)")),
        vec![(0, 0.0), (60, 10.0), (120, 0.0), (180, 0.0), (240, 5.0)]
    );
    assert_eq!(
        points(run("FILL(m2, REPEAT)")),
        vec![(60, 10.0), (120, 0.0), (180, 0.0), (240, 5.0)]
    );
    assert_eq!(
        points(run("FILL(m2, LINEAR)")),
        vec![(60, 10.0), (120, 0.0), (180, 2.5), (240, 5.0)]
    );
    assert_eq!(
        points(run("FILL(m2, m1)")),
        vec![(0, 1.0), (60, 10.0), (120, 0.0), (180, 4.0), (240, 5.0)]
    );
    assert_eq!(points(run("FILL(m2, MIN(m1))"))[0], (0, 1.0));
    let filled = array(run("FILL(METRICS(), -1)"));
    assert_eq!(filled[3].label, "Empty");
    assert_eq!(
        filled[3].points,
        vec![(0, -1.0), (60, -1.0), (120, -1.0), (180, -1.0), (240, -1.0)]
    );
    assert!(run_err("FILL(m1, NEAREST)").starts_with("Unrecognized identifier NEAREST"));
}

#[test]
fn if_and_comparisons() {
    assert_eq!(
        points(run("m1 > 2")),
        vec![(0, 0.0), (60, 0.0), (120, 1.0), (180, 1.0)]
    );
    assert_eq!(
        points(run("IF(m1 >= 3, m1, 0)")),
        vec![(0, 0.0), (60, 0.0), (120, 3.0), (180, 4.0)]
    );
    // Without a false branch, false points are dropped.
    assert_eq!(
        points(run("IF(m1 != 2, 1)")),
        vec![(0, 1.0), (120, 1.0), (180, 1.0)]
    );
    // A series branch without a point at that timestamp gives no point.
    assert_eq!(
        points(run("IF(m1 > 1, m2, 0)")),
        vec![(0, 0.0), (60, 10.0), (120, 0.0)]
    );
    assert_eq!(
        points(run("IF(m1 > 1 AND m1 < 4, 1, 0)")),
        vec![(0, 0.0), (60, 1.0), (120, 1.0), (180, 0.0)]
    );
    assert_eq!(
        points(run("IF(m1 == 1 OR NOT m1 < 4, 1, 0)")),
        vec![(0, 1.0), (60, 0.0), (120, 0.0), (180, 1.0)]
    );
    assert_eq!(
        points(run("IF(m1 <= 1 || m1 > 3, 1, 0)")),
        vec![(0, 1.0), (60, 0.0), (120, 0.0), (180, 1.0)]
    );
    assert_eq!(scalar(run("IF(1, 2, 3)")), 2.0);
    assert_eq!(scalar(run("IF(0, 2, 3)")), 3.0);
    assert_eq!(
        points(run("IF(k == 0, m1, m2)")),
        vec![(60, 10.0), (120, 0.0), (240, 5.0)]
    );
    let xs = array(run("IF(METRICS('m') > 2, METRICS('m'), 0)"));
    assert_eq!(xs[1].label, "m2");
    assert_eq!(xs[1].points, vec![(60, 10.0), (120, 0.0), (240, 5.0)]);
}

#[test]
fn remove_empty_sort_first_last() {
    let xs = array(run("REMOVE_EMPTY(METRICS())"));
    assert_eq!(xs.len(), 3);
    let sorted = array(run("SORT(METRICS(), MAX, DESC)"));
    assert_eq!(
        sorted.iter().map(|s| s.label.as_str()).collect::<Vec<_>>(),
        vec!["m2", "m1", "Errors", "Empty"]
    );
    let asc = array(run("SORT(METRICS(), SUM, ASC, 2)"));
    assert_eq!(
        asc.iter().map(|s| s.label.as_str()).collect::<Vec<_>>(),
        vec!["Errors", "m1"]
    );
    match run("FIRST(SORT(METRICS(), AVG, DESC))") {
        Value::Series(s) => assert_eq!(s.label, "m2"),
        other => panic!("{other:?}"),
    }
    match run("LAST(METRICS())") {
        Value::Series(s) => assert_eq!(s.label, "Empty"),
        other => panic!("{other:?}"),
    }
    assert!(run_err("SORT(METRICS(), MEDIAN, DESC)").starts_with("Unrecognized identifier MEDIAN"));
    assert!(run_err("SORT(METRICS(), MAX, m1)").contains("ASC or DESC"));
    assert!(run_err("SORT(METRICS(), 3, ASC)").contains("second argument"));
    assert!(run_err("SORT(METRICS(), MAX, ASC, -1)").contains("limit"));
}

#[test]
fn time_series_of_a_scalar() {
    assert_eq!(
        points(run("TIME_SERIES(MAX(m1))")),
        vec![(0, 4.0), (60, 4.0), (120, 4.0), (180, 4.0), (240, 4.0)]
    );
    assert!(run_err("TIME_SERIES(m1)").contains("expected a scalar"));
}

#[test]
fn references_in_first_appearance_order() {
    let e = parse("(m2 + m1) / m2 * SUM([m3, METRICS(\"x\")]) + 1").unwrap();
    assert_eq!(e.references(), vec!["m2", "m1", "m3"]);
    assert!(e.uses_metrics_function());
    assert!(!parse("m1 + 1").unwrap().uses_metrics_function());
    assert!(parse("1 + 2").unwrap().references().is_empty());
}

#[test]
fn lowercase_function_names_are_accepted() {
    assert_eq!(scalar(run("sum(m1)")), 10.0);
}

#[test]
fn error_messages() {
    assert_eq!(run_err("m1 + $"), "Unrecognized token at position 5");
    assert_eq!(run_err("m1 +"), "Syntax error at position 4");
    assert_eq!(run_err("FOO(m1)"), "Unknown function FOO at position 0");
    assert_eq!(run_err("m9 + 1"), "Unrecognized metric or expression id m9");
    assert_eq!(
        run_err("SEARCH('{AWS/EC2,InstanceId} MetricName=\"CPUUtilization\"', 'Average', 300)"),
        "Function SEARCH is not supported by sparkyard"
    );
    assert_eq!(
        run_err("RATE(m1, 2)"),
        "Invalid number of arguments for function RATE: expected 1, got 2"
    );
    assert!(run_err("METRICS(m1)").contains("expected a string"));
    assert!(run_err("SUM(REPEAT)").starts_with("Unrecognized identifier REPEAT at position 4"));
    assert!(run_err("FIRST(3)").contains("expected an array"));
    let e = MathError::new("Unrecognized token at position 4");
    assert_eq!(
        e.in_expression("e1"),
        "Error in expression e1: Unrecognized token at position 4"
    );
    assert_eq!(e.to_string(), "Unrecognized token at position 4");
}

#[test]
fn series_get() {
    let x = s("x", &[(0, 1.0), (60, 2.0)]);
    assert_eq!(x.get(60), Some(2.0));
    assert_eq!(x.get(30), None);
}
