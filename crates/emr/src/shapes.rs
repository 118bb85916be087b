//! The emr-containers 2020-10-01 input shapes, transcribed from the botocore model
//! (reference §4). Only what the server validates is listed; unknown members in a request
//! are ignored and echoed back untouched.
//!
//! Deliberate deviations from botocore 1.44.5, each for a documented reason:
//! - scheduler limits accept 1..10000, the union of the two model versions (§3.4);
//! - tag APIs accept every emr-containers ARN, not only `/virtualclusters/…` (§4.1 RsiArn);
//! - patterns are whole-value matches (Java `matches()`).

use crate::pattern;
use crate::validate::{opt, req, Member, Shape, Str};

pattern!(P_RESOURCE_ID, r"[0-9a-z]+");
pattern!(P_RESOURCE_NAME, r"[\.\-_/#A-Za-z0-9]+");
pattern!(P_NON_BLANK, r".*\S.*");
pattern!(P_NON_BLANK_ANCHORED, r"^.*\S.*$");
pattern!(P_RELEASE_LABEL, r"[\.\-_/A-Za-z0-9]+");
pattern!(
    P_IAM_ROLE_ARN,
    r"^arn:(aws[a-zA-Z0-9-]*):iam::(\d{12})?:(role((\u002F)|(\u002F[\u0021-\u007F]+\u002F))[\w+=,.@-]+)$"
);
pattern!(P_CLUSTER_ID, r"^[0-9A-Za-z][A-Za-z0-9\-_]*");
pattern!(P_NAMESPACE, r"[a-z0-9]([-a-z0-9]*[a-z0-9])?");
pattern!(P_NODE_LABEL, r"^[a-z0-9](?:[a-z0-9-]*[a-z0-9])?$");
pattern!(
    P_URI,
    r"[\u0020-\uD7FF\uE000-\uFFFD\uD800\uDBFF-\uDC00\uDFFF\r\n\t]*",
    r"[\x{20}-\x{D7FF}\x{E000}-\x{FFFD}\x{10000}-\x{10FFFF}\r\n\t]*"
);
pattern!(P_LOG_GROUP, r"[\.\-_/#A-Za-z0-9]+");
pattern!(P_ROTATION_SIZE, r"^\d+(\.\d+)?[KMG][Bb]?$");
pattern!(
    P_KMS_KEY_ARN,
    r"^(arn:(aws[a-zA-Z0-9-]*):kms:.+:(\d{12})?:key\/[(0-9a-zA-Z)-?]+|\$\{[a-zA-Z]\w*\})$"
);
pattern!(
    P_ACM_ARN,
    r"^arn:(aws[a-zA-Z0-9-]*):acm:.+:(\d{12}):certificate/.+$"
);
pattern!(
    P_SECRETS_ARN,
    r"^arn:(aws[a-zA-Z0-9-]*):secretsmanager:.+:(\d{12}):secret:[0-9a-zA-Z/_+=.@-]+$"
);
pattern!(
    P_LOG_CONTEXT,
    r"^((?!.*-s3alias)(?!xn--.*)[a-z0-9][-a-z0-9.]*)?[a-z0-9]$",
    r"([a-z0-9][-a-z0-9.]*)?[a-z0-9]"
);
pattern!(P_TEMPLATE_PARAM_NAME, r"[\.\-_\#A-Za-z0-9]+");
pattern!(P_TEMPLATE_PARAMETER, r"[\.\-_/#A-Za-z0-9\$\{\}]+");
pattern!(
    P_PARAMETRIC_RELEASE_LABEL,
    r"([\.\-_/A-Za-z0-9]+|\$\{[a-zA-Z]\w*\})"
);
pattern!(
    P_PARAMETRIC_ROLE_ARN,
    r"(^arn:(aws[a-zA-Z0-9-]*):iam::(\d{12})?:(role((\u002F)|(\u002F[\u0021-\u007F]+\u002F))[\w+=,.@-]+)$)|([\.\-_\#A-Za-z0-9\$\{\}]+)"
);
pattern!(
    P_RSI_ARN,
    r"^arn:(aws[a-zA-Z0-9-]*):emr-containers:.+:(\d{12}):/.+$"
);
pattern!(P_SESSION_TAG_VALUE, r"[\.\-_/#A-Za-z0-9 ]+");
pattern!(
    P_IDC_INSTANCE_ARN,
    r"^arn:(aws[a-zA-Z0-9-]*):sso:::instance/ssoins-[0-9a-zA-Z/\\-_]+"
);
pattern!(
    P_IDC_APP_ARN,
    r"^arn:(aws[a-zA-Z0-9-]*):sso:::application/ssoins-[0-9a-zA-Z/\\-_]+/apl-[0-9a-zA-Z/\\-_]+"
);
pattern!(
    P_BASE64,
    r"^([A-Za-z0-9+/]{4})*([A-Za-z0-9+/]{4}|[A-Za-z0-9+/]{3}=|[A-Za-z0-9+/]{2}==)?$"
);

