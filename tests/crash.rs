#![allow(clippy::cast_possible_truncation)] // test fixtures: pids from JSON, small ELF headers
//! Crash safety and lifecycle races: `create` killed at every syscall it makes (strace fault
//! injection) leaves nothing that `delete -f` does not remove; a command that waited for a deleted
//! container's lock does not act on a newer one; ignored signals do not reach the container; hooks
//! can ask for the state; a closed stdout ends berth quietly; corrupt and orphaned entries are listed.

use kit::*;
use serde_json::json;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Pids of processes whose command line contains `needle` (zombies have none and do not count).
fn pids_with(needle: &str) -> Vec<i32> {
    let me = std::process::id() as i32;
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|p| *p != me)
        .filter(|p| {
            std::fs::read(format!("/proc/{p}/cmdline"))
                .map(|c| {
                    String::from_utf8_lossy(&c)
                        .replace('\0', " ")
                        .contains(needle)
                })
                .unwrap_or(false)
        })
        .collect()
}

fn wait_gone(needle: &str) -> Vec<i32> {
    let deadline = Instant::now() + Duration::from_secs(3);
    loop {
        let left = pids_with(needle);
        if left.is_empty() || Instant::now() > deadline {
            return left;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// `strace -qq OPTS berth create` of the bundle as `id`.
fn strace_create(b: &Bundle, id: &str, opts: &[&str]) -> std::process::Output {
    output(
        Command::new("strace")
            .arg("-qq")
            .args(opts)
            .arg(BERTH)
            .args(["--root", b.state.to_str().unwrap(), "create", "--bundle"])
            .arg(&b.dir)
            .arg(id)
            .stdin(Stdio::null()),
        b.tmp.path(),
    )
}

/// The (syscall, occurrence) pairs `create` makes, in order, from one strace run.
fn create_syscalls(b: &Bundle, id: &str) -> Vec<(String, usize)> {
    let trace = b.tmp.path().join("trace");
    let o = strace_create(b, id, &["-o", trace.to_str().unwrap()]);
    ok(&o);
    ok(&b.berth(&["delete", "-f", id]));
    syscalls_in(&trace)
}

#[test]
fn create_killed_at_every_syscall_leaves_nothing_after_delete() {
    let Some(_) = tool("strace") else { return };
    let marker = format!("berth-crash-{}", std::process::id());
    let mut b = Bundle::new(&format!("sleep 1000; : {marker}"));
    // A cgroup too (device rules), so that every kind of leftover is looked for.
    let cg = format!("/berth-crash-{}/c", std::process::id());
    b.spec["linux"]["resources"] = json!({"devices": [{"allow": false, "access": "rwm"}]});
    b.spec["linux"]["cgroupsPath"] = json!(cg);
    b.write();
    let cg_top = devices_hierarchy().join(format!("berth-crash-{}", std::process::id()));
    let id = format!("crash{}", std::process::id());
    let mounts_before = mountinfo();
    let calls = create_syscalls(&b, &id);
    assert!(calls.len() > 50, "only {} syscalls traced", calls.len());
    let mut orphans = Vec::new();
    for (name, n) in &calls {
        let inject = format!("inject={name}:signal=KILL:when={n}");
        let _ = strace_create(&b, &id, &["-o", "/dev/null", "-e", &inject]);
        let at = format!("killed at {name}#{n}");
        // Whatever the moment, delete -f cleans up, and then nothing is left.
        ok(&b.berth(&["delete", "-f", &id]));
        let left = wait_gone(&marker)
            .into_iter()
            .chain(wait_gone(&format!("create --bundle {}", b.dir.display())))
            .collect::<Vec<_>>();
        if !left.is_empty() {
            orphans.push(format!("{at}: pids {left:?}"));
            for p in left {
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(p),
                    nix::sys::signal::SIGKILL,
                );
            }
        }
        let entries: Vec<_> = std::fs::read_dir(&b.state)
            .map(|rd| rd.flatten().map(|e| e.file_name()).collect())
            .unwrap_or_default();
        assert!(entries.is_empty(), "{at}: state left: {entries:?}");
        assert!(!cg_top.exists(), "{at}: cgroup left");
        assert_eq!(
            mounts_before,
            mountinfo(),
            "{at}: the host's mount table changed"
        );
        // The id is reusable.
        ok(&b.create(&id));
        ok(&b.berth(&["delete", "-f", &id]));
    }
    assert!(orphans.is_empty(), "orphans: {orphans:#?}");
    assert!(wait_gone(&marker).is_empty());
}

#[test]
fn a_command_that_waited_for_a_deleted_container_does_not_touch_its_successor() {
    let b = Bundle::new("sleep 1000");
    ok(&b.create("succ"));
    let dir = b.state.join("succ");
    let old_pid = b.state("succ")["pid"].as_i64().unwrap() as i32;
    // Hold the old container's lock, as a delete in progress would.
    let old = std::fs::File::open(&dir).unwrap();
    let held = nix::fcntl::Flock::lock(old, nix::fcntl::FlockArg::LockExclusive).unwrap();
    let mut kill = b.cmd(&["kill", "succ", "KILL"]);
    let waiting = kill
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(200));
    // Meanwhile the container is deleted (its directory goes away) and a new one takes its id.
    let tomb = b.state.join("succ-old");
    std::fs::rename(&dir, &tomb).unwrap();
    ok(&b.create("succ"));
    let new_pid = b.state("succ")["pid"].as_i64().unwrap();
    drop(held);
    let o = waiting.wait_with_output().unwrap();
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("does not exist"));
    // The successor was not touched.
    assert_eq!(b.state("succ")["status"], "created");
    assert_eq!(b.state("succ")["pid"].as_i64().unwrap(), new_pid);
    // Clean up the old one by hand (its init is ours to kill: we created it).
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(old_pid),
        nix::sys::signal::SIGKILL,
    );
    let _ = nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(old_pid), None);
    std::fs::remove_dir_all(&tomb).unwrap();
}

