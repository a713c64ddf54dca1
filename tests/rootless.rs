//! berth run by a user other than root: a throwaway unprivileged user made for each test (useradd,
//! removed at the end), berth run through `setpriv` with its uid, gid and no supplementary groups,
//! state under its own XDG_RUNTIME_DIR. A container, the lifecycle verbs, the volume front end, exec,
//! and a spec asking for cgroups.

use kit::*;
use serde_json::json;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// A user that exists for one test.
struct User {
    name: String,
    uid: u32,
    gid: u32,
    /// Its XDG_RUNTIME_DIR.
    xdg: PathBuf,
}

impl User {
    fn new(tag: &str, tmp: &Path) -> User {
        let name = format!("brl{}{tag}", std::process::id());
        let out = Command::new("useradd")
            .args(["-M", "-N", "-s", "/bin/sh", &name])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "useradd: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let id = |flag: &str| -> u32 {
            let o = Command::new("id").args([flag, &name]).output().unwrap();
            String::from_utf8_lossy(&o.stdout).trim().parse().unwrap()
        };
        let (uid, gid) = (id("-u"), id("-g"));
        // No subordinate ids unless a test gives some (useradd adds a range where /etc/subuid exists).
        drop_subordinate_ids(&name);
        let xdg = tmp.join("xdg");
        std::fs::create_dir_all(&xdg).unwrap();
        std::os::unix::fs::chown(&xdg, Some(uid), Some(gid)).unwrap();
        User {
            name,
            uid,
            gid,
            xdg,
        }
    }

    /// `program` run as this user: its uid and gid, no supplementary groups (setpriv).
    fn command(&self, program: &Path) -> Command {
        let mut c = Command::new("setpriv");
        c.arg(format!("--reuid={}", self.uid))
            .arg(format!("--regid={}", self.gid))
            .arg("--clear-groups")
            .arg(program);
        c
    }

    /// `berth ARGS` as this user (the binary copied where the user can run it).
    fn berth(&self, b: &Bundle, args: &[&str]) -> Output {
        self.berth_with(b, args, true)
    }

    /// The same, with or without its XDG_RUNTIME_DIR.
    fn berth_with(&self, b: &Bundle, args: &[&str], xdg: bool) -> Output {
        let bin = b.tmp.path().join("berth-bin");
        if !bin.exists() {
            std::fs::copy(BERTH, &bin).unwrap();
        }
        let mut c = self.command(&bin);
        c.args(args).current_dir(&b.dir);
        if xdg {
            c.env("XDG_RUNTIME_DIR", &self.xdg);
        } else {
            c.env_remove("XDG_RUNTIME_DIR");
        }
        output(&mut c, b.tmp.path())
    }
}

impl Drop for User {
    fn drop(&mut self) {
        drop_subordinate_ids(&self.name);
        // Only processes of this throwaway user, which only this test ran.
        let _ = Command::new("pkill")
            .args(["-KILL", "-u", &self.name])
            .output();
        let _ = Command::new("userdel").arg(&self.name).output();
    }
}

/// Removes every subordinate uid and gid range of `name` from /etc/subuid and /etc/subgid.
fn drop_subordinate_ids(name: &str) {
    let _ = Command::new("usermod")
        .args([
            "--del-subuids",
            "1-4294967294",
            "--del-subgids",
            "1-4294967294",
            name,
        ])
        .output();
}