fn log_context_extra(s: &str) -> bool {
    // The model's look-aheads, which Rust's regex does not support.
    !s.contains("-s3alias") && !s.starts_with("xn--")
}

// ---- scalars ----------------------------------------------------------------------------
pub static RESOURCE_ID: Shape = Shape::String(Str::new(1, 64, Some(&P_RESOURCE_ID)));
pub static RESOURCE_NAME: Shape = Shape::String(Str::new(1, 64, Some(&P_RESOURCE_NAME)));
pub static CLIENT_TOKEN: Shape = Shape::String(Str::new(1, 64, Some(&P_NON_BLANK)));
pub static RELEASE_LABEL: Shape = Shape::String(Str::new(1, 64, Some(&P_RELEASE_LABEL)));
pub static IAM_ROLE_ARN: Shape = Shape::String(Str::new(20, 2048, Some(&P_IAM_ROLE_ARN)));
pub static CLUSTER_ID: Shape = Shape::String(Str::new(1, 100, Some(&P_CLUSTER_ID)));
pub static NAMESPACE: Shape = Shape::String(Str::new(1, 63, Some(&P_NAMESPACE)));
pub static NODE_LABEL: Shape = Shape::String(Str::new(1, 64, Some(&P_NODE_LABEL)));
pub static ENTRY_POINT: Shape = Shape::String(Str::new(1, 256, Some(&P_NON_BLANK)).sensitive());
pub static ENTRY_POINT_ARG: Shape =
    Shape::String(Str::new(1, 10280, Some(&P_NON_BLANK)).sensitive());
pub static SPARK_PARAMETERS: Shape =
    Shape::String(Str::new(1, 102400, Some(&P_NON_BLANK)).sensitive());
pub static URI: Shape = Shape::String(Str::new(1, 10280, Some(&P_URI)));
pub static LOG_GROUP: Shape = Shape::String(Str::new(1, 512, Some(&P_LOG_GROUP)));
pub static STRING128: Shape = Shape::String(Str::new(1, 128, Some(&P_NON_BLANK)));
pub static STRING256: Shape = Shape::String(Str::new(1, 256, Some(&P_NON_BLANK)));
pub static STRING1024: Shape = Shape::String(Str::new(1, 1024, Some(&P_NON_BLANK)));
pub static STRING1024_SENSITIVE: Shape =
    Shape::String(Str::new(1, 1024, Some(&P_NON_BLANK)).sensitive());
