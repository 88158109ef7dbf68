//! What the processes cost: CPU time from `/proc/PID/stat`, resident memory from
//! `/proc/PID/status`, and the open-file limit that caps the connections one process can hold.

use anyhow::bail;
use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
use std::time::Instant;

/// Open files the generator needs beside its connections (stdio, epoll, the runtime's own).
const SPARE_FILES: u64 = 64;

/// User plus system CPU time of `pid` (this process for `None`), in clock ticks: fields 14
/// and 15 of `/proc/PID/stat`, counted after the command name, which may hold spaces.
fn cpu_ticks(pid: Option<u32>) -> Option<u64> {
    let path = match pid {
        Some(pid) => format!("/proc/{pid}/stat"),
        None => "/proc/self/stat".to_owned(),
    };
    let stat = std::fs::read_to_string(path).ok()?;
    let (_, fields) = stat.rsplit_once(')')?;
    let mut fields = fields.split_whitespace().skip(11);
    let user: u64 = fields.next()?.parse().ok()?;
    let system: u64 = fields.next()?.parse().ok()?;
    if pid.is_some() {
        return Some(user + system);
    }
    // The generator includes its reaped children: `bench fanout --processes`.
    let children_user: u64 = fields.next()?.parse().ok()?;
    let children_system: u64 = fields.next()?.parse().ok()?;
    Some(user + system + children_user + children_system)
}

/// CPU time of the generator and, if known, the server, at one instant.
#[derive(Clone, Copy, Debug)]
pub(crate) struct CpuSample {
    at: Instant,
    generator: Option<u64>,
    server: Option<u64>,
}

/// CPU use over an interval, in percent of one core (200 = two cores busy).
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct CpuUse {
    pub(crate) generator_pct: Option<f64>,
    pub(crate) server_pct: Option<f64>,
}

impl CpuSample {
    /// Reads the counters now; `server` is the server's pid, when given.
    pub(crate) fn take(server: Option<u32>) -> Self {
        Self {
            at: Instant::now(),
            generator: cpu_ticks(None),
            server: server.and_then(|pid| cpu_ticks(Some(pid))),
        }
    }

    /// The CPU use between `earlier` and this sample.
    pub(crate) fn since(&self, earlier: &Self) -> CpuUse {
        let secs = self.at.duration_since(earlier.at).as_secs_f64();
        let hz = rustix::param::clock_ticks_per_second() as f64;
        let pct = |now: Option<u64>, then: Option<u64>| {
            let ticks = now?.checked_sub(then?)?;
            (secs > 0.0).then(|| 100.0 * ticks as f64 / hz / secs)
        };
        CpuUse {
            generator_pct: pct(self.generator, earlier.generator),
            server_pct: pct(self.server, earlier.server),
        }
    }
}

/// The resident set size of `pid` in KiB (`VmRSS` in `/proc/PID/status`).
pub(crate) fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find_map(|l| l.strip_prefix("VmRSS:"))?;
    line.trim().trim_end_matches("kB").trim().parse().ok()
}

/// Raises the soft open-file limit to the hard one; returns the new soft limit (`None`:
/// unlimited).
fn raise_open_files() -> Option<u64> {
    let limit = getrlimit(Resource::Nofile);
    if limit.current != limit.maximum {
        let raised = Rlimit {
            current: limit.maximum,
            maximum: limit.maximum,
        };
        if setrlimit(Resource::Nofile, raised).is_ok() {
            return limit.maximum;
        }
    }
    limit.current
}

/// Makes room for `connections` open sockets, or says why there is none.
///
/// # Errors
/// When `connections` do not fit under the hard open-file limit.
pub(crate) fn ensure_open_files(connections: u64) -> anyhow::Result<()> {
    let Some(limit) = raise_open_files() else {
        return Ok(());
    };
    let needed = connections.saturating_add(SPARE_FILES);
    if needed > limit {
        bail!(
            "{connections} connections need about {needed} open files, but this process may \
             open at most {limit} (the hard limit, `ulimit -Hn`); use at most {} connections \
             or raise the limit",
            limit.saturating_sub(SPARE_FILES)
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_cpu_time_and_memory_are_readable() {
        assert!(cpu_ticks(None).is_some());
        assert!(rss_kib(std::process::id()).is_some_and(|kib| kib > 0));
        let start = CpuSample::take(Some(std::process::id()));
        let mut x = 0u64;
        for i in 0..5_000_000u64 {
            x = x.wrapping_mul(31).wrapping_add(i);
        }
        std::hint::black_box(x);
        let used = CpuSample::take(Some(std::process::id())).since(&start);
        assert!(used.generator_pct.is_some_and(|p| p >= 0.0));
        assert!(used.server_pct.is_some());
    }

    #[test]
    fn more_connections_than_open_files_are_refused_with_the_limit() {
        if getrlimit(Resource::Nofile).maximum.is_none() {
            return; // No hard limit: nothing to refuse.
        }
        let err = ensure_open_files(u64::MAX / 2).unwrap_err().to_string();
        assert!(err.contains("ulimit -Hn"), "{err}");
        assert!(ensure_open_files(10).is_ok());
    }
}
