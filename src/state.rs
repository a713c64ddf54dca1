//! `<root>/<id>/`: the container's state directory, as crash-safe as runc's and crun's.
//!
//! state.json is written to a temporary file, fsynced and renamed over the old one, so a reader sees
//! the old or the new state, never half of one. It records the init's pid *and its start time* from
//! /proc/<pid>/stat, so a pid reused by another process after the container died is never mistaken for
//! the container. Every command that changes a container holds an exclusive flock on its directory,
//! so concurrent commands on one id are serialised; after the lock is taken the directory must still
//! be the one at the path (a command that waited while the container was deleted answers "does not
//! exist" instead of acting on a newer container of the same id). `state` and `list` only read (a
//! hook can ask for the state while create or start holds the lock), and delete first renames the
//! directory out of the way, so a reader sees a whole container or none. A `creating` directory
//! whose lock nobody holds lost its creator: it is `stopped` and removable. The lifecycle rules are
//! methods on [`Status`]. Modelled on crun's `src/libcrun/status.c`.

use crate::error::{Error, Result, io_err};
use crate::spec::{Hooks, OCI_VERSION, State};
use nix::fcntl::{Flock, FlockArg};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fs::File;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

/// The container's config.json as it was created (what `exec` confines its processes by).
pub const CONFIG_FILE: &str = "config.json";
/// The exec fifo's name inside the state directory.
pub const EXEC_FIFO: &str = "exec.fifo";
const STATE_FILE: &str = "state.json";

/// What berth remembers of a container.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Saved {
    /// Container id.
    pub id: String,
    /// Init pid on the host.
    pub pid: i32,
    /// Its start time (clock ticks since boot).
    pub start_time: u64,
    /// Absolute bundle path.
    pub bundle: PathBuf,
    /// Absolute rootfs path.
    pub rootfs: PathBuf,
    /// RFC 3339 creation time.
    pub created: String,
    /// The spec's annotations.
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
    /// Hooks still to run (poststart, poststop).
    #[serde(default)]
    pub hooks: Option<Hooks>,
    /// The init shares the host's pid namespace (kill --all then cannot reach only its processes).
    #[serde(default)]
    pub own_pid_ns: bool,
    /// The container's cgroup, removed with the state.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cgroup: Option<crate::cgroups::Cgroup>,
    /// The Landlock mode the init got (exec gives its processes the same).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub landlock: Option<crate::security::landlock::Mode>,
}

/// The runtime-spec's statuses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// create has not finished.
    Creating,
    /// The init waits for start.
    Created,
    /// The user's process runs.
    Running,
    /// Its cgroup is frozen (`pause`).
    Paused,
    /// The process exited (or never will run).
    Stopped,
}

impl Status {
    /// The spec's name.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Creating => "creating",
            Status::Created => "created",
            Status::Running => "running",
            Status::Paused => "paused",
            Status::Stopped => "stopped",
        }
    }

    /// `start` is allowed only on a created container.
    pub fn can_start(self) -> bool {
        self == Status::Created
    }

    /// `kill` needs a live process.
    pub fn can_kill(self) -> bool {
        matches!(self, Status::Created | Status::Running | Status::Paused)
    }

    /// `delete` without --force: stopped containers, and created ones (whose init never ran user code,
    /// as runc allows).
    pub fn can_delete(self, force: bool) -> bool {
        force || matches!(self, Status::Stopped | Status::Created | Status::Creating)
    }
}

/// Container ids: what runc accepts, so nothing can name a path outside the state root.
pub fn check_id(id: &str) -> Result<()> {
    let ok = !id.is_empty()
        && id.len() <= 1024
        && id != "."
        && id != ".."
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_+-.".contains(c));
    if ok {
        Ok(())
    } else {
        Err(Error::InvalidSpec(format!(
            "container id {id:?}: use letters, digits, '_', '+', '-' and '.' only"
        )))
    }
}

/// A state directory, locked (to change it) or only read.
#[derive(Debug)]
pub struct Container {
    /// `<root>/<id>`.
    pub dir: PathBuf,
    /// What state.json says (None while creating).
    pub saved: Option<Saved>,
    /// The lock (None for a read-only view).
    lock: Option<Flock<File>>,
    /// This process is its creator (create in progress here).
    creator: bool,
}

/// The cgroup of a container still being created, recorded before the cgroup is made so that a
/// `delete` after a crashed create removes it.
const CGROUP_RECORD: &str = "cgroup.json";

fn same_file(a: &libc::stat, b: &libc::stat) -> bool {
    a.st_dev == b.st_dev && a.st_ino == b.st_ino
}

fn gone(dir: &Path) -> Error {
    let id = dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    Error::State(format!("container {id:?} does not exist"))
}

