//! Which IAM action and resource an emr-containers request is checked against.
//!
//! Actions are `emr-containers:<Operation>`. The resource is the most specific ARN the
//! request names, as in EMR on EKS's IAM reference: the job run, endpoint, template or
//! security configuration when one is addressed, else the virtual cluster, else `*`
//! (creates and top-level lists).

use crate::arn::Arns;
use crate::routes::Op;

/// The IAM action of `op`. sparkyard's cost reads need what reading the runs needs.
pub fn action(op: Op) -> String {
    let op = match op {
        Op::GetJobRunCost => Op::DescribeJobRun,
        Op::ListJobRunCosts => Op::ListJobRuns,
        op => op,
    };
    format!("emr-containers:{}", op.name())
}

pub fn resource_arn(arns: &Arns, op: Op, labels: &[String]) -> String {
    use Op::*;
    match (op, labels) {
        (TagResource | UntagResource | ListTagsForResource, [arn]) => arn.clone(),
        (DescribeJobRun | CancelJobRun | GetJobRunCost, [vc, id]) => arns.job_run(vc, id),
        (
            DescribeManagedEndpoint | DeleteManagedEndpoint | GetManagedEndpointSessionCredentials,
            [vc, id, ..],
        ) => arns.endpoint(vc, id),
        (DescribeJobTemplate | DeleteJobTemplate, [id]) => arns.job_template(id),
        (DescribeSecurityConfiguration | DeleteSecurityConfiguration, [id]) => {
            arns.security_configuration(id)
        }
        (
            DescribeVirtualCluster
            | UpdateVirtualCluster
            | DeleteVirtualCluster
            | StartJobRun
            | ListJobRuns
            | ListJobRunCosts
            | CreateManagedEndpoint
            | ListManagedEndpoints,
            [vc, ..],
        ) => arns.virtual_cluster(vc),
        _ => "*".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn arns() -> Arns {
        Arns {
            region: "us-east-1".into(),
            account_id: "123456789012".into(),
        }
    }

    #[test]
    fn the_most_specific_arn_is_checked() {
        let labels = |l: &[&str]| l.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            resource_arn(&arns(), Op::DescribeJobRun, &labels(&["vc1", "0000000327fe50tosa4"])),
            "arn:aws:emr-containers:us-east-1:123456789012:/virtualclusters/vc1/jobruns/0000000327fe50tosa4"
        );
        assert_eq!(
            resource_arn(&arns(), Op::StartJobRun, &labels(&["vc1"])),
            "arn:aws:emr-containers:us-east-1:123456789012:/virtualclusters/vc1"
        );
        assert_eq!(resource_arn(&arns(), Op::CreateVirtualCluster, &[]), "*");
        assert_eq!(
            resource_arn(&arns(), Op::TagResource, &labels(&["arn:x"])),
            "arn:x"
        );
        assert_eq!(action(Op::StartJobRun), "emr-containers:StartJobRun");
        // sparkyard's cost reads need what reading the runs needs.
        assert_eq!(action(Op::GetJobRunCost), "emr-containers:DescribeJobRun");
        assert_eq!(action(Op::ListJobRunCosts), "emr-containers:ListJobRuns");
        assert_eq!(
            resource_arn(&arns(), Op::GetJobRunCost, &labels(&["vc1", "r1"])),
            "arn:aws:emr-containers:us-east-1:123456789012:/virtualclusters/vc1/jobruns/r1"
        );
        assert_eq!(
            resource_arn(&arns(), Op::ListJobRunCosts, &labels(&["vc1"])),
            "arn:aws:emr-containers:us-east-1:123456789012:/virtualclusters/vc1"
        );
    }
}
