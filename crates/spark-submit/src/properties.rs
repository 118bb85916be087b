//! Java `.properties` text as `java.util.Properties.store` writes it: the driver's
//! `spark.properties` in its ConfigMap.

use std::collections::BTreeMap;

/// `#<comment>`, `#<date>`, then `key=value` lines with the escapes of
/// `Properties.store(Writer, …)` (`\`, `:`, `=`, `#`, `!`, a leading space, `\t` `\n` `\r`
/// `\f`; other characters as they are). Keys are sorted here; Java writes them in hash order,
/// which carries no meaning — compare parsed entries, not text.
pub fn store(comment: &str, date: &str, entries: &BTreeMap<String, String>) -> String {
    let mut out = format!("#{comment}\n#{date}\n");
    for (key, value) in entries {
        out.push_str(&escape(key, true));
        out.push('=');
        out.push_str(&escape(value, false));
        out.push('\n');
    }
    out
}

fn escape(text: &str, is_key: bool) -> String {
    let mut out = String::with_capacity(text.len());
    for (i, ch) in text.chars().enumerate() {
        match ch {
            ' ' if i == 0 || is_key => out.push_str("\\ "),
            '\\' => out.push_str("\\\\"),
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\x0c' => out.push_str("\\f"),
            '=' | ':' | '#' | '!' => {
                out.push('\\');
                out.push(ch);
            }
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_as_java_does() {
        let entries = BTreeMap::from([
            (
                "spark.master".to_string(),
                "k8s://http://127.0.0.1:18084".to_string(),
            ),
            ("spark.app.name".to_string(), " a=b #c".to_string()),
        ]);
        let text = store("comment", "Mon Nov 23 19:29:23 UTC 2026", &entries);
        assert_eq!(
            text,
            "#comment\n#Mon Nov 23 19:29:23 UTC 2026\nspark.app.name=\\ a\\=b \\#c\nspark.master=k8s\\://http\\://127.0.0.1\\:18084\n"
        );
    }
}
