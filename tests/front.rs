//! The front end (`berth run --rootfs`) as people use it: every flag through the real binary, checked
//! from inside the container; bad values are one-line errors naming the flag; OCI image layouts
//! (`--rootfs oci:DIR[:TAG]`) with whiteouts, an opaque directory and a hardlink, and hostile layers
//! (`..`, a write through an absolute symlink, a hardlink out of the layer) refused with nothing
//! written outside and nothing left in the cache.

use kit::oci::{entry, write_layout};
use kit::*;
use serde_json::json;
use std::path::{Path, PathBuf};
use std::process::Output;

/// A bundle whose rootfs serves the front end (its config is not used).
fn world() -> (Bundle, String) {
    let b = Bundle::new("true");
    let rootfs = b.rootfs.display().to_string();
    (b, rootfs)
}

fn front(b: &Bundle, rootfs: &str, flags: &[&str], cmd: &str) -> Output {
    let mut args = vec!["run", "--rootfs", rootfs];
    args.extend_from_slice(flags);
    args.extend_from_slice(&["--", "sh", "-c", cmd]);
    b.berth(&args)
}

#[test]
fn process_flags_env_workdir_user_hostname_tty() {
    let (b, rootfs) = world();
    std::fs::write(
        b.rootfs.join("etc/passwd"),
        "root:x:0:0:root:/root:/bin/sh\nalice:x:1234:1235::/tmp:/bin/sh\n",
    )
    .unwrap();
    std::fs::write(b.rootfs.join("etc/group"), "root:x:0:\nstaff:x:50:\n").unwrap();
    let env_file = b.tmp.path().join("env");
    std::fs::write(&env_file, "# a comment\n\nFROM_FILE=yes\nA=file\n").unwrap();
    let out = ok(&front(
        &b,
        &rootfs,
        &[
            "-e",
            "A=1",
            "--env-file",
            env_file.to_str().unwrap(),
            "-e",
            "B=two words",
            "-w",
            "/tmp",
            "-u",
            "alice:staff",
            "--hostname",
            "box1",
        ],
        "echo $A/$FROM_FILE/$B; pwd; id -u; id -g; hostname",
    ));
    // -e overrides --env-file, as with podman and docker.
    assert_eq!(
        out.lines().collect::<Vec<_>>(),
        ["1/yes/two words", "/tmp", "1234", "50", "box1"],
        "{out}"
    );
    // A numeric user takes its primary group from the rootfs's passwd; an unknown name is an error.
    let out = ok(&front(&b, &rootfs, &["-u", "1234"], "id -u; id -g"));
    assert_eq!(out.lines().collect::<Vec<_>>(), ["1234", "1235"]);
    // -t: a terminal even though stdin is not one.
    let out = ok(&front(&b, &rootfs, &["-t", "-i"], "tty"));
    assert!(out.contains("/dev/pts/"), "{out}");
    let out = ok(&front(&b, &rootfs, &[], "tty || true"));
    assert!(out.contains("not a tty"), "{out}");
}

#[test]
fn network_none_has_loopback_up_and_host_shares_the_hosts() {
    let (b, rootfs) = world();
    let out = ok(&front(
        &b,
        &rootfs,
        &[],
        "ls /sys/class/net | tr '\\n' ' '; cat /sys/class/net/lo/flags",
    ));
    assert_eq!(
        out.split_whitespace().collect::<Vec<_>>(),
        ["lo", "0x9"],
        "{out}"
    );
    let host = std::fs::read_dir("/sys/class/net").unwrap().count();
    let out = ok(&front(
        &b,
        &rootfs,
        &["--net", "host"],
        "ls /sys/class/net | wc -l",
    ));
    assert_eq!(out.trim(), host.to_string());
}

#[test]
fn mounts_tmpfs_read_only_root_and_rw_root() {
    let (b, rootfs) = world();
    let out = ok(&front(
        &b,
        &rootfs,
        &["--tmpfs", "/scratch:size=1m,mode=700", "--read-only"],
        "grep ' /scratch ' /proc/mounts; touch /scratch/x && echo scratch-ok; touch /rootfile 2>/dev/null || echo root-ro",
    ));
    assert!(
        out.contains("tmpfs /scratch tmpfs rw,nosuid,nodev"),
        "{out}"
    );
    assert!(
        out.contains("size=1024k") && out.contains("mode=700"),
        "{out}"
    );
    assert!(
        out.contains("scratch-ok") && out.contains("root-ro"),
        "{out}"
    );
    ok(&front(&b, &rootfs, &["--rw-root"], "touch /rootfile"));
    assert!(b.rootfs.join("rootfile").exists());
    let e = fails(&front(&b, &rootfs, &["--read-only", "--rw-root"], "true"));
    assert!(e.contains("--rw-root") || e.contains("--read-only"), "{e}");
}

