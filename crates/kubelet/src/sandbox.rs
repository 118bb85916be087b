//! The bubblewrap command line for one container, as a pure function of the mounts it needs
//! and a read-only view of the host file system.
//!
//! Why not `--ro-bind / /`: every path of the sandbox would then be read-only, and a mount
//! point that does not exist on the host (`/opt/spark`, `/usr/lib/spark`,
//! `/var/data/spark-…`) could not be created. bwrap 0.8 (Debian 12) has no overlays either.
//! So the root stays bwrap's own tmpfs and the host's top-level entries are bound into it one
//! by one. When a mount point is missing below a read-only bound directory `A`, `A` is
//! *spliced*: a tmpfs goes on `A` and each entry of the host's `A` comes back as a symlink
//! into [`HOST_VIEW`] (the host's root, bound read-only once, with the masked paths hidden
//! there too), after which bwrap can create the mount point in that tmpfs. Mounts already
//! made below `A` are made again after the splice so that none is hidden; the entries they
//! sit in stay bind mounts. The result is what a container runtime gives: the image's paths
//! where the image says, the pod's volumes on top, and the rest of the host read-only.
//!
//! Why symlinks and not a bind per entry: every mount makes bwrap re-read the whole
//! `/proc/self/mountinfo`, under the kernel's global mount lock. A Spark pod splices `/etc`,
//! `/usr/lib` and the image directory — about 190 entries on Debian — and its sandbox took
//! 54 ms to set up; concurrent setups serialise on that lock, capping a node at about 17
//! container starts a second. With the entries as symlinks it has about 40 mounts and
//! takes 7 ms (docs/benchmarks.md). What a process sees differs only in `lstat` and
//! `realpath` of a spliced directory's entries.

use std::path::{Component, Path, PathBuf};

/// What a host path is, as far as mounting cares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    Dir,
    File,
    Symlink(PathBuf),
}

/// Read-only questions about the host file system (a trait so that plans are unit-tested
/// against a fake tree).
pub trait HostFs {
    fn kind(&self, path: &Path) -> Option<Kind>;
    /// Entry names of a directory, sorted.
    fn entries(&self, path: &Path) -> Vec<String>;
}

/// The real file system.
pub struct RealFs;

impl HostFs for RealFs {
    fn kind(&self, path: &Path) -> Option<Kind> {
        let meta = std::fs::symlink_metadata(path).ok()?;
        if meta.file_type().is_symlink() {
            return std::fs::read_link(path).ok().map(Kind::Symlink);
        }
        Some(if meta.is_dir() { Kind::Dir } else { Kind::File })
    }

    fn entries(&self, path: &Path) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(path)
            .map(|rd| {
                rd.flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default();
        names.sort();
        names
    }
}

/// One bind mount into the sandbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mount {
    pub source: PathBuf,
    /// Absolute in-sandbox path.
    pub target: String,
    pub read_only: bool,
}

#[derive(Debug, Clone, Default)]
pub struct SandboxSpec {
    pub hostname: String,
    /// Host directory that becomes `/tmp`.
    pub tmp_dir: PathBuf,
    /// The image's and the pod's mounts, in any order (applied shallowest first).
    pub mounts: Vec<Mount>,
    /// Host paths hidden from the pod under an empty tmpfs (sparkyard's data directory with
    /// its keys and other pods' files).
    pub masked: Vec<PathBuf>,
    /// Directories that must exist (the working directory), created if missing.
    pub ensure_dirs: Vec<String>,
    pub cwd: String,
    pub command: Vec<String>,
}

/// Where the host's root is bound (read-only, once, only when a directory is spliced) for
/// the symlinks that stand for a spliced directory's entries.
pub const HOST_VIEW: &str = "/.sparkyard/host";

/// Host top-level entries not bound into the sandbox: replaced by fresh ones (`/proc`,
/// `/dev`, `/tmp`, `/run`) or of no use to a container.
const NOT_FROM_HOST: &[&str] = &[
    "proc",
    "dev",
    "tmp",
    "run",
    "lost+found",
    "boot",
    "media",
    "old_root",
];

#[derive(Debug, Clone)]
enum Layer {
    Bind {
        source: PathBuf,
        read_only: bool,
    },
    Tmpfs,
    Symlink(PathBuf),
    /// `/proc` or `/dev`: exists, nothing is created inside.
    Special,
}

