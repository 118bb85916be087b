//! Reading process-tree usage from `/proc` (no cgroup needed).
//!
//! One scan of `/proc/<pid>/stat` per sample gives every process's parent, CPU time and
//! resident set; a container's usage is then the sum over the live processes of the tree
//! rooted at its sandbox's `bwrap` pid:
//!
//! - CPU: `utime + stime + cutime + cstime` (fields 14–17), in clock ticks
//!   (`sysconf(_SC_CLK_TCK)`). A process's exited and reaped children are in its `cutime`
//!   and `cstime` and no longer in the scan, so nothing is counted twice; a zombie shows
//!   its own times until its parent reaps it, when they move into the parent's.
//! - Memory: RSS (field 24, the same number as `statm`'s `resident`), in pages
//!   (`sysconf(_SC_PAGESIZE)`). This stands in for the cgroup's working set; it counts
//!   pages shared between the tree's processes once per process and leaves out the page
//!   cache a cgroup would charge.

use std::collections::HashMap;

/// What one `/proc/<pid>/stat` line says that accounting needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProcStat {
    pub pid: u32,
    pub ppid: u32,
    /// `utime + stime + cutime + cstime`, clock ticks.
    pub cpu_ticks: u64,
    /// Resident pages.
    pub rss_pages: u64,
    /// Zombie (`Z`): exited, not yet reaped.
    pub zombie: bool,
}

/// Parses a `/proc/<pid>/stat` line; also returns `comm` (without parentheses).
pub fn parse_stat(text: &str) -> Option<(ProcStat, &str)> {
    let open = text.find('(')?;
    // `comm` may itself contain spaces and parentheses: it ends at the last `)`.
    let close = text.rfind(')')?;
    let pid = text[..open].trim().parse().ok()?;
    let comm = &text[open + 1..close];
    // Field 3 (state) onwards; field n is at index n - 3.
    let fields: Vec<&str> = text[close + 1..].split_whitespace().collect();
    let number = |n: usize| -> Option<u64> {
        let field = fields.get(n - 3)?;
        // cutime/cstime and rss are signed in the kernel's format; never negative in practice.
        Some(field.parse::<i64>().ok()?.max(0) as u64)
    };
    let stat = ProcStat {
        pid,
        ppid: number(4)? as u32,
        cpu_ticks: number(14)? + number(15)? + number(16)? + number(17)?,
        rss_pages: number(24)?,
        zombie: fields.first() == Some(&"Z"),
    };
    Some((stat, comm))
}

/// Clock ticks per second (`sysconf(_SC_CLK_TCK)`, 100 on Linux).
pub fn clock_ticks() -> u64 {
    // SAFETY: sysconf has no memory-safety preconditions.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if ticks > 0 {
        ticks as u64
    } else {
        100
    }
}

/// Bytes per page (`sysconf(_SC_PAGESIZE)`).
pub fn page_size() -> u64 {
    // SAFETY: as above.
    let size = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    if size > 0 {
        size as u64
    } else {
        4096
    }
}

/// Usage of one process tree.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct TreeUsage {
    pub cpu_seconds: f64,
    pub rss_bytes: u64,
    pub processes: usize,
}

/// Every process of the machine at one instant.
#[derive(Debug, Default)]
pub struct ProcTable {
    stats: HashMap<u32, ProcStat>,
    comms: HashMap<u32, String>,
    children: HashMap<u32, Vec<u32>>,
    ticks: u64,
    page: u64,
}

impl ProcTable {
    /// Reads `/proc/<pid>/stat` of every process (processes that exit meanwhile are
    /// skipped).
    pub fn scan() -> Self {
        let mut lines = Vec::new();
        if let Ok(entries) = std::fs::read_dir("/proc") {
            for entry in entries.flatten() {
                let name = entry.file_name();
                let Some(pid) = name
                    .to_str()
                    .filter(|n| n.bytes().all(|b| b.is_ascii_digit()))
                else {
                    continue;
                };
                if let Ok(text) = std::fs::read_to_string(format!("/proc/{pid}/stat")) {
                    lines.push(text);
                }
            }
        }
        Self::from_lines(lines.iter().map(String::as_str), clock_ticks(), page_size())
    }

