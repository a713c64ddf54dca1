//! Live volumes (`berth mounts add|remove`): attached to a running container, visible inside,
//! read-only as a whole tree, held to the host mount policy as at create (roots, tenants and their
//! quota counting live volumes), the destination raced by a thread swapping it for a symlink into
//! procfs or onto the root, idmapped, removed only by what was recorded, gone with the container,
//! and a `mounts add` killed at every syscall leaving no mount outside the container and a state that
//! says what is attached.

use kit::*;
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

/// `berth GLOBAL.. run -d OPTS.. --bundle B ID`: a running container (the bundle's `sleep 1000`).
fn running(b: &Bundle, id: &str, global: &[&str], opts: &[&str]) {
    let bundle = b.dir.to_str().unwrap().to_string();
    let mut args: Vec<&str> = global.to_vec();
    args.extend_from_slice(&["run", "-d"]);
    args.extend_from_slice(opts);
    args.extend_from_slice(&["--bundle", &bundle, id]);
    ok(&b.berth(&args));
}

/// Writes `mounts` as a FILE for `mounts add|remove` and returns its path.
fn file(b: &Bundle, name: &str, mounts: Value) -> String {
    let p = b.tmp.path().join(name);
    std::fs::write(&p, mounts.to_string()).unwrap();
    p.display().to_string()
}

fn bind(src: &Path, dest: &str, opts: &[&str]) -> Value {
    json!({"destination": dest, "type": "bind", "source": src, "options": opts})
}

/// `berth [GLOBAL..] mounts VERB [ARGS..] ID FILE`.
fn mounts(b: &Bundle, global: &[&str], verb: &str, args: &[&str], id: &str, f: &str) -> Output {
    let mut a: Vec<&str> = global.to_vec();
    a.extend_from_slice(&["mounts", verb]);
    a.extend_from_slice(args);
    a.extend_from_slice(&[id, f]);
    b.berth(&a)
}

fn exec(b: &Bundle, id: &str, script: &str) -> Output {
    b.berth(&["exec", id, "sh", "-c", script])
}

/// The mount points of the container's mount namespace (its init's mountinfo, seen from the host).
fn mount_points(b: &Bundle, id: &str) -> Vec<String> {
    let pid = b.state(id)["pid"].as_i64().unwrap();
    std::fs::read_to_string(format!("/proc/{pid}/mountinfo"))
        .unwrap()
        .lines()
        .filter_map(|l| l.split(' ').nth(4).map(str::to_string))
        .collect()
}

