//! The rules Karpenter's admission webhooks (v1alpha5) and CEL rules (v1) enforce and an
//! OpenAPI schema cannot express: restricted label domains, taint uniqueness, requirement
//! operators, `ttlSecondsAfterEmpty` vs consolidation, exactly one of
//! `provider`/`providerRef`. Pure functions over the object; `admission` adapts them to the
//! API server's hook.
//!
//! Wording follows the sources: knative's `FieldError` for the v1alpha5 webhooks
//! (`expected exactly one, got both: spec.consolidation.enabled, spec.ttlSecondsAfterEmpty`),
//! and kube-apiserver's `Invalid` causes for the v1 CEL rules.

use serde_json::Value;

/// Why an object is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rejection {
    /// A v1alpha5 webhook's denial: the API server relays it as
    /// `admission webhook "<webhook>" denied the request: <message>`.
    Webhook {
        webhook: &'static str,
        message: String,
    },
    /// A v1 CEL rule: 422 Invalid with `(field, message)` causes.
    Invalid(Vec<(String, String)>),
}

pub const PROVISIONER_WEBHOOK: &str = "validation.webhook.karpenter.sh";
pub const AWS_WEBHOOK: &str = "validation.webhook.karpenter.k8s.aws";

/// Labels Karpenter lets users set although their domain is restricted.
const WELL_KNOWN_LABELS: &[&str] = &[
    "topology.kubernetes.io/zone",
    "topology.kubernetes.io/region",
    "node.kubernetes.io/instance-type",
    "kubernetes.io/arch",
    "kubernetes.io/os",
    "karpenter.sh/capacity-type",
    "karpenter.k8s.aws/instance-category",
    "karpenter.k8s.aws/instance-family",
    "karpenter.k8s.aws/instance-generation",
    "karpenter.k8s.aws/instance-size",
    "karpenter.k8s.aws/instance-cpu",
    "karpenter.k8s.aws/instance-memory",
    "karpenter.k8s.aws/instance-hypervisor",
    "karpenter.k8s.aws/instance-network-bandwidth",
    "karpenter.k8s.aws/instance-cpu-manufacturer",
    "karpenter.k8s.aws/instance-encryption-in-transit-supported",
];
const RESTRICTED_DOMAINS: &[&str] = &["kubernetes.io", "k8s.io", "karpenter.sh"];
const EXCEPTION_DOMAINS: &[&str] = &[
    "kops.k8s.io",
    "node.kubernetes.io",
    "node-restriction.kubernetes.io",
];

/// Beta keys Karpenter normalises to the stable ones before checking.
fn normalise(key: &str) -> &str {
    match key {
        "failure-domain.beta.kubernetes.io/zone" => "topology.kubernetes.io/zone",
        "failure-domain.beta.kubernetes.io/region" => "topology.kubernetes.io/region",
        "beta.kubernetes.io/arch" => "kubernetes.io/arch",
        "beta.kubernetes.io/os" => "kubernetes.io/os",
        "beta.kubernetes.io/instance-type" => "node.kubernetes.io/instance-type",
        other => other,
    }
}

/// `Err(reason)` when `key` is in a restricted domain and not a well-known label.
pub fn restricted_label(key: &str, forbidden: &[&str]) -> Result<(), String> {
    let key = normalise(key);
    if forbidden.contains(&key) {
        return Err(format!("label {key} is restricted"));
    }
    if WELL_KNOWN_LABELS.contains(&key) {
        return Ok(());
    }
    let Some((domain, _)) = key.split_once('/') else {
        return Ok(());
    };
    let under = |d: &str| domain == d || domain.ends_with(&format!(".{d}"));
    if EXCEPTION_DOMAINS.iter().any(|d| under(d)) {
        return Ok(());
    }
    if RESTRICTED_DOMAINS.iter().any(|d| under(d)) {
        return Err(format!(
            "label {key} is restricted; specify a well known label: [{}], or a custom label that does not use a restricted domain: [{}]",
            WELL_KNOWN_LABELS.join(" "),
            RESTRICTED_DOMAINS.join(" ")
        ));
    }
    Ok(())
}