pub static STRING2048: Shape = Shape::String(Str::new(1, 2048, Some(&P_NON_BLANK)));
pub static STRING_EMPTY256: Shape = Shape::String(Str::new(0, 256, Some(&P_NON_BLANK)));
pub static ROTATION_SIZE: Shape = Shape::String(Str::new(3, 12, Some(&P_ROTATION_SIZE)));
pub static KMS_KEY_ARN: Shape = Shape::String(Str::new(3, 2048, Some(&P_KMS_KEY_ARN)));
pub static ACM_ARN: Shape = Shape::String(Str::new(44, 2048, Some(&P_ACM_ARN)));
pub static SECRETS_ARN: Shape = Shape::String(Str::new(3, 2048, Some(&P_SECRETS_ARN)));
pub static LOG_CONTEXT: Shape = Shape::String(Str {
    min: Some(3),
    max: Some(63),
    pattern: Some(&P_LOG_CONTEXT),
    values: None,
    sensitive: false,
    extra: Some(log_context_extra),
});
pub static TEMPLATE_PARAM_NAME: Shape =
    Shape::String(Str::new(1, 512, Some(&P_TEMPLATE_PARAM_NAME)));
pub static TEMPLATE_PARAMETER: Shape = Shape::String(Str::new(1, 512, Some(&P_TEMPLATE_PARAMETER)));
pub static PARAMETRIC_RELEASE_LABEL: Shape =
    Shape::String(Str::new(1, 64, Some(&P_PARAMETRIC_RELEASE_LABEL)));
pub static PARAMETRIC_ROLE_ARN: Shape =
    Shape::String(Str::new(4, 2048, Some(&P_PARAMETRIC_ROLE_ARN)));
pub static RSI_ARN: Shape = Shape::String(Str::new(60, 500, Some(&P_RSI_ARN)));
pub static SESSION_TAG_VALUE: Shape = Shape::String(Str::new(1, 512, Some(&P_SESSION_TAG_VALUE)));
pub static IDC_INSTANCE_ARN: Shape = Shape::String(Str::new(10, 1224, Some(&P_IDC_INSTANCE_ARN)));
pub static IDC_APP_ARN: Shape = Shape::String(Str {
    min: None,
    max: None,
    pattern: Some(&P_IDC_APP_ARN),
    values: None,
    sensitive: false,
    extra: None,
});
pub static BASE64: Shape = Shape::String(Str {
    min: None,
    max: Some(5000),
    pattern: Some(&P_BASE64),
    values: None,
    sensitive: false,
    extra: None,
});
pub static NEXT_TOKEN: Shape = Shape::String(Str::new(1, 1024, Some(&P_NON_BLANK)));
pub static ENDPOINT_TYPE: Shape = Shape::String(Str::new(1, 64, Some(&P_NON_BLANK)));
pub static CREDENTIAL_TYPE: Shape = Shape::String(Str::new(1, 64, Some(&P_NON_BLANK_ANCHORED)));

pub static PERSISTENT_APP_UI: Shape = Shape::String(Str::one_of(&["ENABLED", "DISABLED"]));
pub static ALLOW_RETAIN_LOGS: Shape = Shape::String(Str::one_of(&["ENABLED", "DISABLED"]));
pub static CONTAINER_PROVIDER_TYPE: Shape = Shape::String(Str::one_of(&["EKS"]));
pub static TEMPLATE_PARAM_TYPE: Shape = Shape::String(Str::one_of(&["NUMBER", "STRING"]));
pub static CERT_PROVIDER_TYPE: Shape = Shape::String(Str::one_of(&["PEM"]));
pub static JOB_RUN_STATE: Shape = Shape::String(Str::one_of(&[
    "PENDING",
    "SUBMITTED",
    "RUNNING",
    "FAILED",
    "CANCELLED",
    "CANCEL_PENDING",
    "COMPLETED",
]));
pub static VC_STATE: Shape = Shape::String(Str::one_of(&[
    "RUNNING",
    "TERMINATING",
    "TERMINATED",
    "ARRESTED",
]));
pub static ENDPOINT_STATE: Shape = Shape::String(Str::one_of(&[
    "CREATING",
    "ACTIVE",
    "TERMINATING",
    "TERMINATED",
    "TERMINATED_WITH_ERRORS",
]));

