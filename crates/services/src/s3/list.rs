//! S3 listing semantics (pure): prefix, delimiter → common prefixes, a start position and a
//! page size, over keys in UTF-8 byte order (S3's order, and SQLite's for TEXT).

/// One entry of a listing page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Entry<T> {
    Object(T),
    CommonPrefix(String),
}

/// A position in a listing: after `key`, and after everything under it when `key` was a
/// common prefix (so a folder-marker object `dir/` does not hide `dir/x`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cursor {
    pub key: String,
    pub skip_under: bool,
}

impl Cursor {
    pub fn after_key(key: &str) -> Self {
        Self {
            key: key.to_string(),
            skip_under: false,
        }
    }

    /// The opaque continuation token S3 clients echo back.
    pub fn encode(&self) -> String {
        let tag = if self.skip_under { 'p' } else { 'k' };
        hex::encode(format!("{tag}{}", self.key))
    }

    pub fn decode(token: &str) -> Option<Self> {
        let raw = String::from_utf8(hex::decode(token).ok()?).ok()?;
        let mut chars = raw.chars();
        let skip_under = match chars.next()? {
            'p' => true,
            'k' => false,
            _ => return None,
        };
        Some(Self {
            key: chars.as_str().to_string(),
            skip_under,
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page<T> {
    pub entries: Vec<Entry<T>>,
    /// Where the next page starts, when the listing was truncated.
    pub next: Option<Cursor>,
}

/// Lists `items` (sorted by key, all starting with `prefix`) after `after` (exclusive; a
/// common prefix as `after` skips everything under it), grouping by `delimiter`, at most
/// `max` entries. A common prefix counts as one entry, as in S3.
pub fn page<T>(
    items: impl IntoIterator<Item = (String, T)>,
    prefix: &str,
    delimiter: Option<&str>,
    after: Option<&Cursor>,
    max: usize,
) -> Page<T> {
    let mut entries = Vec::new();
    let mut last: Option<Cursor> = None;
    let delimiter = delimiter.filter(|d| !d.is_empty());
    for (key, item) in items {
        if !key.starts_with(prefix) {
            continue;
        }
        if let Some(after) = after {
            if key <= after.key || (after.skip_under && key.starts_with(&after.key)) {
                continue;
            }
        }
        let entry_key = match delimiter.and_then(|d| {
            key[prefix.len()..]
                .find(d)
                .map(|i| prefix.len() + i + d.len())
        }) {
            Some(end) => {
                let cp = key[..end].to_string();
                if last.as_ref().is_some_and(|l| l.skip_under && l.key == cp) {
                    continue;
                }
                Entry::CommonPrefix(cp)
            }
            None => Entry::Object((key, item)),
        };
        if entries.len() == max {
            return Page {
                entries: entries.into_iter().map(strip).collect(),
                next: last,
            };
        }
        last = Some(match &entry_key {
            Entry::CommonPrefix(cp) => Cursor {
                key: cp.clone(),
                skip_under: true,
            },
            Entry::Object((k, _)) => Cursor::after_key(k),
        });
        entries.push(entry_key);
    }
    Page {
        entries: entries.into_iter().map(strip).collect(),
        next: None,
    }
}

fn strip<T>(e: Entry<(String, T)>) -> Entry<T> {
    match e {
        Entry::Object((_, t)) => Entry::Object(t),
        Entry::CommonPrefix(p) => Entry::CommonPrefix(p),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(list: &[&str]) -> Vec<(String, String)> {
        list.iter()
            .map(|k| (k.to_string(), k.to_string()))
            .collect()
    }

    fn show(p: &Page<String>) -> Vec<String> {
        p.entries
            .iter()
            .map(|e| match e {
                Entry::Object(k) => k.clone(),
                Entry::CommonPrefix(p) => format!("[{p}]"),
            })
            .collect()
    }

    const KEYS: &[&str] = &["a.txt", "logs/1/x", "logs/1/y", "logs/2/z", "logs/top", "z"];

    #[test]
    fn flat_listing_and_paging() {
        let p = page(keys(KEYS), "", None, None, 4);
        assert_eq!(show(&p), ["a.txt", "logs/1/x", "logs/1/y", "logs/2/z"]);
        assert_eq!(p.next, Some(Cursor::after_key("logs/2/z")));
        let p2 = page(keys(KEYS), "", None, p.next.as_ref(), 4);
        assert_eq!(show(&p2), ["logs/top", "z"]);
        assert_eq!(p2.next, None);
    }

    #[test]
    fn delimiter_groups_and_pages_past_prefixes() {
        let p = page(keys(KEYS), "", Some("/"), None, 1000);
        assert_eq!(show(&p), ["a.txt", "[logs/]", "z"]);
        let p = page(keys(KEYS), "logs/", Some("/"), None, 1);
        assert_eq!(show(&p), ["[logs/1/]"]);
        let p2 = page(keys(KEYS), "logs/", Some("/"), p.next.as_ref(), 1);
        assert_eq!(show(&p2), ["[logs/2/]"]);
        let p3 = page(keys(KEYS), "logs/", Some("/"), p2.next.as_ref(), 1);
        assert_eq!(show(&p3), ["logs/top"]);
        assert_eq!(p3.next, None);
    }

    #[test]
    fn folder_markers_do_not_hide_their_contents() {
        let ks = keys(&["dir/", "dir/x"]);
        let p = page(ks.clone(), "dir/", Some("/"), None, 1);
        assert_eq!(show(&p), ["dir/"]);
        let token = p.next.unwrap().encode();
        let p2 = page(ks, "dir/", Some("/"), Cursor::decode(&token).as_ref(), 1);
        assert_eq!(show(&p2), ["dir/x"]);
    }

    #[test]
    fn exact_page_boundary_is_not_truncated() {
        let p = page(keys(&["a", "b"]), "", None, None, 2);
        assert_eq!(show(&p), ["a", "b"]);
        assert_eq!(p.next, None);
    }
}
