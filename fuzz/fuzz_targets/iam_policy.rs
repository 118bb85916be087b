//! IAM policy documents: parsing/validation (identity and trust policies) and evaluation,
//! as PutRolePolicy / CreateRole store them and every service's authorizer evaluates them.
//!
//! Input (UTF-8 text):
//! ```text
//! s3:GetObject arn:aws:s3:::bucket/key aws:PrincipalArn=arn:... <- line 1: request
//! {"Version": "2012-10-17", "Statement": [...]}                  <- the rest: the policy
//! ```
//! Line 1 is `<action> <resource> [<key>=<value> ...]` (the condition keys of the request
//! context). Feeds `iam::validate::policy_size`, `authz::policy::parse` for both kinds,
//! `authz::eval::evaluate` (identity), `authz::eval::trust_allows` (trust, as a web
//! identity and as an AWS principal), `authz::eval::glob` with the action as the pattern,
//! and `authz::Caller::from_arn` with the resource.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sparkyard_services::authz::eval::{self, RequestContext};
use sparkyard_services::authz::policy::{self, PolicyKind};
use sparkyard_services::authz::{Caller, Decision};
use sparkyard_services::iam::validate;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let (request, document) = text.split_once('\n').unwrap_or(("", text));
    let mut words = request.split(' ');
    let action = words.next().unwrap_or_default();
    let resource = words.next().unwrap_or("*");
    let mut ctx = RequestContext::new(action, resource);
    for word in words {
        if let Some((k, v)) = word.split_once('=') {
            ctx = ctx.with_key(k, v);
        }
    }
    let _ = Caller::from_arn(resource);
    let _ = eval::glob(action, resource, true);
    let _ = validate::policy_size(document, "fuzz-role");

    if let Ok(identity) = policy::parse(document, PolicyKind::Identity) {
        let decision = eval::evaluate(std::slice::from_ref(&identity), &ctx);
        // Adding the same document twice never changes the decision.
        let twice = eval::evaluate(&[identity.clone(), identity], &ctx);
        assert_eq!(decision, twice);
    }
    if let Ok(trust) = policy::parse(document, PolicyKind::Trust) {
        for (kind, principal) in [
            (
                "Federated",
                "arn:aws:iam::123456789012:oidc-provider/oidc.eks.us-east-2.amazonaws.com/id/X",
            ),
            ("AWS", "arn:aws:iam::123456789012:root"),
            ("Service", "emr-containers.amazonaws.com"),
        ] {
            let d = eval::trust_allows(&trust, kind, principal, &ctx);
            let _ = matches!(d, Decision::Allow);
        }
    }
});
