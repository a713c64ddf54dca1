//! The process attributes of runtime-spec 1.1–1.3 that are not files: `process.scheduler`,
//! `process.ioPriority`, `process.execCPUAffinity` and `linux.memoryPolicy`. Each is parsed here into
//! the numbers its syscall takes (pure, so every error names its field before anything exists);
//! `process::attrs` applies them.

use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};

/// The highest CPU number a list may name (the kernel's largest `CONFIG_NR_CPUS`): bounds the
/// mask a hostile list could make berth allocate.
pub const MAX_CPUS: u32 = 8192;
/// The highest NUMA node number plus one (the kernel's largest `MAX_NUMNODES`, 1 << 10).
pub const MAX_NODES: u32 = 1024;

/// process.scheduler (sched_setattr(2)).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Scheduler {
    /// `SCHED_OTHER`, `SCHED_FIFO`, ...
    pub policy: String,
    /// Nice value (SCHED_OTHER, SCHED_BATCH).
    #[serde(default)]
    pub nice: i32,
    /// Static priority (SCHED_FIFO, SCHED_RR).
    #[serde(default)]
    pub priority: i32,
    /// `SCHED_FLAG_*`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub flags: Vec<String>,
    /// SCHED_DEADLINE runtime, ns.
    #[serde(default)]
    pub runtime: u64,
    /// SCHED_DEADLINE deadline, ns.
    #[serde(default)]
    pub deadline: u64,
    /// SCHED_DEADLINE period, ns.
    #[serde(default)]
    pub period: u64,
}

/// What sched_setattr(2) takes, field for field (`struct sched_attr`, without its size).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SchedAttr {
    /// SCHED_* number.
    pub policy: u32,
    /// SCHED_FLAG_* bits.
    pub flags: u64,
    /// Nice.
    pub nice: i32,
    /// Static priority.
    pub priority: u32,
    /// Deadline runtime, ns.
    pub runtime: u64,
    /// Deadline, ns.
    pub deadline: u64,
    /// Deadline period, ns.
    pub period: u64,
}

const POLICIES: [(&str, u32); 7] = [
    ("SCHED_OTHER", 0),
    ("SCHED_FIFO", 1),
    ("SCHED_RR", 2),
    ("SCHED_BATCH", 3),
    ("SCHED_ISO", 4),
    ("SCHED_IDLE", 5),
    ("SCHED_DEADLINE", 6),
];

const SCHED_FLAGS: [(&str, u64); 7] = [
    ("SCHED_FLAG_RESET_ON_FORK", 0x01),
    ("SCHED_FLAG_RECLAIM", 0x02),
    ("SCHED_FLAG_DL_OVERRUN", 0x04),
    ("SCHED_FLAG_KEEP_POLICY", 0x08),
    ("SCHED_FLAG_KEEP_PARAMS", 0x10),
    ("SCHED_FLAG_UTIL_CLAMP_MIN", 0x20),
    ("SCHED_FLAG_UTIL_CLAMP_MAX", 0x40),
];

fn invalid(msg: String) -> Error {
    Error::InvalidSpec(msg)
}

fn lookup<T: Copy>(table: &[(&str, T)], name: &str, field: &str) -> Result<T> {
    table
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, v)| *v)
        .ok_or_else(|| {
            let known: Vec<&str> = table.iter().map(|(n, _)| *n).collect();
            invalid(format!(
                "{field}: unknown value {name:?} (one of {known:?})"
            ))
        })
}

impl Scheduler {
    /// The attributes for sched_setattr(2).
    pub fn attr(&self) -> Result<SchedAttr> {
        let policy = lookup(&POLICIES, &self.policy, "process.scheduler.policy")?;
        let mut flags = 0;
        for (i, f) in self.flags.iter().enumerate() {
            flags |= lookup(&SCHED_FLAGS, f, &format!("process.scheduler.flags[{i}]"))?;
        }
        if !(-20..=19).contains(&self.nice) {
            return Err(invalid(format!(
                "process.scheduler.nice: {} is outside -20..19",
                self.nice
            )));
        }
        let realtime = matches!(policy, 1 | 2);
        let priority = u32::try_from(self.priority)
            .ok()
            .filter(|p| if realtime { (1..=99).contains(p) } else { *p == 0 })
            .ok_or_else(|| {
                invalid(format!(
                    "process.scheduler.priority: {} for {} (SCHED_FIFO and SCHED_RR take 1..99, the other policies 0)",
                    self.priority, self.policy
                ))
            })?;
        if policy != 6 && (self.runtime, self.deadline, self.period) != (0, 0, 0) {
            return Err(invalid(format!(
                "process.scheduler: runtime, deadline and period are for SCHED_DEADLINE, not {}",
                self.policy
            )));
        }
        Ok(SchedAttr {
            policy,
            flags,
            nice: self.nice,
            priority,
            runtime: self.runtime,
            deadline: self.deadline,
            period: self.period,
        })
    }
}

