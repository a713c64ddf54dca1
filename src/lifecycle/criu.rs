//! CRIU's RPC, as `criu swrk FD` serves it (CRIU's images/rpc.proto): berth sends one `criu_req` on
//! a SOCK_SEQPACKET socket, answers each notification CRIU sends back (the `orphan-pts-master` one
//! carries a restored terminal's master side as SCM_RIGHTS, which only the RPC can hand over), and
//! reads the final `criu_resp`. The few messages berth uses are encoded and decoded here by hand
//! (protobuf's wire format: varints and length-delimited fields), so no protobuf library is linked;
//! anything CRIU sends that is not well-formed is an error, never a panic.

use crate::error::{Error, Result, io_err};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::Path;

/// The request types berth sends (`criu_req_type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    Dump = 1,
    Restore = 2,
    PreDump = 4,
}

/// `criu_req_type.NOTIFY`: a notification (CRIU → berth) and its answer.
const NOTIFY: u64 = 6;

/// The boolean `criu_opts` fields berth sets, by field number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Flag {
    LeaveRunning = 3,
    ExtUnixSk = 4,
    TcpEstablished = 5,
    ShellJob = 7,
    FileLocks = 8,
    NotifyScripts = 12,
    TrackMem = 15,
    AutoDedup = 16,
    RstSibling = 26,
    LazyPages = 48,
    OrphanPtsMaster = 50,
    MntnsCompatMode = 65,
}

/// The `criu_opts` berth sends. The directories are berth's own fds: CRIU opens them through
/// `/proc/<berth>/fd/N` (the peer of the socket); the inherited fds are CRIU's, so they are fds
/// CRIU inherits (berth's stdio).
#[derive(Debug, Default)]
pub(super) struct Opts {
    pub images_dir_fd: i32,
    pub work_dir_fd: i32,
    /// A name in the work directory.
    pub log_file: String,
    pub pid: Option<i32>,
    pub root: Option<String>,
    /// The parent images (a pre-dump's), relative to the images directory.
    pub parent_img: Option<String>,
    pub flags: Vec<Flag>,
    /// `criu_cg_mode`.
    pub manage_cgroups_mode: u32,
    /// CLONE_NEW* bits.
    pub empty_ns: u32,
    /// `mnt[KEY]:VALUE`, `file[MNT:INO]` ...
    pub external: Vec<String>,
    /// (key, CRIU's fd).
    pub inherit_fd: Vec<(String, i32)>,
    /// `ps`: the page server's address and port.
    pub page_server: Option<(String, u16)>,
    /// `join_ns`: (CRIU's namespace name, file CRIU opens).
    pub join_ns: Vec<(String, String)>,
}

/// `criu_cg_mode` of runc's `--manage-cgroups-mode` value (validated before).
pub(super) fn cg_mode(name: &str) -> u32 {
    match name {
        "soft" => 3,
        "full" => 4,
        "strict" => 5,
        _ => 0,
    }
}

/// A protobuf message being encoded.
#[derive(Default)]
struct Pb(Vec<u8>);

impl Pb {
    fn varint(&mut self, mut v: u64) {
        loop {
            let b = (v & 0x7f) as u8;
            v >>= 7;
            if v == 0 {
                self.0.push(b);
                return;
            }
            self.0.push(b | 0x80);
        }
    }
    fn uint(&mut self, field: u32, v: u64) {
        self.varint(u64::from(field) << 3);
        self.varint(v);
    }
    fn int32(&mut self, field: u32, v: i32) {
        // Negative int32s are sign-extended to 64 bits on the wire.
        self.uint(field, i64::from(v) as u64);
    }
    fn bytes(&mut self, field: u32, b: &[u8]) {
        self.varint((u64::from(field) << 3) | 2);
        self.varint(b.len() as u64);
        self.0.extend_from_slice(b);
    }
}

