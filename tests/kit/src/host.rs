//! What the host has: tools, cgroup hierarchies, and the skips of tests it cannot run.

use std::io::Write;
use std::path::{Path, PathBuf};

/// Skips the rest of the test: prints `skipped: REASON` (format arguments as `format!`), logs it
/// (see [`skipped`]) and returns from the test function.
///
/// For what a host may lack by design (cgroup v2 on a v1 host, swap, systemd as init, SELinux):
/// a missing tool is [`tool`]'s to say.
#[macro_export]
macro_rules! skip {
    ($($why:tt)+) => {{
        $crate::skipped(&format!($($why)+));
        return;
    }};
}

/// Says why the current test does not run: `skipped: REASON` on stderr, and a line
/// `TEST: REASON` appended to `$BERTH_SKIP_LOG` when it is set (scripts/test.sh lists them at the
/// end, so a skip is never silent).
pub fn skipped(reason: &str) {
    eprintln!("skipped: {reason}");
    if let Some(log) = std::env::var_os("BERTH_SKIP_LOG") {
        log_skip(Path::new(&log), reason);
    }
}

fn log_skip(log: &Path, reason: &str) {
    let thread = std::thread::current();
    let test = thread.name().unwrap_or("?");
    let line = format!("{test}: {reason}\n");
    let written = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .and_then(|mut f| f.write_all(line.as_bytes()));
    if let Err(e) = written {
        panic!("BERTH_SKIP_LOG={}: {e}", log.display());
    }
}

/// The path of the executable `name` on `$PATH`. When it is missing: a failure if
/// `BERTH_REQUIRE_TOOLS` is set (`scripts/test.sh` sets it once `scripts/deps.sh` installed every
/// tool, so a missing one is a broken machine, not a reason to skip), else a skip ([`skipped`]) and
/// `None`, for the caller to return: `let Some(strace) = tool("strace") else { return };`.
pub fn tool(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    if let Some(found) = find_in(name, &path) {
        return Some(found);
    }
    let reason = format!(
        "{name} is not installed (scripts/deps.sh, which scripts/test.sh runs, installs it)"
    );
    if std::env::var_os("BERTH_REQUIRE_TOOLS").is_some() {
        panic!("{reason}, and BERTH_REQUIRE_TOOLS is set");
    }
    skipped(&reason);
    None
}

fn find_in(name: &str, path: &std::ffi::OsStr) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    std::env::split_paths(path)
        .map(|dir| dir.join(name))
        .find(|p| {
            std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
}

/// Whether /sys/fs/cgroup is the cgroup v2 tree (not a v1 or hybrid layout).
pub fn cgroup_v2() -> bool {
    Path::new("/sys/fs/cgroup/cgroup.controllers").exists()
}

/// The hierarchy whose device rules apply: the v2 tree, or v1's `devices`.
pub fn devices_hierarchy() -> PathBuf {
    if cgroup_v2() {
        "/sys/fs/cgroup".into()
    } else {
        "/sys/fs/cgroup/devices".into()
    }
}

/// The v1 hierarchies under /sys/fs/cgroup and the v2 tree (itself, or its `unified` mount on a
/// hybrid host): every root a container's cgroup can be made under.
pub fn cgroup_roots() -> Vec<PathBuf> {
    let mut roots: Vec<PathBuf> = std::fs::read_dir("/sys/fs/cgroup")
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| !p.is_symlink() && p.join("cgroup.procs").exists())
        .collect();
    if Path::new("/sys/fs/cgroup/cgroup.procs").exists() {
        roots.push(PathBuf::from("/sys/fs/cgroup"));
    }
    roots
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_skip_is_logged_with_the_test_and_the_reason() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("skips");
        log_skip(&log, "no swap here");
        log_skip(&log, "no systemd here");
        let text = std::fs::read_to_string(&log).unwrap();
        let lines: Vec<_> = text.lines().collect();
        assert_eq!(lines.len(), 2, "{text}");
        assert!(
            lines[0].ends_with(": no swap here") && lines[0].contains("a_skip_is_logged"),
            "{text}"
        );
    }

    #[test]
    fn an_unwritable_skip_log_fails_the_test_instead_of_hiding_the_skip() {
        let dir = tempfile::tempdir().unwrap();
        let r = std::panic::catch_unwind(|| log_skip(&dir.path().join("no/such/dir"), "x"));
        assert!(r.is_err());
    }

    #[test]
    fn tools_are_found_only_as_executable_files_on_the_path() {
        let dir = tempfile::tempdir().unwrap();
        let (exe, plain) = (dir.path().join("exe"), dir.path().join("plain"));
        std::fs::write(&exe, "#!/bin/sh\n").unwrap();
        std::fs::write(&plain, "").unwrap();
        std::fs::set_permissions(&exe, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .unwrap();
        std::fs::create_dir(dir.path().join("adir")).unwrap();
        let path = std::env::join_paths([Path::new("/nonexistent"), dir.path()]).unwrap();
        assert_eq!(find_in("exe", &path), Some(exe));
        assert_eq!(find_in("plain", &path), None);
        assert_eq!(find_in("adir", &path), None);
        assert_eq!(find_in("missing", &path), None);
    }
}
