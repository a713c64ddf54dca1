//! `berth run`: create + start + wait. Signals sent to berth are forwarded to the container's process
//! (SIGWINCH resizes its terminal instead), the terminal is relayed when process.terminal is set and no
//! console socket takes it, and berth exits with the process's exit code (128+N when killed by signal
//! N). After the process exits, the container is deleted (poststop hooks, state removed), as runc does.
//! `--detach` returns once the process runs.

use super::create::{self, Launch, create_container, load_spec};
use super::{Global, front, volumes};
use crate::error::{Error, Result};
use crate::process::sync::Msg;
use crate::state::Container;
use crate::sys;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::signal::{SigSet, SigmaskHow, Signal, kill, sigprocmask};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::Pid;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::path::PathBuf;

/// Examples for `berth run --help`.
pub const EXAMPLES: &str = "\
Examples:
  A CI job: the workspace writable, a cache read-only, no network, 2 GiB, 2 CPUs:
    berth run --rootfs ./rootfs -v \"$PWD\":/work:rw -v ~/.cache/ci:/cache -w /work \\
        --memory 2g --cpus 2 -- make test

  From an OCI image layout (skopeo copy docker://busybox oci:img:latest), as a user:
    berth run --rootfs oci:img:latest -u 1000:1000 -e HOME=/tmp -- id

  Detached with a name, then exec into it and remove it:
    berth run --rootfs ./rootfs --name job1 -d -- sleep 600
    berth exec job1 ps; berth delete --force job1

  Print the generated config.json (a bundle for runc, crun or berth create):
    berth run --rootfs ./rootfs --tmpfs /scratch:size=64m --cap-add NET_BIND_SERVICE --dry-run

Volumes (-v, --volumes) are bound as whole trees, read-only unless :rw, never with set-uid binaries or
device nodes; under a host mount policy (--policy) every path is vetted by it.";

/// `run` options.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The create options.
    #[command(flatten)]
    pub create: create::CreateArgs,
    /// Return once the process runs (the front end prints the container id).
    #[arg(long, short = 'd')]
    pub detach: bool,
    /// Front end: run this root filesystem (a directory, or an OCI image layout: oci:DIR[:TAG])
    /// with a spec built in memory, no bundle needed.
    #[arg(long, value_name = "DIR|oci:DIR[:TAG]", help_heading = "Front end")]
    pub rootfs: Option<PathBuf>,
    /// A volume HOST:CTR[:ro|rw], read-only unless :rw (repeatable).
    #[arg(
        long = "volume",
        short = 'v',
        value_name = "HOST:CTR[:ro|rw]",
        requires = "rootfs",
        help_heading = "Front end: mounts"
    )]
    pub volumes: Vec<String>,
    /// A JSON list of {host_path, container_path, read_only}.
    #[arg(
        long = "volumes",
        value_name = "FILE",
        requires = "rootfs",
        help_heading = "Front end: mounts"
    )]
    pub volumes_file: Option<PathBuf>,
    /// The container id (default berth-<pid>).
    #[arg(
        long = "id",
        visible_alias = "name",
        value_name = "ID",
        requires = "rootfs",
        help_heading = "Front end: lifecycle"
    )]
    pub name: Option<String>,
    /// The front end's other options.
    #[command(flatten)]
    pub front: front::FrontArgs,
    /// The command and its arguments, after `--` (default sh).
    #[arg(last = true, requires = "rootfs", value_name = "CMD")]
    pub command: Vec<String>,
}

/// The spec for this run: the bundle's, or the front end's when --rootfs is given (which also fills
/// in the container id).
fn spec_for(a: &mut Args) -> Result<crate::spec::ValidSpec> {
    let Some(rootfs) = &a.rootfs else {
        return load_spec(&a.create.bundle);
    };
    if a.create.id.is_some() && a.name.is_some() {
        return Err(Error::InvalidSpec(
            "give the container id once: positionally or with --id".into(),
        ));
    }
    let volumes = volumes::all(&a.volumes, a.volumes_file.as_deref())?;
    // An OCI image layout: its layers unpacked (once) and mounted as an overlay in a mount
    // namespace of this process's own; its config gives the defaults the flags override.
    let (rootfs, image) = match crate::image::parse_ref(&rootfs.to_string_lossy()) {
        Some((dir, tag)) => {
            let img = crate::image::load(&dir, tag.as_deref())?;
            (crate::image::mount_rootfs(&img)?, Some(img.config))
        }
        None => (rootfs.clone(), None),
    };
    let command = match &image {
        Some(c) => {
            let mut cmd = c.entrypoint.clone().unwrap_or_default();
            if a.command.is_empty() {
                cmd.extend(c.cmd.clone().unwrap_or_default());
            } else {
                cmd.extend(a.command.iter().cloned());
            }
            cmd
        }
        None => a.command.clone(),
    };
    let vs = volumes::front_end_spec(&rootfs, &volumes, &command, &|spec| {
        if let Some(c) = &image {
            front::apply_image(c, spec, &rootfs)?;
        }
        front::apply(&a.front, spec, &rootfs, a.detach)
    })?;
    if a.create.id.is_none() {
        a.create.id = Some(
            a.name
                .clone()
                .unwrap_or_else(|| format!("berth-{}", std::process::id())),
        );
    }
    Ok(vs)
}