#[test]
fn capabilities_and_security_options() {
    let (b, rootfs) = world();
    let caps = |flags: &[&str]| {
        let out = ok(&front(&b, &rootfs, flags, "grep CapEff /proc/self/status"));
        u64::from_str_radix(out.split_whitespace().nth(1).unwrap(), 16).unwrap()
    };
    // The default set: AUDIT_WRITE (29), KILL (5), NET_BIND_SERVICE (10).
    assert_eq!(caps(&[]), 1 << 29 | 1 << 5 | 1 << 10);
    assert_eq!(caps(&["--cap-drop", "ALL"]), 0);
    assert_eq!(
        caps(&["--cap-drop", "all", "--cap-add", "net_admin"]),
        1 << 12
    );
    assert_eq!(caps(&["--cap-drop", "KILL"]), 1 << 29 | 1 << 10);
    // seccomp: berth's default profile unless unconfined; a file of one's own.
    let mode = |flags: &[&str]| {
        ok(&front(
            &b,
            &rootfs,
            flags,
            "grep Seccomp: /proc/self/status",
        ))
    };
    assert!(mode(&[]).contains('2'));
    assert!(mode(&["--security-opt", "seccomp=unconfined"]).contains('0'));
    let profile = b.tmp.path().join("seccomp.json");
    std::fs::write(
        &profile,
        json!({"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_X86_64"],
               "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1}]})
        .to_string(),
    )
    .unwrap();
    let opt = format!("seccomp={}", profile.display());
    let out = ok(&front(
        &b,
        &rootfs,
        &["--security-opt", &opt],
        "mkdir /tmp/d 2>&1 || echo refused",
    ));
    assert!(out.contains("refused"), "{out}");
    // Landlock's mode goes into the spec as berth's annotation.
    let out = ok(&b.berth(&[
        "run",
        "--rootfs",
        &rootfs,
        "--security-opt",
        "landlock=enforce",
        "--dry-run",
    ]));
    let spec: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(spec["annotations"]["berth.landlock"], "enforce");
    ok(&front(
        &b,
        &rootfs,
        &["--security-opt", "landlock=enforce"],
        "true",
    ));
}

#[test]
fn resources_become_cgroup_limits() {
    let (b, rootfs) = world();
    let out = ok(&b.berth(&[
        "run",
        "--rootfs",
        &rootfs,
        "--memory",
        "64m",
        "--cpus",
        "1.5",
        "--pids-limit",
        "40",
        "--dry-run",
    ]));
    let spec: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        spec["linux"]["resources"],
        json!({"devices": [{"allow": false, "access": "rwm"}], "memory": {"limit": 67108864},
               "cpu": {"quota": 150000, "period": 100000}, "pids": {"limit": 40}})
    );
    // And they hold: the container's own cgroup (v1 or v2) carries them. It is made under the shared
    // default parent /berth, which stays (as runc's and Podman's parents do); the test removes it
    // again when it made it (rmdir: only while empty).
    let parents = || -> Vec<PathBuf> {
        std::fs::read_dir("/sys/fs/cgroup")
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.path().join("berth"))
            .chain([PathBuf::from("/sys/fs/cgroup/berth")])
            .filter(|p| p.is_dir())
            .collect()
    };
    let made_parent = parents().is_empty();
    let out = ok(&front(
        &b,
        &rootfs,
        &["--memory", "64m", "--pids-limit", "40", "--id", "res1"],
        "cat /sys/fs/cgroup/memory/memory.limit_in_bytes 2>/dev/null || cat /sys/fs/cgroup/memory.max; \
         cat /sys/fs/cgroup/pids/pids.max 2>/dev/null || cat /sys/fs/cgroup/pids.max",
    ));
    if made_parent {
        for p in parents() {
            let _ = std::fs::remove_dir(p);
        }
    }
    assert_eq!(out.lines().collect::<Vec<_>>(), ["67108864", "40"], "{out}");
    assert!(!b.state.join("res1").exists());
}

#[test]
fn lifecycle_detach_name_rm_and_dry_run() {
    let (b, rootfs) = world();
    let out = ok(&b.berth(&[
        "run", "--rootfs", &rootfs, "--name", "bg1", "-d", "--", "sleep", "100",
    ]));
    assert_eq!(out.trim(), "bg1");
    assert_eq!(b.state("bg1")["status"], "running");
    ok(&b.berth(&["delete", "--force", "bg1"]));
    let e = fails(&b.berth(&["run", "--rootfs", &rootfs, "--rm", "-d", "--", "true"]));
    assert!(e.contains("--rm") && e.contains("--detach"), "{e}");
    // --rm is what a foreground run does anyway: nothing is left.
    ok(&b.berth(&[
        "run", "--rootfs", &rootfs, "--rm", "--id", "fg1", "--", "true",
    ]));
    assert!(!b.state.join("fg1").exists());
    // --dry-run: the config, and no container.
    let out = ok(&b.berth(&["run", "--rootfs", &rootfs, "--id", "dry1", "--dry-run"]));
    let spec: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(spec["root"]["readonly"], true);
    assert_eq!(spec["process"]["noNewPrivileges"], true);
    assert!(spec["linux"]["seccomp"].is_object());
    assert!(!b.state.join("dry1").exists());
    let help = ok(&b.berth(&["run", "--help"]));
    for h in [
        "Front end: process",
        "Front end: security",
        "Examples:",
        "oci:DIR",
    ] {
        assert!(help.contains(h), "{h}");
    }
}

