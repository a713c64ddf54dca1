//! Real clients drive the freshly built berth: Podman (through conmon) and containerd (`ctr` through the
//! runc v2 shim), each with private storage, state and sockets in a temp dir, started and stopped by
//! the test (containerd by pid). They need the Debian packages `podman` and `containerd`, which
//! `scripts/test.sh` installs; without them the tests are skipped with the reason (the kit's `tool`),
//! except under `BERTH_REQUIRE_TOOLS=1` (what scripts/test.sh sets), where a missing client is a failure.

use kit::*;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// The client tests run one at a time: Podman mounts each container's /dev/shm on the host, which
/// the other test's check of the host's mount table would see.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// SIGKILL to every process whose command line names `needle` (a test's own socket or exec root,
/// in its temp dir): the daemons' children a test started, found by pid, and nothing else.
fn kill_processes_naming(needle: &str) {
    for e in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        if String::from_utf8_lossy(&cmdline).contains(needle) {
            let _ =
                nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::SIGKILL);
        }
    }
}

/// Podman with its own containers.conf (berth registered as the runtime) and storage in `dir`.
struct Podman {
    dir: PathBuf,
    rootfs: PathBuf,
    /// /run/containers did not exist before: Podman 4.3 makes its empty network run directory there
    /// whatever the configuration says, and the test removes it again.
    made_run_dir: bool,
    /// Nor /run/berth, where Podman has its OCI runtime keep state (`--root /run/<runtime>`).
    made_berth_root: bool,
    /// Neither did Podman's cgroup parent (`libpod_parent`, with conmon's cgroup in it).
    made_cgroup_parent: bool,
}

/// Podman's cgroupfs parent in each hierarchy.
fn libpod_parents() -> Vec<PathBuf> {
    std::fs::read_dir("/sys/fs/cgroup")
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path().join("libpod_parent"))
        .chain(std::iter::once(PathBuf::from(
            "/sys/fs/cgroup/libpod_parent",
        )))
        .filter(|p| p.is_dir())
        .collect()
}

impl Podman {
    fn new(tmp: &Path) -> Podman {
        let dir = tmp.join("podman");
        std::fs::create_dir_all(dir.join("tmp")).unwrap();
        std::fs::create_dir_all(dir.join("networks")).unwrap();
        let rootfs = tmp.join("podman-rootfs");
        make_rootfs(&rootfs);
        std::fs::write(
            dir.join("containers.conf"),
            format!(
                r#"[containers]
netns = "none"
default_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]
[network]
network_config_dir = "{d}/networks"
[engine]
runtime = "berth"
cgroup_manager = "cgroupfs"
events_logger = "file"
events_logfile_path = "{d}/events.log"
runtime_supports_json = ["berth"]
tmp_dir = "{d}/tmp"
[engine.runtimes]
berth = ["{BERTH}"]
"#,
                d = dir.display()
            ),
        )
        .unwrap();
        std::fs::write(
            dir.join("storage.conf"),
            format!(
                "[storage]\ndriver = \"vfs\"\nrunroot = \"{d}/runroot\"\ngraphroot = \"{d}/root\"\n",
                d = dir.display()
            ),
        )
        .unwrap();
        Podman {
            dir,
            rootfs,
            made_run_dir: !Path::new("/run/containers").exists(),
            made_berth_root: !Path::new("/run/berth").exists(),
            made_cgroup_parent: libpod_parents().is_empty(),
        }
    }

    fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new("podman");
        // In the test's own directory: conmon writes its `oom` marker into its working directory
        // when a container is OOM-killed (it used to land at the repository root).
        c.env("CONTAINERS_CONF", self.dir.join("containers.conf"))
            .env("CONTAINERS_STORAGE_CONF", self.dir.join("storage.conf"))
            .args(args)
            .current_dir(&self.dir)
            .stdin(Stdio::null());
        c
    }

    /// `podman run --rm OPTS --rootfs ROOTFS sh -c SCRIPT`.
    fn run(&self, opts: &[&str], script: &str) -> Output {
        let mut a = vec!["run", "--rm"];
        a.extend_from_slice(opts);
        a.extend_from_slice(&[
            "--rootfs",
            self.rootfs.to_str().unwrap(),
            "sh",
            "-c",
            script,
        ]);
        output(&mut self.cmd(&a), &self.dir)
    }
}

