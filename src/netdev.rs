//! `linux.netDevices`: host network interfaces moved into the container's network namespace, over
//! rtnetlink (berth's own few messages; no dependency).
//!
//! In berth's own network namespace, before it joins any namespace for the init ([`prepare`]): each
//! interface is looked up by name and its permanent, global addresses are read (moving an
//! interface flushes them; the spec says they are kept). Once the init exists, at sync point 1
//! ([`Prepared::move_into`]): each interface is moved into the init's network namespace under its
//! new name, then, from a socket made in that namespace, set up and given its addresses back.
//! Everything here names its field: `linux.netDevices["eth1"]`.

use crate::error::{Error, Result};
use crate::spec::ValidSpec;
use nix::errno::Errno;
use nix::sys::socket::{MsgFlags, SockFlag, SockProtocol, SockType, recv, send, socket};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};

/// Whether this build moves network devices (`features`' `netDevices.enabled`).
pub const SUPPORTED: bool = true;

const RTM_NEWLINK: u16 = 16;
const RTM_GETLINK: u16 = 18;
const RTM_NEWADDR: u16 = 20;
const RTM_GETADDR: u16 = 22;
const NLMSG_ERROR: u16 = 2;
const NLMSG_DONE: u16 = 3;
const NLM_F_REQUEST: u16 = 1;
const NLM_F_ACK: u16 = 4;
const NLM_F_DUMP: u16 = 0x300;
const NLM_F_EXCL: u16 = 0x200;
const NLM_F_CREATE: u16 = 0x400;
const IFLA_IFNAME: u16 = 3;
const IFLA_NET_NS_FD: u16 = 28;
const IFLA_NEW_IFINDEX: u16 = 49;
const IFA_ADDRESS: u16 = 1;
const IFA_LOCAL: u16 = 2;
const IFA_BROADCAST: u16 = 4;
const IFA_FLAGS: u16 = 8;
const IFA_F_PERMANENT: u32 = 0x80;
const RT_SCOPE_UNIVERSE: u8 = 0;
const IFF_UP: u32 = 1;

/// One interface to move.
#[derive(Debug)]
struct Dev {
    /// Its name on the host (the spec's key).
    host: String,
    /// Its name in the container (a `%d` template lets the kernel number it).
    name: String,
    /// Its index on the host.
    index: i32,
    /// Its permanent global addresses: `ifaddrmsg` + the attributes to re-create them.
    addrs: Vec<Vec<u8>>,
}

/// What [`prepare`] found in berth's own network namespace.
#[derive(Debug)]
pub struct Prepared {
    /// A socket in that namespace (it stays there whatever berth joins later).
    sock: OwnedFd,
    devs: Vec<Dev>,
}

fn field(host: &str) -> String {
    format!("linux.netDevices[{host:?}]")
}

/// Looks up every interface of `linux.netDevices` and reads its addresses, in berth's own network
/// namespace; `None` when the spec moves none.
pub fn prepare(vs: &ValidSpec) -> Result<Option<Prepared>> {
    let wanted = &vs.linux().net_devices;
    if wanted.is_empty() {
        return Ok(None);
    }
    if crate::spec::rootless::active() {
        return Err(Error::NotSupported(
            "linux.netDevices: moving a host interface needs CAP_NET_ADMIN in the host's network namespace (berth runs rootless)".into(),
        ));
    }
    let sock = route_socket()?;
    let mut addrs_by_index = dump_addresses(&sock)?;
    let mut devs = Vec::new();
    for (host, d) in wanted {
        let index = link_index(&sock, host).map_err(|e| match e {
            Errno::ENODEV => Error::InvalidSpec(format!(
                "{}: no interface {host:?} in berth's network namespace",
                field(host)
            )),
            e => Error::sys(format!("{}: RTM_GETLINK {host:?}", field(host)), e),
        })?;
        devs.push(Dev {
            host: host.clone(),
            name: d.name.clone().unwrap_or_else(|| host.clone()),
            index,
            addrs: addrs_by_index.remove(&index).unwrap_or_default(),
        });
    }
    Ok(Some(Prepared { sock, devs }))
}

