//! bpf(2) for cgroup v2 device programs: load, attach, query, detach.
// syscall(2) returns a c_long that holds the C int the call returns (an fd, a pid), and ioctl
// request numbers are passed in the type libc gives them: the casts here lose no bits.
#![allow(clippy::cast_possible_truncation)]

use super::{describe_fd, owned, unit};
use crate::error::SysError;
use nix::errno::Errno;
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd, RawFd};

/// One eBPF instruction, as the kernel's `struct bpf_insn` (8 bytes: code, dst:4|src:4, off, imm).
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BpfInsn {
    /// Opcode.
    pub code: u8,
    /// dst_reg in the low nibble, src_reg in the high one.
    pub regs: u8,
    /// Jump offset or memory offset.
    pub off: i16,
    /// Immediate.
    pub imm: i32,
}

/// The prefix of `union bpf_attr` for BPF_PROG_LOAD, padded with zeros (the kernel requires unknown
/// trailing bytes to be zero).
#[repr(C)]
struct BpfProgLoad {
    prog_type: u32,
    insn_cnt: u32,
    insns: u64,
    license: u64,
    log_level: u32,
    log_size: u32,
    log_buf: u64,
    kern_version: u32,
    prog_flags: u32,
    _pad: [u8; 80],
}

/// The prefix of `union bpf_attr` for BPF_PROG_ATTACH.
#[repr(C)]
struct BpfProgAttach {
    target_fd: u32,
    attach_bpf_fd: u32,
    attach_type: u32,
    attach_flags: u32,
    replace_bpf_fd: u32,
    _pad: [u8; 108],
}

/// bpf(BPF_PROG_LOAD) of a BPF_PROG_TYPE_CGROUP_DEVICE program.
pub fn bpf_load_cgroup_device(prog: &[BpfInsn]) -> Result<OwnedFd, SysError> {
    const BPF_PROG_LOAD: libc::c_long = 5;
    const BPF_PROG_TYPE_CGROUP_DEVICE: u32 = 15;
    let license = c"Apache-2.0";
    let attr = BpfProgLoad {
        prog_type: BPF_PROG_TYPE_CGROUP_DEVICE,
        insn_cnt: u32::try_from(prog.len()).unwrap_or(u32::MAX),
        insns: prog.as_ptr() as u64,
        license: license.as_ptr() as u64,
        log_level: 0,
        log_size: 0,
        log_buf: 0,
        kern_version: 0,
        prog_flags: 0,
        _pad: [0; 80],
    };
    // SAFETY: `attr` is a #[repr(C)] prefix of union bpf_attr with zeroed padding; `insns` points at
    // `prog` (#[repr(C)] 8-byte bpf_insn, insn_cnt of them) and `license` at a NUL-terminated string,
    // both alive for the call; the kernel copies the program. On success it returns a new fd that we
    // own.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            BPF_PROG_LOAD,
            &attr as *const BpfProgLoad,
            std::mem::size_of::<BpfProgLoad>(),
        )
    };
    if ret < 0 {
        return Err(SysError {
            call: format!(
                "bpf(BPF_PROG_LOAD, CGROUP_DEVICE, {} instructions)",
                prog.len()
            ),
            errno: Errno::last(),
        });
    }
    // SAFETY: a successful BPF_PROG_LOAD returns a new fd (close-on-exec) that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(ret as RawFd) })
}

/// bpf(BPF_PROG_ATTACH) of a device program to a cgroup directory, BPF_F_ALLOW_MULTI.
pub fn bpf_attach_cgroup_device(cgroup: impl AsFd, prog: impl AsFd) -> Result<(), SysError> {
    const BPF_PROG_ATTACH: libc::c_long = 8;
    const BPF_CGROUP_DEVICE: u32 = 6;
    const BPF_F_ALLOW_MULTI: u32 = 2;
    let cg = cgroup.as_fd().as_raw_fd();
    let attr = BpfProgAttach {
        target_fd: cg as u32,
        attach_bpf_fd: prog.as_fd().as_raw_fd() as u32,
        attach_type: BPF_CGROUP_DEVICE,
        attach_flags: BPF_F_ALLOW_MULTI,
        replace_bpf_fd: 0,
        _pad: [0; 108],
    };
    // SAFETY: `attr` is a #[repr(C)] prefix of union bpf_attr with zeroed padding, alive for the call;
    // both fds are borrowed for its duration.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            BPF_PROG_ATTACH,
            &attr as *const BpfProgAttach,
            std::mem::size_of::<BpfProgAttach>(),
        )
    };
    unit(ret, || {
        format!(
            "bpf(BPF_PROG_ATTACH, {}, CGROUP_DEVICE, ALLOW_MULTI)",
            describe_fd(cg)
        )
    })
}