/// Locks `dir` and checks that it is still the directory at that path (not deleted, not replaced
/// while this process waited for the lock).
fn lock(dir: &Path) -> Result<Flock<File>> {
    let f = match File::options()
        .read(true)
        .custom_flags(libc::O_DIRECTORY)
        .open(dir)
    {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(gone(dir)),
        Err(e) => return Err(io_err("open", dir, e)),
    };
    let f = Flock::lock(f, FlockArg::LockExclusive)
        .map_err(|(_, e)| Error::sys(format!("flock({})", dir.display()), e))?;
    let held = crate::sys::fstat(&*f)?;
    match nix::sys::stat::stat(dir) {
        Ok(now) if same_file(&held, &now) && held.st_nlink > 0 => Ok(f),
        _ => Err(gone(dir)),
    }
}

impl Container {
    /// Makes `<root>/<id>` (mode 0700: only root reaches the exec fifo; the init holds it open from
    /// before the clone, whatever user it becomes) and locks it; an existing id is an error.
    pub fn create(root: &Path, id: &str) -> Result<Container> {
        check_id(id)?;
        crate::files::make_state_root(root)?;
        let dir = root.join(id);
        match std::fs::DirBuilder::new().mode(0o700).create(&dir) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                return Err(Error::State(format!("container {id:?} already exists")));
            }
            Err(e) => return Err(io_err("mkdir", &dir, e)),
        }
        let lock = lock(&dir)?;
        Ok(Container {
            dir,
            saved: None,
            lock: Some(lock),
            creator: true,
        })
    }

    fn read_saved(dir: &Path) -> Result<Option<Saved>> {
        let path = dir.join(STATE_FILE);
        match std::fs::read(&path) {
            Ok(b) => serde_json::from_slice(&b)
                .map(Some)
                .map_err(|e| Error::State(format!("{}: corrupt state: {e}", path.display()))),
            // The directory was made but create has not written the state yet (or died doing so).
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io_err("read", &path, e)),
        }
    }

    /// Opens and locks an existing container.
    pub fn load(root: &Path, id: &str) -> Result<Container> {
        check_id(id)?;
        crate::files::vet_state_root(root)?;
        let dir = root.join(id);
        let lock = lock(&dir)?;
        let saved = Self::read_saved(&dir)?;
        Ok(Container {
            dir,
            saved,
            lock: Some(lock),
            creator: false,
        })
    }

    /// Reads an existing container without locking it (state.json is replaced atomically and a
    /// deleted container's directory is renamed away first, so this sees a whole state or none).
    pub fn peek(root: &Path, id: &str) -> Result<Container> {
        check_id(id)?;
        crate::files::vet_state_root(root)?;
        let dir = root.join(id);
        if !dir.is_dir() {
            return Err(gone(&dir));
        }
        let saved = Self::read_saved(&dir)?;
        Ok(Container {
            dir,
            saved,
            lock: None,
            creator: false,
        })
    }

    /// Records the cgroup about to be made for this container (see [`CGROUP_RECORD`]).
    pub fn record_cgroup(&self, cg: &crate::cgroups::Cgroup) -> Result<()> {
        let path = self.dir.join(CGROUP_RECORD);
        let bytes = serde_json::to_vec(cg).map_err(|e| Error::State(format!("encoding: {e}")))?;
        crate::files::replace_file(&path, "tmp", &bytes, 0o600, false)
    }

    /// Whether the creator of a state-less directory still runs: it holds the lock until create
    /// ends, so a lock nobody holds means it died.
    fn creator_alive(&self) -> bool {
        if self.creator {
            return true;
        }
        if self.lock.is_some() {
            return false;
        }
        let Ok(f) = File::options()
            .read(true)
            .custom_flags(libc::O_DIRECTORY)
            .open(&self.dir)
        else {
            return false;
        };
        Flock::lock(f, FlockArg::LockExclusiveNonblock).is_err()
    }

    /// Writes state.json atomically: temp file, fsync (when `durable`), rename.
    pub fn save(&mut self, saved: Saved, durable: bool) -> Result<()> {
        let dst = self.dir.join(STATE_FILE);
        let bytes =
            serde_json::to_vec(&saved).map_err(|e| Error::State(format!("encoding state: {e}")))?;
        crate::files::replace_file(&dst, "tmp", &bytes, 0o600, durable)?;
        self.saved = Some(saved);
        Ok(())
    }

    /// The lock's fd (a forked child closes it so it does not keep the lock).
    pub fn lock_fd(&self) -> Option<std::os::fd::RawFd> {
        use std::os::fd::AsRawFd;
        self.lock.as_ref().map(|l| l.as_raw_fd())
    }

    /// Where the exec fifo lives.
    pub fn fifo(&self) -> PathBuf {
        self.dir.join(EXEC_FIFO)
    }

    /// The status now: the pid must be alive *with the recorded start time*; a created container still
    /// has its exec fifo.
    pub fn status(&self) -> Status {
        let Some(s) = &self.saved else {
            return if self.creator_alive() {
                Status::Creating
            } else {
                Status::Stopped
            };
        };
        if s.pid <= 0 || crate::sys::process_start_time(s.pid) != Some(s.start_time) {
            return Status::Stopped;
        }
        if self.fifo().exists() {
            Status::Created
        } else {
            match s.cgroup.as_ref().and_then(|c| c.frozen()) {
                Some(true) => Status::Paused,
                _ => Status::Running,
            }
        }
    }

    /// The live pid, or None when the container's process is gone.
    pub fn live_pid(&self) -> Option<i32> {
        match self.status() {
            Status::Created | Status::Running | Status::Paused => {
                self.saved.as_ref().map(|s| s.pid)
            }
            _ => None,
        }
    }

    /// The container's cgroup, or an error saying that `verb` needs one.
    pub fn cgroup_for(&self, verb: &str) -> Result<&crate::cgroups::Cgroup> {
        self.saved
            .as_ref()
            .and_then(|s| s.cgroup.as_ref())
            .ok_or_else(|| {
                let id = self
                    .dir
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default();
                Error::NotSupported(format!(
                    "{verb} {id:?}: the container has no cgroup (give it linux.cgroupsPath or resources)"
                ))
            })
    }

    /// The state poststart hooks get: `running` with the init's pid, as runc gives it, even when the
    /// process already exited by the time the hook runs.
    pub fn poststart_state(&self) -> State {
        let mut s = self.oci_state();
        s.status = Status::Running.as_str().into();
        if let Some(saved) = &self.saved {
            s.pid = saved.pid;
        }
        s
    }

    /// The runtime-spec state JSON.
    pub fn oci_state(&self) -> State {
        let status = self.status();
        let id = self
            .dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        match &self.saved {
            Some(s) => State {
                oci_version: OCI_VERSION.into(),
                id,
                status: status.as_str().into(),
                pid: if status == Status::Stopped { 0 } else { s.pid },
                bundle: s.bundle.display().to_string(),
                rootfs: s.rootfs.display().to_string(),
                created: s.created.clone(),
                owner: String::new(),
                annotations: s.annotations.clone(),
            },
            None => State {
                oci_version: OCI_VERSION.into(),
                id,
                status: status.as_str().into(),
                pid: 0,
                bundle: String::new(),
                rootfs: String::new(),
                created: String::new(),
                owner: String::new(),
                annotations: BTreeMap::new(),
            },
        }
    }

    /// Removes the container's cgroup (its processes are gone by now) and the state directory (the
    /// lock goes with it). The directory is first renamed out of the way, so readers see the whole
    /// container or nothing.
    pub fn remove(self) -> Result<()> {
        let recorded = || -> Option<crate::cgroups::Cgroup> {
            let b = std::fs::read(self.dir.join(CGROUP_RECORD)).ok()?;
            serde_json::from_slice(&b).ok()
        };
        let cg = self
            .saved
            .as_ref()
            .and_then(|s| s.cgroup.clone())
            .or_else(recorded);
        let mut tomb = self.dir.clone().into_os_string();
        tomb.push(format!("~deleting.{}", std::process::id()));
        let tomb = PathBuf::from(tomb);
        std::fs::rename(&self.dir, &tomb).map_err(|e| io_err("rename", &self.dir, e))?;
        if let Some(cg) = cg {
            cg.remove()?;
        }
        std::fs::remove_dir_all(&tomb).map_err(|e| io_err("rmdir", &tomb, e))
    }
}