impl Drop for Podman {
    fn drop(&mut self) {
        let _ = self.cmd(&["rm", "-a", "-f"]).output();
        if self.made_run_dir {
            let _ = std::fs::remove_dir("/run/containers/networks");
            let _ = std::fs::remove_dir("/run/containers");
        }
        if self.made_berth_root {
            // Empty once every container is gone; remove_dir leaves it otherwise.
            let _ = std::fs::remove_dir("/run/berth");
        }
        if self.made_cgroup_parent {
            for p in libpod_parents() {
                let _ = std::fs::remove_dir(p.join("conmon"));
                let _ = std::fs::remove_dir(&p);
            }
        }
    }
}

#[track_caller]
fn ran(o: &Output) -> String {
    assert!(
        o.status.success(),
        "exit {:?}: {}",
        o.status.code(),
        text(o)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn podman_drives_berth() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    if tool("podman").is_none() {
        return;
    }
    let b = Bundle::new("true");
    // The user-namespaced case needs the mapped root to reach the rootfs and Podman's files (as with
    // crun and runc): the test's directory is made traversable.
    std::fs::set_permissions(
        b.tmp.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let p = Podman::new(b.tmp.path());
    // Exit codes.
    let o = p.run(&[], "exit 7");
    assert_eq!(o.status.code(), Some(7), "{}", text(&o));
    // --cap-drop all: no capability at all.
    let out = ran(&p.run(&["--cap-drop", "all"], "grep CapEff /proc/self/status"));
    assert!(out.contains("CapEff:\t0000000000000000"), "{out}");
    // --cap-add sys_admin: the container may mount (the default Landlock stays off then).
    assert_eq!(
        ran(&p.run(
            &["--cap-add", "sys_admin"],
            "mount -t tmpfs t /tmp && echo mounted; unshare -m true && echo unshared"
        )),
        "mounted\nunshared\n"
    );
    // --user: create/start split with a non-root init.
    assert_eq!(ran(&p.run(&["--user", "1000:1000"], "id -u")), "1000\n");
    // --read-only (with Podman's tmpcopyup /run etc.), --tmpfs, --mount type=tmpfs.
    let out = ran(&p.run(
        &["--read-only"],
        "touch /x 2>/dev/null || echo root-ro; touch /tmp/y && echo tmp-ok",
    ));
    assert_eq!(out, "root-ro\ntmp-ok\n");
    assert_eq!(
        ran(&p.run(
            &["--tmpfs", "/etc"],
            "cat /etc/passwd | head -c4; echo; echo > /etc/new && echo etc-ok"
        )),
        "root\netc-ok\n"
    );
    assert_eq!(
        ran(&p.run(
            &["--mount", "type=tmpfs,destination=/m"],
            "echo > /m/x && echo m-ok"
        )),
        "m-ok\n"
    );
    // Volumes, ro and rw, one under /dev (Landlock rules no longer walk /dev).
    let vol = b.host_path("pvol");
    std::fs::write(vol.join("f"), "vol\n").unwrap();
    let v = vol.display();
    let out = ran(&p.run(&["-v", &format!("{v}:/ro:ro"), "-v", &format!("{v}:/rw:rw"), "-v", &format!("{v}:/dev/vol:ro")],
        "cat /ro/f /dev/vol/f; touch /ro/x 2>/dev/null || echo ro-refused; echo w > /rw/w && echo rw-ok"));
    assert_eq!(out, "vol\nvol\nro-refused\nrw-ok\n");
    assert!(vol.join("w").exists() && !vol.join("x").exists());
    assert_eq!(
        ran(&p.run(
            &[
                "--mount",
                &format!("type=bind,src={v},dst=/bp,bind-propagation=rslave")
            ],
            "cat /bp/f"
        )),
        "vol\n"
    );
    // --privileged (the host's /dev/ptmx in linux.devices) and --device.
    assert_eq!(
        ran(&p.run(&["--privileged"], "readlink /dev/ptmx")),
        "pts/ptmx\n"
    );
    assert_eq!(
        ran(&p.run(
            &["--device", "/dev/zero:/dev/myzero"],
            "head -c2 /dev/myzero | wc -c"
        )),
        "2\n"
    );
    // --uidmap: the cgroup mount falls back to a read-only stand-in.
    let out = ran(&p.run(
        &["--uidmap", "0:100000:65536", "--gidmap", "0:100000:65536"],
        "id -u; grep -c ' /sys/fs/cgroup ' /proc/self/mountinfo",
    ));
    assert_eq!(out, "0\n1\n");
    // -v SRC:DST:idmap: a volume owned by host uid 1000 shows as container uid 1000 in a user
    // namespace (and as nobody without idmap).
    let vol = p.dir.join("idvol");
    std::fs::create_dir_all(&vol).unwrap();
    std::fs::write(vol.join("f"), "x").unwrap();
    std::os::unix::fs::chown(vol.join("f"), Some(1000), Some(1000)).unwrap();
    std::fs::create_dir_all(p.rootfs.join("idv")).unwrap();
    for (suffix, want) in [(":idmap", "1000:1000\n"), ("", "65534:65534\n")] {
        let out = ran(&p.run(
            &[
                "--uidmap",
                "0:100000:65536",
                "--gidmap",
                "0:100000:65536",
                "-v",
                &format!("{}:/idv{suffix}", vol.display()),
            ],
            "stat -c %u:%g /idv/f",
        ));
        assert_eq!(out, want, "-v ...{suffix}");
    }
    // seccomp: Podman's default profile, and unconfined.
    assert_eq!(
        ran(&p.run(&[], "grep Seccomp: /proc/self/status")),
        "Seccomp:\t2\n"
    );
    assert_eq!(
        ran(&p.run(
            &["--security-opt", "seccomp=unconfined"],
            "grep Seccomp: /proc/self/status"
        )),
        "Seccomp:\t0\n"
    );
    // -t through a pty.
    let script_cmd = format!(
        "CONTAINERS_CONF={} CONTAINERS_STORAGE_CONF={} podman run --rm -t --rootfs {} sh -c 'tty; echo t-ok'",
        p.dir.join("containers.conf").display(),
        p.dir.join("storage.conf").display(),
        p.rootfs.display()
    );
    let Some(out) = in_pty(&script_cmd, b.tmp.path()) else {
        return;
    };
    assert!(out.contains("/dev/pts/0") && out.contains("t-ok"), "{out}");
    // -d, logs, stop, rm.
    let o = output(
        &mut p.cmd(&[
            "run",
            "-d",
            "--name",
            "pd1",
            "--rootfs",
            p.rootfs.to_str().unwrap(),
            "sh",
            "-c",
            "echo started; trap 'exit 0' TERM; while :; do sleep 0.1; done",
        ]),
        &p.dir,
    );
    ran(&o);
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let logs = text(&output(&mut p.cmd(&["logs", "pd1"]), &p.dir));
        if logs.contains("started") {
            break;
        }
        assert!(Instant::now() < deadline, "no logs: {logs}");
        std::thread::sleep(Duration::from_millis(50));
    }
    // exec: plain, with a terminal (-t through conmon's console socket, -it through a pty), a
    // healthcheck.
    assert_eq!(
        ran(&output(
            &mut p.cmd(&[
                "exec",
                "pd1",
                "sh",
                "-c",
                "echo exec-ok; cat /proc/1/cmdline | head -c2"
            ]),
            &p.dir
        )),
        "exec-ok\nsh"
    );
    let o = output(&mut p.cmd(&["exec", "pd1", "sh", "-c", "exit 4"]), &p.dir);
    assert_eq!(o.status.code(), Some(4), "{}", text(&o));
    let exec_t = format!(
        "CONTAINERS_CONF={} CONTAINERS_STORAGE_CONF={} podman exec -it pd1 sh -c 'tty; echo it-ok'",
        p.dir.join("containers.conf").display(),
        p.dir.join("storage.conf").display()
    );
    let Some(out) = in_pty(&exec_t, b.tmp.path()) else {
        return;
    };
    assert!(out.contains("/dev/pts/") && out.contains("it-ok"), "{out}");
    let o = output(
        &mut p.cmd(&["exec", "-t", "pd1", "sh", "-c", "tty"]),
        &p.dir,
    );
    assert!(text(&o).contains("/dev/pts/"), "{}", text(&o));
    // pause/unpause (the freezer), stats (read from the cgroup berth made where Podman said).
    ran(&output(&mut p.cmd(&["pause", "pd1"]), &p.dir));
    let st = ran(&output(
        &mut p.cmd(&["inspect", "--format", "{{.State.Status}}", "pd1"]),
        &p.dir,
    ));
    assert_eq!(st.trim(), "paused");
    ran(&output(&mut p.cmd(&["unpause", "pd1"]), &p.dir));
    let stats = ran(&output(
        &mut p.cmd(&["stats", "--no-stream", "--format", "{{.PIDs}}", "pd1"]),
        &p.dir,
    ));
    assert!(stats.trim().parse::<u32>().is_ok_and(|n| n >= 1), "{stats}");
    ran(&output(&mut p.cmd(&["stop", "-t", "5", "pd1"]), &p.dir));
    ran(&output(&mut p.cmd(&["rm", "pd1"]), &p.dir));
    // A healthcheck is an exec.
    ran(&output(
        &mut p.cmd(&[
            "run",
            "-d",
            "--name",
            "pd2",
            "--health-cmd",
            "test -d /proc/1",
            "--rootfs",
            p.rootfs.to_str().unwrap(),
            "sleep",
            "100",
        ]),
        &p.dir,
    ));
    ran(&output(&mut p.cmd(&["healthcheck", "run", "pd2"]), &p.dir));
    ran(&output(&mut p.cmd(&["rm", "-f", "-t", "0", "pd2"]), &p.dir));
    // --memory: an allocation beyond it is OOM-killed; --pids-limit: a fork beyond it fails.
    let out = ran(&p.run(
        &["--memory", "16m", "--memory-swap", "16m"],
        "dd if=/dev/zero of=/dev/null bs=64M count=1 2>/dev/null; echo dd=$?",
    ));
    assert_eq!(out, "dd=137\n");
    let o = p.run(
        &["--pids-limit", "3"],
        "sleep 1 & sleep 1 & sleep 1 & sleep 1 & wait; echo all-forked",
    );
    assert!(
        text(&o).contains("can't fork") && !text(&o).contains("all-forked"),
        "{}",
        text(&o)
    );
}

/// A private containerd (own root, state and sockets in `dir`), stopped by pid on drop.
struct Containerd {
    dir: PathBuf,
    child: std::process::Child,
    ns: String,
}

impl Containerd {
    fn start(tmp: &Path) -> Containerd {
        let dir = tmp.join("containerd");
        std::fs::create_dir_all(&dir).unwrap();
        let d = dir.display();
        std::fs::write(
            dir.join("config.toml"),
            format!(
                "version = 2\nroot = \"{d}/root\"\nstate = \"{d}/state\"\ndisabled_plugins = [\"io.containerd.grpc.v1.cri\"]\n[grpc]\n  address = \"{d}/c.sock\"\n[ttrpc]\n  address = \"{d}/c.sock.ttrpc\"\n[debug]\n  address = \"{d}/debug.sock\"\n"
            ),
        )
        .unwrap();
        let child = Command::new("containerd")
            .arg("--config")
            .arg(dir.join("config.toml"))
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(dir.join("log")).unwrap())
            .stderr(std::fs::File::create(dir.join("log.err")).unwrap())
            .spawn()
            .unwrap();
        let c = Containerd {
            dir,
            child,
            ns: format!("berthtest{}", std::process::id()),
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        while !c.ctr(&["version"]).status.success() {
            assert!(Instant::now() < deadline, "containerd did not start");
            std::thread::sleep(Duration::from_millis(100));
        }
        c
    }

    fn ctr(&self, args: &[&str]) -> Output {
        let sock = self.dir.join("c.sock");
        let mut a = vec!["--address", sock.to_str().unwrap(), "-n", &self.ns];
        a.extend_from_slice(args);
        output(Command::new("ctr").args(&a).stdin(Stdio::null()), &self.dir)
    }

    /// `ctr run OPTS --runc-binary berth --rootfs ROOTFS ID sh -c SCRIPT`.
    fn run(&self, opts: &[&str], rootfs: &Path, id: &str, script: &str) -> Output {
        let mut a = vec!["run"];
        a.extend_from_slice(opts);
        a.extend_from_slice(&[
            "--runc-binary",
            BERTH.as_str(),
            "--rootfs",
            rootfs.to_str().unwrap(),
            id,
            "sh",
            "-c",
            script,
        ]);
        self.ctr(&a)
    }
}

impl Drop for Containerd {
    fn drop(&mut self) {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(self.child.id() as i32),
            nix::sys::signal::SIGTERM,
        );
        let _ = self.child.wait();
        // Shims of this test's namespace (they name the test's socket), by pid.
        let sock = self.dir.join("c.sock").display().to_string();
        kill_processes_naming(&sock);
    }
}

