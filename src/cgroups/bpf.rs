//! The cgroup v2 device program: berth's rule list compiled to a `BPF_PROG_TYPE_CGROUP_DEVICE`
//! program (a small instruction emitter, no compiler or library), loaded and attached to the
//! container's cgroup through thin bpf(2) wrappers in `sys`.
//!
//! The kernel calls the program with `struct bpf_cgroup_dev_ctx { u32 access_type; u32 major; u32
//! minor; }`, `access_type` being `(access << 16) | type` (type 1 block, 2 char; access bits mknod 1,
//! read 2, write 4), and allows the access when it returns 1. The program walks the rules from the
//! last to the first keeping the access bits still undecided: a matching deny rule that covers one of
//! them refuses, a matching allow rule decides the bits it covers; bits no rule decides are allowed
//! (before the first rule everything is). That is exactly "later rules override earlier ones".

use super::devices::Rule;
use crate::error::{Error, Result};
use std::path::Path;

pub use crate::sys::BpfInsn as Insn;

const LDX_MEM_W: u8 = 0x61;
const ALU64_MOV_K: u8 = 0xb7;
const ALU64_MOV_X: u8 = 0xbf;
const ALU64_AND_K: u8 = 0x57;
const ALU64_RSH_K: u8 = 0x77;
const JMP_JEQ_K: u8 = 0x15;
const JMP_JNE_K: u8 = 0x55;
const JMP_EXIT: u8 = 0x95;

// Registers: r1 the context; r2 scratch; r6 type; r7 undecided access bits; r8 major; r9 minor.
const R0: u8 = 0;
const R1: u8 = 1;
const R2: u8 = 2;
const R6: u8 = 6;
const R7: u8 = 7;
const R8: u8 = 8;
const R9: u8 = 9;

fn insn(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> Insn {
    Insn {
        code,
        regs: (src << 4) | dst,
        off,
        imm,
    }
}

fn ret(v: i32) -> [Insn; 2] {
    [insn(ALU64_MOV_K, R0, 0, 0, v), insn(JMP_EXIT, 0, 0, 0, 0)]
}

/// The instructions of one rule; every "no match" jumps to the end of the block (the next rule).
#[allow(
    clippy::cast_possible_truncation,
    reason = "a rule's block is a handful of instructions, far below i16::MAX"
)]
fn rule_block(r: &Rule) -> Vec<Insn> {
    // Tests first, with placeholder offsets fixed once the block's length is known.
    let mut tests: Vec<Insn> = Vec::new();
    match r.typ {
        'c' => tests.push(insn(JMP_JNE_K, R6, 0, 0, 2)),
        'b' => tests.push(insn(JMP_JNE_K, R6, 0, 0, 1)),
        _ => {}
    }
    if let Some(m) = r.major {
        tests.push(insn(JMP_JNE_K, R8, 0, 0, m as i32));
    }
    if let Some(m) = r.minor {
        tests.push(insn(JMP_JNE_K, R9, 0, 0, m as i32));
    }
    let mut body = vec![
        insn(ALU64_MOV_X, R2, R7, 0, 0),
        insn(ALU64_AND_K, R2, 0, 0, r.access as i32),
        insn(JMP_JEQ_K, R2, 0, 0, 0), // placeholder: no requested bit covered
    ];
    if r.allow {
        body.push(insn(ALU64_AND_K, R7, 0, 0, !(r.access as i32)));
        body.push(insn(JMP_JNE_K, R7, 0, 0, 0)); // placeholder: bits remain
        body.extend(ret(1));
    } else {
        body.extend(ret(0));
    }
    let mut block = tests;
    let start_body = block.len();
    block.extend(body);
    let len = block.len() as i16;
    // Every jump in the block with a placeholder goes to the block's end.
    for (i, ins) in block.iter_mut().enumerate() {
        let is_test = i < start_body;
        let is_placeholder = (ins.code == JMP_JEQ_K || ins.code == JMP_JNE_K)
            && (is_test || ins.off == 0 && i > start_body);
        if is_placeholder {
            ins.off = len - (i as i16) - 1;
        }
    }
    block
}

/// The program for `rules`.
pub fn program(rules: &[Rule]) -> Vec<Insn> {
    let mut p = vec![
        insn(LDX_MEM_W, R2, R1, 0, 0),
        insn(ALU64_MOV_X, R6, R2, 0, 0),
        insn(ALU64_AND_K, R6, 0, 0, 0xffff),
        insn(ALU64_MOV_X, R7, R2, 0, 0),
        insn(ALU64_RSH_K, R7, 0, 0, 16),
        insn(LDX_MEM_W, R8, R1, 4, 0),
        insn(LDX_MEM_W, R9, R1, 8, 0),
    ];
    for r in rules.iter().rev() {
        p.extend(rule_block(r));
    }
    p.extend(ret(1));
    p
}

