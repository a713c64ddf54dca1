//! Hostile bundles under a host mount policy: each test aims an attack at decoys the test made (a
//! decoy volume, a decoy character device that is /dev/null's number, a sleeper's namespaces) and
//! checks that the kernel, not Landlock, refuses it; and that every refusal creates nothing.

use kit::*;
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

struct World {
    b: Bundle,
    vol: PathBuf,
    policy: PathBuf,
}

/// A bundle, a decoy volume root `vol`, and a policy whose `$VOL` is that root and whose rootfs root
/// is the bundle (unless the policy says otherwise).
fn world(script: &str, mut policy: Value) -> World {
    let b = Bundle::new(script);
    let vol = b.host_path("vol");
    std::fs::create_dir(vol.join("sub")).unwrap();
    if policy.get("rootfs").is_none() {
        policy["rootfs"] = json!([{"path": b.dir, "access": "rw"}]);
    }
    let path = b.tmp.path().join("policy.json");
    let text = policy.to_string().replace("$VOL", vol.to_str().unwrap());
    std::fs::write(&path, text).unwrap();
    World {
        b,
        vol,
        policy: path,
    }
}

fn ro_root() -> Value {
    json!({"roots": [{"path": "$VOL", "access": "ro"}]})
}

impl World {
    fn mount(&mut self, dest: &str, opts: &[&str]) {
        let src = self.vol.clone();
        self.b.add_mount(
            json!({"destination": dest, "type": "bind", "source": src, "options": opts}),
        );
    }
    fn args<'a>(&'a self, verb: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
        let mut v = vec!["--policy", self.policy.to_str().unwrap(), verb];
        v.extend_from_slice(extra);
        v.extend_from_slice(&["--bundle", self.b.dir.to_str().unwrap()]);
        v
    }
    fn run(&self, id: &str) -> std::process::Output {
        let mut a = self.args("run", &[]);
        a.push(id);
        self.b.berth(&a)
    }
    /// `run` in a private mount namespace after `setup` (e.g. a submount in the volume).
    fn run_with(&self, id: &str, setup: &str) -> std::process::Output {
        run_from_shell(
            &self.b,
            id,
            setup,
            &format!("--policy {}", self.policy.display()),
            true,
        )
    }
    #[track_caller]
    fn refused(&self, id: &str, needle: &str) -> String {
        self.b.refused(&self.run(id), id, needle)
    }
    fn check_json(&self) -> (Option<i32>, Value) {
        self.b.write();
        let o = self.b.berth(&self.args("check", &["--format", "json"]));
        (
            o.status.code(),
            serde_json::from_slice(&o.stdout).unwrap_or(Value::Null),
        )
    }
}

fn mounted_sub(w: &World) -> String {
    format!(
        "mount -t tmpfs -o size=1m decoy {}",
        w.vol.join("sub").display()
    )
}

#[test]
fn ro_plus_rrw_from_an_ro_root_is_refused_and_check_says_so() {
    let mut w = world("touch /v/x && echo wrote", ro_root());
    w.mount("/v", &["rbind", "ro", "rrw"]);
    w.refused("rrw1", "at most ro");
    let (code, v) = w.check_json();
    assert_eq!(code, Some(1));
    let m = v["mounts"].as_array().unwrap().last().unwrap();
    assert_eq!(m["verdict"], "refused", "{m}");
    assert!(!w.vol.join("x").exists());
}

#[test]
fn an_ro_root_is_read_only_as_a_whole_tree_without_landlock() {
    // A top-only ro rbind with a writable submount, Landlock switched off by the bundle: the kernel
    // still refuses writes everywhere in it, and nosuid/nodev hold on the submount too.
    let mut w = world(
        "touch /v/sub/x 2>/dev/null && echo sub-written || echo sub-ro; grep ' /v/sub ' /proc/self/mountinfo",
        ro_root(),
    );
    w.mount("/v", &["rbind", "ro"]);
    w.b.spec["annotations"] = json!({"berth.landlock": "off"});
    let out = ok(&w.run_with("rro1", &mounted_sub(&w)));
    assert!(out.starts_with("sub-ro\n"), "{out}");
    let opts = out
        .lines()
        .nth(1)
        .unwrap()
        .split(' ')
        .nth(5)
        .unwrap()
        .to_string();
    for o in ["ro", "nosuid", "nodev"] {
        assert!(opts.split(',').any(|x| x == o), "{o} missing in {opts}");
    }
}