struct Planner<'a> {
    fs: &'a dyn HostFs,
    /// Host paths hidden from the pod, hidden in [`HOST_VIEW`] too.
    masked: &'a [PathBuf],
    /// Whether [`HOST_VIEW`] is bound yet.
    host_view: bool,
    /// In order of application: (in-sandbox path, layer, the bwrap arguments that made it).
    layers: Vec<(PathBuf, Layer, Vec<String>)>,
}

enum Lookup {
    /// The path exists in the sandbox (a directory or a file).
    Exists,
    /// Missing, but bwrap can create it (its nearest existing ancestor is on a tmpfs).
    Creatable,
    /// Missing below this read-only bound directory, which must be spliced first.
    Blocked(PathBuf),
}

impl<'a> Planner<'a> {
    /// The deepest layer covering `path` (its target is `path` or an ancestor).
    fn covering(&self, path: &Path) -> Option<(usize, &PathBuf, &Layer)> {
        self.layers
            .iter()
            .enumerate()
            .rev()
            .filter(|(_, (target, _, _))| path.starts_with(target))
            .max_by_key(|(i, (target, _, _))| (target.components().count(), *i))
            .map(|(i, (target, layer, _))| (i, target, layer))
    }

    fn host_kind(&self, path: &Path) -> Option<Kind> {
        match self.covering(path) {
            None => (path == Path::new("/")).then_some(Kind::Dir),
            Some((_, target, Layer::Bind { source, .. })) => {
                let rel = path.strip_prefix(target).unwrap();
                let host = if rel.as_os_str().is_empty() {
                    source.clone()
                } else {
                    source.join(rel)
                };
                self.fs.kind(&host)
            }
            Some((_, target, Layer::Symlink(to))) if target == path => {
                Some(Kind::Symlink(to.clone()))
            }
            Some((_, _, Layer::Symlink(_))) => None,
            Some((_, target, Layer::Tmpfs | Layer::Special)) => {
                (target == path).then_some(Kind::Dir)
            }
        }
    }

