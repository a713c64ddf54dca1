//! The process attributes that are not files, applied to the init and to every exec'd process
//! while they are still privileged (a real-time policy or I/O class needs CAP_SYS_NICE /
//! CAP_SYS_ADMIN) and before seccomp could refuse the calls: `linux.memoryPolicy`,
//! `process.scheduler`, `process.ioPriority`. Parsed and checked by `spec::attrs` before anything
//! exists; here a host that cannot apply one is an error naming the field and the likely cause,
//! never a silent success. `process.execCPUAffinity` the exec'd process sets on itself, before and
//! after it joins the container's cgroup ([`affinity`]).

use crate::error::{Context, Error, Result};
use crate::spec::ValidSpec;
use crate::sys;
use nix::errno::Errno;

/// Applies the memory policy, the scheduler and the I/O priority of `vs` to the calling process.
pub(crate) fn apply(vs: &ValidSpec) -> Result<()> {
    if let Some((mode, mask)) = &vs.memory_policy {
        sys::set_mempolicy(*mode, mask).map_err(|e| {
            let why = match e.errno {
                Errno::EINVAL => {
                    " (a node that does not exist or is outside the container's cpuset.mems, or a mode or flag this kernel lacks)"
                }
                _ => "",
            };
            Error::from(e).within(format!("linux.memoryPolicy{why}"))
        })?;
    }
    let p = &vs.process;
    if let Some(s) = &p.scheduler {
        let attr = s.attr()?;
        sys::sched_setattr(&attr).map_err(|e| {
            let why = match e.errno {
                Errno::EPERM => {
                    " (a real-time or deadline policy needs CAP_SYS_NICE and real-time runtime in the container's cgroup, cpu.rt_runtime_us on cgroup v1)"
                }
                Errno::EINVAL => " (a policy or flag this kernel lacks: SCHED_ISO is not in mainline Linux)",
                Errno::EBUSY => " (SCHED_DEADLINE: not enough bandwidth left on these CPUs)",
                _ => "",
            };
            Error::from(e).within(format!("process.scheduler{why}"))
        })?;
    }
    if let Some(io) = &p.io_priority {
        sys::ioprio_set(io.value()?).with_context(|| "process.ioPriority".into())?;
    }
    Ok(())
}

/// `process.execCPUAffinity` for the exec'd process `pid` (0: the caller, as the exec'd process
/// sets its own): `initial` before the process joins the container's cgroup, `final` after
/// (`joined` says which).
pub(crate) fn affinity(vs: &ValidSpec, pid: i32, joined: bool) -> Result<()> {
    let Some(a) = &vs.process.exec_cpu_affinity else {
        return Ok(());
    };
    let masks = a.masks()?;
    let (mask, field) = if joined {
        (masks.final_cpus, "process.execCPUAffinity.final")
    } else {
        (masks.initial, "process.execCPUAffinity.initial")
    };
    match mask {
        Some(m) => sys::sched_setaffinity(pid, &m).with_context(|| {
            format!("{field} (CPUs that are offline or outside the container's cpuset.cpus?)")
        }),
        None => Ok(()),
    }
}