#[test]
fn bad_flag_values_are_one_line_errors_naming_the_flag() {
    let (b, rootfs) = world();
    for (flags, name) in [
        (&["--memory", "12x"][..], "--memory"),
        (&["--memory", "1k"], "--memory"),
        (&["--cpus", "0"], "--cpus"),
        (&["--cpus", "lots"], "--cpus"),
        (&["--pids-limit", "0"], "--pids-limit"),
        (&["--net", "bridge"], "--net"),
        (&["-u", "nosuchuser"], "--user"),
        (&["-u", "0:nosuchgroup"], "--user"),
        (&["-w", "relative"], "--workdir"),
        (&["--tmpfs", "rel"], "--tmpfs"),
        (&["--tmpfs", "/t:exec"], "--tmpfs"),
        (&["--cap-add", "FLY"], "--cap-add"),
        (&["--cap-drop", "CAP_NOPE"], "--cap-drop"),
        (&["--security-opt", "foo=bar"], "--security-opt"),
        (&["--security-opt", "landlock=maybe"], "--security-opt"),
        (
            &["--security-opt", "seccomp=/nonexistent.json"],
            "/nonexistent.json",
        ),
        (&["-e", "=x"], "--env"),
        (&["--env-file", "/nonexistent-env"], "/nonexistent-env"),
        (&["--hostname", "bad name"], "--hostname"),
    ] {
        let e = fails(&front(&b, &rootfs, flags, "true"));
        assert!(e.contains(name), "{flags:?}: {e}");
        assert_eq!(e.trim().lines().count(), 1, "{flags:?}: {e}");
    }
    assert_eq!(std::fs::read_dir(&b.state).map_or(0, |d| d.count()), 0);
}

// --- OCI image layouts ---

/// A tar entry with a raw name (and link name), as a hostile tool would write it.
fn raw_entry(
    tar: &mut tar::Builder<Vec<u8>>,
    kind: tar::EntryType,
    name: &str,
    link: &str,
    data: &[u8],
) {
    let mut h = tar::Header::new_gnu();
    h.as_mut_bytes()[..name.len()].copy_from_slice(name.as_bytes());
    if !link.is_empty() {
        h.as_mut_bytes()[157..157 + link.len()].copy_from_slice(link.as_bytes());
    }
    h.set_entry_type(kind);
    h.set_mode(0o644);
    h.set_size(data.len() as u64);
    h.set_cksum();
    tar.append(&h, data).unwrap();
}

/// The busybox rootfs as a layer, plus /data/{gone,keep} and /opq/a.
fn base_layer(rootfs: &Path) -> Vec<u8> {
    let mut t = tar::Builder::new(Vec::new());
    t.follow_symlinks(false);
    t.append_dir_all(".", rootfs).unwrap();
    entry(&mut t, "data/", b"");
    entry(&mut t, "data/gone", b"gone\n");
    entry(&mut t, "data/keep", b"keep\n");
    entry(&mut t, "opq/", b"");
    entry(&mut t, "opq/a", b"a\n");
    t.into_inner().unwrap()
}

fn run_image(b: &Bundle, cache: &Path, args: &[&str]) -> Output {
    let mut all = vec!["run"];
    all.extend_from_slice(args);
    let mut c = b.cmd(&all);
    c.env("BERTH_IMAGE_CACHE", cache);
    output(&mut c, b.tmp.path())
}