/// Signals forwarded to the container (plus SIGCHLD and SIGWINCH, handled here).
const FORWARDED: &[Signal] = &[
    Signal::SIGHUP,
    Signal::SIGINT,
    Signal::SIGQUIT,
    Signal::SIGUSR1,
    Signal::SIGUSR2,
    Signal::SIGTERM,
    Signal::SIGALRM,
    Signal::SIGCONT,
    Signal::SIGTSTP,
    Signal::SIGTTIN,
    Signal::SIGTTOU,
    Signal::SIGPWR,
    Signal::SIGPROF,
    Signal::SIGVTALRM,
];

pub(super) fn signal_mask() -> SigSet {
    let mut m = SigSet::empty();
    for s in FORWARDED {
        m.add(*s);
    }
    m.add(Signal::SIGCHLD);
    m.add(Signal::SIGWINCH);
    m
}

/// Kills, reaps and deletes after a failed start.
fn abort(g: &Global, id: &str, pid: i32) {
    let p = Pid::from_raw(pid);
    let _ = kill(p, Signal::SIGKILL);
    let _ = waitpid(p, None);
    if let Ok(c) = Container::load(&g.root, id) {
        let _ = c.remove();
    }
}

/// `berth run`.
pub fn run(g: &Global, mut a: Args) -> Result<i32> {
    // Block before the process exists, so no signal meant for it is lost; the init unblocks its own.
    let mask = signal_mask();
    sigprocmask(SigmaskHow::SIG_BLOCK, Some(&mask), None)
        .map_err(|e| Error::sys("sigprocmask", e))?;
    let mut vs = spec_for(&mut a)?;
    if a.front.dry_run {
        let text = serde_json::to_string_pretty(&vs.spec)
            .map_err(|e| Error::State(format!("--dry-run: {e}")))?;
        super::out(&text)?;
        return Ok(0);
    }
    let id = a.create.id()?.to_string();
    if a.detach && vs.process.terminal && a.create.console_socket.is_none() {
        return Err(Error::InvalidSpec(
            "process.terminal is true: cannot allocate a tty for run --detach without --console-socket (it would be lost)".into(),
        ));
    }
    let (c, spawned) = create_container(g, &a.create, &mut vs, Launch::Run { detach: a.detach })?;
    let pid = spawned.pid;
    // Start: release the init; the sync socket then closes on its execve, or carries its last error.
    let started =
        spawned
            .channel
            .send(&Msg::Continue)
            .and_then(|()| match spawned.channel.recv() {
                Ok(Msg::Error { errno, msg }) => Err(Error::Child { msg, errno }),
                Ok(other) => Err(Error::State(format!(
                    "sync socket: unexpected {other:?} after start"
                ))),
                Err(_) => Ok(()),
            });
    let hooks = c.saved.as_ref().and_then(|s| s.hooks.clone());
    let state = serde_json::to_string(&c.poststart_state()).unwrap_or_default();
    // Other commands (state, kill) must not wait on our lock while the container runs.
    drop(c);
    if let Err(e) = started {
        abort(g, &id, pid);
        return Err(e);
    }
    if let Some(h) = &hooks {
        crate::hooks::run_list_warn("poststart", &h.poststart, &state);
    }
    if a.detach {
        if a.rootfs.is_some() {
            super::out(&id)?;
        }
        return Ok(0);
    }
    let code = wait(pid, &mask, spawned.pty)?;
    if let Ok(c) = Container::load(&g.root, &id) {
        if let Some(h) = &hooks {
            let state = serde_json::to_string(&c.oci_state()).unwrap_or_default();
            crate::hooks::run_list_warn("poststop", &h.poststop, &state);
        }
        c.remove()?;
    }
    Ok(code)
}

fn exit_code(st: WaitStatus) -> Option<i32> {
    match st {
        WaitStatus::Exited(_, code) => Some(code),
        WaitStatus::Signaled(_, sig, _) => Some(128 + sig as i32),
        _ => None,
    }
}

