//! Provisioning rules, one test each, and the property that every placed pod fits.

use std::collections::BTreeMap;

use proptest::prelude::*;
use serde_json::{json, Value};
use sparkyard_scheduling::filter::{self, NodeUsage};
use sparkyard_scheduling::node::CapacityType;
use sparkyard_scheduling::{NodeConfig, PodRequirements, Taint, TaintEffect};

use crate::*;

fn pod(name: &str, cpu: &str, memory: &str, spec: Value) -> PodRequirements {
    let mut spec = spec;
    spec["containers"] =
        json!([{"name": "c", "resources": {"requests": {"cpu": cpu, "memory": memory}}}]);
    PodRequirements::from_pod(&json!({
        "metadata": {"name": name, "namespace": "ns", "uid": name, "creationTimestamp": "2025-01-01T00:00:00Z"},
        "spec": spec
    }))
    .unwrap()
}

fn pool(name: &str, reqs: &[(&str, Operator, &[&str])]) -> NodePoolSpec {
    NodePoolSpec {
        name: name.into(),
        requirements: reqs
            .iter()
            .map(|(k, o, v)| Requirement::new(k, *o, v))
            .collect(),
        ..Default::default()
    }
}

fn spot_and_od() -> NodePoolSpec {
    pool(
        "default",
        &[
            (
                "karpenter.sh/capacity-type",
                Operator::In,
                &["spot", "on-demand"],
            ),
            (
                "karpenter.k8s.aws/instance-category",
                Operator::In,
                &["c", "m", "r"],
            ),
        ],
    )
}

fn run(pools: &[NodePoolSpec], nodes: &[StateNode], pods: &[PodRequirements]) -> ScheduleResults {
    let types = instance_options("us-east-2", &[]);
    schedule(&ScheduleInput {
        pools,
        nodes,
        pods,
        daemonsets: &[],
        instance_types: &types,
        right_size: false,
    })
}

#[test]
fn a_selector_no_pool_defines_gets_karpenters_message() {
    let p = pod(
        "driver",
        "1",
        "1Gi",
        json!({"nodeSelector": {"eks.amazonaws.com/capacityType": "ON_DEMAND"}}),
    );
    let r = run(&[spot_and_od()], &[], &[p]);
    assert!(r.new_claims.is_empty());
    assert_eq!(
        r.errors[0].message,
        "incompatible with nodepool \"default\", daemonset overhead={}, incompatible requirements, label \"eks.amazonaws.com/capacityType\" does not have known values"
    );
    // A pool that sets the label as a template label satisfies it.
    let mut labelled = spot_and_od();
    labelled
        .labels
        .insert("eks.amazonaws.com/capacityType".into(), "ON_DEMAND".into());
    let p = pod(
        "driver",
        "1",
        "1Gi",
        json!({"nodeSelector": {"eks.amazonaws.com/capacityType": "ON_DEMAND"}}),
    );
    assert!(run(&[labelled], &[], &[p]).all_scheduled());
}

#[test]
fn conflicting_well_known_selectors_and_oversized_pods() {
    let od_only = pool(
        "od",
        &[("karpenter.sh/capacity-type", Operator::In, &["on-demand"])],
    );
    let p = pod(
        "x",
        "1",
        "1Gi",
        json!({"nodeSelector": {"karpenter.sh/capacity-type": "spot"}}),
    );
    let r = run(std::slice::from_ref(&od_only), &[], &[p]);
    assert!(r.errors[0].message.contains(
        "incompatible requirements, key karpenter.sh/capacity-type, karpenter.sh/capacity-type In [spot] not in karpenter.sh/capacity-type In [on-demand]"
    ), "{}", r.errors[0].message);
    let huge = pod("huge", "64", "1Gi", json!({}));
    let r = run(&[od_only], &[], &[huge]);
    assert_eq!(
        r.errors[0].message,
        "incompatible with nodepool \"od\", daemonset overhead={}, no instance type satisfied resources {\"cpu\":\"64\",\"memory\":\"1Gi\",\"pods\":\"1\"} and requirements karpenter.sh/capacity-type In [on-demand] (no instance type has enough resources)"
    );
}

