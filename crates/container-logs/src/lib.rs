//! Where container logs live: the contract between the kubelet (writes), the API server's
//! `pods/<name>/log` (reads) and the log shipper (reads), as the CRI log format and
//! `/var/log/pods` are in Kubernetes.
//!
//! **Owns:** the file layout below and the CRI record format ([`cri`]): writing records,
//! reading them back per stream, following a growing file.
//!
//! **Must not touch:** the Kubernetes API or any process; it is files and bytes only.
//!
//! **Entry points:** [`pod_log_path`], [`read_output`], [`cri::Writer`], [`cri::capture`] and
//! [`cri::render_all`].
//!
//! Layout, like the kubelet's `/var/log/pods`:
//! `<cluster data_dir>/pods/<namespace>_<pod name>_<pod uid>/logs/<container>/<restartCount>.log`
//!
//! Each file is in the CRI log format ([`cri`]): one record per line of output, with its
//! time and stream, so stdout and stderr can be read apart. Restart N of a container writes
//! `N.log`, so `previous=true` reads `<restartCount - 1>.log`.

pub mod cri;

use std::path::{Path, PathBuf};

/// The directory of one pod's sandbox: `<data_dir>/pods/<namespace>_<name>_<uid>`.
pub fn pod_dir(cluster_data_dir: &Path, namespace: &str, pod_name: &str, pod_uid: &str) -> PathBuf {
    cluster_data_dir
        .join("pods")
        .join(format!("{namespace}_{pod_name}_{pod_uid}"))
}

/// The log file of one run (`restart_count`) of one container.
pub fn pod_log_path(
    cluster_data_dir: &Path,
    namespace: &str,
    pod_name: &str,
    pod_uid: &str,
    container: &str,
    restart_count: u32,
) -> PathBuf {
    pod_dir(cluster_data_dir, namespace, pod_name, pod_uid)
        .join("logs")
        .join(container)
        .join(format!("{restart_count}.log"))
}

/// What one container run wrote to `stream` (both, interleaved, for `None`), as `pods/log`
/// serves it.
pub fn read_output(path: &Path, stream: Option<cri::Stream>) -> std::io::Result<Vec<u8>> {
    let text = std::fs::read(path)?;
    Ok(cri::render_all(
        &text,
        &mut cri::Render::new(stream, false, None),
    ))
}

/// The last `n` lines of `text` (a trailing partial line counts as a line).
pub fn tail_lines(text: &[u8], n: usize) -> &[u8] {
    if n == 0 {
        return &text[text.len()..];
    }
    let body = text.strip_suffix(b"\n").unwrap_or(text);
    let mut seen = 0;
    for (i, byte) in body.iter().enumerate().rev() {
        if *byte == b'\n' {
            seen += 1;
            if seen == n {
                return &text[i + 1..];
            }
        }
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_layout() {
        let p = pod_log_path(Path::new("/d"), "ns", "p", "u-1", "c", 2);
        assert_eq!(p, PathBuf::from("/d/pods/ns_p_u-1/logs/c/2.log"));
    }

    #[test]
    fn tail() {
        assert_eq!(tail_lines(b"a\nb\nc\n", 2), b"b\nc\n");
        assert_eq!(tail_lines(b"a\nb\nc", 2), b"b\nc");
        assert_eq!(tail_lines(b"a\nb\n", 5), b"a\nb\n");
        assert_eq!(tail_lines(b"a\nb\n", 0), b"");
    }
}
