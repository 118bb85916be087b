//! Whole-cycle tests of [`Snapshot::schedule`]: the seed's preemption scenario, victim
//! choice across nodes, kube-scheduler's messages, and property tests of preemption's
//! invariants over random multi-node layouts.

use chrono::{DateTime, Duration, Utc};
use proptest::prelude::*;
use serde_json::{json, Value};

use super::filter::resources_fit;
use super::*;

fn t0() -> DateTime<Utc> {
    "2025-01-01T00:00:00Z".parse().unwrap()
}

fn node(name: &str, cpu: &str, memory: &str, labels: &[(&str, &str)]) -> NodeInfo {
    let mut c = NodeConfig {
        name: name.into(),
        cpu: cpu.into(),
        memory: memory.into(),
        capacity: None,
        ..NodeConfig::default()
    };
    c.labels = labels
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    c.node_info().unwrap()
}

/// A pod as the API would hold it; `started` is seconds after t0 (bound pods only).
fn pod(name: &str, priority: i32, cpu: &str, memory: &str, spec_extra: Value) -> PodRequirements {
    let mut spec = json!({
        "priority": priority,
        "containers": [{"name": "c", "resources": {"requests": {"cpu": cpu, "memory": memory}}}]
    });
    if let (Some(s), Some(extra)) = (spec.as_object_mut(), spec_extra.as_object()) {
        s.extend(extra.clone());
    }
    PodRequirements::from_pod(&json!({
        "metadata": {"name": name, "namespace": "ns", "uid": format!("uid-{name}"),
                     "creationTimestamp": "2025-01-01T00:00:00Z"},
        "spec": spec
    }))
    .unwrap()
}

fn bound(mut p: PodRequirements, node: &str, started: i64) -> PodRequirements {
    p.node_name = Some(node.into());
    p.start_time = Some(t0() + Duration::seconds(started));
    p
}

fn unschedulable(d: Decision) -> (String, Nomination, Option<PreemptionPlan>) {
    match d {
        Decision::Unschedulable {
            message,
            nomination,
            preemption,
        } => (message, nomination, preemption),
        Decision::Bind { node } => panic!("expected Unschedulable, got Bind to {node}"),
    }
}

fn victim_names(plan: &PreemptionPlan) -> Vec<&str> {
    plan.victims.iter().map(|v| v.pod.name.as_str()).collect()
}