/// `validation.IsQualifiedName`: an optional DNS-subdomain prefix and a name of ≤ 63
/// alphanumerics, `-`, `_`, `.`, starting and ending alphanumeric.
pub fn qualified_name_errors(key: &str) -> Vec<String> {
    let (prefix, name) = match key.split_once('/') {
        Some((p, n)) => (Some(p), n),
        None => (None, key),
    };
    let mut errors = Vec::new();
    if let Some(prefix) = prefix {
        if prefix.is_empty() {
            errors.push("prefix part must be non-empty".to_string());
        } else if !is_dns_subdomain(prefix) {
            errors.push("prefix part a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character".to_string());
        }
    }
    if name.is_empty() {
        errors.push("name part must be non-empty".into());
    } else if name.len() > 63 {
        errors.push("name part must be no more than 63 characters".into());
    } else if !label_value_ok(name) {
        errors.push("name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character".into());
    }
    errors
}

fn label_value_ok(v: &str) -> bool {
    let bytes = v.as_bytes();
    bytes
        .iter()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
        && bytes.first().is_some_and(u8::is_ascii_alphanumeric)
        && bytes.last().is_some_and(u8::is_ascii_alphanumeric)
}

/// `validation.IsValidLabelValue`.
pub fn label_value_errors(value: &str) -> Vec<String> {
    if value.is_empty() {
        return vec![];
    }
    let mut errors = Vec::new();
    if value.len() > 63 {
        errors.push("must be no more than 63 characters".into());
    }
    if !label_value_ok(value) {
        errors.push("a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character".into());
    }
    errors
}

fn is_dns_subdomain(s: &str) -> bool {
    s.len() <= 253
        && s.split('.').all(|part| {
            !part.is_empty()
                && part
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
                && !part.starts_with('-')
                && !part.ends_with('-')
        })
}

/// knative's `FieldError`: a message, the paths it concerns and optional details,
/// rendered `"<message>: <paths>\n<details>"`, errors joined by newlines.
#[derive(Default)]
struct FieldErrors(Vec<String>);

impl FieldErrors {
    fn push(&mut self, message: &str, paths: &[&str], details: Option<&str>) {
        let mut text = format!("{message}: {}", paths.join(", "));
        if let Some(d) = details {
            text.push('\n');
            text.push_str(d);
        }
        self.0.push(text);
    }

    fn into_result(self, webhook: &'static str) -> Result<(), Rejection> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(Rejection::Webhook {
                webhook,
                message: self.0.join("\n"),
            })
        }
    }
}

const PROVISIONER_FORBIDDEN: &[&str] = &[
    "kubernetes.io/hostname",
    "karpenter.sh/provisioner-name",
    "karpenter.sh/emptiness-timestamp",
];
const NODEPOOL_FORBIDDEN: &[&str] = &["kubernetes.io/hostname", "karpenter.sh/nodepool"];
const TAINT_EFFECTS: &[&str] = &["NoSchedule", "PreferNoSchedule", "NoExecute", ""];
const OPERATORS: &[&str] = &["In", "NotIn", "Exists", "DoesNotExist", "Gt", "Lt"];

/// The v1alpha5 Provisioner webhook (`spec` rules; the schema has done types and ranges).
pub fn provisioner(object: &Value) -> Result<(), Rejection> {
    let spec = &object["spec"];
    let mut errs = FieldErrors::default();
    for (key, value) in spec["labels"].as_object().into_iter().flatten() {
        for e in qualified_name_errors(key) {
            errs.push(
                &format!("invalid key name {key:?}"),
                &["spec.labels"],
                Some(&e),
            );
        }
        let value = value.as_str().unwrap_or("");
        for e in label_value_errors(value) {
            errs.push(
                &format!("invalid value: {value}, {e}"),
                &[&format!("spec.labels[{key}]")],
                None,
            );
        }
        if let Err(e) = restricted_label(key, PROVISIONER_FORBIDDEN) {
            errs.push(
                &format!("invalid key name {key:?}"),
                &["spec.labels"],
                Some(&e),
            );
        }
    }
    taints(spec, "spec", &mut errs);
    requirements(
        &spec["requirements"],
        "spec.requirements",
        PROVISIONER_FORBIDDEN,
        &mut errs,
    );
    if spec["consolidation"]["enabled"] == Value::Bool(true)
        && !spec["ttlSecondsAfterEmpty"].is_null()
    {
        errs.push(
            "expected exactly one, got both",
            &["spec.consolidation.enabled", "spec.ttlSecondsAfterEmpty"],
            None,
        );
    }
    match (spec["provider"].is_null(), spec["providerRef"].is_null()) {
        (false, false) => errs.push(
            "expected exactly one, got both",
            &["spec.provider", "spec.providerRef"],
            None,
        ),
        (true, true) => errs.push(
            "expected exactly one, got neither",
            &["spec.provider", "spec.providerRef"],
            None,
        ),
        (false, true) => aws_provider(&spec["provider"], "spec.provider", &mut errs),
        (true, false) => {}
    }
    errs.into_result(PROVISIONER_WEBHOOK)
}

