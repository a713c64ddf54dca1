//! A small client of the D-Bus system bus, for the systemd cgroup driver: the wire format (little
//! endian) for the types systemd's Manager methods take and return, SASL EXTERNAL authentication,
//! method calls and waiting for a signal. It is linked statically like the rest of berth, opens no
//! connection unless `--systemd-cgroup` asks for one, and starts no thread (the runtime clones raw
//! processes; a bus library's I/O thread would be a liability there).

use crate::error::{Error, Result};
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// The system bus socket when `DBUS_SYSTEM_BUS_ADDRESS` does not name another.
pub const SYSTEM_BUS: &str = "/run/dbus/system_bus_socket";

/// A D-Bus value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Val {
    /// `y`
    Byte(u8),
    /// `b`
    Bool(bool),
    /// `u`
    U32(u32),
    /// `i`
    I32(i32),
    /// `t`
    U64(u64),
    /// `x`
    I64(i64),
    /// `s`
    Str(String),
    /// `o`
    Path(String),
    /// `g`
    Sig(String),
    /// `a` + the element signature (needed for an empty array) and the elements.
    Array(String, Vec<Val>),
    /// `(...)`
    Struct(Vec<Val>),
    /// `v`
    Variant(Box<Val>),
}

impl Val {
    /// This value's type signature.
    pub fn signature(&self) -> String {
        match self {
            Val::Byte(_) => "y".into(),
            Val::Bool(_) => "b".into(),
            Val::U32(_) => "u".into(),
            Val::I32(_) => "i".into(),
            Val::U64(_) => "t".into(),
            Val::I64(_) => "x".into(),
            Val::Str(_) => "s".into(),
            Val::Path(_) => "o".into(),
            Val::Sig(_) => "g".into(),
            Val::Array(e, _) => format!("a{e}"),
            Val::Struct(v) => format!("({})", v.iter().map(Val::signature).collect::<String>()),
            Val::Variant(_) => "v".into(),
        }
    }

    /// The string of an `s`, `o` or `g`.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Val::Str(s) | Val::Path(s) | Val::Sig(s) => Some(s),
            _ => None,
        }
    }
}

/// A property of a unit: `(sv)`.
pub fn prop(name: &str, v: Val) -> Val {
    Val::Struct(vec![Val::Str(name.into()), Val::Variant(Box::new(v))])
}

fn pad(buf: &mut Vec<u8>, align: usize) {
    while !buf.len().is_multiple_of(align) {
        buf.push(0);
    }
}

fn align_of(sig: u8) -> usize {
    match sig {
        b'y' | b'g' | b'v' => 1,
        b'n' | b'q' => 2,
        b'b' | b'i' | b'u' | b's' | b'o' | b'a' | b'h' => 4,
        _ => 8,
    }
}

/// Appends `v` to `buf` (whose offset 0 is 8-aligned in the message).
#[allow(
    clippy::cast_possible_truncation,
    reason = "berth's messages carry unit names and a few properties: lengths far below 2^32 (signatures below 256)"
)]
fn encode(buf: &mut Vec<u8>, v: &Val) {
    let string = |buf: &mut Vec<u8>, s: &str| {
        pad(buf, 4);
        buf.extend_from_slice(&(s.len() as u32).to_le_bytes());
        buf.extend_from_slice(s.as_bytes());
        buf.push(0);
    };
    match v {
        Val::Byte(b) => buf.push(*b),
        Val::Bool(b) => {
            pad(buf, 4);
            buf.extend_from_slice(&u32::from(*b).to_le_bytes());
        }
        Val::U32(n) => {
            pad(buf, 4);
            buf.extend_from_slice(&n.to_le_bytes());
        }
        Val::I32(n) => {
            pad(buf, 4);
            buf.extend_from_slice(&n.to_le_bytes());
        }
        Val::U64(n) => {
            pad(buf, 8);
            buf.extend_from_slice(&n.to_le_bytes());
        }
        Val::I64(n) => {
            pad(buf, 8);
            buf.extend_from_slice(&n.to_le_bytes());
        }
        Val::Str(s) | Val::Path(s) => string(buf, s),
        Val::Sig(s) => {
            buf.push(s.len() as u8);
            buf.extend_from_slice(s.as_bytes());
            buf.push(0);
        }
        Val::Array(elem, items) => {
            pad(buf, 4);
            let at = buf.len();
            buf.extend_from_slice(&[0; 4]);
            pad(
                buf,
                align_of(elem.as_bytes().first().copied().unwrap_or(b'y')),
            );
            let start = buf.len();
            for i in items {
                encode(buf, i);
            }
            let n = (buf.len() - start) as u32;
            buf[at..at + 4].copy_from_slice(&n.to_le_bytes());
        }
        Val::Struct(fields) => {
            pad(buf, 8);
            for f in fields {
                encode(buf, f);
            }
        }
        Val::Variant(inner) => {
            encode(buf, &Val::Sig(inner.signature()));
            encode(buf, inner);
        }
    }
}

