//! Where the binaries under test are.

use std::ffi::OsStr;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// The `berth` binary under test. It is a path wherever one is wanted (`Command::new(BERTH)`,
/// `std::fs::copy(BERTH, ..)`, `format!("{BERTH}")`).
#[derive(Clone, Copy, Debug)]
pub struct Berth;

/// See [`Berth`].
pub const BERTH: Berth = Berth;

impl Berth {
    /// `$BERTH_BIN` if set, else the `berth` that cargo built beside this test executable
    /// (`target/<triple>/<profile>/deps/<test>` → `target/<triple>/<profile>/berth`, which is
    /// `CARGO_BIN_EXE_berth` for berth's own integration tests).
    pub fn path(self) -> &'static Path {
        static PATH: OnceLock<PathBuf> = OnceLock::new();
        PATH.get_or_init(find)
    }

    /// [`Berth::path`] as text (for argument lists of `&str`).
    pub fn as_str(self) -> &'static str {
        self.path()
            .to_str()
            .expect("the berth binary's path is UTF-8")
    }
}

fn find() -> PathBuf {
    if let Some(p) = std::env::var_os("BERTH_BIN") {
        let p = PathBuf::from(p);
        assert!(p.is_file(), "BERTH_BIN={} is not a file", p.display());
        return std::fs::canonicalize(p).expect("canonicalize BERTH_BIN");
    }
    let exe = std::env::current_exe().expect("the test executable's path");
    let beside = exe
        .parent()
        .and_then(Path::parent)
        .map(|profile| profile.join("berth"));
    match beside {
        Some(p) if p.is_file() => p,
        _ => panic!(
            "no berth binary beside {}: build it (cargo build; scripts/test.sh does) or set BERTH_BIN",
            exe.display()
        ),
    }
}

impl AsRef<OsStr> for Berth {
    fn as_ref(&self) -> &OsStr {
        self.path().as_os_str()
    }
}

impl AsRef<Path> for Berth {
    fn as_ref(&self) -> &Path {
        self.path()
    }
}

impl fmt::Display for Berth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.path().display())
    }
}

/// The repository's root.
pub fn repo() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))
}

/// The busybox that scripts/mkrootfs.sh puts in the repository's rootfs.
pub fn busybox() -> PathBuf {
    let p = repo().join("rootfs/bin/busybox");
    assert!(
        p.exists(),
        "{} is missing: run scripts/mkrootfs.sh first (scripts/test.sh does)",
        p.display()
    );
    p
}