#[test]
fn a_device_node_in_a_volume_without_special_files_cannot_be_opened() {
    // The decoy has /dev/null's numbers, so nothing is harmed if the check fails.
    let mut w = world(
        "echo x > /v/decoy 2>/dev/null && echo device-opened || echo device-refused",
        json!({"roots": [{"path": "$VOL", "access": "rw"}]}),
    );
    nix::sys::stat::mknod(
        &w.vol.join("decoy"),
        nix::sys::stat::SFlag::S_IFCHR,
        nix::sys::stat::Mode::from_bits_truncate(0o666),
        nix::sys::stat::makedev(1, 3),
    )
    .unwrap();
    w.mount("/v", &["rbind", "rw"]);
    assert_eq!(ok(&w.run("dev1")), "device-refused\n");
}

#[test]
fn the_landlock_annotation_cannot_loosen_the_policy() {
    let mut policy = ro_root();
    policy["landlock"] = json!("enforce");
    let mut w = world("true", policy);
    w.b.spec["annotations"] = json!({"berth.landlock": "off"});
    let log = w.b.tmp.path().join("log");
    let mut a = vec!["--log", log.to_str().unwrap()];
    a.extend(w.args("create", &[]));
    a.push("ll1");
    ok(&w.b.berth(&a));
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(w.b.state.join("ll1/confinement.json")).unwrap())
            .unwrap();
    assert_eq!(report["landlock_mode"], "enforce", "{report}");
    assert_eq!(report["landlock"]["status"], "full", "{report}");
    assert!(
        std::fs::read_to_string(&log)
            .unwrap()
            .contains("landlock (enforce) full")
    );
    ok(&w.b.berth(&["delete", "--force", "ll1"]));
}

#[test]
fn volumes_under_dev_work_with_landlock() {
    // Landlock rules come from the mounted fds: nothing walks /dev's children (whose stdio links made
    // the path-based rules fail with ELOOP).
    let mut w = world("ls /dev/vol >/dev/null && echo listed", ro_root());
    w.mount("/dev/vol", &["rbind", "ro"]);
    w.b.spec["annotations"] = json!({"berth.landlock": "enforce"});
    assert_eq!(ok(&w.run("ldev1")), "listed\n");
}

#[test]
fn the_rootfs_is_vetted() {
    // No rootfs rule: refused.
    let mut w = world(
        "true",
        json!({"roots": [{"path": "$VOL", "access": "rw"}], "rootfs": []}),
    );
    w.refused("rootfs1", "root.path");
    // The host's / as rootfs: refused, even with a rule for the bundle.
    let mut policy = ro_root();
    policy["rootfs"] = json!([{"path": "/tmp", "access": "rw"}]);
    w = world("true", policy);
    w.b.spec["root"]["path"] = json!("/");
    w.refused("rootfs2", "root.path");
    // An ro rootfs root forces root.readonly, and check says so.
    let mut w = world(
        "touch /x 2>/dev/null && echo root-written || echo root-ro",
        json!({
        "roots": [{"path": "$VOL", "access": "rw"}], "rootfs": [{"path": "$VOL/..", "access": "ro"}]}),
    );
    // ($VOL/.. is not a normal path: the policy is refused, naming the key.)
    assert!(fails(&w.run("rootfs3")).contains("rootfs[0].path"));
    let parent = w.b.dir.parent().unwrap().to_path_buf();
    std::fs::write(
        &w.policy,
        json!({"roots": [{"path": w.vol, "access": "rw"}],
        "rootfs": [{"path": parent, "access": "ro"}]})
        .to_string(),
    )
    .unwrap();
    assert_eq!(ok(&w.run("rootfs4")), "root-ro\n");
    let (_, v) = w.check_json();
    let f = &v["bundle"].as_array().unwrap()[0];
    assert_eq!(f["field"], "root.path");
    assert_eq!(f["note"], "root.readonly forced");
    // A rootfs reached through a symlink out of the allowed root is refused.
    let link = w.b.tmp.path().join("escape");
    std::os::unix::fs::symlink("/", &link).unwrap();
    w.b.spec["root"]["path"] = json!(link.join("tmp"));
    w.refused("rootfs5", "root.path");
}

