//! The parent/child protocol: typed messages over one `SOCK_SEQPACKET` socketpair.
//!
//! SEQPACKET keeps message boundaries, so a frame is one `send`: a one-byte tag, a 4-byte errno and a
//! UTF-8 payload. An fd (the terminal's master side, a seccomp listener) travels as SCM_RIGHTS on a `Fd` frame. Each end is
//! closed in the other process right after clone, so a dead peer reads as EOF instead of a hang.
//! The sync points are numbered in `process::spawn` and `process::init`. Modelled on crun's sync socket
//! and youki's `channel.rs`.

use crate::error::{Error, Result};
use nix::sys::socket::{
    AddressFamily, ControlMessage, MsgFlags, SockFlag, SockType, sendmsg, socketpair,
};
use std::io::IoSlice;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};

/// One message.
#[derive(Debug, PartialEq, Eq)]
pub enum Msg {
    /// Parent → child: go on (maps written, hooks run, start).
    Continue,
    /// Child → parent: namespaces and mounts are ready; run prestart/createRuntime hooks.
    RunHooks,
    /// Parent → child: the state JSON, for the hooks the child runs itself.
    State(String),
    /// Child → parent: everything that can fail is done; waiting for start.
    Ready,
    /// Child → parent: a terminal's master side follows as SCM_RIGHTS.
    Fd,
    /// Child → parent: the seccomp notify listener follows as SCM_RIGHTS, for the agent at
    /// linux.seccomp.listenerPath.
    SeccompFd,
    /// Parent → child: the bind mount of `mounts[N]`, made by the parent with the host's view of its
    /// source (a user namespace's root may not reach it), follows as SCM_RIGHTS.
    Tree(u32),
    /// Child → parent (exec): the pid of the process that will exec, on the host.
    Pid(u32),
    /// Parent → child (create): state.json is saved durably; the init may outlive the parent now.
    Saved,
    /// Child → parent: the init no longer dies with the parent.
    Detached,
    /// Child → parent: what every confinement layer enforced (JSON on the wire).
    Report(crate::security::Report),
    /// Child → parent: setup failed; the child exits after sending this.
    Error {
        /// errno, 0 when none.
        errno: i32,
        /// The whole message, ready to print.
        msg: String,
        /// The container's program itself could not be run (not found, not executable): the
        /// front end's 127 or 126, as the error's own kind rather than its text.
        program: bool,
    },
}

const MAX_FRAME: usize = 64 * 1024;

/// One end of the socketpair.
#[derive(Debug)]
pub struct Channel {
    fd: OwnedFd,
}

/// A connected pair: (parent end, child end), both close-on-exec.
pub fn pair() -> Result<(Channel, Channel)> {
    let (a, b) = socketpair(
        AddressFamily::Unix,
        SockType::SeqPacket,
        None,
        SockFlag::SOCK_CLOEXEC,
    )
    .map_err(|e| Error::sys("socketpair(AF_UNIX, SOCK_SEQPACKET)", e))?;
    Ok((Channel { fd: a }, Channel { fd: b }))
}

impl std::os::fd::AsFd for Channel {
    fn as_fd(&self) -> std::os::fd::BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

impl Channel {
    fn encode(msg: &Msg) -> Vec<u8> {
        let report;
        let (tag, errno, payload): (u8, i32, &str) = match msg {
            Msg::Continue => (1, 0, ""),
            Msg::RunHooks => (2, 0, ""),
            Msg::State(s) => (3, 0, s),
            Msg::Ready => (4, 0, ""),
            Msg::Fd => (5, 0, ""),
            Msg::Report(r) => {
                report = serde_json::to_string(r).unwrap_or_default();
                (7, 0, report.as_str())
            }
            Msg::SeccompFd => (8, 0, ""),
            Msg::Saved => (9, 0, ""),
            Msg::Detached => (10, 0, ""),
            Msg::Tree(i) => (11, *i as i32, ""),
            Msg::Pid(p) => (12, *p as i32, ""),
            Msg::Error {
                errno,
                msg,
                program,
            } => (if *program { 13 } else { 6 }, *errno, msg),
        };
        let mut v = Vec::with_capacity(5 + payload.len());
        v.push(tag);
        v.extend_from_slice(&errno.to_le_bytes());
        v.extend_from_slice(&payload.as_bytes()[..payload.len().min(MAX_FRAME - 5)]);
        v
    }