impl Prepared {
    /// Moves every interface into the network namespace of `pid` (the init), then sets it up
    /// there with its addresses.
    pub fn move_into(&self, pid: i32) -> Result<()> {
        let netns = crate::sys::openat2(
            None,
            std::path::Path::new(&format!("/proc/{pid}/ns/net")),
            libc::O_RDONLY,
            0,
            0,
        )?;
        let mut moved = Vec::new();
        for d in &self.devs {
            let fd = u32::try_from(netns.as_raw_fd())
                .map_err(|_| Error::sys("linux.netDevices: the namespace fd", Errno::EBADF))?;
            let mut req = ifinfomsg(d.index, 0, 0);
            attr(&mut req, IFLA_NET_NS_FD, &fd.to_ne_bytes());
            attr(&mut req, IFLA_IFNAME, &cstr(&d.name));
            let template = d.name.contains("%d");
            if template {
                // The kernel picks the name; the index is kept, so the interface can be found.
                attr(&mut req, IFLA_NEW_IFINDEX, &d.index.to_ne_bytes());
            }
            ack(&self.sock, RTM_NEWLINK, 0, &req).map_err(|e| {
                let why = match e {
                    Errno::EEXIST => {
                        " (the container already has an interface of that name or index)"
                    }
                    Errno::EINVAL => {
                        " (an interface the kernel cannot move: lo, or one marked netns-local)"
                    }
                    _ => "",
                };
                Error::sys(
                    format!("{}: moving it in as {:?}{why}", field(&d.host), d.name),
                    e,
                )
            })?;
            moved.push((d, template));
        }
        let inside = socket_in(&netns)?;
        for (d, template) in moved {
            let index = if template {
                d.index
            } else {
                link_index(&inside, &d.name).map_err(|e| {
                    Error::sys(
                        format!(
                            "{}: RTM_GETLINK {:?} in the container",
                            field(&d.host),
                            d.name
                        ),
                        e,
                    )
                })?
            };
            for a in &d.addrs {
                let mut msg = a.clone();
                msg[4..8].copy_from_slice(&index.to_ne_bytes());
                ack(&inside, RTM_NEWADDR, NLM_F_CREATE | NLM_F_EXCL, &msg).map_err(|e| {
                    Error::sys(format!("{}: restoring an address", field(&d.host)), e)
                })?;
            }
            ack(&inside, RTM_NEWLINK, 0, &ifinfomsg(index, IFF_UP, IFF_UP)).map_err(|e| {
                Error::sys(
                    format!("{}: setting it up in the container", field(&d.host)),
                    e,
                )
            })?;
        }
        Ok(())
    }
}

fn route_socket() -> Result<OwnedFd> {
    socket(
        nix::sys::socket::AddressFamily::Netlink,
        SockType::Raw,
        SockFlag::SOCK_CLOEXEC,
        SockProtocol::NetlinkRoute,
    )
    .map_err(|e| Error::sys("socket(AF_NETLINK, NETLINK_ROUTE)", e))
}

/// A route socket in the network namespace `netns`: berth steps in, makes it, and steps back
/// (berth is single-threaded here: the init is cloned by a process with one thread).
fn socket_in(netns: &OwnedFd) -> Result<OwnedFd> {
    use nix::sched::{CloneFlags, setns};
    let own = crate::sys::openat2(
        None,
        std::path::Path::new("/proc/thread-self/ns/net"),
        libc::O_RDONLY,
        0,
        0,
    )?;
    setns(netns.as_fd(), CloneFlags::CLONE_NEWNET)
        .map_err(|e| Error::sys("setns(the init's network namespace)", e))?;
    let sock = route_socket();
    setns(own.as_fd(), CloneFlags::CLONE_NEWNET)
        .map_err(|e| Error::sys("setns(back to berth's network namespace)", e))?;
    sock
}

fn cstr(s: &str) -> Vec<u8> {
    let mut v = s.as_bytes().to_vec();
    v.push(0);
    v
}

/// `struct ifinfomsg` (family unspecified).
fn ifinfomsg(index: i32, flags: u32, change: u32) -> Vec<u8> {
    let mut v = vec![0u8; 4];
    v.extend_from_slice(&index.to_ne_bytes());
    v.extend_from_slice(&flags.to_ne_bytes());
    v.extend_from_slice(&change.to_ne_bytes());
    v
}