#[test]
fn hooks_run_only_when_the_policy_lists_them() {
    let mut w = world("true", ro_root());
    let marker = w.b.tmp.path().join("hook-ran");
    let sh = w.b.rootfs.join("bin/busybox");
    w.b.spec["hooks"] = json!({"prestart": [{"path": sh, "args": ["sh", "-c", format!("touch {}", marker.display())]}]});
    w.refused("hook1", "hooks.prestart[0]");
    assert!(!marker.exists(), "a refused hook ran");
    let (code, v) = w.check_json();
    assert_eq!(code, Some(1));
    assert!(
        v["bundle"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["field"] == "hooks.prestart[0]" && f["verdict"] == "refused")
    );
    let mut policy: Value =
        serde_json::from_str(&std::fs::read_to_string(&w.policy).unwrap()).unwrap();
    policy["hooks"] = json!([sh]);
    std::fs::write(&w.policy, policy.to_string()).unwrap();
    ok(&w.run("hook2"));
    assert!(marker.exists());
}

#[test]
fn the_tenant_comes_from_the_caller() {
    let policy = json!({"roots": [{"path": "$VOL", "access": "rw"}],
        "tenants": {"ro-team": {"roots": ["$VOL"], "access": "ro"}, "rw-team": {"roots": ["$VOL"], "access": "rw"}}});
    let mut w = world("touch /v/x && echo wrote", policy);
    w.mount("/v", &["rbind", "rw"]);
    // No tenant named by the caller: refused.
    w.refused("ten1", "no tenant is named");
    // The bundle naming itself a tenant is not the caller naming one.
    w.b.spec["annotations"] = json!({"berth.tenant": "rw-team"});
    w.refused("ten2", "berth.tenant");
    // BERTH_TENANT from the caller; the bundle cannot claim another.
    let mut a = w.args("run", &[]);
    a.push("ten3");
    let o = output(w.b.cmd(&a).env("BERTH_TENANT", "ro-team"), w.b.tmp.path());
    assert!(fails(&o).contains("caller's tenant is \"ro-team\""));
    w.b.spec["annotations"] = json!({});
    let mut a = w.args("run", &[]);
    a.push("ten4");
    let o = output(w.b.cmd(&a).env("BERTH_TENANT", "rw-team"), w.b.tmp.path());
    assert_eq!(ok(&o), "wrote\n");
}

/// A change to a spec.
type Change = Box<dyn Fn(&mut Value)>;

#[test]
fn the_policy_bounds_caps_namespaces_masks_sysfs_and_devices() {
    let cases: Vec<(&str, Change, &str)> = vec![
        (
            "caps",
            Box::new(|s: &mut Value| {
                s["process"]["capabilities"]["bounding"] = json!(["CAP_SYS_ADMIN"])
            }),
            "process.capabilities.bounding",
        ),
        (
            "mknod",
            Box::new(|s: &mut Value| {
                s["process"]["capabilities"]["bounding"] = json!(["CAP_MKNOD"])
            }),
            "CAP_MKNOD",
        ),
        (
            "nopid",
            Box::new(|s: &mut Value| {
                s["linux"]["namespaces"]
                    .as_array_mut()
                    .unwrap()
                    .retain(|n| n["type"] != "pid")
            }),
            "no pid namespace",
        ),
        (
            "join",
            Box::new(|s: &mut Value| {
                s["linux"]["namespaces"]
                    .as_array_mut()
                    .unwrap()
                    .iter_mut()
                    .filter(|n| n["type"] == "network")
                    .for_each(|n| n["path"] = json!("/proc/1/ns/net"))
            }),
            "container.join_namespaces",
        ),
        (
            "masks",
            Box::new(|s: &mut Value| s["linux"]["maskedPaths"] = json!(["/proc/kcore"])),
            "linux.maskedPaths",
        ),
        (
            "sysfs",
            Box::new(|s: &mut Value| {
                for m in s["mounts"].as_array_mut().unwrap() {
                    if m["type"] == "sysfs" {
                        m["options"] = json!(["nosuid", "noexec", "nodev", "rw"]);
                    }
                }
            }),
            "container.writable_sysfs",
        ),
        (
            "devices",
            Box::new(|s: &mut Value| {
                s["linux"]["devices"] =
                    json!([{"path": "/dev/decoy", "type": "c", "major": 1, "minor": 3}])
            }),
            "linux.devices",
        ),
    ];
    for (name, change, needle) in &cases {
        let mut w = world("true", ro_root());
        change(&mut w.b.spec);
        w.refused(&format!("lim-{name}"), needle);
        let (code, v) = w.check_json();
        assert_eq!(code, Some(1), "{name}");
        assert!(
            v["bundle"]
                .as_array()
                .unwrap()
                .iter()
                .any(|f| f["verdict"] == "refused"),
            "{name}: {v}"
        );
    }
    // Each is allowed when the policy says so.
    let policy = json!({"roots": [{"path": "$VOL", "access": "ro"}], "container": {
        "max_capabilities": ["CAP_SYS_ADMIN", "CAP_MKNOD", "CAP_KILL", "CAP_AUDIT_WRITE", "CAP_NET_BIND_SERVICE"],
        "omit_namespaces": true, "relax_masked_paths": true, "writable_sysfs": true, "devices": true}});
    for (name, change, _) in cases.iter().filter(|c| c.0 != "join") {
        let mut w = world("true", policy.clone());
        change(&mut w.b.spec);
        ok(&w.run(&format!("lim-ok-{name}")));
    }
}