#[test]
fn an_oci_layout_runs_with_whiteouts_hardlinks_and_its_config() {
    let (b, _) = world();
    let layout = b.tmp.path().join("img");
    let mut top = tar::Builder::new(Vec::new());
    entry(&mut top, "data/.wh.gone", b"");
    entry(&mut top, "data/new", b"new\n");
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(tar::EntryType::Link);
    h.set_size(0);
    top.append_link(&mut h, "data/new-link", "data/new")
        .unwrap();
    entry(&mut top, "opq/.wh..wh..opq", b"");
    entry(&mut top, "opq/b", b"b\n");
    write_layout(
        &layout,
        &[
            (base_layer(&b.rootfs), true),
            (top.into_inner().unwrap(), false),
        ],
        json!({"Env": ["IMG=one", "PATH=/bin:/sbin"], "Cmd": ["sh", "-c", "echo default $IMG; pwd"],
               "WorkingDir": "/data"}),
        "v1",
    );
    let cache = b.tmp.path().join("cache");
    let image = format!("oci:{}:v1", layout.display());
    // The image's defaults.
    let out = ok(&run_image(&b, &cache, &["--rootfs", &image]));
    assert_eq!(
        out.lines().collect::<Vec<_>>(),
        ["default one", "/data"],
        "{out}"
    );
    // The layers as the container sees them, and flags over the config.
    let out = ok(&run_image(
        &b,
        &cache,
        &[
            "--rootfs",
            &image,
            "-e",
            "IMG=two",
            "--",
            "sh",
            "-c",
            "ls /data | tr '\\n' ' '; echo; ls /opq; stat -c %h /data/new; echo $IMG; touch /x 2>/dev/null || echo ro",
        ],
    ));
    assert_eq!(
        out.lines().collect::<Vec<_>>(),
        ["keep new new-link ", "b", "2", "two", "ro"],
        "{out}"
    );
    // Writable root: changes go to the tmpfs upper layer, never to the cache.
    ok(&run_image(
        &b,
        &cache,
        &[
            "--rootfs",
            &image,
            "--rw-root",
            "--",
            "sh",
            "-c",
            "echo x > /data/keep; rm /bin/ls",
        ],
    ));
    let layers: Vec<PathBuf> = std::fs::read_dir(cache.join("sha256"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(layers.len(), 2, "{layers:?}");
    assert!(
        layers
            .iter()
            .any(|l| std::fs::read(l.join("fs/data/keep")).is_ok_and(|d| d == b"keep\n"))
    );
    assert!(layers.iter().any(|l| l.join("fs/bin/ls").exists()));
    // The second run used the cache; the host saw no mount (checked when the bundle drops), and
    // only the empty run directory is left besides the layers.
    let run = cache.join("run");
    assert_eq!(std::fs::read_dir(&run).unwrap().count(), 0);
    let names: Vec<_> = std::fs::read_dir(&cache)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names.len(), 2, "{names:?}");
    // Unknown tags and bad layouts.
    let e = fails(&run_image(
        &b,
        &cache,
        &["--rootfs", &format!("oci:{}:v9", layout.display())],
    ));
    assert!(e.contains("no manifest tagged \"v9\""), "{e}");
    let e = fails(&run_image(
        &b,
        &cache,
        &["--rootfs", "oci:/nonexistent-layout"],
    ));
    assert!(e.contains("/nonexistent-layout/index.json"), "{e}");
}

#[test]
fn hostile_layers_are_refused_and_write_nothing_outside() {
    let (b, _) = world();
    let decoy = b.host_path("decoy");
    std::fs::write(decoy.join("secret"), "host secret\n").unwrap();
    let cache = b.tmp.path().join("cache");
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "dotdot",
            {
                let mut t = tar::Builder::new(Vec::new());
                raw_entry(
                    &mut t,
                    tar::EntryType::Regular,
                    "../../../escaped",
                    "",
                    b"x",
                );
                t.into_inner().unwrap()
            },
            "climbs out",
        ),
        (
            "symlink",
            {
                let mut t = tar::Builder::new(Vec::new());
                raw_entry(
                    &mut t,
                    tar::EntryType::Symlink,
                    "evil",
                    decoy.to_str().unwrap(),
                    b"",
                );
                raw_entry(&mut t, tar::EntryType::Regular, "evil/pwned", "", b"x");
                t.into_inner().unwrap()
            },
            "through a symlink",
        ),
        (
            "hardlink",
            {
                let mut t = tar::Builder::new(Vec::new());
                raw_entry(
                    &mut t,
                    tar::EntryType::Link,
                    "hl",
                    "../../decoy/secret",
                    b"",
                );
                t.into_inner().unwrap()
            },
            "climbs out",
        ),
        (
            "abs-hardlink",
            {
                let mut t = tar::Builder::new(Vec::new());
                let target = format!("{}/secret", decoy.display());
                raw_entry(&mut t, tar::EntryType::Link, "hl", &target, b"");
                t.into_inner().unwrap()
            },
            "hardlink",
        ),
    ];
    for (name, layer, needle) in cases {
        let layout = b.tmp.path().join(format!("img-{name}"));
        write_layout(
            &layout,
            &[(base_layer(&b.rootfs), false), (layer, false)],
            json!({}),
            "t",
        );
        let e = fails(&run_image(
            &b,
            &cache,
            &[
                "--rootfs",
                &format!("oci:{}:t", layout.display()),
                "--",
                "true",
            ],
        ));
        assert!(e.contains(needle), "{name}: {e}");
        // Nothing outside, nothing half-unpacked in the cache (the base layer is, whole).
        assert_eq!(std::fs::read_dir(&decoy).unwrap().count(), 1, "{name}");
        assert_eq!(
            std::fs::read(decoy.join("secret")).unwrap(),
            b"host secret\n"
        );
        assert!(!b.tmp.path().join("escaped").exists() && !Path::new("/escaped").exists());
        let left: Vec<_> = std::fs::read_dir(&cache)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with("tmp-"))
            .collect();
        assert!(left.is_empty(), "{name}: {left:?}");
        assert_eq!(
            std::fs::read_dir(cache.join("sha256")).unwrap().count(),
            1,
            "{name}"
        );
    }
    // A blob whose content does not match its digest.
    let layout = b.tmp.path().join("img-tampered");
    write_layout(&layout, &[(base_layer(&b.rootfs), false)], json!({}), "t");
    for e in std::fs::read_dir(layout.join("blobs/sha256")).unwrap() {
        let p = e.unwrap().path();
        if std::fs::metadata(&p).unwrap().len() > 100_000 {
            let mut d = std::fs::read(&p).unwrap();
            let n = d.len();
            d[n / 2] ^= 1;
            std::fs::write(&p, d).unwrap();
        }
    }
    let e = fails(&run_image(
        &b,
        &b.tmp.path().join("cache2"),
        &["--rootfs", &format!("oci:{}:t", layout.display())],
    ));
    assert!(e.contains("does not match its content"), "{e}");
}

/// The hex digest of the only layer of a one-layer layout.
fn only_layer(layout: &Path) -> String {
    std::fs::read_dir(layout.join("blobs/sha256"))
        .unwrap()
        .map(|e| e.unwrap())
        .find(|e| e.metadata().unwrap().len() > 100_000)
        .unwrap()
        .file_name()
        .to_string_lossy()
        .into_owned()
}

fn mode_owner(p: &Path) -> (u32, u32) {
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::symlink_metadata(p).unwrap();
    (m.mode() & 0o7777, m.uid())
}

