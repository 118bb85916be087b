//! CloudWatch metrics store and read path: how fast datapoints go in, and how long
//! `GetMetricData` takes over 15 days of 1,000 series at 1-minute resolution (21.6 M
//! datapoints; `CW_BENCH_DAYS` / `CW_BENCH_SERIES` scale it down).
//!
//! `cargo bench -p sparkyard-services --bench cloudwatch` prints the figures; there is no
//! pass/fail. Loading goes through the store API (`CloudWatch::put_points`, 60 minutes × all
//! series per transaction); `PutMetricData` and `GetMetricData` go through the service's
//! request handler with CBOR bodies (what botocore sends), authorization included.

use std::sync::Arc;
use std::time::{Duration, Instant};

use ciborium::Value;
use sparkyard_aws::Principal;
use sparkyard_services::authz::{Authorizer, PolicyDocument, RolePolicies};
use sparkyard_services::cloudwatch::model::Dimension;
use sparkyard_services::cloudwatch::store::{Agg, Point, SeriesKey};
use sparkyard_services::cloudwatch::{CloudWatch, Protocol};

struct NoRoles;

impl RolePolicies for NoRoles {
    fn inline_policies(&self, _: &str) -> Option<Vec<PolicyDocument>> {
        None
    }
}

fn env(name: &str, default: i64) -> i64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn text(s: &str) -> Value {
    Value::Text(s.into())
}

fn map(entries: Vec<(&str, Value)>) -> Value {
    Value::Map(entries.into_iter().map(|(k, v)| (text(k), v)).collect())
}

fn time(secs: i64) -> Value {
    Value::Tag(1, Box::new(Value::Integer(secs.into())))
}

fn cbor(v: &Value) -> Vec<u8> {
    let mut out = Vec::new();
    ciborium::ser::into_writer(v, &mut out).unwrap();
    out
}

fn dims(i: i64) -> Vec<Dimension> {
    vec![
        Dimension {
            name: "Host".into(),
            value: format!("host-{i:04}"),
        },
        Dimension {
            name: "Service".into(),
            value: "spark".into(),
        },
    ]
}