    /// Resolves symlinks met along `path` inside the sandbox (so `/var/run/x` lands on
    /// `/run/x`), because bwrap would otherwise follow them outside the new root.
    fn canonical(&self, path: &str) -> PathBuf {
        let mut current = PathBuf::from(path);
        'restart: for _ in 0..40 {
            let mut prefix = PathBuf::from("/");
            let components: Vec<Component> = current.components().collect();
            for (i, component) in components.iter().enumerate() {
                match component {
                    Component::RootDir | Component::CurDir => continue,
                    Component::ParentDir => {
                        prefix.pop();
                        continue;
                    }
                    Component::Normal(name) => prefix.push(name),
                    Component::Prefix(_) => continue,
                }
                if let Some(Kind::Symlink(to)) = self.host_kind(&prefix) {
                    let base = if to.is_absolute() {
                        to
                    } else {
                        prefix.parent().unwrap_or(Path::new("/")).join(to)
                    };
                    let mut next = base;
                    for rest in &components[i + 1..] {
                        next.push(rest);
                    }
                    current = normalize(&next);
                    continue 'restart;
                }
            }
            return normalize(&current);
        }
        normalize(&current)
    }

    fn lookup(&self, path: &Path) -> Lookup {
        let mut probe = path.to_path_buf();
        let mut missing = false;
        loop {
            match self.covering(&probe) {
                None => {
                    return if missing {
                        Lookup::Creatable
                    } else {
                        Lookup::Exists
                    }
                }
                Some((_, target, Layer::Tmpfs)) => {
                    return if missing || probe != *target {
                        Lookup::Creatable
                    } else {
                        Lookup::Exists
                    };
                }
                Some((_, _, Layer::Special)) => {
                    return if missing {
                        Lookup::Creatable
                    } else {
                        Lookup::Exists
                    }
                }
                _ => {}
            }
            match self.host_kind(&probe) {
                Some(Kind::Dir) | Some(Kind::File) if !missing => return Lookup::Exists,
                Some(Kind::Dir) => {
                    return match self.covering(&probe) {
                        Some((
                            _,
                            _,
                            Layer::Bind {
                                read_only: false, ..
                            },
                        )) => Lookup::Creatable,
                        _ => Lookup::Blocked(probe),
                    }
                }
                _ => {
                    missing = true;
                    if !probe.pop() {
                        return Lookup::Creatable;
                    }
                }
            }
        }
    }

    fn push(&mut self, target: PathBuf, layer: Layer, args: Vec<String>) {
        self.layers.push((target, layer, args));
    }

    /// Binds each host entry of `host` at `at` (which is, or is about to be, a tmpfs).
    fn bind_entries(&mut self, host: &Path, at: &Path, read_only: bool, skip: &[&str]) {
        for name in self.fs.entries(host) {
            if !skip.contains(&name.as_str()) {
                self.bind_entry(host, at, read_only, &name);
            }
        }
    }

    /// Binds the host entry `name` of `host` at `at/name` (symlinks are copied as they are).
    fn bind_entry(&mut self, host: &Path, at: &Path, read_only: bool, name: &str) {
        let source = host.join(name);
        let target = at.join(name);
        match self.fs.kind(&source) {
            Some(Kind::Symlink(to)) => {
                let args = vec!["--symlink".into(), s(&to), s(&target)];
                self.push(target, Layer::Symlink(to), args);
            }
            Some(_) => {
                let flag = if read_only { "--ro-bind" } else { "--bind" };
                let args = vec![flag.into(), s(&source), s(&target)];
                self.push(target, Layer::Bind { source, read_only }, args);
            }
            None => {}
        }
    }

    /// Binds the host's root at [`HOST_VIEW`], read-only, with the masked paths hidden.
    fn bind_host_view(&mut self) {
        if std::mem::replace(&mut self.host_view, true) {
            return;
        }
        let view = PathBuf::from(HOST_VIEW);
        let args = vec!["--ro-bind".into(), "/".into(), s(&view)];
        let layer = Layer::Bind {
            source: "/".into(),
            read_only: true,
        };
        self.push(view.clone(), layer, args);
        for masked in self.masked {
            if self.fs.kind(masked) == Some(Kind::Dir) {
                let target = view.join(masked.strip_prefix("/").unwrap_or(masked));
                let args = vec!["--tmpfs".into(), s(&target)];
                self.push(target, Layer::Tmpfs, args);
            }
        }
    }

    /// Makes `dir` (a read-only bound directory) a tmpfs holding the same entries, so that
    /// new mount points can be created in it; re-applies the mounts already made below it.
    fn splice(&mut self, dir: &Path) {
        let Some((_, target, Layer::Bind { source, read_only })) = self.covering(dir) else {
            return;
        };
        let rel = dir.strip_prefix(target).unwrap();
        let host = if rel.as_os_str().is_empty() {
            source.clone()
        } else {
            source.join(rel)
        };
        let read_only = *read_only;
        let below: Vec<(PathBuf, Layer, Vec<String>)> = self
            .layers
            .iter()
            .filter(|(t, _, _)| t.starts_with(dir) && t != dir)
            .cloned()
            .collect();
        self.layers
            .retain(|(t, _, _)| !(t.starts_with(dir) && t != dir));
        self.push(
            dir.to_path_buf(),
            Layer::Tmpfs,
            vec!["--tmpfs".into(), s(dir)],
        );
        self.bind_host_view();
        // Entries that hold the re-applied mounts stay bind mounts (a mount through a
        // symlink would land in the host view); the others become symlinks into it.
        let held: Vec<String> = below
            .iter()
            .filter_map(|(t, _, _)| t.strip_prefix(dir).ok()?.components().next())
            .map(|c| c.as_os_str().to_string_lossy().into_owned())
            .collect();
        let held: Vec<&str> = held.iter().map(String::as_str).collect();
        for name in self.fs.entries(&host) {
            if held.contains(&name.as_str()) {
                continue;
            }
            let source = host.join(&name);
            let target = dir.join(&name);
            let to = match self.fs.kind(&source) {
                Some(Kind::Symlink(to)) => to,
                Some(_) => Path::new(HOST_VIEW).join(source.strip_prefix("/").unwrap_or(&source)),
                None => continue,
            };
            let args = vec!["--symlink".into(), s(&to), s(&target)];
            self.push(target, Layer::Symlink(to), args);
        }
        for name in held {
            self.bind_entry(&host, dir, read_only, name);
        }
        for (target, layer, args) in below {
            self.push(target, layer, args);
        }
    }

    /// Makes `path` creatable or existing by splicing blocking ancestors.
    fn make_room(&mut self, path: &Path) -> Lookup {
        for _ in 0..64 {
            match self.lookup(path) {
                Lookup::Blocked(dir) => self.splice(&dir),
                other => return other,
            }
        }
        Lookup::Creatable
    }
}

