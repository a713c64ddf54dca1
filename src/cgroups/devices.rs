//! linux.resources.devices as an ordered rule list, and its cgroup v1 form (`devices.allow` and
//! `devices.deny` lines, written in the spec's order).
//!
//! Later rules override earlier ones for the devices and access bits they cover; before the first
//! rule everything is allowed. After the spec's rules come the devices every container needs (null,
//! zero, full, random, urandom, tty, console, ptmx, the pts range, mknod of any node), as runc
//! appends them, except where the spec denies that very device by number (a blanket `deny a *:*
//! rwm`, the usual first rule, does not count as denying them). The spec's linux.devices are *not*
//! granted: a node is created in /dev, but access to it is what linux.resources.devices allows, as
//! with runc and crun (the orchestrators that pass devices add their allow rules themselves).

use crate::error::{Error, Result, io_err};
use crate::spec::ValidSpec;
use std::path::Path;

/// mknod, as in BPF_DEVCG_ACC_MKNOD.
pub const ACC_MKNOD: u32 = 1;
/// read (BPF_DEVCG_ACC_READ).
pub const ACC_READ: u32 = 2;
/// write (BPF_DEVCG_ACC_WRITE).
pub const ACC_WRITE: u32 = 4;

/// One rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rule {
    /// Allow or deny.
    pub allow: bool,
    /// 'a' (all), 'c' or 'b'.
    pub typ: char,
    /// None: any.
    pub major: Option<u32>,
    /// None: any.
    pub minor: Option<u32>,
    /// ACC_* bits.
    pub access: u32,
}

impl Rule {
    const fn allow_char(major: u32, minor: Option<u32>, access: u32) -> Rule {
        Rule {
            allow: true,
            typ: 'c',
            major: Some(major),
            minor,
            access,
        }
    }

    /// `c 1:3 rwm`, as devices.allow/deny take it.
    pub fn v1_line(&self) -> String {
        let num = |n: Option<u32>| n.map_or("*".to_string(), |n| n.to_string());
        let mut acc = String::new();
        for (bit, c) in [(ACC_READ, 'r'), (ACC_WRITE, 'w'), (ACC_MKNOD, 'm')] {
            if self.access & bit != 0 {
                acc.push(c);
            }
        }
        format!("{} {}:{} {acc}", self.typ, num(self.major), num(self.minor))
    }

    /// Denies exactly this device by number (not a wildcard).
    fn denies_device(&self, typ: char, major: u32, minor: u32) -> bool {
        !self.allow
            && self.typ == typ
            && self.major == Some(major)
            && self.minor.is_none_or(|m| m == minor)
    }
}

const RWM: u32 = ACC_READ | ACC_WRITE | ACC_MKNOD;

/// What every container gets, as runc's AllowedDevices.
const DEFAULT_ALLOWED: &[Rule] = &[
    Rule {
        allow: true,
        typ: 'c',
        major: None,
        minor: None,
        access: ACC_MKNOD,
    },
    Rule {
        allow: true,
        typ: 'b',
        major: None,
        minor: None,
        access: ACC_MKNOD,
    },
    Rule::allow_char(1, Some(3), RWM),
    Rule::allow_char(1, Some(5), RWM),
    Rule::allow_char(1, Some(7), RWM),
    Rule::allow_char(1, Some(8), RWM),
    Rule::allow_char(1, Some(9), RWM),
    Rule::allow_char(5, Some(0), RWM),
    Rule::allow_char(5, Some(1), RWM),
    Rule::allow_char(5, Some(2), RWM),
    Rule::allow_char(136, None, RWM),
];

fn parse_access(s: &str, field: &str) -> Result<u32> {
    let mut acc = 0;
    for c in s.chars() {
        acc |= match c {
            'r' => ACC_READ,
            'w' => ACC_WRITE,
            'm' => ACC_MKNOD,
            _ => {
                return Err(Error::InvalidSpec(format!(
                    "{field}.access: {s:?} (expected letters of rwm)"
                )));
            }
        };
    }
    Ok(acc)
}

#[derive(serde::Deserialize)]
struct SpecRule {
    allow: bool,
    #[serde(default, rename = "type")]
    typ: Option<String>,
    #[serde(default)]
    major: Option<i64>,
    #[serde(default)]
    minor: Option<i64>,
    #[serde(default)]
    access: Option<String>,
}

fn number(n: Option<i64>, field: &str) -> Result<Option<u32>> {
    match n {
        None | Some(-1) => Ok(None),
        Some(n) => u32::try_from(n)
            .map(Some)
            .map_err(|_| Error::InvalidSpec(format!("{field}: {n} is not a device number"))),
    }
}

