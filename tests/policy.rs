//! The host mount policy and the volume front end: every rule and every refusal, symlink and `..`
//! escapes out of an allowed root, a source swapped while berth runs, special files, tenants, a
//! malformed policy, `berth check`, and allowed mounts working end to end with the right access.

use kit::*;
use serde_json::{Value, json};
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};

struct World {
    b: Bundle,
    vol: PathBuf,
    outside: PathBuf,
    policy: PathBuf,
}

/// A bundle, an allowed root `vol` (rw unless `access` says otherwise), a directory `outside` it with
/// a secret, and a policy file.
fn world(script: &str, policy: Value) -> World {
    let b = Bundle::new(script);
    let vol = b.host_path("vol");
    let outside = b.host_path("outside");
    std::fs::write(outside.join("secret"), "host secret\n").unwrap();
    std::fs::write(vol.join("file"), "volume data\n").unwrap();
    let policy_path = b.tmp.path().join("policy.json");
    // Every policy vets the rootfs too: this bundle's own directory is the allowed rootfs root.
    let mut policy = policy;
    if policy.get("rootfs").is_none() {
        policy["rootfs"] = json!([{"path": b.dir, "access": "rw"}]);
    }
    let text = policy.to_string().replace("$VOL", vol.to_str().unwrap());
    std::fs::write(&policy_path, text).unwrap();
    World {
        b,
        vol,
        outside,
        policy: policy_path,
    }
}

fn rw_policy() -> Value {
    json!({"roots": [{"path": "$VOL", "access": "rw"}],
           "tenants": {"small": {"roots": ["$VOL"], "access": "ro", "max_volumes": 1},
                       "main": {"roots": ["$VOL"], "access": "rw"}},
           "default_tenant": "main"})
}

impl World {
    fn mount(&mut self, src: &Path, dest: &str, opts: &[&str]) {
        self.b.add_mount(
            json!({"destination": dest, "type": "bind", "source": src, "options": opts}),
        );
    }
    fn run(&self, id: &str, extra: &[&str]) -> std::process::Output {
        let mut args = vec!["--policy", self.policy.to_str().unwrap(), "run"];
        args.extend_from_slice(extra);
        let bundle = self.b.dir.to_str().unwrap().to_string();
        args.extend_from_slice(&["--bundle", &bundle, id]);
        self.b.berth(&args)
    }
    #[track_caller]
    fn refused(&self, id: &str, extra: &[&str], needle: &str) -> String {
        let e = self.b.refused(&self.run(id, extra), id, needle);
        assert!(e.contains("policy"), "{e}");
        e
    }
}

#[test]
fn allowed_mounts_work_with_the_right_access() {
    let mut w = world(
        "cat /ro/file; touch /ro/x 2>/dev/null || echo ro-enforced; echo hi > /rw/new",
        rw_policy(),
    );
    let vol = w.vol.clone();
    std::fs::create_dir(vol.join("sub")).unwrap();
    std::fs::write(vol.join("sub/file"), "volume data\n").unwrap();
    w.mount(&vol, "/ro", &["rbind", "ro"]);
    w.mount(&vol.join("sub"), "/rw", &["rbind", "rw"]);
    assert_eq!(ok(&w.run("a1", &[])), "volume data\nro-enforced\n");
    assert_eq!(
        std::fs::read_to_string(vol.join("sub/new")).unwrap(),
        "hi\n"
    );
}

/// Builds a hostile source inside a world and returns its path.
type MakeSource = Box<dyn Fn(&World) -> PathBuf>;

