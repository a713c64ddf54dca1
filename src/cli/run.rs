//! `berth run`: create + start + wait, with a bundle (-b) as runc, or with berth's front end
//! (--rootfs): see lifecycle::run and crate::front. berth exits with the process's exit code (128+N
//! when killed by signal N); `--detach` returns once the process runs.

use super::Global;
use super::create;
use crate::error::{Error, Result};
use crate::lifecycle::{self, Ran, Start};
use std::path::PathBuf;

/// Examples for `berth run --help`.
pub const EXAMPLES: &str = "\
Examples:
  A CI job: the workspace writable, a cache read-only, no network, 2 GiB, 2 CPUs:
    berth run --rootfs ./rootfs -v \"$PWD\":/work:rw -v ~/.cache/ci:/cache -w /work \\
        --memory 2g --cpus 2 -- make test

  From an OCI image layout (skopeo copy docker://busybox oci:img:latest), as a user:
    berth run --rootfs oci:img:latest -u 1000:1000 -e HOME=/tmp -- id

  Detached with a name, then exec into it and remove it:
    berth run --rootfs ./rootfs --name job1 -d -- sleep 600
    berth exec job1 ps; berth delete --force job1

  Print the generated config.json (a bundle for runc, crun or berth create):
    berth run --rootfs ./rootfs --tmpfs /scratch:size=64m --cap-add NET_BIND_SERVICE --dry-run

Volumes (-v, --volumes) are bound as whole trees, read-only unless :rw, never with set-uid binaries or
device nodes; under a host mount policy (--policy) every path is vetted by it.";

/// `run` options.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The create options.
    #[command(flatten)]
    pub create: create::CreateArgs,
    /// Return once the process runs (the front end prints the container id).
    #[arg(long, short = 'd')]
    pub detach: bool,
    /// Front end: run this root filesystem (a directory, or an OCI image layout: oci:DIR[:TAG])
    /// with a spec built in memory, no bundle needed.
    #[arg(long, value_name = "DIR|oci:DIR[:TAG]", help_heading = "Front end")]
    pub rootfs: Option<PathBuf>,
    /// A volume HOST:CTR[:ro|rw], read-only unless :rw (repeatable).
    #[arg(
        long = "volume",
        short = 'v',
        value_name = "HOST:CTR[:ro|rw]",
        requires = "rootfs",
        help_heading = "Front end: mounts"
    )]
    pub volumes: Vec<String>,
    /// A JSON list of {host_path, container_path, read_only}.
    #[arg(
        long = "volumes",
        value_name = "FILE",
        requires = "rootfs",
        help_heading = "Front end: mounts"
    )]
    pub volumes_file: Option<PathBuf>,
    /// The container id (default berth-<pid>).
    #[arg(
        long = "id",
        visible_alias = "name",
        value_name = "ID",
        requires = "rootfs",
        help_heading = "Front end: lifecycle"
    )]
    pub name: Option<String>,
    /// The front end's other options.
    #[command(flatten)]
    pub front: crate::front::FrontArgs,
    /// The command and its arguments, after `--` (default sh).
    #[arg(last = true, requires = "rootfs", value_name = "CMD")]
    pub command: Vec<String>,
}

/// `berth run`. For the front end (`--rootfs`) a failure is printed here and its exit code is
/// Podman's and Docker's: 125 berth's own error, 126 the command cannot be invoked, 127 it was not
/// found; otherwise the command's own code (runc's `run` keeps 1 for every error of its own).
pub fn run(g: &Global, a: Args) -> Result<i32> {
    if a.rootfs.is_none() {
        return run_inner(g, a);
    }
    match run_inner(g, a) {
        Ok(code) => Ok(code),
        Err(e) => {
            crate::logging::error(&e.to_string());
            Ok(front_end_code(&e))
        }
    }
}

/// The front end's exit code for a failure of berth's (see [`run`]): told by the error's kind
/// ([`Error::is_program`]), never by its text.
pub fn front_end_code(e: &Error) -> i32 {
    match (e.is_program(), e.errno()) {
        (true, Some(nix::errno::Errno::ENOENT)) => 127,
        (true, _) => 126,
        (false, _) => 125,
    }
}

fn run_inner(g: &Global, mut a: Args) -> Result<i32> {
    // `berth run --rootfs R hostname`: a lone word is the command, as `podman run IMG hostname`
    // runs it (the container is named with --id), never a container id with sh behind it.
    if a.rootfs.is_some()
        && a.command.is_empty()
        && a.name.is_none()
        && let Some(word) = a.create.id.take()
    {
        a.command = vec![word];
    }
    let id = match (&a.create.id, &a.name, &a.rootfs) {
        (Some(_), Some(_), _) => {
            return Err(Error::InvalidSpec(
                "give the container id once: positionally or with --id".into(),
            ));
        }
        (Some(id), None, _) | (None, Some(id), _) => id.clone(),
        (None, None, Some(_)) => format!("berth-{}", std::process::id()),
        (None, None, None) => a.create.id()?,
    };
    let mut vs = match &a.rootfs {
        None => lifecycle::load_bundle(&a.create.bundle)?,
        Some(rootfs) => crate::front::build(&crate::front::Request {
            rootfs,
            volumes: &a.volumes,
            volumes_file: a.volumes_file.as_deref(),
            command: &a.command,
            detach: a.detach,
            flags: &a.front,
        })?,
    };
    if a.front.lifecycle.dry_run {
        let text = serde_json::to_string_pretty(&vs.spec)
            .map_err(|e| Error::State(format!("--dry-run: {e}")))?;
        super::out(&text)?;
        return Ok(0);
    }
    let launch = a.create.launch(id, Start::Run { detach: a.detach });
    match lifecycle::run(&g.context(), &launch, &mut vs)? {
        Ran::Detached => {
            if a.rootfs.is_some() {
                super::out(&launch.id)?;
            }
            Ok(0)
        }
        Ran::Exited(code) => Ok(code),
    }
}