/// Puts stdin in raw mode while relaying a terminal; restores it when dropped.
struct RawMode(Option<nix::sys::termios::Termios>);

impl RawMode {
    fn enter() -> RawMode {
        let stdin = std::io::stdin();
        match nix::sys::termios::tcgetattr(stdin.as_fd()) {
            Ok(orig) => {
                let mut raw = orig.clone();
                nix::sys::termios::cfmakeraw(&mut raw);
                let _ = nix::sys::termios::tcsetattr(
                    stdin.as_fd(),
                    nix::sys::termios::SetArg::TCSANOW,
                    &raw,
                );
                RawMode(Some(orig))
            }
            Err(_) => RawMode(None),
        }
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        if let Some(orig) = &self.0 {
            let _ = nix::sys::termios::tcsetattr(
                std::io::stdin().as_fd(),
                nix::sys::termios::SetArg::TCSANOW,
                orig,
            );
        }
    }
}

/// Copies what is readable on `from` to `to`; false at EOF or error.
fn relay(from: BorrowedFd<'_>, to: BorrowedFd<'_>) -> bool {
    let mut buf = [0u8; 8192];
    match nix::unistd::read(from.as_raw_fd(), &mut buf) {
        Ok(0) | Err(_) => false,
        Ok(n) => {
            let mut off = 0;
            while off < n {
                match nix::unistd::write(to, &buf[off..n]) {
                    Ok(w) => off += w,
                    Err(nix::errno::Errno::EINTR) => {}
                    Err(_) => return false,
                }
            }
            true
        }
    }
}

/// Waits for the process, forwarding signals and relaying the terminal; returns its exit code.
pub(super) fn wait(pid: i32, mask: &SigSet, pty: Option<OwnedFd>) -> Result<i32> {
    let sfd =
        SignalFd::with_flags(mask, SfdFlags::SFD_CLOEXEC).map_err(|e| Error::sys("signalfd", e))?;
    let stdin = std::io::stdin();
    let stdout = std::io::stdout();
    let _raw = pty.as_ref().map(|_| RawMode::enter());
    if let Some(m) = &pty {
        let _ = sys::copy_winsize(stdin.as_fd(), m);
    }
    let mut stdin_open = pty.is_some();
    let mut pty_open = pty.is_some();
    let child = Pid::from_raw(pid);
    loop {
        let mut fds = vec![PollFd::new(sfd.as_fd(), PollFlags::POLLIN)];
        if stdin_open {
            fds.push(PollFd::new(stdin.as_fd(), PollFlags::POLLIN));
        }
        if let (true, Some(m)) = (pty_open, &pty) {
            fds.push(PollFd::new(m.as_fd(), PollFlags::POLLIN));
        }
        match poll(&mut fds, PollTimeout::NONE) {
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => return Err(Error::sys("poll", e)),
            Ok(_) => {}
        }
        let ready: Vec<bool> = fds
            .iter()
            .map(|f| f.revents().is_some_and(|r| !r.is_empty()))
            .collect();
        drop(fds);
        let mut i = 1;
        if stdin_open {
            if ready[i] {
                stdin_open = relay(stdin.as_fd(), pty.as_ref().expect("pty").as_fd());
            }
            i += 1;
        }
        if pty_open && ready[i] {
            pty_open = relay(pty.as_ref().expect("pty").as_fd(), stdout.as_fd());
        }
        if !ready[0] {
            continue;
        }
        while let Ok(Some(info)) = sfd.read_signal() {
            let sig = info.ssi_signo as i32;
            if sig == libc::SIGCHLD {
                match waitpid(child, Some(WaitPidFlag::WNOHANG)) {
                    Ok(st) => {
                        if let Some(code) = exit_code(st) {
                            // Drain what the process wrote before it exited.
                            if let Some(m) = &pty {
                                while pty_open
                                    && poll(
                                        &mut [PollFd::new(m.as_fd(), PollFlags::POLLIN)],
                                        PollTimeout::ZERO,
                                    )
                                    .is_ok_and(|n| n > 0)
                                {
                                    pty_open = relay(m.as_fd(), stdout.as_fd());
                                }
                            }
                            return Ok(code);
                        }
                    }
                    Err(e) => return Err(Error::sys(format!("waitpid({pid})"), e)),
                }
            } else if sig == libc::SIGWINCH {
                if let Some(m) = &pty {
                    let _ = sys::copy_winsize(stdin.as_fd(), m);
                }
            } else if let Ok(s) = Signal::try_from(sig) {
                let _ = kill(child, s);
            }
        }
    }
}
