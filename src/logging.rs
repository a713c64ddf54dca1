//! runc-compatible logging: `--log FILE` and `--log-format text|json`, JSON lines
//! `{"level":"warning","msg":"...","time":"2026-11-23T09:00:00Z"}` as runc (logrus) writes them, because
//! orchestrators such as containerd read the last error from that file. Without `--log`, messages go to
//! stderr. Set up once in `main`; the library only calls [`warn`], [`info`] (reaches stderr only with
//! --debug) and [`debug`] (only with --debug, to the log or stderr).

use std::io::{IsTerminal, Write};
use std::sync::OnceLock;
use std::time::{SystemTime, UNIX_EPOCH};

/// The log's format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// `time="..." level=warning msg="..."`
    Text,
    /// One JSON object per line.
    Json,
}

#[derive(Debug)]
struct Logger {
    file: Option<std::fs::File>,
    format: Format,
    debug: bool,
}

static LOGGER: OnceLock<Logger> = OnceLock::new();

/// Sets the logger up (first call wins).
pub fn init(path: Option<&std::path::Path>, format: Format, debug: bool) -> crate::Result<()> {
    let file = match path {
        Some(p) => Some(crate::files::open_log(p)?),
        None => None,
    };
    let _ = LOGGER.set(Logger {
        file,
        format,
        debug,
    });
    Ok(())
}

/// RFC 3339 UTC time with seconds, from the system clock.
pub fn now_rfc3339() -> String {
    let d = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    rfc3339(d.as_secs() as i64, d.subsec_nanos())
}

/// RFC 3339 for a Unix time (civil-from-days, H. Hinnant's algorithm).
pub fn rfc3339(secs: i64, nanos: u32) -> String {
    let days = secs.div_euclid(86400);
    let sod = secs.rem_euclid(86400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = if m <= 2 { y + 1 } else { y };
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{nanos:09}Z",
        sod / 3600,
        sod / 60 % 60,
        sod % 60
    )
}

/// Writes to stderr, ignoring every error: a full disk, a closed pipe (EPIPE, SIGPIPE ignored) or
/// a closed fd must never abort berth or leave its work half-done (eprintln! panics on them).
pub fn to_stderr(text: &str) {
    let _ = std::io::stderr().lock().write_all(text.as_bytes());
}

fn emit(level: &str, msg: &str) {
    let Some(l) = LOGGER.get() else {
        to_stderr(&format!("berth: {level}: {msg}\n"));
        return;
    };
    let time = now_rfc3339();
    let line = match l.format {
        Format::Json => format!(
            "{}\n",
            serde_json::json!({"level": level, "msg": msg, "time": time})
        ),
        Format::Text => format!("time=\"{time}\" level={level} msg={msg:?}\n"),
    };
    match &l.file {
        Some(f) => {
            let _ = (&*f).write_all(line.as_bytes());
        }
        // Without a log file, stderr gets warnings, and the rest only with --debug.
        None if level == "warning" || l.debug => to_stderr(&line),
        None => {}
    }
}

/// The top-level error, written once by `main`: to the log file when there is one, and always to
/// stderr. On a terminal (a person) it reads `berth: error: ...`; otherwise (Podman through conmon,
/// containerd's shim, Docker, scripts) the message alone, as crun writes it: those show it behind
/// the runtime's own name already (`Error: /usr/bin/berth: ...`), and a `berth: error:` of berth's
/// own would say it twice.
pub fn error(msg: &str) {
    if LOGGER.get().is_some_and(|l| l.file.is_some()) {
        emit("error", msg);
    }
    if std::io::stderr().is_terminal() {
        to_stderr(&format!("berth: error: {msg}\n"));
    } else {
        to_stderr(&format!("{msg}\n"));
    }
}

/// A warning.
pub fn warn(msg: &str) {
    emit("warning", msg);
}

/// Information.
pub fn info(msg: &str) {
    emit("info", msg);
}

/// Detail for `--debug` only (what berth accepted and ignored, as runc logs it).
pub fn debug(msg: &str) {
    if LOGGER.get().is_some_and(|l| l.debug) {
        emit("debug", msg);
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn rfc3339_known_dates() {
        assert_eq!(super::rfc3339(0, 0), "1970-01-01T00:00:00.000000000Z");
        assert_eq!(
            super::rfc3339(1_795_424_400, 5),
            "2026-11-23T09:00:00.000000005Z"
        );
        assert_eq!(
            super::rfc3339(951_782_400, 0),
            "2000-02-29T00:00:00.000000000Z"
        );
    }
}
