//! An object's structured and YAML views: a JSON value flattened into indented rows
//! (templates cannot recurse, and rows need no script to read), and a small YAML emitter
//! (block style, strings quoted whenever YAML could read them as something else).

use serde_json::Value;

/// Deepest indentation the stylesheet has a class for (`depth-0` … `depth-8`).
const MAX_DEPTH: usize = 8;

/// One line of the structured view: a key at a depth, and its value when it is a scalar.
pub(crate) struct TreeRow {
    pub depth: usize,
    pub key: String,
    /// Empty for maps and lists (their members follow, one level deeper).
    pub value: String,
}

/// `value`'s members as rows, maps' keys by name and lists' items as `[i]`.
pub(crate) fn rows(value: &Value) -> Vec<TreeRow> {
    let mut out = Vec::new();
    walk(value, 0, &mut out);
    out
}

fn walk(value: &Value, depth: usize, out: &mut Vec<TreeRow>) {
    let mut push = |key: String, member: &Value| {
        out.push(TreeRow {
            depth: depth.min(MAX_DEPTH),
            key,
            value: scalar(member),
        });
        walk(member, depth + 1, out);
    };
    match value {
        Value::Object(map) => map.iter().for_each(|(k, v)| push(k.clone(), v)),
        Value::Array(items) => items
            .iter()
            .enumerate()
            .for_each(|(i, v)| push(format!("[{i}]"), v)),
        _ => {}
    }
}

/// A scalar as shown; maps and lists show as empty (or `{}`/`[]` when they are).
fn scalar(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Null => "null".into(),
        Value::Object(m) if m.is_empty() => "{}".into(),
        Value::Array(a) if a.is_empty() => "[]".into(),
        Value::Object(_) | Value::Array(_) => String::new(),
        other => other.to_string(),
    }
}

/// `value` as block YAML, as `kubectl get -o yaml` shows it (serde_yaml's emitter: the
/// object's own key order, strings YAML would read as something else quoted).
pub(crate) fn yaml(value: &Value) -> String {
    serde_yaml::to_string(value).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn rows_flatten_maps_and_lists_with_depths() {
        let v = json!({"spec": {"replicas": 2, "taints": [{"key": "a"}], "labels": {}}});
        let rows = rows(&v);
        let shown: Vec<(usize, &str, &str)> = rows
            .iter()
            .map(|r| (r.depth, r.key.as_str(), r.value.as_str()))
            .collect();
        assert_eq!(
            shown,
            vec![
                (0, "spec", ""),
                (1, "replicas", "2"),
                (1, "taints", ""),
                (2, "[0]", ""),
                (3, "key", "a"),
                (1, "labels", "{}"),
            ]
        );
    }

    #[test]
    fn yaml_round_trips_to_the_same_object() {
        let v = json!({
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": "p", "labels": {"app": "true", "n": "5"}},
            "spec": {"containers": [{"name": "c", "args": ["--x", "a b"]}], "empty": []},
        });
        let text = yaml(&v);
        assert!(text.starts_with("apiVersion: v1\nkind: Pod\n"), "{text}");
        let back: Value = serde_yaml::from_str(&text).unwrap();
        assert_eq!(back, v);
    }
}