#[test]
fn ignored_signals_are_not_inherited_by_the_container() {
    // grep itself reads its status (a shell would set dispositions of its own).
    let mut b = Bundle::new("true");
    b.spec["process"]["args"] = json!(["grep", "-E", "^Sig(Ign|Blk):", "/proc/self/status"]);
    let o = run_from_shell(&b, "sig1", "trap '' INT HUP QUIT TERM", "", false);
    let out = ok(&o);
    assert!(out.contains("SigIgn:\t0000000000000000"), "{out}");
    assert!(out.contains("SigBlk:\t0000000000000000"), "{out}");
}

#[test]
fn hooks_can_ask_for_the_state() {
    let mut b = Bundle::new("true");
    let out = b.host_path("hook-out");
    let sh = b.rootfs.join("bin/busybox");
    let hook = |name: &str| {
        json!({"path": sh, "timeout": 5, "args": ["sh", "-c", format!(
            "{} --root {} state $(sed 's/.*\"id\":\"\\([^\"]*\\)\".*/\\1/') > {}/{name}",
            BERTH, b.state.display(), out.display())]})
    };
    b.spec["hooks"] = json!({"prestart": [hook("prestart")], "poststart": [hook("poststart")]});
    let start = Instant::now();
    ok(&b.create("hk"));
    ok(&b.berth(&["start", "hk"]));
    assert!(
        start.elapsed() < Duration::from_secs(4),
        "a hook waited for the lock"
    );
    let read = |n: &str| -> serde_json::Value {
        serde_json::from_slice(&std::fs::read(out.join(n)).unwrap()).unwrap()
    };
    assert_eq!(read("prestart")["status"], "creating");
    assert!(matches!(
        read("poststart")["status"].as_str(),
        Some("running" | "stopped")
    ));
    ok(&b.berth(&["delete", "-f", "hk"]));
}

#[test]
fn a_closed_stdout_ends_berth_quietly() {
    let b = Bundle::new("true");
    for args in [&["features"][..], &["list"][..], &["spec", "--help"][..]] {
        let mut child = b
            .cmd(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        drop(child.stdout.take());
        let o = child.wait_with_output().unwrap();
        let e = String::from_utf8_lossy(&o.stderr);
        assert!(
            !e.contains("panicked") && !e.contains("Broken pipe"),
            "{args:?}: {e}"
        );
        assert_ne!(o.status.code(), Some(101), "{args:?} panicked");
    }
}

#[test]
fn corrupt_and_orphaned_entries_are_listed() {
    let b = Bundle::new("sleep 1000");
    ok(&b.create("fine"));
    // A state file that is not JSON.
    std::fs::create_dir_all(b.state.join("broken")).unwrap();
    std::fs::write(b.state.join("broken/state.json"), "{not json").unwrap();
    // A directory whose creator died before writing the state.
    std::fs::create_dir_all(b.state.join("orphan")).unwrap();
    let o = b.berth(&["list", "--format", "json"]);
    let listed: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let status = |id: &str| {
        listed
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["id"] == id)
            .map(|s| s["status"].as_str().unwrap().to_string())
    };
    assert_eq!(status("fine").as_deref(), Some("created"));
    assert_eq!(status("broken").as_deref(), Some("unknown"));
    assert_eq!(status("orphan").as_deref(), Some("stopped"));
    assert!(
        stderr(&o).contains("broken") && stderr(&o).contains("corrupt"),
        "{}",
        stderr(&o)
    );
    // The orphan is removable without --force.
    ok(&b.berth(&["delete", "orphan"]));
    std::fs::remove_dir_all(b.state.join("broken")).unwrap();
    ok(&b.berth(&["delete", "-f", "fine"]));
}

