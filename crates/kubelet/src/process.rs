//! Starting a sandboxed container process and signalling it.
//!
//! Process tree of one container: `bwrap` (the host-side monitor) → the pid namespace's
//! init (bwrap's reaper, pid 1 inside) → the container's command (pid 2). SIGTERM goes to
//! the command only, as a container runtime sends it to the container's main process (tini
//! in the Spark image forwards it the same way). SIGKILL goes to bwrap and its whole
//! process group: with `--die-with-parent` the init dies too, and when a pid namespace's
//! init dies the kernel kills everything left in it, so no process of the pod survives.

use std::path::Path;
use std::process::Stdio;

/// A started container.
pub struct Started {
    pub child: tokio::process::Child,
    pub pid: u32,
    /// Done when the container's output is all in its log.
    pub drained: crate::logs::cri::Drained,
}

pub fn spawn(
    bwrap: &Path,
    args: &[String],
    env: &[(String, String)],
    log: &Path,
) -> std::io::Result<Started> {
    let capture = crate::logs::cri::capture(log)?;
    let mut command = tokio::process::Command::new(bwrap);
    command
        .args(args)
        .env_clear()
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .stdin(Stdio::null())
        .stdout(capture.stdout)
        .stderr(capture.stderr)
        // Its own process group: terminal signals to sparkyard do not reach pods, and the
        // group is the unit SIGKILL cleans up.
        .process_group(0)
        .kill_on_drop(true);
    let child = command.spawn()?;
    // The command keeps the pipes' write ends; only the container may hold them now, so
    // that they reach end of file when it exits.
    drop(command);
    let pid = child.id().unwrap_or(0);
    Ok(Started {
        child,
        pid,
        drained: capture.drained,
    })
}

/// The container's main process: the grandchild of `bwrap` (through the namespace init).
pub fn main_process(bwrap_pid: u32) -> Option<u32> {
    let init = children(bwrap_pid).into_iter().next()?;
    children(init).into_iter().next()
}

fn children(parent: u32) -> Vec<u32> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return out;
    };
    for entry in entries.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<u32>().ok())
        else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        // Fields after the `(comm)`, which may itself contain spaces and parentheses.
        let Some(rest) = stat.rfind(')').map(|i| &stat[i + 1..]) else {
            continue;
        };
        let ppid = rest
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse::<u32>().ok());
        if ppid == Some(parent) {
            out.push(pid);
        }
    }
    out.sort();
    out
}

/// SIGTERM to the main process (or, if it is not there yet, to bwrap, which then takes its
/// children down with it).
pub fn terminate(bwrap_pid: u32) {
    let target = main_process(bwrap_pid).unwrap_or(bwrap_pid);
    send(target as i32, libc::SIGTERM);
}

/// SIGKILL to bwrap's process group (and so, through the pid namespace, the whole tree).
pub fn kill(bwrap_pid: u32) {
    send(-(bwrap_pid as i32), libc::SIGKILL);
    send(bwrap_pid as i32, libc::SIGKILL);
}

fn send(pid: i32, signal: i32) {
    if pid == 0 || pid == -1 {
        return;
    }
    // SAFETY: kill(2) has no memory-safety preconditions; a stale pid only fails with ESRCH.
    unsafe {
        libc::kill(pid, signal);
    }
}

/// Kubernetes' exit code: the code, or 128 + signal for a process killed by a signal.
pub fn exit_code(status: std::process::ExitStatus) -> i32 {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => code,
        (None, Some(signal)) => 128 + signal,
        _ => 255,
    }
}
