//! ListMultipartUploads: the uploads in progress in a bucket, in S3's order (by key, then by
//! initiation), with prefix, delimiter (common prefixes count as entries), a page size and
//! the `key-marker` / `upload-id-marker` pair a client resumes from. S3A's committers list
//! pending uploads to abort what failed tasks left behind (`hadoop s3guard uploads`).

use s3s::dto::*;
use s3s::{s3_error, S3Request, S3Response, S3Result};

use super::list::{self, Entry};
use super::shared::{db_error, timestamp};
use super::{store, S3Store};

/// Where a listing resumes: after `key_marker`'s uploads, or, with an `upload_id_marker`,
/// after that upload of `key_marker`.
#[derive(Debug, Clone, Default)]
pub struct Markers<'a> {
    pub key: Option<&'a str>,
    pub upload_id: Option<&'a str>,
}

/// One page of uploads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UploadPage<T> {
    pub entries: Vec<Entry<T>>,
    /// `NextKeyMarker` and `NextUploadIdMarker` when the listing was truncated (the upload
    /// id is absent when the page ended on a common prefix).
    pub next: Option<(String, Option<String>)>,
}

/// Pages `uploads` (`(key, upload id, item)` in listing order, all under `prefix`), pure.
/// S3 ignores an upload-id marker without a key marker; with both, the key marker's
/// uploads initiated after the marked one follow (if the marked upload is gone, those whose
/// id sorts after it). A key marker that is a common prefix skips everything under it.
pub fn page<T>(
    uploads: Vec<(String, String, T)>,
    prefix: &str,
    delimiter: Option<&str>,
    markers: &Markers<'_>,
    max: usize,
) -> UploadPage<T> {
    let delimiter = delimiter.filter(|d| !d.is_empty());
    let remaining: Vec<(String, (String, T))> = match markers.key {
        None => uploads.into_iter().map(|(k, id, t)| (k, (id, t))).collect(),
        Some(marker) => {
            let marker_is_prefix = delimiter.is_some_and(|d| {
                marker.len() > prefix.len()
                    && marker.starts_with(prefix)
                    && marker[prefix.len()..]
                        .find(d)
                        .map(|i| prefix.len() + i + d.len())
                        == Some(marker.len())
            });
            let found = markers
                .upload_id
                .is_some_and(|u| uploads.iter().any(|(k, id, _)| k == marker && id == u));
            let mut past_marked = false;
            uploads
                .into_iter()
                .filter(|(k, id, _)| {
                    if k.as_str() > marker {
                        return !(marker_is_prefix && k.starts_with(marker));
                    }
                    if k != marker {
                        return false;
                    }
                    match markers.upload_id {
                        None => false,
                        Some(u) if found => {
                            let keep = past_marked;
                            past_marked |= id == u;
                            keep
                        }
                        Some(u) => id.as_str() > u,
                    }
                })
                .map(|(k, id, t)| (k, (id, t)))
                .collect()
        }
    };
    let page = list::page(remaining, prefix, delimiter, None, max);
    let next = page.next.map(|cursor| {
        let id = match page.entries.last() {
            Some(Entry::Object((id, _))) if !cursor.skip_under => Some(id.clone()),
            _ => None,
        };
        (cursor.key, id)
    });
    UploadPage {
        entries: page
            .entries
            .into_iter()
            .map(|e| match e {
                Entry::Object((_, t)) => Entry::Object(t),
                Entry::CommonPrefix(p) => Entry::CommonPrefix(p),
            })
            .collect(),
        next,
    }
}

