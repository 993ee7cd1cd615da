//! The process's own CPU time and peak memory, from getrusage(2), and its
//! anonymous memory from /proc.

use std::time::Duration;

/// A getrusage(RUSAGE_SELF) reading.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Usage {
    pub user: Duration,
    pub sys: Duration,
    /// Peak resident set size so far, bytes (Linux reports KiB).
    pub max_rss_bytes: u64,
}

impl Usage {
    /// CPU time spent between `earlier` and `self`; the peak RSS is `self`'s.
    pub fn since(&self, earlier: &Usage) -> Usage {
        Usage {
            user: self.user.saturating_sub(earlier.user),
            sys: self.sys.saturating_sub(earlier.sys),
            max_rss_bytes: self.max_rss_bytes,
        }
    }

    #[cfg(test)]
    pub fn cpu(&self) -> Duration {
        self.user + self.sys
    }
}

fn duration(tv: libc::timeval) -> Duration {
    Duration::from_secs(u64::try_from(tv.tv_sec).unwrap_or(0))
        + Duration::from_micros(u64::try_from(tv.tv_usec).unwrap_or(0))
}

/// This process's usage (all threads) now.
pub fn now() -> std::io::Result<Usage> {
    // SAFETY: getrusage only writes into the struct we pass; zeroed is a
    // valid `rusage` (plain integers).
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: a valid pointer to a live, writable rusage.
    if unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(Usage {
        user: duration(ru.ru_utime),
        sys: duration(ru.ru_stime),
        max_rss_bytes: u64::try_from(ru.ru_maxrss).unwrap_or(0) * 1024,
    })
}

/// This process's resident anonymous memory now (heap, stacks; `RssAnon`
/// in /proc/self/status), bytes; None where there is no such file. The
/// peak RSS also counts the pages of the binary it has touched, which
/// depend on what the page cache held when it started (a freshly built
/// binary read 4 MiB more of itself than an older copy of the same code),
/// so growth shows in this figure, not in that one.
pub fn anon_rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find_map(|l| l.strip_prefix("RssAnon:"))?;
    let kib: u64 = line.split_whitespace().next()?.parse().ok()?;
    Some(kib * 1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_cpu_spent_and_memory_touched() {
        let before = now().expect("getrusage");
        // Burn ~50 ms of CPU and touch 64 MiB.
        let spin = std::time::Instant::now();
        let mut x = 0u64;
        while spin.elapsed() < Duration::from_millis(50) {
            x = std::hint::black_box(x.wrapping_mul(31).wrapping_add(7));
        }
        let big = std::hint::black_box(vec![1u8; 64 << 20]);
        let after = now().expect("getrusage");
        let d = after.since(&before);
        assert!(d.cpu() >= Duration::from_millis(30), "{d:?}");
        assert!(d.cpu() < Duration::from_secs(5), "{d:?}");
        assert!(after.max_rss_bytes >= 64 << 20, "{after:?}");
        if cfg!(target_os = "linux") {
            let anon = anon_rss_bytes().expect("RssAnon in /proc/self/status");
            assert!(anon >= 64 << 20, "{anon}");
            assert!(anon <= after.max_rss_bytes, "{anon} > {after:?}");
        }
        drop(big);
    }
}