/// The seed's steps 16–17 as data: a congested node; the low-priority monthly job's driver
/// (critical-priority 400, from the driver pod template) and its two executors
/// (low-priority 100) run; the intra-day job's driver (400) arrives.
#[test]
fn seed_scenario_preempts_low_executors_never_the_low_driver() {
    let mut s = Snapshot::with_nodes([node(
        "node-1",
        "3500m",
        "16Gi",
        &[("eks.amazonaws.com/capacityType", "ON_DEMAND")],
    )]);
    let on_demand = json!({"nodeSelector": {"eks.amazonaws.com/capacityType": "ON_DEMAND"}});
    s.upsert_pod(bound(
        pod("low-driver", 400, "1", "1408Mi", on_demand.clone()),
        "node-1",
        0,
    ));
    s.upsert_pod(bound(
        pod("low-exec-1", 100, "1", "2432Mi", json!({})),
        "node-1",
        20,
    ));
    s.upsert_pod(bound(
        pod("low-exec-2", 100, "1", "2432Mi", json!({})),
        "node-1",
        21,
    ));

    let high_driver = pod("high-driver", 400, "1", "1408Mi", on_demand.clone());
    let d = s.schedule(&high_driver);
    let (message, nomination, plan) = unschedulable(d.clone());
    assert_eq!(message, "0/1 nodes are available: 1 Insufficient cpu.");
    assert_eq!(nomination, Nomination::Set("node-1".into()));
    let plan = plan.unwrap();
    // One executor suffices, and it is the later one: "executor #2 got removed".
    assert_eq!(victim_names(&plan), ["low-exec-2"]);
    assert!(!plan.victims[0].already_terminating);
    assert_eq!(
        plan.victim_event_message(&high_driver.uid),
        "Preempted by pod uid-high-driver on node node-1"
    );

    // The victim terminates; the driver waits for it instead of preempting more.
    s.assume(&high_driver, &d, t0() + Duration::seconds(60));
    let mut nominated = high_driver.clone();
    nominated.nominated_node_name = Some("node-1".into());
    let d = s.schedule(&nominated);
    let (message, nomination, plan) = unschedulable(d.clone());
    assert_eq!(
        message,
        "0/1 nodes are available: 1 Insufficient cpu. preemption: not eligible due to a terminating pod on the nominated node."
    );
    assert_eq!((nomination, plan), (Nomination::Keep, None));

    // Meanwhile the low driver asks for a replacement executor: the freed room is the
    // nominated driver's, and nothing of lower priority is left to take.
    s.remove_pod("uid-low-exec-2");
    let exec_3 = pod("low-exec-3", 100, "1", "2432Mi", json!({}));
    let (message, _, plan) = unschedulable(s.schedule(&exec_3));
    assert_eq!(
        message,
        "0/1 nodes are available: 1 Insufficient cpu. preemption: 0/1 nodes are available: 1 No preemption victims found for incoming pod."
    );
    assert!(plan.is_none());

    // The high driver binds to its nominated node.
    let d = s.schedule(&nominated);
    assert_eq!(
        d,
        Decision::Bind {
            node: "node-1".into()
        }
    );
    s.assume(&nominated, &d, t0() + Duration::seconds(61));

    // Its executors (critical-priority too, per the high-priority template) take the
    // remaining low executor, then find only 400s: the low driver is never a victim.
    let high_exec_1 = pod("high-exec-1", 400, "1", "2432Mi", on_demand.clone());
    let d = s.schedule(&high_exec_1);
    assert_eq!(
        victim_names(&unschedulable(d.clone()).2.unwrap()),
        ["low-exec-1"]
    );
    s.assume(&high_exec_1, &d, t0() + Duration::seconds(62));
    s.remove_pod("uid-low-exec-1");
    let high_exec_2 = pod("high-exec-2", 400, "1", "2432Mi", on_demand);
    let (message, nomination, plan) = unschedulable(s.schedule(&high_exec_2));
    assert!(message.ends_with(
        "preemption: 0/1 nodes are available: 1 No preemption victims found for incoming pod."
    ));
    assert_eq!((nomination, plan), (Nomination::Clear, None));
    assert!(s.pods_on("node-1").iter().any(|p| p.name == "low-driver"));

    // When the high job ends, the low job's replacement executor runs ("executor #3").
    for name in ["uid-high-driver", "uid-high-exec-1"] {
        s.remove_pod(name);
    }
    assert_eq!(
        s.schedule(&exec_3),
        Decision::Bind {
            node: "node-1".into()
        }
    );
}

#[test]
fn victims_come_from_the_node_with_the_least_important_pods() {
    let mut s = Snapshot::with_nodes([
        node("a", "2", "8Gi", &[]),
        node("b", "2", "8Gi", &[]),
        node("c", "2", "8Gi", &[]),
    ]);
    // a: one 300 pod using everything. b: two 100 pods. c: a 100 pod next to a 500 pod
    // that alone leaves too little room.
    s.upsert_pod(bound(pod("a-300", 300, "2", "1Gi", json!({})), "a", 0));
    s.upsert_pod(bound(pod("b-100-x", 100, "1", "1Gi", json!({})), "b", 0));
    s.upsert_pod(bound(pod("b-100-y", 100, "1", "1Gi", json!({})), "b", 5));
    s.upsert_pod(bound(pod("c-500", 500, "1500m", "1Gi", json!({})), "c", 0));
    s.upsert_pod(bound(pod("c-100", 100, "500m", "1Gi", json!({})), "c", 0));

    // Needs 2 cores: a would cost one 300, b two 100s → b (lower highest priority).
    let d = s.schedule(&pod("p", 400, "2", "1Gi", json!({})));
    let plan = unschedulable(d.clone()).2.unwrap();
    assert_eq!(plan.node, "b");
    assert_eq!(
        victim_names(&plan),
        ["b-100-x", "b-100-y"],
        "most important (older) first"
    );

    // Needs 1 core: b needs one 100 (the younger); c can't make room → b.
    let d = s.schedule(&pod("q", 400, "1", "1Gi", json!({})));
    let plan = unschedulable(d.clone()).2.unwrap();
    assert_eq!(
        (plan.node.as_str(), victim_names(&plan)),
        ("b", vec!["b-100-y"])
    );

    // A 200 preemptor may only evict 100s: a is no candidate (no victims).
    let d = s.schedule(&pod("r", 200, "2", "1Gi", json!({})));
    assert_eq!(unschedulable(d.clone()).2.unwrap().node, "b");

    // Nothing below 100: nothing to evict anywhere.
    let (message, nomination, plan) =
        unschedulable(s.schedule(&pod("s", 100, "1", "1Gi", json!({}))));
    assert_eq!(
        message,
        "0/3 nodes are available: 3 Insufficient cpu. preemption: 0/3 nodes are available: 3 No preemption victims found for incoming pod."
    );
    assert_eq!((nomination, plan), (Nomination::Clear, None));
}

