//! Part 3 (`SPARKYARD_BENCH_PART=load`): the control plane at 1,000 StartJobRun a minute.
//!
//! ```text
//! SPARKYARD_BENCH_PART=load cargo bench -p sparkyard --bench jobs
//! SPARKYARD_BENCH_PART=load SPARKYARD_BENCH_LOAD_RATE=150 SPARKYARD_BENCH_LOAD_MINUTES=2 ...
//! ```
//!
//! The server runs one real node (`bench-real`, where job runners run: each is a real
//! `sparkyard spark-submit` process that creates its driver and watches it to the end) and
//! `SPARKYARD_BENCH_SIM_NODES` simulated m5.2xlarge nodes (default 50) where every driver
//! goes (`spark.kubernetes.driver.node.selector`) and "runs" for
//! `SPARKYARD_BENCH_DRIVER_SECONDS` (default 5, the `sparkyard.dev/simulated-duration`
//! annotation) before it succeeds; the runner then exits and the run is COMPLETED. Finished
//! runs' objects are deleted `ttl-seconds-after-finished` (30 s here) after the run ends,
//! Events after `event-ttl` (2 minutes here), so that memory can be flat within the run.
//!
//! Runs are started at a steady `SPARKYARD_BENCH_LOAD_RATE` per minute (default 1,000) for
//! `SPARKYARD_BENCH_LOAD_MINUTES` (default 10). A kube-rs watch on the namespace records
//! when each driver pod is first seen and first seen bound (`spec.nodeName`); latencies are
//! from the StartJobRun response. Every 30 s it prints the `sparkyard serve` process's RSS
//! and CPU time (`/proc/<pid>/stat`: its own, and its reaped children's — the runners).

use super::*;

/// What a pod went through, as the watch saw it.
#[derive(Clone, Copy)]
struct PodTimes {
    created: Instant,
    bound: Option<Instant>,
}

type Timeline = Arc<Mutex<HashMap<String, PodTimes>>>;

/// A StartJobRun that was answered: the run's index, its id, when, and how long it took (s).
#[derive(Clone)]
struct Started {
    index: usize,
    id: String,
    at: Instant,
    call_s: f64,
}

/// The extra `sparkyard.toml` of the load part (it continues the `[cluster]` table): Events
/// kept 2 minutes, finished runs' objects `ttl_seconds`, the real node and the simulated pool.
pub fn server_config(sim_nodes: usize, ttl_seconds: u64) -> String {
    let mut config = format!(
        "event-ttl = \"2m\"\n\n[controller]\nttl-seconds-after-finished = {ttl_seconds}\n\n\
         [[cluster.nodes]]\nname = \"bench-real\"\ncpu = \"64\"\nmemory = \"256Gi\"\npods = 2000\n\
         labels = {{ \"sparkyard.dev/pool\" = \"real\" }}\n"
    );
    for i in 0..sim_nodes {
        config.push_str(&format!(
            "\n[[cluster.nodes]]\nname = \"sim-{i}\"\nsimulated = true\n\
             labels = {{ \"sparkyard.dev/pool\" = \"simulated\" }}\n"
        ));
    }
    config
}

fn watch_timeline(client: kube::Client, ns: &str, timeline: Timeline) {
    let api: Api<Pod> = Api::namespaced(client, ns);
    tokio::spawn(async move {
        let mut events = std::pin::pin!(watcher(api, watcher::Config::default()));
        while let Some(event) = events.next().await {
            let now = Instant::now();
            if let Ok(watcher::Event::Apply(pod) | watcher::Event::InitApply(pod)) = event {
                let bound = pod
                    .spec
                    .as_ref()
                    .and_then(|s| s.node_name.as_ref())
                    .is_some();
                let Some(name) = pod.metadata.name else {
                    continue;
                };
                let mut timeline = timeline.lock().unwrap();
                let times = timeline.entry(name).or_insert(PodTimes {
                    created: now,
                    bound: None,
                });
                if bound && times.bound.is_none() {
                    times.bound = Some(now);
                }
            }
        }
    });
}

/// `sparkyard serve`'s resident memory and CPU seconds (own, reaped children).
#[derive(Clone, Copy, Default)]
struct ProcessSample {
    rss_mib: f64,
    cpu_s: f64,
    children_cpu_s: f64,
}

fn sample(pid: u32) -> ProcessSample {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name (which is in parentheses and may hold spaces).
    let fields: Vec<f64> = stat
        .rsplit_once(')')
        .map(|(_, rest)| {
            rest.split_whitespace()
                .map(|f| f.parse().unwrap_or(0.0))
                .collect()
        })
        .unwrap_or_default();
    let tick = 100.0; // USER_HZ on Linux
    let field = |n: usize| fields.get(n - 3).copied().unwrap_or(0.0) / tick;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let rss_kib: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0.0);
    ProcessSample {
        rss_mib: rss_kib / 1024.0,
        cpu_s: field(14) + field(15),
        children_cpu_s: field(16) + field(17),
    }
}

