//! The names EMR on EKS gives the Kubernetes objects of a job run.

/// The three Spark service accounts EMR creates per execution role.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SparkRole {
    /// The job runner (job submitter) pod.
    Client,
    Driver,
    Executor,
}

impl SparkRole {
    fn as_str(self) -> &'static str {
        match self {
            SparkRole::Client => "client",
            SparkRole::Driver => "driver",
            SparkRole::Executor => "executor",
        }
    }
}

/// `emr-containers-sa-spark-{client,driver,executor}-<account>-<base36(role name)>`, the
/// service-account names `aws emr-containers update-role-trust-policy` trusts.
pub fn service_account(role: SparkRole, account_id: &str, role_name: &str) -> String {
    format!(
        "emr-containers-sa-spark-{}-{account_id}-{}",
        role.as_str(),
        base36(role_name.as_bytes())
    )
}

/// The role name of an IAM role ARN (`arn:aws:iam::123456789012:role/path/name` → `name`).
pub fn role_name(role_arn: &str) -> Option<&str> {
    let resource = role_arn.split(':').nth(5)?;
    let path = resource.strip_prefix("role/")?;
    path.rsplit('/').next().filter(|n| !n.is_empty())
}

/// The bytes read as one big-endian base-256 number, written in `0-9a-z` — the encoding the
/// AWS CLI's `update-role-trust-policy` uses for role names in service-account names.
pub fn base36(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 36] = b"0123456789abcdefghijklmnopqrstuvwxyz";
    let mut number: Vec<u8> = bytes.iter().copied().skip_while(|b| *b == 0).collect();
    let mut out = Vec::new();
    // Schoolbook long division by 36, one base-256 digit at a time.
    while !number.is_empty() {
        let mut remainder: u32 = 0;
        let mut quotient = Vec::with_capacity(number.len());
        for digit in &number {
            let value = (remainder << 8) | u32::from(*digit);
            let q = value / 36;
            remainder = value % 36;
            if !(quotient.is_empty() && q == 0) {
                quotient.push(q as u8);
            }
        }
        out.push(DIGITS[remainder as usize]);
        number = quotient;
    }
    if out.is_empty() {
        out.push(b'0');
    }
    out.reverse();
    String::from_utf8(out).expect("ascii digits")
}

/// `spark-<jobRunId>`: EMR's Spark application id, also the default app name. A retried
/// run's later attempts are `spark-<jobRunId>-<attempt>`: each attempt is an application of
/// its own, whose event log must not collide with the first one's (Spark refuses to start
/// when its event log already exists), and the History Server lists every attempt.
pub fn spark_app_id(job_run_id: &str, attempt: Option<u32>) -> String {
    match attempt {
        Some(n) if n > 1 => format!("spark-{job_run_id}-{n}"),
        _ => format!("spark-{job_run_id}"),
    }
}

/// The job runner's `batch/v1` Job: `<jobRunId>` for the first attempt, `<jobRunId>--<n>`
/// for later ones, so every attempt has its own stable name (crash-safe re-apply).
pub fn runner_job_name(job_run_id: &str, attempt: u32) -> String {
    if attempt <= 1 {
        job_run_id.to_string()
    } else {
        format!("{job_run_id}--{attempt}")
    }
}

/// The driver pod: `spark-<jobRunId>-driver`, and with a retry policy
/// `spark-<jobRunId>-driver-<suffix>`, where the suffix is derived from the attempt so a
/// restarted controller recreates the same name instead of a second driver.
pub fn driver_pod_name(job_run_id: &str, attempt: Option<u32>) -> String {
    match attempt {
        None => format!("spark-{job_run_id}-driver"),
        Some(n) => format!(
            "spark-{job_run_id}-driver-{}",
            attempt_suffix(job_run_id, n)
        ),
    }
}