/// The ids of the CGROUP_DEVICE programs attached to a cgroup directory (BPF_PROG_QUERY).
pub fn bpf_query_cgroup_device(cgroup: impl AsFd) -> Result<Vec<u32>, SysError> {
    const BPF_PROG_QUERY: libc::c_long = 16;
    const BPF_CGROUP_DEVICE: u32 = 6;
    #[repr(C)]
    struct Query {
        target_fd: u32,
        attach_type: u32,
        query_flags: u32,
        attach_flags: u32,
        prog_ids: u64,
        prog_cnt: u32,
        _pad: [u8; 100],
    }
    let mut ids = [0u32; 64];
    let cg = cgroup.as_fd().as_raw_fd();
    let mut q = Query {
        target_fd: cg as u32,
        attach_type: BPF_CGROUP_DEVICE,
        query_flags: 0,
        attach_flags: 0,
        prog_ids: ids.as_mut_ptr() as u64,
        prog_cnt: ids.len() as u32,
        _pad: [0; 100],
    };
    // SAFETY: `q` is a #[repr(C)] prefix of union bpf_attr with zeroed padding; `prog_ids` points at
    // `ids`, room for `prog_cnt` u32s, alive for the call; the kernel writes at most that many ids and
    // the count back into `q`.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            BPF_PROG_QUERY,
            &mut q as *mut Query,
            std::mem::size_of::<Query>(),
        )
    };
    unit(ret, || {
        format!("bpf(BPF_PROG_QUERY, {}, CGROUP_DEVICE)", describe_fd(cg))
    })?;
    Ok(ids[..(q.prog_cnt as usize).min(ids.len())].to_vec())
}

/// Detaches the CGROUP_DEVICE program with id `id` from a cgroup directory.
pub fn bpf_detach_cgroup_device(cgroup: impl AsFd, id: u32) -> Result<(), SysError> {
    const BPF_PROG_GET_FD_BY_ID: libc::c_long = 13;
    const BPF_PROG_DETACH: libc::c_long = 9;
    const BPF_CGROUP_DEVICE: u32 = 6;
    #[repr(C)]
    struct ById {
        prog_id: u32,
        next_id: u32,
        open_flags: u32,
        _pad: [u8; 116],
    }
    let by_id = ById {
        prog_id: id,
        next_id: 0,
        open_flags: 0,
        _pad: [0; 116],
    };
    // SAFETY: `by_id` is a #[repr(C)] prefix of union bpf_attr with zeroed padding, alive for the call;
    // on success the kernel returns a new fd that we own.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            BPF_PROG_GET_FD_BY_ID,
            &by_id as *const ById,
            std::mem::size_of::<ById>(),
        )
    };
    let prog = owned(ret, || format!("bpf(BPF_PROG_GET_FD_BY_ID, {id})"))?;
    let cg = cgroup.as_fd().as_raw_fd();
    let attr = BpfProgAttach {
        target_fd: cg as u32,
        attach_bpf_fd: prog.as_raw_fd() as u32,
        attach_type: BPF_CGROUP_DEVICE,
        attach_flags: 0,
        replace_bpf_fd: 0,
        _pad: [0; 108],
    };
    // SAFETY: as for BPF_PROG_ATTACH: a zero-padded #[repr(C)] prefix of bpf_attr, both fds borrowed.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            BPF_PROG_DETACH,
            &attr as *const BpfProgAttach,
            std::mem::size_of::<BpfProgAttach>(),
        )
    };
    unit(ret, || {
        format!("bpf(BPF_PROG_DETACH, {}, prog {id})", describe_fd(cg))
    })
}
