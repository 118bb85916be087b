//! The AWS CLI profile sparkyard writes into its data directory. (Skeleton.)

use std::path::Path;

use crate::auth::AccessKey;

pub struct CliProfile;

impl CliProfile {
    /// Human instructions printed at start-up.
    pub fn usage(&self) -> String {
        String::new()
    }
}

pub fn write_cli_profile(_data_dir: &Path, _key: &AccessKey, _region: &str, _endpoint: &str) -> std::io::Result<CliProfile> {
    unimplemented!("skeleton")
}