/// `strace -qq OPTS berth delete -f ID`.
fn strace_delete(b: &Bundle, id: &str, opts: &[&str]) -> std::process::Output {
    output(
        Command::new("strace")
            .arg("-qq")
            .args(opts)
            .arg(BERTH)
            .args(["--root", b.state.to_str().unwrap(), "delete", "-f", id])
            .stdin(Stdio::null()),
        b.tmp.path(),
    )
}

#[test]
fn delete_killed_at_every_syscall_leaves_what_the_next_delete_removes() {
    let Some(_) = tool("strace") else { return };
    for with_cgroup in [false, true] {
        let marker = format!("berth-delcrash-{}-{with_cgroup}", std::process::id());
        let mut b = Bundle::new(&format!("sleep 1000; : {marker}"));
        let cg_top = devices_hierarchy().join(format!("berth-delcrash-{}", std::process::id()));
        if with_cgroup {
            let cg = format!("/berth-delcrash-{}/c", std::process::id());
            b.spec["linux"]["resources"] = json!({"devices": [{"allow": false, "access": "rwm"}]});
            b.spec["linux"]["cgroupsPath"] = json!(cg);
        }
        b.write();
        let id = format!("delcrash{}", std::process::id());
        let up = || {
            ok(&b.create(&id));
            ok(&b.berth(&["start", &id]));
        };
        // The syscalls of one delete -f of a running container.
        up();
        let trace = b.tmp.path().join("trace");
        ok(&strace_delete(&b, &id, &["-o", trace.to_str().unwrap()]));
        let calls = syscalls_in(&trace);
        assert!(calls.len() > 30, "only {} syscalls traced", calls.len());
        for (name, n) in &calls {
            up();
            let inject = format!("inject={name}:signal=KILL:when={n}");
            let _ = strace_delete(&b, &id, &["-o", "/dev/null", "-e", &inject]);
            let at = format!("cgroup {with_cgroup}, killed at {name}#{n}");
            // Whatever the moment, the next delete -f removes everything.
            let o = b.berth(&["delete", "-f", &id]);
            assert!(o.status.success(), "{at}: {}", stderr(&o));
            let left = wait_gone(&marker);
            assert!(left.is_empty(), "{at}: processes left {left:?}");
            let entries: Vec<_> = std::fs::read_dir(&b.state)
                .map(|rd| rd.flatten().map(|e| e.file_name()).collect())
                .unwrap_or_default();
            assert!(entries.is_empty(), "{at}: state left: {entries:?}");
            assert!(!cg_top.join("c").exists(), "{at}: cgroup left");
        }
        // The id can be created again.
        up();
        ok(&b.berth(&["delete", "-f", &id]));
        let _ = std::fs::remove_dir(&cg_top);
    }
}