/// The AWS provider block (inline `provider` or an AWSNodeTemplate's spec).
fn aws_provider(provider: &Value, path: &str, errs: &mut FieldErrors) {
    if provider["subnetSelector"]
        .as_object()
        .is_none_or(|m| m.is_empty())
    {
        errs.push(
            "missing field(s)",
            &[&format!("{path}.subnetSelector")],
            None,
        );
    }
    if provider["launchTemplate"].is_null()
        && provider["securityGroupSelector"]
            .as_object()
            .is_none_or(|m| m.is_empty())
    {
        errs.push(
            "missing field(s)",
            &[&format!("{path}.securityGroupSelector")],
            None,
        );
    }
    if !provider["launchTemplate"].is_null() {
        for field in [
            "securityGroupSelector",
            "metadataOptions",
            "amiFamily",
            "instanceProfile",
            "blockDeviceMappings",
        ] {
            if !provider[field].is_null() {
                errs.push(
                    "expected exactly one, got both",
                    &[
                        &format!("{path}.launchTemplate"),
                        &format!("{path}.{field}"),
                    ],
                    None,
                );
            }
        }
    }
    for (key, _) in provider["tags"].as_object().into_iter().flatten() {
        if key.is_empty() {
            errs.push(
                "the tag with key : '' is invalid because empty tag keys aren't supported",
                &[&format!("{path}.tags")],
                None,
            );
        }
    }
}

/// AWSNodeTemplate (`karpenter.k8s.aws/v1alpha1`): the provider fields at `spec`.
pub fn aws_node_template(object: &Value) -> Result<(), Rejection> {
    let mut errs = FieldErrors::default();
    aws_provider(&object["spec"], "spec", &mut errs);
    errs.into_result(AWS_WEBHOOK)
}

fn taints(spec: &Value, path: &str, errs: &mut FieldErrors) {
    let mut seen = std::collections::BTreeSet::new();
    for field in ["taints", "startupTaints"] {
        for (i, taint) in spec[field].as_array().into_iter().flatten().enumerate() {
            let here = format!("{path}.{field}[{i}]");
            let key = taint["key"].as_str().unwrap_or("");
            let effect = taint["effect"].as_str().unwrap_or("");
            if key.is_empty() {
                errs.push("missing field(s)", &[&format!("{here}.key")], None);
            } else {
                for e in qualified_name_errors(key) {
                    errs.push(
                        &format!("invalid value: {key}"),
                        &[&format!("{here}.key")],
                        Some(&e),
                    );
                }
            }
            if !TAINT_EFFECTS.contains(&effect) {
                errs.push(
                    &format!("invalid value: {effect}"),
                    &[&format!("{here}.effect")],
                    None,
                );
            }
            if !seen.insert((key.to_string(), effect.to_string())) {
                errs.push(
                    &format!("duplicate taint Key/Effect pair {key}={effect}"),
                    &[&format!("{path}.taints")],
                    None,
                );
            }
        }
    }
}