#[test]
fn selectors_make_preemption_unhelpful() {
    let mut s = Snapshot::with_nodes([
        node("od-1", "4", "4Gi", &[("capacity", "on-demand")]),
        node("spot-1", "4", "64Gi", &[("capacity", "spot")]),
        node("spot-2", "4", "64Gi", &[("capacity", "spot")]),
    ]);
    s.upsert_pod(bound(pod("big", 500, "1", "3Gi", json!({})), "od-1", 0));
    let p = pod(
        "p",
        400,
        "1",
        "2Gi",
        json!({"nodeSelector": {"capacity": "on-demand"}}),
    );
    let (message, nomination, plan) = unschedulable(s.schedule(&p));
    assert_eq!(
        message,
        "0/3 nodes are available: 1 Insufficient memory, 2 node(s) didn't match Pod's node affinity/selector. \
         preemption: 0/3 nodes are available: 1 No preemption victims found for incoming pod, 2 Preemption is not helpful for scheduling."
    );
    assert_eq!((nomination, plan), (Nomination::Clear, None));
}

#[test]
fn taints_cordons_and_pod_slots_in_messages() {
    let mut tainted = node("n", "4", "4Gi", &[]);
    tainted.taints.push(Taint {
        key: "key".into(),
        value: "value".into(),
        effect: TaintEffect::NoSchedule,
    });
    let mut s = Snapshot::with_nodes([tainted.clone()]);
    let (message, ..) = unschedulable(s.schedule(&pod("p", 0, "1", "1Gi", json!({}))));
    assert_eq!(
        message,
        "0/1 nodes are available: 1 node(s) had untolerated taint {key: value}. \
         preemption: 0/1 nodes are available: 1 Preemption is not helpful for scheduling."
    );
    let tolerant = pod(
        "t",
        0,
        "1",
        "1Gi",
        json!({"tolerations": [{"key": "key", "operator": "Exists"}]}),
    );
    assert_eq!(s.schedule(&tolerant), Decision::Bind { node: "n".into() });

    // Tainting a node through its Node object takes effect (the static cache is dropped).
    let mut cordoned = tainted.clone();
    cordoned.unschedulable = true;
    s.upsert_node(cordoned);
    assert!(unschedulable(s.schedule(&tolerant))
        .0
        .starts_with("0/1 nodes are available: 1 node(s) were unschedulable."));

    let mut small = node("small", "4", "4Gi", &[]);
    small.allowed_pods = 1;
    let mut s = Snapshot::with_nodes([small]);
    s.upsert_pod(bound(pod("only", 0, "100m", "1Mi", json!({})), "small", 0));
    let (message, ..) = unschedulable(s.schedule(&pod("p", 0, "100m", "1Mi", json!({}))));
    assert!(
        message.starts_with("0/1 nodes are available: 1 Too many pods."),
        "{message}"
    );
}