/// Reads values of a signature from a message (offsets relative to the message's start).
struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

fn bad(what: &str) -> Error {
    Error::State(format!("D-Bus: malformed message ({what})"))
}

impl Reader<'_> {
    fn align(&mut self, n: usize) {
        self.pos = self.pos.div_ceil(n) * n;
    }

    fn take(&mut self, n: usize) -> Result<&[u8]> {
        let s = self
            .buf
            .get(self.pos..self.pos + n)
            .ok_or_else(|| bad("truncated"))?;
        self.pos += n;
        Ok(s)
    }

    fn u32(&mut self) -> Result<u32> {
        self.align(4);
        let b = self.take(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn u64(&mut self) -> Result<u64> {
        self.align(8);
        let b = self.take(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(u64::from_le_bytes(a))
    }

    fn string(&mut self, len: usize) -> Result<String> {
        let s = String::from_utf8(self.take(len)?.to_vec()).map_err(|_| bad("a string"))?;
        self.take(1)?;
        Ok(s)
    }

    /// One complete type at the start of `sig`; returns the value and the rest of the signature.
    fn value<'s>(&mut self, sig: &'s str, depth: u32) -> Result<(Val, &'s str)> {
        if depth > 32 {
            return Err(bad("nested too deep"));
        }
        let c = *sig.as_bytes().first().ok_or_else(|| bad("signature"))?;
        let rest = &sig[1..];
        Ok(match c {
            b'y' => (Val::Byte(self.take(1)?[0]), rest),
            b'b' => (Val::Bool(self.u32()? != 0), rest),
            b'u' => (Val::U32(self.u32()?), rest),
            b'i' => (Val::I32(self.u32()? as i32), rest),
            b'h' => (Val::U32(self.u32()?), rest),
            b'n' | b'q' => {
                self.align(2);
                let b = self.take(2)?;
                (Val::U32(u32::from(u16::from_le_bytes([b[0], b[1]]))), rest)
            }
            b't' => (Val::U64(self.u64()?), rest),
            b'x' => (Val::I64(self.u64()? as i64), rest),
            b'd' => (Val::U64(self.u64()?), rest),
            b's' | b'o' => {
                let n = self.u32()? as usize;
                let s = self.string(n)?;
                (if c == b's' { Val::Str(s) } else { Val::Path(s) }, rest)
            }
            b'g' => {
                let n = usize::from(self.take(1)?[0]);
                (Val::Sig(self.string(n)?), rest)
            }
            b'v' => {
                let n = usize::from(self.take(1)?[0]);
                let s = self.string(n)?;
                let (v, left) = self.value(&s, depth + 1)?;
                if !left.is_empty() {
                    return Err(bad("a variant of more than one type"));
                }
                (Val::Variant(Box::new(v)), rest)
            }
            b'a' => {
                let n = self.u32()? as usize;
                let elem_len = one_type(rest).ok_or_else(|| bad("array signature"))?;
                let elem = &rest[..elem_len];
                self.align(align_of(elem.as_bytes()[0]));
                let end = self.pos + n;
                if end > self.buf.len() {
                    return Err(bad("array length"));
                }
                let mut items = Vec::new();
                while self.pos < end {
                    items.push(self.value(elem, depth + 1)?.0);
                }
                (Val::Array(elem.to_string(), items), &rest[elem_len..])
            }
            b'(' | b'{' => {
                self.align(8);
                let close = if c == b'(' { ')' } else { '}' };
                let mut s = rest;
                let mut fields = Vec::new();
                while !s.starts_with(close) {
                    let (v, left) = self.value(s, depth + 1)?;
                    fields.push(v);
                    s = left;
                }
                (Val::Struct(fields), &s[1..])
            }
            _ => return Err(bad("an unknown type")),
        })
    }
}

/// The length of the first complete type in `sig`.
fn one_type(sig: &str) -> Option<usize> {
    let b = sig.as_bytes();
    match *b.first()? {
        b'a' => one_type(&sig[1..]).map(|n| n + 1),
        open @ (b'(' | b'{') => {
            let close = if open == b'(' { b')' } else { b'}' };
            let mut i = 1;
            while *b.get(i)? != close {
                i += one_type(&sig[i..])?;
            }
            Some(i + 1)
        }
        _ => Some(1),
    }
}

/// A message read from the bus.
#[derive(Debug)]
pub struct Message {
    /// 1 method call, 2 method return, 3 error, 4 signal.
    pub kind: u8,
    /// REPLY_SERIAL.
    pub reply_to: Option<u32>,
    /// MEMBER (signals).
    pub member: Option<String>,
    /// ERROR_NAME.
    pub error: Option<String>,
    /// The body.
    pub body: Vec<Val>,
}

const METHOD_CALL: u8 = 1;
const METHOD_RETURN: u8 = 2;
const ERROR: u8 = 3;
const SIGNAL: u8 = 4;

/// Encodes a method call.
#[allow(
    clippy::cast_possible_truncation,
    reason = "berth's messages carry unit names and a few properties: lengths far below 2^32 (signatures below 256)"
)]
pub fn method_call(
    serial: u32,
    dest: &str,
    path: &str,
    iface: &str,
    member: &str,
    args: &[Val],
) -> Vec<u8> {
    let mut body = Vec::new();
    for a in args {
        encode(&mut body, a);
    }
    let sig: String = args.iter().map(Val::signature).collect();
    let field = |code: u8, v: Val| Val::Struct(vec![Val::Byte(code), Val::Variant(Box::new(v))]);
    let mut fields = vec![
        field(1, Val::Path(path.into())),
        field(2, Val::Str(iface.into())),
        field(3, Val::Str(member.into())),
        field(6, Val::Str(dest.into())),
    ];
    if !sig.is_empty() {
        fields.push(field(8, Val::Sig(sig)));
    }
    let mut msg = vec![b'l', METHOD_CALL, 0, 1];
    msg.extend_from_slice(&(body.len() as u32).to_le_bytes());
    msg.extend_from_slice(&serial.to_le_bytes());
    encode(&mut msg, &Val::Array("(yv)".into(), fields));
    pad(&mut msg, 8);
    msg.extend_from_slice(&body);
    msg
}