/// process.ioPriority (ioprio_set(2)).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct IoPriority {
    /// `IOPRIO_CLASS_RT`, `IOPRIO_CLASS_BE` or `IOPRIO_CLASS_IDLE`.
    pub class: String,
    /// 0 (highest) to 7.
    #[serde(default)]
    pub priority: i32,
}

impl IoPriority {
    /// The value for ioprio_set(IOPRIO_WHO_PROCESS, 0, value): class << 13 | priority.
    pub fn value(&self) -> Result<u16> {
        let class: u16 = lookup(
            &[
                ("IOPRIO_CLASS_RT", 1),
                ("IOPRIO_CLASS_BE", 2),
                ("IOPRIO_CLASS_IDLE", 3),
            ],
            &self.class,
            "process.ioPriority.class",
        )?;
        let prio = u16::try_from(self.priority)
            .ok()
            .filter(|p| *p <= 7)
            .ok_or_else(|| {
                invalid(format!(
                    "process.ioPriority.priority: {} is outside 0..7",
                    self.priority
                ))
            })?;
        Ok(class << 13 | prio)
    }
}

/// process.execCPUAffinity: the CPUs of an exec'd process before and after it joins the
/// container's cgroup.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ExecCpuAffinity {
    /// Before joining the cgroup (`0-3,7`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub initial: Option<String>,
    /// After joining it.
    #[serde(default, rename = "final", skip_serializing_if = "Option::is_none")]
    pub final_cpus: Option<String>,
}

/// A CPU or node bit mask in 64-bit words, as the kernel takes it.
pub type Mask = Vec<u64>;

/// [`ExecCpuAffinity`] as masks: `None` where the list is absent or empty (the affinity is left
/// as it is).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AffinityMasks {
    /// Before joining the cgroup.
    pub initial: Option<Mask>,
    /// After.
    pub final_cpus: Option<Mask>,
}

impl ExecCpuAffinity {
    /// The two masks for sched_setaffinity(2).
    pub fn masks(&self) -> Result<AffinityMasks> {
        let mask = |list: &Option<String>, field: &str| -> Result<Option<Vec<u64>>> {
            match list.as_deref().map(str::trim) {
                None | Some("") => Ok(None),
                Some(l) => parse_list(l, MAX_CPUS, field).map(Some),
            }
        };
        Ok(AffinityMasks {
            initial: mask(&self.initial, "process.execCPUAffinity.initial")?,
            final_cpus: mask(&self.final_cpus, "process.execCPUAffinity.final")?,
        })
    }
}

/// linux.memoryPolicy (set_mempolicy(2)).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct MemoryPolicy {
    /// `MPOL_DEFAULT`, `MPOL_BIND`, ...
    pub mode: String,
    /// Node list (`0-3,7`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nodes: Option<String>,
    /// `MPOL_F_*`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub flags: Vec<String>,
}

/// The memory policy modes berth recognizes, with their numbers (uapi/linux/mempolicy.h).
pub const MPOL_MODES: [(&str, i32); 7] = [
    ("MPOL_DEFAULT", 0),
    ("MPOL_PREFERRED", 1),
    ("MPOL_BIND", 2),
    ("MPOL_INTERLEAVE", 3),
    ("MPOL_LOCAL", 4),
    ("MPOL_PREFERRED_MANY", 5),
    ("MPOL_WEIGHTED_INTERLEAVE", 6),
];

/// The mode flags berth recognizes.
pub const MPOL_FLAGS: [(&str, i32); 3] = [
    ("MPOL_F_NUMA_BALANCING", 1 << 13),
    ("MPOL_F_RELATIVE_NODES", 1 << 14),
    ("MPOL_F_STATIC_NODES", 1 << 15),
];