fn encode_opts(o: &Opts) -> Vec<u8> {
    let mut m = Pb::default();
    m.int32(1, o.images_dir_fd);
    if let Some(pid) = o.pid {
        m.int32(2, pid);
    }
    m.int32(9, 4); // log_level: debug, as -v4
    m.bytes(10, o.log_file.as_bytes());
    if let Some((addr, port)) = &o.page_server {
        let mut ps = Pb::default();
        ps.bytes(1, addr.as_bytes());
        ps.int32(2, i32::from(*port));
        m.bytes(11, &ps.0);
    }
    if let Some(r) = &o.root {
        m.bytes(13, r.as_bytes());
    }
    if let Some(p) = &o.parent_img {
        m.bytes(14, p.as_bytes());
    }
    m.int32(17, o.work_dir_fd);
    for f in &o.flags {
        m.uint(*f as u32, 1);
    }
    for (key, fd) in &o.inherit_fd {
        let mut i = Pb::default();
        i.bytes(1, key.as_bytes());
        i.int32(2, *fd);
        m.bytes(27, &i.0);
    }
    m.uint(34, u64::from(o.manage_cgroups_mode));
    for e in &o.external {
        m.bytes(37, e.as_bytes());
    }
    if o.empty_ns != 0 {
        m.uint(38, u64::from(o.empty_ns));
    }
    for (ns, file) in &o.join_ns {
        let mut j = Pb::default();
        j.bytes(1, ns.as_bytes());
        j.bytes(2, file.as_bytes());
        m.bytes(39, &j.0);
    }
    m.0
}

/// A `criu_req` of `kind` with `opts`.
fn encode_request(kind: Kind, opts: &Opts) -> Vec<u8> {
    let mut r = Pb::default();
    r.uint(1, kind as u64);
    r.bytes(2, &encode_opts(opts));
    r.0
}

/// The answer to a notification.
fn encode_notify_answer(success: bool) -> Vec<u8> {
    let mut r = Pb::default();
    r.uint(1, NOTIFY);
    r.uint(3, u64::from(success));
    r.0
}

/// A field's value on the wire.
enum Value<'a> {
    Int(u64),
    Bytes(&'a [u8]),
}

fn read_varint(buf: &mut &[u8]) -> Option<u64> {
    let mut v = 0u64;
    for shift in (0..64).step_by(7) {
        let (&b, rest) = buf.split_first()?;
        *buf = rest;
        v |= u64::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            return Some(v);
        }
    }
    None
}

/// The fields of one message, in order; None when it is not well-formed.
fn fields(mut buf: &[u8]) -> Option<Vec<(u32, Value<'_>)>> {
    let mut out = Vec::new();
    while !buf.is_empty() {
        let key = read_varint(&mut buf)?;
        let field = u32::try_from(key >> 3).ok()?;
        let value = match key & 7 {
            0 => Value::Int(read_varint(&mut buf)?),
            1 | 5 => {
                let n = if key & 7 == 1 { 8 } else { 4 };
                let (v, rest) = buf.split_at_checked(n)?;
                buf = rest;
                Value::Bytes(v)
            }
            2 => {
                let n = usize::try_from(read_varint(&mut buf)?).ok()?;
                let (v, rest) = buf.split_at_checked(n)?;
                buf = rest;
                Value::Bytes(v)
            }
            _ => return None,
        };
        out.push((field, value));
    }
    Some(out)
}

/// The parts of a `criu_resp` berth reads.
#[derive(Debug, Default, PartialEq, Eq)]
pub(super) struct Response {
    pub kind: u64,
    pub success: bool,
    /// `restore.pid`: the restored tree's root.
    pub restored_pid: Option<i32>,
    /// `notify.script`: the notification's name.
    pub notify: Option<String>,
    /// `notify.pid`: the restored tree's root (setup-namespaces, post-restore).
    pub notify_pid: Option<i32>,
    pub cr_errno: Option<i32>,
    pub cr_errmsg: Option<String>,
}

/// An int32 field's value (sign-extended to 64 bits on the wire); None when it is out of range.
fn int32(v: u64) -> Option<i32> {
    i32::try_from(i64::from_ne_bytes(v.to_ne_bytes())).ok()
}