/// Decodes a whole message.
pub fn parse(buf: &[u8]) -> Result<Message> {
    if buf.len() < 16 || buf[0] != b'l' {
        return Err(bad("not a little-endian message"));
    }
    let mut r = Reader { buf, pos: 12 };
    let (fields, _) = r.value("a(yv)", 0)?;
    r.align(8);
    let mut m = Message {
        kind: buf[1],
        reply_to: None,
        member: None,
        error: None,
        body: Vec::new(),
    };
    let mut sig = String::new();
    if let Val::Array(_, fs) = fields {
        for f in fs {
            let Val::Struct(kv) = f else { continue };
            let (Some(Val::Byte(code)), Some(Val::Variant(v))) = (kv.first(), kv.get(1)) else {
                continue;
            };
            match (code, v.as_ref()) {
                (3, v) => m.member = v.as_str().map(str::to_string),
                (4, v) => m.error = v.as_str().map(str::to_string),
                (5, Val::U32(n)) => m.reply_to = Some(*n),
                (8, v) => sig = v.as_str().unwrap_or_default().to_string(),
                _ => {}
            }
        }
    }
    let mut s = sig.as_str();
    while !s.is_empty() {
        let (v, rest) = r.value(s, 0)?;
        m.body.push(v);
        s = rest;
    }
    Ok(m)
}

