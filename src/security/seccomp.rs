//! linux.seccomp compiled with seccompiler and installed with berth's own seccomp(2) call (seccompiler's
//! `apply_filter` always sets no_new_privs, and `noNewPrivileges: false` must still work).
//!
//! seccompiler builds filters with one default and one match action, while an OCI profile gives each
//! rule its own action. berth therefore builds one filter per distinct action and stacks them; the
//! kernel runs every filter and returns the most severe result (KILL_PROCESS > KILL_THREAD > TRAP >
//! ERRNO > TRACE > LOG > ALLOW, seccomp(2)). The first filter carries the profile's default action and
//! lets every syscall a rule names (under that rule's argument conditions) through to the others.
//! Syscall names this kernel's table does not know are skipped, as runc does. Only the native
//! architecture (x86_64) is enforced: other architectures' syscalls are killed, and x32 calls (which
//! carry x86_64's audit arch with bit 30 set in the number) get ENOSYS, so they cannot bypass rules.

use crate::error::{Error, Result};
use seccompiler::{
    BpfProgram, SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompFilter,
    SeccompRule, TargetArch, sock_filter,
};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::str::FromStr;

/// linux.seccomp.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Profile {
    /// The action for syscalls no rule names.
    pub default_action: String,
    /// errno for a default ERRNO action.
    #[serde(default)]
    pub default_errno_ret: Option<u32>,
    /// SCMP_ARCH_* names.
    #[serde(default)]
    pub architectures: Vec<String>,
    /// SECCOMP_FILTER_FLAG_* names.
    #[serde(default)]
    pub flags: Vec<String>,
    /// The seccomp agent's socket, which receives the SCMP_ACT_NOTIFY listener.
    #[serde(default)]
    pub listener_path: Option<String>,
    /// Opaque metadata passed to the agent.
    #[serde(default)]
    pub listener_metadata: Option<String>,
    /// The rules.
    #[serde(default)]
    pub syscalls: Vec<SyscallRule>,
}

/// One entry of linux.seccomp.syscalls.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SyscallRule {
    /// Syscall names.
    pub names: Vec<String>,
    /// SCMP_ACT_*.
    pub action: String,
    /// errno for ERRNO (and the message for TRACE).
    #[serde(default)]
    pub errno_ret: Option<u32>,
    /// Argument conditions, all of which must hold.
    #[serde(default)]
    pub args: Vec<ArgRule>,
}

/// One argument condition.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ArgRule {
    /// Argument index, 0 to 5.
    pub index: u8,
    /// The value (the mask for SCMP_CMP_MASKED_EQ).
    pub value: u64,
    /// The masked value for SCMP_CMP_MASKED_EQ.
    #[serde(default)]
    pub value_two: u64,
    /// SCMP_CMP_*.
    pub op: String,
}

/// A compiled profile: the programs to install, in order, and the seccomp(2) flags.
#[derive(Debug, Clone, Default)]
pub struct Compiled {
    /// BPF programs.
    pub programs: Vec<BpfProgram>,
    /// Which program (at most one) returns SECCOMP_RET_USER_NOTIF and is installed with a listener.
    pub notify: Option<usize>,
    /// SECCOMP_FILTER_FLAG_* bits.
    pub flags: u32,
    /// linux.seccomp.listenerPath (set whenever `notify` is).
    pub listener_path: Option<std::path::PathBuf>,
    /// linux.seccomp.listenerMetadata.
    pub listener_metadata: Option<String>,
}

/// SCMP_ACT_NOTIFY is compiled as this TRACE action and rewritten to SECCOMP_RET_USER_NOTIF in its own
/// program (seccompiler has no notify action). `Act` keeps it apart from a real TRACE rule.
const NOTIFY_PLACEHOLDER: SeccompAction = SeccompAction::Trace(0);

/// An action as the profile means it: seccompiler's, or notify.
#[derive(Debug, Clone, PartialEq)]
enum Act {
    Plain(SeccompAction),
    Notify,
}

impl Act {
    fn seccompiler(&self) -> SeccompAction {
        match self {
            Act::Plain(a) => a.clone(),
            Act::Notify => NOTIFY_PLACEHOLDER,
        }
    }
}

