//! The table of OCI / mount(8) mount options and what each one does on the new mount API.
//!
//! Flags that live on a mount (ro, nosuid, nodev, noexec, atime, nosymfollow) become `mount_setattr`
//! bits; `r`-prefixed ones apply to the whole tree (AT_RECURSIVE), the plain ones to the top mount only,
//! as runc does. Propagation and bind are recorded; anything else is a filesystem parameter for fsconfig
//! (`size=64m`, `mode=755`, `newinstance`), which a bind mount cannot take.

use crate::sys::{
    MOUNT_ATTR__ATIME, MOUNT_ATTR_NOATIME, MOUNT_ATTR_NODEV, MOUNT_ATTR_NODIRATIME,
    MOUNT_ATTR_NOEXEC, MOUNT_ATTR_NOSUID, MOUNT_ATTR_NOSYMFOLLOW, MOUNT_ATTR_RDONLY,
    MOUNT_ATTR_RELATIME, MOUNT_ATTR_STRICTATIME, MountAttr,
};

/// What one option string means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Opt {
    /// Set `set` after clearing `clr` (`recursive` for the r-options).
    Attr {
        /// Bits to set.
        set: u64,
        /// Bits to clear.
        clr: u64,
        /// Apply to every mount of the tree.
        recursive: bool,
    },
    /// Propagation type (MS_*), recursive or not.
    Propagation {
        /// MS_PRIVATE, MS_SLAVE, MS_SHARED or MS_UNBINDABLE.
        flag: u64,
        /// `r`-prefixed.
        recursive: bool,
    },
    /// bind (false) or rbind (true).
    Bind(bool),
    /// A superblock flag handed to fsconfig as is (sync, dirsync, lazytime, iversion...).
    SuperFlag,
    /// Accepted and without effect here (defaults, async, silent...).
    Ignore,
    /// Known but not implemented: the reason.
    Unsupported(&'static str),
    /// tmpcopyup: the image's content at the destination is copied into the new tmpfs.
    CopyUp,
    /// idmap (false: the top mount) or ridmap (true: every mount of the tree).
    Idmap(bool),
}

const fn a(set: u64, clr: u64) -> Opt {
    Opt::Attr {
        set,
        clr,
        recursive: false,
    }
}
const fn r(set: u64, clr: u64) -> Opt {
    Opt::Attr {
        set,
        clr,
        recursive: true,
    }
}
const ATIME: u64 = MOUNT_ATTR__ATIME;