pub static JAVA_INTEGER: Shape = Shape::Integer {
    min: None,
    max: None,
};
/// Both scheduler limits: 1..10000, the union of the two model versions (§3.4).
pub static JOB_LIMIT: Shape = Shape::Integer {
    min: Some(1),
    max: Some(10000),
};
pub static MAX_FILES_TO_KEEP: Shape = Shape::Integer {
    min: Some(1),
    max: Some(50),
};
pub static BOOLEAN: Shape = Shape::Boolean;
pub static TIMESTAMP: Shape = Shape::Timestamp;

// ---- collections ------------------------------------------------------------------------
pub static TAG_MAP: Shape = Shape::Map {
    key: &STRING128,
    value: &STRING_EMPTY256,
    max: Some(50),
};
pub static TAG_KEY_LIST: Shape = Shape::List {
    member: &STRING128,
    min: Some(0),
    max: Some(50),
};
pub static PROPERTIES: Shape = Shape::Map {
    key: &STRING1024,
    value: &STRING1024_SENSITIVE,
    max: Some(100),
};
pub static ENTRY_POINT_ARGS: Shape = Shape::List {
    member: &ENTRY_POINT_ARG,
    min: None,
    max: None,
};
pub static SUBNET_IDS: Shape = Shape::List {
    member: &STRING256,
    min: None,
    max: None,
};
pub static JOB_RUN_STATES: Shape = Shape::List {
    member: &JOB_RUN_STATE,
    min: None,
    max: Some(10),
};
pub static VC_STATES: Shape = Shape::List {
    member: &VC_STATE,
    min: None,
    max: Some(10),
};
pub static ENDPOINT_STATES: Shape = Shape::List {
    member: &ENDPOINT_STATE,
    min: None,
    max: Some(10),
};
pub static ENDPOINT_TYPES: Shape = Shape::List {
    member: &ENDPOINT_TYPE,
    min: None,
    max: Some(10),
};
pub static TEMPLATE_PARAM_INPUTS: Shape = Shape::Map {
    key: &TEMPLATE_PARAM_NAME,
    value: &STRING1024,
    max: Some(100),
};

// ---- structures -------------------------------------------------------------------------
pub static EKS_INFO: Shape =
    Shape::Structure(&[opt("namespace", &NAMESPACE), opt("nodeLabel", &NODE_LABEL)]);
pub static CONTAINER_INFO: Shape = Shape::Structure(&[opt("eksInfo", &EKS_INFO)]);
pub static CONTAINER_PROVIDER: Shape = Shape::Structure(&[
    req("type", &CONTAINER_PROVIDER_TYPE),
    req("id", &CLUSTER_ID),
    opt("info", &CONTAINER_INFO),
]);
pub static SCHEDULER_CONFIGURATION: Shape = Shape::Structure(&[
    opt("maxInQueueJobRuns", &JOB_LIMIT),
    opt("maxConcurrentJobRuns", &JOB_LIMIT),
]);

pub static CONFIGURATION: Shape = Shape::Structure(&[
    req("classification", &STRING1024),
    opt("properties", &PROPERTIES),
    opt("configurations", &CONFIGURATION_LIST),
]);
pub static CONFIGURATION_LIST: Shape = Shape::List {
    member: &CONFIGURATION,
    min: None,
    max: Some(100),
};

pub static CLOUDWATCH: Shape = Shape::Structure(&[
    req("logGroupName", &LOG_GROUP),
    opt("logStreamNamePrefix", &STRING256),
]);
pub static S3_MONITORING: Shape =
    Shape::Structure(&[req("logUri", &URI), opt("encryptionKeyArn", &KMS_KEY_ARN)]);