#[test]
fn containerd_drives_berth_through_the_runc_shim() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    if tool("containerd").is_none() {
        return;
    }
    let b = Bundle::new("true");
    let rootfs = b.tmp.path().join("ctr-rootfs");
    make_rootfs(&rootfs);
    let c = Containerd::start(b.tmp.path());
    // run --rm and its exit code.
    let o = c.run(&["--rm"], &rootfs, "c1", "echo hello; exit 3");
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));
    assert!(text(&o).contains("hello"));
    // rbind ro and rw mounts.
    let vol = b.host_path("cvol");
    std::fs::write(vol.join("f"), "vol\n").unwrap();
    let v = vol.display();
    let out = ran(&c.run(
        &[
            "--rm",
            "--mount",
            &format!("type=bind,src={v},dst=/ro,options=rbind:ro"),
            "--mount",
            &format!("type=bind,src={v},dst=/rw,options=rbind:rw"),
        ],
        &rootfs,
        "c2",
        "cat /ro/f; touch /ro/x 2>/dev/null || echo ro-refused; echo w > /rw/w && echo rw-ok",
    ));
    assert_eq!(out, "vol\nro-refused\nrw-ok\n");
    // --read-only and --privileged.
    assert_eq!(
        ran(&c.run(
            &["--rm", "--read-only"],
            &rootfs,
            "c3",
            "touch /x 2>/dev/null || echo root-ro"
        )),
        "root-ro\n"
    );
    assert_eq!(
        ran(&c.run(
            &["--rm", "--privileged"],
            &rootfs,
            "c4",
            "readlink /dev/ptmx"
        )),
        "pts/ptmx\n"
    );
    // -t through a pty.
    let sock = c.dir.join("c.sock");
    let cmd = format!(
        "ctr --address {} -n {} run --rm -t --runc-binary {BERTH} --rootfs {} c5 sh -c 'tty; echo t-ok'",
        sock.display(),
        c.ns,
        rootfs.display()
    );
    let Some(out) = in_pty(&cmd, b.tmp.path()) else {
        return;
    };
    assert!(out.contains("/dev/pts/0") && out.contains("t-ok"), "{out}");
    // kill and kill --all of a running task, then of a stopped one (runc's contract: a plain kill says
    // "not running" and fails, --all succeeds), then delete.
    // --memory-limit: an allocation beyond it is OOM-killed.
    let out = ran(&c.run(
        &["--rm", "--memory-limit", "16777216"],
        &rootfs,
        "cm",
        "dd if=/dev/zero of=/dev/null bs=64M count=1 2>/dev/null; echo dd=$?",
    ));
    assert_eq!(out, "dd=137\n");
    ran(&c.run(
        &[
            "-d",
            "--cgroup",
            &format!("/berth-ctr-{}/c6", std::process::id()),
        ],
        &rootfs,
        "c6",
        "sleep 100",
    ));
    // exec through the shim, plain and with a terminal.
    let o = c.ctr(&[
        "task",
        "exec",
        "--exec-id",
        "e1",
        "c6",
        "sh",
        "-c",
        "echo exec-ok; exit 3",
    ]);
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));
    assert!(text(&o).contains("exec-ok"));
    let cmd = format!(
        "ctr --address {} -n {} task exec -t --exec-id e2 c6 sh -c 'tty; echo t-ok'",
        c.dir.join("c.sock").display(),
        c.ns
    );
    let Some(out) = in_pty(&cmd, b.tmp.path()) else {
        return;
    };
    assert!(out.contains("/dev/pts/") && out.contains("t-ok"), "{out}");
    // pause/resume and ps through the shim.
    ran(&c.ctr(&["task", "pause", "c6"]));
    assert!(
        text(&c.ctr(&["task", "ls"])).contains("PAUSED"),
        "{}",
        text(&c.ctr(&["task", "ls"]))
    );
    ran(&c.ctr(&["task", "resume", "c6"]));
    assert!(text(&c.ctr(&["task", "ls"])).contains("RUNNING"));
    let ps = ran(&c.ctr(&["task", "ps", "c6"]));
    assert!(ps.lines().count() >= 2, "{ps}");
    ran(&c.ctr(&["task", "kill", "-a", "-s", "KILL", "c6"]));
    let deadline = Instant::now() + Duration::from_secs(10);
    while !text(&c.ctr(&["task", "ls"])).contains("STOPPED") {
        assert!(Instant::now() < deadline, "task did not stop");
        std::thread::sleep(Duration::from_millis(50));
    }
    let o = c.ctr(&["task", "kill", "-s", "KILL", "c6"]);
    assert!(!o.status.success());
    assert!(
        text(&o).contains("not running") || text(&o).contains("not found"),
        "{}",
        text(&o)
    );
    ran(&c.ctr(&["task", "kill", "-a", "-s", "KILL", "c6"]));
    ran(&c.ctr(&["task", "rm", "c6"]));
    ran(&c.ctr(&["container", "rm", "c6"]));
}

