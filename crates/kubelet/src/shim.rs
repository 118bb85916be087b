//! Containers that outlive sparkyard, as containerd's shims let containers outlive
//! containerd and the kubelet.
//!
//! When the embedding binary offers a shim (`sparkyard shim`, registered with
//! [`use_executable`]), the kubelet does not start `bwrap` itself. It starts the shim in a
//! session of its own (`setsid`), so nothing ties the shim to sparkyard's lifetime, and the
//! shim starts the sandbox:
//!
//! ```text
//! sparkyard serve ──spawn+setsid──▶ sparkyard shim ──▶ bwrap (own process group) ──▶ init ──▶ command
//! ```
//!
//! The shim drains the container's stdout and stderr into its CRI log file
//! ([`crate::logs::pod_log_path`], [`crate::logs::cri`]), so logs keep flowing while
//! sparkyard is down, as containerd's shim does; forwards
//! SIGTERM to the container's main process; and when the sandbox exits writes its exit code
//! and finish time to `<pod dir>/state/<container>/<restart>.exit`, then exits. `bwrap`
//! keeps `--die-with-parent`: its parent is now the shim, so a killed shim takes its
//! sandbox along instead of leaving a container nobody can report on.
//!
//! Next to the exit file, the kubelet records each started container in
//! `<restart>.json` (shim and sandbox pids, container ID, start time). A kubelet starting
//! on an existing data directory reads these records to re-adopt containers whose shim is
//! alive and to finish the status of those that exited while it was down (`pod/adopt.rs`).
//!
//! Without a registered shim (the cluster crate's own tests) containers are children of
//! the kubelet, as before, and die with it.

use std::ffi::OsString;
use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::OnceLock;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use sparkyard_kube_apiserver::registry::now_rfc3339;

static EXECUTABLE: OnceLock<PathBuf> = OnceLock::new();

/// Registers the binary whose `shim` subcommand runs [`main`]; call before the cluster starts.
pub fn use_executable(path: PathBuf) {
    let _ = EXECUTABLE.set(path);
}

pub fn executable() -> Option<&'static Path> {
    EXECUTABLE.get().map(PathBuf::as_path)
}

/// What the kubelet records about a started container.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Record {
    pub shim_pid: u32,
    pub sandbox_pid: u32,
    pub container_id: String,
    pub started_at: String,
}

/// What the shim records when the sandbox exits.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ExitRecord {
    pub exit_code: i32,
    pub finished_at: String,
}

/// `<pod dir>/state/<container>`: records of every run of one container.
pub fn state_dir(pod_dir: &Path, container: &str) -> PathBuf {
    pod_dir.join("state").join(container)
}

pub fn record_path(pod_dir: &Path, container: &str, restart: u32) -> PathBuf {
    state_dir(pod_dir, container).join(format!("{restart}.json"))
}

pub fn exit_path(pod_dir: &Path, container: &str, restart: u32) -> PathBuf {
    state_dir(pod_dir, container).join(format!("{restart}.exit"))
}

/// Writes `contents` so that a reader sees all of it or nothing (rename is atomic).
/// Where [`write_atomically`] stages `path`: named after the whole file name and the
/// writing process, because the kubelet writes a run's record (`<n>.json`) while the shim
/// may be writing its exit (`<n>.exit`) — a fast container exits before the record is
/// down — and a shared `<n>.tmp` let one rename carry the other's file away (the kubelet
/// then saw its start fail and ran the container again).
fn staging_path(path: &Path) -> PathBuf {
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    path.with_file_name(format!(".{name}.{}.tmp", std::process::id()))
}

fn write_atomically(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    let tmp = staging_path(path);
    let mut file = std::fs::File::create(&tmp)?;
    file.write_all(contents)?;
    file.sync_all()?;
    std::fs::rename(&tmp, path)
}

pub fn read_exit(path: &Path) -> Option<ExitRecord> {
    serde_json::from_slice(&std::fs::read(path).ok()?).ok()
}

/// The newest run of a container with a record: `(restart count, record)`.
pub fn newest_record(pod_dir: &Path, container: &str) -> Option<(u32, Record)> {
    let entries = std::fs::read_dir(state_dir(pod_dir, container)).ok()?;
    let newest = entries
        .flatten()
        .filter_map(|e| {
            e.file_name()
                .to_str()?
                .strip_suffix(".json")?
                .parse::<u32>()
                .ok()
        })
        .max()?;
    let text = std::fs::read(record_path(pod_dir, container, newest)).ok()?;
    Some((newest, serde_json::from_slice(&text).ok()?))
}

/// Whether `pid` is still the shim that writes `exit_file` (not a zombie, not a reused pid).
pub fn shim_alive(pid: u32, exit_file: &Path) -> bool {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return false;
    };
    let state = stat
        .rfind(')')
        .and_then(|i| stat[i + 1..].split_whitespace().next());
    if state == Some("Z") {
        return false;
    }
    let Ok(cmdline) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
        return false;
    };
    let needle = exit_file.as_os_str().as_encoded_bytes();
    cmdline.windows(needle.len()).any(|w| w == needle)
}