#[test]
fn sysctls_never_reach_the_namespace_berth_runs_in() {
    // A bundle that "joins" the network namespace berth itself runs in must not set its sysctls
    // (tests/pods.rs has the pod's own namespace, where they are written). berth runs in a private
    // network namespace of the test's: that is the decoy, never the host's.
    let mut b = Bundle::new("true");
    for ns in b.spec["linux"]["namespaces"].as_array_mut().unwrap() {
        if ns["type"] == "network" {
            ns["path"] = json!("/proc/self/ns/net");
        }
    }
    b.spec["linux"]["sysctl"] = json!({"net.ipv4.ip_default_ttl": "99"});
    b.write();
    let script = format!(
        "{} --root {} run --bundle {} sysctl1; echo rc=$?; cat /proc/sys/net/ipv4/ip_default_ttl",
        BERTH,
        b.state.display(),
        b.dir.display()
    );
    let out = output(
        Command::new("unshare").args(["--net", "sh", "-c", &script]),
        b.tmp.path(),
    );
    let (o, e) = (stdout(&out), stderr(&out));
    assert!(
        e.contains("linux.sysctl.net.ipv4.ip_default_ttl") && e.contains("host's own"),
        "{e}"
    );
    assert!(o.contains("rc=1") && !o.contains("99"), "{o}");
}

#[test]
fn a_hook_that_never_reads_a_large_state_is_killed_at_its_timeout() {
    let mut b = Bundle::new("true");
    // An annotation of 1 MiB makes the state far larger than a pipe buffer (64 KiB).
    b.spec["annotations"] = json!({"big": "x".repeat(1 << 20)});
    let sh = b.rootfs.join("bin/busybox");
    b.spec["hooks"] =
        json!({"prestart": [{"path": sh, "args": ["sh", "-c", "sleep 30"], "timeout": 1}]});
    let start = std::time::Instant::now();
    // `timeout` is the test's own watchdog: without the fix berth blocks writing the state forever.
    b.write();
    let o = output(
        Command::new("timeout")
            .args([
                "-s",
                "KILL",
                "20",
                BERTH.as_str(),
                "--root",
                b.state.to_str().unwrap(),
                "run",
                "--bundle",
                b.dir.to_str().unwrap(),
                "bigstate",
            ])
            .stdin(Stdio::null()),
        b.tmp.path(),
    );
    let e = fails(&o);
    assert!(e.contains("timed out after 1 s"), "{e}");
    assert!(start.elapsed() < std::time::Duration::from_secs(15));
}

