//! One test's world: a temp dir with a bundle on the busybox rootfs and berth's `--root`, and the
//! guard that proves the test left nothing behind.

use crate::binary::{BERTH, busybox};
use crate::host::cgroup_roots;
use crate::run::{fails, output};
use serde_json::{Value, json};
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

fn applets() -> &'static Vec<String> {
    static A: std::sync::OnceLock<Vec<String>> = std::sync::OnceLock::new();
    A.get_or_init(|| {
        let out = Command::new(busybox())
            .arg("--list-full")
            .output()
            .expect("busybox --list-full");
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(str::to_string)
            .filter(|l| !l.is_empty() && l != "bin/busybox")
            .collect()
    })
}

/// Builds a busybox rootfs at `dir`: a hard link to (or copy of) busybox plus one symlink per applet.
pub fn make_rootfs(dir: &Path) {
    for d in [
        "bin", "sbin", "usr/bin", "usr/sbin", "etc", "proc", "sys", "dev", "tmp", "root",
    ] {
        std::fs::create_dir_all(dir.join(d)).unwrap();
    }
    let bb = dir.join("bin/busybox");
    if std::fs::hard_link(busybox(), &bb).is_err() {
        std::fs::copy(busybox(), &bb).unwrap();
    }
    for a in applets() {
        let p = dir.join(a);
        let depth = Path::new(a).components().count() - 1;
        let target = format!("{}bin/busybox", "../".repeat(depth));
        let _ = symlink(target, p);
    }
    std::fs::write(dir.join("etc/passwd"), "root:x:0:0:root:/root:/bin/sh\n").unwrap();
    std::fs::write(dir.join("etc/group"), "root:x:0:\n").unwrap();
}

/// This process's mount table: mount ids, parents, device and the two paths (a mount's options can
/// change, atime for one, without anything having leaked).
pub fn mountinfo() -> String {
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .map(|l| l.split(' ').take(5).collect::<Vec<_>>().join(" "))
        .collect::<Vec<_>>()
        .join("\n")
}

/// One test's world. Dropping it force-deletes (through berth, which kills by recorded pid only)
/// every container left in its `--root`; then, unless the test is already failing, it fails the
/// test if a state directory is left or the host's mount table changed.
#[derive(Debug)]
pub struct Bundle {
    pub tmp: tempfile::TempDir,
    pub dir: PathBuf,
    pub rootfs: PathBuf,
    pub state: PathBuf,
    pub spec: Value,
    before: String,
}

impl Bundle {
    /// A bundle with `berth spec`'s config, terminal off, rootfs writable, running `sh -c script`.
    pub fn new(script: &str) -> Bundle {
        let tmp = tempfile::Builder::new()
            .prefix("berth-test-")
            .tempdir()
            .unwrap();
        let dir = tmp.path().join("bundle");
        std::fs::create_dir_all(&dir).unwrap();
        let out = Command::new(BERTH)
            .args(["spec", "--bundle"])
            .arg(&dir)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "berth spec: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let mut spec: Value =
            serde_json::from_slice(&std::fs::read(dir.join("config.json")).unwrap()).unwrap();
        spec["process"]["terminal"] = json!(false);
        spec["root"]["readonly"] = json!(false);
        spec["process"]["args"] = json!(["sh", "-c", script]);
        let rootfs = dir.join("rootfs");
        make_rootfs(&rootfs);
        Bundle {
            state: tmp.path().join("state"),
            tmp,
            dir,
            rootfs,
            spec,
            before: mountinfo(),
        }
    }

    /// Writes `spec` to the bundle's config.json.
    pub fn write(&self) {
        std::fs::write(
            self.dir.join("config.json"),
            serde_json::to_vec_pretty(&self.spec).unwrap(),
        )
        .unwrap();
    }