#[test]
fn never_policy_and_empty_cluster() {
    let mut s = Snapshot::with_nodes([node("n", "1", "4Gi", &[])]);
    s.upsert_pod(bound(pod("low", 0, "1", "1Gi", json!({})), "n", 0));
    let p = pod("p", 1000, "1", "1Gi", json!({"preemptionPolicy": "Never"}));
    let (message, nomination, plan) = unschedulable(s.schedule(&p));
    assert_eq!(message, "0/1 nodes are available: 1 Insufficient cpu. preemption: not eligible due to preemptionPolicy=Never.");
    assert_eq!((nomination, plan), (Nomination::Keep, None));

    let mut empty = Snapshot::new();
    assert_eq!(
        unschedulable(empty.schedule(&p)).0,
        "no nodes available to schedule pods"
    );
}

#[test]
fn binding_prefers_emptier_nodes_and_breaks_ties_by_name() {
    let mut s = Snapshot::with_nodes([
        node("b", "4", "8Gi", &[]),
        node("a", "4", "8Gi", &[]),
        node("c", "8", "16Gi", &[]),
    ]);
    let p = pod("p", 0, "1", "1Gi", json!({}));
    assert_eq!(
        s.schedule(&p),
        Decision::Bind { node: "c".into() },
        "the largest node is least allocated"
    );
    s.upsert_pod(bound(pod("x", 0, "6", "12Gi", json!({})), "c", 0));
    assert_eq!(
        s.schedule(&p),
        Decision::Bind { node: "a".into() },
        "a tie between a and b goes to a"
    );
    // assume() makes the next decision see the first.
    let d = s.schedule(&p);
    s.assume(&p, &d, t0());
    assert_eq!(
        s.schedule(&pod("p2", 0, "1", "1Gi", json!({}))),
        Decision::Bind { node: "b".into() }
    );
    assert_eq!(s.usage("a").unwrap().pods, 1);
}

#[test]
fn nominated_room_is_kept_from_lower_priority_pods() {
    let mut s = Snapshot::with_nodes([node("n", "2", "8Gi", &[])]);
    let mut waiting = pod("waiting", 400, "2", "1Gi", json!({}));
    waiting.nominated_node_name = Some("n".into());
    s.upsert_pod(waiting.clone());
    // The node is empty, but its room is promised to a 400.
    let (message, ..) = unschedulable(s.schedule(&pod("low", 100, "1", "1Gi", json!({}))));
    assert!(
        message.starts_with("0/1 nodes are available: 1 Insufficient cpu."),
        "{message}"
    );
    // An equal- or higher-priority pod is not held back by it... for 500 it is free.
    assert_eq!(
        s.schedule(&pod("vip", 500, "1", "1Gi", json!({}))),
        Decision::Bind { node: "n".into() }
    );
    // The nominated pod itself binds there.
    assert_eq!(s.schedule(&waiting), Decision::Bind { node: "n".into() });

    // A preemption that lands on the node clears lower-priority nominations there.
    s.upsert_pod(bound(pod("filler", 0, "2", "1Gi", json!({})), "n", 0));
    let d = s.schedule(&pod("boss", 1000, "2", "1Gi", json!({})));
    let plan = unschedulable(d.clone()).2.unwrap();
    assert_eq!(victim_names(&plan), ["filler"]);
    assert_eq!(
        plan.clear_nominated
            .iter()
            .map(|p| p.name.as_str())
            .collect::<Vec<_>>(),
        ["waiting"]
    );
}

#[test]
fn pods_seen_before_their_node_attach_later() {
    let mut s = Snapshot::new();
    s.upsert_pod(bound(
        pod("early", 0, "1", "1Gi", json!({})),
        "late-node",
        0,
    ));
    s.upsert_node(node("late-node", "1", "4Gi", &[]));
    assert_eq!(s.usage("late-node").unwrap().requested.milli_cpu, 1000);
    s.remove_node("late-node");
    s.upsert_node(node("late-node", "1", "4Gi", &[]));
    assert_eq!(s.usage("late-node").unwrap().pods, 1);
    let mut done = bound(pod("early", 0, "1", "1Gi", json!({})), "late-node", 0);
    done.terminal = true;
    s.upsert_pod(done);
    assert_eq!(
        s.usage("late-node").unwrap().pods,
        0,
        "terminal pods free their node"
    );
}

