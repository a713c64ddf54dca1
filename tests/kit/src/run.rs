//! Running commands and reading what they said.

use crate::binary::BERTH;
use crate::bundle::Bundle;
use std::path::Path;
use std::process::{Command, Output, Stdio};

/// `cmd.output()`, but through temporary files in `dir` (see [`Bundle::berth`]).
pub fn output(cmd: &mut Command, dir: &Path) -> Output {
    static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let (o, e) = (dir.join(format!(".out{n}")), dir.join(format!(".err{n}")));
    let status = cmd
        .stdout(std::fs::File::create(&o).unwrap())
        .stderr(std::fs::File::create(&e).unwrap())
        .status()
        .unwrap_or_else(|err| panic!("{cmd:?}: {err}"));
    let out = Output {
        status,
        stdout: std::fs::read(&o).unwrap(),
        stderr: std::fs::read(&e).unwrap(),
    };
    let _ = std::fs::remove_file(o);
    let _ = std::fs::remove_file(e);
    out
}

/// What `o` printed on stdout.
pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// What `o` printed on stderr.
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

/// Runs the host shell command `cmd`, asserts it succeeded and returns its stdout.
#[track_caller]
pub fn sh(cmd: &str) -> String {
    let out = Command::new("sh")
        .args(["-c", cmd])
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("sh -c {cmd}: {e}"));
    assert!(
        out.status.success(),
        "{cmd}: {}{}",
        stdout(&out),
        stderr(&out)
    );
    stdout(&out)
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
    if private_ns {
        return sh_in_private_mount_ns(&script, b.tmp.path());
    }
    output(Command::new("/bin/sh").args(["-c", &script]), b.tmp.path())
}

/// Runs the shell script `script` in a mount namespace of its own (`unshare -m --propagation
/// private`): whatever it mounts dies with that namespace, never reaching the host's table.
pub fn sh_in_private_mount_ns(script: &str, dir: &Path) -> Output {
    output(
        Command::new("unshare").args(["-m", "--propagation", "private", "sh", "-c", script]),
        dir,
    )
}

/// [`run_from_shell`] in a private mount namespace.
pub fn run_in_private_ns(b: &Bundle, id: &str, setup: &str) -> Output {
    run_from_shell(b, id, setup, "", true)
}

/// Runs the shell command `cmd` with a terminal (util-linux `script`) and returns all it printed,
/// or `None` after a skip when `script` is not installed (see [`crate::tool`]).
pub fn in_pty(cmd: &str, dir: &Path) -> Option<String> {
    let script = crate::tool("script")?;
    let o = output(
        Command::new(script)
            .args(["-qec", cmd, "/dev/null"])
            .stdin(Stdio::null()),
        dir,
    );
    Some(format!("{}{}", stdout(&o), stderr(&o)))
}

/// The (syscall, occurrence) pairs of an `strace -o` output file, in order: what a test kills a
/// command at, one by one (`inject=NAME:signal=KILL:when=N`).
pub fn syscalls_in(trace: &Path) -> Vec<(String, usize)> {
    let mut seen = std::collections::HashMap::<String, usize>::new();
    std::fs::read_to_string(trace)
        .unwrap()
        .lines()
        .filter_map(|l| l.split('(').next())
        .filter(|n| !n.is_empty() && n.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'))
        .map(|n| {
            let k = seen.entry(n.to_string()).or_default();
            *k += 1;
            (n.to_string(), *k)
        })
        .collect()
}
