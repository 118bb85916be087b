//! The node-group service over a scripted backend: states follow what it reports, refused
//! writes change nothing, records survive reopening the database.

use std::collections::HashMap;
use std::sync::Mutex;

use super::*;

/// A backend whose groups settle when the test says so.
#[derive(Default)]
struct Scripted {
    groups: Mutex<HashMap<String, (NodeGroupSpec, NodeGroupObserved)>>,
    applied: Mutex<Vec<NodeGroupSpec>>,
}

impl Scripted {
    fn settle(&self, asg: &str) {
        let mut g = self.groups.lock().unwrap();
        let (spec, obs) = g.get_mut(asg).unwrap();
        let n = spec.desired_size as usize;
        *obs = NodeGroupObserved {
            nodes: n,
            ready_nodes: n,
            settled: true,
            gone: false,
        };
    }
    fn finish_removal(&self, asg: &str) {
        self.groups.lock().unwrap().remove(asg);
    }
}

impl NodeGroupBackend for Scripted {
    fn check(&self, group: &NodeGroupSpec) -> Result<(), String> {
        match group.instance_types.iter().find(|t| t.starts_with("zz")) {
            Some(t) => Err(format!("Instance type {t} is not valid")),
            None => Ok(()),
        }
    }
    fn apply(&self, group: &NodeGroupSpec) -> Result<(), String> {
        self.applied.lock().unwrap().push(group.clone());
        let mut g = self.groups.lock().unwrap();
        let entry = g
            .entry(group.asg_name.clone())
            .or_insert((group.clone(), Default::default()));
        entry.0 = group.clone();
        entry.1.settled = false;
        Ok(())
    }
    fn remove(&self, group: &NodeGroupSpec) {
        if let Some((_, obs)) = self.groups.lock().unwrap().get_mut(&group.asg_name) {
            obs.settled = false;
        }
    }
    fn observe(&self, group: &NodeGroupSpec) -> Option<NodeGroupObserved> {
        self.groups
            .lock()
            .unwrap()
            .get(&group.asg_name)
            .map(|(_, o)| *o)
    }
}

fn open(dir: &std::path::Path, backend: Option<Arc<dyn NodeGroupBackend>>) -> NodeGroups {
    let db = Db::open(&dir.join("services.db"), store::SCHEMA).unwrap();
    NodeGroups::new(
        db,
        backend,
        "us-east-2",
        "123456789012",
        "eks-emr-cluster",
        "1.22",
    )
}

fn create_body(name: &str) -> Value {
    json!({"nodegroupName": name, "subnets": ["subnet-1"],
        "nodeRole": "arn:aws:iam::123456789012:role/NodeRole",
        "instanceTypes": ["m5.2xlarge"],
        "scalingConfig": {"minSize": 1, "maxSize": 10, "desiredSize": 1}})
}