#[test]
fn the_layer_cache_is_roots_alone_and_nothing_planted_there_is_used() {
    let (b, _) = world();
    let layout = b.tmp.path().join("img");
    write_layout(&layout, &[(base_layer(&b.rootfs), false)], json!({}), "t");
    let image = format!("oci:{}:t", layout.display());
    let hex = only_layer(&layout);
    // The image root is nodev (as Podman mounts it).
    let cache = b.tmp.path().join("cache");
    let out = ok(&run_image(
        &b,
        &cache,
        &[
            "--rootfs",
            &image,
            "--",
            "sh",
            "-c",
            "awk '$5 == \"/\" {print $6}' /proc/self/mountinfo",
        ],
    ));
    assert!(out.contains("nodev"), "{out}");
    // Every directory of the cache's own is root's and 0700; nobody else reaches a layer.
    for d in [
        cache.clone(),
        cache.join("sha256"),
        cache.join("sha256").join(&hex),
        cache.join("run"),
    ] {
        assert_eq!(mode_owner(&d), (0o700, 0), "{d:?}");
    }
    let layer_file = cache.join("sha256").join(&hex).join("fs/etc/passwd");
    assert!(layer_file.exists());
    let as_nobody = std::process::Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups", "cat"])
        .arg(&layer_file)
        .output()
        .unwrap();
    assert!(!as_nobody.status.success(), "nobody read a cached layer");
    // A cache root someone else could reach, owns, or that is a symlink: refused, naming it.
    let decoy = b.host_path("decoy");
    let planted = b.tmp.path().join("planted");
    std::fs::create_dir(&planted).unwrap();
    let set_mode = |p: &Path, m: u32| {
        std::fs::set_permissions(p, std::os::unix::fs::PermissionsExt::from_mode(m)).unwrap()
    };
    set_mode(&planted, 0o755);
    let e = fails(&run_image(
        &b,
        &planted,
        &["--rootfs", &image, "--", "true"],
    ));
    assert!(e.contains("image cache") && e.contains("0700"), "{e}");
    set_mode(&planted, 0o700);
    std::os::unix::fs::chown(&planted, Some(65534), Some(65534)).unwrap();
    let e = fails(&run_image(
        &b,
        &planted,
        &["--rootfs", &image, "--", "true"],
    ));
    assert!(e.contains("owned by uid 65534"), "{e}");
    let link = b.tmp.path().join("cache-link");
    std::os::unix::fs::symlink(&decoy, &link).unwrap();
    let e = fails(&run_image(&b, &link, &["--rootfs", &image, "--", "true"]));
    assert!(e.contains("image cache"), "{e}");
    // A layer planted at sha256/<digest>: a symlink to a decoy "layer", or another user's directory.
    let fresh = b.tmp.path().join("cache3");
    for (i, plant) in ["symlink", "foreign"].iter().enumerate() {
        let _ = std::fs::remove_dir_all(&fresh);
        std::fs::create_dir(&fresh).unwrap();
        set_mode(&fresh, 0o700);
        std::fs::create_dir(fresh.join("sha256")).unwrap();
        set_mode(&fresh.join("sha256"), 0o700);
        let at = fresh.join("sha256").join(&hex);
        if *plant == "symlink" {
            std::fs::create_dir_all(decoy.join("fs/bin")).unwrap();
            std::os::unix::fs::symlink(&decoy, &at).unwrap();
        } else {
            std::fs::create_dir_all(at.join("fs")).unwrap();
            set_mode(&at, 0o700);
            std::os::unix::fs::chown(&at, Some(65534), Some(65534)).unwrap();
        }
        let e = fails(&run_image(&b, &fresh, &["--rootfs", &image, "--", "true"]));
        assert!(
            e.contains("image cache") && e.contains(&hex),
            "{i} {plant}: {e}"
        );
    }
    assert_eq!(std::fs::read_dir(decoy.join("fs/bin")).unwrap().count(), 0);
}

/// The cache holds no copy of a refused layer (only `run/` and the base layers, if any).
fn nothing_half_done(cache: &Path, layers: usize) {
    let names: Vec<String> = std::fs::read_dir(cache)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("tmp-"))
        .collect();
    assert!(names.is_empty(), "{names:?}");
    assert_eq!(
        std::fs::read_dir(cache.join("sha256")).map_or(0, |d| d.count()),
        layers
    );
}

#[test]
fn device_nodes_and_bombs_in_layers_are_refused_leaving_nothing() {
    let (b, _) = world();
    let cache = b.tmp.path().join("cache");
    let gnu = |kind: tar::EntryType, name: &str, data: &[u8]| {
        let mut t = tar::Builder::new(Vec::new());
        raw_entry(&mut t, kind, name, "", data);
        t.into_inner().unwrap()
    };
    let zeros = {
        let mut t = tar::Builder::new(Vec::new());
        entry(&mut t, "zeros", &vec![0u8; 64 << 20]);
        t.into_inner().unwrap()
    };
    let mut pax = tar::Builder::new(Vec::new());
    raw_entry(
        &mut pax,
        tar::EntryType::XHeader,
        "pax",
        "",
        &vec![b'x'; 2 << 20],
    );
    entry(&mut pax, "after", b"x");
    let mut long = tar::Builder::new(Vec::new());
    raw_entry(
        &mut long,
        tar::EntryType::GNULongName,
        "././@LongLink",
        "",
        &vec![b'a'; 8 << 20],
    );
    entry(&mut long, "after", b"x");
    let cases: Vec<(&str, Vec<u8>, bool, &str)> = vec![
        (
            "block",
            gnu(tar::EntryType::Block, "disk", b""),
            false,
            "device node",
        ),
        (
            "char",
            gnu(tar::EntryType::Char, "mem", b""),
            false,
            "device node",
        ),
        ("zip-bomb", zeros, true, "unpacks to more than"),
        (
            "pax-bomb",
            pax.into_inner().unwrap(),
            false,
            "PAX header of",
        ),
        (
            "long-name",
            long.into_inner().unwrap(),
            true,
            "GNU long name of",
        ),
    ];
    for (name, layer, gz, needle) in cases {
        let layout = b.tmp.path().join(format!("img-{name}"));
        write_layout(&layout, &[(layer, gz)], json!({}), "t");
        let mut c = b.cmd(&[
            "run",
            "--rootfs",
            &format!("oci:{}:t", layout.display()),
            "--",
            "true",
        ]);
        c.env("BERTH_IMAGE_CACHE", &cache)
            .env("BERTH_IMAGE_MAX_LAYER_BYTES", (16u64 << 20).to_string());
        let e = fails(&output(&mut c, b.tmp.path()));
        assert!(e.contains(needle), "{name}: {e}");
        nothing_half_done(&cache, 0);
    }
}