fn align4(n: usize) -> usize {
    (n + 3) & !3
}

/// Appends one `struct rtattr` with its payload, padded to 4 bytes.
fn attr(buf: &mut Vec<u8>, typ: u16, data: &[u8]) {
    let len = u16::try_from(4 + data.len()).expect("an rtnetlink attribute berth builds is small");
    buf.extend_from_slice(&len.to_ne_bytes());
    buf.extend_from_slice(&typ.to_ne_bytes());
    buf.extend_from_slice(data);
    buf.resize(align4(buf.len()), 0);
}

/// The attributes after a fixed header of `skip` bytes: (type, payload).
fn attrs(body: &[u8], skip: usize) -> Vec<(u16, &[u8])> {
    let mut out = Vec::new();
    let mut at = align4(skip);
    while at + 4 <= body.len() {
        let len = usize::from(u16::from_ne_bytes([body[at], body[at + 1]]));
        let typ = u16::from_ne_bytes([body[at + 2], body[at + 3]]) & 0x3fff;
        if len < 4 || at + len > body.len() {
            break;
        }
        out.push((typ, &body[at + 4..at + len]));
        at += align4(len);
    }
    out
}

/// Sends one request (`struct nlmsghdr` + `payload`).
fn request(sock: &OwnedFd, typ: u16, flags: u16, payload: &[u8]) -> std::result::Result<(), Errno> {
    let len = u32::try_from(16 + payload.len()).map_err(|_| Errno::EMSGSIZE)?;
    let mut msg = Vec::with_capacity(16 + payload.len());
    msg.extend_from_slice(&len.to_ne_bytes());
    msg.extend_from_slice(&typ.to_ne_bytes());
    msg.extend_from_slice(&(flags | NLM_F_REQUEST).to_ne_bytes());
    msg.extend_from_slice(&1u32.to_ne_bytes());
    msg.extend_from_slice(&0u32.to_ne_bytes());
    msg.extend_from_slice(payload);
    send(sock.as_raw_fd(), &msg, MsgFlags::empty())?;
    Ok(())
}

/// Reads replies until `done` says stop: each message as (type, body without the header). An
/// NLMSG_ERROR with an errno ends it with that errno.
fn replies(
    sock: &OwnedFd,
    mut each: impl FnMut(u16, &[u8]) -> bool,
) -> std::result::Result<(), Errno> {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = recv(sock.as_raw_fd(), &mut buf, MsgFlags::empty())?;
        let mut at = 0;
        while at + 16 <= n {
            let len = u32::from_ne_bytes(buf[at..at + 4].try_into().unwrap_or_default()) as usize;
            let typ = u16::from_ne_bytes([buf[at + 4], buf[at + 5]]);
            if len < 16 || at + len > n {
                return Err(Errno::EBADMSG);
            }
            let body = &buf[at + 16..at + len];
            match typ {
                NLMSG_ERROR => {
                    let code = body.get(..4).map_or(-libc::EBADMSG, |b| {
                        i32::from_ne_bytes([b[0], b[1], b[2], b[3]])
                    });
                    return if code == 0 {
                        Ok(())
                    } else {
                        Err(Errno::from_raw(-code))
                    };
                }
                NLMSG_DONE => return Ok(()),
                _ => {
                    if !each(typ, body) {
                        return Ok(());
                    }
                }
            }
            at += align4(len);
        }
    }
}

/// A request that the kernel acknowledges.
fn ack(sock: &OwnedFd, typ: u16, flags: u16, payload: &[u8]) -> std::result::Result<(), Errno> {
    request(sock, typ, flags | NLM_F_ACK, payload)?;
    replies(sock, |_, _| true)
}

/// The index of the interface `name` (ENODEV when there is none).
fn link_index(sock: &OwnedFd, name: &str) -> std::result::Result<i32, Errno> {
    let mut req = ifinfomsg(0, 0, 0);
    attr(&mut req, IFLA_IFNAME, &cstr(name));
    request(sock, RTM_GETLINK, 0, &req)?;
    let mut index = None;
    replies(sock, |typ, body| {
        if typ == RTM_NEWLINK && body.len() >= 8 {
            index = Some(i32::from_ne_bytes([body[4], body[5], body[6], body[7]]));
        }
        false
    })?;
    index.ok_or(Errno::ENODEV)
}

