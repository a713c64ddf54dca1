//! `berth create`: the container is made and its init waits for `berth start`.

use super::Global;
use crate::error::{Error, Result};
use crate::lifecycle::{self, Launch, Start};
use std::path::PathBuf;

/// `create` options (also used by `run`).
#[derive(Debug, clap::Args)]
pub struct CreateArgs {
    /// Bundle directory (holds config.json).
    #[arg(long, short = 'b', default_value = ".")]
    pub bundle: PathBuf,
    /// Write the init's pid here.
    #[arg(long)]
    pub pid_file: Option<PathBuf>,
    /// Unix socket that receives the terminal's master side.
    #[arg(long)]
    pub console_socket: Option<PathBuf>,
    /// Use MS_MOVE + chroot instead of pivot_root (for ramfs roots).
    #[arg(long)]
    pub no_pivot: bool,
    /// Keep the caller's session keyring.
    #[arg(long)]
    pub no_new_keyring: bool,
    /// Pass this many extra fds (3, 4, ...) to the process.
    #[arg(long, default_value_t = 0)]
    pub preserve_fds: u32,
    /// The tenant whose host mount policy applies (else the `berth.tenant` annotation).
    #[arg(long)]
    pub tenant: Option<String>,
    /// Container id.
    pub id: Option<String>,
}

impl CreateArgs {
    /// The launch these options describe, for the container `id`.
    pub fn launch(&self, id: String, start: Start) -> Launch {
        Launch {
            id,
            start,
            pid_file: self.pid_file.clone(),
            tenant: self.tenant.clone(),
            options: lifecycle::Options {
                console_socket: self.console_socket.clone(),
                // systemd socket activation's fds go to the process after the preserved ones.
                preserve_fds: self.preserve_fds + lifecycle::listen_fds(),
                no_pivot: self.no_pivot,
                no_new_keyring: self.no_new_keyring,
            },
        }
    }

    /// The container id (required for create and runc-style run).
    pub fn id(&self) -> Result<String> {
        self.id
            .clone()
            .ok_or_else(|| Error::InvalidSpec("a container id is required".into()))
    }
}

/// `berth create`.
pub fn run(g: &Global, a: CreateArgs) -> Result<i32> {
    let launch = a.launch(a.id()?, Start::Create);
    let mut vs = lifecycle::load_bundle(&a.bundle)?;
    lifecycle::create(&g.context(), &launch, &mut vs)?;
    Ok(0)
}