impl MemoryPolicy {
    /// set_mempolicy's `mode | flags` and node mask (empty: no mask).
    pub fn mode_and_mask(&self) -> Result<(i32, Vec<u64>)> {
        let mode = lookup(&MPOL_MODES, &self.mode, "linux.memoryPolicy.mode")?;
        let mut flags = 0;
        for (i, f) in self.flags.iter().enumerate() {
            flags |= lookup(&MPOL_FLAGS, f, &format!("linux.memoryPolicy.flags[{i}]"))?;
        }
        let mask = match self.nodes.as_deref().map(str::trim) {
            None | Some("") => Vec::new(),
            Some(l) => parse_list(l, MAX_NODES, "linux.memoryPolicy.nodes")?,
        };
        match (mode, mask.is_empty()) {
            (0 | 4, false) => Err(invalid(format!(
                "linux.memoryPolicy.nodes: {} takes no nodes",
                self.mode
            ))),
            (2 | 3 | 5 | 6, true) => Err(invalid(format!(
                "linux.memoryPolicy.nodes: {} needs at least one node",
                self.mode
            ))),
            _ => Ok((mode | flags, mask)),
        }
    }
}

/// A kernel list (`0-3,7`) as a bit mask of 64-bit words; every number below `max`.
pub fn parse_list(list: &str, max: u32, field: &str) -> Result<Vec<u64>> {
    let bad = |why: String| invalid(format!("{field}: {list:?}: {why}"));
    let num = |s: &str| -> Result<u32> {
        let n: u32 = s
            .trim()
            .parse()
            .map_err(|_| bad(format!("{s:?} is not a number")))?;
        if n >= max {
            return Err(bad(format!("{n} is above the largest ({})", max - 1)));
        }
        Ok(n)
    };
    let mut mask = Vec::new();
    for part in list.split(',') {
        let (lo, hi) = match part.split_once('-') {
            Some((a, b)) => (num(a)?, num(b)?),
            None => {
                let n = num(part)?;
                (n, n)
            }
        };
        if lo > hi {
            return Err(bad(format!("range {lo}-{hi} runs backwards")));
        }
        for n in lo..=hi {
            let word = (n / 64) as usize;
            if mask.len() <= word {
                mask.resize(word + 1, 0);
            }
            mask[word] |= 1 << (n % 64);
        }
    }
    Ok(mask)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_become_masks_and_bad_ones_name_the_field() {
        assert_eq!(parse_list("0-3,7", 64, "f").unwrap(), vec![0x8f]);
        assert_eq!(parse_list("65", 128, "f").unwrap(), vec![0, 2]);
        for bad in ["", "x", "3-1", "0-8192", "1,,2", "-1"] {
            let e = parse_list(bad, MAX_CPUS, "process.execCPUAffinity.initial").unwrap_err();
            assert!(
                e.to_string().contains("process.execCPUAffinity.initial"),
                "{bad}: {e}"
            );
        }
    }

    #[test]
    fn scheduler_fields_become_sched_attr() {
        let s = Scheduler {
            policy: "SCHED_FIFO".into(),
            priority: 10,
            flags: vec!["SCHED_FLAG_RESET_ON_FORK".into()],
            ..Scheduler::default()
        };
        let a = s.attr().unwrap();
        assert_eq!((a.policy, a.priority, a.flags), (1, 10, 1));
        for (policy, prio, needle) in [
            ("SCHED_FIFO", 0, "priority"),
            ("SCHED_OTHER", 5, "priority"),
            ("SCHED_NOPE", 0, "policy"),
        ] {
            let s = Scheduler {
                policy: policy.into(),
                priority: prio,
                ..Scheduler::default()
            };
            let e = s.attr().unwrap_err().to_string();
            assert!(e.contains(&format!("process.scheduler.{needle}")), "{e}");
        }
    }

    #[test]
    fn io_priority_and_memory_policy() {
        let io = IoPriority {
            class: "IOPRIO_CLASS_RT".into(),
            priority: 1,
        };
        assert_eq!(io.value().unwrap(), 1 << 13 | 1);
        let io = IoPriority {
            class: "IOPRIO_CLASS_BE".into(),
            priority: 8,
        };
        assert!(io.value().is_err());
        let m = MemoryPolicy {
            mode: "MPOL_BIND".into(),
            nodes: Some("0".into()),
            flags: vec!["MPOL_F_STATIC_NODES".into()],
        };
        assert_eq!(m.mode_and_mask().unwrap(), (2 | 1 << 15, vec![1]));
        let m = MemoryPolicy {
            mode: "MPOL_BIND".into(),
            ..MemoryPolicy::default()
        };
        assert!(
            m.mode_and_mask()
                .unwrap_err()
                .to_string()
                .contains("at least one")
        );
        let m = MemoryPolicy {
            mode: "MPOL_LOCAL".into(),
            nodes: Some("1".into()),
            ..MemoryPolicy::default()
        };
        assert!(
            m.mode_and_mask()
                .unwrap_err()
                .to_string()
                .contains("takes no nodes")
        );
    }
}