fn requirements(list: &Value, path: &str, forbidden: &[&str], errs: &mut FieldErrors) {
    for (i, r) in list.as_array().into_iter().flatten().enumerate() {
        let here = format!("{path}[{i}]");
        let key = r["key"].as_str().unwrap_or("");
        let op = r["operator"].as_str().unwrap_or("");
        let values: Vec<&str> = r["values"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect();
        if let Err(e) = restricted_label(key, forbidden) {
            errs.push(
                &format!("invalid value: {key}"),
                &[&format!("{here}.key")],
                Some(&e),
            );
        }
        for e in qualified_name_errors(key) {
            errs.push(
                &format!("invalid value: {key}"),
                &[&format!("{here}.key")],
                Some(&e),
            );
        }
        if !OPERATORS.contains(&op) {
            errs.push(
                &format!(
                    "key {key} has an unsupported operator {op} not in [{}]",
                    OPERATORS.join(" ")
                ),
                &[&format!("{here}.operator")],
                None,
            );
        }
        match op {
            "In" if values.is_empty() => errs.push(
                &format!("key {key} with operator In must have a value defined"),
                &[&format!("{here}.values")],
                None,
            ),
            "Gt" | "Lt" if values.len() != 1 || values[0].parse::<u64>().is_err() => errs.push(
                &format!("key {key} with operator {op} must have a single positive integer value"),
                &[&format!("{here}.values")],
                None,
            ),
            _ => {}
        }
    }
}

/// The v1 NodePool's CEL rules (kube-apiserver reports them as 422 `Invalid`).
pub fn nodepool(object: &Value) -> Result<(), Rejection> {
    let mut causes = Vec::new();
    let template = &object["spec"]["template"];
    for (key, value) in template["metadata"]["labels"]
        .as_object()
        .into_iter()
        .flatten()
    {
        let field = "spec.template.metadata.labels".to_string();
        if let Err(e) = restricted_label(key, NODEPOOL_FORBIDDEN) {
            let _ = e;
            causes.push((
                field.clone(),
                format!(
                    "Invalid value: \"object\": label domain \"{}\" is restricted",
                    key.split_once('/').map(|(d, _)| d).unwrap_or(key)
                ),
            ));
        }
        for e in qualified_name_errors(key) {
            causes.push((field.clone(), format!("Invalid value: \"{key}\": {e}")));
        }
        for e in label_value_errors(value.as_str().unwrap_or("")) {
            causes.push((
                format!("{field}[{key}]"),
                format!("Invalid value: {value}: {e}"),
            ));
        }
    }
    for (i, r) in template["spec"]["requirements"]
        .as_array()
        .into_iter()
        .flatten()
        .enumerate()
    {
        let field = format!("spec.template.spec.requirements[{i}]");
        let key = r["key"].as_str().unwrap_or("");
        if let Err(e) = restricted_label(key, NODEPOOL_FORBIDDEN) {
            let _ = e;
            causes.push((
                format!("{field}.key"),
                format!(
                    "Invalid value: \"string\": label domain \"{}\" is restricted",
                    key.split_once('/').map(|(d, _)| d).unwrap_or(key)
                ),
            ));
        }
        let op = r["operator"].as_str().unwrap_or("");
        let n = r["values"].as_array().map_or(0, Vec::len);
        if op == "In" && n == 0 {
            causes.push((field.clone(), "Invalid value: \"object\": requirements with operator 'In' must have a value defined".into()));
        }
        if (op == "Gt" || op == "Lt")
            && (n != 1
                || r["values"][0]
                    .as_str()
                    .and_then(|v| v.parse::<u64>().ok())
                    .is_none())
        {
            causes.push((field.clone(), "Invalid value: \"object\": requirements operator 'Gt' or 'Lt' must have a single positive integer value".into()));
        }
    }
    let mut seen = std::collections::BTreeSet::new();
    for field in ["taints", "startupTaints"] {
        for taint in template["spec"][field].as_array().into_iter().flatten() {
            let pair = (
                taint["key"].as_str().unwrap_or("").to_string(),
                taint["effect"].as_str().unwrap_or("").to_string(),
            );
            if !seen.insert(pair.clone()) {
                causes.push((
                    format!("spec.template.spec.{field}"),
                    format!("Duplicate value: \"{}:{}\"", pair.0, pair.1),
                ));
            }
        }
    }
    for (i, budget) in object["spec"]["disruption"]["budgets"]
        .as_array()
        .into_iter()
        .flatten()
        .enumerate()
    {
        if budget["schedule"].is_null() != budget["duration"].is_null() {
            causes.push((
                format!("spec.disruption.budgets[{i}]"),
                "Invalid value: \"object\": 'schedule' must be set with 'duration'".into(),
            ));
        }
    }
    if causes.is_empty() {
        Ok(())
    } else {
        Err(Rejection::Invalid(causes))
    }
}

/// The v1 EC2NodeClass's CEL rules.
pub fn ec2_node_class(object: &Value) -> Result<(), Rejection> {
    let spec = &object["spec"];
    let mut causes = Vec::new();
    if spec["role"].is_null() == spec["instanceProfile"].is_null() {
        causes.push((
            "spec".to_string(),
            "Invalid value: \"object\": must specify exactly one of ['role', 'instanceProfile']"
                .to_string(),
        ));
    }
    for (i, term) in spec["subnetSelectorTerms"]
        .as_array()
        .into_iter()
        .flatten()
        .enumerate()
    {
        if !term["id"].is_null() && !term["tags"].is_null() {
            causes.push((
                format!("spec.subnetSelectorTerms[{i}]"),
                "Invalid value: \"object\": 'id' is mutually exclusive, cannot be set with a combination of other fields in a subnet selector term".into(),
            ));
        }
    }
    let terms = spec["amiSelectorTerms"]
        .as_array()
        .map_or(&[][..], Vec::as_slice);
    if terms.iter().any(|t| !t["alias"].is_null()) && terms.len() > 1 {
        causes.push((
            "spec.amiSelectorTerms".into(),
            "Invalid value: \"array\": 'alias' is mutually exclusive, cannot be set with a combination of other amiSelectorTerms".into(),
        ));
    }
    for key in spec["tags"]
        .as_object()
        .into_iter()
        .flatten()
        .map(|(k, _)| k)
    {
        let reserved = [
            "eks:eks-cluster-name",
            "karpenter.sh/nodepool",
            "karpenter.sh/nodeclaim",
            "karpenter.k8s.aws/ec2nodeclass",
        ];
        if reserved.contains(&key.as_str()) || key.starts_with("kubernetes.io/cluster/") {
            causes.push((
                "spec.tags".into(),
                format!("Invalid value: \"object\": tag contains a restricted tag matching {key}"),
            ));
        }
    }
    if causes.is_empty() {
        Ok(())
    } else {
        Err(Rejection::Invalid(causes))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn seed_provisioner() -> Value {
        json!({"apiVersion": "karpenter.sh/v1alpha5", "kind": "Provisioner", "metadata": {"name": "default"},
            "spec": {"requirements": [{"key": "karpenter.sh/capacity-type", "operator": "In", "values": ["spot", "on-demand"]}],
                "labels": {"intent": "emr-job"},
                "provider": {"subnetSelector": {"karpenter.sh/discovery": "eks-emr-cluster"},
                    "securityGroupSelector": {"karpenter.sh/discovery": "eks-emr-cluster"},
                    "instanceProfile": "KarpenterNodeInstanceProfile-eks-emr-cluster",
                    "tags": {"accountingEC2Tag": "KarpenterDevEnvironmentEC2"}},
                "ttlSecondsAfterEmpty": 30}})
    }

    fn message(r: Result<(), Rejection>) -> String {
        match r {
            Err(Rejection::Webhook { message, .. }) => message,
            other => panic!("expected a webhook denial, got {other:?}"),
        }
    }

    #[test]
    fn the_seed_provisioner_is_valid() {
        assert_eq!(provisioner(&seed_provisioner()), Ok(()));
    }

    #[test]
    fn ttl_after_empty_and_consolidation_exclude_each_other() {
        let mut p = seed_provisioner();
        p["spec"]["consolidation"] = json!({"enabled": true});
        assert_eq!(
            message(provisioner(&p)),
            "expected exactly one, got both: spec.consolidation.enabled, spec.ttlSecondsAfterEmpty"
        );
        p["spec"]["consolidation"] = json!({"enabled": false});
        assert_eq!(provisioner(&p), Ok(()));
    }

    #[test]
    fn exactly_one_of_provider_and_provider_ref() {
        let mut p = seed_provisioner();
        p["spec"]["providerRef"] = json!({"name": "default"});
        assert!(message(provisioner(&p)).contains("got both: spec.provider, spec.providerRef"));
        p["spec"].as_object_mut().unwrap().remove("provider");
        assert_eq!(provisioner(&p), Ok(()));
        p["spec"].as_object_mut().unwrap().remove("providerRef");
        assert!(message(provisioner(&p)).contains("got neither: spec.provider, spec.providerRef"));
    }

    #[test]
    fn restricted_label_domains() {
        let mut p = seed_provisioner();
        p["spec"]["labels"] = json!({"kubernetes.io/foo": "x"});
        assert!(message(provisioner(&p)).contains("label kubernetes.io/foo is restricted"));
        p["spec"]["labels"] = json!({"karpenter.sh/provisioner-name": "x"});
        assert!(message(provisioner(&p)).contains("restricted"));
        for ok in [
            "node.kubernetes.io/lifecycle",
            "topology.kubernetes.io/zone",
            "team.example.com/x",
            "intent",
        ] {
            p["spec"]["labels"] = json!({ok: "v"});
            assert_eq!(provisioner(&p), Ok(()), "{ok}");
        }
    }

    #[test]
    fn requirement_operators_and_values() {
        let mut p = seed_provisioner();
        p["spec"]["requirements"] = json!([{"key": "karpenter.k8s.aws/instance-generation", "operator": "Gt", "values": ["x"]}]);
        assert!(message(provisioner(&p)).contains("single positive integer"));
        p["spec"]["requirements"] = json!([{"key": "intent", "operator": "In", "values": []}]);
        assert!(message(provisioner(&p)).contains("must have a value defined"));
        p["spec"]["requirements"] = json!([{"key": "intent", "operator": "Near", "values": ["a"]}]);
        assert!(message(provisioner(&p)).contains("unsupported operator Near"));
        p["spec"]["requirements"] =
            json!([{"key": "kubernetes.io/hostname", "operator": "In", "values": ["a"]}]);
        assert!(message(provisioner(&p)).contains("restricted"));
    }

    #[test]
    fn duplicate_taints_are_refused() {
        let mut p = seed_provisioner();
        p["spec"]["taints"] = json!([{"key": "a", "effect": "NoSchedule"}]);
        p["spec"]["startupTaints"] = json!([{"key": "a", "effect": "NoSchedule"}]);
        assert!(message(provisioner(&p)).contains("duplicate taint Key/Effect pair a=NoSchedule"));
    }

    #[test]
    fn nodepool_rules() {
        let mut np = json!({"spec": {"template": {"metadata": {"labels": {"intent": "emr-job"}},
            "spec": {"requirements": [{"key": "karpenter.sh/capacity-type", "operator": "In", "values": ["spot"]}],
                "nodeClassRef": {"group": "karpenter.k8s.aws", "kind": "EC2NodeClass", "name": "emr"}}}}});
        assert_eq!(nodepool(&np), Ok(()));
        np["spec"]["template"]["metadata"]["labels"]["karpenter.sh/nodepool"] = json!("x");
        let Err(Rejection::Invalid(causes)) = nodepool(&np) else {
            panic!()
        };
        assert_eq!(causes[0].0, "spec.template.metadata.labels");
        assert!(causes[0].1.contains("restricted"));
    }

    #[test]
    fn ec2_node_class_needs_exactly_one_of_role_and_profile() {
        let mut nc = json!({"spec": {"amiSelectorTerms": [{"alias": "al2023@latest"}], "role": "KarpenterNodeRole",
            "subnetSelectorTerms": [{"tags": {"a": "b"}}], "securityGroupSelectorTerms": [{"tags": {"a": "b"}}]}});
        assert_eq!(ec2_node_class(&nc), Ok(()));
        nc["spec"]["instanceProfile"] = json!("p");
        assert!(ec2_node_class(&nc).is_err());
    }
}