/// An image Podman saved as an OCI layout (`podman save --format oci-dir`) runs through berth's
/// front end (`--rootfs oci:DIR:REF`), its tag given as Podman wrote it.
#[test]
fn an_image_podman_saved_runs_through_the_front_end() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    if tool("podman").is_none() {
        return;
    }
    let b = Bundle::new("true");
    let p = Podman::new(b.tmp.path());
    let tarball = b.tmp.path().join("bb.tar");
    let st = Command::new("tar")
        .arg("-C")
        .arg(&p.rootfs)
        .arg("-cf")
        .arg(&tarball)
        .arg(".")
        .status()
        .unwrap();
    assert!(st.success());
    let o = output(
        &mut p.cmd(&["import", tarball.to_str().unwrap(), "localhost/bb:1"]),
        &p.dir,
    );
    assert!(o.status.success(), "{}", text(&o));
    let layout = b.tmp.path().join("layout");
    let o = output(
        &mut p.cmd(&[
            "save",
            "--format",
            "oci-dir",
            "-o",
            layout.to_str().unwrap(),
            "localhost/bb:1",
        ]),
        &p.dir,
    );
    assert!(o.status.success(), "{}", text(&o));
    let image = format!("oci:{}:localhost/bb:1", layout.display());
    let mut c = b.cmd(&[
        "run",
        "--rootfs",
        &image,
        "--",
        "sh",
        "-c",
        "echo from-podman; id -u",
    ]);
    c.env("BERTH_IMAGE_CACHE", b.tmp.path().join("cache"));
    let out = ok(&output(&mut c, b.tmp.path()));
    assert_eq!(out, "from-podman\n0\n");
}