#[test]
fn killed_unpacks_are_swept_and_a_damaged_layer_is_rebuilt() {
    let (b, _) = world();
    let layout = b.tmp.path().join("img");
    write_layout(&layout, &[(base_layer(&b.rootfs), true)], json!({}), "t");
    let image = format!("oci:{}:t", layout.display());
    let hex = only_layer(&layout);
    let cache = b.tmp.path().join("cache");
    // berth killed in the middle of unpacking (at its 40th write to a layer file): litter.
    let mut c = std::process::Command::new("strace");
    c.args([
        "-qq",
        "-f",
        "-o",
        "/dev/null",
        "-e",
        "inject=write:signal=KILL:when=40",
    ])
    .arg(BERTH)
    .args([
        "--root",
        b.state.to_str().unwrap(),
        "run",
        "--rootfs",
        &image,
        "--",
        "true",
    ])
    .env("BERTH_IMAGE_CACHE", &cache);
    let o = output(&mut c, b.tmp.path());
    assert!(!o.status.success());
    let litter = || -> Vec<String> {
        std::fs::read_dir(&cache)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with("tmp-"))
            .collect()
    };
    assert_eq!(
        litter().len(),
        1,
        "the kill left no half-unpacked layer to sweep"
    );
    // One more kept as a live unpacker's (this test's own pid): never swept.
    let live = cache.join(format!("tmp-{hex}-{}", std::process::id()));
    std::fs::create_dir(&live).unwrap();
    ok(&run_image(&b, &cache, &["--rootfs", &image, "--", "true"]));
    assert_eq!(litter(), [format!("tmp-{hex}-{}", std::process::id())]);
    std::fs::remove_dir(&live).unwrap();
    // A cached file truncated behind berth's back: detected and the layer unpacked again.
    let passwd = cache.join("sha256").join(&hex).join("fs/etc/passwd");
    let whole = std::fs::read(&passwd).unwrap();
    std::fs::write(&passwd, b"").unwrap();
    let o = run_image(
        &b,
        &cache,
        &["--rootfs", &image, "--", "cat", "/etc/passwd"],
    );
    assert_eq!(ok(&o).as_bytes(), &whole[..]);
    assert!(
        stderr(&o).contains("unpacking the layer again"),
        "{}",
        stderr(&o)
    );
    assert_eq!(std::fs::read(&passwd).unwrap(), whole);
}

/// `--rootfs DIR` is the caller's own files: with the default read-only root, the mount points of
/// volumes at destinations DIR lacks are made in an overlay's tmpfs, and DIR is left exactly as it
/// was (its root's mode shows through). With `--rw-root` the root is DIR itself, writable,
/// as the caller asked.
#[test]
fn the_front_end_never_writes_mount_points_into_a_dir_rootfs() {
    let b = Bundle::new("true");
    std::fs::set_permissions(
        &b.rootfs,
        std::os::unix::fs::PermissionsExt::from_mode(0o750),
    )
    .unwrap();
    let list = |p: &std::path::Path| -> Vec<std::ffi::OsString> {
        let mut v: Vec<_> = std::fs::read_dir(p)
            .unwrap()
            .flatten()
            .map(|e| e.file_name())
            .collect();
        v.sort();
        v
    };
    let before = list(&b.rootfs);
    let vol = b.host_path("vol");
    std::fs::write(vol.join("f"), "vol\n").unwrap();
    let rootfs = b.rootfs.to_str().unwrap().to_string();
    let out = ok(&b.berth(&[
        "run",
        "--rootfs",
        &rootfs,
        "-v",
        &format!("{}:/job/work", vol.display()),
        "--",
        "sh",
        "-c",
        "cat /job/work/f; stat -c %a /; touch /x 2>/dev/null || echo ro-root",
    ]));
    assert_eq!(out, "vol\n750\nro-root\n");
    assert_eq!(
        before,
        list(&b.rootfs),
        "mount points were made in the caller's rootfs"
    );
    let out = ok(&b.berth(&[
        "run",
        "--rootfs",
        &rootfs,
        "--rw-root",
        "--",
        "sh",
        "-c",
        "touch /made && echo rw-root",
    ]));
    assert_eq!(out, "rw-root\n");
    assert!(b.rootfs.join("made").exists());
}