    /// `berth --root <state> ARGS...` with the config written first.
    pub fn cmd(&self, args: &[&str]) -> Command {
        self.write();
        let mut c = Command::new(BERTH);
        c.arg("--root")
            .arg(&self.state)
            .args(args)
            .current_dir(&self.dir)
            .stdin(Stdio::null());
        c
    }

    /// Runs berth to completion. Output goes through files, not pipes: a created container's init
    /// inherits berth's stdio and keeps it open long after berth exits.
    pub fn berth(&self, args: &[&str]) -> Output {
        output(&mut self.cmd(args), self.tmp.path())
    }

    /// `berth run --bundle <dir> ID`.
    pub fn run(&self, id: &str) -> Output {
        let b = self.dir.to_str().unwrap().to_string();
        self.berth(&["run", "--bundle", &b, id])
    }

    /// `berth create --bundle <dir> ID`.
    pub fn create(&self, id: &str) -> Output {
        let b = self.dir.to_str().unwrap().to_string();
        self.berth(&["create", "--bundle", &b, id])
    }

    /// `berth state ID`, parsed.
    pub fn state(&self, id: &str) -> Value {
        let out = self.berth(&["state", id]);
        assert!(
            out.status.success(),
            "state: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap()
    }

    /// Waits (up to 10 s) until `berth state ID` says `want`; fails the test if it never does.
    #[track_caller]
    pub fn wait_status(&self, id: &str, want: &str) {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            let s = self.state(id);
            if s["status"] == want {
                return;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "{id}'s status stayed {} (wanted {want})",
                s["status"]
            );
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
    }

    /// Asserts that `o`, berth's answer for container `id`, is a refusal: a failure whose error
    /// contains `needle`, with no state directory and no default cgroup (`/berth/<id>` in any
    /// hierarchy) left for `id`. Returns the error text.
    #[track_caller]
    pub fn refused(&self, o: &Output, id: &str, needle: &str) -> String {
        let e = fails(o);
        assert!(e.contains(needle), "expected {needle:?} in: {e}");
        assert!(
            !self.state.join(id).exists(),
            "state directory left after a refusal: {e}"
        );
        for root in cgroup_roots() {
            let cg = root.join("berth").join(id);
            assert!(
                !cg.exists(),
                "cgroup {} left after a refusal: {e}",
                cg.display()
            );
        }
        e
    }

    /// A new user namespace mapping container ids 0..65535 to host 100000.. (uids and gids).
    pub fn in_userns(&mut self) {
        self.spec["linux"]["namespaces"]
            .as_array_mut()
            .unwrap()
            .push(json!({"type": "user"}));
        let map = json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
        self.spec["linux"]["uidMappings"] = map.clone();
        self.spec["linux"]["gidMappings"] = map;
    }

    /// Appends `m` to the spec's mounts.
    pub fn add_mount(&mut self, m: Value) {
        self.spec["mounts"].as_array_mut().unwrap().push(m);
    }

    /// A directory `name` in the test's temp dir, outside the bundle.
    pub fn host_path(&self, name: &str) -> PathBuf {
        let p = self.tmp.path().join(name);
        std::fs::create_dir_all(&p).unwrap();
        p
    }
}

impl Drop for Bundle {
    fn drop(&mut self) {
        if let Ok(rd) = std::fs::read_dir(&self.state) {
            for e in rd.flatten() {
                let id = e.file_name().to_string_lossy().into_owned();
                let _ = Command::new(BERTH)
                    .arg("--root")
                    .arg(&self.state)
                    .args(["delete", "--force", &id])
                    .output();
            }
        }
        if std::thread::panicking() {
            return;
        }
        let left: Vec<_> = std::fs::read_dir(&self.state)
            .map(|rd| rd.flatten().map(|e| e.file_name()).collect())
            .unwrap_or_default();
        assert!(left.is_empty(), "state directories left behind: {left:?}");
        assert_eq!(self.before, mountinfo(), "the host's mount table changed");
    }
}