async fn status(ngs: &NodeGroups, name: &str) -> String {
    let d = ngs.describe("eks-emr-cluster", name).await.unwrap();
    d["nodegroup"]["status"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn lifecycle_follows_the_backend() {
    let dir = tempfile::tempdir().unwrap();
    let backend = Arc::new(Scripted::default());
    let ngs = open(dir.path(), Some(backend.clone()));
    let created = ngs
        .create("eks-emr-cluster", &create_body("ng-1"))
        .await
        .unwrap();
    let ng = &created["nodegroup"];
    assert_eq!(ng["status"], "CREATING");
    let arn = ng["nodegroupArn"].as_str().unwrap();
    assert!(
        arn.starts_with("arn:aws:eks:us-east-2:123456789012:nodegroup/eks-emr-cluster/ng-1/"),
        "{arn}"
    );
    let uuid = arn.rsplit('/').next().unwrap();
    let asg = format!("eks-ng-1-{uuid}");
    assert_eq!(ng["resources"]["autoScalingGroups"][0]["name"], asg);
    assert_eq!(status(&ngs, "ng-1").await, "CREATING");
    backend.settle(&asg);
    assert_eq!(status(&ngs, "ng-1").await, "ACTIVE");

    let dup = ngs
        .create("eks-emr-cluster", &create_body("ng-1"))
        .await
        .unwrap_err();
    assert_eq!(dup.code, "ResourceInUseException");
    assert_eq!(
        dup.message,
        "NodeGroup already exists with name ng-1 and cluster name eks-emr-cluster"
    );

    let up = ngs
        .update_config(
            "eks-emr-cluster",
            "ng-1",
            &json!({"scalingConfig": {"desiredSize": 2}}),
        )
        .await
        .unwrap();
    assert_eq!(up["update"]["status"], "InProgress");
    assert_eq!(up["update"]["type"], "ConfigUpdate");
    let id = up["update"]["id"].as_str().unwrap().to_string();
    assert_eq!(status(&ngs, "ng-1").await, "UPDATING");
    // A second update while the first is in progress is refused.
    let busy = ngs
        .update_config(
            "eks-emr-cluster",
            "ng-1",
            &json!({"scalingConfig": {"desiredSize": 3}}),
        )
        .await
        .unwrap_err();
    assert_eq!(busy.code, "ResourceInUseException");
    backend.settle(&asg);
    let u = ngs
        .describe_update("eks-emr-cluster", &id, Some("ng-1"))
        .await
        .unwrap();
    assert_eq!(u["update"]["status"], "Successful");
    assert_eq!(status(&ngs, "ng-1").await, "ACTIVE");
    assert_eq!(
        backend.applied.lock().unwrap().last().unwrap().desired_size,
        2
    );

    let del = ngs.delete("eks-emr-cluster", "ng-1").await.unwrap();
    assert_eq!(del["nodegroup"]["status"], "DELETING");
    assert_eq!(status(&ngs, "ng-1").await, "DELETING");
    backend.finish_removal(&asg);
    let gone = ngs.describe("eks-emr-cluster", "ng-1").await.unwrap_err();
    assert_eq!(gone.code, "ResourceNotFoundException");
    assert_eq!(gone.message, "No node group found for name: ng-1.");
}

#[tokio::test]
async fn refused_requests_change_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let ngs = open(dir.path(), Some(Arc::new(Scripted::default())));
    let unknown = ngs.create("other", &create_body("ng")).await.unwrap_err();
    assert_eq!(
        (unknown.code, unknown.message.as_str()),
        (
            "ResourceNotFoundException",
            "No cluster found for name: other."
        )
    );
    let mut bad_type = create_body("ng");
    bad_type["instanceTypes"] = json!(["zz9.huge"]);
    let e = ngs.create("eks-emr-cluster", &bad_type).await.unwrap_err();
    assert_eq!(e.code, "InvalidParameterException");
    let list = ngs.list("eks-emr-cluster", None, None).await.unwrap();
    assert_eq!(list["nodegroups"], json!([]));

    ngs.create("eks-emr-cluster", &create_body("ng"))
        .await
        .unwrap();
    let before = ngs.stored("eks-emr-cluster", "ng").await.unwrap();
    // Still CREATING: updates are refused.
    let e = ngs
        .update_config(
            "eks-emr-cluster",
            "ng",
            &json!({"scalingConfig": {"desiredSize": 2}}),
        )
        .await
        .unwrap_err();
    assert_eq!(e.code, "ResourceInUseException");
    assert_eq!(ngs.stored("eks-emr-cluster", "ng").await.unwrap(), before);
}

#[tokio::test]
async fn without_a_backend_groups_are_records_that_settle_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let ngs = open(dir.path(), None);
    for name in ["b", "a", "c"] {
        ngs.create("eks-emr-cluster", &create_body(name))
            .await
            .unwrap();
    }
    assert_eq!(status(&ngs, "a").await, "ACTIVE");
    let first = ngs.list("eks-emr-cluster", Some("2"), None).await.unwrap();
    assert_eq!(first["nodegroups"], json!(["a", "b"]));
    let token = first["nextToken"].as_str().unwrap();
    let rest = ngs
        .list("eks-emr-cluster", Some("2"), Some(token))
        .await
        .unwrap();
    assert_eq!(rest, json!({"nodegroups": ["c"]}));
    let e = ngs
        .update_config(
            "eks-emr-cluster",
            "a",
            &json!({"scalingConfig": {"minSize": 5}}),
        )
        .await
        .unwrap_err();
    assert_eq!(
        e.message,
        "Minimum capacity 5 can't be greater than desired size 1"
    );
    ngs.delete("eks-emr-cluster", "b").await.unwrap();
    let list = ngs.list("eks-emr-cluster", None, None).await.unwrap();
    assert_eq!(list["nodegroups"], json!(["a", "c"]));

    // Durable: a reopened database has the same groups; `ensure` keeps an existing one.
    let again = open(dir.path(), None);
    assert_eq!(status(&again, "c").await, "ACTIVE");
    let mut bigger = create_body("c");
    bigger["scalingConfig"]["desiredSize"] = json!(5);
    assert!(!again.ensure(&bigger).await.unwrap());
    let d = again.describe("eks-emr-cluster", "c").await.unwrap();
    assert_eq!(d["nodegroup"]["scalingConfig"]["desiredSize"], 1);
    assert!(again.ensure(&create_body("d")).await.unwrap());
}
