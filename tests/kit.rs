//! The test kit's own tests: its guards catch what they are there to catch (a fixture that cannot
//! fail is a test that cannot fail), and its racing helper really races.

use kit::*;
use std::os::unix::process::ExitStatusExt;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::process::{Command, ExitStatus, Output};

/// The mount test changes the host's mount table for a moment: every test here that drops a bundle
/// (whose guard compares that table) runs one at a time.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn one_at_a_time() -> std::sync::MutexGuard<'static, ()> {
    ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner())
}

fn failed_with(stderr: &str) -> Output {
    Output {
        status: ExitStatus::from_raw(1 << 8),
        stdout: Vec::new(),
        stderr: stderr.as_bytes().to_vec(),
    }
}

fn panic_text(r: std::thread::Result<()>) -> String {
    let e = r.expect_err("the guard did not fail");
    e.downcast_ref::<String>()
        .cloned()
        .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_default()
}

#[test]
fn the_bundle_guard_force_deletes_what_a_test_left() {
    let _one = one_at_a_time();
    let b = Bundle::new("sleep 100");
    ok(&b.berth(&[
        "run",
        "--detach",
        "--bundle",
        b.dir.to_str().unwrap(),
        "left",
    ]));
    let pid = b.state("left")["pid"].as_i64().unwrap();
    let state = b.state.clone();
    drop(b);
    assert!(!state.join("left").exists());
    // Gone, or a zombie waiting for the host's init to reap it: not running any more.
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let st = stat.rsplit(')').next().unwrap_or("").trim_start();
    assert!(
        stat.is_empty() || st.starts_with('Z') || st.starts_with('X'),
        "the container's init {pid} survived the guard: {stat}"
    );
}

#[test]
fn the_bundle_guard_fails_a_test_that_leaves_state_berth_cannot_delete() {
    let _one = one_at_a_time();
    let b = Bundle::new("true");
    std::fs::create_dir_all(&b.state).unwrap();
    // Not a directory: `delete --force` refuses it, so it stays for the guard to see.
    std::fs::write(b.state.join("stray"), "x").unwrap();
    let e = panic_text(catch_unwind(AssertUnwindSafe(|| drop(b))));
    assert!(e.contains("state directories left behind"), "{e}");
}

#[test]
fn the_bundle_guard_fails_a_test_that_leaves_a_mount() {
    /// The decoy tmpfs, unmounted when dropped, whatever failed before (a panic included).
    struct Decoy(String);
    impl Drop for Decoy {
        fn drop(&mut self) {
            let _ = Command::new("umount").arg(&self.0).status();
        }
    }
    let _one = one_at_a_time();
    let b = Bundle::new("true");
    let target = tempfile::tempdir().unwrap();
    let t = target.path().to_str().unwrap().to_string();
    let mounted = Command::new("mount")
        .args(["-t", "tmpfs", "kit-decoy", &t])
        .status()
        .unwrap();
    assert!(mounted.success(), "mount tmpfs on {t}");
    let decoy = Decoy(t.clone());
    let r = catch_unwind(AssertUnwindSafe(|| drop(b)));
    drop(decoy);
    assert!(
        !std::fs::read_to_string("/proc/self/mountinfo")
            .unwrap()
            .contains(&format!(" {t} ")),
        "the decoy tmpfs on {t} is still mounted"
    );
    let e = panic_text(r);
    assert!(e.contains("the host's mount table changed"), "{e}");
}

#[test]
fn refused_catches_a_success_a_wrong_error_and_a_refusal_that_leaves_state() {
    let _one = one_at_a_time();
    let b = Bundle::new("true");
    let o = b.run("fine");
    assert!(o.status.success());
    let r = catch_unwind(AssertUnwindSafe(|| {
        b.refused(&o, "fine", "");
    }));
    assert!(panic_text(r).contains("expected failure"));
    let r = catch_unwind(AssertUnwindSafe(|| {
        b.refused(&failed_with("berth: error: ENOENT"), "x", "mounts[0]");
    }));
    assert!(panic_text(r).contains("mounts[0]"));
    std::fs::create_dir_all(b.state.join("half")).unwrap();
    let r = catch_unwind(AssertUnwindSafe(|| {
        b.refused(&failed_with("berth: error: mounts[0]"), "half", "mounts[0]");
    }));
    assert!(panic_text(r).contains("state directory left"));
    std::fs::remove_dir(b.state.join("half")).unwrap();
    let e = b.refused(&failed_with("berth: error: mounts[0]"), "none", "mounts[0]");
    assert_eq!(e, "berth: error: mounts[0]");
}

#[test]
fn the_swapper_swaps() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    std::fs::write(&a, "A").unwrap();
    std::fs::create_dir(&b).unwrap();
    let s = Swapper::start(a.clone(), b.clone(), berth::sys::rename_exchange);
    let mut seen_dir_at_a = false;
    for _ in 0..100_000 {
        if a.is_dir() {
            seen_dir_at_a = true;
            break;
        }
    }
    let swaps = s.stop();
    assert!(swaps > 0 && seen_dir_at_a, "{swaps} swaps");
    // Whichever way round it stopped, both are still there.
    assert!(a.exists() && b.exists());
}

fn body(skip_it: bool, ran: &mut bool) {
    if skip_it {
        skip!("not a real skip: the kit's own test of {}", "skip!");
    }
    *ran = true;
}

#[test]
fn skip_returns_from_the_test() {
    let (mut ran, mut skipped_ran) = (false, false);
    body(false, &mut ran);
    body(true, &mut skipped_ran);
    assert!(ran && !skipped_ran);
}

#[test]
fn the_binary_under_test_is_the_one_cargo_built() {
    let out = ok(&Command::new(BERTH).arg("--version").output().unwrap());
    assert!(out.contains(env!("CARGO_PKG_VERSION")), "{out}");
    if std::env::var_os("BERTH_BIN").is_none() {
        assert_eq!(
            BERTH.path(),
            std::path::Path::new(env!("CARGO_BIN_EXE_berth"))
        );
    }
}
