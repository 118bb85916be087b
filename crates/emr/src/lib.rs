//! The emr-containers API. (Skeleton: the emr helper fills this in.)

use serde::Deserialize;

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct EmrConfig {}

pub struct Settings {
    pub region: String,
    pub account_id: String,
    pub config: EmrConfig,
}

#[derive(Clone)]
pub struct Emr;

impl Emr {
    pub async fn open(_store: sparkyard_store::Store, _settings: Settings) -> Result<Self, std::io::Error> {
        unimplemented!("skeleton")
    }
}

pub fn router(_emr: Emr) -> axum::Router {
    axum::Router::new()
}