    /// A table from `stat` lines (tests, or a scan already made).
    pub fn from_lines<'a>(lines: impl IntoIterator<Item = &'a str>, ticks: u64, page: u64) -> Self {
        let mut table = Self {
            ticks: ticks.max(1),
            page,
            ..Self::default()
        };
        for line in lines {
            if let Some((stat, comm)) = parse_stat(line) {
                table.children.entry(stat.ppid).or_default().push(stat.pid);
                table.comms.insert(stat.pid, comm.to_string());
                table.stats.insert(stat.pid, stat);
            }
        }
        table
    }

    pub fn len(&self) -> usize {
        self.stats.len()
    }

    pub fn is_empty(&self) -> bool {
        self.stats.is_empty()
    }

    /// The usage of the tree rooted at `root`, if `root` runs and its `comm` is `comm`
    /// (when given: a pid reused by another program is not the container's).
    pub fn tree(&self, root: u32, comm: Option<&str>) -> Option<TreeUsage> {
        self.stats.get(&root)?;
        if let Some(comm) = comm {
            if self.comms.get(&root).map(String::as_str) != Some(comm) {
                return None;
            }
        }
        let mut usage = TreeUsage::default();
        let mut ticks = 0u64;
        let mut stack = vec![root];
        let mut seen = std::collections::HashSet::new();
        while let Some(pid) = stack.pop() {
            if !seen.insert(pid) {
                continue;
            }
            let Some(stat) = self.stats.get(&pid) else {
                continue;
            };
            ticks += stat.cpu_ticks;
            usage.rss_bytes += stat.rss_pages * self.page;
            usage.processes += 1;
            if let Some(children) = self.children.get(&pid) {
                stack.extend(children.iter().copied());
            }
        }
        usage.cpu_seconds = ticks as f64 / self.ticks as f64;
        Some(usage)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(pid: u32, comm: &str, state: char, ppid: u32, times: [u64; 4], rss: u64) -> String {
        let [u, s, cu, cs] = times;
        format!(
            "{pid} ({comm}) {state} {ppid} {pid} {pid} 0 -1 4194304 97 0 0 0 {u} {s} {cu} {cs} 20 0 1 0 2480021 3133440 {rss} 18446744073709551615 0 0 0 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0"
        )
    }

    #[test]
    fn parses_stat_lines_with_awkward_names() {
        let text = line(42, "a) (b c", 'S', 7, [1, 2, 3, 4], 363);
        let (stat, comm) = parse_stat(&text).unwrap();
        assert_eq!(comm, "a) (b c");
        assert_eq!(
            stat,
            ProcStat {
                pid: 42,
                ppid: 7,
                cpu_ticks: 10,
                rss_pages: 363,
                zombie: false
            }
        );
        assert!(parse_stat("garbage").is_none());
        // The real thing.
        let own = std::fs::read_to_string("/proc/self/stat").unwrap();
        let (stat, _) = parse_stat(&own).unwrap();
        assert_eq!(stat.pid, std::process::id());
        assert!(stat.rss_pages > 0);
    }

    #[test]
    fn a_tree_sums_its_live_processes_and_nothing_else() {
        let lines = [
            line(10, "bwrap", 'S', 1, [0, 1, 0, 0], 100),
            line(11, "bwrap", 'S', 10, [0, 0, 5, 5], 50),
            line(12, "sh", 'R', 11, [300, 10, 0, 0], 200),
            line(13, "sleep", 'Z', 12, [1, 1, 0, 0], 0),
            // Another container and an unrelated process.
            line(20, "bwrap", 'S', 1, [7, 7, 7, 7], 999),
            line(21, "sh", 'R', 20, [100, 0, 0, 0], 999),
        ];
        let table = ProcTable::from_lines(lines.iter().map(String::as_str), 100, 4096);
        let usage = table.tree(10, Some("bwrap")).unwrap();
        assert_eq!(usage.processes, 4);
        assert!((usage.cpu_seconds - 3.23).abs() < 1e-9, "{usage:?}");
        assert_eq!(usage.rss_bytes, 350 * 4096);
        // A reused pid running something else is not the container.
        assert!(table.tree(12, Some("bwrap")).is_none());
        assert!(table.tree(99, None).is_none());
        assert_eq!(table.tree(21, None).unwrap().processes, 1);
    }

    /// The sampler's cost: one scan and 100 two-process trees, repeated. Prints the CPU
    /// time per sample (`cargo test -p sparkyard-kubelet --lib -- --ignored --nocapture
    /// sampler_cost`).
    #[test]
    #[ignore]
    fn sampler_cost_per_100_containers() {
        let mut children: Vec<std::process::Child> = (0..100)
            .map(|_| {
                std::process::Command::new("sh")
                    .args(["-c", "sleep 60; :"])
                    .spawn()
                    .unwrap()
            })
            .collect();
        let roots: Vec<u32> = children.iter().map(|c| c.id()).collect();
        let own_cpu = || {
            let text = std::fs::read_to_string("/proc/self/stat").unwrap();
            parse_stat(&text).unwrap().0.cpu_ticks as f64 / clock_ticks() as f64
        };
        let (rounds, cpu0, wall0) = (50, own_cpu(), std::time::Instant::now());
        let mut processes = 0;
        let mut found = 0;
        for _ in 0..rounds {
            let table = ProcTable::scan();
            processes = table.len();
            found = roots.iter().filter_map(|r| table.tree(*r, None)).count();
        }
        let cpu = (own_cpu() - cpu0) / rounds as f64;
        let wall = wall0.elapsed().as_secs_f64() / rounds as f64;
        for child in &mut children {
            let _ = child.kill();
            let _ = child.wait();
        }
        assert_eq!(found, 100);
        eprintln!(
            "one sample, 100 containers, {processes} processes on the machine: {:.2} ms CPU, {:.2} ms wall",
            cpu * 1e3,
            wall * 1e3
        );
    }

    #[test]
    fn the_scan_sees_this_process() {
        let table = ProcTable::scan();
        assert!(table.len() > 1);
        let own = table.tree(std::process::id(), None).unwrap();
        assert!(own.rss_bytes > 0 && own.processes >= 1);
    }
}