// ---- property tests --------------------------------------------------------------

#[derive(Debug, Clone)]
struct Layout {
    nodes: Vec<(i64, i64)>,                 // (millicores, MiB)
    pods: Vec<(usize, i32, i64, i64, i64)>, // (node, priority, millicores, MiB, start second)
    preemptor: (i32, i64, i64),             // (priority, millicores, MiB)
}

const PRIORITIES: [i32; 5] = [0, 100, 200, 300, 400];

fn layout() -> impl Strategy<Value = Layout> {
    let nodes = prop::collection::vec(
        (4i64..=16, 4i64..=32).prop_map(|(c, m)| (c * 500, m * 1024)),
        1..6,
    );
    nodes.prop_flat_map(|nodes| {
        let n = nodes.len();
        let pods = prop::collection::vec(
            (0..n, 0..PRIORITIES.len(), 1i64..=8, 1i64..=16, 0i64..100),
            0..30,
        )
        .prop_map(|v| {
            v.into_iter()
                .map(|(node, p, c, m, s)| (node, PRIORITIES[p], c * 250, m * 512, s))
                .collect()
        });
        let preemptor = (1..=PRIORITIES.len(), 1i64..=12, 1i64..=24)
            .prop_map(|(p, c, m)| (p as i32 * 100, c * 250, m * 512));
        (Just(nodes), pods, preemptor).prop_map(|(nodes, pods, preemptor)| Layout {
            nodes,
            pods,
            preemptor,
        })
    })
}

fn raw_pod(name: &str, priority: i32, milli: i64, mib: i64) -> PodRequirements {
    pod(
        name,
        priority,
        &format!("{milli}m"),
        &format!("{mib}Mi"),
        json!({}),
    )
}

fn build(l: &Layout) -> Snapshot {
    let mut s = Snapshot::with_nodes(l.nodes.iter().enumerate().map(|(i, (c, m))| {
        let mut n = node(&format!("n{i}"), &format!("{c}m"), &format!("{m}Mi"), &[]);
        n.allowed_pods = 6;
        n
    }));
    for (k, &(node_i, prio, c, m, start)) in l.pods.iter().enumerate() {
        let name = format!("n{node_i}");
        let p = bound(raw_pod(&format!("p{k}"), prio, c, m), &name, start);
        // Keep the layout valid: only pods that fit are bound.
        if resources_fit(&p.requests, s.node(&name).unwrap(), s.usage(&name).unwrap()) {
            s.upsert_pod(p);
        }
    }
    s
}