/// A container started under a shim.
pub struct Supervised {
    pub sandbox_pid: u32,
    pub monitor: Monitor,
}

/// Waits for a supervised container's exit: the shim's exit file, or the shim's death.
pub struct Monitor {
    shim_pid: u32,
    /// Set when the shim is our child (it must be reaped); `None` for a re-adopted one.
    child: Option<Child>,
    exit_file: PathBuf,
}

impl Monitor {
    pub fn adopted(shim_pid: u32, exit_file: PathBuf) -> Self {
        Self {
            shim_pid,
            child: None,
            exit_file,
        }
    }

    /// The container's exit code and finish time. A shim that died without writing its
    /// exit file (killed itself, with its sandbox) counts as killed: 137.
    pub async fn wait(mut self) -> ExitRecord {
        loop {
            if let Some(exit) = read_exit(&self.exit_file) {
                if let Some(child) = &mut self.child {
                    // The shim exits right after writing the file; reap it.
                    for _ in 0..100 {
                        if !matches!(child.try_wait(), Ok(None)) {
                            break;
                        }
                        tokio::time::sleep(Duration::from_millis(10)).await;
                    }
                }
                return exit;
            }
            let gone = match &mut self.child {
                Some(child) => !matches!(child.try_wait(), Ok(None)),
                None => !shim_alive(self.shim_pid, &self.exit_file),
            };
            if gone {
                return read_exit(&self.exit_file).unwrap_or_else(|| ExitRecord {
                    exit_code: 137,
                    finished_at: now_rfc3339(),
                });
            }
            // Polling: a re-adopted shim is not our child, so there is nothing to wait on.
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// Starts `bwrap args` under a shim and records it. Returns once the sandbox runs.
#[allow(clippy::too_many_arguments)]
pub fn spawn(
    shim: &Path,
    bwrap: &Path,
    args: &[String],
    env: &[(String, String)],
    log: &Path,
    pod_dir: &Path,
    container: &str,
    restart: u32,
    container_id: &str,
    started_at: &str,
) -> std::io::Result<Supervised> {
    if let Some(dir) = log.parent() {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::create_dir_all(state_dir(pod_dir, container))?;
    let exit_file = exit_path(pod_dir, container, restart);
    // A leftover from a run that never got recorded must not be taken for this run's exit.
    let _ = std::fs::remove_file(&exit_file);
    let shim_errors = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)?;
    let mut command = Command::new(shim);
    command
        .arg("shim")
        .arg("--log")
        .arg(log)
        .arg("--exit-file")
        .arg(&exit_file)
        .arg("--")
        .arg(bwrap)
        .args(args)
        .env_clear()
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::from(shim_errors));
    // No `pre_exec`: without one the standard library spawns with posix_spawn (vfork-like)
    // instead of fork, which would copy the page tables of a large sparkyard process for
    // every container. The shim puts itself in a session of its own first thing (`main`).
    let mut child = command.spawn()?;
    let shim_pid = child.id();
    // The shim's first line is the sandbox's pid (fast: one fork after the shim's exec).
    let mut line = String::new();
    let stdout = child.stdout.take().expect("piped stdout");
    std::io::BufReader::new(stdout).read_line(&mut line)?;
    let Ok(sandbox_pid) = line.trim().parse::<u32>() else {
        let _ = child.kill();
        let _ = child.wait();
        return Err(std::io::Error::other(format!(
            "the container shim did not start the sandbox ({:?}); see the container log",
            line.trim()
        )));
    };
    let record = Record {
        shim_pid,
        sandbox_pid,
        container_id: container_id.to_string(),
        started_at: started_at.to_string(),
    };
    write_atomically(
        &record_path(pod_dir, container, restart),
        &serde_json::to_vec(&record).map_err(std::io::Error::other)?,
    )?;
    Ok(Supervised {
        sandbox_pid,
        monitor: Monitor {
            shim_pid,
            child: Some(child),
            exit_file,
        },
    })
}

/// How long a container's pipes may stay open after its main process exited (the pid
/// namespace is gone with its init, so only an escaped process could hold them).
pub const DRAIN_LIMIT: Duration = Duration::from_secs(5);

static TERMINATE: AtomicBool = AtomicBool::new(false);

extern "C" fn on_sigterm(_: libc::c_int) {
    TERMINATE.store(true, Ordering::SeqCst);
}

/// The shim itself: `sparkyard shim --log <file> --exit-file <file> -- <bwrap> <args…>`.
/// Returns the shim's exit code (0 once the exit file is written).
pub fn main(log: &Path, exit_file: &Path, command: &[OsString]) -> i32 {
    // A session of its own: no signal or hang-up aimed at sparkyard's session reaches it.
    // SAFETY: setsid(2) has no memory effects; it fails only for a process group leader,
    // which the shim is not (it is spawned into sparkyard's group).
    unsafe {
        libc::setsid();
    }
    match supervise(log, exit_file, command) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("sparkyard shim: {e}");
            1
        }
    }
}

