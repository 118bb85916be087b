use serde_json::json;

use super::*;
use crate::records::JobRunState;

#[tokio::test]
async fn virtual_cluster_lifecycle() {
    let t = setup().await;
    let vc = t.create_vc("monthly-batch").await;
    assert_eq!(vc.len(), 25);
    let d = t.call("GET", &format!("/virtualclusters/{vc}"), None).await;
    let v = &d.ok()["virtualCluster"];
    assert_eq!(v["state"], "RUNNING");
    assert_eq!(
        v["arn"],
        format!("arn:aws:emr-containers:us-east-2:123456789012:/virtualclusters/{vc}")
    );
    assert_eq!(
        v["containerProvider"]["info"]["eksInfo"]["namespace"],
        "monthly-batch"
    );
    assert_eq!(
        v["schedulerStatus"],
        json!({"currentInQueueJobRuns": 0, "currentConcurrentJobRuns": 0})
    );
    assert!(v.get("schedulerConfiguration").is_none());
    let created = v["createdAt"].as_str().unwrap();
    assert!(
        regex::Regex::new(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
            .unwrap()
            .is_match(created),
        "{created}"
    );

    // Same namespace: refused while the first one is active.
    let r = t
        .call("POST", "/virtualclusters", Some(json!({"name": "x", "clientToken": "c1",
            "containerProvider": {"id": "eks-emr-cluster", "type": "EKS", "info": {"eksInfo": {"namespace": "monthly-batch"}}}})))
        .await;
    assert_eq!(
        r.err("ValidationException"),
        "A virtual cluster already exists in the given namespace"
    );

    let run = t.start(&vc, json!({})).await;
    let run_id = run.ok()["id"].as_str().unwrap().to_string();

    let r = t
        .call("DELETE", &format!("/virtualclusters/{vc}"), None)
        .await;
    assert_eq!(r.ok(), &json!({"id": vc}));
    // The background step finishes promptly.
    for _ in 0..100 {
        let d = t.call("GET", &format!("/virtualclusters/{vc}"), None).await;
        if d.ok()["virtualCluster"]["state"] == "TERMINATED" {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    let d = t.call("GET", &format!("/virtualclusters/{vc}"), None).await;
    assert_eq!(d.ok()["virtualCluster"]["state"], "TERMINATED");
    let r = t
        .call(
            "GET",
            &format!("/virtualclusters/{vc}/jobruns/{run_id}"),
            None,
        )
        .await;
    assert_eq!(r.ok()["jobRun"]["state"], "CANCELLED");
    assert!(r.ok()["jobRun"]["finishedAt"].is_string());

    // Terminated: listable, does not block the namespace, refuses job runs.
    let l = t
        .call("GET", "/virtualclusters?states=TERMINATED", None)
        .await;
    assert_eq!(l.ok()["virtualClusters"].as_array().unwrap().len(), 1);
    let vc2 = t.create_vc("monthly-batch").await;
    assert_ne!(vc, vc2);
    let r = t.start(&vc, json!({})).await;
    assert_eq!(
        r.err("ValidationException"),
        "Virtual cluster state TERMINATED is not valid to create resource JobRun."
    );
    let r = t
        .call("DELETE", &format!("/virtualclusters/{vc}"), None)
        .await;
    r.ok();

    let r = t.call("GET", "/virtualclusters/abcdef", None).await;
    assert_eq!(
        r.err("ResourceNotFoundException"),
        "Virtual cluster abcdef doesn't exist."
    );
    let r = t.call("GET", "/virtualclusters/ABC_DEF", None).await;
    assert_eq!(
        r.err("ValidationException"),
        "1 validation error detected: Value 'ABC_DEF' at 'id' failed to satisfy constraint: Member must satisfy regular expression pattern: [0-9a-z]+"
    );
}

#[tokio::test]
async fn start_describe_list_cancel() {
    let t = setup().await;
    let vc = t.create_vc("monthly-batch").await;
    let body = job();
    let r = t
        .call(
            "POST",
            &format!("/virtualclusters/{vc}/jobruns"),
            Some(body.clone()),
        )
        .await;
    let out = r.ok().clone();
    let id = out["id"].as_str().unwrap().to_string();
    assert!(
        regex::Regex::new("^0{7}[0-9a-z]{12}$")
            .unwrap()
            .is_match(&id),
        "{id}"
    );
    assert_eq!(out["name"], "pi-4");
    assert_eq!(out["virtualClusterId"], vc.as_str());
    assert_eq!(
        out["arn"],
        format!("arn:aws:emr-containers:us-east-2:123456789012:/virtualclusters/{vc}/jobruns/{id}")
    );

    let d = t
        .call("GET", &format!("/virtualclusters/{vc}/jobruns/{id}"), None)
        .await;
    let run = d.ok()["jobRun"].clone();
    assert_eq!(run["state"], "PENDING");
    assert_eq!(
        run["configurationOverrides"],
        body["configurationOverrides"]
    );
    assert_eq!(run["jobDriver"], body["jobDriver"]);
    assert_eq!(run["createdBy"], "arn:aws:iam::123456789012:root");
    assert_eq!(run["clientToken"], body["clientToken"]);
    assert!(run.get("retryPolicyConfiguration").is_none());
    assert!(run.get("finishedAt").is_none());

    // Idempotent replay: same token, same request → same id, nothing new.
    let again = t
        .call(
            "POST",
            &format!("/virtualclusters/{vc}/jobruns"),
            Some(body.clone()),
        )
        .await;
    assert_eq!(again.ok(), &out);
    let mut changed = body.clone();
    changed["name"] = json!("other");
    let r = t
        .call(
            "POST",
            &format!("/virtualclusters/{vc}/jobruns"),
            Some(changed),
        )
        .await;
    assert!(r
        .err("ValidationException")
        .contains("already used for a different StartJobRun request"));

    let vcd = t.call("GET", &format!("/virtualclusters/{vc}"), None).await;
    assert_eq!(
        vcd.ok()["virtualCluster"]["schedulerStatus"]["currentInQueueJobRuns"],
        1
    );

    // More runs, newest first, pagination with a never-repeated token.
    let mut ids = vec![id.clone()];
    for i in 0..4 {
        let r = t.start(&vc, json!({"name": format!("job-{i}")})).await;
        ids.push(r.ok()["id"].as_str().unwrap().to_string());
    }
    ids.reverse();
    let mut seen = Vec::new();
    let mut token: Option<String> = None;
    let mut tokens = std::collections::HashSet::new();
    loop {
        let uri = match &token {
            Some(t) => format!("/virtualclusters/{vc}/jobruns?maxResults=2&nextToken={t}"),
            None => format!("/virtualclusters/{vc}/jobruns?maxResults=2"),
        };
        let r = t.call("GET", &uri, None).await;
        let page = r.ok().clone();
        for j in page["jobRuns"].as_array().unwrap() {
            seen.push(j["id"].as_str().unwrap().to_string());
        }
        match page.get("nextToken").and_then(|v| v.as_str()) {
            Some(n) => {
                assert!(tokens.insert(n.to_string()));
                token = Some(n.to_string());
            }
            None => break,
        }
    }
    assert_eq!(seen, ids);
    let r = t
        .call(
            "GET",
            &format!("/virtualclusters/{vc}/jobruns?name=job-2"),
            None,
        )
        .await;
    assert_eq!(r.ok()["jobRuns"].as_array().unwrap().len(), 1);
    let r = t
        .call(
            "GET",
            &format!("/virtualclusters/{vc}/jobruns?name=job"),
            None,
        )
        .await;
    assert_eq!(
        r.ok()["jobRuns"].as_array().unwrap().len(),
        0,
        "name is exact"
    );
    let r = t
        .call(
            "GET",
            &format!("/virtualclusters/{vc}/jobruns?createdAfter=2099-01-01T00%3A00%3A00Z"),
            None,
        )
        .await;
    assert_eq!(r.ok()["jobRuns"].as_array().unwrap().len(), 0);
    let r = t.call("GET", &format!("/virtualclusters/{vc}/jobruns?createdBefore=2099-01-01T00%3A00%3A00Z&states=PENDING"), None).await;
    assert_eq!(r.ok()["jobRuns"].as_array().unwrap().len(), 5);
    let r = t
        .call(
            "GET",
            &format!("/virtualclusters/{vc}/jobruns?states=BOGUS"),
            None,
        )
        .await;
    assert!(r.err("ValidationException").contains("'states.1.member'"));

    // Cancel.
    let r = t
        .call(
            "DELETE",
            &format!("/virtualclusters/{vc}/jobruns/{id}"),
            None,
        )
        .await;
    assert_eq!(r.ok(), &json!({"id": id, "virtualClusterId": vc}));
    let d = t
        .call("GET", &format!("/virtualclusters/{vc}/jobruns/{id}"), None)
        .await;
    assert_eq!(d.ok()["jobRun"]["state"], "CANCELLED");
    let r = t
        .call(
            "DELETE",
            &format!("/virtualclusters/{vc}/jobruns/{id}"),
            None,
        )
        .await;
    assert_eq!(
        r.err("ValidationException"),
        format!("Job run {id} is not in a cancellable state")
    );
    let r = t
        .call(
            "GET",
            &format!("/virtualclusters/{vc}/jobruns?states=CANCELLED"),
            None,
        )
        .await;
    assert_eq!(r.ok()["jobRuns"].as_array().unwrap().len(), 1);

    let r = t
        .call("GET", &format!("/virtualclusters/{vc}/jobruns/abc"), None)
        .await;
    assert_eq!(r.err("ValidationException"), "Invalid job run short id");
    let r = t
        .call(
            "GET",
            &format!("/virtualclusters/{vc}/jobruns/0000000306pd7cjc3s5"),
            None,
        )
        .await;
    assert_eq!(
        r.err("ResourceNotFoundException"),
        "Job run 0000000306pd7cjc3s5 doesn't exist."
    );
}

#[tokio::test]
async fn start_job_run_validation() {
    let t = setup().await;
    let vc = t.create_vc("ns").await;
    let r = t.start("nope", json!({})).await;
    assert_eq!(
        r.err("ResourceNotFoundException"),
        "Virtual cluster nope doesn't exist."
    );
    let r = t
        .start(&vc, json!({"releaseLabel": "emr-9.9.9-latest"}))
        .await;
    assert_eq!(
        r.err("ResourceNotFoundException"),
        "Release emr-9.9.9-latest doesn't exist."
    );
    let mut b = job();
    b.as_object_mut().unwrap().remove("executionRoleArn");
    b.as_object_mut().unwrap().remove("jobDriver");
    let r = t
        .call("POST", &format!("/virtualclusters/{vc}/jobruns"), Some(b))
        .await;
    assert_eq!(
        r.err("ValidationException"),
        "2 validation errors detected: Value null at 'executionRoleArn' failed to satisfy constraint: Member must not be null; Value null at 'jobDriver' failed to satisfy constraint: Member must not be null"
    );
    let r = t.start(&vc, json!({"jobDriver": {}})).await;
    assert!(r.err("ValidationException").starts_with("Exactly one of"));
    let r = t
        .start(
            &vc,
            json!({"jobDriver": {"sparkSqlJobDriver": {"entryPoint": "s3://b/q.sql"}}}),
        )
        .await;
    assert!(r.err("ValidationException").contains("emr-6.7.0"));
    t.start(&vc, json!({"releaseLabel": "emr-6.15.0-latest", "jobDriver": {"sparkSqlJobDriver": {"entryPoint": "s3://b/q.sql"}}}))
        .await
        .ok();
    let r = t
        .start(&vc, json!({"retryPolicyConfiguration": {"maxAttempts": 0}}))
        .await;
    assert_eq!(
        r.err("ValidationException"),
        "Retry policy configuration's parameter value of maxAttempts is invalid"
    );
    let r = t.start(&vc, json!({"retryPolicyConfiguration": {"maxAttempts": 3}, "releaseLabel": "emr-6.15.0-latest"})).await;
    let id = r.ok()["id"].as_str().unwrap().to_string();
    let d = t
        .call("GET", &format!("/virtualclusters/{vc}/jobruns/{id}"), None)
        .await;
    assert_eq!(
        d.ok()["jobRun"]["retryPolicyConfiguration"],
        json!({"maxAttempts": 3})
    );
    assert_eq!(
        d.ok()["jobRun"]["retryPolicyExecution"],
        json!({"currentAttemptCount": 1})
    );
    let r = t.start(&vc, json!({"name": "x".repeat(65), "configurationOverrides": {"monitoringConfiguration": {"persistentAppUI": "MAYBE"}}})).await;
    let m = r.err("ValidationException");
    assert!(m.starts_with("2 validation errors detected: "), "{m}");
    let r = t
        .raw(
            "POST",
            &format!("/virtualclusters/{vc}/jobruns"),
            "{not json",
        )
        .await;
    r.err("SerializationException");
    let r = t
        .start(
            &vc,
            json!({"retryPolicyConfiguration": {"maxAttempts": "3"}}),
        )
        .await;
    r.err("SerializationException");
}

#[tokio::test]
async fn scheduler_configuration() {
    let t = setup().await;
    let r = t
        .call("POST", "/virtualclusters", Some(json!({"name": "q", "clientToken": "t1",
            "containerProvider": {"id": "c", "type": "EKS", "info": {"eksInfo": {"namespace": "q"}}},
            "schedulerConfiguration": {"maxInQueueJobRuns": 2}})))
        .await;
    let vc = r.ok()["id"].as_str().unwrap().to_string();
    t.start(&vc, json!({})).await.ok();
    t.start(&vc, json!({})).await.ok();
    let r = t.start(&vc, json!({})).await;
    assert!(r.err("ValidationException").contains("maxInQueueJobRuns"));

    // Absent = no change.
    let r = t
        .call(
            "PATCH",
            &format!("/virtualclusters/{vc}"),
            Some(json!({"clientToken": "u1"})),
        )
        .await;
    assert_eq!(
        r.ok()["virtualCluster"]["schedulerConfiguration"],
        json!({"maxInQueueJobRuns": 2})
    );
    assert_eq!(
        r.ok()["virtualCluster"]["schedulerStatus"]["currentInQueueJobRuns"],
        2
    );
    // Replace, accepting the larger limit of the older model.
    let r = t
        .call("PATCH", &format!("/virtualclusters/{vc}"), Some(json!({"clientToken": "u2", "schedulerConfiguration": {"maxConcurrentJobRuns": 10, "maxInQueueJobRuns": 5000}})))
        .await;
    assert_eq!(
        r.ok()["virtualCluster"]["schedulerConfiguration"],
        json!({"maxConcurrentJobRuns": 10, "maxInQueueJobRuns": 5000})
    );
    t.start(&vc, json!({})).await.ok();
    // `{}` clears.
    let r = t
        .call(
            "PATCH",
            &format!("/virtualclusters/{vc}"),
            Some(json!({"clientToken": "u3", "schedulerConfiguration": {}})),
        )
        .await;
    assert!(r.ok()["virtualCluster"]
        .get("schedulerConfiguration")
        .is_none());
    let r = t
        .call(
            "PATCH",
            &format!("/virtualclusters/{vc}"),
            Some(json!({"clientToken": "u4", "schedulerConfiguration": {"maxInQueueJobRuns": 0}})),
        )
        .await;
    assert!(r
        .err("ValidationException")
        .contains("Member must have value greater than or equal to 1"));
    let r = t
        .call("PATCH", &format!("/virtualclusters/{vc}"), Some(json!({"clientToken": "u5", "schedulerConfiguration": {"maxInQueueJobRuns": 10001}})))
        .await;
    r.err("ValidationException");
}

#[tokio::test]
async fn job_templates() {
    let t = setup().await;
    let vc = t.create_vc("ns").await;
    let data = json!({
        "executionRoleArn": "${Role}",
        "releaseLabel": "${Release}",
        "jobDriver": {"sparkSubmitJobDriver": {"entryPoint": "s3://b/${Script}", "sparkSubmitParameters": "--conf spark.executor.instances=${N}"}},
        "configurationOverrides": {"monitoringConfiguration": {"persistentAppUI": "${Ui}"}},
        "parameterConfiguration": {
            "Role": {"type": "STRING", "defaultValue": "arn:aws:iam::123456789012:role/r"},
            "Release": {"type": "STRING", "defaultValue": "emr-6.15.0-latest"},
            "Script": {"type": "STRING"},
            "N": {"type": "NUMBER", "defaultValue": "2"},
            "Ui": {"type": "STRING", "defaultValue": "ENABLED"}
        },
        "jobTags": {"team": "data"}
    });
    let r = t
        .call(
            "POST",
            "/jobtemplates",
            Some(json!({"name": "tpl", "clientToken": "c", "jobTemplateData": data})),
        )
        .await;
    let out = r.ok().clone();
    let tid = out["id"].as_str().unwrap().to_string();
    assert_eq!(tid.len(), 17);
    assert!(out["createdAt"].is_string());
    let d = t.call("GET", &format!("/jobtemplates/{tid}"), None).await;
    assert_eq!(d.ok()["jobTemplate"]["jobTemplateData"], data);

    let start = |params: serde_json::Value| json!({"name": "from-tpl", "clientToken": uuid(), "jobTemplateId": tid, "jobTemplateParameters": params, "tags": {"x": "y"}});
    let r = t
        .call(
            "POST",
            &format!("/virtualclusters/{vc}/jobruns"),
            Some(start(json!({"Script": "pi.py", "N": "4"}))),
        )
        .await;
    let id = r.ok()["id"].as_str().unwrap().to_string();
    let d = t
        .call("GET", &format!("/virtualclusters/{vc}/jobruns/{id}"), None)
        .await;
    let run = &d.ok()["jobRun"];
    assert_eq!(run["executionRoleArn"], "arn:aws:iam::123456789012:role/r");
    assert_eq!(run["releaseLabel"], "emr-6.15.0-latest");
    assert_eq!(
        run["jobDriver"]["sparkSubmitJobDriver"]["entryPoint"],
        "s3://b/pi.py"
    );
    assert_eq!(
        run["jobDriver"]["sparkSubmitJobDriver"]["sparkSubmitParameters"],
        "--conf spark.executor.instances=4"
    );
    assert_eq!(run["tags"], json!({"team": "data", "x": "y"}));

    let r = t
        .call(
            "POST",
            &format!("/virtualclusters/{vc}/jobruns"),
            Some(start(json!({}))),
        )
        .await;
    assert!(r.err("ValidationException").contains("Script"));
    let r = t
        .call(
            "POST",
            &format!("/virtualclusters/{vc}/jobruns"),
            Some(start(json!({"Script": "a", "N": "four"}))),
        )
        .await;
    assert!(r.err("ValidationException").contains("NUMBER"));
    let r = t
        .call(
            "POST",
            &format!("/virtualclusters/{vc}/jobruns"),
            Some(start(json!({"Script": "a", "Extra": "1"}))),
        )
        .await;
    assert!(r.err("ValidationException").contains("Extra"));
    // A resolved value that breaks the plain shape is caught.
    let r = t
        .call(
            "POST",
            &format!("/virtualclusters/{vc}/jobruns"),
            Some(start(json!({"Script": "a", "Ui": "MAYBE"}))),
        )
        .await;
    assert!(r.err("ValidationException").contains("persistentAppUI"));
    let r = t
        .call(
            "POST",
            &format!("/virtualclusters/{vc}/jobruns"),
            Some(start(json!({"Script": "a", "Release": "emr-1.0.0-latest"}))),
        )
        .await;
    r.err("ResourceNotFoundException");

    let l = t.call("GET", "/jobtemplates", None).await;
    assert_eq!(l.ok()["templates"].as_array().unwrap().len(), 1);
    let r = t
        .call("DELETE", &format!("/jobtemplates/{tid}"), None)
        .await;
    assert_eq!(r.ok(), &json!({"id": tid}));
    let r = t.call("GET", &format!("/jobtemplates/{tid}"), None).await;
    assert_eq!(
        r.err("ResourceNotFoundException"),
        format!("Job template {tid} doesn't exist.")
    );
    let r = t
        .call(
            "POST",
            &format!("/virtualclusters/{vc}/jobruns"),
            Some(start(json!({"Script": "a"}))),
        )
        .await;
    r.err("ResourceNotFoundException");
}

#[tokio::test]
async fn endpoints_and_security_configurations() {
    let t = setup().await;
    let vc = t.create_vc("ns").await;
    let r = t
        .call(
            "POST",
            &format!("/virtualclusters/{vc}/endpoints"),
            Some(json!({"name": "ep", "clientToken": "c",
            "type": "JUPYTER_ENTERPRISE_GATEWAY", "releaseLabel": "emr-6.10.0-latest",
            "executionRoleArn": "arn:aws:iam::123456789012:role/r"})),
        )
        .await;
    let ep = r.ok()["id"].as_str().unwrap().to_string();
    assert_eq!(ep.len(), 13);
    let mut state = String::new();
    for _ in 0..100 {
        let d = t
            .call(
                "GET",
                &format!("/virtualclusters/{vc}/endpoints/{ep}"),
                None,
            )
            .await;
        state = d.ok()["endpoint"]["state"].as_str().unwrap().to_string();
        if state != "CREATING" {
            assert_eq!(d.ok()["endpoint"]["failureReason"], "INTERNAL_ERROR");
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert_eq!(state, "TERMINATED_WITH_ERRORS");
    let r = t
        .call("POST", &format!("/virtualclusters/{vc}/endpoints/{ep}/credentials"), Some(json!({"executionRoleArn": "arn:aws:iam::123456789012:role/r", "credentialType": "TOKEN"})))
        .await;
    assert!(r
        .err("ValidationException")
        .contains("only issued for ACTIVE endpoints"));
    let l = t.call("GET", &format!("/virtualclusters/{vc}/endpoints?states=TERMINATED_WITH_ERRORS&types=JUPYTER_ENTERPRISE_GATEWAY"), None).await;
    assert_eq!(l.ok()["endpoints"].as_array().unwrap().len(), 1);
    let r = t
        .call(
            "DELETE",
            &format!("/virtualclusters/{vc}/endpoints/{ep}"),
            None,
        )
        .await;
    assert_eq!(r.ok(), &json!({"id": ep, "virtualClusterId": vc}));
    let d = t
        .call(
            "GET",
            &format!("/virtualclusters/{vc}/endpoints/{ep}"),
            None,
        )
        .await;
    assert_eq!(d.ok()["endpoint"]["state"], "TERMINATED");

    let data = json!({"authorizationConfiguration": {"encryptionConfiguration": {"inTransitEncryptionConfiguration": {"tlsCertificateConfiguration": {
        "certificateProviderType": "PEM",
        "publicCertificateSecretArn": "arn:aws:secretsmanager:us-east-2:123456789012:secret:pub",
        "privateCertificateSecretArn": "arn:aws:secretsmanager:us-east-2:123456789012:secret:priv"}}}}});
    let r = t
        .call(
            "POST",
            "/securityconfigurations",
            Some(json!({"name": "sc", "clientToken": "c", "securityConfigurationData": data})),
        )
        .await;
    let sc = r.ok()["id"].as_str().unwrap().to_string();
    let d = t
        .call("GET", &format!("/securityconfigurations/{sc}"), None)
        .await;
    assert_eq!(
        d.ok()["securityConfiguration"]["securityConfigurationData"],
        data
    );
    let l = t.call("GET", "/securityconfigurations", None).await;
    assert_eq!(
        l.ok()["securityConfigurations"].as_array().unwrap().len(),
        1
    );
    let r = t
        .call("DELETE", &format!("/securityconfigurations/{sc}"), None)
        .await;
    r.ok();
    let r = t
        .call("GET", &format!("/securityconfigurations/{sc}"), None)
        .await;
    r.err("ResourceNotFoundException");
}

#[tokio::test]
async fn tags_on_every_resource() {
    let t = setup().await;
    let vc = t.create_vc("ns").await;
    let run = t.start(&vc, json!({"tags": {"a": "1"}})).await.ok()["arn"]
        .as_str()
        .unwrap()
        .to_string();
    let vc_arn = format!("arn:aws:emr-containers:us-east-2:123456789012:/virtualclusters/{vc}");
    let tpl = t
        .call("POST", "/jobtemplates", Some(json!({"name": "t", "clientToken": "c", "jobTemplateData": {
            "executionRoleArn": "arn:aws:iam::123456789012:role/r", "releaseLabel": "emr-6.15.0-latest",
            "jobDriver": {"sparkSubmitJobDriver": {"entryPoint": "x"}}}})))
        .await
        .ok()["arn"]
        .as_str()
        .unwrap()
        .to_string();
    let enc = |arn: &str| {
        percent_encoding::utf8_percent_encode(arn, percent_encoding::NON_ALPHANUMERIC).to_string()
    };
    for arn in [&vc_arn, &run, &tpl] {
        let r = t
            .call(
                "POST",
                &format!("/tags/{}", enc(arn)),
                Some(json!({"tags": {"b": "2", "c": "3"}})),
            )
            .await;
        assert_eq!(r.ok(), &json!({}));
        let r = t
            .call(
                "DELETE",
                &format!("/tags/{}?tagKeys=c&tagKeys=zz", enc(arn)),
                None,
            )
            .await;
        r.ok();
        let r = t.call("GET", &format!("/tags/{}", enc(arn)), None).await;
        assert_eq!(r.ok()["tags"]["b"], "2");
        assert!(r.ok()["tags"].get("c").is_none());
    }
    let d = t.call("GET", &format!("/virtualclusters/{vc}"), None).await;
    assert_eq!(d.ok()["virtualCluster"]["tags"], json!({"b": "2"}));
    let missing = format!(
        "arn:aws:emr-containers:us-east-2:123456789012:/virtualclusters/{}",
        "z".repeat(25)
    );
    let r = t
        .call("GET", &format!("/tags/{}", enc(&missing)), None)
        .await;
    r.err("ResourceNotFoundException");
    let mut many = serde_json::Map::new();
    for i in 0..50 {
        many.insert(format!("k{i}"), json!("v"));
    }
    let r = t
        .call(
            "POST",
            &format!("/tags/{}", enc(&vc_arn)),
            Some(json!({"tags": many})),
        )
        .await;
    assert!(r.err("ValidationException").contains("at most 50"));
    let r = t.call("GET", "/tags/short", None).await;
    assert!(r.err("ValidationException").contains("resourceArn"));
}

#[tokio::test]
async fn unknown_routes_and_methods() {
    let t = setup().await;
    let r = t.call("GET", "/nothing", None).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    r.err("UnknownOperationException");
    let r = t.call("PUT", "/virtualclusters", None).await;
    r.err("UnknownOperationException");
}

#[tokio::test]
async fn list_virtual_clusters_filters() {
    let t = setup().await;
    let a = t.create_vc("a").await;
    let _b = t.create_vc("b").await;
    let r = t.call("GET", "/virtualclusters?containerProviderId=eks-emr-cluster&containerProviderType=EKS&states=RUNNING&eksAccessEntryIntegrated=true", None).await;
    assert_eq!(r.ok()["virtualClusters"].as_array().unwrap().len(), 2);
    let r = t
        .call("GET", "/virtualclusters?containerProviderId=other", None)
        .await;
    assert_eq!(r.ok()["virtualClusters"].as_array().unwrap().len(), 0);
    let r = t
        .call(
            "GET",
            "/virtualclusters?eksAccessEntryIntegrated=false",
            None,
        )
        .await;
    assert_eq!(r.ok()["virtualClusters"].as_array().unwrap().len(), 0);
    let r = t.call("GET", "/virtualclusters?maxResults=1", None).await;
    assert_eq!(r.ok()["virtualClusters"].as_array().unwrap().len(), 1);
    assert!(r.ok()["nextToken"].is_string());
    let r = t
        .call("GET", "/virtualclusters?nextToken=garbage", None)
        .await;
    r.err("ValidationException");
    let r = t.call("GET", "/virtualclusters?maxResults=0", None).await;
    r.err("ValidationException");
    t.call("DELETE", &format!("/virtualclusters/{a}"), None)
        .await
        .ok();
    let r = t.call("GET", "/virtualclusters?states=RUNNING", None).await;
    assert_eq!(r.ok()["virtualClusters"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn state_survives_reopen_and_controller_api() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    let settings = || Settings {
        region: "us-east-2".into(),
        account_id: "123456789012".into(),
        config: EmrConfig::default(),
    };
    let (vc, id, token) = {
        let store = sparkyard_store::Store::open(&path).unwrap();
        let t = T {
            emr: Emr::open(store, settings()).await.unwrap(),
            _dir: tempfile::tempdir().unwrap(),
        };
        let vc = t.create_vc("ns").await;
        let body = job();
        let token = body["clientToken"].as_str().unwrap().to_string();
        let r = t
            .call(
                "POST",
                &format!("/virtualclusters/{vc}/jobruns"),
                Some(body),
            )
            .await;
        (vc, r.ok()["id"].as_str().unwrap().to_string(), token)
    };
    let store = sparkyard_store::Store::open(&path).unwrap();
    let emr = Emr::open(store, settings()).await.unwrap();
    let t = T {
        emr: emr.clone(),
        _dir: dir,
    };
    // The token is durable too.
    let mut body = job();
    body["clientToken"] = json!(token);
    let r = t
        .call(
            "POST",
            &format!("/virtualclusters/{vc}/jobruns"),
            Some(body),
        )
        .await;
    assert_eq!(r.ok()["id"], id.as_str());

    let pending = emr.job_runs_in_states(&[JobRunState::Pending]);
    assert_eq!(pending.len(), 1);
    assert_eq!(pending[0].namespace, "ns");
    assert_eq!(pending[0].cluster_id, "eks-emr-cluster");
    emr.transition_job_run(&id, JobRunTransition::to(JobRunState::Submitted))
        .await
        .unwrap();
    let mut running = JobRunTransition::to(JobRunState::Running);
    running.attempt_count = Some(1);
    emr.transition_job_run(&id, running).await.unwrap();
    assert_eq!(emr.scheduler_counts(&vc).running, 1);
    let mut done = JobRunTransition::to(JobRunState::Completed);
    done.state_details = Some(Some(
        "JobRun completed successfully. It ran for 41 Seconds".into(),
    ));
    let rec = emr.transition_job_run(&id, done).await.unwrap();
    assert!(rec.finished_at.is_some());
    assert_eq!(emr.scheduler_counts(&vc), SchedulerCounts::default());
    let err = emr
        .transition_job_run(&id, JobRunTransition::to(JobRunState::Running))
        .await
        .unwrap_err();
    assert!(matches!(err, TransitionError::Illegal { .. }));
    let d = t
        .call("GET", &format!("/virtualclusters/{vc}/jobruns/{id}"), None)
        .await;
    assert_eq!(d.ok()["jobRun"]["state"], "COMPLETED");
    assert_eq!(
        d.ok()["jobRun"]["stateDetails"],
        "JobRun completed successfully. It ran for 41 Seconds"
    );
    let r = t
        .call(
            "DELETE",
            &format!("/virtualclusters/{vc}/jobruns/{id}"),
            None,
        )
        .await;
    r.err("ValidationException");
}

/// sparkyard's GetJobRunCost and ListJobRunCosts (docs/cost.md): no record until the
/// controller writes one for an ended run; an active run's record is refused.
#[tokio::test]
async fn cost_records_are_written_for_ended_runs_and_read_back() {
    let t = setup().await;
    let vc = t.create_vc("monthly-batch").await;
    let id = t.start(&vc, json!({})).await.ok()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let at = |s: &str| s.parse::<chrono::DateTime<chrono::Utc>>().unwrap();
    let usage = sparkyard_cost::PodUsage {
        name: "spark-driver".into(),
        role: "driver".into(),
        start: at("2026-12-05T10:00:00Z"),
        end: at("2026-12-05T10:01:00Z"),
        vcpu: 1.0,
        memory_bytes: 2.0 * 1024.0 * 1024.0 * 1024.0,
        node: None,
    };
    let cost = sparkyard_cost::cost_of_run(&[usage], "us-east-2");

    // PENDING: refused, and nothing changed.
    let refused = t.emr.record_job_run_cost(&id, cost.clone()).await;
    assert!(
        matches!(refused, Err(TransitionError::Illegal { .. })),
        "{refused:?}"
    );
    let path = format!("/virtualclusters/{vc}/jobruns/{id}/cost");
    let before = t.call("GET", &path, None).await;
    assert_eq!(before.ok()["jobRunCost"]["state"], "PENDING");
    assert!(before.ok()["jobRunCost"].get("cost").is_none());

    t.emr
        .transition_job_run(&id, JobRunTransition::to(JobRunState::Cancelled))
        .await
        .unwrap();
    t.emr.record_job_run_cost(&id, cost.clone()).await.unwrap();
    let after = t.call("GET", &path, None).await;
    let record = &after.ok()["jobRunCost"];
    assert_eq!(record["cost"]["vcpuHours"], json!(cost.vcpu_hours));
    assert_eq!(record["cost"]["pods"][0]["seconds"], 60);
    assert_eq!(record["cost"]["ratesSource"], "published");
    // DescribeJobRun's wire shape is AWS's: no cost there.
    let described = t
        .call("GET", &format!("/virtualclusters/{vc}/jobruns/{id}"), None)
        .await;
    assert!(described.ok()["jobRun"].get("cost").is_none());

    let listed = t
        .call("GET", &format!("/virtualclusters/{vc}/jobruncosts"), None)
        .await;
    let entries = listed.ok()["jobRunCosts"].as_array().unwrap();
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0]["id"], json!(id));
    assert!(entries[0]["cost"].get("pods").is_none(), "{entries:?}");
    assert_eq!(entries[0]["cost"]["emrUsd"], json!(cost.emr_usd));

    // Unknown runs are AWS-shaped errors.
    let missing = t
        .call(
            "GET",
            &format!("/virtualclusters/{vc}/jobruns/0000000327fe50tosa4/cost"),
            None,
        )
        .await;
    missing.err("ResourceNotFoundException");
}