#[test]
fn taints_need_tolerations_and_startup_taints_do_not() {
    let mut tainted = spot_and_od();
    tainted.taints = vec![Taint {
        key: "spark".into(),
        value: "true".into(),
        effect: TaintEffect::NoSchedule,
    }];
    tainted.startup_taints = vec![Taint {
        key: "cni".into(),
        value: "".into(),
        effect: TaintEffect::NoSchedule,
    }];
    let plain = pod("a", "1", "1Gi", json!({}));
    let r = run(std::slice::from_ref(&tainted), &[], &[plain]);
    assert!(
        r.errors[0]
            .message
            .ends_with("did not tolerate spark=true:NoSchedule"),
        "{}",
        r.errors[0].message
    );
    let tolerant = pod(
        "b",
        "1",
        "1Gi",
        json!({"tolerations": [{"key": "spark", "operator": "Exists"}]}),
    );
    let r = run(&[tainted], &[], &[tolerant]);
    assert!(r.all_scheduled());
    assert_eq!(r.new_claims[0].startup_taints[0].key, "cni");
}

#[test]
fn pools_are_tried_by_weight_then_name_descending() {
    let a = NodePoolSpec {
        weight: 10,
        ..pool("a", &[])
    };
    let b = pool("b", &[]);
    let c = pool("c", &[]);
    let r = run(
        &[b.clone(), a, c.clone()],
        &[],
        &[pod("p", "1", "1Gi", json!({}))],
    );
    assert_eq!(r.new_claims[0].pool, "a");
    let r = run(&[b, c], &[], &[pod("p", "1", "1Gi", json!({}))]);
    assert_eq!(r.new_claims[0].pool, "c", "equal weights: name descending");
    // A pod the heavier pool cannot take falls to the next one.
    let gpu_only = NodePoolSpec {
        weight: 50,
        ..pool(
            "x",
            &[("karpenter.k8s.aws/instance-family", Operator::In, &["r5"])],
        )
    };
    let r = run(
        &[gpu_only, pool("y", &[])],
        &[],
        &[pod(
            "p",
            "1",
            "1Gi",
            json!({"nodeSelector": {"karpenter.k8s.aws/instance-family": "c5"}}),
        )],
    );
    assert_eq!(r.new_claims[0].pool, "y");
}

#[test]
fn spot_is_preferred_when_allowed_and_the_cheapest_offering_wins() {
    let r = run(&[spot_and_od()], &[], &[pod("p", "500m", "1Gi", json!({}))]);
    let claim = &r.new_claims[0];
    let launch = claim.launch.as_ref().unwrap();
    assert_eq!(launch.capacity_type, CapacityType::Spot);
    // The cheapest spot offering of any type in the catalog that fits.
    let types = instance_options("us-east-2", &[]);
    let cheapest = types
        .iter()
        .filter(|t| ["c", "m", "r"].contains(&t.instance_type.category.as_str()))
        .flat_map(|t| {
            t.offerings
                .iter()
                .filter(|o| o.capacity_type == CapacityType::Spot)
                .map(move |o| (o.price, t))
        })
        .min_by(|a, b| a.0.total_cmp(&b.0))
        .unwrap();
    assert_eq!(launch.price, cheapest.0);
    assert_eq!(launch.instance_type, cheapest.1.instance_type.name);
    assert_eq!(
        claim.instance_types[0], launch.instance_type,
        "options sorted by price"
    );
    assert!(claim.instance_types.len() <= 60);
    let it_req = claim
        .requirements
        .iter()
        .find(|r| r.key == "node.kubernetes.io/instance-type")
        .unwrap();
    assert_eq!(it_req.values.len(), claim.instance_types.len());

    let od = pool(
        "od",
        &[
            ("karpenter.sh/capacity-type", Operator::In, &["on-demand"]),
            (
                "karpenter.k8s.aws/instance-category",
                Operator::In,
                &["c", "m", "r"],
            ),
        ],
    );
    let r = run(&[od], &[], &[pod("p", "500m", "1Gi", json!({}))]);
    let launch = r.new_claims[0].launch.clone().unwrap();
    assert_eq!(launch.capacity_type, CapacityType::OnDemand);
    assert_eq!(launch.price, 0.085, "c5/c6i.large on demand");

    // Every spot offering gone: on-demand after all.
    let unavailable: Vec<_> = sparkyard_instance_types::catalog()
        .iter()
        .flat_map(|t| {
            sparkyard_instance_types::zones("us-east-2")
                .into_iter()
                .map(move |z| (t.name.clone(), z, CapacityType::Spot))
        })
        .collect();
    let types = instance_options("us-east-2", &unavailable);
    let pods = [pod("p", "500m", "1Gi", json!({}))];
    let r = schedule(&ScheduleInput {
        pools: &[spot_and_od()],
        nodes: &[],
        pods: &pods,
        daemonsets: &[],
        instance_types: &types,
        right_size: false,
    });
    assert_eq!(
        r.new_claims[0].launch.as_ref().unwrap().capacity_type,
        CapacityType::OnDemand
    );
}

