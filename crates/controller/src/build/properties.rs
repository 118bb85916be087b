//! Java `.properties` text, as `spark-defaults.conf` and `log4j2.properties` are read.

use std::collections::BTreeMap;

/// One `key=value` line per entry, escaped so `java.util.Properties.load` reads back exactly
/// the given strings (Spark loads `spark-defaults.conf` with it).
pub fn render(properties: &BTreeMap<String, String>) -> String {
    let mut out = String::new();
    for (key, value) in properties {
        out.push_str(&escape(key, true));
        out.push('=');
        out.push_str(&escape(value, false));
        out.push('\n');
    }
    out
}

fn escape(text: &str, is_key: bool) -> String {
    let mut out = String::with_capacity(text.len());
    for (i, c) in text.chars().enumerate() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '=' | ':' | '#' | '!' if is_key => {
                out.push('\\');
                out.push(c);
            }
            // Leading whitespace of a value would be skipped by the reader; keys escape all.
            ' ' if is_key || i == 0 => out.push_str("\\ "),
            _ => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_sorted_escaped_lines() {
        let props: BTreeMap<String, String> = [
            ("spark.executor.memory".to_string(), "2G".to_string()),
            (
                "spark.driver.extraJavaOptions".to_string(),
                " -Da=b -Dc=d".to_string(),
            ),
            ("odd key=x".to_string(), "C:\\tmp".to_string()),
        ]
        .into_iter()
        .collect();
        assert_eq!(
            render(&props),
            "odd\\ key\\=x=C:\\\\tmp\nspark.driver.extraJavaOptions=\\ -Da=b -Dc=d\nspark.executor.memory=2G\n"
        );
    }
}