/// Independent of the implementation: the lowest priority `t` such that evicting every pod
/// of priority ≤ t (and below the preemptor's) lets the preemptor fit on `node`.
fn min_highest_victim_priority(s: &Snapshot, node: &str, pre: &PodRequirements) -> Option<i32> {
    let info = s.node(node).unwrap();
    let pods = s.pods_on(node);
    let mut levels: Vec<i32> = pods
        .iter()
        .map(|p| p.priority)
        .filter(|&p| p < pre.priority)
        .collect();
    levels.sort();
    levels.dedup();
    levels.into_iter().find(|&t| {
        let usage =
            NodeUsage::from_pods(pods.iter().filter(|p| p.priority > t).map(|p| p.as_ref()));
        resources_fit(&pre.requests, info, &usage)
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, .. ProptestConfig::default() })]

    #[test]
    fn preemption_invariants(l in layout()) {
        let mut s = build(&l);
        let (prio, c, m) = l.preemptor;
        let pre = raw_pod("preemptor", prio, c, m);
        let names: Vec<String> = (0..l.nodes.len()).map(|i| format!("n{i}")).collect();
        match s.schedule(&pre) {
            Decision::Bind { node } => {
                prop_assert!(resources_fit(&pre.requests, s.node(&node).unwrap(), s.usage(&node).unwrap()));
            }
            Decision::Unschedulable { preemption: None, .. } => {
                // Nothing fits and no node could be freed.
                for n in &names {
                    prop_assert!(!resources_fit(&pre.requests, s.node(n).unwrap(), s.usage(n).unwrap()));
                    prop_assert_eq!(min_highest_victim_priority(&s, n, &pre), None);
                }
            }
            Decision::Unschedulable { preemption: Some(plan), nomination, .. } => {
                prop_assert_eq!(nomination, Nomination::Set(plan.node.clone()));
                let pods = s.pods_on(&plan.node).to_vec();
                let victim = |p: &PodRequirements| plan.victims.iter().any(|v| v.pod.uid == p.uid);
                prop_assert!(!plan.victims.is_empty());
                // Victims are on the node and strictly below the preemptor.
                for v in &plan.victims {
                    prop_assert!(pods.iter().any(|p| p.uid == v.pod.uid));
                    prop_assert!(v.priority < pre.priority);
                }
                // After evicting them, the preemptor fits.
                let info = s.node(&plan.node).unwrap();
                let after = NodeUsage::from_pods(pods.iter().filter(|p| !victim(p)).map(|p| p.as_ref()));
                prop_assert!(resources_fit(&pre.requests, info, &after));
                // No victim could have been spared.
                for v in pods.iter().filter(|p| victim(p)) {
                    let mut spared = after.clone();
                    spared.add(v);
                    prop_assert!(!resources_fit(&pre.requests, info, &spared), "victim {} could be reprieved", v.name);
                }
                // No node offered a lower-priority way out.
                let highest = plan.victims.iter().map(|v| v.priority).max().unwrap();
                for n in &names {
                    if let Some(t) = min_highest_victim_priority(&s, n, &pre) {
                        prop_assert!(highest <= t, "evicted priority {} on {} while {} would have sufficed on {}", highest, plan.node, t, n);
                    }
                }
                prop_assert_eq!(Some(highest), min_highest_victim_priority(&s, &plan.node, &pre));
                // The node is kube's pick (with ties to the smallest name): recompute every
                // node's victims without the snapshot's pruning and compare keys.
                let key_on = |n: &str| {
                    let pods = s.pods_on(n);
                    super::preemption::select_victims_on_node(&pre, s.node(n).unwrap(), s.usage(n).unwrap(), pods)
                        .ok()
                        .filter(|v| !v.is_empty())
                        .map(|v| super::preemption::CandidateKey::of(v.iter().map(|&i| pods[i].as_ref())))
                };
                let best = names.iter().filter_map(|n| key_on(n).map(|k| (k, n.clone()))).min().unwrap();
                prop_assert_eq!((key_on(&plan.node).unwrap(), plan.node.clone()), best);
                // Carrying the plan out lets the preemptor bind to its node.
                s.assume(&pre, &Decision::Unschedulable { message: String::new(), nomination: Nomination::Set(plan.node.clone()), preemption: Some(plan.clone()) }, t0());
                s.check_caches();
                for v in &plan.victims {
                    s.remove_pod(&v.pod.uid);
                }
                s.check_caches();
                let mut nominated = pre.clone();
                nominated.nominated_node_name = Some(plan.node.clone());
                prop_assert_eq!(s.schedule(&nominated), Decision::Bind { node: plan.node.clone() });
            }
        }
    }

    #[test]
    fn usage_tracks_pod_events(l in layout(), removals in prop::collection::vec(0usize..30, 0..10)) {
        let mut s = build(&l);
        for r in removals {
            s.remove_pod(&format!("uid-p{r}"));
        }
        for i in 0..l.nodes.len() {
            let n = format!("n{i}");
            let expected = NodeUsage::from_pods(s.pods_on(&n).iter().map(|p| p.as_ref()));
            prop_assert_eq!(s.usage(&n).unwrap(), &expected);
        }
        s.check_caches();
    }
}