/// Five `[a-z0-9]` characters that look random but are a pure function of (run, attempt),
/// different for every attempt of a run.
fn attempt_suffix(job_run_id: &str, attempt: u32) -> String {
    // FNV-1a: stable across platforms and releases, unlike std's hasher.
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in job_run_id.bytes().chain(attempt.to_be_bytes()) {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    // FNV barely moves the high digits when only the last byte changes (the first five
    // base-36 digits of attempts 1 and 2 were equal for one run in five, so both attempts'
    // drivers had one name). A SplitMix64 finalizer spreads every input bit over all output
    // bits, and the suffix is the hash modulo 36^5.
    hash = (hash ^ (hash >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    hash = (hash ^ (hash >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    hash ^= hash >> 31;
    let digits = base36(&(hash % 36u64.pow(5)).to_be_bytes());
    format!("{digits:0>5}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base36_matches_big_integer_arithmetic() {
        assert_eq!(base36(b""), "0");
        assert_eq!(base36(&[35]), "z");
        assert_eq!(base36(&[36]), "10");
        assert_eq!(base36(&[1, 0]), "74"); // 256 = 7*36 + 4
                                           // "ab" = 0x6162 = 24930 = 19*1296 + 8*36 + 18
        assert_eq!(base36(b"ab"), "j8i");
        assert_eq!(base36(&u64::MAX.to_be_bytes()), "3w5e11264sgsf");
    }

    #[test]
    fn service_accounts_follow_the_trust_policy_pattern() {
        let name = service_account(SparkRole::Driver, "123456789012", "ab");
        assert_eq!(name, "emr-containers-sa-spark-driver-123456789012-j8i");
        let client = service_account(
            SparkRole::Client,
            "123456789012",
            "monthly-batch-JobExecutionRole",
        );
        assert!(client.starts_with("emr-containers-sa-spark-client-123456789012-"));
        assert!(client.len() <= 253);
    }

    #[test]
    fn role_names_come_from_the_arn() {
        assert_eq!(
            role_name("arn:aws:iam::123456789012:role/monthly-batch-JobExecutionRole"),
            Some("monthly-batch-JobExecutionRole")
        );
        assert_eq!(
            role_name("arn:aws:iam::123456789012:role/team/data/etl"),
            Some("etl")
        );
        assert_eq!(role_name("arn:aws:iam::123456789012:user/bob"), None);
    }

    #[test]
    fn driver_names_are_stable_per_attempt() {
        assert_eq!(
            driver_pod_name("0000000327fe50tosa4", None),
            "spark-0000000327fe50tosa4-driver"
        );
        let first = driver_pod_name("0000000327fe50tosa4", Some(1));
        assert_eq!(first, driver_pod_name("0000000327fe50tosa4", Some(1)));
        assert_ne!(first, driver_pod_name("0000000327fe50tosa4", Some(2)));
        // Every attempt of every run gets its own name (consecutive attempts once collided).
        for n in 0..2000 {
            let id = format!("0000000{n:0>12}");
            let names: std::collections::HashSet<String> =
                (1..=10).map(|a| driver_pod_name(&id, Some(a))).collect();
            assert_eq!(names.len(), 10, "{id}: {names:?}");
        }
        assert_ne!(
            driver_pod_name("0000000eaxsw7ddye10", Some(1)),
            driver_pod_name("0000000eaxsw7ddye10", Some(2))
        );
        let suffix = first.rsplit('-').next().unwrap();
        assert_eq!(suffix.len(), 5);
        assert!(suffix
            .bytes()
            .all(|b| b.is_ascii_digit() || b.is_ascii_lowercase()));
    }

    #[test]
    fn runner_jobs_are_named_per_attempt() {
        assert_eq!(
            runner_job_name("0000000327fe50tosa4", 1),
            "0000000327fe50tosa4"
        );
        assert_eq!(
            runner_job_name("0000000327fe50tosa4", 3),
            "0000000327fe50tosa4--3"
        );
    }
}
