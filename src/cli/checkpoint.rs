//! `berth checkpoint` and `berth restore`: runc's command line over CRIU (lifecycle::checkpoint).

use super::Global;
use crate::error::{Error, Result};
use crate::lifecycle::{self, CriuOptions, Launch, Start};
use std::path::PathBuf;

/// The options checkpoint and restore share (runc's names).
#[derive(Debug, clap::Args)]
pub struct Criu {
    /// Where the images are written or read (default ./checkpoint).
    #[arg(long, default_value = "checkpoint")]
    pub image_path: PathBuf,
    /// CRIU's logs and work files (default: the image path).
    #[arg(long)]
    pub work_path: Option<PathBuf>,
    /// Allow open TCP connections.
    #[arg(long)]
    pub tcp_established: bool,
    /// Allow external unix sockets.
    #[arg(long)]
    pub ext_unix_sk: bool,
    /// Allow shell jobs (a controlling terminal).
    #[arg(long)]
    pub shell_job: bool,
    /// Handle file locks.
    #[arg(long)]
    pub file_locks: bool,
    /// CRIU's cgroup handling: soft, full, strict or ignore (berth remakes the cgroup itself).
    #[arg(long)]
    pub manage_cgroups_mode: Option<String>,
    /// Namespaces left empty (network).
    #[arg(long)]
    pub empty_ns: Vec<String>,
    /// Deduplicate images as they are written or read.
    #[arg(long)]
    pub auto_dedup: bool,
    /// Pages served lazily (CRIU's lazy-pages daemon).
    #[arg(long)]
    pub lazy_pages: bool,
}

impl Criu {
    fn options(&self) -> Result<CriuOptions> {
        let abs = |p: &PathBuf| {
            std::path::absolute(p).map_err(|e| crate::error::io_err("absolute path", p, e))
        };
        Ok(CriuOptions {
            image_path: abs(&self.image_path)?,
            work_path: self.work_path.as_ref().map(abs).transpose()?,
            tcp_established: self.tcp_established,
            ext_unix_sk: self.ext_unix_sk,
            shell_job: self.shell_job,
            file_locks: self.file_locks,
            manage_cgroups_mode: self.manage_cgroups_mode.clone(),
            empty_ns: self.empty_ns.clone(),
            auto_dedup: self.auto_dedup,
            lazy_pages: self.lazy_pages,
            ..CriuOptions::default()
        })
    }
}

/// `checkpoint` options.
#[derive(Debug, clap::Args)]
pub struct CheckpointArgs {
    /// Container id.
    pub id: String,
    /// CRIU's options.
    #[command(flatten)]
    pub criu: Criu,
    /// Leave the container running after the dump.
    #[arg(long)]
    pub leave_running: bool,
    /// Dump memory only (a later dump takes --parent-path).
    #[arg(long)]
    pub pre_dump: bool,
    /// A pre-dump's images, relative to the image path.
    #[arg(long)]
    pub parent_path: Option<PathBuf>,
    /// ADDRESS:PORT of a page server: CRIU serves the pages there (with --lazy-pages) or sends
    /// them to one.
    #[arg(long)]
    pub page_server: Option<String>,
    /// An fd (open for writing) that gets a zero byte once the lazy pages are being served.
    #[arg(long)]
    pub status_fd: Option<i32>,
}

/// `restore` options.
#[derive(Debug, clap::Args)]
pub struct RestoreArgs {
    /// Container id.
    pub id: String,
    /// CRIU's options.
    #[command(flatten)]
    pub criu: Criu,
    /// Bundle directory (holds config.json).
    #[arg(long, short = 'b', default_value = ".")]
    pub bundle: PathBuf,
    /// Return once the container runs.
    #[arg(long, short = 'd')]
    pub detach: bool,
    /// Write the restored init's pid here.
    #[arg(long)]
    pub pid_file: Option<PathBuf>,
    /// Unix socket that receives the restored terminal's master side (as create's).
    #[arg(long)]
    pub console_socket: Option<PathBuf>,
    /// Accepted for runc's sake (CRIU makes the root itself).
    #[arg(long)]
    pub no_pivot: bool,
    /// Accepted for runc's sake.
    #[arg(long)]
    pub no_subreaper: bool,
    /// The tenant under a host mount policy.
    #[arg(long)]
    pub tenant: Option<String>,
}

/// `berth checkpoint`.
pub fn checkpoint(g: &Global, a: CheckpointArgs) -> Result<i32> {
    let mut o = a.criu.options()?;
    o.leave_running = a.leave_running;
    o.pre_dump = a.pre_dump;
    o.parent_path = a.parent_path;
    o.page_server = a
        .page_server
        .as_deref()
        .map(lifecycle::parse_page_server)
        .transpose()?;
    if let Some(fd) = a.status_fd {
        if !a.criu.lazy_pages {
            return Err(Error::InvalidSpec(
                "--status-fd goes with --lazy-pages".into(),
            ));
        }
        let mode = crate::sys::fd_access_mode(fd)
            .map_err(|e| Error::InvalidSpec(format!("--status-fd {fd}: {e}")))?;
        if mode == libc::O_RDONLY {
            return Err(Error::InvalidSpec(
                "--status-fd: the fd is not open for writing".into(),
            ));
        }
        let fd = crate::sys::adopt_fd(fd)?;
        o.status_fd = std::sync::Mutex::new(Some(fd));
    }
    lifecycle::checkpoint(&g.context(), &a.id, &o)?;
    Ok(0)
}

/// `berth restore`.
pub fn restore(g: &Global, a: RestoreArgs) -> Result<i32> {
    let mut o = a.criu.options()?;
    o.console_socket = a.console_socket;
    let ctx = g.context();
    let mut vs = lifecycle::load_bundle(&a.bundle)?;
    let mut launch = Launch::new(a.id.clone(), Start::Run { detach: a.detach });
    launch.pid_file = a.pid_file;
    launch.tenant = a.tenant;
    let mask = if a.detach {
        None
    } else {
        // The restored init becomes this process's child when CRIU exits: wait for it as run does.
        nix::sys::prctl::set_child_subreaper(true)
            .map_err(|e| Error::sys("prctl(PR_SET_CHILD_SUBREAPER, 1)", e))?;
        Some(crate::process::supervise::block_signals()?)
    };
    let pid = lifecycle::restore(&ctx, &launch, &mut vs, &o)?;
    let Some(mask) = mask else {
        return Ok(0);
    };
    let code = crate::process::supervise::wait(pid, &mask, None)?;
    lifecycle::delete(&ctx, &a.id, true)?;
    Ok(code)
}
