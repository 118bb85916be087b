//! TagResource, UntagResource, ListTagsForResource on virtual clusters, job runs,
//! endpoints, job templates and security configurations (≤ 50 tags per resource).

use serde_json::{json, Value};
use sparkyard_aws::AwsError;
use sparkyard_store::Batch;

use super::{check, query, Req};
use crate::arn::Resource;
use crate::emr::{store_error, Outcome};
use crate::records::Tags;
use crate::state::State;
use crate::{shapes, Emr};

const MAX_TAGS: usize = 50;

fn not_found(arn: &str) -> AwsError {
    AwsError::not_found(format!("Resource {arn} doesn't exist."))
}

fn resource(emr: &Emr, req: &Req) -> Result<(String, Resource), AwsError> {
    let arn = req.label(0).to_string();
    let r = emr.inner.arns.parse(&arn).ok_or_else(|| not_found(&arn))?;
    Ok((arn, r))
}

fn tags_of<'s>(st: &'s State, r: &Resource) -> Option<&'s Tags> {
    match r {
        Resource::VirtualCluster(id) => st.vcs.get(id).map(|v| &v.tags),
        Resource::JobRun {
            virtual_cluster_id,
            id,
        } => st
            .runs
            .get(id)
            .filter(|x| &x.virtual_cluster_id == virtual_cluster_id)
            .map(|x| &x.tags),
        Resource::Endpoint {
            virtual_cluster_id,
            id,
        } => st
            .endpoints
            .get(id)
            .filter(|x| &x.virtual_cluster_id == virtual_cluster_id)
            .map(|x| &x.tags),
        Resource::JobTemplate(id) => st.templates.get(id).map(|x| &x.tags),
        Resource::SecurityConfiguration(id) => st.security_configurations.get(id).map(|x| &x.tags),
    }
}

/// Replaces the tags of `r` with `tags` (record and batch).
fn set_tags(st: &mut State, r: &Resource, tags: Tags, batch: &mut Batch) -> Result<(), AwsError> {
    let res = match r {
        Resource::VirtualCluster(id) => {
            let mut x = st.vcs[id].clone();
            x.tags = tags;
            st.put_vc(x, batch)
        }
        Resource::JobRun { id, .. } => {
            let mut x = st.runs[id].clone();
            x.tags = tags;
            st.put_run(x, batch)
        }
        Resource::Endpoint { id, .. } => {
            let mut x = st.endpoints[id].clone();
            x.tags = tags;
            st.put_endpoint(x, batch)
        }
        Resource::JobTemplate(id) => {
            let mut x = st.templates[id].clone();
            x.tags = tags;
            st.put_template(x, batch)
        }
        Resource::SecurityConfiguration(id) => {
            let mut x = st.security_configurations[id].clone();
            x.tags = tags;
            st.put_security_configuration(x, batch)
        }
    };
    res.map_err(store_error)
}

/// The read-modify-write of `r`'s tags, as one step of [`Emr::execute`]: the state lock is
/// held from reading the tags to queueing their write, so concurrent changes to a resource's
/// tags apply one after another and none is lost. `edit` changes the tags in place and
/// returns whether they are to be written (`false`: nothing changed, nothing is written).
async fn update_tags(
    emr: &Emr,
    arn: &str,
    r: &Resource,
    edit: impl FnOnce(&mut Tags) -> Result<bool, AwsError>,
) -> Result<Value, AwsError> {
    emr.execute(|st| {
        let mut tags = tags_of(st, r).ok_or_else(|| not_found(arn))?.clone();
        if !edit(&mut tags)? {
            return Ok(Outcome::Read(json!({})));
        }
        let mut batch = Batch::new();
        set_tags(st, r, tags, &mut batch)?;
        Ok(Outcome::Write {
            response: json!({}),
            batch,
            after: None,
        })
    })
    .await
}

pub async fn tag(emr: &Emr, req: &Req) -> Result<Value, AwsError> {
    check(
        req,
        &[("resourceArn", &shapes::RSI_ARN)],
        Some(&shapes::TAG_RESOURCE),
    )?;
    let (arn, r) = resource(emr, req)?;
    update_tags(emr, &arn, &r, |tags| {
        if let Some(new) = req.body.get("tags").and_then(Value::as_object) {
            for (k, v) in new {
                tags.insert(k.clone(), v.clone());
            }
        }
        if tags.len() > MAX_TAGS {
            return Err(AwsError::validation(format!(
                "Resource {arn} would have {} tags; a resource can have at most {MAX_TAGS} tags.",
                tags.len()
            )));
        }
        Ok(true)
    })
    .await
}

pub async fn untag(emr: &Emr, req: &Req) -> Result<Value, AwsError> {
    check(req, &[("resourceArn", &shapes::RSI_ARN)], None)?;
    let doc = query(req, &shapes::UNTAG_RESOURCE)?;
    let (arn, r) = resource(emr, req)?;
    let keys: Vec<String> = super::listing::str_list(&doc, "tagKeys").unwrap_or_default();
    update_tags(emr, &arn, &r, |tags| {
        let before = tags.len();
        for k in &keys {
            tags.shift_remove(k);
        }
        Ok(tags.len() != before)
    })
    .await
}

pub fn list(emr: &Emr, req: &Req) -> Result<Value, AwsError> {
    check(req, &[("resourceArn", &shapes::RSI_ARN)], None)?;
    let (arn, r) = resource(emr, req)?;
    let st = emr.lock();
    let tags = tags_of(&st, &r).ok_or_else(|| not_found(&arn))?;
    Ok(json!({"tags": tags}))
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use serde_json::{json, Value};

    use crate::state::State;
    use crate::tests::setup;

    /// TagResource and UntagResource racing on one resource: every change lands, in memory
    /// and on disk.
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn concurrent_tag_changes_are_not_lost() {
        let t = Arc::new(setup().await);
        let vc = t.create_vc("ns").await;
        let arn = format!("arn:aws:emr-containers:us-east-2:123456789012:/virtualclusters/{vc}");
        let path = format!(
            "/tags/{}",
            percent_encoding::utf8_percent_encode(&arn, percent_encoding::NON_ALPHANUMERIC)
        );
        let old: serde_json::Map<String, Value> =
            (0..10).map(|i| (format!("old{i}"), json!("v"))).collect();
        t.call("POST", &path, Some(json!({ "tags": old })))
            .await
            .ok();

        let mut tasks = Vec::new();
        for i in 0..20 {
            let (t, path) = (t.clone(), path.clone());
            tasks.push(tokio::spawn(async move {
                let body = json!({"tags": {format!("new{i}"): "v"}});
                t.call("POST", &path, Some(body)).await.status
            }));
        }
        for i in 0..10 {
            let (t, path) = (t.clone(), path.clone());
            tasks.push(tokio::spawn(async move {
                t.call("DELETE", &format!("{path}?tagKeys=old{i}"), None)
                    .await
                    .status
            }));
        }
        for task in tasks {
            assert!(task.await.unwrap().is_success());
        }

        let mut listed: Vec<String> = t.call("GET", &path, None).await.ok()["tags"]
            .as_object()
            .unwrap()
            .keys()
            .cloned()
            .collect();
        listed.sort();
        let mut expected: Vec<String> = (0..20).map(|i| format!("new{i}")).collect();
        expected.sort();
        assert_eq!(listed, expected);
        let stored = State::load(&t.emr.inner.store).unwrap();
        let mut on_disk: Vec<String> = stored.vcs[&vc].tags.keys().cloned().collect();
        on_disk.sort();
        assert_eq!(on_disk, expected);
    }
}