pub static MANAGED_LOGS: Shape = Shape::Structure(&[
    opt("allowAWSToRetainLogs", &ALLOW_RETAIN_LOGS),
    opt("encryptionKeyArn", &KMS_KEY_ARN),
]);
pub static LOG_ROTATION: Shape = Shape::Structure(&[
    req("rotationSize", &ROTATION_SIZE),
    req("maxFilesToKeep", &MAX_FILES_TO_KEEP),
]);
pub static MONITORING: Shape = Shape::Structure(&[
    opt("managedLogs", &MANAGED_LOGS),
    opt("persistentAppUI", &PERSISTENT_APP_UI),
    opt("cloudWatchMonitoringConfiguration", &CLOUDWATCH),
    opt("s3MonitoringConfiguration", &S3_MONITORING),
    opt("containerLogRotationConfiguration", &LOG_ROTATION),
]);
pub static CONFIGURATION_OVERRIDES: Shape = Shape::Structure(&[
    opt("applicationConfiguration", &CONFIGURATION_LIST),
    opt("monitoringConfiguration", &MONITORING),
]);

pub static SPARK_SUBMIT_DRIVER: Shape = Shape::Structure(&[
    req("entryPoint", &ENTRY_POINT),
    opt("entryPointArguments", &ENTRY_POINT_ARGS),
    opt("sparkSubmitParameters", &SPARK_PARAMETERS),
]);
pub static SPARK_SQL_DRIVER: Shape = Shape::Structure(&[
    opt("entryPoint", &ENTRY_POINT),
    opt("sparkSqlParameters", &SPARK_PARAMETERS),
]);
pub static JOB_DRIVER: Shape = Shape::Structure(&[
    opt("sparkSubmitJobDriver", &SPARK_SUBMIT_DRIVER),
    opt("sparkSqlJobDriver", &SPARK_SQL_DRIVER),
]);
pub static RETRY_POLICY: Shape = Shape::Structure(&[req("maxAttempts", &JAVA_INTEGER)]);

// Parametric (job template) variants: string fields may hold `${Param}`.
pub static P_CLOUDWATCH: Shape = Shape::Structure(&[
    opt("logGroupName", &TEMPLATE_PARAMETER),
    opt("logStreamNamePrefix", &STRING256),
]);
pub static P_S3_MONITORING: Shape = Shape::Structure(&[opt("logUri", &URI)]);
pub static P_MONITORING: Shape = Shape::Structure(&[
    opt("persistentAppUI", &TEMPLATE_PARAMETER),
    opt("cloudWatchMonitoringConfiguration", &P_CLOUDWATCH),
    opt("s3MonitoringConfiguration", &P_S3_MONITORING),
]);
pub static P_CONFIGURATION_OVERRIDES: Shape = Shape::Structure(&[
    opt("applicationConfiguration", &CONFIGURATION_LIST),
    opt("monitoringConfiguration", &P_MONITORING),
]);
pub static TEMPLATE_PARAM_CONFIG: Shape = Shape::Structure(&[
    opt("type", &TEMPLATE_PARAM_TYPE),
    opt("defaultValue", &STRING1024),
]);
pub static TEMPLATE_PARAM_CONFIG_MAP: Shape = Shape::Map {
    key: &TEMPLATE_PARAM_NAME,
    value: &TEMPLATE_PARAM_CONFIG,
    max: Some(100),
};
pub static JOB_TEMPLATE_DATA: Shape = Shape::Structure(&[
    req("executionRoleArn", &PARAMETRIC_ROLE_ARN),
    req("releaseLabel", &PARAMETRIC_RELEASE_LABEL),
    opt("configurationOverrides", &P_CONFIGURATION_OVERRIDES),
    req("jobDriver", &JOB_DRIVER),
    opt("parameterConfiguration", &TEMPLATE_PARAM_CONFIG_MAP),
    opt("jobTags", &TAG_MAP),
]);

// Security configurations.
pub static SECURE_NAMESPACE_INFO: Shape =
    Shape::Structure(&[opt("clusterId", &CLUSTER_ID), opt("namespace", &NAMESPACE)]);