/// Every permanent address of global scope, by interface index, as the `RTM_NEWADDR` payload that
/// re-creates it (`ifaddrmsg` and its address attributes).
fn dump_addresses(sock: &OwnedFd) -> Result<std::collections::HashMap<i32, Vec<Vec<u8>>>> {
    request(sock, RTM_GETADDR, NLM_F_DUMP, &[0u8; 8])
        .map_err(|e| Error::sys("linux.netDevices: RTM_GETADDR", e))?;
    let mut out: std::collections::HashMap<i32, Vec<Vec<u8>>> = Default::default();
    replies(sock, |typ, body| {
        if let Some((index, msg)) = (typ == RTM_NEWADDR).then(|| keep_address(body)).flatten() {
            out.entry(index).or_default().push(msg);
        }
        true
    })
    .map_err(|e| Error::sys("linux.netDevices: RTM_GETADDR", e))?;
    Ok(out)
}

/// An address to keep (permanent, global scope): its interface and re-creating payload.
fn keep_address(body: &[u8]) -> Option<(i32, Vec<u8>)> {
    let head = body.get(..8)?;
    let (family, prefix, flags8, scope) = (head[0], head[1], head[2], head[3]);
    let index = i32::from_ne_bytes([head[4], head[5], head[6], head[7]]);
    let found = attrs(body, 8);
    let flags = found
        .iter()
        .find(|(t, d)| *t == IFA_FLAGS && d.len() == 4)
        .map_or(u32::from(flags8), |(_, d)| {
            u32::from_ne_bytes([d[0], d[1], d[2], d[3]])
        });
    if scope != RT_SCOPE_UNIVERSE || flags & IFA_F_PERMANENT == 0 {
        return None;
    }
    let mut msg = vec![family, prefix, 0, scope];
    msg.extend_from_slice(&index.to_ne_bytes());
    for (t, d) in found {
        // IFA_FLAGS too: the kernel keeps the ones an address may be created with (nodad, ...).
        if matches!(t, IFA_ADDRESS | IFA_LOCAL | IFA_BROADCAST | IFA_FLAGS) {
            attr(&mut msg, t, d);
        }
    }
    Some((index, msg))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attributes_round_trip_and_truncated_ones_stop_the_walk() {
        let mut buf = ifinfomsg(7, IFF_UP, IFF_UP);
        attr(&mut buf, IFLA_IFNAME, &cstr("eth1"));
        attr(&mut buf, IFLA_NET_NS_FD, &5u32.to_ne_bytes());
        let found = attrs(&buf, 16);
        assert_eq!(found.len(), 2);
        assert_eq!(found[0], (IFLA_IFNAME, &b"eth1\0"[..]));
        assert_eq!(found[1].1, &5u32.to_ne_bytes()[..]);
        // A length running past the end ends the walk instead of reading beyond it.
        let mut bad = buf.clone();
        bad[16] = 200;
        assert!(attrs(&bad, 16).is_empty());
    }

    #[test]
    fn only_permanent_global_addresses_are_kept() {
        let addr = |scope: u8, flags: u32| {
            let mut m = vec![2u8, 24, 0, scope];
            m.extend_from_slice(&3i32.to_ne_bytes());
            attr(&mut m, IFA_LOCAL, &[10, 0, 0, 1]);
            attr(&mut m, IFA_FLAGS, &flags.to_ne_bytes());
            attr(&mut m, 6, &[0; 16]); // IFA_CACHEINFO: not copied
            m
        };
        let (index, msg) = keep_address(&addr(0, IFA_F_PERMANENT)).unwrap();
        assert_eq!(index, 3);
        let kept: Vec<u16> = attrs(&msg, 8).iter().map(|(t, _)| *t).collect();
        assert_eq!(kept, vec![IFA_LOCAL, IFA_FLAGS]);
        assert!(keep_address(&addr(253, IFA_F_PERMANENT)).is_none());
        assert!(keep_address(&addr(0, 0)).is_none());
        assert!(keep_address(&[0u8; 4]).is_none());
    }
}