fn decode_response(buf: &[u8]) -> Option<Response> {
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    let mut r = Response::default();
    let (mut has_kind, mut has_success) = (false, false);
    for (field, value) in fields(buf)? {
        match (field, value) {
            (1, Value::Int(v)) => (r.kind, has_kind) = (v, true),
            (2, Value::Int(v)) => (r.success, has_success) = (v != 0, true),
            (4, Value::Bytes(b)) => {
                for (f, v) in fields(b)? {
                    if let (1, Value::Int(pid)) = (f, v) {
                        r.restored_pid = int32(pid);
                    }
                }
            }
            (5, Value::Bytes(b)) => {
                for (f, v) in fields(b)? {
                    match (f, v) {
                        (1, Value::Bytes(s)) => r.notify = Some(text(s)),
                        (2, Value::Int(pid)) => r.notify_pid = int32(pid),
                        _ => {}
                    }
                }
            }
            (7, Value::Int(v)) => r.cr_errno = int32(v),
            (9, Value::Bytes(b)) => r.cr_errmsg = Some(text(b)),
            _ => {}
        }
    }
    (has_kind && has_success).then_some(r)
}

/// CRIU went away without a final answer (it died, or failed before reading the request).
const CLOSED: &str = "criu closed its RPC socket without answering";

/// A notification CRIU sent: its name (CRIU's action-script names: `post-restore`,
/// `orphan-pts-master`, `status-ready` ...), the restored tree's root where CRIU gives it, and the
/// fd that came with it.
#[derive(Debug)]
pub(super) struct Notification {
    pub script: String,
    pub pid: Option<i32>,
    pub fd: Option<OwnedFd>,
}

/// What berth does with a notification.
pub(super) type OnNotify<'a> = dyn FnMut(Notification) -> Result<()> + 'a;

/// The conversation on `sock`: the request, each notification answered (a failed callback answers
/// "failed", which makes CRIU abort, and its error is the one returned), the final response.
fn converse(sock: &OwnedFd, request: &[u8], on_notify: &mut OnNotify<'_>) -> Result<Response> {
    use nix::errno::Errno;
    use nix::sys::socket::{MsgFlags, send};
    let closed = || Error::State(CLOSED.into());
    let send_msg = |b: &[u8]| match send(sock.as_raw_fd(), b, MsgFlags::MSG_NOSIGNAL) {
        Ok(_) => Ok(()),
        Err(Errno::EPIPE | Errno::ECONNRESET) => Err(closed()),
        Err(e) => Err(Error::sys("send(criu swrk socket)", e)),
    };
    send_msg(request)?;
    let mut failed: Option<Error> = None;
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let (n, fd) = match crate::sys::recv_with_fd(sock.as_fd(), &mut buf, "criu swrk socket") {
            Ok((0, _)) => return Err(failed.unwrap_or_else(closed)),
            Err(e) if e.errno == Errno::ECONNRESET => return Err(failed.unwrap_or_else(closed)),
            r => r?,
        };
        let resp = decode_response(&buf[..n]).ok_or_else(|| {
            Error::State(format!("criu sent a malformed RPC response ({n} bytes)"))
        })?;
        if resp.kind != NOTIFY {
            return match failed {
                Some(e) => Err(e),
                None => Ok(resp),
            };
        }
        let r = on_notify(Notification {
            script: resp.notify.unwrap_or_default(),
            pid: resp.notify_pid,
            fd,
        });
        send_msg(&encode_notify_answer(r.is_ok()))?;
        if let Err(e) = r {
            failed.get_or_insert(e);
        }
    }
}