/// A cluster larger than preemption's search window (max(10 %, 100) candidates): nodes of
/// 4 cores holding pods of 1 core at the seed's priorities, most of them full.
#[derive(Debug, Clone)]
struct BigLayout {
    pods: Vec<Vec<(i32, i64)>>, // per node: (priority, start second)
    preemptor: i32,
}

fn big_layout() -> impl Strategy<Value = BigLayout> {
    // Full nodes of high-priority pods (drivers, say), and a few nodes anywhere with one
    // lower-priority pod: the lowest way out is often beyond the window.
    let full = prop::collection::vec((prop_oneof![Just(300), Just(400)], 0i64..100), 4..=4);
    let nodes = prop::collection::vec(full, 120..260);
    let low = prop::collection::vec((0usize..1000, 0..3usize, 0i64..100), 0..4);
    (nodes, low, prop_oneof![Just(500), Just(400)]).prop_map(|(mut pods, low, preemptor)| {
        let len = pods.len();
        for (at, p, start) in low {
            pods[at % len][0] = (PRIORITIES[p], start);
        }
        BigLayout { pods, preemptor }
    })
}

fn big_snapshot(l: &BigLayout) -> (Snapshot, Vec<String>) {
    let names: Vec<String> = (0..l.pods.len()).map(|i| format!("b{i:03}")).collect();
    let mut s = Snapshot::with_nodes(names.iter().map(|n| node(n, "4", "64Gi", &[])));
    for (i, pods) in l.pods.iter().enumerate() {
        for (k, &(prio, start)) in pods.iter().enumerate() {
            let p = raw_pod(&format!("p{i}-{k}"), prio, 1000, 1024);
            s.upsert_pod(bound(p, &names[i], start));
        }
    }
    (s, names)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, .. ProptestConfig::default() })]

    /// The one-pass filter's bit set is `resources_fit` and `for_each_resource_reason`.
    #[test]
    fn core_misfit_is_resources_fit(
        alloc in (0i64..8, 0i64..8, 0i64..8, 0i64..4),
        used in (0i64..8, 0i64..8, 0i64..8, 0i64..4),
        req in (0i64..4, 0i64..4, 0i64..4),
    ) {
        let mut info = node("n", "1", "1Gi", &[]);
        info.allocatable.milli_cpu = alloc.0;
        info.allocatable.memory = alloc.1;
        info.allocatable.ephemeral_storage = alloc.2;
        info.allowed_pods = alloc.3;
        let mut usage = NodeUsage::default();
        usage.requested.milli_cpu = used.0;
        usage.requested.memory = used.1;
        usage.requested.ephemeral_storage = used.2;
        usage.pods = used.3;
        let requests = Resources { milli_cpu: req.0, memory: req.1, ephemeral_storage: req.2, scalars: vec![] };
        let misfit = filter::core_misfit(&requests, &info, &usage);
        prop_assert_eq!(misfit == 0, resources_fit(&requests, &info, &usage));
        let mut from_bits = Vec::new();
        filter::for_each_misfit_reason(misfit, |r| from_bits.push(r));
        prop_assert_eq!(from_bits, filter::resource_reasons(&requests, &info, &usage));
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, .. ProptestConfig::default() })]

    /// `is_candidate` (how skipped dry runs are counted) agrees with the dry run.
    #[test]
    fn is_candidate_agrees_with_the_dry_run(l in layout()) {
        let s = build(&l);
        let (prio, c, m) = l.preemptor;
        let pre = raw_pod("preemptor", prio, c, m);
        for i in 0..l.nodes.len() {
            let n = format!("n{i}");
            let (info, usage, pods) = (s.node(&n).unwrap(), s.usage(&n).unwrap(), s.pods_on(&n));
            let dry_run = preemption::select_victims_on_node(&pre, info, usage, pods);
            let candidate = matches!(dry_run, Ok(v) if !v.is_empty());
            prop_assert_eq!(preemption::is_candidate(&pre, info, usage, pods), candidate);
            prop_assert_eq!(s.is_candidate_on(&n, &pre), candidate);
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, .. ProptestConfig::default() })]

    /// The driver-safety invariant beyond the search window: in a cluster where kube's
    /// window (100 candidates) does not reach every node, preemption still evicts nothing
    /// of higher priority than some node elsewhere would need — and otherwise picks as
    /// kube-scheduler does, the best candidate of its window.
    #[test]
    fn preemption_invariants_beyond_the_window(l in big_layout()) {
        let (mut s, names) = big_snapshot(&l);
        let pre = raw_pod("preemptor", l.preemptor, 1000, 1024);
        let global_min = names.iter().filter_map(|n| min_highest_victim_priority(&s, n, &pre)).min();
        let key_on = |s: &Snapshot, n: &str| {
            let pods = s.pods_on(n);
            preemption::select_victims_on_node(&pre, s.node(n).unwrap(), s.usage(n).unwrap(), pods)
                .ok()
                .filter(|v| !v.is_empty())
                .map(|v| preemption::CandidateKey::of(v.iter().map(|&i| pods[i].as_ref())))
        };
        match s.schedule(&pre) {
            Decision::Bind { node } => {
                prop_assert!(resources_fit(&pre.requests, s.node(&node).unwrap(), s.usage(&node).unwrap()));
            }
            Decision::Unschedulable { preemption: None, .. } => prop_assert_eq!(global_min, None),
            Decision::Unschedulable { preemption: Some(plan), .. } => {
                let highest = plan.victims.iter().map(|v| v.priority).max().unwrap();
                prop_assert_eq!(Some(highest), global_min, "evicted priority {} while {:?} would do", highest, global_min);
                // Kube's window: the first max(10 %, 100) candidates from the pod's offset.
                let offset = snapshot::start_offset(&pre.key(), names.len());
                let window: Vec<(preemption::CandidateKey, String)> = (0..names.len())
                    .map(|step| &names[(offset + step) % names.len()])
                    .filter_map(|n| key_on(&s, n).map(|k| (k, n.clone())))
                    .take(snapshot::candidates_wanted(names.len()))
                    .collect();
                let chosen = (key_on(&s, &plan.node).unwrap(), plan.node.clone());
                let window_best = window.iter().min().unwrap().clone();
                if window_best.0.highest_priority == highest {
                    prop_assert_eq!(chosen, window_best);
                } else {
                    // Found past the window, at a lower priority than anything in it: the
                    // best candidate of the whole cluster.
                    prop_assert!(window_best.0.highest_priority > highest);
                    let overall = names.iter().filter_map(|n| key_on(&s, n).map(|k| (k, n.clone()))).min().unwrap();
                    prop_assert_eq!(chosen, overall);
                }
            }
        }
    }
}