/// linux.resources.devices as rules, in order (without berth's defaults).
pub fn parse(list: &serde_json::Value) -> Result<Vec<Rule>> {
    let spec: Vec<SpecRule> = serde_path_to_error::deserialize(list).map_err(|e| {
        Error::InvalidSpec(format!(
            "linux.resources.devices{}: {}",
            e.path(),
            e.inner()
        ))
    })?;
    let mut out = Vec::with_capacity(spec.len() + DEFAULT_ALLOWED.len());
    for (i, r) in spec.iter().enumerate() {
        let field = format!("linux.resources.devices[{i}]");
        let typ = match r.typ.as_deref().unwrap_or("a") {
            "a" => 'a',
            "c" => 'c',
            "b" => 'b',
            t => {
                return Err(Error::InvalidSpec(format!(
                    "{field}.type: {t:?} (expected a, c or b)"
                )));
            }
        };
        out.push(Rule {
            allow: r.allow,
            typ,
            major: number(r.major, &format!("{field}.major"))?,
            minor: number(r.minor, &format!("{field}.minor"))?,
            access: parse_access(r.access.as_deref().unwrap_or("rwm"), &field)?,
        });
    }
    Ok(out)
}

/// The rule list for the spec: None when it has no device rules (then no cgroup is needed for them).
pub fn rules(vs: &ValidSpec) -> Result<Option<Vec<Rule>>> {
    let Some(list) = vs
        .linux()
        .resources
        .as_ref()
        .and_then(|r| r.get("devices"))
        .filter(|d| !d.is_null())
    else {
        return Ok(None);
    };
    let out = parse(list)?;
    if out.is_empty() {
        return Ok(None);
    }
    Ok(Some(with_defaults(out)))
}

/// The spec's rules followed by berth's default devices, except those the rules deny by number.
pub fn with_defaults(mut out: Vec<Rule>) -> Vec<Rule> {
    let denied =
        |typ: char, major: u32, minor: u32| out.iter().any(|r| r.denies_device(typ, major, minor));
    let extra: Vec<Rule> = DEFAULT_ALLOWED
        .iter()
        .filter(|d| match (d.major, d.minor) {
            (Some(ma), Some(mi)) => !denied(d.typ, ma, mi),
            (Some(ma), None) => !out
                .iter()
                .any(|r| !r.allow && r.typ == d.typ && r.major == Some(ma)),
            _ => true,
        })
        .copied()
        .collect();
    out.extend(extra);
    out
}

/// Writes the rules into a v1 devices cgroup, in order.
pub fn apply_v1(dir: &Path, rules: &[Rule]) -> Result<()> {
    use std::io::Write;
    // devices.allow and devices.deny are opened once each: every write(2) is one rule to the kernel.
    let mut files: [Option<std::fs::File>; 2] = [None, None];
    for r in rules {
        let name = if r.allow {
            "devices.allow"
        } else {
            "devices.deny"
        };
        let path = dir.join(name);
        let slot = &mut files[usize::from(r.allow)];
        if slot.is_none() {
            let f = std::fs::OpenOptions::new()
                .write(true)
                .open(&path)
                .map_err(|e| io_err("open", &path, e))?;
            *slot = Some(f);
        }
        if let Some(f) = slot {
            f.write_all(r.v1_line().as_bytes())
                .map_err(|e| io_err("write", &path, e))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::default::default_spec;

    fn vs(devices: serde_json::Value) -> ValidSpec {
        let mut s = default_spec();
        s.linux.as_mut().unwrap().resources = Some(serde_json::json!({ "devices": devices }));
        ValidSpec::new(s, Path::new("/b")).unwrap()
    }

    #[test]
    fn spec_rules_then_defaults_unless_denied_by_number() {
        let r = rules(&vs(serde_json::json!([
            {"allow": false, "access": "rwm"},
            {"allow": false, "type": "c", "major": 1, "minor": 5, "access": "rwm"}
        ])))
        .unwrap()
        .unwrap();
        assert_eq!(r[0].v1_line(), "a *:* rwm");
        assert_eq!(r[1].v1_line(), "c 1:5 rwm");
        let lines: Vec<String> = r.iter().map(Rule::v1_line).collect();
        assert!(lines.contains(&"c 1:3 rwm".to_string()));
        // /dev/zero is denied by number: never re-allowed.
        assert_eq!(lines.iter().filter(|l| *l == "c 1:5 rwm").count(), 1);
        assert!(lines.contains(&"c 136:* rwm".to_string()));
        assert!(rules(&vs(serde_json::json!([]))).unwrap().is_none());
        assert!(
            rules(&vs(serde_json::json!([{"allow": true, "access": "rwx"}])))
                .unwrap_err()
                .to_string()
                .contains("linux.resources.devices[0].access")
        );
    }
}