/// Rewrites a notify program's placeholder returns to SECCOMP_RET_USER_NOTIF.
fn to_notify(mut prog: BpfProgram) -> BpfProgram {
    const RET_K: u16 = 0x06;
    let placeholder = libc::SECCOMP_RET_TRACE;
    for insn in &mut prog {
        if insn.code == RET_K && insn.k == placeholder {
            insn.k = libc::SECCOMP_RET_USER_NOTIF;
        }
    }
    prog
}

const EPERM: u32 = libc::EPERM as u32;

fn action(name: &str, errno: Option<u32>, field: &str) -> Result<Act> {
    Ok(Act::Plain(match name {
        "SCMP_ACT_ALLOW" => SeccompAction::Allow,
        "SCMP_ACT_ERRNO" => SeccompAction::Errno(errno.unwrap_or(EPERM)),
        "SCMP_ACT_KILL" | "SCMP_ACT_KILL_THREAD" => SeccompAction::KillThread,
        "SCMP_ACT_KILL_PROCESS" => SeccompAction::KillProcess,
        "SCMP_ACT_TRAP" => SeccompAction::Trap,
        "SCMP_ACT_TRACE" => SeccompAction::Trace(errno.unwrap_or(EPERM)),
        "SCMP_ACT_LOG" => SeccompAction::Log,
        "SCMP_ACT_NOTIFY" => return Ok(Act::Notify),
        other => {
            return Err(Error::InvalidSpec(format!(
                "{field}: unknown action {other:?}"
            )));
        }
    }))
}

fn condition(a: &ArgRule, field: &str) -> Result<SeccompCondition> {
    let (op, value) = match a.op.as_str() {
        "SCMP_CMP_EQ" => (SeccompCmpOp::Eq, a.value),
        "SCMP_CMP_NE" => (SeccompCmpOp::Ne, a.value),
        "SCMP_CMP_LT" => (SeccompCmpOp::Lt, a.value),
        "SCMP_CMP_LE" => (SeccompCmpOp::Le, a.value),
        "SCMP_CMP_GT" => (SeccompCmpOp::Gt, a.value),
        "SCMP_CMP_GE" => (SeccompCmpOp::Ge, a.value),
        // libseccomp: (arg & value) == valueTwo.
        "SCMP_CMP_MASKED_EQ" => (SeccompCmpOp::MaskedEq(a.value), a.value_two),
        other => {
            return Err(Error::InvalidSpec(format!(
                "{field}.op: unknown comparison {other:?}"
            )));
        }
    };
    SeccompCondition::new(a.index, SeccompCmpArgLen::Qword, op, value)
        .map_err(|e| Error::InvalidSpec(format!("{field}: {e}")))
}

/// SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV (Linux 5.19): a notified syscall waits killably once the
/// agent has received it. Only meaningful (and only accepted) with the notify listener.
pub const WAIT_KILLABLE_RECV: u32 = 1 << 5;

/// The seccomp flags `features` lists as supported: the three every kernel berth runs on has, and
/// WAIT_KILLABLE_RECV where this kernel has it.
pub fn supported_flags() -> Vec<&'static str> {
    let mut v = vec![
        "SECCOMP_FILTER_FLAG_LOG",
        "SECCOMP_FILTER_FLAG_SPEC_ALLOW",
        "SECCOMP_FILTER_FLAG_TSYNC",
    ];
    const NEW_LISTENER: u32 = 8;
    if crate::sys::seccomp_flags_known(NEW_LISTENER | WAIT_KILLABLE_RECV) {
        v.push("SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV");
    }
    v
}

fn flag(name: &str) -> Result<u32> {
    Ok(match name {
        "SECCOMP_FILTER_FLAG_TSYNC" => 1,
        "SECCOMP_FILTER_FLAG_LOG" => 2,
        "SECCOMP_FILTER_FLAG_SPEC_ALLOW" => 4,
        "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV" => WAIT_KILLABLE_RECV,
        other => {
            return Err(Error::InvalidSpec(format!(
                "linux.seccomp.flags: unknown flag {other:?}"
            )));
        }
    })
}

/// Adds `rule` (None: unconditional) for syscall `nr` to a rule map. An unconditional rule (an empty
/// list in seccompiler) wins over conditional ones.
fn add(map: &mut BTreeMap<i64, Vec<SeccompRule>>, nr: i64, rule: Option<SeccompRule>) {
    match (map.get_mut(&nr), rule) {
        (Some(v), _) if v.is_empty() => {}
        (Some(v), Some(r)) => v.push(r),
        (Some(v), None) => v.clear(),
        (None, r) => {
            map.insert(nr, r.into_iter().collect());
        }
    }
}