/// A large cluster is searched as kube-scheduler searches it: from the pod's offset until
/// 10 % of the nodes (at least 100) are candidates, and the best of those wins — not the
/// best of the whole cluster.
#[test]
fn preemption_stops_after_enough_candidates() {
    assert_eq!(snapshot::candidates_wanted(40), 100);
    assert_eq!(snapshot::candidates_wanted(5000), 500);
    let nodes = 1000;
    let names: Vec<String> = (0..nodes).map(|i| format!("node-{i:04}")).collect();
    let mut s = Snapshot::with_nodes(names.iter().map(|n| node(n, "1", "4Gi", &[])));
    // Node i's only pod started at second i: the latest start is the best victim.
    for (i, name) in names.iter().enumerate() {
        s.upsert_pod(bound(
            pod(&format!("low-{i}"), 100, "1", "1Gi", json!({})),
            name,
            i as i64,
        ));
    }
    let preemptor = pod("high", 1000, "1", "1Gi", json!({}));
    let offset = snapshot::start_offset(&preemptor.key(), nodes);
    assert_eq!(offset, snapshot::start_offset(&preemptor.key(), nodes));
    let window: Vec<usize> = (0..100).map(|step| (offset + step) % nodes).collect();
    let expected = *window.iter().max().unwrap();
    let (_, nomination, plan) = unschedulable(s.schedule(&preemptor));
    assert_eq!(nomination, Nomination::Set(names[expected].clone()));
    assert_eq!(victim_names(&plan.unwrap()), [format!("low-{expected}")]);
}