pub(super) async fn list_multipart_uploads(
    s3: &S3Store,
    req: S3Request<ListMultipartUploadsInput>,
) -> S3Result<S3Response<ListMultipartUploadsOutput>> {
    let input = req.input;
    let bucket = s3.require_bucket(&input.bucket).await?;
    let max = input.max_uploads.unwrap_or(1000);
    if max < 0 {
        return Err(s3_error!(
            InvalidArgument,
            "Argument max-uploads must be an integer between 0 and 2147483647"
        ));
    }
    let prefix = input.prefix.clone().unwrap_or_default();
    let uploads = store::scan_uploads(&s3.db, &bucket.name, &prefix)
        .await
        .map_err(db_error)?;
    let markers = Markers {
        key: input.key_marker.as_deref().filter(|k| !k.is_empty()),
        upload_id: input.upload_id_marker.as_deref().filter(|u| !u.is_empty()),
    };
    let page = page(
        uploads
            .into_iter()
            .map(|u| (u.key.clone(), u.upload_id.clone(), u))
            .collect(),
        &prefix,
        input.delimiter.as_deref(),
        &markers,
        max.min(1000) as usize,
    );
    let mut listed = Vec::new();
    let mut prefixes = Vec::new();
    for entry in page.entries {
        match entry {
            Entry::Object(u) => listed.push(MultipartUpload {
                key: Some(u.key),
                upload_id: Some(u.upload_id),
                initiated: Some(timestamp(u.initiated_ms)),
                storage_class: Some(StorageClass::from_static(StorageClass::STANDARD)),
                checksum_algorithm: u.checksum_algorithm.map(ChecksumAlgorithm::from),
                checksum_type: u.checksum_type.map(ChecksumType::from),
                ..Default::default()
            }),
            Entry::CommonPrefix(p) => prefixes.push(CommonPrefix { prefix: Some(p) }),
        }
    }
    let (next_key, next_upload_id) = page.next.clone().unzip();
    Ok(S3Response::new(ListMultipartUploadsOutput {
        bucket: Some(bucket.name),
        prefix: Some(prefix),
        delimiter: input.delimiter,
        key_marker: Some(input.key_marker.unwrap_or_default()),
        upload_id_marker: Some(input.upload_id_marker.unwrap_or_default()),
        next_key_marker: next_key,
        next_upload_id_marker: next_upload_id.flatten(),
        max_uploads: Some(max.min(1000)),
        is_truncated: Some(page.next.is_some()),
        uploads: Some(listed),
        common_prefixes: (!prefixes.is_empty()).then_some(prefixes),
        encoding_type: input.encoding_type,
        ..Default::default()
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Uploads as `(key, id, id)`, already in listing order.
    fn uploads(list: &[(&str, &str)]) -> Vec<(String, String, String)> {
        list.iter()
            .map(|(k, id)| (k.to_string(), id.to_string(), id.to_string()))
            .collect()
    }

    fn ids(p: &UploadPage<String>) -> Vec<String> {
        p.entries
            .iter()
            .map(|e| match e {
                Entry::Object(id) => id.clone(),
                Entry::CommonPrefix(p) => format!("cp:{p}"),
            })
            .collect()
    }

    const ALL: &[(&str, &str)] = &[
        ("a", "u3"),
        ("a", "u1"),
        ("a", "u2"),
        ("d/x", "u4"),
        ("d/y", "u5"),
        ("z", "u6"),
    ];

    #[test]
    fn pages_resume_after_the_marked_upload_of_a_key() {
        let mut seen = Vec::new();
        let mut markers: (Option<String>, Option<String>) = (None, None);
        loop {
            let m = Markers {
                key: markers.0.as_deref(),
                upload_id: markers.1.as_deref(),
            };
            let p = page(uploads(ALL), "", None, &m, 2);
            seen.extend(ids(&p));
            match p.next {
                Some((k, u)) => markers = (Some(k), u),
                None => break,
            }
        }
        // Initiation order within a key (u3 before u1), not id order.
        assert_eq!(seen, ["u3", "u1", "u2", "u4", "u5", "u6"]);
    }

    #[test]
    fn key_marker_alone_skips_the_key() {
        let m = Markers {
            key: Some("a"),
            upload_id: None,
        };
        assert_eq!(
            ids(&page(uploads(ALL), "", None, &m, 10)),
            ["u4", "u5", "u6"]
        );
        // A marked upload that is gone: ids after it.
        let m = Markers {
            key: Some("a"),
            upload_id: Some("u1x"),
        };
        assert_eq!(
            ids(&page(uploads(ALL), "", None, &m, 10)),
            ["u3", "u2", "u4", "u5", "u6"]
        );
        // An upload-id marker without a key marker is ignored.
        let m = Markers {
            key: None,
            upload_id: Some("u2"),
        };
        assert_eq!(ids(&page(uploads(ALL), "", None, &m, 10)).len(), 6);
    }

    #[test]
    fn delimiter_groups_and_resumes_past_common_prefixes() {
        let p = page(uploads(ALL), "", Some("/"), &Markers::default(), 4);
        assert_eq!(ids(&p), ["u3", "u1", "u2", "cp:d/"]);
        assert_eq!(p.next, Some(("d/".to_string(), None)));
        let m = Markers {
            key: Some("d/"),
            upload_id: None,
        };
        let p = page(uploads(ALL), "", Some("/"), &m, 4);
        assert_eq!(ids(&p), ["u6"]);
        assert_eq!(p.next, None);
        // Under a prefix, no grouping of what has no delimiter after it.
        let under: Vec<_> = uploads(ALL)
            .into_iter()
            .filter(|(k, _, _)| k.starts_with("d/"))
            .collect();
        assert_eq!(
            ids(&page(under, "d/", Some("/"), &Markers::default(), 10)),
            ["u4", "u5"]
        );
    }

    #[test]
    fn truncation_names_the_last_upload() {
        let p = page(uploads(ALL), "", None, &Markers::default(), 2);
        assert_eq!(p.next, Some(("a".to_string(), Some("u1".to_string()))));
        let p = page(uploads(ALL), "", None, &Markers::default(), 6);
        assert_eq!(p.next, None);
    }
}
