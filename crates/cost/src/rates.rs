//! EMR on EKS's rates: USD per vCPU-hour and per GB-hour of requested pod resources, on
//! top of the EC2 (or Fargate) bill.
//!
//! Source: AWS's EMR pricing page, "Amazon EMR on Amazon EKS" ($0.01012 per vCPU-hour and
//! $0.00111125 per GB-hour in US East (N. Virginia), US East (Ohio) and US West (Oregon)),
//! the figures aws/aws-emr-best-practices' benchmarking guide works with
//! (`website/docs/benchmarks/benchmarking_variables.md`). For other regions this table has
//! no published figure: those get the US East rates, marked [`Source::Assumed`], and the
//! cost record says so.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Rates {
    pub vcpu_hour: f64,
    pub gb_hour: f64,
}

/// Whether a region's rates are AWS's published ones or assumed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    Published,
    Assumed,
}

const US: Rates = Rates {
    vcpu_hour: 0.01012,
    gb_hour: 0.00111125,
};

/// The rates of `region`, and whether they are published or assumed.
pub fn emr_on_eks(region: &str) -> (Rates, Source) {
    match region {
        "us-east-1" | "us-east-2" | "us-west-2" => (US, Source::Published),
        _ => (US, Source::Assumed),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn published_regions_and_the_rest() {
        assert_eq!(emr_on_eks("us-east-2"), (US, Source::Published));
        assert_eq!(emr_on_eks("eu-west-1").1, Source::Assumed);
    }
}
