//! The `berth` binary: parse the command line, set up logging, run the verb, print an error once.

use berth::cli::{Cli, LogFormat};
use berth::logging;
use clap::Parser;

fn main() {
    let cli = Cli::parse();
    let format = match cli.global.log_format {
        LogFormat::Text => logging::Format::Text,
        LogFormat::Json => logging::Format::Json,
    };
    if let Err(e) = logging::init(cli.global.log.as_deref(), format, cli.global.debug) {
        eprintln!("berth: error: {e}");
        std::process::exit(1);
    }
    let code = match berth::cli::run(cli) {
        Ok(code) => code,
        Err(e) => {
            logging::error(&e.to_string());
            1
        }
    };
    std::process::exit(code);
}
