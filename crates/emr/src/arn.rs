//! ARNs (reference §5): partition `aws`, the server's region and account, and a resource
//! part that starts with `/`.

/// What an emr-containers ARN names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resource {
    VirtualCluster(String),
    JobRun {
        virtual_cluster_id: String,
        id: String,
    },
    Endpoint {
        virtual_cluster_id: String,
        id: String,
    },
    JobTemplate(String),
    SecurityConfiguration(String),
}

#[derive(Debug, Clone)]
pub struct Arns {
    pub region: String,
    pub account_id: String,
}

impl Arns {
    fn prefix(&self) -> String {
        format!(
            "arn:aws:emr-containers:{}:{}:",
            self.region, self.account_id
        )
    }

    pub fn arn(&self, r: &Resource) -> String {
        let path = match r {
            Resource::VirtualCluster(id) => format!("/virtualclusters/{id}"),
            Resource::JobRun {
                virtual_cluster_id,
                id,
            } => {
                format!("/virtualclusters/{virtual_cluster_id}/jobruns/{id}")
            }
            Resource::Endpoint {
                virtual_cluster_id,
                id,
            } => {
                format!("/virtualclusters/{virtual_cluster_id}/endpoints/{id}")
            }
            Resource::JobTemplate(id) => format!("/jobtemplates/{id}"),
            Resource::SecurityConfiguration(id) => format!("/securityconfigurations/{id}"),
        };
        format!("{}{path}", self.prefix())
    }

    pub fn virtual_cluster(&self, id: &str) -> String {
        self.arn(&Resource::VirtualCluster(id.into()))
    }
    pub fn job_run(&self, vc: &str, id: &str) -> String {
        self.arn(&Resource::JobRun {
            virtual_cluster_id: vc.into(),
            id: id.into(),
        })
    }
    pub fn endpoint(&self, vc: &str, id: &str) -> String {
        self.arn(&Resource::Endpoint {
            virtual_cluster_id: vc.into(),
            id: id.into(),
        })
    }
    pub fn job_template(&self, id: &str) -> String {
        self.arn(&Resource::JobTemplate(id.into()))
    }
    pub fn security_configuration(&self, id: &str) -> String {
        self.arn(&Resource::SecurityConfiguration(id.into()))
    }

    /// The resource an ARN names, if it is one of ours (this region and account). Any
    /// other ARN (another partition, region, account or service) names nothing here.
    pub fn parse(&self, arn: &str) -> Option<Resource> {
        let rest = arn.strip_prefix(&self.prefix())?;
        let parts: Vec<&str> = rest.strip_prefix('/')?.split('/').collect();
        let ok = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric());
        match parts.as_slice() {
            ["virtualclusters", vc] if ok(vc) => Some(Resource::VirtualCluster(vc.to_string())),
            ["virtualclusters", vc, "jobruns", id] if ok(vc) && ok(id) => Some(Resource::JobRun {
                virtual_cluster_id: vc.to_string(),
                id: id.to_string(),
            }),
            ["virtualclusters", vc, "endpoints", id] if ok(vc) && ok(id) => {
                Some(Resource::Endpoint {
                    virtual_cluster_id: vc.to_string(),
                    id: id.to_string(),
                })
            }
            ["jobtemplates", id] if ok(id) => Some(Resource::JobTemplate(id.to_string())),
            ["securityconfigurations", id] if ok(id) => {
                Some(Resource::SecurityConfiguration(id.to_string()))
            }
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn arns() -> Arns {
        Arns {
            region: "us-east-2".into(),
            account_id: "123456789012".into(),
        }
    }

    #[test]
    fn formats_match_the_reference() {
        let a = arns();
        assert_eq!(
            a.virtual_cluster("ahg18jv46xeqp3jbe83pj39m1"),
            "arn:aws:emr-containers:us-east-2:123456789012:/virtualclusters/ahg18jv46xeqp3jbe83pj39m1"
        );
        assert_eq!(
            a.job_run("vc", "0000000306pd7cjc3s5"),
            "arn:aws:emr-containers:us-east-2:123456789012:/virtualclusters/vc/jobruns/0000000306pd7cjc3s5"
        );
        assert_eq!(
            a.endpoint("vc", "ep"),
            "arn:aws:emr-containers:us-east-2:123456789012:/virtualclusters/vc/endpoints/ep"
        );
        assert_eq!(
            a.job_template("t"),
            "arn:aws:emr-containers:us-east-2:123456789012:/jobtemplates/t"
        );
        assert_eq!(
            a.security_configuration("s"),
            "arn:aws:emr-containers:us-east-2:123456789012:/securityconfigurations/s"
        );
    }

    #[test]
    fn parse_round_trips() {
        let a = arns();
        for r in [
            Resource::VirtualCluster("v1".into()),
            Resource::JobRun {
                virtual_cluster_id: "v1".into(),
                id: "j1".into(),
            },
            Resource::Endpoint {
                virtual_cluster_id: "v1".into(),
                id: "e1".into(),
            },
            Resource::JobTemplate("t1".into()),
            Resource::SecurityConfiguration("s1".into()),
        ] {
            assert_eq!(a.parse(&a.arn(&r)), Some(r));
        }
        assert_eq!(
            a.parse("arn:aws:emr-containers:eu-west-1:123456789012:/virtualclusters/v1"),
            None
        );
        assert_eq!(
            a.parse("arn:aws:emr-containers:us-east-2:123456789012:/virtualclusters/v1/x"),
            None
        );
    }
}