pub static LAKE_FORMATION: Shape = Shape::Structure(&[
    opt("authorizedSessionTagValue", &SESSION_TAG_VALUE),
    opt("secureNamespaceInfo", &SECURE_NAMESPACE_INFO),
    opt("queryEngineRoleArn", &IAM_ROLE_ARN),
]);
pub static TLS_CERTIFICATE: Shape = Shape::Structure(&[
    opt("certificateProviderType", &CERT_PROVIDER_TYPE),
    opt("publicCertificateSecretArn", &SECRETS_ARN),
    opt("privateCertificateSecretArn", &SECRETS_ARN),
]);
pub static IN_TRANSIT: Shape =
    Shape::Structure(&[opt("tlsCertificateConfiguration", &TLS_CERTIFICATE)]);
pub static ENCRYPTION: Shape =
    Shape::Structure(&[opt("inTransitEncryptionConfiguration", &IN_TRANSIT)]);
pub static AUTHORIZATION: Shape = Shape::Structure(&[
    opt("lakeFormationConfiguration", &LAKE_FORMATION),
    opt("encryptionConfiguration", &ENCRYPTION),
]);
pub static IDENTITY_CENTER: Shape = Shape::Structure(&[
    opt("enableIdentityCenter", &BOOLEAN),
    opt("identityCenterApplicationAssignmentRequired", &BOOLEAN),
    opt("identityCenterInstanceARN", &IDC_INSTANCE_ARN),
    opt("emrIdentityCenterApplicationARN", &IDC_APP_ARN),
]);
pub static IAM_CONFIGURATION: Shape = Shape::Structure(&[opt("systemRole", &IAM_ROLE_ARN)]);
pub static AUTHENTICATION: Shape = Shape::Structure(&[
    opt("identityCenterConfiguration", &IDENTITY_CENTER),
    opt("iamConfiguration", &IAM_CONFIGURATION),
]);
pub static SECURITY_CONFIGURATION_DATA: Shape = Shape::Structure(&[
    opt("authorizationConfiguration", &AUTHORIZATION),
    opt("authenticationConfiguration", &AUTHENTICATION),
]);