fn live(b: &Bundle, id: &str) -> Vec<Value> {
    b.state(id)["liveVolumes"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

/// Every process's mount table that shows a mount of `src` (the root field of mountinfo).
fn mounted_anywhere(src: &Path) -> Vec<String> {
    let want = src.display().to_string();
    let mut found = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if !name.chars().all(|c| c.is_ascii_digit()) {
            continue;
        }
        let Ok(info) = std::fs::read_to_string(e.path().join("mountinfo")) else {
            continue;
        };
        if info
            .lines()
            .any(|l| l.split(' ').nth(3) == Some(want.as_str()))
        {
            found.push(name);
        }
    }
    found
}

#[test]
fn add_and_remove_ro_and_rw_volumes_seen_inside() {
    let b = Bundle::new("sleep 1000");
    let ro = b.host_path("ro");
    let rw = b.host_path("rw");
    std::fs::write(ro.join("f"), "data\n").unwrap();
    running(&b, "lv", &[], &[]);
    let f = file(
        &b,
        "add.json",
        json!([
            bind(&ro, "/in/ro", &["rbind", "ro"]),
            bind(&rw, "/in/rw", &["rbind", "rw"]),
            {"destination": "/in/tmp", "type": "tmpfs", "source": "tmpfs",
             "options": ["nosuid", "nodev", "size=1m"]}
        ]),
    );
    ok(&mounts(&b, &[], "add", &[], "lv", &f));
    let out = ok(&exec(
        &b,
        "lv",
        "cat /in/ro/f; touch /in/ro/x 2>/dev/null || echo ro; echo w > /in/rw/w; \
         echo t > /in/tmp/t && cat /in/tmp/t",
    ));
    assert_eq!(out, "data\nro\nt\n");
    assert_eq!(std::fs::read_to_string(rw.join("w")).unwrap(), "w\n");
    assert!(!ro.join("x").exists());
    // The state says what is attached, with the mounts' ids.
    let l = live(&b, "lv");
    assert_eq!(l.len(), 3, "{l:?}");
    assert!(
        l.iter()
            .all(|v| v["status"] == "attached" && v["mountId"].as_u64() > Some(0))
    );
    let listed: Value = serde_json::from_str(&ok(&b.berth(&["list", "-f", "json"]))).unwrap();
    assert_eq!(listed[0]["liveVolumes"].as_array().unwrap().len(), 3);
    // A destination that already has a live volume is refused; so is a second one in one file.
    let again = file(
        &b,
        "again.json",
        json!([bind(&ro, "/in/ro", &["rbind", "ro"])]),
    );
    let e = fails(&mounts(&b, &[], "add", &[], "lv", &again));
    assert!(e.contains("already at /in/ro"), "{e}");
    // Removed by destination: gone inside, gone from the state; the others stay.
    let rm = file(
        &b,
        "rm.json",
        json!([{"destination": "/in/ro"}, {"destination": "/in/tmp"}]),
    );
    ok(&mounts(&b, &[], "remove", &[], "lv", &rm));
    let points = mount_points(&b, "lv");
    assert!(
        !points.iter().any(|p| p == "/in/ro" || p == "/in/tmp"),
        "{points:?}"
    );
    assert!(points.iter().any(|p| p == "/in/rw"), "{points:?}");
    assert_eq!(ok(&exec(&b, "lv", "ls /in/ro | wc -l")).trim(), "0");
    assert_eq!(live(&b, "lv").len(), 1);
    // The spec's own mounts cannot be removed, nor what was never added.
    for dest in ["/proc", "/dev", "/in/ro"] {
        let f = file(&b, "spec.json", json!([{"destination": dest}]));
        let e = fails(&mounts(&b, &[], "remove", &[], "lv", &f));
        assert!(e.contains("no live volume there"), "{dest}: {e}");
    }
    assert!(mount_points(&b, "lv").iter().any(|p| p == "/proc"));
    // Removed from stdin.
    let mut c = b.cmd(&["mounts", "remove", "lv", "-"]);
    c.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = c.spawn().unwrap();
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(br#"[{"destination": "/in/rw"}]"#)
        .unwrap();
    ok(&child.wait_with_output().unwrap());
    assert!(live(&b, "lv").is_empty());
    assert!(b.state("lv").get("liveVolumes").is_none());
}

/// A container that mounts something at a path named with bytes that are not UTF-8 (it has
/// CAP_SYS_ADMIN) cannot stop its live volumes from being found and removed: the mount table is
/// read as bytes.
#[test]
fn a_mount_the_container_named_with_bytes_that_are_not_utf8_does_not_block_removal() {
    let mut b =
        Bundle::new("d=$(printf '/dev/\\377'); mkdir $d && mount -t tmpfs t $d && exec sleep 1000");
    for set in ["bounding", "effective", "permitted"] {
        b.spec["process"]["capabilities"][set]
            .as_array_mut()
            .unwrap()
            .push(json!("CAP_SYS_ADMIN"));
    }
    let ro = b.host_path("ro");
    b.write();
    running(&b, "lu", &[], &[]);
    let pid = b.state("lu")["pid"].as_i64().unwrap();
    let mut there = false;
    for _ in 0..100 {
        let info = std::fs::read(format!("/proc/{pid}/mountinfo")).unwrap_or_default();
        if info.windows(7).any(|w| w == b" /dev/\xff") {
            there = true;
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert!(there, "the container never mounted at /dev/\\377");
    let f = file(
        &b,
        "add.json",
        json!([bind(&ro, "/in/ro", &["rbind", "ro"])]),
    );
    ok(&mounts(&b, &[], "add", &[], "lu", &f));
    let rm = file(&b, "rm.json", json!([{"destination": "/in/ro"}]));
    ok(&mounts(&b, &[], "remove", &[], "lu", &rm));
    assert!(live(&b, "lu").is_empty());
    ok(&b.berth(&["delete", "-f", "lu"]));
}

#[test]
fn bad_requests_are_refused_naming_the_cause() {
    let b = Bundle::new("sleep 1000");
    let src = b.host_path("src");
    running(&b, "bad", &[], &[]);
    let cases = [
        (json!([]), "the list is empty"),
        (
            json!([{"destination": "/p", "type": "proc", "source": "proc"}]),
            "a bind mount or a tmpfs",
        ),
        (
            json!([{"destination": "/x", "type": "bind", "source": 7}]),
            "mounts[0].source",
        ),
        (json!([bind(&src, "relative", &["rbind"])]), "relative"),
        (
            json!([bind(&src.join("missing"), "/m", &["rbind"])]),
            "ENOENT",
        ),
        (json!([bind(&src, "/proc/sys", &["rbind"])]), "procfs"),
        (
            json!([bind(&src, "/", &["rbind"])]),
            "cover the whole rootfs",
        ),
    ];
    for (mounts_json, needle) in cases {
        let f = file(&b, "bad.json", mounts_json.clone());
        let o = mounts(&b, &[], "add", &[], "bad", &f);
        assert!(!o.status.success(), "{mounts_json} was attached");
        let e = stderr(&o);
        assert!(
            e.contains(needle),
            "{mounts_json}: expected {needle:?} in {e}"
        );
    }
    let e = fails(&mounts(
        &b,
        &[],
        "add",
        &[],
        "bad",
        "/nonexistent/file.json",
    ));
    assert!(
        e.contains("/nonexistent/file.json") && e.contains("ENOENT"),
        "{e}"
    );
    // Nothing was attached by any of them, and nothing recorded.
    assert!(live(&b, "bad").is_empty());
    assert!(
        !mount_points(&b, "bad")
            .iter()
            .any(|p| p == "/m" || p == "/x" || p == "/p")
    );
    // Not running: runc's words.
    let f = file(&b, "ok.json", json!([bind(&src, "/ok", &["rbind"])]));
    let e = fails(&mounts(&b, &[], "add", &[], "nosuch", &f));
    assert!(e.contains("does not exist"), "{e}");
    ok(&b.berth(&["kill", "bad", "KILL"]));
    b.wait_status("bad", "stopped");
    let e = fails(&mounts(&b, &[], "add", &[], "bad", &f));
    assert!(e.contains("container not running"), "{e}");
}

#[test]
fn read_only_is_the_whole_tree_with_rro_and_under_a_policy_cap() {
    let b = Bundle::new("sleep 1000");
    let src = b.host_path("tree");
    std::fs::create_dir(src.join("sub")).unwrap();
    let policy = b.tmp.path().join("policy.json");
    std::fs::write(
        &policy,
        json!({"roots": [{"path": src, "access": "ro"}],
               "rootfs": [{"path": b.dir, "access": "rw"}]})
        .to_string(),
    )
    .unwrap();
    let pol = policy.to_str().unwrap();
    running(&b, "rro", &["--policy", pol], &[]);
    // The source has a submount (a tmpfs, in a private mount namespace of the test's, where berth
    // then runs): a top-only ro would leave it writable.
    let a = file(
        &b,
        "a.json",
        json!([bind(&src, "/asked-rro", &["rbind", "rro"])]),
    );
    let c = file(
        &b,
        "c.json",
        json!([bind(&src, "/capped", &["rbind", "ro"])]),
    );
    let script = format!(
        "mount -t tmpfs sub {src}/sub && {BERTH} --root {st} --policy {pol} mounts add rro {a} && \
         {BERTH} --root {st} --policy {pol} mounts add rro {c}",
        src = src.display(),
        st = b.state.display(),
    );
    ok(&sh_in_private_mount_ns(&script, b.tmp.path()));
    for d in ["/asked-rro", "/capped"] {
        let out = exec(
            &b,
            "rro",
            &format!("grep -q ' {d}/sub ' /proc/self/mountinfo && echo sub; touch {d}/sub/x 2>&1"),
        );
        let text = stdout(&out) + &stderr(&out);
        assert!(
            text.contains("sub") && text.contains("Read-only file system"),
            "{d}: {text}"
        );
    }
    // rw asked from a root capped at ro is refused, as at create.
    let w = file(&b, "w.json", json!([bind(&src, "/w", &["rbind", "rw"])]));
    let e = fails(&mounts(&b, &["--policy", pol], "add", &[], "rro", &w));
    assert!(e.contains("at most ro"), "{e}");
}

/// An allowed root `vol` (rw) with a tenant `t` of at most 2 bind mounts, another tenant `u`, a
/// decoy outside every root, and a container of tenant `t` with one bind mount from `vol`.
struct Policed {
    b: Bundle,
    vol: PathBuf,
    outside: PathBuf,
    policy: String,
}

fn policed() -> Policed {
    let mut b = Bundle::new("sleep 1000");
    let vol = b.host_path("vol");
    let outside = b.host_path("outside");
    std::fs::write(outside.join("secret"), "host secret\n").unwrap();
    for d in ["a", "b", "c"] {
        std::fs::create_dir(vol.join(d)).unwrap();
    }
    std::os::unix::fs::symlink(&outside, vol.join("escape")).unwrap();
    let policy = b.tmp.path().join("policy.json");
    std::fs::write(
        &policy,
        json!({"roots": [{"path": vol, "access": "rw"}],
               "rootfs": [{"path": b.dir, "access": "rw"}],
               "tenants": {"t": {"roots": [vol], "access": "rw", "max_volumes": 2},
                           "u": {"roots": [vol], "access": "rw"}}})
        .to_string(),
    )
    .unwrap();
    b.add_mount(bind(&vol.join("a"), "/a", &["rbind", "rw"]));
    let policy = policy.display().to_string();
    running(&b, "pol", &["--policy", &policy], &["--tenant", "t"]);
    Policed {
        b,
        vol,
        outside,
        policy,
    }
}

#[test]
fn live_volumes_are_held_to_the_policy_and_the_tenants_quota() {
    let Policed {
        b,
        vol,
        outside,
        policy,
    } = policed();
    let p = ["--policy", policy.as_str()];
    // The container was created as tenant t (--tenant at run): the caller says so again.
    let t = ["--tenant", "t"];
    let add = |name: &str, m: Value, args: &[&str]| {
        let f = file(&b, name, json!([m]));
        mounts(&b, &p, "add", args, "pol", &f)
    };
    let refused = |o: Output, needle: &str| {
        let e = fails(&o);
        assert!(
            e.contains(needle) && e.contains("policy"),
            "expected {needle:?}: {e}"
        );
    };
    // Outside every root, and out of the root through a symlink: refused, nothing attached.
    refused(
        add("o.json", bind(&outside, "/o", &["rbind"]), &t),
        "not under an allowed root",
    );
    refused(
        add("e.json", bind(&vol.join("escape"), "/e", &["rbind"]), &t),
        "roots",
    );
    // Another tenant may not add to tenant t's container.
    refused(
        add(
            "u.json",
            bind(&vol.join("b"), "/b", &["rbind"]),
            &["--tenant", "u"],
        ),
        "tenant",
    );
    // The dry run says what add would do, and attaches nothing.
    let f = file(
        &b,
        "b.json",
        json!([bind(&vol.join("b"), "/b", &["rbind"])]),
    );
    let out = ok(&mounts(
        &b,
        &p,
        "add",
        &["--dry-run", "--tenant", "t"],
        "pol",
        &f,
    ));
    assert!(
        out.contains("mounts[0] /b") && out.contains("allowed (rw)"),
        "{out}"
    );
    assert!(live(&b, "pol").is_empty());
    // The spec's one bind plus this one: 2, the quota.
    ok(&add("b.json", bind(&vol.join("b"), "/b", &["rbind"]), &t));
    assert_eq!(ok(&exec(&b, "pol", "echo ok > /b/x && cat /b/x")), "ok\n");
    // A third is beyond it, as a dry run says too (exit 1).
    let c = bind(&vol.join("c"), "/c", &["rbind"]);
    refused(add("c.json", c.clone(), &t), "max_volumes");
    let f = file(&b, "c.json", json!([c]));
    let o = mounts(
        &b,
        &p,
        "add",
        &["--dry-run", "--tenant", "t", "--format", "json"],
        "pol",
        &f,
    );
    assert_eq!(o.status.code(), Some(1));
    let report: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(report["mounts"][0]["verdict"], "refused", "{report}");
    // Once one is removed, there is room again.
    let rm = file(&b, "rm.json", json!([{"destination": "/b"}]));
    ok(&mounts(&b, &p, "remove", &[], "pol", &rm));
    ok(&add("c.json", bind(&vol.join("c"), "/c", &["rbind"]), &t));
    assert!(
        mount_points(&b, "pol")
            .iter()
            .all(|m| m != "/o" && m != "/e")
    );
    assert_eq!(
        std::fs::read_to_string(outside.join("secret")).unwrap(),
        "host secret\n"
    );
}

#[test]
fn a_destination_swapped_for_a_symlink_never_lands_outside_the_root_or_in_procfs() {
    let b = Bundle::new("sleep 1000");
    let src = b.host_path("src");
    std::fs::write(src.join("f"), "v\n").unwrap();
    let mnt = b.rootfs.join("race");
    std::fs::create_dir_all(mnt.join("real")).unwrap();
    running(&b, "race", &[], &[]);
    // The container's side of the race, done from the host on its rootfs (the same inodes): the
    // destination's parent swapped with a symlink into procfs, and one onto the root itself.
    std::os::unix::fs::symlink("/proc/sys/kernel", mnt.join("to-proc")).unwrap();
    std::os::unix::fs::symlink("/sys/kernel", mnt.join("to-sys")).unwrap();
    std::os::unix::fs::symlink("../../../../..", mnt.join("to-root")).unwrap();
    let f = file(
        &b,
        "race.json",
        json!([bind(&src, "/race/real/dest", &["rbind", "ro"])]),
    );
    let rm = file(&b, "rm.json", json!([{"destination": "/race/real/dest"}]));
    let mut landed = 0;
    let mut refused = 0;
    for evil in ["to-proc", "to-sys", "to-root"] {
        let swapper = Swapper::start(
            mnt.join("real"),
            mnt.join(evil),
            berth::sys::rename_exchange,
        );
        for _ in 0..60 {
            let o = mounts(&b, &[], "add", &[], "race", &f);
            if o.status.success() {
                landed += 1;
                // Wherever it went, it is inside the root and not in procfs or sysfs.
                let points = mount_points(&b, "race");
                let ours: Vec<_> = points.iter().filter(|p| p.ends_with("/dest")).collect();
                assert_eq!(ours.len(), 1, "{points:?}");
                assert!(
                    !ours[0].starts_with("/proc") && !ours[0].starts_with("/sys"),
                    "{ours:?}"
                );
                ok(&mounts(&b, &[], "remove", &[], "race", &rm));
            } else {
                refused += 1;
                let e = stderr(&o);
                assert!(
                    e.contains("procfs")
                        || e.contains("sysfs")
                        || e.contains("EROFS")
                        || e.contains("ENOENT")
                        || e.contains("ENOTDIR")
                        || e.contains("rootfs itself")
                        || e.contains("EXDEV")
                        || e.contains("ELOOP"),
                    "{e}"
                );
            }
            assert!(live(&b, "race").is_empty() || live(&b, "race").len() == 1);
            let points = mount_points(&b, "race");
            assert!(
                !points
                    .iter()
                    .any(|p| p.starts_with("/proc/sys/kernel") && p.len() > 16),
                "a mount landed in procfs: {points:?}"
            );
        }
        assert!(swapper.stop() > 0, "the race never happened");
        // Put the real directory back where it belongs.
        if std::fs::symlink_metadata(mnt.join("real"))
            .unwrap()
            .file_type()
            .is_symlink()
        {
            berth::sys::rename_exchange(&mnt.join("real"), &mnt.join(evil)).unwrap();
        }
    }
    assert!(
        landed > 0 && refused > 0,
        "landed {landed}, refused {refused}"
    );
    // Nothing was made on the host outside the rootfs, and the host's procfs is untouched.
    assert!(mounted_anywhere(&src).len() <= 1);
}

#[test]
fn an_idmapped_live_volume_shows_host_owners_as_the_containers_ids() {
    if !berth::sys::idmap_supported() {
        skip!("the kernel has no idmapped mounts");
    }
    let mut b = Bundle::new("sleep 1000");
    b.in_userns();
    let src = b.host_path("idsrc");
    std::fs::write(src.join("owned"), "x").unwrap();
    std::os::unix::fs::chown(src.join("owned"), Some(1000), Some(1000)).unwrap();
    running(&b, "idm", &[], &[]);
    // With the container's own mappings, on-disk 1000 is the container's 1000; the control without
    // idmap shows the host's 1000 as nobody.
    let f = file(
        &b,
        "id.json",
        json!([
            bind(&src, "/idm", &["rbind", "idmap"]),
            bind(&src, "/plain", &["rbind"])
        ]),
    );
    ok(&mounts(&b, &[], "add", &[], "idm", &f));
    let out = ok(&exec(&b, "idm", "stat -c %u:%g /idm/owned /plain/owned"));
    assert_eq!(out, "1000:1000\n65534:65534\n");
    let l = live(&b, "idm");
    assert!(
        l[0]["options"]
            .as_array()
            .unwrap()
            .contains(&json!("idmap")),
        "{l:?}"
    );
}

#[test]
fn delete_takes_live_volumes_with_the_container() {
    let b = Bundle::new("sleep 1000");
    let src = b.host_path("delsrc");
    running(&b, "del", &[], &[]);
    let f = file(
        &b,
        "d.json",
        json!([
            bind(&src, "/d1", &["rbind"]),
            bind(&src, "/d2", &["rbind", "ro"])
        ]),
    );
    ok(&mounts(&b, &[], "add", &[], "del", &f));
    assert_eq!(
        mounted_anywhere(&src).len(),
        1,
        "the container's namespace holds them"
    );
    ok(&b.berth(&["delete", "-f", "del"]));
    // Nothing anywhere mounts the source any more, and the state is gone.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while !mounted_anywhere(&src).is_empty() && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert!(
        mounted_anywhere(&src).is_empty(),
        "{:?}",
        mounted_anywhere(&src)
    );
    assert!(!b.state.join("del").exists());
}

#[test]
fn landlock_refuses_a_writable_live_volume_under_a_read_only_root_unless_exec_only() {
    if berth::sys::landlock_abi().is_none() {
        skip!("the kernel has no Landlock");
    }
    let mut b = Bundle::new("sleep 1000");
    b.spec["root"]["readonly"] = json!(true);
    b.spec["annotations"] = json!({"berth.landlock": "enforce"});
    let src = b.host_path("llsrc");
    // The mount points exist in the image: a read-only root cannot have them made.
    for d in ["rw-dest", "ro-dest"] {
        std::fs::create_dir(b.rootfs.join(d)).unwrap();
    }
    running(&b, "ll", &[], &[]);
    let f = file(
        &b,
        "rw.json",
        json!([bind(&src, "/rw-dest", &["rbind", "rw"])]),
    );
    let e = fails(&mounts(&b, &[], "add", &[], "ll", &f));
    assert!(e.contains("landlock") && e.contains("--exec-only"), "{e}");
    assert!(live(&b, "ll").is_empty());
    // Read-only is fine: the running processes' rules already let them read beneath the root.
    let r = file(
        &b,
        "ro.json",
        json!([bind(&src, "/ro-dest", &["rbind", "ro"])]),
    );
    std::fs::write(src.join("f"), "seen\n").unwrap();
    ok(&mounts(&b, &[], "add", &[], "ll", &r));
    let pid = b.state("ll")["pid"].as_i64().unwrap();
    // The init (a process that was running) reads it through its own root.
    let seen = std::fs::read_to_string(format!("/proc/{pid}/root/ro-dest/f")).unwrap();
    assert_eq!(seen, "seen\n");
    // With --exec-only: attached; processes started by exec may write, as their rules are rebuilt
    // from the mount table.
    ok(&mounts(&b, &[], "add", &["--exec-only"], "ll", &f));
    assert_eq!(
        ok(&exec(&b, "ll", "echo w > /rw-dest/w && cat /rw-dest/w")),
        "w\n"
    );
}

/// `strace -qq OPTS berth mounts add ID FILE`.
fn strace_add(b: &Bundle, id: &str, f: &str, opts: &[&str]) -> Output {
    output(
        Command::new("strace")
            .arg("-qq")
            .args(opts)
            .arg(BERTH)
            .args(["--root", b.state.to_str().unwrap(), "mounts", "add", id, f])
            .stdin(Stdio::null()),
        b.tmp.path(),
    )
}

#[test]
fn mounts_add_killed_at_every_syscall_leaves_nothing_outside_and_says_what_is_attached() {
    let Some(_) = tool("strace") else { return };
    let b = Bundle::new("sleep 1000");
    let src = b.host_path("crashsrc");
    running(&b, "cr", &[], &[]);
    let f = file(
        &b,
        "c.json",
        json!([
            bind(&src, "/c1", &["rbind"]),
            bind(&src, "/c2", &["rbind", "ro"])
        ]),
    );
    let rm = file(
        &b,
        "rm.json",
        json!([{"destination": "/c1"}, {"destination": "/c2"}]),
    );
    let host = mountinfo();
    // The syscalls of one add.
    let trace = b.tmp.path().join("trace");
    ok(&strace_add(&b, "cr", &f, &["-o", trace.to_str().unwrap()]));
    ok(&mounts(&b, &[], "remove", &[], "cr", &rm));
    let calls = syscalls_in(&trace);
    assert!(calls.len() > 30, "only {} syscalls traced", calls.len());
    for (name, n) in &calls {
        let inject = format!("inject={name}:signal=KILL:when={n}");
        let _ = strace_add(&b, "cr", &f, &["-o", "/dev/null", "-e", &inject]);
        let at = format!("killed at {name}#{n}");
        // Never a mount on the host's side.
        assert_eq!(host, mountinfo(), "{at}: the host's mount table changed");
        // The state says what is attached: every attached record is really there; a mount that is
        // there is recorded (attached, or attaching when the kill came between the two).
        let points = mount_points(&b, "cr");
        let records = live(&b, "cr");
        for v in &records {
            let d = v["destination"].as_str().unwrap();
            let status = v["status"].as_str().unwrap();
            assert!(status == "attached" || status == "attaching", "{at}: {v}");
            if status == "attached" {
                assert!(
                    points.iter().any(|p| p == d),
                    "{at}: {d} recorded but not mounted"
                );
            }
        }
        for d in ["/c1", "/c2"] {
            if points.iter().any(|p| p == d) {
                assert!(
                    records.iter().any(|v| v["destination"] == d),
                    "{at}: {d} mounted but not recorded"
                );
            }
        }
        // The next remove settles everything: nothing attached, nothing recorded.
        if !records.is_empty() {
            let present: Vec<Value> = records
                .iter()
                .map(|v| json!({"destination": v["destination"]}))
                .collect();
            let f2 = file(&b, "settle.json", Value::Array(present));
            let o = mounts(&b, &[], "remove", &[], "cr", &f2);
            assert!(o.status.success(), "{at}: {}", stderr(&o));
        }
        let points = mount_points(&b, "cr");
        assert!(
            !points.iter().any(|p| p == "/c1" || p == "/c2"),
            "{at}: left mounted {points:?}"
        );
        assert!(live(&b, "cr").is_empty(), "{at}: {:?}", live(&b, "cr"));
    }
}