#[test]
fn limits_stop_new_claims() {
    let mut limited = spot_and_od();
    limited.limits = Some(Limits {
        cpu_millis: Some(20_000),
        memory_bytes: None,
        nodes: None,
    });
    limited.usage.cpu_millis = 4_000;
    // 16 CPU left: a 12-CPU pod gets a 16-vCPU node; the next finds no type within 0.
    let pods = [
        pod("a", "12", "1Gi", json!({})),
        pod("b", "12", "1Gi", json!({})),
    ];
    let r = run(&[limited], &[], &pods);
    assert_eq!(r.new_claims.len(), 1);
    assert_eq!(
        r.errors[0].message,
        "all available instance types exceed limits for nodepool: \"default\""
    );
    let mut counted = spot_and_od();
    counted.limits = Some(Limits {
        nodes: Some(1),
        ..Default::default()
    });
    let big = [
        pod("a", "30", "1Gi", json!({})),
        pod("b", "30", "1Gi", json!({})),
    ];
    let r = run(&[counted], &[], &big);
    assert_eq!(
        (r.new_claims.len(), r.errors.len()),
        (1, 1),
        "one node allowed"
    );
}

#[test]
fn existing_nodes_first_initialized_before_uninitialized() {
    let node = |name: &str, initialized: bool| {
        let mut n = NodeConfig {
            name: name.into(),
            nodegroup: None,
            ..NodeConfig::default()
        }
        .node_info()
        .unwrap();
        if !initialized {
            n.taints.push(Taint {
                key: "karpenter.sh/unregistered".into(),
                value: "".into(),
                effect: TaintEffect::NoExecute,
            });
        }
        StateNode {
            info: n,
            usage: NodeUsage::default(),
            initialized,
            deleting: false,
        }
    };
    let nodes = [node("a-inflight", false), node("z-ready", true)];
    let pods = [pod("p", "1", "1Gi", json!({}))];
    let r = run(&[spot_and_od()], &nodes, &pods);
    assert!(r.new_claims.is_empty());
    assert_eq!(
        r.existing,
        [ExistingPlacement {
            node: "z-ready".into(),
            pods: vec![0]
        }]
    );
    // Ten 1-CPU pods: 7 fill z-ready (7910m), then the in-flight node (its unregistered
    // taint ignored) takes the rest.
    let pods: Vec<_> = (0..10)
        .map(|i| pod(&format!("p{i}"), "1", "1Gi", json!({})))
        .collect();
    let r = run(&[spot_and_od()], &nodes, &pods);
    let on = |name: &str| {
        r.existing
            .iter()
            .find(|x| x.node == name)
            .unwrap()
            .pods
            .len()
    };
    assert_eq!((on("z-ready"), on("a-inflight")), (7, 3));
}

#[test]
fn pods_share_claims_fewest_pods_first_and_daemons_add_overhead() {
    let pods: Vec<_> = (0..4)
        .map(|i| pod(&format!("p{i}"), "1", "2Gi", json!({})))
        .collect();
    let daemon = pod("ds", "200m", "256Mi", json!({}));
    let types = instance_options("us-east-2", &[]);
    let r = schedule(&ScheduleInput {
        pools: &[spot_and_od()],
        nodes: &[],
        pods: &pods,
        daemonsets: std::slice::from_ref(&daemon),
        instance_types: &types,
        right_size: false,
    });
    assert_eq!(r.new_claims.len(), 1);
    let c = &r.new_claims[0];
    assert_eq!(c.requests.cpu_millis, 4200);
    assert_eq!(c.requests.pods, 5);
    assert_eq!(c.daemon_overhead.cpu_millis, 200);
    let it = sparkyard_instance_types::get(&c.launch.as_ref().unwrap().instance_type).unwrap();
    assert!(it.allocatable().cpu_millis >= 4200);
}

#[test]
fn required_affinity_terms_are_tried_in_order() {
    let p = pod(
        "p",
        "1",
        "1Gi",
        json!({"affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
            {"matchExpressions": [{"key": "karpenter.k8s.aws/instance-family", "operator": "In", "values": ["x9"]}]},
            {"matchExpressions": [{"key": "karpenter.k8s.aws/instance-family", "operator": "In", "values": ["r6i"]},
                                  {"key": "topology.kubernetes.io/zone", "operator": "In", "values": ["us-east-2c"]}]}
        ]}}}}),
    );
    let r = run(&[spot_and_od()], &[], &[p]);
    let l = r.new_claims[0].launch.as_ref().unwrap();
    assert!(l.instance_type.starts_with("r6i."));
    assert_eq!(l.zone, "us-east-2c");
}