// ---- request bodies (URI-bound members are validated separately) -------------------------
pub static CREATE_VIRTUAL_CLUSTER: Shape = Shape::Structure(&[
    req("name", &RESOURCE_NAME),
    req("containerProvider", &CONTAINER_PROVIDER),
    req("clientToken", &CLIENT_TOKEN),
    opt("tags", &TAG_MAP),
    opt("securityConfigurationId", &RESOURCE_ID),
    opt("sessionEnabled", &BOOLEAN),
    opt("schedulerConfiguration", &SCHEDULER_CONFIGURATION),
]);
pub static UPDATE_VIRTUAL_CLUSTER: Shape = Shape::Structure(&[
    opt("schedulerConfiguration", &SCHEDULER_CONFIGURATION),
    req("clientToken", &CLIENT_TOKEN),
]);
pub static START_JOB_RUN: Shape = Shape::Structure(&[
    opt("name", &RESOURCE_NAME),
    req("clientToken", &CLIENT_TOKEN),
    opt("executionRoleArn", &IAM_ROLE_ARN),
    opt("releaseLabel", &RELEASE_LABEL),
    opt("jobDriver", &JOB_DRIVER),
    opt("configurationOverrides", &CONFIGURATION_OVERRIDES),
    opt("tags", &TAG_MAP),
    opt("jobTemplateId", &RESOURCE_ID),
    opt("jobTemplateParameters", &TEMPLATE_PARAM_INPUTS),
    opt("retryPolicyConfiguration", &RETRY_POLICY),
]);
pub static CREATE_JOB_TEMPLATE: Shape = Shape::Structure(&[
    req("name", &RESOURCE_NAME),
    req("clientToken", &CLIENT_TOKEN),
    req("jobTemplateData", &JOB_TEMPLATE_DATA),
    opt("tags", &TAG_MAP),
    opt("kmsKeyArn", &KMS_KEY_ARN),
]);
pub static CREATE_MANAGED_ENDPOINT: Shape = Shape::Structure(&[
    req("name", &RESOURCE_NAME),
    req("type", &ENDPOINT_TYPE),
    req("releaseLabel", &RELEASE_LABEL),
    req("executionRoleArn", &IAM_ROLE_ARN),
    opt("certificateArn", &ACM_ARN),
    opt("configurationOverrides", &CONFIGURATION_OVERRIDES),
    req("clientToken", &CLIENT_TOKEN),
    opt("tags", &TAG_MAP),
    opt("sessionIdleTimeoutInMinutes", &JAVA_INTEGER),
]);
pub static GET_SESSION_CREDENTIALS: Shape = Shape::Structure(&[
    req("executionRoleArn", &IAM_ROLE_ARN),
    req("credentialType", &CREDENTIAL_TYPE),
    opt("durationInSeconds", &JAVA_INTEGER),
    opt("logContext", &LOG_CONTEXT),
    opt("clientToken", &CLIENT_TOKEN),
]);
pub static CREATE_SECURITY_CONFIGURATION: Shape = Shape::Structure(&[
    req("clientToken", &CLIENT_TOKEN),
    req("name", &RESOURCE_NAME),
    opt("containerProvider", &CONTAINER_PROVIDER),
    req("securityConfigurationData", &SECURITY_CONFIGURATION_DATA),
    opt("tags", &TAG_MAP),
]);
pub static TAG_RESOURCE: Shape = Shape::Structure(&[req("tags", &TAG_MAP)]);

// ---- query strings (converted to JSON by `routes::query_document`) ------------------------
pub static LIST_VIRTUAL_CLUSTERS: Shape = Shape::Structure(&[
    opt("containerProviderId", &STRING1024),
    opt("containerProviderType", &CONTAINER_PROVIDER_TYPE),
    opt("createdAfter", &TIMESTAMP),
    opt("createdBefore", &TIMESTAMP),
    opt("states", &VC_STATES),
    opt("maxResults", &JAVA_INTEGER),
    opt("nextToken", &NEXT_TOKEN),
    opt("eksAccessEntryIntegrated", &BOOLEAN),
]);
pub static LIST_JOB_RUNS: Shape = Shape::Structure(&[
    opt("createdBefore", &TIMESTAMP),
    opt("createdAfter", &TIMESTAMP),
    opt("name", &RESOURCE_NAME),
    opt("states", &JOB_RUN_STATES),
    opt("maxResults", &JAVA_INTEGER),
    opt("nextToken", &NEXT_TOKEN),
]);
pub static LIST_MANAGED_ENDPOINTS: Shape = Shape::Structure(&[
    opt("createdBefore", &TIMESTAMP),
    opt("createdAfter", &TIMESTAMP),
    opt("types", &ENDPOINT_TYPES),
    opt("states", &ENDPOINT_STATES),
    opt("maxResults", &JAVA_INTEGER),
    opt("nextToken", &NEXT_TOKEN),
]);
/// ListJobTemplates and ListSecurityConfigurations.
pub static LIST_CREATED: Shape = Shape::Structure(&[
    opt("createdAfter", &TIMESTAMP),
    opt("createdBefore", &TIMESTAMP),
    opt("maxResults", &JAVA_INTEGER),
    opt("nextToken", &NEXT_TOKEN),
]);
pub static UNTAG_RESOURCE: Shape = Shape::Structure(&[req("tagKeys", &TAG_KEY_LIST)]);

/// The members of a structure shape (empty for other shapes).
pub fn members(shape: &Shape) -> &'static [Member] {
    match shape {
        Shape::Structure(m) => m,
        _ => &[],
    }
}
