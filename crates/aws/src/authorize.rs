//! Authorization of an authenticated caller, shared by every service on the endpoint.
//!
//! The policy engine lives with IAM (`sparkyard-services`); services that only need a yes
//! or no — emr-containers — see it through this trait, so they don't depend on IAM.

use crate::Principal;

pub trait Authorize: Send + Sync {
    /// `Ok` when `principal` may perform `action` (`service:Operation`) on `resource_arn`
    /// (`*` for actions without a resource); otherwise AWS's denial message.
    fn authorize(
        &self,
        principal: &Principal,
        action: &str,
        resource_arn: &str,
    ) -> Result<(), String>;
}