/// A private dockerd (own data root, exec root, socket, pid file, trust key and config in a temp
/// dir, its own managed containerd, no bridge, no iptables, no ip_forward, vfs storage, containers
/// under a cgroup parent of the test's own) with berth registered as a runtime, started in a
/// private mount namespace with a /run of its own, and stopped by pid.
struct Dockerd {
    dir: PathBuf,
    child: std::process::Child,
    docker: PathBuf,
    cgroup_parent: String,
}

impl Dockerd {
    fn start(tmp: &Path, dockerd: &Path, docker: PathBuf) -> Dockerd {
        let dir = tmp.join("docker");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("daemon.json"), "{}").unwrap();
        let cgroup_parent = format!("/berth-docker-{}", std::process::id());
        let d = dir.display();
        // /run and /etc/docker are tmpfs mounts of its own namespace: dockerd makes
        // /run/docker/plugins whatever its exec root, and writes its trust key to
        // /etc/docker/key.json (Docker's package makes that directory).
        let child = Command::new("unshare")
            .args(["-m", "--propagation", "private", "sh", "-c"])
            .arg(
                "set -e; mount -t tmpfs berth-test-run /run; \
                 if [ -d /etc/docker ]; then mount -t tmpfs berth-test-etc /etc/docker; fi; \
                 exec \"$0\" \"$@\"",
            )
            .arg(dockerd)
            .arg(format!("--config-file={d}/daemon.json"))
            .arg(format!("--data-root={d}/data"))
            .arg(format!("--exec-root={d}/exec"))
            .arg(format!("--pidfile={d}/pid"))
            .arg(format!("--host=unix://{d}/sock"))
            .arg(format!("--add-runtime=berth={}", BERTH))
            .arg(format!("--cgroup-parent={cgroup_parent}"))
            // dockerd runs in the host's network namespace: nothing of it may change the host's
            // network (no bridge, no iptables rules, no ip_forward sysctl).
            .args([
                "--bridge=none",
                "--ip-forward=false",
                "--iptables=false",
                "--ip6tables=false",
                "--ip-masq=false",
                "--userland-proxy=false",
                "--storage-driver=vfs",
            ])
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(dir.join("log")).unwrap())
            .stderr(std::fs::File::create(dir.join("log.err")).unwrap())
            .spawn()
            .unwrap();
        let dk = Dockerd {
            dir,
            child,
            docker,
            cgroup_parent,
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        while !dk.docker(&["version"]).status.success() {
            assert!(
                Instant::now() < deadline,
                "dockerd did not answer: {}",
                std::fs::read_to_string(dk.dir.join("log.err")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        dk
    }

    fn docker(&self, args: &[&str]) -> Output {
        let host = format!("unix://{}/sock", self.dir.display());
        output(
            Command::new(&self.docker)
                .arg("-H")
                .arg(&host)
                .args(args)
                .stdin(Stdio::null()),
            &self.dir,
        )
    }
}

impl Drop for Dockerd {
    fn drop(&mut self) {
        let _ = self.docker(&["rm", "-f", "dk-d1", "dk-h1"]);
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(self.child.id() as i32),
            nix::sys::signal::SIGTERM,
        );
        let deadline = Instant::now() + Duration::from_secs(15);
        while self.child.try_wait().ok().flatten().is_none() {
            if Instant::now() > deadline {
                let _ = self.child.kill();
                let _ = self.child.wait();
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        // Its containerd and shims name the test's exec root: by pid, only those.
        let root = self.dir.join("exec").display().to_string();
        kill_processes_naming(&root);
        for r in cgroup_roots() {
            let _ = std::fs::remove_dir(r.join(self.cgroup_parent.trim_start_matches('/')));
        }
    }
}

/// Docker (Debian's docker.io) drives berth as `docker run --runtime berth`: exit codes, volumes,
/// `--read-only`, `--tmpfs`, `--user`, `--cap-drop ALL`, `--memory`, `--pids-limit`, `-d` +
/// `exec` + `stop` + `rm`, `pause`/`unpause`, a healthcheck; the same with runc as the control.
/// Docker sends `blockIO.weight: 0` for every container ("not set"): taken as runc takes it.
#[test]
fn docker_drives_berth_with_runc_as_the_control() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let Some(dockerd) = tool("dockerd") else {
        return;
    };
    // Debian's client beside its daemon, where there is one.
    let docker = if Path::new("/usr/bin/docker").exists() {
        PathBuf::from("/usr/bin/docker")
    } else {
        let Some(d) = tool("docker") else { return };
        d
    };
    let tmp = tempfile::tempdir().unwrap();
    let before = mountinfo();
    let forward = std::fs::read_to_string("/proc/sys/net/ipv4/ip_forward").unwrap();
    let host_files = ["/run/docker", "/etc/docker/key.json", "/var/lib/docker"];
    let existed: Vec<bool> = host_files.iter().map(|p| Path::new(p).exists()).collect();
    let dk = Dockerd::start(tmp.path(), &dockerd, docker);
    let image = tmp.path().join("image.tar");
    ok(&output(
        Command::new("tar")
            .arg("-C")
            .arg(busybox().parent().unwrap().parent().unwrap())
            .arg("-cf")
            .arg(&image)
            .arg("."),
        tmp.path(),
    ));
    ok(&dk.docker(&["import", image.to_str().unwrap(), "bb:1"]));
    let vol = tmp.path().join("vol");
    std::fs::create_dir_all(&vol).unwrap();
    std::fs::write(vol.join("f"), "data\n").unwrap();
    let v = vol.display().to_string();
    let memory_file = if cgroup_v2() {
        "/sys/fs/cgroup/memory.max"
    } else {
        "/sys/fs/cgroup/memory/memory.limit_in_bytes"
    };
    let pids_file = if cgroup_v2() {
        "/sys/fs/cgroup/pids.max"
    } else {
        "/sys/fs/cgroup/pids/pids.max"
    };
    for rt in ["berth", "runc"] {
        let run = |extra: &[&str], cmd: &[&str]| {
            let mut a = vec!["run", "--rm", "--runtime", rt, "--network", "none"];
            a.extend_from_slice(extra);
            a.push("bb:1");
            a.extend_from_slice(cmd);
            dk.docker(&a)
        };
        assert_eq!(
            run(&[], &["sh", "-c", "exit 4"]).status.code(),
            Some(4),
            "{rt}"
        );
        let ro = format!("{v}:/v:ro");
        assert_eq!(
            ok(&run(
                &["-v", &ro],
                &["sh", "-c", "cat /v/f; touch /v/x 2>/dev/null || echo ro-ok"]
            )),
            "data\nro-ok\n",
            "{rt}"
        );
        let rw = format!("{v}:/v");
        assert_eq!(
            ok(&run(
                &["-v", &rw],
                &["sh", "-c", "echo w > /v/w-$0 && cat /v/w-$0", rt]
            )),
            "w\n",
            "{rt}"
        );
        assert_eq!(
            ok(&run(
                &["--read-only"],
                &["sh", "-c", "touch /x 2>/dev/null || echo ro-root"]
            )),
            "ro-root\n",
            "{rt}"
        );
        assert_eq!(
            ok(&run(
                &["--tmpfs", "/scratch:mode=1777"],
                &["stat", "-c", "%a", "/scratch"]
            )),
            "1777\n",
            "{rt}"
        );
        assert_eq!(
            ok(&run(&["--user", "1000:1000"], &["id", "-u"])),
            "1000\n",
            "{rt}"
        );
        assert_eq!(
            ok(&run(
                &["--cap-drop", "ALL"],
                &["grep", "CapEff", "/proc/self/status"]
            )),
            "CapEff:\t0000000000000000\n",
            "{rt}"
        );
        assert_eq!(
            ok(&run(&["--memory", "64m"], &["cat", memory_file])),
            "67108864\n",
            "{rt}"
        );
        assert_eq!(
            ok(&run(&["--pids-limit", "20"], &["cat", pids_file])),
            "20\n",
            "{rt}"
        );
        ok(&dk.docker(&[
            "run",
            "-d",
            "--name",
            "dk-d1",
            "--runtime",
            rt,
            "--network",
            "none",
            "bb:1",
            "sleep",
            "100",
        ]));
        assert_eq!(
            ok(&dk.docker(&["exec", "dk-d1", "echo", "exec-ok"])),
            "exec-ok\n",
            "{rt}"
        );
        ok(&dk.docker(&["pause", "dk-d1"]));
        assert_eq!(
            ok(&dk.docker(&["inspect", "-f", "{{.State.Status}}", "dk-d1"])),
            "paused\n",
            "{rt}"
        );
        ok(&dk.docker(&["unpause", "dk-d1"]));
        ok(&dk.docker(&["stop", "-t", "1", "dk-d1"]));
        ok(&dk.docker(&["rm", "dk-d1"]));
        ok(&dk.docker(&[
            "run",
            "-d",
            "--name",
            "dk-h1",
            "--runtime",
            rt,
            "--network",
            "none",
            "--health-cmd",
            "test -e /proc/1",
            "--health-interval",
            "1s",
            "bb:1",
            "sleep",
            "100",
        ]));
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let s = ok(&dk.docker(&["inspect", "-f", "{{.State.Health.Status}}", "dk-h1"]));
            if s == "healthy\n" {
                break;
            }
            assert!(Instant::now() < deadline, "{rt}: health stayed {s}");
            std::thread::sleep(Duration::from_millis(200));
        }
        ok(&dk.docker(&["rm", "-f", "dk-h1"]));
    }
    drop(dk);
    assert_eq!(before, mountinfo(), "the host's mount table changed");
    assert_eq!(
        std::fs::read_to_string("/proc/sys/net/ipv4/ip_forward").unwrap(),
        forward,
        "dockerd changed the host's ip_forward"
    );
    for (p, e) in host_files.iter().zip(existed) {
        assert_eq!(
            Path::new(p).exists(),
            e,
            "dockerd made or removed {p} on the host"
        );
    }
}