/// A connection to a bus.
#[derive(Debug)]
pub struct Bus {
    sock: UnixStream,
    serial: u32,
    /// Signals read while waiting for a reply.
    queued: Vec<Message>,
    path: PathBuf,
}

/// The system bus socket: `DBUS_SYSTEM_BUS_ADDRESS` (`unix:path=...`) or the standard one.
pub fn system_bus_path() -> PathBuf {
    std::env::var("DBUS_SYSTEM_BUS_ADDRESS")
        .ok()
        .and_then(|a| {
            a.split(';').find_map(|t| {
                t.strip_prefix("unix:path=")
                    .map(|p| p.split(',').next().unwrap_or(p).to_string())
            })
        })
        .map_or_else(|| PathBuf::from(SYSTEM_BUS), PathBuf::from)
}

impl Bus {
    /// Connects to the bus at `path`, authenticates as this process's uid and says Hello.
    pub fn connect(path: &Path) -> Result<Bus> {
        let ctx = |what: &str, e: std::io::Error| {
            Error::State(format!("D-Bus {what} ({}): {e}", path.display()))
        };
        let mut sock = UnixStream::connect(path).map_err(|e| ctx("connect", e))?;
        sock.set_read_timeout(Some(Duration::from_secs(30)))
            .map_err(|e| ctx("setsockopt", e))?;
        let uid = nix::unistd::geteuid().as_raw().to_string();
        let hex: String = uid.bytes().map(|b| format!("{b:02x}")).collect();
        sock.write_all(format!("\0AUTH EXTERNAL {hex}\r\n").as_bytes())
            .map_err(|e| ctx("write", e))?;
        let mut line = Vec::new();
        let mut b = [0u8; 1];
        while !line.ends_with(b"\r\n") && line.len() < 512 {
            let n = sock.read(&mut b).map_err(|e| ctx("read", e))?;
            if n == 0 {
                return Err(Error::State(format!(
                    "D-Bus ({}): closed during authentication",
                    path.display()
                )));
            }
            line.push(b[0]);
        }
        if !line.starts_with(b"OK ") {
            return Err(Error::State(format!(
                "D-Bus ({}): authentication refused: {}",
                path.display(),
                String::from_utf8_lossy(&line).trim()
            )));
        }
        sock.write_all(b"BEGIN\r\n").map_err(|e| ctx("write", e))?;
        let mut bus = Bus {
            sock,
            serial: 0,
            queued: Vec::new(),
            path: path.to_path_buf(),
        };
        bus.call(
            "org.freedesktop.DBus",
            "/org/freedesktop/DBus",
            "org.freedesktop.DBus",
            "Hello",
            &[],
        )?;
        Ok(bus)
    }

    fn read_message(&mut self) -> Result<Message> {
        let ctx = |e: std::io::Error| {
            let what = if matches!(
                e.kind(),
                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
            ) {
                "no answer within 30 s".to_string()
            } else {
                e.to_string()
            };
            Error::State(format!("D-Bus read ({}): {what}", self.path.display()))
        };
        let mut head = [0u8; 16];
        self.sock.read_exact(&mut head).map_err(ctx)?;
        let word = |i: usize| u32::from_le_bytes([head[i], head[i + 1], head[i + 2], head[i + 3]]);
        let (body, fields) = (word(4) as usize, word(12) as usize);
        let total = (16 + fields).div_ceil(8) * 8 + body;
        if head[0] != b'l' || total > 128 << 20 {
            return Err(bad("header"));
        }
        let mut buf = head.to_vec();
        buf.resize(total, 0);
        self.sock.read_exact(&mut buf[16..]).map_err(ctx)?;
        parse(&buf)
    }