/// Runs `criu swrk` for one request and returns its final response when it succeeded; on failure
/// the error names CRIU's message, errno and log (`log`, with its last error lines).
pub(super) fn call(
    criu: &Path,
    kind: Kind,
    opts: &Opts,
    log: &Path,
    what: &str,
    on_notify: &mut OnNotify<'_>,
) -> Result<Response> {
    use nix::sys::socket::{AddressFamily, SockFlag, SockType, socketpair};
    let (ours, theirs) = socketpair(
        AddressFamily::Unix,
        SockType::SeqPacket,
        None,
        SockFlag::SOCK_CLOEXEC,
    )
    .map_err(|e| Error::sys("socketpair(AF_UNIX, SOCK_SEQPACKET)", e))?;
    // CRIU's end is inherited across its execve (and closed here once it runs).
    nix::fcntl::fcntl(
        theirs.as_raw_fd(),
        nix::fcntl::FcntlArg::F_SETFD(nix::fcntl::FdFlag::empty()),
    )
    .map_err(|e| Error::sys("fcntl(F_SETFD) of criu's socket", e))?;
    let mut child = std::process::Command::new(criu)
        .arg("swrk")
        .arg(theirs.as_raw_fd().to_string())
        .spawn()
        .map_err(|e| io_err("execve", criu, e))?;
    drop(theirs);
    let answer = converse(&ours, &encode_request(kind, opts), on_notify);
    drop(ours);
    if answer.is_err() {
        // CRIU started by this call, by its pid; it may have exited already.
        let _ = child.kill();
    }
    let status = child.wait().map_err(|e| io_err("wait", criu, e))?;
    let failure = |head: String| {
        let text = std::fs::read_to_string(log).unwrap_or_default();
        let errors: Vec<&str> = text.lines().filter(|l| l.contains("Error")).collect();
        let tail = errors[errors.len().saturating_sub(3)..].join("; ");
        Error::State(format!(
            "{what}: criu failed ({head}); {} says: {tail}",
            log.display()
        ))
    };
    match answer {
        Ok(r) if r.success && r.kind == kind as u64 => Ok(r),
        Ok(r) => {
            let errno = r
                .cr_errno
                .filter(|e| *e != 0)
                .map(|e| format!(", {}", nix::errno::Errno::from_raw(e)))
                .unwrap_or_default();
            Err(failure(format!(
                "{}{errno}",
                r.cr_errmsg.as_deref().unwrap_or("no message")
            )))
        }
        Err(Error::State(m)) if m == CLOSED => {
            Err(failure(format!("{m}; it exited with {status}")))
        }
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_encoded_as_rpc_proto_says() {
        let o = Opts {
            images_dir_fd: 5,
            work_dir_fd: 6,
            log_file: "dump.log".into(),
            pid: Some(300),
            flags: vec![Flag::LeaveRunning, Flag::MntnsCompatMode],
            external: vec!["mnt[/a]:/a".into()],
            inherit_fd: vec![("pipe:[1]".into(), 1)],
            ..Opts::default()
        };
        let req = encode_request(Kind::Dump, &o);
        let f = fields(&req).unwrap();
        assert!(matches!(f[0], (1, Value::Int(1))));
        let Value::Bytes(opts) = f[1].1 else { panic!() };
        let of = fields(opts).unwrap();
        let ints: Vec<(u32, u64)> = of
            .iter()
            .filter_map(|(n, v)| match v {
                Value::Int(i) => Some((*n, *i)),
                _ => None,
            })
            .collect();
        for want in [(1, 5), (2, 300), (9, 4), (17, 6), (3, 1), (65, 1), (34, 0)] {
            assert!(ints.contains(&want), "{want:?} in {ints:?}");
        }
        let strings: Vec<(u32, &[u8])> = of
            .iter()
            .filter_map(|(n, v)| match v {
                Value::Bytes(b) => Some((*n, *b)),
                _ => None,
            })
            .collect();
        assert!(strings.contains(&(10, b"dump.log".as_slice())));
        assert!(strings.contains(&(37, b"mnt[/a]:/a".as_slice())));
        // inherit_fd {key = 1, fd = 2}
        let inherit = strings.iter().find(|(n, _)| *n == 27).unwrap().1;
        let i = fields(inherit).unwrap();
        assert!(matches!(i[0], (1, Value::Bytes(b"pipe:[1]"))));
        assert!(matches!(i[1], (2, Value::Int(1))));
        // A negative int32 is ten bytes of sign-extended varint.
        let mut m = Pb::default();
        m.int32(1, -1);
        assert_eq!(m.0.len(), 11);
        assert_eq!(fields(&m.0).unwrap().len(), 1);
    }

    fn response(kind: u64, success: bool, extra: &[u8]) -> Vec<u8> {
        let mut r = Pb::default();
        r.uint(1, kind);
        r.uint(2, u64::from(success));
        r.0.extend_from_slice(extra);
        r.0
    }

    #[test]
    fn responses_decode_and_garbage_is_refused() {
        let mut restore = Pb::default();
        restore.uint(1, 4242);
        let mut extra = Pb::default();
        extra.bytes(4, &restore.0);
        extra.uint(7, 2);
        extra.bytes(9, b"oops");
        // An unknown fixed64 field is skipped.
        extra.varint((99 << 3) | 1);
        extra.0.extend_from_slice(&[0; 8]);
        let r = decode_response(&response(2, true, &extra.0)).unwrap();
        assert_eq!(r.restored_pid, Some(4242));
        assert_eq!(r.cr_errno, Some(2));
        assert_eq!(r.cr_errmsg.as_deref(), Some("oops"));
        // Missing required fields, truncations, a bad wire type, an endless varint.
        assert!(decode_response(&[]).is_none());
        let whole = response(2, true, &extra.0);
        for cut in 1..whole.len() {
            let _ = decode_response(&whole[..cut]);
        }
        assert!(decode_response(&[0x0b]).is_none());
        assert!(decode_response(&[0x08; 20]).is_none());
        assert!(decode_response(&[0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f]).is_none());
    }

    fn send_fd(sock: &OwnedFd, bytes: &[u8], fd: std::os::fd::RawFd) {
        use nix::sys::socket::{ControlMessage, MsgFlags, sendmsg};
        let fds = [fd];
        let iov = [std::io::IoSlice::new(bytes)];
        sendmsg::<()>(
            sock.as_raw_fd(),
            &iov,
            &[ControlMessage::ScmRights(&fds)],
            MsgFlags::empty(),
            None,
        )
        .unwrap();
    }

    /// A thread plays CRIU: one notification with a pipe's end attached, then the final answer.
    #[test]
    fn notifications_are_answered_and_their_fd_handed_over() {
        use nix::sys::socket::{AddressFamily, SockFlag, SockType, socketpair};
        let (ours, theirs) = socketpair(
            AddressFamily::Unix,
            SockType::SeqPacket,
            None,
            SockFlag::SOCK_CLOEXEC,
        )
        .unwrap();
        let criu = std::thread::spawn(move || {
            let ch = &theirs;
            let mut buf = vec![0u8; 4096];
            let (n, _) = crate::sys::recv_with_fd(ch, &mut buf, "t").unwrap();
            assert!(matches!(fields(&buf[..n]).unwrap()[0], (1, Value::Int(2))));
            let (r, w) = nix::unistd::pipe().unwrap();
            let mut notify = Pb::default();
            notify.bytes(1, b"orphan-pts-master");
            let mut extra = Pb::default();
            extra.bytes(5, &notify.0);
            send_fd(ch, &response(NOTIFY, true, &extra.0), w.as_raw_fd());
            let (n, _) = crate::sys::recv_with_fd(ch, &mut buf, "t").unwrap();
            let answer = fields(&buf[..n]).unwrap();
            assert!(matches!(answer[1], (3, Value::Int(1))));
            // A second notification the callback fails: answered "failed".
            let mut notify = Pb::default();
            notify.bytes(1, b"post-restore");
            let mut extra = Pb::default();
            extra.bytes(5, &notify.0);
            send_fd(ch, &response(NOTIFY, true, &extra.0), w.as_raw_fd());
            let (n, _) = crate::sys::recv_with_fd(ch, &mut buf, "t").unwrap();
            assert!(matches!(fields(&buf[..n]).unwrap()[1], (3, Value::Int(0))));
            send_fd(ch, &response(2, false, &[]), w.as_raw_fd());
            r
        });
        let mut seen = Vec::new();
        let got = converse(
            &ours,
            &encode_request(Kind::Restore, &Opts::default()),
            &mut |n| {
                seen.push((n.script.clone(), n.fd.is_some()));
                if n.script == "post-restore" {
                    return Err(Error::State("callback failed".into()));
                }
                Ok(())
            },
        );
        let _r = criu.join().unwrap();
        assert_eq!(
            seen,
            [
                ("orphan-pts-master".to_string(), true),
                ("post-restore".to_string(), true)
            ]
        );
        // The callback's error, not CRIU's answer, is what the caller sees.
        assert!(got.unwrap_err().to_string().contains("callback failed"));
    }
}