fn dims_value(i: i64) -> Value {
    Value::Array(
        dims(i)
            .into_iter()
            .map(|d| map(vec![("Name", text(&d.name)), ("Value", text(&d.value))]))
            .collect(),
    )
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

fn main() {
    let days = env("CW_BENCH_DAYS", 15);
    let series = env("CW_BENCH_SERIES", 1000);
    let dir = tempfile::tempdir().unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let cw = CloudWatch::open_path(&dir.path().join("cw.db"), "us-east-1", "123456789012").unwrap();
    let now = chrono::Utc::now().timestamp() / 60 * 60;
    let start = now - days * 86400;
    let minutes = days * 1440;
    let total = minutes * series;
    println!("dataset: {series} series x {days} days at 1-minute resolution = {total} datapoints");

    // Bulk load through the store API.
    let t = Instant::now();
    let chunk = 60;
    let mut m = 0;
    while m < minutes {
        let mut points = Vec::with_capacity((chunk * series) as usize);
        for minute in m..(m + chunk).min(minutes) {
            for s in 0..series {
                let v = ((minute * 7 + s * 13) % 100) as f64;
                points.push(Point {
                    series: SeriesKey {
                        namespace: "Bench".into(),
                        metric_name: "Load".into(),
                        dimensions: dims(s),
                        unit: "Percent".into(),
                    },
                    timestamp: start + minute * 60,
                    resolution: 60,
                    agg: Agg {
                        count: 1.0,
                        sum: v,
                        min: v,
                        max: v,
                    },
                });
            }
        }
        rt.block_on(cw.put_points(points, now)).unwrap();
        m += chunk;
    }
    let load = t.elapsed();
    let size = std::fs::metadata(dir.path().join("cw.db"))
        .map(|m| m.len())
        .unwrap_or(0)
        + std::fs::metadata(dir.path().join("cw.db-wal"))
            .map(|m| m.len())
            .unwrap_or(0);
    println!(
        "bulk load (store API, {} datapoints per transaction): {:.1} s, {:.0} datapoints/s, database {:.0} MiB",
        chunk * series,
        load.as_secs_f64(),
        total as f64 / load.as_secs_f64(),
        size as f64 / 1048576.0
    );

    let authz = Authorizer::new(Arc::new(NoRoles));
    let principal = Principal {
        access_key_id: "AKIA".into(),
        account_id: "123456789012".into(),
        arn: "arn:aws:iam::123456789012:root".into(),
        region: "us-east-1".into(),
        service: "monitoring".into(),
    };
    let call = |op: &str, body: &[u8]| {
        let response = rt.block_on(cw.handle(&authz, &principal, Protocol::Cbor, op, body, "rid"));
        assert_eq!(response.status(), 200, "{op} failed");
        rt.block_on(axum::body::to_bytes(response.into_body(), usize::MAX))
            .unwrap()
    };

    // PutMetricData through the handler: requests of 1,000 datums (the API's maximum).
    let requests = 100;
    let bodies: Vec<Vec<u8>> = (0..requests)
        .map(|r| {
            let data = (0..1000)
                .map(|i| {
                    map(vec![
                        ("MetricName", text("Put")),
                        ("Dimensions", dims_value((r * 1000 + i) % series)),
                        ("Timestamp", time(now - 60 + (i % 60))),
                        ("Value", Value::Float(i as f64)),
                        ("Unit", text("Count")),
                    ])
                })
                .collect();
            cbor(&map(vec![
                ("Namespace", text("Bench")),
                ("MetricData", Value::Array(data)),
            ]))
        })
        .collect();
    let t = Instant::now();
    for body in &bodies {
        call("PutMetricData", body);
    }
    let put = t.elapsed();
    println!(
        "PutMetricData (CBOR, 1,000 datums/request, {requests} requests): {:.0} datapoints/s, {:.1} ms/request",
        requests as f64 * 1000.0 / put.as_secs_f64(),
        put.as_secs_f64() * 1000.0 / requests as f64
    );

    // GetMetricData latency.
    let stat = |id: &str, s: i64, period: i64, stat: &str| {
        map(vec![
            ("Id", text(id)),
            (
                "MetricStat",
                map(vec![
                    (
                        "Metric",
                        map(vec![
                            ("Namespace", text("Bench")),
                            ("MetricName", text("Load")),
                            ("Dimensions", dims_value(s)),
                        ]),
                    ),
                    ("Period", Value::Integer(period.into())),
                    ("Stat", text(stat)),
                ]),
            ),
        ])
    };
    let request = |queries: Vec<Value>, from: i64| {
        cbor(&map(vec![
            ("MetricDataQueries", Value::Array(queries)),
            ("StartTime", time(from)),
            ("EndTime", time(now)),
        ]))
    };
    let span = (days * 86400 - 3600).max(3600);
    let cases: Vec<(String, Vec<u8>)> = vec![
        (
            "1 series, last 3 h, period 60 s (180 points)".into(),
            request(vec![stat("m1", 1, 60, "Average")], now - 3 * 3600),
        ),
        (
            "1 series, last 24 h, period 60 s (1,440 points)".into(),
            request(vec![stat("m1", 2, 60, "Maximum")], now - 86400),
        ),
        (
            format!(
                "1 series, last {days} days (less 1 h), period 1 h (reads every 1-minute bucket)"
            ),
            request(vec![stat("m1", 3, 3600, "Average")], now - span),
        ),
        (
            "10 series + SUM expression, last 24 h, period 300 s".into(),
            request(
                (0..10)
                    .map(|i| stat(&format!("m{i}"), i * 7, 300, "Sum"))
                    .chain([map(vec![
                        ("Id", text("total")),
                        ("Expression", text("SUM(METRICS())")),
                    ])])
                    .collect(),
                now - 86400,
            ),
        ),
    ];
    for (name, body) in cases {
        call("GetMetricData", &body); // warm
        let mut times = Vec::new();
        for _ in 0..30 {
            let t = Instant::now();
            call("GetMetricData", &body);
            times.push(t.elapsed());
        }
        times.sort();
        println!(
            "GetMetricData {name}: median {:.2} ms, p95 {:.2} ms",
            percentile(&times, 0.5).as_secs_f64() * 1000.0,
            percentile(&times, 0.95).as_secs_f64() * 1000.0
        );
    }
}