#[test]
fn damaged_state_and_long_ids_are_still_deletable() {
    let marker = format!("berth-damaged-{}", std::process::id());
    let mut b = Bundle::new(&format!("sleep 1000; : {marker}"));
    let cg = format!("/berth-damaged-{}/c", std::process::id());
    b.spec["linux"]["resources"] = json!({"devices": [{"allow": false, "access": "rwm"}]});
    b.spec["linux"]["cgroupsPath"] = json!(cg);
    let cg_dir = devices_hierarchy().join(cg.trim_start_matches('/'));
    let id = "damaged";
    for damage in ["corrupt", "truncated", "empty", "deleted"] {
        ok(&b.create(id));
        ok(&b.berth(&["start", id]));
        let state = b.state.join(id).join("state.json");
        match damage {
            "corrupt" => std::fs::write(&state, "{not json").unwrap(),
            "truncated" => {
                let s = std::fs::read(&state).unwrap();
                std::fs::write(&state, &s[..s.len() / 2]).unwrap();
            }
            "empty" => std::fs::write(&state, "").unwrap(),
            _ => std::fs::remove_file(&state).unwrap(),
        }
        if damage != "deleted" {
            // Every verb but delete -f refuses; the container is not gone.
            assert!(
                fails(&b.berth(&["state", id])).contains("corrupt state"),
                "{damage}"
            );
            fails(&b.berth(&["delete", id]));
        }
        ok(&b.berth(&["delete", "-f", id]));
        assert!(wait_gone(&marker).is_empty(), "{damage}: the init was left");
        assert!(!cg_dir.exists(), "{damage}: its cgroup was left");
        assert!(!b.state.join(id).exists(), "{damage}");
    }
    let _ = std::fs::remove_dir(cg_dir.parent().unwrap());
    // Without any record of the init (no cgroup, init record gone too): said, non-zero.
    b.spec["linux"]["resources"] = serde_json::Value::Null;
    b.spec["linux"]["cgroupsPath"] = serde_json::Value::Null;
    ok(&b.create(id));
    ok(&b.berth(&["start", id]));
    std::fs::write(b.state.join(id).join("state.json"), "{").unwrap();
    let init = std::fs::read_to_string(b.state.join(id).join("init.json")).unwrap();
    let pid: serde_json::Value = serde_json::from_str(&init).unwrap();
    std::fs::remove_file(b.state.join(id).join("init.json")).unwrap();
    let e = fails(&b.berth(&["delete", "-f", id]));
    assert!(e.contains("could not be identified"), "{e}");
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid["pid"].as_i64().unwrap() as i32),
        nix::sys::signal::SIGKILL,
    );
    assert!(wait_gone(&marker).is_empty());
    // A tombstone left by an older berth (`<id>~deleting.<pid>`, its deleter gone) is finished by
    // `list`; the one of a delete in progress (its lock held) is not.
    let old = b.state.join("gone~deleting.4194999");
    std::fs::create_dir_all(old.join("sub")).unwrap();
    std::fs::write(old.join("state.json"), "{").unwrap();
    let busy = b.state.join("~deleting.1.2");
    std::fs::create_dir(&busy).unwrap();
    let held = std::fs::File::open(&busy).unwrap();
    let held = nix::fcntl::Flock::lock(held, nix::fcntl::FlockArg::LockExclusive).unwrap();
    ok(&b.berth(&["list"]));
    assert!(!old.exists(), "an old-format tombstone was not finished");
    assert!(
        busy.exists(),
        "a tombstone whose delete holds its lock was removed"
    );
    drop(held);
    ok(&b.berth(&["list"]));
    assert!(!busy.exists());
    // The longest id create accepts is deleted; a longer one is refused at create.
    let long = "l".repeat(255);
    b.spec["process"]["args"] = json!(["true"]);
    ok(&b.create(&long));
    ok(&b.berth(&["delete", "-f", &long]));
    assert!(fails(&b.create(&"l".repeat(256))).contains("at most 255 bytes"));
    // A prestart hook asking for the state sees the bundle and the pid.
    let out = b.tmp.path().join("hook-state");
    b.spec["hooks"] = json!({"prestart": [{"path": "/bin/sh", "args": ["sh", "-c",
        format!("{} --root {} state hooked > {}", BERTH, b.state.display(), out.display())]}]});
    ok(&b.run("hooked"));
    let st: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
    assert_eq!(st["status"], "creating", "{st}");
    assert_eq!(st["bundle"], b.dir.display().to_string(), "{st}");
    assert!(
        st["pid"].as_i64().unwrap() > 0 && !st["created"].as_str().unwrap().is_empty(),
        "{st}"
    );
}

#[test]
fn a_failing_stderr_never_aborts_berth() {
    let b = Bundle::new("true");
    let full = std::fs::File::options()
        .write(true)
        .open("/dev/full")
        .unwrap();
    let o = Command::new(BERTH)
        .args(["--root", b.state.to_str().unwrap(), "state", "nope"])
        .stderr(full)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1), "an error, not an abort");
    // A warning on the way (a corrupt entry) with stderr full: the table is still printed.
    std::fs::create_dir_all(b.state.join("bad")).unwrap();
    std::fs::write(b.state.join("bad/state.json"), "{").unwrap();
    let full = std::fs::File::options()
        .write(true)
        .open("/dev/full")
        .unwrap();
    let o = Command::new(BERTH)
        .args(["--root", b.state.to_str().unwrap(), "list"])
        .stderr(full)
        .output()
        .unwrap();
    assert!(o.status.success(), "{:?}", o.status);
    assert!(String::from_utf8_lossy(&o.stdout).contains("bad"));
    std::fs::remove_dir_all(b.state.join("bad")).unwrap();
}
