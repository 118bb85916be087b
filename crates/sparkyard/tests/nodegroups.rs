//! EKS managed node groups with the unchanged `aws` CLI and kubectl: a node group from an
//! eksctl ClusterConfig at start, scaling it, refusals that change nothing, deleting it;
//! EC2 DescribeInstances and spot interruptions; a bad ClusterConfig refused at start; and
//! the `emr-containers` RBAC a virtual cluster's namespace gets when it is created.

#[path = "support/cluster.rs"]
mod cluster;
mod support;

use std::process::Command;

use cluster::kubectl;
use serde_json::Value;
use support::{free_port, Server};

use support::eks::{cluster_config, kubeconfig, start, until, CLUSTER, SEED_GROUP};

const NG: &str = "eks-emr-cluster-ng";

fn describe(s: &Server, ng: &str) -> Value {
    s.aws_json(&[
        "eks",
        "describe-nodegroup",
        "--cluster-name",
        CLUSTER,
        "--nodegroup-name",
        ng,
    ])["nodegroup"]
        .clone()
}

fn status(s: &Server, ng: &str) -> String {
    describe(s, ng)["status"].as_str().unwrap().to_string()
}

fn group_nodes(s: &Server, ng: &str) -> Vec<String> {
    let out = kubectl(
        &kubeconfig(s),
        &[
            "get",
            "nodes",
            "-l",
            &format!("eks.amazonaws.com/nodegroup={ng}"),
            "-o",
            "name",
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| l.trim_start_matches("node/").to_string())
        .collect()
}

/// `aws …` that must fail: returns stderr.
fn aws_err(s: &Server, args: &[&str]) -> String {
    let out = s.aws(args);
    assert!(!out.status.success(), "aws {args:?} succeeded");
    String::from_utf8_lossy(&out.stderr).to_string()
}

#[test]
fn node_group_from_cluster_config_scales_refuses_and_deletes() {
    let work = tempfile::tempdir().unwrap();
    let s = start(&cluster_config(work.path(), SEED_GROUP));

    let list = s.aws_json(&["eks", "list-nodegroups", "--cluster-name", CLUSTER]);
    assert_eq!(list["nodegroups"], serde_json::json!([NG]));
    until(&s, "node group ACTIVE", || {
        (status(&s, NG) == "ACTIVE").then_some(())
    });
    let ng = describe(&s, NG);
    assert_eq!(ng["clusterName"], CLUSTER);
    assert_eq!(ng["version"], "1.32");
    assert_eq!(ng["capacityType"], "ON_DEMAND");
    assert_eq!(ng["amiType"], "AL2_x86_64");
    assert_eq!(ng["instanceTypes"], serde_json::json!(["m5.2xlarge"]));
    assert_eq!(
        ng["scalingConfig"],
        serde_json::json!({"minSize": 1, "maxSize": 10, "desiredSize": 1})
    );
    assert_eq!(ng["updateConfig"]["maxUnavailable"], 1);
    assert_eq!(ng["health"]["issues"], serde_json::json!([]));
    assert_eq!(ng["labels"]["alpha.eksctl.io/nodegroup-name"], NG);
    let arn = ng["nodegroupArn"].as_str().unwrap();
    let prefix = format!("arn:aws:eks:us-east-2:123456789012:nodegroup/{CLUSTER}/{NG}/");
    assert!(arn.starts_with(&prefix), "{arn}");
    let uuid = &arn[prefix.len()..];
    assert_eq!(
        ng["resources"]["autoScalingGroups"][0]["name"],
        format!("eks-{NG}-{uuid}")
    );
    let nodes = until(&s, "one node", || {
        Some(group_nodes(&s, NG)).filter(|n| n.len() == 1)
    });
    assert!(nodes[0].starts_with("ip-192-168-"), "{nodes:?}");

    // EC2 shows the instance behind the node, by tag and by private DNS name.
    let reservations = s.aws_json(&[
        "ec2",
        "describe-instances",
        "--filters",
        &format!("Name=tag:eks:nodegroup-name,Values={NG}"),
    ])["Reservations"]
        .clone();
    let instance = reservations[0]["Instances"][0].clone();
    assert_eq!(instance["PrivateDnsName"], nodes[0].as_str());
    assert_eq!(instance["InstanceType"], "m5.2xlarge");
    assert_eq!(instance["State"]["Name"], "running");
    let id = instance["InstanceId"].as_str().unwrap().to_string();
    // Not a Spot instance: the interruption is refused, by the sparkyard CLI too.
    let out = Command::new(env!("CARGO_BIN_EXE_sparkyard"))
        .args([
            "ec2",
            "send-spot-interruption",
            "--node-name",
            &nodes[0],
            "--data-dir",
        ])
        .arg(s.data_dir.path())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("UnsupportedOperation") && stderr.contains(&id),
        "{stderr}"
    );

    // Scale to 2: UPDATING, then ACTIVE with two nodes.
    let update = s.aws_json(&[
        "eks",
        "update-nodegroup-config",
        "--cluster-name",
        CLUSTER,
        "--nodegroup-name",
        NG,
        "--scaling-config",
        "desiredSize=2",
    ])["update"]
        .clone();
    assert_eq!(update["status"], "InProgress");
    assert_eq!(update["type"], "ConfigUpdate");
    assert_eq!(
        update["params"],
        serde_json::json!([{"type": "DesiredSize", "value": "2"}])
    );
    assert_eq!(status(&s, NG), "UPDATING");
    until(&s, "node group ACTIVE again", || {
        (status(&s, NG) == "ACTIVE").then_some(())
    });
    let nodes = group_nodes(&s, NG);
    assert_eq!(nodes.len(), 2, "{nodes:?}");
    assert!(
        nodes.iter().all(|n| n.starts_with("ip-192-168-")),
        "{nodes:?}"
    );
    let update_id = update["id"].as_str().unwrap();
    let described = s.aws_json(&[
        "eks",
        "describe-update",
        "--name",
        CLUSTER,
        "--nodegroup-name",
        NG,
        "--update-id",
        update_id,
    ]);
    assert_eq!(described["update"]["status"], "Successful");
    let updates = s.aws_json(&[
        "eks",
        "list-updates",
        "--name",
        CLUSTER,
        "--nodegroup-name",
        NG,
    ]);
    assert_eq!(updates["updateIds"], serde_json::json!([update_id]));

    // Refusals, each leaving the group as it was.
    let before = describe(&s, NG);
    let e = aws_err(
        &s,
        &[
            "eks",
            "update-nodegroup-config",
            "--cluster-name",
            CLUSTER,
            "--nodegroup-name",
            NG,
            "--scaling-config",
            "minSize=3",
        ],
    );
    assert!(
        e.contains("(InvalidParameterException)")
            && e.contains("Minimum capacity 3 can't be greater than desired size 2"),
        "{e}"
    );
    let e = aws_err(
        &s,
        &[
            "eks",
            "update-nodegroup-config",
            "--cluster-name",
            CLUSTER,
            "--nodegroup-name",
            NG,
            "--taints",
            "addOrUpdateTaints=[{key=dedicated,value=spark,effect=NoSchedule}]",
        ],
    );
    assert!(
        e.contains("(InvalidParameterException)")
            && e.contains("Taint effect NoSchedule is not valid"),
        "{e}"
    );
    assert_eq!(describe(&s, NG), before);
    let e = aws_err(
        &s,
        &[
            "eks",
            "update-nodegroup-config",
            "--cluster-name",
            "nope",
            "--nodegroup-name",
            NG,
            "--scaling-config",
            "desiredSize=1",
        ],
    );
    assert!(
        e.contains("(ResourceNotFoundException)") && e.contains("No cluster found for name: nope."),
        "{e}"
    );
    let create = |name: &str, extra: &[&str]| {
        let mut args = vec![
            "eks",
            "create-nodegroup",
            "--cluster-name",
            CLUSTER,
            "--nodegroup-name",
            name,
            "--subnets",
            "subnet-1",
            "--node-role",
            "arn:aws:iam::123456789012:role/NodeRole",
        ];
        args.extend_from_slice(extra);
        s.aws(&args)
    };
    let out = create(NG, &[]);
    let e = String::from_utf8_lossy(&out.stderr);
    assert!(
        e.contains("(ResourceInUseException)")
            && e.contains(&format!(
                "NodeGroup already exists with name {NG} and cluster name {CLUSTER}"
            )),
        "{e}"
    );
    let out = create(
        "bad",
        &["--scaling-config", "minSize=3,maxSize=5,desiredSize=1"],
    );
    let e = String::from_utf8_lossy(&out.stderr);
    assert!(
        e.contains("(InvalidParameterException)")
            && e.contains("minSize can't be greater than desiredSize"),
        "{e}"
    );
    let list = s.aws_json(&["eks", "list-nodegroups", "--cluster-name", CLUSTER]);
    assert_eq!(list["nodegroups"], serde_json::json!([NG]));
    assert_eq!(describe(&s, NG), before);

    // The emr-containers Role and RoleBinding come with the virtual cluster, before any job.
    let ns = "monthly-batch";
    assert!(kubectl(&kubeconfig(&s), &["create", "namespace", ns])
        .status
        .success());
    s.aws_ok(&[
        "emr-containers", "create-virtual-cluster", "--name", "monthly-batch-emr-cluster",
        "--container-provider",
        &format!("{{\"id\":\"{CLUSTER}\",\"type\":\"EKS\",\"info\":{{\"eksInfo\":{{\"namespace\":\"{ns}\"}}}}}}"),
    ]);
    until(&s, "emr-containers RBAC", || {
        let out = kubectl(
            &kubeconfig(&s),
            &["get", "role,rolebinding", "-n", ns, "-o", "name"],
        );
        let text = String::from_utf8_lossy(&out.stdout).to_string();
        (text.contains("role.rbac.authorization.k8s.io/emr-containers")
            && text.contains("rolebinding.rbac.authorization.k8s.io/emr-containers"))
        .then_some(())
    });

    // Delete: DELETING, then gone with its nodes.
    let deleted = s.aws_json(&[
        "eks",
        "delete-nodegroup",
        "--cluster-name",
        CLUSTER,
        "--nodegroup-name",
        NG,
    ]);
    assert_eq!(deleted["nodegroup"]["status"], "DELETING");
    until(&s, "node group gone", || {
        let out = s.aws(&[
            "eks",
            "describe-nodegroup",
            "--cluster-name",
            CLUSTER,
            "--nodegroup-name",
            NG,
        ]);
        (!out.status.success()).then(|| String::from_utf8_lossy(&out.stderr).to_string())
    })
    .contains("(ResourceNotFoundException)")
    .then_some(())
    .expect("gone means ResourceNotFoundException");
    until(&s, "nodes removed", || {
        group_nodes(&s, NG).is_empty().then_some(())
    });
    let list = s.aws_json(&["eks", "list-nodegroups", "--cluster-name", CLUSTER]);
    assert_eq!(list["nodegroups"], serde_json::json!([]));
}

#[test]
fn invalid_cluster_config_is_refused_at_start_naming_the_field() {
    let work = tempfile::tempdir().unwrap();
    let bad = cluster_config(
        work.path(),
        "  - name: ng\n    instanceType: m5.2xlarge\n    desiredCapacity: 1\n    minSize: 3\n    maxSize: 10\n",
    );
    let out = Command::new(env!("CARGO_BIN_EXE_sparkyard"))
        .args([
            "serve",
            "--listen",
            &format!("127.0.0.1:{}", free_port()),
            "--data-dir",
        ])
        .arg(work.path().join("data"))
        .arg("--cluster-config")
        .arg(&bad)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("managedNodeGroups[0].minSize: must be ≤ desiredCapacity (got 3 > 1)"),
        "{stderr}"
    );
}
