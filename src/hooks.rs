//! OCI hooks: each runs with the state JSON on stdin, its own argv and env, and is killed when its
//! timeout passes. Which moments call which list is decided by the callers (process::spawn for
//! prestart/createRuntime, process::init for createContainer/startContainer, cli for poststart/poststop).
//! The timeout covers writing the state too (a hook that never reads it cannot hold berth).

use crate::error::{Error, Result};
use crate::spec::{Hook, Hooks};
use std::io::Write;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Every list with its spec name, for validation.
pub fn all(h: &Hooks) -> [(&'static str, &Vec<Hook>); 6] {
    [
        ("prestart", &h.prestart),
        ("createRuntime", &h.create_runtime),
        ("createContainer", &h.create_container),
        ("startContainer", &h.start_container),
        ("poststart", &h.poststart),
        ("poststop", &h.poststop),
    ]
}

/// Runs one hook to completion (or its timeout) with `state` on stdin.
pub fn run_one(kind: &str, index: usize, hook: &Hook, state: &str) -> Result<()> {
    run_one_in(kind, index, hook, state, None)
}

/// [`run_one`], with `default_env` for a hook that names no `env` of its own (None: the runtime's).
fn run_one_in(
    kind: &str,
    index: usize,
    hook: &Hook,
    state: &str,
    default_env: Option<&[String]>,
) -> Result<()> {
    let label = format!("hooks.{kind}[{index}] ({})", hook.path);
    let mut child = command(hook, default_env)
        .spawn()
        .map_err(|e| Error::State(format!("{label}: cannot start: {e}")))?;
    let status = feed_and_wait(&label, hook, &mut child, state)?;
    if status.success() {
        Ok(())
    } else if let Some(sig) = status.signal() {
        Err(Error::State(format!("{label}: killed by signal {sig}")))
    } else {
        Err(Error::State(format!(
            "{label}: exited with status {}",
            status.code().unwrap_or(-1)
        )))
    }
}

/// The hook's command: its path, argv (argv[0] as given), and environment.
fn command(hook: &Hook, default_env: Option<&[String]>) -> Command {
    let mut cmd = Command::new(&hook.path);
    if let Some((argv0, rest)) = hook.args.split_first() {
        cmd.arg0(argv0).args(rest);
    }
    cmd.stdin(Stdio::piped());
    // A hook without `env` gets `default_env` (startContainer: the container process's), else the
    // runtime's environment, as runc gives it (Go's exec with a nil Env).
    let env = if hook.env.is_empty() {
        default_env
    } else {
        Some(hook.env.as_slice())
    };
    if let Some(env) = env {
        cmd.env_clear();
        for kv in env {
            if let Some((k, v)) = kv.split_once('=') {
                cmd.env(k, v);
            }
        }
    }
    cmd
}

/// Writes `state` to the hook's stdin and waits for it to exit, both within its timeout (killed at
/// the deadline).
fn feed_and_wait(
    label: &str,
    hook: &Hook,
    child: &mut std::process::Child,
    state: &str,
) -> Result<std::process::ExitStatus> {
    let deadline = hook
        .timeout
        .filter(|t| *t > 0)
        .map(|t| Instant::now() + Duration::from_secs(t as u64));
    // The state goes in without blocking, inside the same deadline: a hook that never reads a state
    // larger than a pipe buffer is killed at its timeout like any other (and one that does not read
    // at all is fine: EPIPE ends the writing).
    let mut stdin = child.stdin.take();
    if let Some(f) = &stdin {
        let _ = nix::fcntl::fcntl(
            std::os::fd::AsRawFd::as_raw_fd(f),
            nix::fcntl::FcntlArg::F_SETFL(nix::fcntl::OFlag::O_NONBLOCK),
        );
    }
    let mut written = 0;
    let mut pause = Duration::from_micros(200);
    let status = loop {
        if let Some(f) = &mut stdin {
            match f.write(&state.as_bytes()[written..]) {
                Ok(n) => written += n,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(_) => written = state.len(),
            }
            if written >= state.len() {
                stdin = None;
            }
        }
        match child.try_wait() {
            Ok(Some(st)) => break st,
            Ok(None) => {}
            Err(e) => return Err(Error::State(format!("{label}: wait: {e}"))),
        }
        if deadline.is_some_and(|d| Instant::now() >= d) {
            drop(stdin.take());
            let _ = child.kill();
            let _ = child.wait();
            return Err(Error::State(format!(
                "{label}: timed out after {} s and was killed",
                hook.timeout.unwrap_or(0)
            )));
        }
        if stdin.is_none() {
            std::thread::sleep(pause);
            pause = (pause * 2).min(Duration::from_millis(20));
        } else {
            // Still writing: wait for room in the pipe (or the hook's exit), at most 20 ms.
            let fd = stdin.as_ref().map(std::os::fd::AsFd::as_fd);
            if let Some(fd) = fd {
                let mut fds = [nix::poll::PollFd::new(fd, nix::poll::PollFlags::POLLOUT)];
                let _ = nix::poll::poll(&mut fds, nix::poll::PollTimeout::from(20u8));
            }
        }
    };
    Ok(status)
}

/// Runs a list in order; the first failure stops it.
pub fn run_list(kind: &str, hooks: &[Hook], state: &str) -> Result<()> {
    for (i, h) in hooks.iter().enumerate() {
        run_one(kind, i, h, state)?;
    }
    Ok(())
}

/// Runs startContainer hooks, in the container: a hook without `env` sees the container process's
/// environment (`process.env`), as runc gives it, not the caller of `create`'s.
pub fn run_start_container(hooks: &[Hook], state: &str, process_env: &[String]) -> Result<()> {
    for (i, h) in hooks.iter().enumerate() {
        run_one_in("startContainer", i, h, state, Some(process_env))?;
    }
    Ok(())
}

/// Runs a list whose failures only warn (poststart, poststop).
pub fn run_list_warn(kind: &str, hooks: &[Hook], state: &str) {
    for (i, h) in hooks.iter().enumerate() {
        if let Err(e) = run_one(kind, i, h, state) {
            crate::logging::warn(&e.to_string());
        }
    }
}