    fn decode(b: &[u8]) -> Result<Msg> {
        let bad = || Error::State(format!("sync socket: malformed frame of {} bytes", b.len()));
        if b.len() < 5 {
            return Err(bad());
        }
        let errno = i32::from_le_bytes([b[1], b[2], b[3], b[4]]);
        let payload = String::from_utf8_lossy(&b[5..]).into_owned();
        Ok(match b[0] {
            1 => Msg::Continue,
            2 => Msg::RunHooks,
            3 => Msg::State(payload),
            4 => Msg::Ready,
            5 => Msg::Fd,
            6 | 13 => Msg::Error {
                errno,
                msg: payload,
                program: b[0] == 13,
            },
            7 => Msg::Report(serde_json::from_str(&payload).map_err(|_| bad())?),
            8 => Msg::SeccompFd,
            9 => Msg::Saved,
            10 => Msg::Detached,
            11 => Msg::Tree(errno as u32),
            12 => Msg::Pid(errno as u32),
            _ => return Err(bad()),
        })
    }

    /// Sends `msg`, with `fd` attached as SCM_RIGHTS when given.
    pub fn send_with(&self, msg: &Msg, fd: Option<RawFd>) -> Result<()> {
        self.sendmsg(&Self::encode(msg), fd, "sendmsg(sync socket)")
    }

    fn sendmsg(&self, bytes: &[u8], fd: Option<RawFd>, what: &str) -> Result<()> {
        let iov = [IoSlice::new(bytes)];
        let fds = fd.map(|f| [f]);
        let cmsg: Vec<ControlMessage> = fds
            .as_ref()
            .map(|f| ControlMessage::ScmRights(f))
            .into_iter()
            .collect();
        sendmsg::<()>(
            self.fd.as_raw_fd(),
            &iov,
            &cmsg,
            MsgFlags::MSG_NOSIGNAL,
            None,
        )
        .map_err(|e| Error::sys(what, e))?;
        Ok(())
    }

    /// Sends `msg`.
    pub fn send(&self, msg: &Msg) -> Result<()> {
        self.send_with(msg, None)
    }

    /// Receives one message (and an fd, if one came with it). EOF is an error: the peer died.
    pub fn recv_with(&self) -> Result<(Msg, Option<OwnedFd>)> {
        // The frame's size first (MSG_PEEK|MSG_TRUNC gives a datagram's real length), so the buffer is
        // the frame's and not MAX_FRAME zeroed bytes: that was sixteen page faults per message.
        let size = loop {
            match nix::sys::socket::recv(
                self.fd.as_raw_fd(),
                &mut [],
                MsgFlags::MSG_PEEK | MsgFlags::MSG_TRUNC,
            ) {
                Err(nix::errno::Errno::EINTR) => continue,
                Err(e) => return Err(Error::sys("recv(sync socket, MSG_PEEK|MSG_TRUNC)", e)),
                Ok(n) => break n.clamp(1, MAX_FRAME),
            }
        };
        let mut buf = vec![0u8; size];
        let (n, fd) = crate::sys::recv_with_fd(&self.fd, &mut buf, "sync socket")?;
        if n == 0 {
            return Err(Error::State(
                "sync socket: the other side exited without a word".into(),
            ));
        }
        Ok((Self::decode(&buf[..n])?, fd))
    }

    /// Wraps a connected socket (the console socket).
    pub fn from_fd(fd: OwnedFd) -> Channel {
        Channel { fd }
    }

    /// Sends raw bytes with an fd attached (the console-socket convention: the pty's name + its master).
    pub fn send_raw_fd(&self, bytes: &[u8], fd: RawFd) -> Result<()> {
        self.sendmsg(bytes, Some(fd), "sendmsg(console socket)")
    }

    /// Receives one message.
    pub fn recv(&self) -> Result<Msg> {
        Ok(self.recv_with()?.0)
    }

    /// Receives and requires `want`; an `Error` frame becomes an [`Error::Child`].
    pub fn expect(&self, want: Msg) -> Result<()> {
        match self.recv()? {
            m if m == want => Ok(()),
            Msg::Error {
                errno,
                msg,
                program,
            } => Err(Error::Child {
                msg,
                errno,
                program,
            }),
            other => Err(Error::State(format!(
                "sync socket: expected {want:?}, got {other:?}"
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip() {
        let (a, b) = pair().unwrap();
        for m in [
            Msg::Continue,
            Msg::RunHooks,
            Msg::State("{\"id\":\"x\"}".into()),
            Msg::Ready,
            Msg::Error {
                errno: 2,
                msg: "mount 3: ENOENT".into(),
                program: false,
            },
            Msg::Error {
                errno: 2,
                msg: "process.args[0]: ENOENT".into(),
                program: true,
            },
        ] {
            a.send(&m).unwrap();
            assert_eq!(b.recv().unwrap(), m);
        }
        drop(a);
        assert!(b.recv().is_err());
    }

    #[test]
    fn error_frame_becomes_child_error() {
        let (a, b) = pair().unwrap();
        a.send(&Msg::Error {
            errno: 13,
            msg: "denied".into(),
            program: false,
        })
        .unwrap();
        let e = b.expect(Msg::Ready).unwrap_err();
        assert_eq!(e.errno(), Some(nix::errno::Errno::EACCES));
    }
}
