//! Test fixtures: a fresh bundle per test (own temp dir, own rootfs built from the bundled busybox,
//! own --root), the real `berth` binary, and a guard that, even when the test fails, force-deletes
//! whatever containers the test left and then checks that the host's mountinfo is as before and no
//! state directory is left.
#![allow(dead_code)]

use serde_json::{Value, json};
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

pub const BERTH: &str = env!("CARGO_BIN_EXE_berth");

/// The rootfs that scripts/mkrootfs.sh builds.
pub fn busybox() -> PathBuf {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("rootfs/bin/busybox");
    assert!(
        p.exists(),
        "{} is missing: run scripts/mkrootfs.sh first",
        p.display()
    );
    p
}

fn applets() -> &'static Vec<String> {
    static A: std::sync::OnceLock<Vec<String>> = std::sync::OnceLock::new();
    A.get_or_init(|| {
        let out = Command::new(busybox()).arg("--list-full").output().unwrap();
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

pub fn mountinfo() -> String {
    // Mount ids and targets; the per-mount options can change (atime) without a leak.
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .map(|l| l.split(' ').take(5).collect::<Vec<_>>().join(" "))
        .collect::<Vec<_>>()
        .join("\n")
}

/// One test's world.
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

    pub fn create(&self, id: &str) -> Output {
        let b = self.dir.to_str().unwrap().to_string();
        self.berth(&["create", "--bundle", &b, id])
    }

    pub fn state(&self, id: &str) -> Value {
        let out = self.berth(&["state", id]);
        assert!(
            out.status.success(),
            "state: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap()
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

    pub fn add_mount(&mut self, m: Value) {
        self.spec["mounts"].as_array_mut().unwrap().push(m);
    }

    pub fn host_path(&self, name: &str) -> PathBuf {
        let p = self.tmp.path().join(name);
        std::fs::create_dir_all(&p).unwrap();
        p
    }
}

impl Drop for Bundle {
    fn drop(&mut self) {
        // Force-delete what the test left, by id, through berth (it kills by recorded pid only).
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

/// `cmd.output()`, but through temporary files (see [`Bundle::berth`]).
pub fn output(cmd: &mut Command, dir: &Path) -> Output {
    static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let (o, e) = (dir.join(format!(".out{n}")), dir.join(format!(".err{n}")));
    let status = cmd
        .stdout(std::fs::File::create(&o).unwrap())
        .stderr(std::fs::File::create(&e).unwrap())
        .status()
        .unwrap();
    let out = Output {
        status,
        stdout: std::fs::read(&o).unwrap(),
        stderr: std::fs::read(&e).unwrap(),
    };
    let _ = std::fs::remove_file(o);
    let _ = std::fs::remove_file(e);
    out
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Asserts success and returns stdout.
#[track_caller]
pub fn ok(o: &Output) -> String {
    assert!(
        o.status.success(),
        "exit {:?}\nstdout: {}\nstderr: {}",
        o.status.code(),
        stdout(o),
        stderr(o)
    );
    stdout(o)
}

/// Asserts failure and returns stderr.
#[track_caller]
pub fn fails(o: &Output) -> String {
    assert!(
        !o.status.success(),
        "expected failure, got success\nstdout: {}",
        stdout(o)
    );
    stderr(o)
}

/// Runs `berth run OPTS --bundle B ID` from a host shell after `setup` (shell commands: opening fds
/// a careless caller would leak, mounts on the host side of a volume...). With `private_ns` the shell
/// runs under `unshare -m`, so whatever setup mounts dies with that namespace.
pub fn run_from_shell(b: &Bundle, id: &str, setup: &str, opts: &str, private_ns: bool) -> Output {
    b.write();
    let script = format!(
        "set -e; {setup}; exec {} --root {} run {opts} --bundle {} {id}",
        BERTH,
        b.state.display(),
        b.dir.display()
    );
    let mut cmd = if private_ns {
        let mut c = Command::new("unshare");
        c.args(["-m", "--propagation", "private", "sh", "-c", &script]);
        c
    } else {
        let mut c = Command::new("/bin/sh");
        c.args(["-c", &script]);
        c
    };
    output(&mut cmd, b.tmp.path())
}

/// [`run_from_shell`] in a private mount namespace.
pub fn run_in_private_ns(b: &Bundle, id: &str, setup: &str) -> Output {
    run_from_shell(b, id, setup, "", true)
}

/// A thread that swaps two paths with renameat2(RENAME_EXCHANGE) as fast as it can.
pub struct Swapper {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    handle: std::thread::JoinHandle<u64>,
}

impl Swapper {
    pub fn start(a: PathBuf, b: PathBuf) -> Swapper {
        use std::sync::atomic::Ordering;
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = stop.clone();
        let handle = std::thread::spawn(move || {
            let mut n = 0u64;
            while !flag.load(Ordering::Relaxed) {
                let _ = berth::sys::rename_exchange(&a, &b);
                n += 1;
            }
            n
        });
        Swapper { stop, handle }
    }

    /// Stops the thread; returns how many swaps it made.
    pub fn stop(self) -> u64 {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        self.handle.join().unwrap()
    }
}

/// A process of the test's own in new namespaces (`unshare ARGS sleep 1000`), killed by pid on drop.
pub struct Sleeper(pub std::process::Child);

impl Sleeper {
    /// Starts it and waits until its `typ` namespace (as in /proc/<pid>/ns/) differs from ours.
    pub fn start(args: &[&str], typ: &str) -> Sleeper {
        let child = Command::new("unshare")
            .args(args)
            .args(["sleep", "1000"])
            .stdin(Stdio::null())
            .spawn()
            .unwrap();
        let s = Sleeper(child);
        let ours = std::fs::read_link(format!("/proc/self/ns/{typ}")).unwrap();
        for _ in 0..500 {
            let theirs = std::fs::read_link(s.ns(typ)).unwrap_or_default();
            if theirs != ours && !theirs.as_os_str().is_empty() {
                return s;
            }
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        panic!("unshare did not start");
    }

    pub fn pid(&self) -> u32 {
        self.0.id()
    }

    /// /proc/<pid>/ns/<typ>.
    pub fn ns(&self, typ: &str) -> String {
        format!("/proc/{}/ns/{typ}", self.pid())
    }
}

impl Drop for Sleeper {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Runs the shell command `cmd` with a terminal (util-linux `script`) and returns all it printed.
pub fn in_pty(cmd: &str, dir: &Path) -> String {
    let o = output(
        Command::new("script")
            .args(["-qec", cmd, "/dev/null"])
            .stdin(Stdio::null()),
        dir,
    );
    format!("{}{}", stdout(&o), stderr(&o))
}