/// The full `bwrap` argument list (without `bwrap` itself) for a container.
pub fn bwrap_args(spec: &SandboxSpec, fs: &dyn HostFs) -> Vec<String> {
    let mut planner = Planner {
        fs,
        masked: &spec.masked,
        host_view: false,
        layers: Vec::new(),
    };
    planner.bind_entries(Path::new("/"), Path::new("/"), true, NOT_FROM_HOST);
    planner.push(
        "/proc".into(),
        Layer::Special,
        vec!["--proc".into(), "/proc".into()],
    );
    planner.push(
        "/dev".into(),
        Layer::Special,
        vec!["--dev".into(), "/dev".into()],
    );
    planner.push(
        "/run".into(),
        Layer::Tmpfs,
        vec!["--tmpfs".into(), "/run".into()],
    );
    planner.push(
        "/tmp".into(),
        Layer::Bind {
            source: spec.tmp_dir.clone(),
            read_only: false,
        },
        vec!["--bind".into(), s(&spec.tmp_dir), "/tmp".into()],
    );
    for masked in &spec.masked {
        let target = planner.canonical(&masked.to_string_lossy());
        if matches!(planner.lookup(&target), Lookup::Exists) {
            planner.push(
                target.clone(),
                Layer::Tmpfs,
                vec!["--tmpfs".into(), s(&target)],
            );
        }
    }
    // Shallowest first, so that a volume inside an image directory lands on top of it.
    let mut mounts: Vec<&Mount> = spec.mounts.iter().collect();
    mounts.sort_by_key(|m| Path::new(&m.target).components().count());
    for mount in mounts {
        let target = planner.canonical(&mount.target);
        planner.make_room(&target);
        let flag = if mount.read_only {
            "--ro-bind"
        } else {
            "--bind"
        };
        let args = vec![flag.into(), s(&mount.source), s(&target)];
        planner.push(
            target,
            Layer::Bind {
                source: mount.source.clone(),
                read_only: mount.read_only,
            },
            args,
        );
    }
    for dir in &spec.ensure_dirs {
        let target = planner.canonical(dir);
        if let Lookup::Creatable = planner.make_room(&target) {
            planner.push(
                target.clone(),
                Layer::Tmpfs,
                vec!["--dir".into(), s(&target)],
            );
        }
    }

    let mut args: Vec<String> = vec![
        "--die-with-parent".into(),
        // bwrap keeps every capability when started by root (as sparkyard may be): a pod
        // could then unmount the tmpfs hiding the data directory, remount the host's
        // read-only paths writable or make device nodes. A container runtime drops them
        // too; as another user there are none to drop.
        "--cap-drop".into(),
        "ALL".into(),
        "--unshare-pid".into(),
        "--unshare-ipc".into(),
        "--unshare-uts".into(),
        "--hostname".into(),
        spec.hostname.clone(),
    ];
    for (_, _, layer_args) in &planner.layers {
        args.extend(layer_args.iter().cloned());
    }
    args.push("--chdir".into());
    args.push(spec.cwd.clone());
    args.push("--".into());
    args.extend(spec.command.iter().cloned());
    args
}

fn s(path: impl AsRef<Path>) -> String {
    path.as_ref().to_string_lossy().into_owned()
}