/// The attacker's DIR: a symlink out of it (`esc -> /`) on the way to a volume's mount point. The
/// mount point is resolved inside the container's root (the overlay) and made in the overlay's
/// tmpfs: nothing appears on the host, nor in DIR.
#[test]
fn a_symlink_out_of_a_dir_rootfs_makes_no_mount_point_on_the_host() {
    let b = Bundle::new("true");
    std::os::unix::fs::symlink("/", b.rootfs.join("esc")).unwrap();
    let name = format!("berth-escape-{}", std::process::id());
    let vol = b.host_path("vol");
    let rootfs = b.rootfs.to_str().unwrap().to_string();
    let out = ok(&b.berth(&[
        "run",
        "--rootfs",
        &rootfs,
        "-v",
        &format!("{}:/esc/{name}", vol.display()),
        "--",
        "sh",
        "-c",
        &format!("ls -d /{name}"),
    ]));
    assert_eq!(out, format!("/{name}\n"));
    assert!(
        !std::path::Path::new("/").join(&name).exists(),
        "a mount point was made on the host"
    );
    assert!(
        !b.rootfs.join(&name).exists(),
        "a mount point was made in DIR"
    );
}

/// The front end's exit codes are Podman's and Docker's: the command's own, 127 for a command that
/// is not there, 126 for one that cannot be run, 125 for berth's own error; a lone word is the
/// command (`podman run IMG hostname`), never a container id with sh behind it; a missing volume
/// source is named as the user wrote it.
#[test]
fn the_front_end_exits_as_podman_does_and_names_what_the_user_wrote() {
    let b = Bundle::new("true");
    std::fs::write(b.rootfs.join("noexec"), "echo hi\n").unwrap();
    std::fs::write(b.rootfs.join("badinterp"), "#!/nonexistent/interp\n").unwrap();
    std::fs::set_permissions(
        b.rootfs.join("badinterp"),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let rootfs = b.rootfs.to_str().unwrap().to_string();
    let run = |args: &[&str]| {
        let mut a = vec!["run", "--rootfs", rootfs.as_str()];
        a.extend_from_slice(args);
        b.berth(&a)
    };
    let o = run(&["hostname"]);
    assert_eq!(
        (o.status.code(), stdout(&o).trim().is_empty()),
        (Some(0), false),
        "{}",
        stderr(&o)
    );
    for (args, code) in [
        (&["--", "sh", "-c", "exit 3"][..], 3),
        (&["--", "nosuchcmd"][..], 127),
        (&["--", "/badinterp"][..], 127),
        (&["--", "/noexec"][..], 126),
        (&["-v", "/nonexistent/ds:/data", "--", "true"][..], 125),
    ] {
        let o = run(args);
        assert_eq!(o.status.code(), Some(code), "{args:?}: {}", stderr(&o));
    }
    let e = stderr(&run(&["-v", "/nonexistent/ds:/data", "--", "true"]));
    assert!(
        e.contains("-v /nonexistent/ds:/data: the source does not exist") && e.contains("ENOENT"),
        "{e}"
    );
    assert_eq!(e.trim_end().lines().count(), 1, "{e}");
}

/// A front-end refusal: berth's own error (exit 125, as Podman's) naming `needle`.
#[track_caller]
fn refused_125(o: &Output, needle: &str) {
    assert_eq!(o.status.code(), Some(125), "{}", stderr(o));
    assert!(
        stderr(o).contains(needle),
        "expected {needle:?} in: {}",
        stderr(o)
    );
}

/// `--ulimit`, `--env-host` and `--entrypoint`, as podman reads them.
#[test]
fn ulimit_env_host_and_entrypoint_as_podman() {
    let b = Bundle::new("true");
    let rootfs = b.rootfs.to_str().unwrap().to_string();
    let run = |args: &[&str]| {
        let mut a = vec!["run", "--rootfs", rootfs.as_str()];
        a.extend_from_slice(args);
        let mut c = b.cmd(&a);
        c.env("BERTH_TEST_FROM_HOST", "host-value");
        output(&mut c, b.tmp.path())
    };
    let out = ok(&run(&[
        "--ulimit",
        "nofile=512:1000",
        "--ulimit",
        "core=0",
        "--",
        "sh",
        "-c",
        "ulimit -n; ulimit -Hn; ulimit -c",
    ]));
    assert_eq!(out, "512\n1000\n0\n");
    let out = ok(&run(&[
        "--env-host",
        "-e",
        "X=1",
        "--",
        "sh",
        "-c",
        "echo $BERTH_TEST_FROM_HOST $X",
    ]));
    assert_eq!(out, "host-value 1\n");
    // Without --env-host the caller's environment stays out.
    assert_eq!(
        ok(&run(&[
            "--",
            "sh",
            "-c",
            "echo ${BERTH_TEST_FROM_HOST:-unset}"
        ])),
        "unset\n"
    );
    assert_eq!(ok(&run(&["--entrypoint", "echo", "--", "hi"])), "hi\n");
    assert_eq!(
        ok(&run(&["--entrypoint", r#"["echo","a"]"#, "--", "b"])),
        "a b\n"
    );
    for (args, needle) in [
        (
            &["--ulimit", "nofiles=1", "--", "true"][..],
            "--ulimit \"nofiles=1\": unknown type",
        ),
        (
            &["--ulimit", "nofile=10:5", "--", "true"][..],
            "soft limit is above",
        ),
        (
            &["--entrypoint", "[1]", "--", "true"][..],
            "--entrypoint \"[1]\": not a JSON list",
        ),
    ] {
        refused_125(&run(args), needle);
    }
}

/// `--mount` in Podman's syntax: a bind (writable unless readonly, as Podman's) hardened as `-v`
/// volumes are (nosuid, nodev), a tmpfs with its size and mode; a malformed one names the key.
#[test]
fn mount_flags_in_podman_syntax() {
    let b = Bundle::new("true");
    let vol = b.host_path("vol");
    std::fs::write(vol.join("f"), "data\n").unwrap();
    let rootfs = b.rootfs.to_str().unwrap().to_string();
    let v = vol.display().to_string();
    let rw = format!("type=bind,source={v},target=/rw");
    let ro = format!("type=bind,src={v},dst=/ro,readonly");
    let out = ok(&b.berth(&[
        "run", "--rootfs", &rootfs, "--mount", &rw, "--mount", &ro,
        "--mount", "type=tmpfs,target=/t,tmpfs-mode=1777,tmpfs-size=1m", "--", "sh", "-c",
        "echo w > /rw/w && cat /rw/w; touch /ro/x 2>/dev/null || echo ro-ok; stat -c %a /t; grep ' /rw ' /proc/self/mountinfo",
    ]));
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(&lines[..3], ["w", "ro-ok", "1777"], "{out}");
    assert!(
        lines[3].contains("nosuid") && lines[3].contains("nodev"),
        "{out}"
    );
    for (m, needle) in [
        ("type=volume,target=/x", "type \"volume\" is not supported"),
        ("type=bind,target=/x", "a bind needs a source"),
        (
            "type=bind,source=/tmp,target=/x,colour=red",
            "unknown or malformed key \"colour\"",
        ),
        ("source=/tmp,target=/x", "no type="),
    ] {
        refused_125(
            &b.berth(&["run", "--rootfs", &rootfs, "--mount", m, "--", "true"]),
            needle,
        );
    }
}

/// `--device HOST[:CTR][:PERMS]`: the node in the container, and the device cgroup allows that node
/// alone, with the permissions asked (read here: a write is denied by the cgroup, not the node's
/// 0666 mode); not a device node, or bad permissions, are refused.
#[test]
fn device_flag_brings_one_node_and_the_cgroup_allows_only_it() {
    let b = Bundle::new("true");
    let rootfs = b.rootfs.to_str().unwrap().to_string();
    if !std::path::Path::new("/dev/fuse").exists() {
        skip!("no /dev/fuse on this host to bring in");
    }
    // /dev/fuse: not one of the standard devices the cgroup always allows.
    let out = ok(&b.berth(&[
        "run", "--rootfs", &rootfs, "--device", "/dev/fuse:/dev/f:r", "--", "sh", "-c",
        "stat -c %t:%T /dev/f; (exec 3</dev/f) && echo read-ok; (exec 3>/dev/f) 2>/dev/null && echo WROTE || echo write-denied",
    ]));
    assert_eq!(out, "a:e5\nread-ok\nwrite-denied\n", "{out}");
    for (d, needle) in [
        ("/etc/passwd", "is not a device node"),
        ("/dev/zero:/dev/z:rx", "expected HOST[:CTR][:PERMS]"),
        ("dev/zero", "paths must be absolute"),
    ] {
        refused_125(
            &b.berth(&["run", "--rootfs", &rootfs, "--device", d, "--", "true"]),
            needle,
        );
    }
}

/// `--init`: the host's static init (catatonit or tini) is pid 1, bound read-only at /dev/init,
/// runs the command and reaps what it orphans; the command's exit code comes through.
#[test]
fn init_is_a_host_reaper_at_pid_1() {
    let found = [
        "/usr/libexec/podman/catatonit",
        "/usr/bin/catatonit",
        "/usr/bin/tini-static",
    ]
    .iter()
    .any(|p| std::path::Path::new(p).is_file());
    if !found {
        skip!("no catatonit or tini-static on this host");
    }
    let b = Bundle::new("true");
    let rootfs = b.rootfs.to_str().unwrap().to_string();
    let out = ok(&b.berth(&[
        "run", "--rootfs", &rootfs, "--init", "--", "sh", "-c",
        "tr '\\0' ' ' < /proc/1/cmdline; echo; (sleep 0.1 &); sleep 0.3; ps -o stat= | grep -c Z; (echo x > /dev/init) 2>/dev/null || echo ro-init",
    ]));
    let lines: Vec<&str> = out.lines().collect();
    assert!(lines[0].starts_with("/dev/init -- sh -c"), "{out}");
    assert_eq!(&lines[1..], ["0", "ro-init"], "{out}");
    let o = b.berth(&[
        "run", "--rootfs", &rootfs, "--init", "--", "sh", "-c", "exit 7",
    ]);
    assert_eq!(o.status.code(), Some(7));
}

/// A first unpack says what it does on a terminal (one line per layer, with its size and time),
/// and nothing when stderr is not one.
#[test]
fn unpacking_shows_progress_on_a_terminal_only() {
    let (b, _) = world();
    let layout = b.tmp.path().join("img");
    write_layout(
        &layout,
        &[(base_layer(&b.rootfs), true)],
        json!({"Cmd": ["true"]}),
        "v1",
    );
    let image = format!("oci:{}:v1", layout.display());
    let quiet = run_image(&b, &b.tmp.path().join("cache1"), &["--rootfs", &image]);
    ok(&quiet);
    assert!(!stderr(&quiet).contains("unpacking"), "{}", stderr(&quiet));
    b.write();
    let cmd = format!(
        "BERTH_IMAGE_CACHE={} {BERTH} --root {} run --rootfs {image}",
        b.tmp.path().join("cache2").display(),
        b.state.display()
    );
    let Some(tty) = in_pty(&cmd, b.tmp.path()) else {
        return;
    };
    assert!(
        tty.contains("berth: unpacking layer 1/1 sha256:") && tty.contains(" done in "),
        "{tty}"
    );
}
