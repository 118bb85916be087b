//! A Spark configuration, read as Spark reads the keys the driver's objects depend on.

use std::collections::BTreeMap;

/// A value Spark would refuse, with the message Spark's `spark-submit` prints for it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfError {
    /// `JavaUtils.byteStringAs`'s `NumberFormatException`.
    #[error("Size must be specified as bytes (b), kibibytes (k), mebibytes (m), gibibytes (g), tebibytes (t), or pebibytes(p). E.g. 50b, 100k, or 250m.\nFailed to parse byte string: {0}")]
    Size(String),
    /// `ConfigBuilder`'s conversion error for numbers.
    #[error("{key} should be {kind}, but was {value}")]
    Number {
        key: String,
        kind: &'static str,
        value: String,
    },
    /// A required setting is missing (`SparkException` text).
    #[error("{0}")]
    Missing(String),
    /// `SparkConf.getInt`'s `NumberFormatException` (keys read without a typed entry).
    #[error("Illegal value for config key {key}: For input string: \"{value}\"")]
    IllegalValue { key: String, value: String },
    /// A `require(...)` of Spark's that failed (`IllegalArgumentException`).
    #[error("requirement failed: {0}")]
    Requirement(String),
}

impl ConfError {
    /// The Java exception Spark throws for it.
    pub fn java_class(&self) -> &'static str {
        match self {
            ConfError::Size(_) | ConfError::IllegalValue { .. } => {
                "java.lang.NumberFormatException"
            }
            ConfError::Number { .. } | ConfError::Requirement(_) => {
                "java.lang.IllegalArgumentException"
            }
            ConfError::Missing(_) => "org.apache.spark.SparkException",
        }
    }

    /// The line JVM spark-submit's uncaught exception starts with.
    pub fn exception_line(&self) -> String {
        let message = self.to_string();
        let first = message.lines().next().unwrap_or_default();
        format!(
            "Exception in thread \"main\" {}: {first}",
            self.java_class()
        )
    }
}

/// Keys and values, the later setting of a key winning (spark-defaults, then `--conf`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SparkConf {
    entries: BTreeMap<String, String>,
}

impl SparkConf {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn set(&mut self, key: impl Into<String>, value: impl Into<String>) {
        self.entries.insert(key.into(), value.into());
    }

    pub fn remove(&mut self, key: &str) {
        self.entries.remove(key);
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.entries.get(key).map(String::as_str)
    }

    pub fn contains(&self, key: &str) -> bool {
        self.entries.contains_key(key)
    }

    pub fn entries(&self) -> &BTreeMap<String, String> {
        &self.entries
    }

    /// Every `<prefix><name>` as `name → value` (labels, annotations, node selectors, env).
    pub fn with_prefix(&self, prefix: &str) -> BTreeMap<String, String> {
        self.entries
            .range(prefix.to_string()..)
            .take_while(|(k, _)| k.starts_with(prefix))
            .map(|(k, v)| (k[prefix.len()..].to_string(), v.clone()))
            .collect()
    }

    /// A size in MiB (`spark.driver.memory` and kin): a number is MiB already.
    pub fn mib(&self, key: &str, default_mib: u64) -> Result<u64, ConfError> {
        match self.get(key) {
            Some(value) => parse_mib(value),
            None => Ok(default_mib),
        }
    }

    /// `SparkConf.getInt(key, default)`: the raw value, untrimmed, as Java's `toInt`.
    pub fn get_int(&self, key: &str, default: i64) -> Result<i64, ConfError> {
        match self.get(key) {
            Some(value) => {
                value
                    .parse::<i32>()
                    .map(i64::from)
                    .map_err(|_| ConfError::IllegalValue {
                        key: key.into(),
                        value: value.into(),
                    })
            }
            None => Ok(default),
        }
    }

    /// A typed `int` config entry (`conf.get(ENTRY)`), trimmed.
    pub fn int(&self, key: &str, default: i64) -> Result<i64, ConfError> {
        match self.get(key) {
            Some(value) => value.trim().parse().map_err(|_| ConfError::Number {
                key: key.into(),
                kind: "int",
                value: value.into(),
            }),
            None => Ok(default),
        }
    }

    pub fn double(&self, key: &str) -> Result<Option<f64>, ConfError> {
        self.get(key)
            .map(|value| {
                value.trim().parse().map_err(|_| ConfError::Number {
                    key: key.into(),
                    kind: "double",
                    value: value.into(),
                })
            })
            .transpose()
    }

    pub fn bool(&self, key: &str, default: bool) -> Result<bool, ConfError> {
        match self.get(key).map(|v| v.trim().to_ascii_lowercase()) {
            None => Ok(default),
            Some(v) if v == "true" => Ok(true),
            Some(v) if v == "false" => Ok(false),
            Some(v) => Err(ConfError::Number {
                key: key.into(),
                kind: "boolean",
                value: v,
            }),
        }
    }
}

/// `JavaUtils.byteStringAs(value, MiB)`: an integer with an optional unit (`b`, `k`/`kb`,
/// `m`/`mb`, `g`/`gb`, `t`/`tb`, `p`/`pb`, any case); a bare number is MiB. Smaller units
/// round down, as Spark's `TimeUnit`-style conversion does.
pub fn parse_mib(value: &str) -> Result<u64, ConfError> {
    let lower = value.trim().to_ascii_lowercase();
    let split = lower
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(lower.len());
    let (digits, unit) = lower.split_at(split);
    let number: u64 = digits
        .parse()
        .map_err(|_| ConfError::Size(value.to_string()))?;
    let kib: u128 = match unit {
        "b" => return Ok(number / (1024 * 1024)),
        "" | "m" | "mb" => return Ok(number),
        "k" | "kb" => return Ok(number / 1024),
        "g" | "gb" => 1024 * 1024,
        "t" | "tb" => 1024 * 1024 * 1024,
        "p" | "pb" => 1024 * 1024 * 1024 * 1024,
        _ => return Err(ConfError::Size(value.to_string())),
    };
    Ok((number as u128 * kib / 1024) as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_as_spark_reads_them() {
        assert_eq!(parse_mib("512m").unwrap(), 512);
        assert_eq!(parse_mib("1g").unwrap(), 1024);
        assert_eq!(parse_mib("2G").unwrap(), 2048);
        assert_eq!(parse_mib("1024").unwrap(), 1024);
        assert_eq!(parse_mib("2048k").unwrap(), 2);
        assert_eq!(parse_mib("1t").unwrap(), 1024 * 1024);
        let err = parse_mib("12x").unwrap_err().to_string();
        assert!(err.ends_with("Failed to parse byte string: 12x"), "{err}");
        assert!(parse_mib("g").is_err());
    }

    #[test]
    fn prefixes_and_numbers() {
        let mut conf = SparkConf::new();
        conf.set("spark.kubernetes.driver.label.team", "data");
        conf.set("spark.kubernetes.driver.label.tier", "gold");
        conf.set("spark.kubernetes.driver.labelx", "no");
        conf.set("spark.driver.cores", "two");
        let labels = conf.with_prefix("spark.kubernetes.driver.label.");
        assert_eq!(labels.len(), 2);
        assert_eq!(labels["team"], "data");
        assert_eq!(
            conf.int("spark.driver.cores", 1).unwrap_err().to_string(),
            "spark.driver.cores should be int, but was two"
        );
        assert_eq!(conf.int("spark.driver.port", 7078).unwrap(), 7078);
    }
}
