//! Where a run writes: never a directory another run is writing, never a
//! previous run's record silently replaced, never outside `reports/`
//! because of a scenario's name.

use std::fs::File;
use std::path::{Path, PathBuf};

use crate::error::UsageError;

/// The lock file inside a run (or sweep) directory while it is written.
const LOCK: &str = ".autoscale-harness.lock";

/// A directory claimed for one run: the lock is held until this is dropped,
/// and released by the kernel if the process dies.
#[derive(Debug)]
pub struct Claimed {
    _lock: File,
}

/// `reports/<name>-<UTC timestamp>`, the name reduced to one safe folder
/// name (letters, digits, `-`, `_`, `.`; no leading dot), with `-2`, `-3`…
/// when two runs start in the same second.
pub fn default_dir(kind: &str, name: &str) -> PathBuf {
    let ts = jiff::Timestamp::now()
        .strftime("%Y%m%dT%H%M%SZ")
        .to_string();
    let safe = safe_name(name);
    let base = PathBuf::from("reports").join(format!("{kind}{safe}-{ts}"));
    let mut dir = base.clone();
    let mut n = 1;
    while dir.exists() {
        n += 1;
        dir = PathBuf::from(format!("{}-{n}", base.display()));
    }
    dir
}

/// One path component made of `[A-Za-z0-9._-]`, never `.`/`..`-led.
pub fn safe_name(name: &str) -> String {
    let s: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
                c
            } else {
                '-'
            }
        })
        .collect();
    let s = s.trim_start_matches(['.', '-']).to_string();
    if s.is_empty() {
        "run".into()
    } else {
        s.chars().take(100).collect()
    }
}

/// Creates `dir` if needed, takes its lock, and makes sure it holds no
/// other record: an empty directory, or with `overwrite` a previous run's
/// directory (its files are removed). Anything else is a usage error.
pub fn claim(dir: &Path, overwrite: bool) -> Result<Claimed, UsageError> {
    let shown = dir.display();
    std::fs::create_dir_all(dir)
        .map_err(|e| UsageError(format!("--out {shown}: cannot create it: {e}")))?;
    let lock_path = dir.join(LOCK);
    let lock = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .read(true)
        .write(true)
        .open(&lock_path)
        .map_err(|e| UsageError(format!("--out {shown}: cannot create its lock file: {e}")))?;
    // SAFETY: flock on a descriptor we own.
    let locked = unsafe {
        libc::flock(
            std::os::fd::AsRawFd::as_raw_fd(&lock),
            libc::LOCK_EX | libc::LOCK_NB,
        )
    } == 0;
    if !locked {
        let holder = std::fs::read_to_string(&lock_path).unwrap_or_default();
        return Err(UsageError(format!(
            "--out {shown}: another run is writing there ({}); choose another directory",
            holder.trim()
        )));
    }
    let entries: Vec<String> = std::fs::read_dir(dir)
        .map_err(|e| UsageError(format!("--out {shown}: cannot read it: {e}")))?
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n != LOCK)
        .collect();
    if !entries.is_empty() {
        let previous = dir.join(crate::recorder::RUN_META).is_file();
        if !(overwrite && previous) {
            let mut listed: Vec<&str> = entries.iter().map(String::as_str).take(4).collect();
            listed.sort_unstable();
            let what = if previous {
                "holds a previous run's record; pass --overwrite to replace it, or choose another directory"
            } else {
                "is not empty and holds no run record; choose an empty or new directory"
            };
            return Err(UsageError(format!(
                "--out {shown} {what} (it has {}{})",
                listed.join(", "),
                if entries.len() > 4 { ", …" } else { "" }
            )));
        }
        for name in entries {
            let p = dir.join(&name);
            let gone = if p.is_dir() {
                std::fs::remove_dir_all(&p)
            } else {
                std::fs::remove_file(&p)
            };
            gone.map_err(|e| UsageError(format!("--out {shown}: cannot remove {name}: {e}")))?;
        }
    }
    use std::io::Write;
    let mut l = &lock;
    let _ = l.set_len(0);
    let _ = write!(
        l,
        "pid {} since {}",
        std::process::id(),
        jiff::Timestamp::now().strftime("%Y-%m-%dT%H:%M:%SZ")
    );
    Ok(Claimed { _lock: lock })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_stay_one_folder_under_reports() {
        assert_eq!(safe_name("../../x"), "x");
        assert_eq!(safe_name("a/b c"), "a-b-c");
        assert_eq!(safe_name(".."), "run");
        assert_eq!(safe_name("ramp"), "ramp");
        let d = default_dir("", "../../etc/passwd");
        assert_eq!(d.parent(), Some(Path::new("reports")), "{}", d.display());
    }

    #[test]
    fn an_occupied_directory_is_refused_and_a_locked_one_too() {
        let t = tempfile::tempdir().unwrap();
        let d = t.path().join("run");
        let first = claim(&d, false).unwrap();
        // The same directory while the first holds it.
        let e = claim(&d, true).unwrap_err();
        assert!(
            e.0.contains("another run is writing there (pid "),
            "{}",
            e.0
        );
        std::fs::write(d.join(crate::recorder::RUN_META), "{}").unwrap();
        drop(first);
        let e = claim(&d, false).unwrap_err();
        assert!(e.0.contains("pass --overwrite"), "{}", e.0);
        claim(&d, true).unwrap();
        assert!(!d.join(crate::recorder::RUN_META).exists());
        // Somebody else's files are never removed.
        let other = t.path().join("home");
        std::fs::create_dir_all(&other).unwrap();
        std::fs::write(other.join("notes.txt"), "mine").unwrap();
        let e = claim(&other, true).unwrap_err();
        assert!(e.0.contains("holds no run record"), "{}", e.0);
        assert!(other.join("notes.txt").exists());
    }
}