/// Labels the launched node will carry (for checking selectors).
fn launched_labels(c: &NewClaim, pools: &[NodePoolSpec]) -> BTreeMap<String, String> {
    let l = c.launch.as_ref().unwrap();
    let pool = pools.iter().find(|p| p.name == c.pool).unwrap();
    node_labels(
        &c.requirements,
        sparkyard_instance_types::get(&l.instance_type).unwrap(),
        &l.zone,
        l.capacity_type,
        pool,
    )
}

fn arb_pod() -> impl Strategy<Value = Value> {
    (
        1u32..=32,     // cpu in 250m steps
        1u32..=64,     // memory in 512Mi steps
        0u8..6,        // constraint kind
        any::<bool>(), // toleration
    )
        .prop_map(|(cpu, mem, kind, tolerate)| {
            let mut spec = json!({"containers": [{"name": "c", "resources": {"requests": {
                "cpu": format!("{}m", cpu * 250), "memory": format!("{}Mi", mem * 512)}}}]});
            match kind {
                1 => spec["nodeSelector"] = json!({"karpenter.sh/capacity-type": "on-demand"}),
                2 => spec["nodeSelector"] = json!({"karpenter.k8s.aws/instance-category": "r"}),
                3 => spec["nodeSelector"] = json!({"topology.kubernetes.io/zone": "us-east-2b"}),
                4 => spec["nodeSelector"] = json!({"team": "spark"}),
                _ => {}
            }
            if tolerate {
                spec["tolerations"] = json!([{"key": "dedicated", "operator": "Exists"}]);
            }
            spec
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]
    #[test]
    fn every_placed_pod_fits_its_node_or_claim(
        specs in proptest::collection::vec(arb_pod(), 1..60),
        right_size in any::<bool>(),
        existing in 0usize..3,
    ) {
        let pods: Vec<PodRequirements> = specs.iter().enumerate().map(|(i, spec)| {
            PodRequirements::from_pod(&json!({"metadata": {"name": format!("p{i}"), "uid": format!("u{i:03}")}, "spec": spec})).unwrap()
        }).collect();
        let mut dedicated = spot_and_od();
        dedicated.name = "dedicated".into();
        dedicated.weight = 10;
        dedicated.labels.insert("team".into(), "spark".into());
        dedicated.taints = vec![Taint { key: "dedicated".into(), value: "x".into(), effect: TaintEffect::NoSchedule }];
        dedicated.limits = Some(Limits { cpu_millis: Some(64_000), ..Default::default() });
        let pools = vec![dedicated, spot_and_od()];
        let nodes: Vec<StateNode> = (0..existing).map(|i| StateNode {
            info: NodeConfig { name: format!("n{i}"), ..NodeConfig::default() }.node_info().unwrap(),
            usage: NodeUsage::default(), initialized: true, deleting: false,
        }).collect();
        let types = instance_options("us-east-2", &[]);
        let r = schedule(&ScheduleInput { pools: &pools, nodes: &nodes, pods: &pods, daemonsets: &[], instance_types: &types, right_size });
        let mut placed = vec![0; pods.len()];
        for e in &r.errors { placed[e.pod] += 1; }
        for x in &r.existing {
            let node = nodes.iter().find(|n| n.info.name == x.node).unwrap();
            let mut usage = NodeUsage::default();
            for &p in &x.pods {
                prop_assert!(filter::fits(&pods[p], &node.info, &usage).is_ok());
                usage.add(&pods[p]);
                placed[p] += 1;
            }
        }
        for c in &r.new_claims {
            let l = c.launch.as_ref().expect("a claim has a launch");
            let it = sparkyard_instance_types::get(&l.instance_type).unwrap();
            let alloc = it.allocatable();
            let mut cpu = 0; let mut mem = 0;
            let labels = launched_labels(c, &pools);
            let pool = pools.iter().find(|p| p.name == c.pool).unwrap();
            let mut info = NodeConfig { name: "new".into(), nodegroup: None, ..NodeConfig::default() }.node_info().unwrap();
            info.labels = labels; info.taints = pool.taints.clone();
            for &p in &c.pods {
                cpu += pods[p].requests.milli_cpu; mem += pods[p].requests.memory;
                prop_assert!(filter::static_filter(&pods[p].placement, &info).is_none(), "pod {} on {:?}", p, info.labels);
                placed[p] += 1;
            }
            prop_assert!(cpu <= alloc.cpu_millis && mem <= alloc.memory_bytes);
            prop_assert!(c.pods.len() as u32 <= alloc.pods);
            prop_assert_eq!(c.requests.cpu_millis, cpu);
        }
        prop_assert!(placed.iter().all(|&n| n == 1), "each pod placed or failed exactly once");
    }
}