/// Lexical normalisation (`.` and `..`), since in-sandbox paths are not host paths.
fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::from("/");
    for component in path.components() {
        match component {
            Component::Normal(name) => out.push(name),
            Component::ParentDir => {
                out.pop();
            }
            _ => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    /// A fake host tree: path → kind.
    struct FakeFs(BTreeMap<PathBuf, Kind>);

    impl FakeFs {
        fn new(entries: &[(&str, Option<&str>)]) -> Self {
            let mut map = BTreeMap::new();
            map.insert(PathBuf::from("/"), Kind::Dir);
            for (path, link) in entries {
                let kind = match link {
                    Some(to) => Kind::Symlink(PathBuf::from(to)),
                    None if path.ends_with(".txt") || path.ends_with("hosts") => Kind::File,
                    None => Kind::Dir,
                };
                map.insert(PathBuf::from(path), kind);
            }
            Self(map)
        }
    }

    impl HostFs for FakeFs {
        fn kind(&self, path: &Path) -> Option<Kind> {
            self.0.get(path).cloned()
        }
        fn entries(&self, path: &Path) -> Vec<String> {
            self.0
                .keys()
                .filter(|p| p.parent() == Some(path))
                .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
                .collect()
        }
    }

    fn host() -> FakeFs {
        FakeFs::new(&[
            ("/usr", None),
            ("/usr/bin", None),
            ("/usr/lib", None),
            ("/usr/lib/jvm", None),
            ("/bin", Some("usr/bin")),
            ("/etc", None),
            ("/etc/hosts", None),
            ("/opt", None),
            ("/opt/tools", None),
            ("/var", None),
            ("/var/run", Some("/run")),
            ("/var/lib", None),
            ("/proc", None),
            ("/tmp", None),
            ("/data", None),
            ("/data/sparkyard", None),
            ("/data/sparkyard/pods/u/tmp", None),
            ("/spark", None),
            ("/spark/jars", None),
            ("/spark/bin", None),
        ])
    }

    fn spec(mounts: Vec<Mount>) -> SandboxSpec {
        SandboxSpec {
            hostname: "pod-a".into(),
            tmp_dir: "/data/sparkyard/pods/u/tmp".into(),
            mounts,
            masked: vec!["/data/sparkyard".into()],
            ensure_dirs: vec![],
            cwd: "/".into(),
            command: vec!["sh".into()],
        }
    }

    fn m(source: &str, target: &str, ro: bool) -> Mount {
        Mount {
            source: source.into(),
            target: target.into(),
            read_only: ro,
        }
    }

    /// The argument triples/pairs as one string each, for readable assertions.
    fn ops(args: &[String]) -> Vec<String> {
        let mut out = Vec::new();
        let mut i = 0;
        while i < args.len() {
            let a = args[i].as_str();
            let n = match a {
                "--ro-bind" | "--bind" | "--symlink" => 2,
                "--tmpfs" | "--proc" | "--dev" | "--dir" | "--hostname" | "--chdir"
                | "--cap-drop" => 1,
                "--" => args.len() - i - 1,
                _ => 0,
            };
            out.push(args[i..=i + n].join(" "));
            i += n + 1;
        }
        out
    }

    fn pos(ops: &[String], op: &str) -> usize {
        ops.iter()
            .position(|o| o == op)
            .unwrap_or_else(|| panic!("{op} not in {ops:#?}"))
    }

    #[test]
    fn host_root_is_bound_entry_by_entry_with_fresh_specials() {
        let args = bwrap_args(&spec(vec![]), &host());
        let ops = ops(&args);
        assert!(ops.contains(&"--ro-bind /usr /usr".to_string()));
        assert!(ops.contains(&"--symlink usr/bin /bin".to_string()));
        assert!(ops.contains(&"--proc /proc".to_string()));
        assert!(ops.contains(&"--bind /data/sparkyard/pods/u/tmp /tmp".to_string()));
        assert!(
            ops.contains(&"--tmpfs /data/sparkyard".to_string()),
            "data dir masked"
        );
        assert!(!ops.iter().any(|o| o.contains("--ro-bind /proc")));
        assert!(!ops.iter().any(|o| o == "--ro-bind /tmp /tmp"));
        assert!(
            !ops.iter().any(|o| o.contains("/.sparkyard/host")),
            "no splice, no host view"
        );
        assert_eq!(ops.last().unwrap(), "-- sh");
        assert!(args.contains(&"--die-with-parent".to_string()));
        assert!(ops.contains(&"--cap-drop ALL".to_string()), "{ops:#?}");
    }

    #[test]
    fn missing_mount_points_splice_their_read_only_parent() {
        let args = bwrap_args(
            &spec(vec![
                m("/spark", "/usr/lib/spark", true),
                m("/spark", "/opt/spark", true),
            ]),
            &host(),
        );
        let ops = ops(&args);
        let splice = pos(&ops, "--tmpfs /usr/lib");
        assert!(pos(&ops, "--symlink /.sparkyard/host/usr/lib/jvm /usr/lib/jvm") > splice);
        assert!(pos(&ops, "--ro-bind /spark /usr/lib/spark") > splice);
        let opt = pos(&ops, "--tmpfs /opt");
        assert!(pos(&ops, "--symlink /.sparkyard/host/opt/tools /opt/tools") > opt);
        assert!(pos(&ops, "--ro-bind /spark /opt/spark") > opt);
        // The host's root once, read-only, with the masked data directory hidden there too.
        let view = ops
            .iter()
            .filter(|o| o.ends_with(" /.sparkyard/host"))
            .count();
        assert_eq!(view, 1, "{ops:#?}");
        assert!(
            pos(&ops, "--tmpfs /.sparkyard/host/data/sparkyard")
                > pos(&ops, "--ro-bind / /.sparkyard/host")
        );
        assert!(!ops.iter().any(|o| o.starts_with("--ro-bind /usr/lib/")));
    }

    #[test]
    fn volumes_inside_an_image_dir_splice_it_and_stay_on_top() {
        let args = bwrap_args(
            &spec(vec![
                m("/vol/conf", "/opt/spark/conf", true),
                m("/spark", "/opt/spark", true),
                m("/vol/local", "/var/data/spark-1", false),
            ]),
            &host(),
        );
        let ops = ops(&args);
        let image = pos(&ops, "--ro-bind /spark /opt/spark");
        let splice = pos(&ops, "--tmpfs /opt/spark");
        assert!(splice > image);
        assert!(
            pos(
                &ops,
                "--symlink /.sparkyard/host/spark/jars /opt/spark/jars"
            ) > splice
        );
        assert!(pos(&ops, "--ro-bind /vol/conf /opt/spark/conf") > splice);
        assert!(pos(&ops, "--bind /vol/local /var/data/spark-1") > pos(&ops, "--tmpfs /var"));
    }

    #[test]
    fn symlinked_targets_resolve_inside_the_sandbox() {
        let args = bwrap_args(
            &spec(vec![m(
                "/vol/sa",
                "/var/run/secrets/kubernetes.io/serviceaccount",
                true,
            )]),
            &host(),
        );
        let ops = ops(&args);
        // /var/run -> /run, a fresh tmpfs: no splice of /var needed.
        assert!(ops
            .contains(&"--ro-bind /vol/sa /run/secrets/kubernetes.io/serviceaccount".to_string()));
        assert!(!ops.contains(&"--tmpfs /var".to_string()));
    }

    #[test]
    fn existing_targets_and_files_are_bound_over() {
        let mut sp = spec(vec![m("/pods/u/hosts", "/etc/hosts", true)]);
        sp.ensure_dirs = vec!["/opt/spark/work-dir".into(), "/tmp".into()];
        let args = bwrap_args(&sp, &host());
        let ops = ops(&args);
        assert!(ops.contains(&"--ro-bind /pods/u/hosts /etc/hosts".to_string()));
        assert!(!ops.contains(&"--tmpfs /etc".to_string()));
        assert!(ops.contains(&"--dir /opt/spark/work-dir".to_string()));
        assert!(!ops.contains(&"--dir /tmp".to_string()));
    }

    #[test]
    fn mounts_below_a_later_splice_are_reapplied() {
        // /opt/a is bound over an existing dir, then /opt/new needs /opt spliced.
        let fs = FakeFs::new(&[("/opt", None), ("/opt/a", None), ("/x", None)]);
        let args = bwrap_args(
            &spec(vec![m("/x", "/opt/a", true), m("/x", "/opt/new", true)]),
            &fs,
        );
        let ops = ops(&args);
        let first = pos(&ops, "--ro-bind /x /opt/a");
        let splice = pos(&ops, "--tmpfs /opt");
        let again = ops
            .iter()
            .rposition(|o| o == "--ro-bind /x /opt/a")
            .unwrap();
        assert!(first > splice || again > splice);
        assert!(again > pos(&ops, "--ro-bind /opt/a /opt/a"));
    }
}
