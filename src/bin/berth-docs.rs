//! `berth-docs`: berth's shell completion scripts and man pages, generated from berth's own clap
//! definitions (`berth completion SHELL` and `berth man` run it; see berth::cli::docs).

use berth::cli::docs;
use clap::Parser;

/// What to generate.
#[derive(Debug, Parser)]
#[command(name = "berth-docs", version, about)]
enum Docs {
    /// Print a shell completion script (bash, zsh or fish).
    Completion(docs::CompletionArgs),
    /// Print berth's man page, or write one page per verb into a directory.
    Man(docs::ManArgs),
}

fn main() {
    let r = match Docs::parse() {
        Docs::Completion(a) => docs::completion(&a),
        Docs::Man(a) => docs::man(&a),
    };
    match r {
        Ok(code) => std::process::exit(code),
        Err(e) => {
            berth::logging::to_stderr(&format!("berth-docs: error: {e}\n"));
            std::process::exit(1);
        }
    }
}