/// The filter that answers ENOSYS to x32 syscalls (number with bit 30 set).
fn x32_filter() -> BpfProgram {
    const LD_W_ABS: u16 = 0x20;
    const JGE_K: u16 = 0x35;
    const RET_K: u16 = 0x06;
    vec![
        sock_filter {
            code: LD_W_ABS,
            jt: 0,
            jf: 0,
            k: 0,
        },
        sock_filter {
            code: JGE_K,
            jt: 1,
            jf: 0,
            k: 0x4000_0000,
        },
        sock_filter {
            code: RET_K,
            jt: 0,
            jf: 0,
            k: libc::SECCOMP_RET_ALLOW,
        },
        sock_filter {
            code: RET_K,
            jt: 0,
            jf: 0,
            k: libc::SECCOMP_RET_ERRNO | libc::ENOSYS as u32,
        },
    ]
}

/// Syscall numbers and the rules under which an action applies to them (no rule: always).
type Rules = BTreeMap<i64, Vec<SeccompRule>>;

/// The profile's rules: every named syscall's conditions (for the default action's filter), and the
/// rules grouped by each other action.
fn rules(p: &Profile, default: &Act) -> Result<(Rules, Vec<(Act, Rules)>)> {
    // Rules by action, and every named syscall's conditions for the default filter.
    let mut by_action: Vec<(Act, Rules)> = Vec::new();
    let mut named: Rules = BTreeMap::new();
    for (i, r) in p.syscalls.iter().enumerate() {
        let field = format!("linux.seccomp.syscalls[{i}]");
        let act = action(
            &r.action,
            r.errno_ret.or(p.default_errno_ret),
            &format!("{field}.action"),
        )?;
        let conds = r
            .args
            .iter()
            .enumerate()
            .map(|(j, a)| condition(a, &format!("{field}.args[{j}]")))
            .collect::<Result<Vec<_>>>()?;
        let rule = if conds.is_empty() {
            None
        } else {
            Some(
                SeccompRule::new(conds)
                    .map_err(|e| Error::InvalidSpec(format!("{field}.args: {e}")))?,
            )
        };
        for name in &r.names {
            // Unknown on this kernel's table: skipped, as runc does.
            let Ok(nr) = syscalls::Sysno::from_str(name) else {
                continue;
            };
            let nr = nr.id() as i64;
            add(&mut named, nr, rule.clone());
            if act == *default {
                continue;
            }
            let pos = match by_action.iter().position(|(a, _)| *a == act) {
                Some(p) => p,
                None => {
                    by_action.push((act.clone(), BTreeMap::new()));
                    by_action.len() - 1
                }
            };
            add(&mut by_action[pos].1, nr, rule.clone());
        }
    }
    Ok((named, by_action))
}

/// One filter: `matched` for the rules' syscalls, `mismatch` for the rest (x86_64; within the
/// kernel's 4096 instructions).
fn build(rules: Rules, mismatch: &Act, matched: &Act) -> Result<BpfProgram> {
    let f = SeccompFilter::new(
        rules,
        mismatch.seccompiler(),
        matched.seccompiler(),
        TargetArch::x86_64,
    )
    .map_err(|e| Error::InvalidSpec(format!("linux.seccomp: {e}")))?;
    let prog =
        BpfProgram::try_from(f).map_err(|e| Error::InvalidSpec(format!("linux.seccomp: {e}")))?;
    // sock_fprog.len is 16 bits and the kernel takes at most BPF_MAXINSNS (4096) instructions.
    if prog.len() > 4096 {
        return Err(Error::InvalidSpec(format!(
            "linux.seccomp: a filter of {} instructions is over the kernel's 4096",
            prog.len()
        )));
    }
    Ok(if *mismatch == Act::Notify || *matched == Act::Notify {
        to_notify(prog)
    } else {
        prog
    })
}

