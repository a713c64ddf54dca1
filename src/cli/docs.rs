//! `berth completion SHELL` and `berth man`: shell completion scripts and man pages, generated from
//! the same clap definitions that parse the command line, so they never disagree with it.
//!
//! The generators (clap_complete, clap_mangen) live in a second binary, `berth-docs`, built and
//! installed beside `berth` (`scripts/install.sh`); `berth completion` and `berth man` run it. They
//! would add 176 KB to berth's own binary, and a start maps the binary's page-cache folios whole: +0.18
//! MiB of peak RSS on every `berth run` for a text printed once at install time (measured with
//! `scripts/bench.sh`).

use crate::error::{Error, Result, io_err};
use clap::CommandFactory;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

/// The shells `berth completion` writes a script for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Shell {
    /// bash (bash-completion).
    Bash,
    /// zsh.
    Zsh,
    /// fish.
    Fish,
}

/// `berth completion` arguments.
#[derive(Debug, clap::Args)]
pub struct CompletionArgs {
    /// The shell.
    #[arg(value_enum)]
    pub shell: Shell,
}

/// `berth man` arguments.
#[derive(Debug, clap::Args)]
pub struct ManArgs {
    /// Write berth.1 and one berth-VERB.1 per verb into this directory (else berth.1 to stdout).
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
}

/// The generator binary's name, looked up beside berth's own.
pub const DOCS_BIN: &str = "berth-docs";

/// `berth completion` / `berth man` in berth's binary: runs `berth-docs` from berth's own directory
/// with the same arguments (never from $PATH: the generator berth runs is the one installed with it).
pub fn forward(args: &[std::ffi::OsString]) -> Result<i32> {
    use std::os::unix::process::CommandExt;
    let exe = std::fs::read_link("/proc/self/exe")
        .map_err(|e| io_err("readlink", Path::new("/proc/self/exe"), e))?;
    let docs = exe.with_file_name(DOCS_BIN);
    let e = std::process::Command::new(&docs).args(args).exec();
    Err(Error::Context {
        what: "the completion and man page generator (scripts/install.sh installs it beside berth)"
            .into(),
        source: Box::new(io_err("execve", &docs, e)),
    })
}

/// `completion SHELL`: the script on stdout.
pub fn completion(a: &CompletionArgs) -> Result<i32> {
    let mut cmd = super::Cli::command();
    let shell = match a.shell {
        Shell::Bash => clap_complete::Shell::Bash,
        Shell::Zsh => clap_complete::Shell::Zsh,
        Shell::Fish => clap_complete::Shell::Fish,
    };
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut cmd, "berth", &mut script);
    super::out(String::from_utf8_lossy(&script).trim_end())?;
    Ok(0)
}

/// `man [--dir DIR]`: berth.1 on stdout, or every page into DIR.
pub fn man(a: &ManArgs) -> Result<i32> {
    let mut cmd = super::Cli::command();
    cmd.build();
    let Some(dir) = &a.dir else {
        let page = render(&cmd)?;
        super::out(String::from_utf8_lossy(&page).trim_end())?;
        return Ok(0);
    };
    write_page(dir, "berth", &cmd)?;
    for sub in cmd.get_subcommands().filter(|s| s.get_name() != "help") {
        let name = format!("berth-{}", sub.get_name());
        let page = sub
            .clone()
            .display_name(name.clone())
            .bin_name(format!("berth {}", sub.get_name()));
        write_page(dir, &name, &page)?;
    }
    Ok(0)
}

/// One page in roff.
fn render(cmd: &clap::Command) -> Result<Vec<u8>> {
    let mut page = Vec::new();
    clap_mangen::Man::new(cmd.clone())
        .render(&mut page)
        .map_err(|e| io_err("render man page", Path::new(cmd.get_name()), e))?;
    Ok(page)
}

/// DIR/NAME.1, written whole: a new file (O_CREAT|O_EXCL|O_NOFOLLOW, so a file or symlink planted
/// under the temporary name is never written through) renamed over the page, which replaces a
/// symlink there rather than following it.
fn write_page(dir: &Path, name: &str, cmd: &clap::Command) -> Result<()> {
    let page = render(cmd)?;
    let path = dir.join(format!("{name}.1"));
    let tmp = dir.join(format!(".{name}.1.{}", std::process::id()));
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o644)
        .custom_flags(libc::O_NOFOLLOW)
        .open(&tmp)
        .map_err(|e| io_err("open(O_CREAT|O_EXCL|O_NOFOLLOW)", &tmp, e))?;
    let written = f.write_all(&page).and_then(|()| f.sync_all());
    if let Err(e) = written.and_then(|()| std::fs::rename(&tmp, &path)) {
        let _ = std::fs::remove_file(&tmp);
        return Err(io_err("write", &path, e));
    }
    Ok(())
}
