//! Spark's Kubernetes submission client, in Rust: from a run's Spark configuration and main
//! resource, the objects `spark-submit --deploy-mode cluster` creates — the driver Pod, its
//! headless Service, the driver's `spark.properties` ConfigMap and, with an executor pod
//! template, the template's ConfigMap — as Spark 4.0.1 builds them (`KubernetesDriverBuilder`
//! and its feature steps, `Client`), names, labels and conf keys included.
//!
//! Owns: `spark-submit`'s command line ([`args`]), the Spark conf semantics the driver objects depend on ([`conf`]), Spark's resource
//! names ([`names`]), Java properties files ([`properties`]), the watcher's log lines ([`report`]), and the driver's objects
//! ([`driver`]), plus the *proven set* ([`driver::unsupported`]): confs whose objects have been
//! checked equal to JVM spark-submit's; anything else is for the JVM path.
//!
//! Must not touch: I/O, the Kubernetes API, clocks or randomness (the caller passes the
//! random bytes, the time and the application id in), so the same input always gives the same
//! objects.

pub mod args;
pub mod conf;
pub mod driver;
pub mod names;
pub mod properties;
pub mod report;

pub use conf::{ConfError, SparkConf};
pub use driver::{build, DriverObjects, MainResource, Submission};
