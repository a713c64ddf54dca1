//! One error type for the whole library.
//!
//! Every error says which operation failed, on which path, with which errno, in words an orchestrator can
//! show its user as they are. The binary prints an error once, in `main`; library code never logs an error
//! it also returns.

use nix::errno::Errno;
use std::fmt;

/// What went wrong, for callers that branch on it (exit codes, retries, tests).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// config.json (or a CLI argument) is malformed or asks for something contradictory.
    InvalidSpec,
    /// The host mount policy refused a mount.
    Policy,
    /// The spec asks for something berth does not implement, or the kernel lacks.
    NotSupported,
    /// A path tried to leave the root it was confined to, or a file was not what it must be.
    SafetyViolation,
    /// A system call failed.
    Os,
    /// The container's state does not allow the operation (no such container, already running...).
    State,
}

/// A failed system call, formatted like a line of strace: `openat2([5]</b/rootfs>, "etc/x", IN_ROOT): EXDEV`.
#[derive(Debug, Clone)]
pub struct SysError {
    /// The call with its arguments.
    pub call: String,
    /// What the kernel said.
    pub errno: Errno,
}

impl fmt::Display for SysError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.call, self.errno)
    }
}

impl std::error::Error for SysError {}

/// berth's error: a kind, a message and, for system calls, the errno.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// See [`ErrorKind::InvalidSpec`].
    #[error("invalid spec: {0}")]
    InvalidSpec(String),
    /// See [`ErrorKind::Policy`].
    #[error("policy: {0}")]
    Policy(String),
    /// See [`ErrorKind::NotSupported`].
    #[error("not supported: {0}")]
    NotSupported(String),
    /// See [`ErrorKind::SafetyViolation`].
    #[error("unsafe path: {0}")]
    SafetyViolation(String),
    /// See [`ErrorKind::State`].
    #[error("{0}")]
    State(String),
    /// No container of this id (kind [`ErrorKind::State`]; runc's text).
    #[error("container {0:?} does not exist")]
    NoSuchContainer(String),
    /// The host mount policy refused part of the bundle or a mount (kind [`ErrorKind::Policy`]).
    #[error("policy: {0}")]
    Refused(crate::policy::Refusal),
    /// A system call failed.
    #[error(transparent)]
    Sys(#[from] SysError),
    /// Something failed while doing `what`.
    #[error("{what}: {source}")]
    Context {
        /// The step that failed, e.g. `mount 3 (/data)`.
        what: String,
        /// Why.
        source: Box<Error>,
    },
    /// An error the container's init process reported over the sync socket.
    #[error("{msg}")]
    Child {
        /// The child's message.
        msg: String,
        /// The errno it carried (0 when none).
        errno: i32,
        /// It was the container's program that could not be run ([`Error::Program`] in the child).
        program: bool,
    },
    /// The container's program could not be run: not found, not executable, or refused by execve.
    #[error("{what}: {errno}")]
    Program {
        /// What was tried (`process.args[0]: "x" not found in $PATH (...)`, `execve("/x")`).
        what: String,
        /// Why.
        errno: Errno,
    },
}

impl Error {
    /// The kind of the innermost error.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::InvalidSpec(_) => ErrorKind::InvalidSpec,
            Error::Policy(_) => ErrorKind::Policy,
            Error::NotSupported(_) => ErrorKind::NotSupported,
            Error::SafetyViolation(_) => ErrorKind::SafetyViolation,
            Error::State(_) | Error::NoSuchContainer(_) => ErrorKind::State,
            Error::Refused(_) => ErrorKind::Policy,
            Error::Sys(_) => ErrorKind::Os,
            Error::Context { source, .. } => source.kind(),
            Error::Child { .. } | Error::Program { .. } => ErrorKind::Os,
        }
    }

    /// The errno behind this error, if a system call failed.
    pub fn errno(&self) -> Option<Errno> {
        match self {
            Error::Sys(e) => Some(e.errno),
            Error::Context { source, .. } => source.errno(),
            Error::Child { errno, .. } if *errno != 0 => Some(Errno::from_raw(*errno)),
            Error::Program { errno, .. } => Some(*errno),
            _ => None,
        }
    }

    /// The container does not exist (however deep the context).
    pub fn is_no_such_container(&self) -> bool {
        match self {
            Error::NoSuchContainer(_) => true,
            Error::Context { source, .. } => source.is_no_such_container(),
            _ => false,
        }
    }

    /// The policy's refusal behind this error, if it is one.
    pub fn refusal(&self) -> Option<&crate::policy::Refusal> {
        match self {
            Error::Refused(r) => Some(r),
            Error::Context { source, .. } => source.refusal(),
            _ => None,
        }
    }

    /// Shorthand for a failed call.
    pub fn sys(call: impl Into<String>, errno: Errno) -> Error {
        Error::Sys(SysError {
            call: call.into(),
            errno,
        })
    }

    /// The container's program could not be run (here or in the child that reported it).
    pub fn is_program(&self) -> bool {
        match self {
            Error::Program { .. } | Error::Child { program: true, .. } => true,
            Error::Context { source, .. } => source.is_program(),
            _ => false,
        }
    }

    /// This error as the failure of the step `what` (as [`Context::with_context`]).
    pub fn within(self, what: String) -> Error {
        Error::Context {
            what,
            source: Box::new(self),
        }
    }
}

/// Adds the step that failed to an error.
pub trait Context<T> {
    /// Wraps the error with `what` (evaluated only on failure).
    fn with_context<F: FnOnce() -> String>(self, what: F) -> Result<T>;
}

impl<T, E: Into<Error>> Context<T> for std::result::Result<T, E> {
    fn with_context<F: FnOnce() -> String>(self, what: F) -> Result<T> {
        self.map_err(|e| Error::Context {
            what: what(),
            source: Box::new(e.into()),
        })
    }
}

/// berth's result.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Turns a `std::io::Error` from a std call on `path` into an [`Error`] that names both.
pub fn io_err(call: &str, path: &std::path::Path, e: std::io::Error) -> Error {
    Error::sys(
        format!("{call}({:?})", path),
        Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO)),
    )
}