impl Bench {
    /// How many of the virtual cluster's runs are in `states` (ListJobRuns, every page).
    async fn count_runs(&self, states: &[&str]) -> Result<usize, String> {
        Ok(self.list_runs(states).await?.len())
    }

    /// The virtual cluster's runs in `states` (ListJobRuns, every page).
    async fn list_runs(&self, states: &[&str]) -> Result<Vec<Value>, String> {
        let (mut runs, mut token) = (vec![], None::<String>);
        loop {
            let mut query = form_urlencoded::Serializer::new(String::new());
            query.append_pair("maxResults", "50");
            for state in states {
                query.append_pair("states", state);
            }
            if let Some(token) = &token {
                query.append_pair("nextToken", token);
            }
            let path = format!("/virtualclusters/{}/jobruns?{}", self.vc, query.finish());
            let page = self.emr.call("GET", &path, None).await?;
            runs.extend(page["jobRuns"].as_array().cloned().unwrap_or_default());
            match page["nextToken"].as_str() {
                Some(t) => token = Some(t.to_string()),
                None => return Ok(runs),
            }
        }
    }

    /// Part 3: StartJobRun at `per_minute` for `minutes`, drivers on simulated nodes.
    pub async fn load(&self, per_minute: f64, minutes: f64, driver_seconds: u64) {
        let total = (per_minute * minutes).round() as usize;
        let pid = self.server.child.id();
        println!(
            "\n== control plane: {total} runs at {per_minute}/min for {minutes} min; runners on the real node, drivers on simulated nodes ({driver_seconds} s each)"
        );
        let timeline: Timeline = Arc::default();
        watch_timeline(self.kube.clone(), NS, timeline.clone());
        let params = format!(
            "{TINY} --conf spark.kubernetes.driver.node.selector.sparkyard.dev/pool=simulated \
             --conf spark.kubernetes.driver.annotation.sparkyard.dev/simulated-duration={driver_seconds}s"
        );
        let overrides = json!({"applicationConfiguration": [{
            "classification": "emr-job-submitter",
            "properties": {"jobsubmitter.node.selector.sparkyard.dev/pool": "real"},
        }]});
        let before = sample(pid);
        println!(
            "  before: serve RSS {:.0} MiB, CPU {:.1} s",
            before.rss_mib, before.cpu_s
        );
        let answered: Arc<Mutex<Vec<Started>>> = Arc::default();
        let errors: Arc<Mutex<Vec<String>>> = Arc::default();
        let begin = Instant::now();
        let sampler = {
            let (timeline, answered) = (timeline.clone(), answered.clone());
            tokio::spawn(async move {
                let mut last = before;
                println!(
                    "  {:>6} {:>9} {:>8} {:>8} {:>9} {:>14} {:>16}",
                    "t s",
                    "answered",
                    "drivers",
                    "bound",
                    "RSS MiB",
                    "serve CPU/30s",
                    "runners CPU/30s"
                );
                loop {
                    tokio::time::sleep(Duration::from_secs(30)).await;
                    let now = sample(pid);
                    let (drivers, bound) = {
                        let t = timeline.lock().unwrap();
                        let drivers = t.iter().filter(|(n, _)| n.ends_with("-driver"));
                        let (d, b) = drivers.fold((0, 0), |(d, b), (_, times)| {
                            (d + 1, b + times.bound.is_some() as usize)
                        });
                        (d, b)
                    };
                    println!(
                        "  {:>6.0} {:>9} {:>8} {:>8} {:>9.0} {:>14.1} {:>16.1}",
                        begin.elapsed().as_secs_f64(),
                        answered.lock().unwrap().len(),
                        drivers,
                        bound,
                        now.rss_mib,
                        now.cpu_s - last.cpu_s,
                        now.children_cpu_s - last.children_cpu_s
                    );
                    last = now;
                }
            })
        };
        let mut tasks = Vec::with_capacity(total);
        for i in 0..total {
            let at = begin + Duration::from_secs_f64(i as f64 * 60.0 / per_minute);
            tokio::time::sleep_until(tokio::time::Instant::from_std(at)).await;
            let (emr, vc, role) = (self.emr.clone(), self.vc.clone(), self.role_arn.clone());
            let (params, overrides) = (params.clone(), overrides.clone());
            let (answered, errors) = (answered.clone(), errors.clone());
            tasks.push(tokio::spawn(async move {
                let sent = Instant::now();
                match emr
                    .start_job_run_with(&vc, &role, &format!("load-{i}"), &params, overrides)
                    .await
                {
                    Ok(id) => {
                        let at = Instant::now();
                        let call_s = (at - sent).as_secs_f64();
                        answered.lock().unwrap().push(Started {
                            index: i,
                            id,
                            at,
                            call_s,
                        });
                    }
                    Err(e) => errors.lock().unwrap().push(e),
                }
            }));
        }
        for t in tasks {
            let _ = t.await;
        }
        let submitted_in = begin.elapsed().as_secs_f64();
        println!("  submitted {total} in {submitted_in:.1} s");
        // Every driver bound (bounded wait), then every run finished.
        let runs = answered.lock().unwrap().clone();
        let deadline = Instant::now() + Duration::from_secs(300);
        loop {
            let pending = {
                let t = timeline.lock().unwrap();
                runs.iter()
                    .filter(|run| {
                        t.get(&format!("spark-{}-driver", run.id))
                            .is_none_or(|p| p.bound.is_none())
                    })
                    .count()
            };
            if pending == 0 || Instant::now() > deadline {
                if pending > 0 {
                    println!("  {pending} drivers not bound after 300 s");
                }
                break;
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        let deadline = Instant::now() + Duration::from_secs(600);
        loop {
            match self.count_runs(&["PENDING", "SUBMITTED", "RUNNING"]).await {
                Ok(0) => break,
                Ok(n) if Instant::now() > deadline => {
                    println!("  {n} runs still active after 600 s");
                    break;
                }
                Ok(_) => {}
                Err(e) => println!("  ListJobRuns: {e}"),
            }
            tokio::time::sleep(Duration::from_secs(2)).await;
        }
        let finished_in = begin.elapsed().as_secs_f64();
        let completed = self.count_runs(&["COMPLETED"]).await.unwrap_or(0);
        let failed_runs = self
            .list_runs(&["FAILED", "CANCELLED"])
            .await
            .unwrap_or_default();
        let failed = failed_runs.len();
        let at_end = sample(pid);
        println!(
            "  all finished at {finished_in:.1} s: {completed} COMPLETED, {failed} FAILED or CANCELLED, {} StartJobRun errors",
            errors.lock().unwrap().len()
        );
        for e in errors.lock().unwrap().iter().take(3) {
            println!("  error: {e}");
        }
        for run in failed_runs.iter().take(3) {
            println!(
                "  {} {} {}: {}",
                run["id"].as_str().unwrap_or("?"),
                run["state"].as_str().unwrap_or("?"),
                run["failureReason"].as_str().unwrap_or("-"),
                run["stateDetails"].as_str().unwrap_or("-")
            );
        }

        // Latencies from the StartJobRun response, overall and per minute of submission.
        let t = timeline.lock().unwrap().clone();
        let mut per_minute_rows: Vec<(Vec<f64>, Vec<f64>)> =
            vec![(vec![], vec![]); minutes.ceil() as usize];
        let (mut created, mut bound, mut calls) = (vec![], vec![], vec![]);
        for run in &runs {
            calls.push(run.call_s);
            let Some(driver) = t.get(&format!("spark-{}-driver", run.id)) else {
                continue;
            };
            let minute = ((run.index as f64 / per_minute) as usize).min(per_minute_rows.len() - 1);
            let at = run.at;
            let c = driver.created.saturating_duration_since(at).as_secs_f64();
            created.push(c);
            per_minute_rows[minute].0.push(c);
            if let Some(b) = driver.bound {
                let b = b.saturating_duration_since(at).as_secs_f64();
                bound.push(b);
                per_minute_rows[minute].1.push(b);
            }
        }
        println!("  per minute of submission (driver created / bound, s):");
        for (m, (c, b)) in per_minute_rows.iter_mut().enumerate() {
            c.sort_by(f64::total_cmp);
            b.sort_by(f64::total_cmp);
            println!(
                "    minute {m:>2}: n={:<5} created p50 {:.3} p99 {:.3}   bound p50 {:.3} p99 {:.3}",
                c.len(),
                percentile(c, 50.0),
                percentile(c, 99.0),
                percentile(b, 50.0),
                percentile(b, 99.0)
            );
        }
        summary("StartJobRun call", &calls, "ms");
        summary("StartJobRun -> driver created", &created, "s");
        summary("StartJobRun -> driver bound", &bound, "s");

        // Finished runs' objects go after the TTL; memory after that is the "after" figure.
        let pods: Api<Pod> = Api::namespaced(self.kube.clone(), NS);
        let deadline = Instant::now() + Duration::from_secs(180);
        let left = loop {
            let left = pods.list(&Default::default()).await.map(|l| l.items.len());
            if matches!(left, Ok(0)) || Instant::now() > deadline {
                break left;
            }
            tokio::time::sleep(Duration::from_secs(2)).await;
        };
        let after = sample(pid);
        sampler.abort();
        if let Ok(keep) = std::env::var("SPARKYARD_BENCH_KEEP_LOG") {
            let _ = std::fs::write(&keep, self.server.log());
            println!("  server log kept in {keep}");
        }
        let runs_done = runs.len().max(1) as f64;
        println!(
            "  pods left in {NS} after the TTL: {}",
            left.map_or_else(|e| e.to_string(), |n| n.to_string())
        );
        println!(
            "  serve RSS MiB: before {:.0}, at the end of the runs {:.0}, after GC {:.0}",
            before.rss_mib, at_end.rss_mib, after.rss_mib
        );
        println!(
            "  CPU per 1,000 runs: sparkyard serve {:.1} s, runner processes {:.1} s (over {:.0} s wall)",
            (at_end.cpu_s - before.cpu_s) / runs_done * 1000.0,
            (at_end.children_cpu_s - before.children_cpu_s) / runs_done * 1000.0,
            finished_in
        );
    }
}
