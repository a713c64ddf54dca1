//! Capability sets from process.capabilities, via the caps crate.
//!
//! Order matters across the uid change: the bounding set is reduced first (while CAP_SETPCAP is still
//! effective), the uid/gid change keeps the permitted set (PR_SET_KEEPCAPS, set by the caller), then the
//! inheritable set (which may only grow within the old permitted set), effective, permitted and last
//! ambient (which must lie within permitted and inheritable). See capabilities(7).
//!
//! An absent set, or an absent `process.capabilities`, means *no* capabilities, as runc reads it: leaving
//! a set as the host has it would hand a uid-0 container every capability (CAP_SYS_ADMIN included).

use crate::error::{Error, Result};
use crate::spec::Capabilities;
use caps::{CapSet, Capability, CapsHashSet};
use std::str::FromStr;

/// Parses `CAP_KILL` (the form the runtime-spec uses).
pub fn parse(name: &str) -> Result<Capability> {
    Capability::from_str(name)
        .map_err(|_| Error::InvalidSpec(format!("unknown capability {name:?}")))
}

fn set_of(list: &Option<Vec<String>>) -> Result<CapsHashSet> {
    list.iter().flatten().map(|n| parse(n)).collect()
}

fn err(what: &str, _e: caps::errors::CapsError) -> Error {
    // The caps crate keeps only a string; errno still holds the kernel's answer.
    Error::sys(format!("capset({what})"), nix::errno::Errno::last())
}

/// Drops every capability not in the bounding set (before the uid change). An absent set is empty,
/// as in runc: a spec that grants nothing gets nothing.
pub fn apply_bounding(c: &Capabilities) -> Result<()> {
    let keep = set_of(&c.bounding)?;
    // Dropping a capability that is already out of the bounding set succeeds, so no read first (that
    // would be one more prctl per capability).
    for cap in caps::all().difference(&keep) {
        caps::drop(None, CapSet::Bounding, *cap)
            .map_err(|e| err(&format!("drop {cap} from bounding"), e))?;
    }
    Ok(())
}

/// Sets inheritable, permitted, effective and ambient (after the uid change); absent sets are empty.
/// Partial when an ambient capability was skipped (not both permitted and inheritable).
pub fn apply_sets(c: &Capabilities) -> Result<super::Enforced> {
    let inh = set_of(&c.inheritable)?;
    let prm = set_of(&c.permitted)?;
    let eff = set_of(&c.effective)?;
    let amb = set_of(&c.ambient)?;
    caps::set(None, CapSet::Inheritable, &inh).map_err(|e| err("inheritable", e))?;
    // Effective before permitted: the kernel requires effective ⊆ permitted after every capset.
    caps::set(None, CapSet::Effective, &eff).map_err(|e| err("effective", e))?;
    caps::set(None, CapSet::Permitted, &prm).map_err(|e| err("permitted", e))?;
    caps::clear(None, CapSet::Ambient).map_err(|e| err("clear ambient", e))?;
    let mut skipped = Vec::new();
    for cap in &amb {
        // The kernel refuses an ambient capability that is not both permitted and inheritable; runc
        // skips those too, since specs routinely list ambient = effective.
        if prm.contains(cap) && inh.contains(cap) {
            caps::raise(None, CapSet::Ambient, *cap)
                .map_err(|e| err(&format!("raise ambient {cap}"), e))?;
        } else {
            skipped.push(cap.to_string());
        }
    }
    if skipped.is_empty() {
        return Ok(super::Enforced::Full);
    }
    skipped.sort();
    Ok(super::Enforced::Partial(format!(
        "ambient {} skipped: not both permitted and inheritable",
        skipped.join(", ")
    )))
}

/// Keeps in every set of `c` only what the bounding mask `bnd` (CapBnd of /proc/PID/status)
/// holds; returns the names dropped (each once).
pub fn clamp(c: &mut Capabilities, bnd: u64) -> Vec<String> {
    let mut dropped: Vec<String> = Vec::new();
    for set in [
        &mut c.bounding,
        &mut c.effective,
        &mut c.permitted,
        &mut c.inheritable,
        &mut c.ambient,
    ]
    .into_iter()
    .flatten()
    {
        set.retain(|name| {
            let keep =
                parse(name).is_ok_and(|cap| cap.index() < 64 && bnd & (1u64 << cap.index()) != 0);
            if !keep && !dropped.contains(name) {
                dropped.push(name.clone());
            }
            keep
        });
    }
    dropped
}

#[cfg(test)]
mod tests {
    #[test]
    fn names_parse() {
        assert!(super::parse("CAP_KILL").is_ok());
        assert!(super::parse("CAP_NOPE").is_err());
        let mut c = crate::spec::Capabilities {
            bounding: Some(vec!["CAP_KILL".into(), "CAP_SYS_ADMIN".into()]),
            effective: Some(vec!["CAP_SYS_ADMIN".into()]),
            ..Default::default()
        };
        // CAP_KILL is bit 5.
        assert_eq!(super::clamp(&mut c, 1 << 5), ["CAP_SYS_ADMIN"]);
        assert_eq!(c.bounding, Some(vec!["CAP_KILL".to_string()]));
        assert_eq!(c.effective, Some(vec![]));
    }
}