fn supervise(log: &Path, exit_file: &Path, command: &[OsString]) -> std::io::Result<()> {
    use std::os::unix::process::CommandExt;
    let (program, args) = command
        .split_first()
        .ok_or_else(|| std::io::Error::other("no command"))?;
    let capture = crate::logs::cri::capture(log)?;
    // SAFETY: installing a handler that only stores to an atomic. No SA_RESTART, so the
    // waitpid below returns EINTR and the signal is forwarded at once.
    unsafe {
        let mut action: libc::sigaction = std::mem::zeroed();
        action.sa_sigaction = on_sigterm as *const () as usize;
        libc::sigemptyset(&mut action.sa_mask);
        action.sa_flags = 0;
        libc::sigaction(libc::SIGTERM, &action, std::ptr::null_mut());
        libc::signal(libc::SIGHUP, libc::SIG_IGN);
        libc::signal(libc::SIGPIPE, libc::SIG_IGN);
    }
    let child = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(capture.stdout)
        .stderr(capture.stderr)
        // Its own group: the kubelet's SIGKILL goes to the sandbox's group, not the shim,
        // so the shim lives to record the exit.
        .process_group(0)
        .spawn()?;
    let pid = child.id();
    {
        let mut stdout = std::io::stdout().lock();
        writeln!(stdout, "{pid}")?;
        stdout.flush()?;
    }
    // Nobody reads stdout any more (sparkyard may be gone): point it at /dev/null.
    if let Ok(null) = std::fs::OpenOptions::new().write(true).open("/dev/null") {
        use std::os::fd::AsRawFd;
        // SAFETY: dup2 onto our own stdout descriptor.
        unsafe {
            libc::dup2(null.as_raw_fd(), 1);
        }
    }
    let code = loop {
        let mut status: libc::c_int = 0;
        // SAFETY: waitpid on our own child with a valid status pointer.
        let r = unsafe { libc::waitpid(pid as i32, &mut status, 0) };
        if r == pid as i32 {
            break if libc::WIFEXITED(status) {
                libc::WEXITSTATUS(status)
            } else if libc::WIFSIGNALED(status) {
                128 + libc::WTERMSIG(status)
            } else {
                continue;
            };
        }
        let error = std::io::Error::last_os_error();
        if error.kind() != std::io::ErrorKind::Interrupted {
            return Err(error);
        }
        if TERMINATE.swap(false, Ordering::SeqCst) {
            super::process::terminate(pid);
        }
    };
    // The exit is recorded only once the output is in the log: whoever reads the exit
    // file (the kubelet, then the log shipper) finds the complete log.
    capture.drained.wait(DRAIN_LIMIT);
    let record = ExitRecord {
        exit_code: code,
        finished_at: now_rfc3339(),
    };
    write_atomically(
        exit_file,
        &serde_json::to_vec(&record).map_err(std::io::Error::other)?,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_runs_record_and_its_exit_are_staged_apart() {
        let dir = tempfile::tempdir().unwrap();
        let (record, exit) = (
            record_path(dir.path(), "main", 0),
            exit_path(dir.path(), "main", 0),
        );
        assert_ne!(staging_path(&record), staging_path(&exit));
        // Written one inside the other's staging window, each keeps its own content.
        std::fs::create_dir_all(record.parent().unwrap()).unwrap();
        std::fs::write(staging_path(&record), b"record").unwrap();
        write_atomically(&exit, b"exit").unwrap();
        std::fs::rename(staging_path(&record), &record).unwrap();
        assert_eq!(std::fs::read(&record).unwrap(), b"record");
        assert_eq!(std::fs::read(&exit).unwrap(), b"exit");
    }

    #[test]
    fn newest_record_picks_the_highest_restart() {
        let dir = tempfile::tempdir().unwrap();
        let record = |n: u32| Record {
            shim_pid: n,
            sandbox_pid: n + 1,
            container_id: format!("c{n}"),
            started_at: "t".into(),
        };
        std::fs::create_dir_all(state_dir(dir.path(), "main")).unwrap();
        for n in [0, 2, 1] {
            write_atomically(
                &record_path(dir.path(), "main", n),
                &serde_json::to_vec(&record(n)).unwrap(),
            )
            .unwrap();
        }
        assert_eq!(newest_record(dir.path(), "main"), Some((2, record(2))));
        assert_eq!(newest_record(dir.path(), "other"), None);
        assert!(!shim_alive(std::process::id(), Path::new("/no/such/exit")));
    }
}
