//! `<root>/<id>/`: the container's state directory, as crash-safe as runc's and crun's.
//!
//! state.json is written to a temporary file, fsynced and renamed over the old one, so a reader sees
//! the old or the new state, never half of one. It records the init's pid *and its start time* from
//! /proc/PID/stat, so a pid reused by another process after the container died is never mistaken for
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
/// What the init's confinement layers enforced (security::Report), beside the state.
pub const CONFINEMENT_FILE: &str = "confinement.json";
/// The exec fifo's name inside the state directory.
pub const EXEC_FIFO: &str = "exec.fifo";
const STATE_FILE: &str = "state.json";
/// The live volumes (`berth mounts add`), beside the state.
const VOLUMES_FILE: &str = "volumes.json";

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
    /// The tenant the policy bound the container to at create (live volumes are held to it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant: Option<String>,
    /// How many bind mounts the spec had (a tenant's `max_volumes` counts live volumes on top).
    #[serde(default)]
    pub binds: usize,
    /// The root is read-only (`root.readonly`, or made so by the policy).
    #[serde(default)]
    pub root_readonly: bool,
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
    // At most a directory name (NAME_MAX): every id create accepts can be deleted (the tombstone a
    // delete renames it to has a short name of its own).
    let ok = !id.is_empty()
        && id.len() <= 255
        && id != "."
        && id != ".."
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_+-.".contains(c));
    if ok {
        Ok(())
    } else {
        Err(Error::InvalidSpec(format!(
            "container id {id:?}: use letters, digits, '_', '+', '-' and '.' only, at most 255 bytes"
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
/// The init as soon as it exists (before any hook runs), kept beside state.json: what `state` shows
/// of a container still being created, and how `delete -f` finds the init when state.json is
/// damaged or gone.
const INIT_RECORD: &str = "init.json";
/// Prefix of a directory being deleted (`~deleting.PID.<nanos>`, short whatever the id): `~` is
/// in no id.
const TOMB_PREFIX: &str = "~deleting.";

/// What `INIT_RECORD` holds.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct InitRecord {
    /// The init's pid on the host.
    pub pid: i32,
    /// Its start time.
    pub start_time: u64,
    /// Absolute bundle path.
    pub bundle: PathBuf,
    /// Absolute rootfs path.
    pub rootfs: PathBuf,
    /// RFC 3339 creation time.
    pub created: String,
}

/// Records the init of the container whose state directory is `dir` (see `INIT_RECORD`).
pub fn record_init(dir: &Path, r: &InitRecord) -> Result<()> {
    let bytes = serde_json::to_vec(r).map_err(|e| Error::State(format!("encoding: {e}")))?;
    crate::files::replace_file(&dir.join(INIT_RECORD), "tmp", &bytes, 0o600, false)
}

fn read_record<T: serde::de::DeserializeOwned>(dir: &Path, name: &str) -> Option<T> {
    serde_json::from_slice(&std::fs::read(dir.join(name)).ok()?).ok()
}

/// Finishes the deletes that were interrupted (killed, or failed after their rename): every
/// tombstone under `root` whose deleting berth is gone (its lock is free) loses its recorded cgroup
/// and its directory. Called by `delete` and by `list`. Errors are warned
/// about, never fatal: the next verb tries again.
pub fn sweep_tombs(root: &Path) {
    let Ok(rd) = std::fs::read_dir(root) else {
        return;
    };
    for e in rd.flatten() {
        // `~deleting.…`, and the `<id>~deleting.<pid>` of berth before 0.1's session 5.
        if !e.file_name().to_string_lossy().contains(TOMB_PREFIX) {
            continue;
        }
        let tomb = e.path();
        let Ok(f) = File::options()
            .read(true)
            .custom_flags(libc::O_DIRECTORY | libc::O_NOFOLLOW)
            .open(&tomb)
        else {
            continue;
        };
        // A delete in progress holds the lock.
        let Ok(_lock) = Flock::lock(f, FlockArg::LockExclusiveNonblock) else {
            continue;
        };
        let cg = read_record::<Saved>(&tomb, STATE_FILE)
            .and_then(|s| s.cgroup)
            .or_else(|| read_record(&tomb, CGROUP_RECORD));
        let done = cg
            .map_or(Ok(()), |cg: crate::cgroups::Cgroup| cg.remove())
            .and_then(|()| std::fs::remove_dir_all(&tomb).map_err(|e| io_err("rmdir", &tomb, e)));
        if let Err(e) = done {
            crate::logging::warn(&format!("finishing an interrupted delete: {e}"));
        }
    }
}

fn same_file(a: &libc::stat, b: &libc::stat) -> bool {
    a.st_dev == b.st_dev && a.st_ino == b.st_ino
}

fn gone(dir: &Path) -> Error {
    let id = dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    Error::NoSuchContainer(id.to_string())
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
        // No sweep here: since the cgroup goes before the rename, a tombstone holds only files, which
        // block nothing a create needs (delete and list finish them), and create stays one readdir
        // shorter.
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

    /// Opens and locks an existing container whatever its state.json holds: a damaged (corrupt,
    /// truncated, empty) state is returned as the error beside a container with no saved state, for
    /// `delete -f`, which removes what berth can still identify as the container's.
    pub fn load_any(root: &Path, id: &str) -> Result<(Container, Option<Error>)> {
        check_id(id)?;
        crate::files::vet_state_root(root)?;
        let dir = root.join(id);
        let lock = lock(&dir)?;
        let (saved, damage) = match Self::read_saved(&dir) {
            Ok(s) => (s, None),
            Err(e) => (None, Some(e)),
        };
        let c = Container {
            dir,
            saved,
            lock: Some(lock),
            creator: false,
        };
        Ok((c, damage))
    }

    /// The init as recorded beside the state (see `INIT_RECORD`).
    pub fn init_record(&self) -> Option<InitRecord> {
        read_record(&self.dir, INIT_RECORD)
    }

    /// The container's cgroup: from the state, else from the record made before it was created.
    pub fn any_cgroup(&self) -> Option<crate::cgroups::Cgroup> {
        self.saved
            .as_ref()
            .and_then(|s| s.cgroup.clone())
            .or_else(|| read_record(&self.dir, CGROUP_RECORD))
    }

    /// Every process berth can identify as this container's init that still runs (pid and start
    /// time both match): the state's and the init record's.
    pub fn live_inits(&self) -> Vec<i32> {
        let mut out = Vec::new();
        let known = self
            .saved
            .as_ref()
            .map(|s| (s.pid, s.start_time))
            .into_iter()
            .chain(self.init_record().map(|r| (r.pid, r.start_time)));
        for (pid, start) in known {
            if pid > 0
                && crate::sys::process_start(pid).is_some_and(|(t, alive)| t == start && alive)
                && !out.contains(&pid)
            {
                out.push(pid);
            }
        }
        out
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

    /// Records the cgroup about to be made for this container (see `CGROUP_RECORD`).
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
    pub fn lock_fd(&self) -> Option<std::os::fd::BorrowedFd<'_>> {
        use std::os::fd::AsFd;
        self.lock.as_ref().map(|l| l.as_fd())
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

    /// The live volumes recorded for this container (none when the record is absent or unreadable).
    pub fn live_volumes(&self) -> Vec<crate::spec::LiveVolume> {
        read_record(&self.dir, VOLUMES_FILE).unwrap_or_default()
    }

    /// Records the live volumes (atomically; durably: they say what is attached).
    pub fn save_live_volumes(&self, v: &[crate::spec::LiveVolume]) -> Result<()> {
        let bytes = serde_json::to_vec(v).map_err(|e| Error::State(format!("encoding: {e}")))?;
        crate::files::replace_file(&self.dir.join(VOLUMES_FILE), "tmp", &bytes, 0o600, true)
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
                live_volumes: self.live_volumes(),
            },
            // Still being created (a prestart hook asks): what the init record says.
            None => {
                let r = self.init_record();
                State {
                    oci_version: OCI_VERSION.into(),
                    id,
                    status: status.as_str().into(),
                    pid: match (&r, status) {
                        (Some(r), Status::Creating) => r.pid,
                        _ => 0,
                    },
                    bundle: r
                        .as_ref()
                        .map(|r| r.bundle.display().to_string())
                        .unwrap_or_default(),
                    rootfs: r
                        .as_ref()
                        .map(|r| r.rootfs.display().to_string())
                        .unwrap_or_default(),
                    created: r.map(|r| r.created).unwrap_or_default(),
                    owner: String::new(),
                    annotations: BTreeMap::new(),
                    live_volumes: Vec::new(),
                }
            }
        }
    }

    /// Removes the container's cgroup (its processes are gone by now) and the state directory (the
    /// lock goes with it). The cgroup goes first, while the directory still names it, so a delete
    /// killed or failing at any step leaves either the container (a later `delete -f` does it all
    /// again) or a tombstone with nothing but files, which every later delete and list
    /// finishes ([`sweep_tombs`]). The directory is renamed out of the way before it is emptied, so
    /// readers see the whole container or nothing.
    pub fn remove(self) -> Result<()> {
        if let Some(cg) = self.any_cgroup() {
            cg.remove()?;
        }
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let root = self.dir.parent().unwrap_or(Path::new("."));
        let tomb = root.join(format!("{TOMB_PREFIX}{}.{nanos}", std::process::id()));
        std::fs::rename(&self.dir, &tomb).map_err(|e| io_err("rename", &self.dir, e))?;
        std::fs::remove_dir_all(&tomb).map_err(|e| io_err("rmdir", &tomb, e))
    }
}

/// The ids under `root`, sorted.
pub fn list_ids(root: &Path) -> Result<Vec<String>> {
    crate::files::vet_state_root(root)?;
    sweep_tombs(root);
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
                tenant: None,
                binds: 0,
                root_readonly: false,
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