#[test]
fn symlinks_and_dotdot_out_of_the_root_are_refused() {
    let cases: Vec<(&str, MakeSource)> = vec![
        (
            "absolute symlink",
            Box::new(|w: &World| {
                symlink(&w.outside, w.vol.join("abs")).unwrap();
                w.vol.join("abs")
            }),
        ),
        (
            "relative symlink",
            Box::new(|w: &World| {
                symlink("../outside", w.vol.join("rel")).unwrap();
                w.vol.join("rel")
            }),
        ),
        (
            "symlinked parent",
            Box::new(|w: &World| {
                symlink(&w.outside, w.vol.join("pdir")).unwrap();
                w.vol.join("pdir/secret")
            }),
        ),
        ("dotdot", Box::new(|w: &World| w.vol.join("../outside"))),
        (
            "magic link",
            Box::new(|w: &World| {
                symlink("/proc/self/root/etc", w.vol.join("magic")).unwrap();
                w.vol.join("magic")
            }),
        ),
    ];
    for (i, (what, make)) in cases.into_iter().enumerate() {
        let mut w = world("cat /v/secret", rw_policy());
        let src = make(&w);
        w.mount(&src, "/v", &["rbind", "ro"]);
        let e = w.refused(&format!("esc{i}"), &[], "refused by roots");
        assert!(
            e.contains("leaves the allowed root") || e.contains("not under an allowed root"),
            "{what}: {e}"
        );
    }
}

#[test]
fn a_source_swapped_while_berth_runs_never_reaches_outside() {
    let mut w = world("cat /v/secret 2>/dev/null; true", rw_policy());
    std::fs::create_dir(w.vol.join("a")).unwrap();
    symlink(&w.outside, w.vol.join("b")).unwrap();
    let src = w.vol.join("a");
    w.mount(&src, "/v", &["rbind", "ro"]);
    w.b.write();
    let swapper = Swapper::start(
        w.vol.join("a"),
        w.vol.join("b"),
        berth::sys::rename_exchange,
    );
    let (mut allowed, mut refused) = (0, 0);
    for i in 0..200 {
        let o = w.run(&format!("sw{i}"), &[]);
        assert!(
            !stdout(&o).contains("host secret"),
            "the container read a file outside the allowed root"
        );
        if o.status.success() {
            allowed += 1;
        } else {
            let e = stderr(&o);
            assert!(
                e.contains("refused by roots") || e.contains("mounts[7]"),
                "{e}"
            );
            refused += 1;
        }
    }
    assert!(swapper.stop() > 1000);
    assert!(
        allowed > 0 && refused > 0,
        "the race was not exercised: {allowed} allowed, {refused} refused"
    );
}

#[test]
fn rw_over_an_ro_root_is_refused() {
    let mut w = world("true", json!({"roots": [{"path": "$VOL", "access": "ro"}]}));
    let vol = w.vol.clone();
    w.mount(&vol, "/v", &["rbind", "rw"]);
    w.refused("rw1", &[], "at most ro");
}

#[test]
fn excess_access_read_only_mounts_an_rw_request_read_only_as_a_whole_tree() {
    let mut w = world(
        "cat /v/file; (echo x > /v/new) 2>/dev/null && echo WROTE; \
         (echo x > /v/sub/new) 2>/dev/null && echo WROTE-SUB; grep ' /v ' /proc/self/mountinfo",
        json!({"roots": [{"path": "$VOL", "access": "rw"}],
               "tenants": {"capped": {"roots": ["$VOL"], "access": "ro"}},
               "default_tenant": "capped", "excess_access": "read-only"}),
    );
    let vol = w.vol.clone();
    // A submount inside the volume: a top-only ro would leave it writable.
    std::fs::create_dir(vol.join("sub")).unwrap();
    w.mount(&vol, "/v", &["rbind", "rw"]);
    let out = run_in_private_ns(
        &w.b,
        "xs1",
        &format!(
            "mount -t tmpfs sub {sub}; export BERTH_POLICY={p}",
            sub = vol.join("sub").display(),
            p = w.policy.display()
        ),
    );
    let text = ok(&out);
    assert!(text.contains("volume data"), "{text}");
    assert!(
        !text.contains("WROTE"),
        "an rw request under an ro cap was writable:\n{text}"
    );
    assert!(text.contains(" ro,") || text.contains(" ro "), "{text}");
    assert!(!vol.join("new").exists());
    // The same bundle under the default (refuse).
    let mut w2 = world("true", json!({"roots": [{"path": "$VOL", "access": "ro"}]}));
    let vol2 = w2.vol.clone();
    w2.mount(&vol2, "/v", &["rbind", "rw"]);
    w2.refused("xs2", &[], "at most ro");
}

