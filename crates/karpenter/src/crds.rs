//! Karpenter's CustomResourceDefinitions, as the cluster installs them at start
//! (`sparkyard-cluster`'s bootstrap creates or updates each one).
//!
//! The manifests (`crates/karpenter/crds/*.yaml`) are written from Karpenter's API
//! fields: types, enums, patterns, bounds and defaults a structural schema can state,
//! printer columns, the `karpenter` category. What a schema cannot state (restricted
//! label domains, `ttlSecondsAfterEmpty` vs consolidation, exactly one of
//! `provider`/`providerRef`) is left to the admission hooks of [`crate::validation`].

/// The manifest files, in install order: v1alpha5 Provisioner and AWSNodeTemplate, then
/// the v1 NodePool, NodeClaim and EC2NodeClass.
const MANIFESTS: &[(&str, &str)] = &[
    (
        "karpenter.sh_provisioners.yaml",
        include_str!("../crds/karpenter.sh_provisioners.yaml"),
    ),
    (
        "karpenter.k8s.aws_awsnodetemplates.yaml",
        include_str!("../crds/karpenter.k8s.aws_awsnodetemplates.yaml"),
    ),
    (
        "karpenter.sh_nodepools.yaml",
        include_str!("../crds/karpenter.sh_nodepools.yaml"),
    ),
    (
        "karpenter.sh_nodeclaims.yaml",
        include_str!("../crds/karpenter.sh_nodeclaims.yaml"),
    ),
    (
        "karpenter.k8s.aws_ec2nodeclasses.yaml",
        include_str!("../crds/karpenter.k8s.aws_ec2nodeclasses.yaml"),
    ),
];

/// The five CRDs as JSON objects (`apiextensions.k8s.io/v1` CustomResourceDefinition).
pub fn manifests() -> Vec<serde_json::Value> {
    MANIFESTS
        .iter()
        .map(|(file, text)| {
            // The files are compiled in: a parse failure is a build defect, caught by the
            // tests below.
            serde_yaml::from_str(text).unwrap_or_else(|e| panic!("crds/{file}: {e}"))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};
    use sparkyard_kube_apiserver::crd::{definition, schema};

    fn crd(name: &str) -> Value {
        manifests()
            .into_iter()
            .find(|m| m["metadata"]["name"] == name)
            .unwrap()
    }

    fn version_schema(name: &str) -> Value {
        crd(name)["spec"]["versions"][0]["schema"]["openAPIV3Schema"].clone()
    }

    #[test]
    fn every_manifest_is_a_valid_crd() {
        let all = manifests();
        assert_eq!(all.len(), 5);
        for mut m in all {
            definition::default_crd(&mut m);
            let causes = definition::validate_crd(&m, None);
            assert!(causes.is_empty(), "{}: {causes:?}", m["metadata"]["name"]);
            assert_eq!(m["spec"]["names"]["categories"], json!(["karpenter"]));
        }
        assert_eq!(
            crd("ec2nodeclasses.karpenter.k8s.aws")["spec"]["names"]["shortNames"],
            json!(["ec2nc", "ec2ncs"])
        );
        assert!(crd("nodeclaims.karpenter.sh")["spec"]["names"]["shortNames"].is_null());
    }

    #[test]
    fn the_seed_provisioner_is_accepted_and_keeps_its_provider() {
        let schema = version_schema("provisioners.karpenter.sh");
        let mut provisioner: Value = serde_yaml::from_str(
            "apiVersion: karpenter.sh/v1alpha5
kind: Provisioner
metadata: {name: default}
spec:
  requirements:
    - {key: karpenter.sh/capacity-type, operator: In, values: [spot, on-demand]}
  labels: {intent: emr-job}
  provider:
    subnetSelector: {karpenter.sh/discovery: eks-emr-cluster}
    securityGroupSelector: {karpenter.sh/discovery: eks-emr-cluster}
    instanceProfile: KarpenterNodeInstanceProfile-eks-emr-cluster
    tags: {accountingEC2Tag: KarpenterDevEnvironmentEC2}
  ttlSecondsAfterEmpty: 30
",
        )
        .unwrap();
        let before = provisioner.clone();
        schema::prune(&schema, &mut provisioner);
        schema::default(&schema, &mut provisioner);
        assert_eq!(schema::validate(&schema, &provisioner), vec![]);
        assert_eq!(provisioner, before, "nothing pruned, nothing defaulted");
        provisioner["spec"]["weight"] = json!(101);
        provisioner["spec"]["ttlSecondsAfterEmpty"] = json!(-1);
        let messages: Vec<String> = schema::validate(&schema, &provisioner)
            .into_iter()
            .map(|(f, m)| format!("{f}: {m}"))
            .collect();
        assert_eq!(
            messages,
            vec![
                "spec.ttlSecondsAfterEmpty: Invalid value: -1: spec.ttlSecondsAfterEmpty in body should be greater than or equal to 0",
                "spec.weight: Invalid value: 101: spec.weight in body should be less than or equal to 100",
            ]
        );
    }

    #[test]
    fn a_nodepool_gets_karpenters_defaults() {
        let schema = version_schema("nodepools.karpenter.sh");
        let mut pool = json!({"apiVersion": "karpenter.sh/v1", "kind": "NodePool", "metadata": {"name": "emr"},
            "spec": {"template": {"spec": {"nodeClassRef": {"group": "karpenter.k8s.aws", "kind": "EC2NodeClass", "name": "default"},
                                           "requirements": [{"key": "karpenter.sh/capacity-type", "operator": "In", "values": ["spot"]}]}}}});
        schema::default(&schema, &mut pool);
        assert_eq!(schema::validate(&schema, &pool), vec![]);
        let disruption = &pool["spec"]["disruption"];
        assert_eq!(
            disruption["consolidationPolicy"],
            "WhenEmptyOrUnderutilized"
        );
        assert_eq!(disruption["consolidateAfter"], "0s");
        assert_eq!(disruption["budgets"], json!([{"nodes": "10%"}]));
        assert_eq!(pool["spec"]["template"]["spec"]["expireAfter"], "720h");
        pool["spec"]["weight"] = json!(200);
        pool["spec"]["disruption"]["budgets"] = json!([{"nodes": "110%"}]);
        pool["spec"]["disruption"]["consolidationPolicy"] = json!("Sometimes");
        pool["spec"]["template"]["spec"]["expireAfter"] = json!("30d");
        let fields: Vec<String> = schema::validate(&schema, &pool)
            .into_iter()
            .map(|(f, _)| f)
            .collect();
        assert_eq!(
            fields,
            vec![
                "spec.template.spec.expireAfter",
                "spec.disruption.budgets[0].nodes",
                "spec.disruption.consolidationPolicy",
                "spec.weight",
            ]
        );
    }

    #[test]
    fn an_ec2nodeclass_gets_metadata_options_defaults() {
        let schema = version_schema("ec2nodeclasses.karpenter.k8s.aws");
        let mut class = json!({"spec": {"role": "KarpenterNodeRole", "amiSelectorTerms": [{"alias": "al2023@latest"}],
            "subnetSelectorTerms": [{"tags": {"karpenter.sh/discovery": "c"}}],
            "securityGroupSelectorTerms": [{"tags": {"karpenter.sh/discovery": "c"}}]}});
        schema::default(&schema, &mut class);
        assert_eq!(schema::validate(&schema, &class), vec![]);
        assert_eq!(
            class["spec"]["metadataOptions"],
            json!({"httpEndpoint": "enabled", "httpProtocolIPv6": "disabled", "httpPutResponseHopLimit": 1, "httpTokens": "required"})
        );
    }
}