/// The ids under `root`, sorted.
pub fn list_ids(root: &Path) -> Result<Vec<String>> {
    crate::files::vet_state_root(root)?;
    let mut ids = Vec::new();
    let rd = match std::fs::read_dir(root) {
        Ok(rd) => rd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(ids),
        Err(e) => return Err(io_err("readdir", root, e)),
    };
    for e in rd.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        // `<id>~deleting.<pid>`: a delete in progress (or one that crashed): not a container.
        if e.file_type().is_ok_and(|t| t.is_dir()) && !name.contains('~') {
            ids.push(name);
        }
    }
    ids.sort();
    Ok(ids)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids() {
        assert!(check_id("abc-1.2_x+y").is_ok());
        for bad in ["", ".", "..", "a/b", "../x", "a b"] {
            assert!(check_id(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn lifecycle_rules() {
        assert!(Status::Created.can_start());
        assert!(!Status::Running.can_start());
        assert!(!Status::Running.can_delete(false));
        assert!(Status::Running.can_delete(true));
        assert!(Status::Stopped.can_delete(false));
        assert!(!Status::Stopped.can_kill());
    }

    #[test]
    fn duplicate_and_atomic_save() {
        let t = tempfile::tempdir().unwrap();
        let mut c = Container::create(t.path(), "x").unwrap();
        c.save(
            Saved {
                id: "x".into(),
                pid: 0,
                start_time: 0,
                bundle: "/b".into(),
                rootfs: "/b/rootfs".into(),
                created: "now".into(),
                annotations: Default::default(),
                hooks: None,
                own_pid_ns: true,
                cgroup: None,
                landlock: None,
            },
            true,
        )
        .unwrap();
        drop(c);
        assert!(
            Container::create(t.path(), "x")
                .unwrap_err()
                .to_string()
                .contains("already exists")
        );
        let c = Container::load(t.path(), "x").unwrap();
        assert_eq!(c.status(), Status::Stopped);
        assert_eq!(c.oci_state().pid, 0);
        c.remove().unwrap();
        assert!(!t.path().join("x").exists());
    }
}