#[test]
fn destinations_are_judged_where_they_point() {
    let mut b = Bundle::new("true");
    // Out of the /sys/fs/cgroup allow-list with `..`.
    b.add_mount(
        json!({"destination": "/sys/fs/cgroup/../../kernel", "type": "tmpfs", "source": "tmpfs"}),
    );
    let e = fails(&b.run("dest1"));
    assert!(e.contains("sysfs"), "{e}");
    // Destinations that are / in disguise.
    for (i, d) in ["/..", "/x/..", "/tmp/../."].iter().enumerate() {
        b.spec["mounts"].as_array_mut().unwrap().pop();
        b.add_mount(json!({"destination": d, "type": "tmpfs", "source": "tmpfs"}));
        let e = fails(&b.run(&format!("dest2-{i}")));
        assert!(e.contains("cover the whole rootfs"), "{d}: {e}");
    }
    // And through an image symlink to /.
    std::os::unix::fs::symlink("/", b.rootfs.join("zz")).unwrap();
    b.spec["mounts"].as_array_mut().unwrap().pop();
    b.add_mount(json!({"destination": "/zz", "type": "tmpfs", "source": "tmpfs"}));
    let e = fails(&b.run("dest3"));
    assert!(e.contains("rootfs itself"), "{e}");
}

#[test]
fn front_end_volumes_are_whole_trees() {
    let b = Bundle::new("true");
    let vol = b.host_path("fe");
    std::fs::create_dir(vol.join("sub")).unwrap();
    let script = format!(
        "mount -t tmpfs -o size=1m decoy {sub}; exec {berth} --root {state} run --rootfs {rootfs} -v {vol}:/v -- sh -c 'touch /v/sub/x 2>/dev/null && echo sub-written || echo sub-ro; grep \" /v/sub \" /proc/self/mountinfo'",
        sub = vol.join("sub").display(),
        berth = BERTH,
        state = b.state.display(),
        rootfs = b.rootfs.display(),
        vol = vol.display()
    );
    let o = sh_in_private_mount_ns(&script, b.tmp.path());
    let out = ok(&o);
    assert!(out.starts_with("sub-ro\n"), "{out}");
    let opts = out.lines().nth(1).unwrap().split(' ').nth(5).unwrap();
    assert!(opts.contains("nosuid") && opts.contains("nodev"), "{opts}");
}

/// The container's cgroup directory, under `berth-test-<pid>/<name>` so nothing collides.
fn cgroup_path(name: &str) -> String {
    format!("/berth-test-{}/{name}", std::process::id())
}