/// A bundle whose every file the user may read and whose rootfs the user owns (a rootless user's own
/// image), plus the user.
fn world(tag: &str, script: &str) -> (Bundle, User) {
    let b = Bundle::new(script);
    let u = User::new(tag, b.tmp.path());
    for p in [b.tmp.path(), b.dir.as_path()] {
        std::fs::set_permissions(p, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    }
    let out = Command::new("chown")
        .args(["-R", &format!("{}:{}", u.uid, u.gid)])
        .arg(&b.rootfs)
        .output()
        .unwrap();
    assert!(out.status.success());
    (b, u)
}

#[test]
fn a_container_runs_rootless_with_the_callers_id_as_its_root() {
    let (b, u) = world(
        "a",
        "id -u; cat /proc/self/uid_map; echo hi > /tmp/x && cat /tmp/x",
    );
    b.write();
    let out = u.berth(&b, &["run", "r1"]);
    let text = ok(&out);
    let lines: Vec<Vec<&str>> = text
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(lines[0], ["0"], "{text}");
    assert_eq!(lines[1], ["0", &u.uid.to_string(), "1"], "{text}");
    assert_eq!(lines[2], ["hi"], "{text}");
    // The state went under the user's XDG_RUNTIME_DIR, and nothing is left there.
    assert!(u.xdg.join("berth").is_dir());
    assert_eq!(std::fs::read_dir(u.xdg.join("berth")).unwrap().count(), 0);
}

#[test]
fn checkpoint_and_restore_are_refused_rootless_leaving_the_container_running() {
    let (b, u) = world("k", "sleep 100");
    b.write();
    let bundle = b.dir.to_str().unwrap().to_string();
    ok(&u.berth(&b, &["run", "-d", "--bundle", &bundle, "k1"]));
    let img = b.tmp.path().join("img");
    let img = img.to_str().unwrap();
    let e = fails(&u.berth(&b, &["checkpoint", "--image-path", img, "k1"]));
    assert!(e.contains("rootless") && e.contains("CRIU"), "{e}");
    assert!(ok(&u.berth(&b, &["state", "k1"])).contains("running"));
    let e = fails(&u.berth(
        &b,
        &[
            "restore",
            "-d",
            "--image-path",
            img,
            "--bundle",
            &bundle,
            "k2",
        ],
    ));
    assert!(e.contains("rootless") && e.contains("CRIU"), "{e}");
    assert!(!u.xdg.join("berth/k2").exists());
    assert!(!Path::new(img).exists(), "an image directory was made");
    ok(&u.berth(&b, &["delete", "-f", "k1"]));
}

#[test]
fn create_start_list_exec_delete_rootless() {
    let (mut b, u) = world("b", "sleep 100");
    // Asking for cgroups rootless (none is delegated here) is not a failure: noted in the log
    // (stderr only with --debug), as a rootless Podman run shows nothing for it.
    b.spec["linux"]["resources"] = json!({"pids": {"limit": 100}});
    b.write();
    let bundle = b.dir.to_str().unwrap().to_string();
    let e = stderr(&ok_output(
        u.berth(&b, &["--debug", "create", "--bundle", &bundle, "c1"]),
    ));
    assert!(
        e.contains("rootless") && e.contains("linux.resources"),
        "{e}"
    );
    ok(&u.berth(&b, &["start", "c1"]));
    let list = ok(&u.berth(&b, &["list"]));
    assert!(
        list.contains("c1") && list.contains("running") && list.contains(&u.name),
        "{list}"
    );
    let dir = u.xdg.join("berth/c1");
    assert_eq!(std::fs::metadata(&dir).unwrap().uid(), u.uid);
    let out = ok(&u.berth(
        &b,
        &["exec", "c1", "sh", "-c", "id -u; cat /proc/1/cmdline"],
    ));
    assert!(out.starts_with("0\nsleep"), "{out}");
    ok(&u.berth(&b, &["kill", "c1", "KILL"]));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !ok(&u.berth(&b, &["state", "c1"])).contains("stopped") {
        assert!(std::time::Instant::now() < deadline, "c1 did not stop");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    ok(&u.berth(&b, &["delete", "c1"]));
    assert!(!dir.exists());
}

#[test]
fn the_front_end_mounts_volumes_rootless() {
    let (b, u) = world("c", "true");
    let (ro, rw) = (b.host_path("ro"), b.host_path("rw"));
    std::fs::write(ro.join("f"), "read me\n").unwrap();
    for d in [&ro, &rw] {
        std::os::unix::fs::chown(d, Some(u.uid), Some(u.gid)).unwrap();
    }
    let rootfs = b.rootfs.to_str().unwrap().to_string();
    let out = ok(&u.berth(
        &b,
        &[
            "run",
            "--rootfs",
            &rootfs,
            "-v",
            &format!("{}:/ro", ro.display()),
            "-v",
            &format!("{}:/rw:rw", rw.display()),
            "--",
            "sh",
            "-c",
            "cat /ro/f; (echo x > /ro/n) 2>/dev/null || echo ro-refused; echo y > /rw/n && echo rw-ok",
        ],
    ));
    assert_eq!(out, "read me\nro-refused\nrw-ok\n");
    // Written as the container's root, which is the user on the host.
    assert_eq!(std::fs::metadata(rw.join("n")).unwrap().uid(), u.uid);
    assert!(!ro.join("n").exists());
    // The mount points are berth's own (an overlay's tmpfs), never made in the user's rootfs.
    assert!(!b.rootfs.join("ro").exists() && !b.rootfs.join("rw").exists());
}

/// As a non-root user, a `--rootfs DIR` the user cannot write (root's, read-only to others) still
/// runs with volumes at destinations it lacks: the mount points go into berth's overlay, and the
/// directory is left exactly as it was.
#[test]
fn the_front_end_never_writes_into_a_dir_rootfs_rootless() {
    let (b, u) = world("e", "true");
    // Root's again, and nobody else may write it.
    ok(&output(
        Command::new("chown").args(["-R", "0:0"]).arg(&b.rootfs),
        b.tmp.path(),
    ));
    std::fs::set_permissions(
        &b.rootfs,
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let before: Vec<_> = std::fs::read_dir(&b.rootfs)
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .collect();
    let work = b.host_path("work");
    std::os::unix::fs::chown(&work, Some(u.uid), Some(u.gid)).unwrap();
    let rootfs = b.rootfs.to_str().unwrap().to_string();
    let out = ok(&u.berth(
        &b,
        &[
            "run",
            "--rootfs",
            &rootfs,
            "-v",
            &format!("{}:/work:rw", work.display()),
            "-v",
            &format!("{}:/deep/cache", work.display()),
            "--",
            "sh",
            "-c",
            "echo out > /work/o && cat /deep/cache/o",
        ],
    ));
    assert_eq!(out, "out\n");
    let after: Vec<_> = std::fs::read_dir(&b.rootfs)
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert_eq!(before, after, "the rootfs changed");
}

fn ok_output(o: Output) -> Output {
    assert!(
        o.status.success(),
        "exit {:?}\nstdout: {}\nstderr: {}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    o
}

#[test]
fn subordinate_ids_give_the_container_a_full_range() {
    let (mut b, u) = world(
        "d",
        "cat /proc/self/uid_map; touch /tmp/f && chown 1000:1000 /tmp/f && stat -c %u /tmp/f",
    );
    for set in ["bounding", "effective", "permitted"] {
        b.spec["process"]["capabilities"][set] = json!(["CAP_CHOWN"]);
    }
    // A subordinate range for the throwaway user (removed with it).
    let base = 400_000 + (std::process::id() % 1000) * 70_000;
    let range = format!("{base}-{}", base + 65_535);
    let out = Command::new("usermod")
        .args(["--add-subuids", &range, "--add-subgids", &range, &u.name])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "usermod: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    b.write();
    let text = ok(&u.berth(&b, &["run", "s1"]));
    let lines: Vec<Vec<&str>> = text
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(lines[0], ["0", &u.uid.to_string(), "1"], "{text}");
    assert_eq!(lines[1], ["1", &base.to_string(), "65536"], "{text}");
    assert_eq!(lines[2], ["1000"], "{text}");
}

#[test]
fn spec_rootless_writes_runcs_rootless_spec_and_it_runs() {
    let (mut b, u) = world("e", "true");
    // The user writes the spec itself, as with `runc spec --rootless`.
    let dir = b.tmp.path().join("rl-bundle");
    std::fs::create_dir(&dir).unwrap();
    std::os::unix::fs::chown(&dir, Some(u.uid), Some(u.gid)).unwrap();
    ok(&u.berth(
        &b,
        &["spec", "--rootless", "--bundle", dir.to_str().unwrap()],
    ));
    let spec: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("config.json")).unwrap()).unwrap();
    let ns: Vec<&str> = spec["linux"]["namespaces"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["type"].as_str().unwrap())
        .collect();
    assert!(ns.contains(&"user") && !ns.contains(&"network"), "{ns:?}");
    assert_eq!(
        spec["linux"]["uidMappings"],
        json!([{"containerID": 0, "hostID": u.uid, "size": 1}])
    );
    let sys = spec["mounts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["destination"] == "/sys")
        .unwrap();
    assert_eq!(sys["type"], "bind", "{sys}");
    // It runs as that user, on the test's rootfs.
    b.spec = spec;
    b.spec["root"]["path"] = json!(b.rootfs);
    b.spec["process"]["terminal"] = json!(false);
    b.spec["process"]["args"] = json!([
        "sh",
        "-c",
        "id -u; grep ' /sys ' /proc/self/mountinfo | grep -c ' ro,'"
    ]);
    b.write();
    let out = ok(&u.berth(&b, &["run", "sp1"]));
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "0", "{out}");
    assert!(
        lines[1].parse::<u32>().unwrap() >= 1,
        "/sys is not bound read-only: {out}"
    );
}

#[test]
fn a_state_root_another_user_planted_is_refused() {
    // Without XDG_RUNTIME_DIR the state root is /tmp/berth-UID, a name anyone can take first.
    let (b, victim) = world("vic", "true");
    b.write();
    let other = b.tmp.path().join("other");
    std::fs::create_dir(&other).unwrap();
    let attacker = User::new("atk", &other);
    let planted = PathBuf::from(format!("/tmp/berth-{}", victim.uid));
    /// Removes the planted path, even when the test fails.
    struct Planted(PathBuf);
    impl Drop for Planted {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.0);
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
    let guard = Planted(planted.clone());
    let cleanup = || drop(Planted(planted.clone()));
    cleanup();
    // The attacker's directory, with a container of theirs in it.
    std::fs::create_dir_all(planted.join("evil")).unwrap();
    std::fs::write(planted.join("evil/state.json"), "{}").unwrap();
    let out = Command::new("chown")
        .args(["-R", &format!("{}:{}", attacker.uid, attacker.gid)])
        .arg(&planted)
        .output()
        .unwrap();
    assert!(out.status.success());
    std::fs::set_permissions(
        &planted,
        std::os::unix::fs::PermissionsExt::from_mode(0o777),
    )
    .unwrap();
    for args in [&["list"][..], &["delete", "evil"], &["state", "evil"]] {
        let e = fails(&victim.berth_with(&b, args, false));
        assert!(
            e.contains("state root") && e.contains(&format!("owned by uid {}", attacker.uid)),
            "{args:?}: {e}"
        );
    }
    // A symlink there (to the attacker's directory) is refused too.
    std::fs::rename(&planted, other.join("moved")).unwrap();
    std::os::unix::fs::symlink(other.join("moved"), &planted).unwrap();
    let e = fails(&victim.berth_with(&b, &["list"], false));
    assert!(e.contains("not a directory"), "{e}");
    cleanup();
    // The victim's own, but open to others: refused; made by berth itself: 0700, and used.
    std::fs::create_dir(&planted).unwrap();
    std::os::unix::fs::chown(&planted, Some(victim.uid), Some(victim.gid)).unwrap();
    std::fs::set_permissions(
        &planted,
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let e = fails(&victim.berth_with(&b, &["list"], false));
    assert!(e.contains("mode 755"), "{e}");
    cleanup();
    ok(&victim.berth_with(&b, &["run", "mine"], false));
    assert_eq!(std::fs::metadata(&planted).unwrap().mode() & 0o777, 0o700);
    drop(guard);
}

/// Gives the throwaway user a subordinate uid and gid range of 65536 (removed with it); returns
/// its first id.
fn give_subordinate_ids(u: &User, salt: u32) -> u32 {
    let base = 400_000 + ((std::process::id() + salt) % 1000) * 70_000;
    let range = format!("{base}-{}", base + 65_535);
    let out = Command::new("usermod")
        .args(["--add-subuids", &range, "--add-subgids", &range, &u.name])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "usermod: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    base
}

/// Rootless Podman with `--runtime berth`, as a throwaway user with its own subordinate range and
/// vfs storage in the test's temp dir: berth runs in Podman's user namespace as its uid 0, where it
/// lacks host root, and must know it (state under XDG_RUNTIME_DIR, device nodes bound, no devpts gid
/// its namespace does not map, cgroups skipped quietly). The everyday operations, checked from
/// inside the container.
#[test]
fn rootless_podman_runs_everyday_operations_on_berth() {
    let Some(podman) = tool("podman") else { return };
    let (b, u) = world("p", "true");
    give_subordinate_ids(&u, 1);
    let home = b.host_path("home");
    let vol = b.host_path("vol");
    std::fs::write(vol.join("file"), "data\n").unwrap();
    for p in [&home, &vol] {
        std::os::unix::fs::chown(p, Some(u.uid), Some(u.gid)).unwrap();
    }
    let bin = b.tmp.path().join("berth-bin");
    std::fs::copy(BERTH, &bin).unwrap();
    let image = b.tmp.path().join("image.tar");
    ok(&output(
        Command::new("tar")
            .arg("-C")
            .arg(&b.rootfs)
            .arg("-cf")
            .arg(&image)
            .arg("."),
        b.tmp.path(),
    ));
    std::fs::set_permissions(&image, std::os::unix::fs::PermissionsExt::from_mode(0o644)).unwrap();
    let podman = |args: &[&str]| -> Output {
        let mut c = u.command(&podman);
        c.args([
            "--storage-driver",
            "vfs",
            "--cgroup-manager",
            "cgroupfs",
            "--events-backend",
            "file",
        ])
        .arg("--runtime")
        .arg(&bin)
        .args(args)
        .env("HOME", &home)
        .env("XDG_RUNTIME_DIR", &u.xdg)
        .env("XDG_CONFIG_HOME", home.join(".config"))
        .env("XDG_DATA_HOME", home.join(".local/share"))
        .current_dir(&home);
        output(&mut c, b.tmp.path())
    };
    ok(&podman(&[
        "import",
        image.to_str().unwrap(),
        "localhost/bb:1",
    ]));
    let run = |extra: &[&str], cmd: &[&str]| {
        let mut a = vec!["run", "--rm", "--net", "none"];
        a.extend_from_slice(extra);
        a.push("localhost/bb:1");
        a.extend_from_slice(cmd);
        podman(&a)
    };
    assert_eq!(ok(&run(&[], &["id", "-u"])), "0\n");
    assert_eq!(run(&[], &["sh", "-c", "exit 3"]).status.code(), Some(3));
    ok(&podman(&[
        "run",
        "-d",
        "--name",
        "rp1",
        "--net",
        "none",
        "localhost/bb:1",
        "sleep",
        "100",
    ]));
    assert_eq!(
        ok(&podman(&["exec", "rp1", "echo", "exec-ok"])),
        "exec-ok\n"
    );
    ok(&podman(&["stop", "-t", "1", "rp1"]));
    ok(&podman(&["rm", "-f", "rp1"]));
    let v = vol.display().to_string();
    let ro = format!("{v}:/v:ro");
    assert_eq!(
        ok(&run(
            &["-v", &ro],
            &[
                "sh",
                "-c",
                "cat /v/file; touch /v/x 2>/dev/null || echo ro-ok"
            ]
        )),
        "data\nro-ok\n"
    );
    let rw = format!("{v}:/v");
    assert_eq!(
        ok(&run(
            &["-v", &rw],
            &["sh", "-c", "echo w > /v/w && cat /v/w"]
        )),
        "w\n"
    );
    assert_eq!(std::fs::read_to_string(vol.join("w")).unwrap(), "w\n");
    assert_eq!(
        ok(&run(&["--userns=keep-id"], &["id", "-u"])),
        format!("{}\n", u.uid)
    );
    assert_eq!(
        ok(&run(
            &["--read-only"],
            &[
                "sh",
                "-c",
                "touch /x 2>/dev/null || echo ro-root; touch /tmp/y && echo tmp-ok"
            ]
        )),
        "ro-root\ntmp-ok\n"
    );
    assert_eq!(
        ok(&run(
            &["--tmpfs", "/x:mode=1777"],
            &["stat", "-c", "%a", "/x"]
        )),
        "1777\n"
    );
    // Host device nodes, bound: /dev/null is 1:3 and works.
    assert_eq!(
        ok(&run(
            &[],
            &[
                "sh",
                "-c",
                "stat -c %t:%T /dev/null; echo x > /dev/null && echo null-ok"
            ]
        )),
        "1:3\nnull-ok\n"
    );
    // berth's state went under the user's XDG_RUNTIME_DIR (Podman's --root for its runtime is
    // there too), never /run/berth.
    assert!(!Path::new("/run/berth").join("rp1").exists());
}

/// `unshare -Ur berth run`: uid 0 of a user namespace that does not map host root. berth knows it
/// lacks host root: state under $XDG_RUNTIME_DIR/berth, /dev's nodes bound from the host, no
/// setgroups, cgroups skipped without a word on stderr.
#[test]
fn under_unshare_ur_berth_knows_it_lacks_host_root() {
    let b = Bundle::new("true");
    let xdg = b.host_path("xdg");
    std::fs::set_permissions(&xdg, std::os::unix::fs::PermissionsExt::from_mode(0o700)).unwrap();
    std::fs::set_permissions(
        b.tmp.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let rootfs = b.rootfs.to_str().unwrap().to_string();
    let o = output(
        Command::new("unshare")
            .args(["-Ur"])
            .arg(BERTH)
            .args(["run", "--rootfs", &rootfs, "--id", "ur1", "--", "sh", "-c"])
            .arg("id -u; stat -c %t:%T /dev/null; echo x > /dev/null && echo null-ok")
            .env("XDG_RUNTIME_DIR", &xdg),
        b.tmp.path(),
    );
    assert_eq!(ok(&o), "0\n1:3\nnull-ok\n");
    assert_eq!(stderr(&o), "", "nothing on stderr");
    assert!(
        xdg.join("berth").is_dir(),
        "the state root is under XDG_RUNTIME_DIR"
    );
    assert_eq!(std::fs::read_dir(xdg.join("berth")).unwrap().count(), 0);
    assert!(!Path::new("/run/berth/ur1").exists());
}

/// `--rootfs oci:` as an ordinary user with a subordinate range: berth enters a user namespace of
/// its own (the user as 0, its range as 1..), unpacks the layers into the user's own cache
/// (`$XDG_CACHE_HOME/berth/layers`, 0700) with their owners inside the range, whiteouts and opaque
/// directories as an unprivileged overlay reads them (`user.overlay.*`), and runs the container.
#[test]
fn an_oci_image_runs_as_an_ordinary_user() {
    use kit::oci::{entry, write_layout};
    let (b, u) = world("o", "true");
    let base = give_subordinate_ids(&u, 2);
    let layout = b.tmp.path().join("img");
    let mut t = tar::Builder::new(Vec::new());
    t.follow_symlinks(false);
    t.append_dir_all(".", &b.rootfs).unwrap();
    entry(&mut t, "data/", b"");
    entry(&mut t, "data/keep", b"keep\n");
    entry(&mut t, "data/gone", b"gone\n");
    entry(&mut t, "opq/", b"");
    entry(&mut t, "opq/a", b"a\n");
    let mut h = tar::Header::new_gnu();
    h.set_mode(0o644);
    h.set_uid(1000);
    h.set_gid(1000);
    h.set_size(2);
    h.set_entry_type(tar::EntryType::Regular);
    t.append_data(&mut h, "owned", &b"o\n"[..]).unwrap();
    let mut top = tar::Builder::new(Vec::new());
    entry(&mut top, "data/.wh.gone", b"");
    entry(&mut top, "opq/.wh..wh..opq", b"");
    entry(&mut top, "opq/b", b"b\n");
    write_layout(
        &layout,
        &[
            (t.into_inner().unwrap(), true),
            (top.into_inner().unwrap(), false),
        ],
        json!({"Cmd": ["sh"]}),
        "v1",
    );
    ok(&output(
        Command::new("chmod").args(["-R", "a+rX"]).arg(&layout),
        b.tmp.path(),
    ));
    let cache = b.host_path("cache");
    std::os::unix::fs::chown(&cache, Some(u.uid), Some(u.gid)).unwrap();
    let bin = b.tmp.path().join("berth-bin");
    std::fs::copy(BERTH, &bin).unwrap();
    let image = format!("oci:{}:v1", layout.display());
    let mut c = u.command(&bin);
    c.args(["run", "--rootfs", &image, "--", "sh", "-c"])
        .arg("id -u; ls /data; ls /opq; stat -c %u /owned; touch /x 2>/dev/null || echo ro-root")
        .env("XDG_RUNTIME_DIR", &u.xdg)
        .env("XDG_CACHE_HOME", &cache)
        .current_dir(b.tmp.path());
    let out = ok(&output(&mut c, b.tmp.path()));
    assert_eq!(out, "0\nkeep\nb\n1000\nro-root\n");
    // The user's own cache, and the layer's owners are the user's subordinate ids on the host.
    let layers = cache.join("berth/layers");
    let st = std::fs::metadata(&layers).unwrap();
    assert_eq!((st.uid(), st.mode() & 0o777), (u.uid, 0o700));
    let owned = walk_find(&layers, "owned").expect("the unpacked file");
    assert_eq!(std::fs::symlink_metadata(owned).unwrap().uid(), base + 999);
    // A cache another local user planted (theirs, open to all) is never used.
    let planted = b.host_path("planted");
    std::fs::create_dir_all(planted.join("berth/layers")).unwrap();
    for p in [
        planted.clone(),
        planted.join("berth"),
        planted.join("berth/layers"),
    ] {
        std::os::unix::fs::chown(&p, Some(65534), Some(65534)).unwrap();
        std::fs::set_permissions(&p, std::os::unix::fs::PermissionsExt::from_mode(0o777)).unwrap();
    }
    let mut c = u.command(&bin);
    c.args(["run", "--rootfs", &image, "--", "true"])
        .env("XDG_RUNTIME_DIR", &u.xdg)
        .env("XDG_CACHE_HOME", &planted)
        .current_dir(b.tmp.path());
    let e = fails(&output(&mut c, b.tmp.path()));
    assert!(e.contains("image cache") && e.contains("never used"), "{e}");
    assert_eq!(
        std::fs::read_dir(planted.join("berth/layers"))
            .unwrap()
            .count(),
        0
    );
}

/// The first path named `name` below `dir` (no symlink followed).
fn walk_find(dir: &Path, name: &str) -> Option<PathBuf> {
    for e in std::fs::read_dir(dir).ok()?.flatten() {
        let p = e.path();
        if e.file_name() == name {
            return Some(p);
        }
        if e.file_type().ok()?.is_dir()
            && let Some(found) = walk_find(&p, name)
        {
            return Some(found);
        }
    }
    None
}