/// Compiles linux.seccomp into its BPF filters, checking every field (errors name it).
pub fn compile(value: &serde_json::Value) -> Result<Compiled> {
    let p: Profile = serde_path_to_error::deserialize(value)
        .map_err(|e| Error::InvalidSpec(format!("linux.seccomp.{}: {}", e.path(), e.inner())))?;
    for (i, a) in p.architectures.iter().enumerate() {
        if !a.starts_with("SCMP_ARCH_") {
            return Err(Error::InvalidSpec(format!(
                "linux.seccomp.architectures[{i}]: unknown architecture {a:?}"
            )));
        }
    }
    let flags = p
        .flags
        .iter()
        .map(|f| flag(f))
        .try_fold(0, |acc, f| f.map(|f| acc | f))?;
    let default = action(
        &p.default_action,
        p.default_errno_ret,
        "linux.seccomp.defaultAction",
    )?;
    let (named, by_action) = rules(&p, &default)?;
    let allow = Act::Plain(SeccompAction::Allow);
    let mut programs = Vec::new();
    let mut notify = None;
    if default != allow {
        if default == Act::Notify {
            notify = Some(programs.len());
        }
        programs.push(build(named, &default, &allow)?);
    }
    for (act, rules) in by_action {
        if act != allow && !rules.is_empty() {
            if act == Act::Notify {
                notify = Some(programs.len());
            }
            programs.push(build(rules, &allow, &act)?);
        }
    }
    if !programs.is_empty() {
        programs.push(x32_filter());
    }
    let listener_path = p
        .listener_path
        .filter(|l| !l.is_empty())
        .map(std::path::PathBuf::from);
    if notify.is_some() && listener_path.is_none() {
        return Err(Error::InvalidSpec(
            "linux.seccomp: SCMP_ACT_NOTIFY needs listenerPath (the seccomp agent's socket)".into(),
        ));
    }
    if listener_path.as_deref().is_some_and(|l| !l.is_absolute()) {
        return Err(Error::InvalidSpec(
            "linux.seccomp.listenerPath: not an absolute path".into(),
        ));
    }
    Ok(Compiled {
        programs,
        notify,
        flags,
        listener_path,
        listener_metadata: p.listener_metadata,
    })
}

/// Installs the compiled filters (needs no_new_privs or CAP_SYS_ADMIN). Returns the notify listener
/// when the profile has SCMP_ACT_NOTIFY.
pub fn install(c: &Compiled) -> Result<Option<std::os::fd::OwnedFd>> {
    const NEW_LISTENER: u32 = 8;
    const TSYNC: u32 = 1;
    let mut listener = None;
    for (i, prog) in c.programs.iter().enumerate() {
        // The kernel refuses TSYNC together with NEW_LISTENER (berth's init has one thread anyway),
        // and WAIT_KILLABLE_RECV without it: that one is for the listener's filter only.
        let flags = if c.notify == Some(i) {
            (c.flags & !TSYNC) | NEW_LISTENER
        } else {
            c.flags & !WAIT_KILLABLE_RECV
        };
        let fd = crate::sys::seccomp_set_filter(prog, flags)
            .map_err(Error::Sys)
            .map_err(|e| Error::Context {
                what: format!("linux.seccomp: filter {i}"),
                source: Box::new(e),
            })?;
        if fd.is_some() {
            listener = fd;
        }
    }
    Ok(listener)
}

/// Syscalls the default profile (`berth spec --seccomp default`) refuses, as Docker's and Podman's do
/// for a container without extra capabilities: kernel modules, kexec, reboot, clock setting, keyrings,
/// mount and namespace changes, tracing other processes, bpf and perf, NUMA policy, and the obsolete.
pub const DEFAULT_DENY: &[&str] = &[
    "acct",
    "add_key",
    "bpf",
    "clock_adjtime",
    "clock_settime",
    "create_module",
    "delete_module",
    "finit_module",
    "fsconfig",
    "fsmount",
    "fsopen",
    "fspick",
    "get_kernel_syms",
    "get_mempolicy",
    "init_module",
    "ioperm",
    "iopl",
    "kcmp",
    "kexec_file_load",
    "kexec_load",
    "keyctl",
    "lookup_dcookie",
    "mbind",
    "mount",
    "mount_setattr",
    "move_mount",
    "move_pages",
    "name_to_handle_at",
    "nfsservctl",
    "open_by_handle_at",
    "open_tree",
    "perf_event_open",
    "pivot_root",
    "process_vm_readv",
    "process_vm_writev",
    "ptrace",
    "query_module",
    "quotactl",
    "quotactl_fd",
    "reboot",
    "request_key",
    "set_mempolicy",
    "setns",
    "settimeofday",
    "swapoff",
    "swapon",
    "sysfs",
    "_sysctl",
    "umount2",
    "unshare",
    "uselib",
    "userfaultfd",
    "ustat",
    "vm86",
    "vm86old",
    "clone3",
];