    /// Calls a method and returns its reply's body; an error reply is an error naming the method.
    pub fn call(
        &mut self,
        dest: &str,
        path: &str,
        iface: &str,
        member: &str,
        args: &[Val],
    ) -> Result<Vec<Val>> {
        self.serial += 1;
        let serial = self.serial;
        let msg = method_call(serial, dest, path, iface, member, args);
        self.sock
            .write_all(&msg)
            .map_err(|e| Error::State(format!("D-Bus write ({}): {e}", self.path.display())))?;
        loop {
            let m = self.read_message()?;
            match m.kind {
                SIGNAL => self.queued.push(m),
                METHOD_RETURN if m.reply_to == Some(serial) => return Ok(m.body),
                ERROR if m.reply_to == Some(serial) => {
                    let text = m.body.first().and_then(Val::as_str).unwrap_or("");
                    return Err(Error::State(format!(
                        "D-Bus {member}: {}: {text}",
                        m.error.unwrap_or_default()
                    )));
                }
                _ => {}
            }
        }
    }

    /// Waits for a signal `member` whose body `pick` accepts, returning what it returned.
    pub fn wait_signal<T>(
        &mut self,
        member: &str,
        timeout: Duration,
        pick: &dyn Fn(&[Val]) -> Option<T>,
    ) -> Result<T> {
        let deadline = Instant::now() + timeout;
        loop {
            let m = match self.queued.pop() {
                Some(m) => m,
                None => {
                    if Instant::now() > deadline {
                        return Err(Error::State(format!(
                            "D-Bus: no {member} signal within {} s",
                            timeout.as_secs()
                        )));
                    }
                    self.read_message()?
                }
            };
            if m.kind == SIGNAL
                && m.member.as_deref() == Some(member)
                && let Some(t) = pick(&m.body)
            {
                return Ok(t);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_call_round_trips_through_the_parser() {
        let args = [
            Val::Str("berth-x.scope".into()),
            Val::Str("replace".into()),
            Val::Array(
                "(sv)".into(),
                vec![
                    prop("PIDs", Val::Array("u".into(), vec![Val::U32(42)])),
                    prop("Delegate", Val::Bool(true)),
                    prop("MemoryMax", Val::U64(1 << 26)),
                    prop("AllowedCPUs", Val::Array("y".into(), vec![Val::Byte(5)])),
                ],
            ),
            Val::Array("(sa(sv))".into(), vec![]),
        ];
        let msg = method_call(
            7,
            "org.freedesktop.systemd1",
            "/org/freedesktop/systemd1",
            "org.freedesktop.systemd1.Manager",
            "StartTransientUnit",
            &args,
        );
        assert_eq!(
            msg.len() % 8,
            0,
            "a call ends 8-aligned here only by chance"
        );
        let m = parse(&msg).unwrap();
        assert_eq!(m.kind, METHOD_CALL);
        assert_eq!(m.member.as_deref(), Some("StartTransientUnit"));
        assert_eq!(m.body, args);
    }

    #[test]
    fn signatures_and_type_lengths() {
        assert_eq!(Val::Array("(sv)".into(), vec![]).signature(), "a(sv)");
        assert_eq!(one_type("a(sa(sv))u"), Some(9));
        assert_eq!(one_type("a{sv}"), Some(5));
        assert_eq!(one_type("(s"), None);
    }

    #[test]
    fn truncated_or_hostile_messages_are_errors_not_panics() {
        let msg = method_call(1, "d", "/p", "i", "m", &[Val::Str("x".into())]);
        for n in 0..msg.len() {
            let _ = parse(&msg[..n]);
        }
        // Variants nested 40 deep are refused, not followed until the stack runs out.
        let mut deep: Vec<u8> = [1u8, b'v', 0].repeat(40);
        deep.extend_from_slice(&[1, b'y', 0, 5]);
        let mut r = Reader { buf: &deep, pos: 0 };
        assert!(r.value("v", 0).unwrap_err().to_string().contains("deep"));
        let mut r = Reader {
            buf: &deep[120..],
            pos: 0,
        };
        assert_eq!(
            r.value("v", 0).unwrap().0,
            Val::Variant(Box::new(Val::Byte(5)))
        );
    }
}
