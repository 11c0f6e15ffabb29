//! What the memory benches read about a process, shared through `#[path]`: its open-file limit,
//! and fields of `/proc/<pid>/status`.

#![allow(dead_code)]

/// A field of `/proc/{pid}/status` (`"self"` for this process): `VmRSS:` in kB, `Threads:`.
pub fn status(pid: &str, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with(field))?;
    line[field.len()..]
        .trim_start_matches(':')
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// Raises the soft limit on open files to at least `need`; false if it cannot.
pub fn raise_fd_limit(need: u64) -> bool {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit only read and write the struct we pass.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) != 0 {
            return false;
        }
        if limit.rlim_cur >= need {
            return true;
        }
        if limit.rlim_max < need {
            return false;
        }
        limit.rlim_cur = need;
        libc::setrlimit(libc::RLIMIT_NOFILE, &limit) == 0
    }
}