#[test]
fn special_files_refused_unless_allowed() {
    for kind in ["device", "socket", "fifo"] {
        let mut w = world("true", rw_policy());
        let p = w.vol.join(kind);
        let _listener;
        match kind {
            "device" => nix::sys::stat::mknod(
                &p,
                nix::sys::stat::SFlag::S_IFCHR,
                nix::sys::stat::Mode::from_bits_truncate(0o666),
                nix::sys::stat::makedev(1, 3),
            )
            .unwrap(),
            "socket" => _listener = std::os::unix::net::UnixListener::bind(&p).unwrap(),
            _ => nix::unistd::mkfifo(&p, nix::sys::stat::Mode::from_bits_truncate(0o644)).unwrap(),
        }
        w.mount(&p, "/special", &["bind", "ro"]);
        w.refused(&format!("sp-{kind}"), &[], "special_files");
    }
    // With special_files allowed, a device node can be mounted.
    let mut w = world(
        "echo x > /null && echo ok",
        json!({"roots": [{"path": "$VOL", "access": "rw", "special_files": true}]}),
    );
    let p = w.vol.join("null");
    nix::sys::stat::mknod(
        &p,
        nix::sys::stat::SFlag::S_IFCHR,
        nix::sys::stat::Mode::from_bits_truncate(0o666),
        nix::sys::stat::makedev(1, 3),
    )
    .unwrap();
    w.mount(&p, "/null", &["bind", "rw"]);
    assert_eq!(ok(&w.run("sp-ok", &[])), "ok\n");
}

#[test]
fn tenants_limit_roots_access_and_count() {
    let mut w = world("true", rw_policy());
    let vol = w.vol.clone();
    w.mount(&vol, "/a", &["rbind", "ro"]);
    w.mount(&vol, "/b", &["rbind", "ro"]);
    w.refused("t1", &["--tenant", "small"], "max_volumes");
    let e = fails(&w.run("t2", &["--tenant", "nobody"]));
    assert!(e.contains("tenant \"nobody\" is not in the policy"), "{e}");
    // The tenant's ro cap applies, named by the orchestrator's annotation this time (the one key the
    // policy names; the bundle's own berth.tenant may only repeat it).
    let mut policy = rw_policy();
    policy["tenant_annotation"] = json!("io.kubernetes.cri.sandbox-namespace");
    let mut w = world("true", policy);
    let vol = w.vol.clone();
    w.mount(&vol, "/a", &["rbind", "rw"]);
    w.b.spec["annotations"] =
        json!({"io.kubernetes.cri.sandbox-namespace": "small", "berth.tenant": "small"});
    w.refused("t3", &[], "at most ro");
    w.b.spec["mounts"]
        .as_array_mut()
        .unwrap()
        .last_mut()
        .unwrap()["options"] = json!(["rbind", "ro"]);
    ok(&w.run("t4", &[]));
}

#[test]
fn a_refusal_creates_nothing() {
    let mut w = world("true", rw_policy());
    let vol = w.vol.clone();
    w.mount(&vol, "/first-dest", &["rbind", "ro"]);
    w.mount(Path::new("/etc"), "/second-dest", &["rbind", "ro"]);
    let e = w.refused("n1", &[], "not under an allowed root");
    assert!(e.contains("mounts[8] (/second-dest)"), "{e}");
    assert!(
        !w.b.rootfs.join("first-dest").exists(),
        "a destination was created before the refusal"
    );
}

#[test]
fn a_source_containing_the_rootfs_is_refused() {
    let mut w = world("true", rw_policy());
    // Make the bundle's rootfs live inside the allowed root.
    let inside = w.vol.join("image");
    make_rootfs(&inside);
    w.b.spec["root"]["path"] = json!(inside);
    let vol = w.vol.clone();
    w.mount(&vol, "/v", &["rbind", "ro"]);
    w.refused("rf1", &[], "rootfs");
}

