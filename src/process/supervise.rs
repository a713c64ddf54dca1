//! The supervisor of a container process that berth waits for (`run`, and `exec` without --detach):
//! signals sent to berth are forwarded to the process (SIGWINCH resizes its terminal instead), the
//! terminal is relayed when berth holds its master side (stdin in raw mode meanwhile), and the exit
//! status comes back as a shell's exit code (128+N when killed by signal N).
//!
//! The signals are blocked (see [`block_signals`]) before the process exists, so none meant for it is
//! lost; they are then read from a signalfd.

use crate::error::{Error, Result};
use crate::sys;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::signal::{SigSet, SigmaskHow, Signal, kill, sigprocmask};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::Pid;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};

/// Blocks the forwarded signals (plus SIGCHLD and SIGWINCH) in this process and returns the set, for
/// [`wait`]. The init and exec'd processes unblock their own.
pub fn block_signals() -> Result<SigSet> {
    let mask = signal_mask();
    sigprocmask(SigmaskHow::SIG_BLOCK, Some(&mask), None)
        .map_err(|e| Error::sys("sigprocmask", e))?;
    Ok(mask)
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

fn signal_mask() -> SigSet {
    let mut m = SigSet::empty();
    for s in FORWARDED {
        m.add(*s);
    }
    m.add(Signal::SIGCHLD);
    m.add(Signal::SIGWINCH);
    m
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
pub fn wait(pid: i32, mask: &SigSet, pty: Option<OwnedFd>) -> Result<i32> {
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