#[test]
fn device_rules_are_enforced_even_with_mknod_and_linux_devices() {
    // The decoy is /dev/zero's number (1:5), made as /dev/decoy and by mknod inside the container.
    let mut b = Bundle::new(
        "head -c1 /dev/decoy >/dev/null 2>&1 && echo decoy-read || echo decoy-denied;
         (mknod /tmp/z c 1 5 2>/dev/null && head -c1 /tmp/z >/dev/null 2>&1) && echo mknod-read || echo mknod-denied;
         echo x > /dev/null && echo null-ok",
    );
    b.spec["linux"]["devices"] =
        json!([{"path": "/dev/decoy", "type": "c", "major": 1, "minor": 5, "fileMode": 438}]);
    for set in ["bounding", "effective", "permitted"] {
        b.spec["process"]["capabilities"][set] = json!(["CAP_MKNOD"]);
    }
    b.spec["linux"]["cgroupsPath"] = json!(cgroup_path("dev1"));
    let dir = devices_hierarchy().join(cgroup_path("dev1").trim_start_matches('/'));
    let top = dir.parent().unwrap().to_path_buf();
    // No rules: everything is reachable, and no cgroup is made.
    assert_eq!(ok(&b.run("devrule0")), "decoy-read\nmknod-read\nnull-ok\n");
    // Deny all, then the decoy's number explicitly: berth's defaults (null) stay, the decoy does not
    // come back through linux.devices, and mknod cannot open it either.
    b.spec["linux"]["resources"] = json!({"devices": [
        {"allow": false, "access": "rwm"},
        {"allow": false, "type": "c", "major": 1, "minor": 5, "access": "rwm"}
    ]});
    ok(&b.create("devrule1"));
    assert!(dir.is_dir(), "the cgroup was not made");
    let pid = b.state("devrule1")["pid"].as_i64().unwrap();
    let procs = std::fs::read_to_string(dir.join("cgroup.procs")).unwrap();
    assert!(
        procs.lines().any(|l| l == pid.to_string()),
        "init not in {procs}"
    );
    ok(&b.berth(&["start", "devrule1"]));
    for _ in 0..500 {
        if b.state("devrule1")["status"] == "stopped" {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    ok(&b.berth(&["delete", "devrule1"]));
    assert!(!dir.exists() && !top.exists(), "the cgroup was left behind");
    assert_eq!(
        ok(&b.run("devrule2")),
        "decoy-denied\nmknod-denied\nnull-ok\n"
    );
    assert!(!top.exists());
}

#[test]
fn a_failed_create_leaves_no_cgroup() {
    let mut b = Bundle::new("true");
    b.spec["linux"]["resources"] = json!({"devices": [{"allow": false, "access": "rwm"}]});
    b.spec["linux"]["cgroupsPath"] = json!(cgroup_path("fail1"));
    b.spec["process"]["args"] = json!(["/no/such/program"]);
    let top = devices_hierarchy().join(format!("berth-test-{}", std::process::id()));
    assert!(fails(&b.run("cgfail")).contains("/no/such/program"));
    assert!(!top.exists(), "a cgroup was left after a failed create");
    b.spec["linux"]["cgroupsPath"] = json!("/../etc");
    assert!(fails(&b.run("cgfail2")).contains("linux.cgroupsPath"));
}

/// A copy of the host's /bin/true with its PT_INTERP pointed at `interp` (same length or shorter).
fn elf_with_interp(dest: &Path, interp: &str) {
    let mut bytes = std::fs::read("/bin/true").unwrap();
    let old = b"/lib64/ld-linux-x86-64.so.2";
    let at = bytes
        .windows(old.len())
        .position(|w| w == old)
        .expect("/bin/true has the usual PT_INTERP");
    let mut new = interp.as_bytes().to_vec();
    assert!(new.len() <= old.len());
    new.resize(old.len(), 0);
    bytes[at..at + old.len()].copy_from_slice(&new);
    std::fs::write(dest, bytes).unwrap();
    std::fs::set_permissions(dest, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
}

#[test]
fn berths_own_binary_is_never_run_in_the_container() {
    // The CVE-2019-5736 class: the image names /proc/self/exe as the program, as a script's #!
    // interpreter, or as an ELF interpreter; or berth's binary is bound into the container.
    let mut b = Bundle::new("true");
    std::fs::write(b.rootfs.join("bin/evil-script"), "#!/proc/self/exe\n").unwrap();
    std::fs::set_permissions(
        b.rootfs.join("bin/evil-script"),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    std::fs::write(b.rootfs.join("bin/evil-chain"), "#!/bin/evil-script\n").unwrap();
    std::fs::set_permissions(
        b.rootfs.join("bin/evil-chain"),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    elf_with_interp(&b.rootfs.join("bin/evil-elf"), "/proc/self/exe");
    let mut cases = vec![
        (json!(["/proc/self/exe", "features"]), "magic link"),
        (json!(["/bin/evil-script"]), "magic link"),
        (json!(["/bin/evil-chain"]), "magic link"),
        (json!(["/bin/evil-elf"]), "magic link"),
        (json!(["/berth-copy"]), "own binary"),
    ];
    b.add_mount(json!({"destination": "/berth-copy", "type": "bind", "source": BERTH.to_string(), "options": ["bind", "ro"]}));
    for (i, (args, why)) in cases.drain(..).enumerate() {
        b.spec["process"]["args"] = args.clone();
        let e = fails(&b.run(&format!("exe{i}")));
        assert!(
            e.contains("CVE-2019-5736") && e.contains(why),
            "{args}: {e}"
        );
    }
    // The same through exec into a running container.
    b.spec["process"]["args"] = json!(["sleep", "100"]);
    ok(&b.create("exe-exec"));
    ok(&b.berth(&["start", "exe-exec"]));
    let e = fails(&b.berth(&["exec", "exe-exec", "/bin/evil-script"]));
    assert!(e.contains("CVE-2019-5736"), "{e}");
    // An ordinary script and ELF still run.
    std::fs::write(b.rootfs.join("bin/fine"), "#!/bin/sh\necho fine\n").unwrap();
    std::fs::set_permissions(
        b.rootfs.join("bin/fine"),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    assert_eq!(ok(&b.berth(&["exec", "exe-exec", "/bin/fine"])), "fine\n");
    ok(&b.berth(&["delete", "-f", "exe-exec"]));
}