/// The default profile: ERRNO(EPERM) by default, every other syscall of this architecture allowed,
/// clone allowed only without namespace flags, clone3 answered ENOSYS so libc falls back to clone.
pub fn default_profile() -> serde_json::Value {
    let allowed: Vec<&str> = syscalls::Sysno::iter()
        .map(|s| s.name())
        .filter(|n| !DEFAULT_DENY.contains(n) && *n != "clone")
        .collect();
    // CLONE_NEWNS|NEWCGROUP|NEWUTS|NEWIPC|NEWUSER|NEWPID|NEWNET (and NEWTIME, 0x80).
    let ns_flags: u64 = 0x7E02_0080;
    serde_json::json!({
        "defaultAction": "SCMP_ACT_ERRNO",
        "defaultErrnoRet": libc::EPERM,
        "architectures": ["SCMP_ARCH_X86_64"],
        "syscalls": [
            {"names": allowed, "action": "SCMP_ACT_ALLOW"},
            {"names": ["clone"], "action": "SCMP_ACT_ALLOW",
             "args": [{"index": 0, "value": ns_flags, "valueTwo": 0, "op": "SCMP_CMP_MASKED_EQ"}]},
            {"names": ["clone3"], "action": "SCMP_ACT_ERRNO", "errnoRet": libc::ENOSYS}
        ]
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn one_filter_per_action_plus_default_and_x32() {
        let c = compile(&json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [
                {"names": ["mkdir"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13},
                {"names": ["uname", "no_such_syscall"], "action": "SCMP_ACT_KILL_PROCESS"},
                {"names": ["kill"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13,
                 "args": [{"index": 1, "value": 0, "op": "SCMP_CMP_EQ"}]}
            ]
        }))
        .unwrap();
        // ERRNO(13), KILL_PROCESS, x32; no default filter since the default is ALLOW.
        assert_eq!(c.programs.len(), 3);
    }

    #[test]
    fn errors_name_the_field() {
        let e = compile(&json!({"defaultAction": "SCMP_ACT_NOPE"}))
            .unwrap_err()
            .to_string();
        assert!(e.contains("defaultAction"), "{e}");
        let e = compile(&json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ERRNO", "args": [{"index": 9, "value": 0, "op": "SCMP_CMP_EQ"}]}]}))
            .unwrap_err()
            .to_string();
        assert!(e.contains("syscalls[0].args[0]"), "{e}");
        let e = compile(&json!({"defaultAction": "SCMP_ACT_NOTIFY"}))
            .unwrap_err()
            .to_string();
        assert!(e.contains("needs listenerPath"), "{e}");
        let e = compile(&json!({"defaultAction": "SCMP_ACT_ALLOW", "flags": ["BOGUS"]}))
            .unwrap_err()
            .to_string();
        assert!(e.contains("flags"), "{e}");
    }

    #[test]
    fn notify_is_its_own_program_returning_user_notif() {
        let c = compile(
            &json!({"defaultAction": "SCMP_ACT_ALLOW", "listenerPath": "/a.sock",
            "syscalls": [
                {"names": ["mkdir"], "action": "SCMP_ACT_NOTIFY"},
                {"names": ["rmdir"], "action": "SCMP_ACT_TRACE", "errnoRet": 0}
            ]}),
        )
        .unwrap();
        let n = c.notify.expect("a notify program");
        let rets = |i: usize, k: u32| c.programs[i].iter().any(|f| f.code == 0x06 && f.k == k);
        assert!(rets(n, libc::SECCOMP_RET_USER_NOTIF));
        assert!(!rets(n, libc::SECCOMP_RET_TRACE));
        // The real TRACE rule keeps its action in its own program.
        let t = (0..c.programs.len()).find(|i| *i != n && rets(*i, libc::SECCOMP_RET_TRACE));
        assert!(t.is_some());
        assert_eq!(
            c.listener_path.as_deref(),
            Some(std::path::Path::new("/a.sock"))
        );
    }

    #[test]
    fn default_profile_compiles() {
        let c = compile(&default_profile()).unwrap();
        assert!(c.programs.len() >= 2);
    }
}