/// Replaces the device program of the cgroup directory `dir` (`update`): the new one is attached
/// before the old ones are detached, so no moment is without rules.
pub fn replace(dir: &Path, prog: &[Insn]) -> Result<()> {
    let cg = crate::sys::openat2(None, dir, libc::O_RDONLY | libc::O_DIRECTORY, 0, 0)?;
    let old = crate::sys::bpf_query_cgroup_device(&cg)?;
    attach(dir, prog)?;
    for id in old {
        crate::sys::bpf_detach_cgroup_device(&cg, id)?;
    }
    Ok(())
}

/// Loads `prog` and attaches it to the cgroup directory `dir` (BPF_F_ALLOW_MULTI, as runc: programs
/// of parent cgroups still apply). The attachment lives as long as the cgroup.
pub fn attach(dir: &Path, prog: &[Insn]) -> Result<()> {
    if prog.len() > 4096 {
        return Err(Error::InvalidSpec(format!(
            "linux.resources.devices: the device program has {} instructions (at most 4096)",
            prog.len()
        )));
    }
    let cg = crate::sys::openat2(None, dir, libc::O_RDONLY | libc::O_DIRECTORY, 0, 0)?;
    let fd = crate::sys::bpf_load_cgroup_device(prog)?;
    crate::sys::bpf_attach_cgroup_device(&cg, &fd)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::devices::{ACC_MKNOD, ACC_READ, ACC_WRITE};
    use super::*;

    /// A tiny interpreter for the instructions the emitter uses.
    #[allow(
        clippy::cast_possible_truncation,
        reason = "the test interpreter's jumps stay within its program"
    )]
    fn run(p: &[Insn], typ: u64, access: u64, major: u64, minor: u64) -> u64 {
        let ctx = [(access << 16) | typ, major, minor];
        let mut r = [0u64; 11];
        let mut pc = 0usize;
        loop {
            let i = p[pc];
            let (dst, src) = ((i.regs & 0xf) as usize, (i.regs >> 4) as usize);
            let imm = i.imm as i64 as u64;
            pc += 1;
            match i.code {
                LDX_MEM_W => r[dst] = ctx[(i.off / 4) as usize] & 0xffff_ffff,
                ALU64_MOV_K => r[dst] = imm,
                ALU64_MOV_X => r[dst] = r[src],
                ALU64_AND_K => r[dst] &= imm,
                ALU64_RSH_K => r[dst] >>= imm,
                JMP_JEQ_K if r[dst] == imm => pc = (pc as i64 + i.off as i64) as usize,
                JMP_JNE_K if r[dst] != imm => pc = (pc as i64 + i.off as i64) as usize,
                JMP_JEQ_K | JMP_JNE_K => {}
                JMP_EXIT => return r[0],
                c => panic!("opcode {c:#x}"),
            }
        }
    }

    fn rule(allow: bool, typ: char, major: Option<u32>, minor: Option<u32>, access: u32) -> Rule {
        Rule {
            allow,
            typ,
            major,
            minor,
            access,
        }
    }

    const RW: u64 = (ACC_READ | ACC_WRITE) as u64;

    #[test]
    fn later_rules_override_earlier_ones() {
        let rules = [
            rule(false, 'a', None, None, 7),
            rule(true, 'c', Some(1), Some(3), 7),
            rule(true, 'c', Some(136), None, 7),
            rule(true, 'c', Some(1), Some(9), ACC_READ),
            rule(true, 'c', None, None, ACC_MKNOD),
        ];
        let p = program(&rules);
        assert_eq!(run(&p, 2, RW, 1, 3), 1, "null");
        assert_eq!(run(&p, 2, RW, 136, 4), 1, "a pts");
        assert_eq!(run(&p, 2, RW, 1, 5), 0, "zero is denied by the first rule");
        assert_eq!(run(&p, 1, ACC_READ as u64, 8, 0), 0, "a block device");
        assert_eq!(run(&p, 2, ACC_READ as u64, 1, 9), 1, "urandom read");
        assert_eq!(run(&p, 2, RW, 1, 9), 0, "urandom write is not allowed");
        assert_eq!(
            run(&p, 2, ACC_MKNOD as u64, 7, 7),
            1,
            "mknod of any char node"
        );
        assert_eq!(
            run(&p, 1, ACC_MKNOD as u64, 7, 7),
            0,
            "but not a block node"
        );
    }

    #[test]
    fn no_rules_allow_and_a_late_deny_wins() {
        assert_eq!(run(&program(&[]), 2, RW, 1, 5), 1);
        let p = program(&[
            rule(true, 'a', None, None, 7),
            rule(false, 'c', Some(1), Some(5), ACC_WRITE),
        ]);
        assert_eq!(run(&p, 2, ACC_READ as u64, 1, 5), 1);
        assert_eq!(run(&p, 2, RW, 1, 5), 0);
    }
}
