//! The `berth` binary: parse the command line, set up logging, run the verb, print an error once.

use berth::cli::LogFormat;
use berth::logging;

#[global_allocator]
static ALLOC: berth::sys::alloc::Arena = berth::sys::alloc::Arena::new();

fn main() {
    // A panic (a bug: berth never panics on bad input) ends the process with _exit after the usual
    // message, never with abort(): musl's abort raises SIGABRT at the thread id it cached at start-up,
    // which in a child made by berth's raw clone(2) is the parent's, so abort would kill the parent.
    let report = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        report(info);
        berth::sys::exit_now(134);
    }));
    // The verbs that put processes into a container run from a sealed copy of this binary
    // (security::exe): re-executed before anything else happens, first by the verb's name (so the
    // command line is parsed once, in the copy), then by the parsed verb, which decides.
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    if berth::cli::verb_enters_container(&args) {
        sealed_or_exit();
    }
    let cli = berth::cli::parse(&args);
    if cli.command.enters_container() {
        sealed_or_exit();
    }
    let format = match cli.global.log_format {
        LogFormat::Text => logging::Format::Text,
        LogFormat::Json => logging::Format::Json,
    };
    if let Err(e) = logging::init(cli.global.log.as_deref(), format, cli.global.debug) {
        logging::to_stderr(&format!("berth: error: {e}\n"));
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

/// Runs from the sealed copy (re-executing into it if need be), or ends berth with the error.
fn sealed_or_exit() {
    if let Err(e) = berth::security::exe::run_sealed() {
        logging::to_stderr(&format!(
            "berth: error: running from a sealed copy of berth's binary: {e}\n"
        ));
        std::process::exit(1);
    }
}