/// The table. Order does not matter; lookups are by exact name.
pub const TABLE: &[(&str, Opt)] = &[
    ("defaults", Opt::Ignore),
    ("async", Opt::Ignore),
    ("silent", Opt::Ignore),
    ("loud", Opt::Ignore),
    ("nomand", Opt::Ignore),
    ("rw", a(0, MOUNT_ATTR_RDONLY)),
    ("ro", a(MOUNT_ATTR_RDONLY, 0)),
    ("suid", a(0, MOUNT_ATTR_NOSUID)),
    ("nosuid", a(MOUNT_ATTR_NOSUID, 0)),
    ("dev", a(0, MOUNT_ATTR_NODEV)),
    ("nodev", a(MOUNT_ATTR_NODEV, 0)),
    ("exec", a(0, MOUNT_ATTR_NOEXEC)),
    ("noexec", a(MOUNT_ATTR_NOEXEC, 0)),
    ("symfollow", a(0, MOUNT_ATTR_NOSYMFOLLOW)),
    ("nosymfollow", a(MOUNT_ATTR_NOSYMFOLLOW, 0)),
    ("atime", a(MOUNT_ATTR_RELATIME, ATIME)),
    ("noatime", a(MOUNT_ATTR_NOATIME, ATIME)),
    ("relatime", a(MOUNT_ATTR_RELATIME, ATIME)),
    // norelatime clears MS_RELATIME, which leaves the kernel's default: relatime (as mount(8) and runc).
    ("norelatime", a(MOUNT_ATTR_RELATIME, ATIME)),
    ("strictatime", a(MOUNT_ATTR_STRICTATIME, ATIME)),
    ("nostrictatime", a(MOUNT_ATTR_RELATIME, ATIME)),
    ("diratime", a(0, MOUNT_ATTR_NODIRATIME)),
    ("nodiratime", a(MOUNT_ATTR_NODIRATIME, 0)),
    ("rrw", r(0, MOUNT_ATTR_RDONLY)),
    ("rro", r(MOUNT_ATTR_RDONLY, 0)),
    ("rsuid", r(0, MOUNT_ATTR_NOSUID)),
    ("rnosuid", r(MOUNT_ATTR_NOSUID, 0)),
    ("rdev", r(0, MOUNT_ATTR_NODEV)),
    ("rnodev", r(MOUNT_ATTR_NODEV, 0)),
    ("rexec", r(0, MOUNT_ATTR_NOEXEC)),
    ("rnoexec", r(MOUNT_ATTR_NOEXEC, 0)),
    ("rsymfollow", r(0, MOUNT_ATTR_NOSYMFOLLOW)),
    ("rnosymfollow", r(MOUNT_ATTR_NOSYMFOLLOW, 0)),
    ("ratime", r(MOUNT_ATTR_RELATIME, ATIME)),
    ("rnoatime", r(MOUNT_ATTR_NOATIME, ATIME)),
    ("rrelatime", r(MOUNT_ATTR_RELATIME, ATIME)),
    ("rnorelatime", r(MOUNT_ATTR_RELATIME, ATIME)),
    ("rstrictatime", r(MOUNT_ATTR_STRICTATIME, ATIME)),
    ("rnostrictatime", r(MOUNT_ATTR_RELATIME, ATIME)),
    ("rdiratime", r(0, MOUNT_ATTR_NODIRATIME)),
    ("rnodiratime", r(MOUNT_ATTR_NODIRATIME, 0)),
    ("bind", Opt::Bind(false)),
    ("rbind", Opt::Bind(true)),
    (
        "private",
        Opt::Propagation {
            flag: libc::MS_PRIVATE,
            recursive: false,
        },
    ),
    (
        "rprivate",
        Opt::Propagation {
            flag: libc::MS_PRIVATE,
            recursive: true,
        },
    ),
    (
        "shared",
        Opt::Propagation {
            flag: libc::MS_SHARED,
            recursive: false,
        },
    ),
    (
        "rshared",
        Opt::Propagation {
            flag: libc::MS_SHARED,
            recursive: true,
        },
    ),
    (
        "slave",
        Opt::Propagation {
            flag: libc::MS_SLAVE,
            recursive: false,
        },
    ),
    (
        "rslave",
        Opt::Propagation {
            flag: libc::MS_SLAVE,
            recursive: true,
        },
    ),
    (
        "unbindable",
        Opt::Propagation {
            flag: libc::MS_UNBINDABLE,
            recursive: false,
        },
    ),
    (
        "runbindable",
        Opt::Propagation {
            flag: libc::MS_UNBINDABLE,
            recursive: true,
        },
    ),
    ("sync", Opt::SuperFlag),
    ("dirsync", Opt::SuperFlag),
    ("lazytime", Opt::SuperFlag),
    ("nolazytime", Opt::Ignore),
    ("iversion", Opt::SuperFlag),
    ("noiversion", Opt::Ignore),
    (
        "mand",
        Opt::Unsupported("mandatory locking was removed from Linux 5.15"),
    ),
    (
        "remount",
        Opt::Unsupported("remount of an existing mount is not an OCI mount"),
    ),
    ("idmap", Opt::Idmap(false)),
    ("ridmap", Opt::Idmap(true)),
    ("tmpcopyup", Opt::CopyUp),
];

/// Looks an option up; None means a filesystem parameter (`key` or `key=value`).
pub fn lookup(name: &str) -> Option<Opt> {
    TABLE.iter().find(|(n, _)| *n == name).map(|(_, o)| *o)
}

/// Adds an attribute change to `attr`: later options override earlier ones, as mount(8) reads them.
pub fn merge(attr: &mut MountAttr, set: u64, clr: u64) {
    attr.attr_set &= !clr;
    attr.attr_clr |= clr;
    attr.attr_set |= set;
    attr.attr_clr &= !(set & !ATIME);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_name_once() {
        let mut names: Vec<&str> = TABLE.iter().map(|(n, _)| *n).collect();
        names.sort();
        let n = names.len();
        names.dedup();
        assert_eq!(n, names.len());
    }

    #[test]
    fn ro_then_rw_is_rw() {
        let mut at = MountAttr::default();
        merge(&mut at, MOUNT_ATTR_RDONLY, 0);
        merge(&mut at, 0, MOUNT_ATTR_RDONLY);
        assert_eq!(at.attr_set & MOUNT_ATTR_RDONLY, 0);
        assert_eq!(at.attr_clr & MOUNT_ATTR_RDONLY, MOUNT_ATTR_RDONLY);
    }

    #[test]
    fn atime_field_is_cleared_when_set() {
        let mut at = MountAttr::default();
        merge(&mut at, MOUNT_ATTR_NOATIME, ATIME);
        assert_eq!(at.attr_clr & ATIME, ATIME);
        assert_eq!(at.attr_set, MOUNT_ATTR_NOATIME);
        merge(&mut at, MOUNT_ATTR_STRICTATIME, ATIME);
        assert_eq!(at.attr_set, MOUNT_ATTR_STRICTATIME);
    }

    #[test]
    fn r_options_are_recursive() {
        assert!(matches!(
            lookup("rro"),
            Some(Opt::Attr {
                recursive: true,
                ..
            })
        ));
        assert!(matches!(
            lookup("ro"),
            Some(Opt::Attr {
                recursive: false,
                ..
            })
        ));
        assert_eq!(lookup("size=64m"), None);
    }
}