#[test]
fn malformed_policy_names_the_key() {
    let w = world(
        "true",
        json!({"roots": [{"path": "$VOL", "access": "rw", "acces": "ro"}]}),
    );
    let e = fails(&w.run("m1", &[]));
    assert!(e.contains("roots[0]") && e.contains("acces"), "{e}");
    let w = world(
        "true",
        json!({"roots": [{"path": "relative/dir", "access": "rw"}]}),
    );
    assert!(fails(&w.run("m2", &[])).contains("roots[0].path"));
    let w = world(
        "true",
        json!({"roots": [{"path": "$VOL", "access": "ro"}, {"path": "$VOL/sub", "access": "rw"}]}),
    );
    assert!(fails(&w.run("m3", &[])).contains("overlaps"));
}

#[test]
fn check_reports_each_mount_and_exits_nonzero_on_refusal() {
    let mut w = world("true", rw_policy());
    let vol = w.vol.clone();
    w.mount(&vol, "/v", &["rbind", "ro"]);
    w.b.write();
    let bundle = w.b.dir.to_str().unwrap().to_string();
    let policy = w.policy.to_str().unwrap().to_string();
    let out = ok(&w
        .b
        .berth(&["--policy", &policy, "check", "--bundle", &bundle]));
    assert!(
        out.contains(&format!("mounts[7] /v <- {}: allowed (ro)", vol.display())),
        "{out}"
    );
    w.mount(Path::new("/etc"), "/e", &["rbind", "ro"]);
    w.b.write();
    let o = w.b.berth(&[
        "--policy", &policy, "check", "--bundle", &bundle, "--format", "json",
    ]);
    assert_eq!(o.status.code(), Some(1));
    let v: Value = serde_json::from_str(&stdout(&o)).unwrap();
    let last = v["mounts"].as_array().unwrap().last().unwrap();
    assert_eq!(last["verdict"], "refused");
    assert_eq!(last["rule"], "roots");
    assert!(!w.b.state.exists(), "check must not create state");
}

#[test]
fn front_end_volumes_read_only_by_default_and_cleaned_up() {
    let w = world("true", rw_policy());
    let rootfs = w.b.rootfs.to_str().unwrap().to_string();
    let vol = w.vol.to_str().unwrap().to_string();
    std::fs::create_dir(w.vol.join("out")).unwrap();
    let vfile = w.b.tmp.path().join("volumes.json");
    std::fs::write(
        &vfile,
        json!([{"host_path": w.vol.join("out"), "container_path": "/out", "read_only": false}])
            .to_string(),
    )
    .unwrap();
    let o = w.b.berth(&[
        "--policy", w.policy.to_str().unwrap(), "run", "--rootfs", &rootfs, "--id", "fe1",
        "-v", &format!("{vol}:/data"), "--volumes", vfile.to_str().unwrap(), "--",
        "sh", "-c", "cat /data/file; touch /data/x 2>/dev/null || echo data-ro; echo w > /out/w; touch /etc/x 2>/dev/null || echo root-ro",
    ]);
    assert_eq!(ok(&o), "volume data\ndata-ro\nroot-ro\n");
    assert_eq!(std::fs::read_to_string(w.vol.join("out/w")).unwrap(), "w\n");
    assert!(
        !w.b.state.join("fe1").exists(),
        "run --rootfs must clean up after itself"
    );
    // A volume outside the allowed roots is refused with the same rules.
    let o = w.b.berth(&[
        "--policy",
        w.policy.to_str().unwrap(),
        "run",
        "--rootfs",
        &rootfs,
        "-v",
        "/etc:/e",
        "--",
        "true",
    ]);
    assert!(fails(&o).contains("not under an allowed root"));
}

#[test]
fn front_end_relative_host_path_without_policy() {
    let b = Bundle::new("true");
    std::fs::create_dir(b.tmp.path().join("rel")).unwrap();
    std::fs::write(b.tmp.path().join("rel/f"), "relative\n").unwrap();
    let mut cmd = b.cmd(&[
        "run",
        "--rootfs",
        "bundle/rootfs",
        "-v",
        "rel:/r",
        "--",
        "cat",
        "/r/f",
    ]);
    cmd.current_dir(b.tmp.path()).env_remove("BERTH_POLICY");
    assert_eq!(ok(&output(&mut cmd, b.tmp.path())), "relative\n");
}
