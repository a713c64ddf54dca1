//! berth: a small, fast, runc-compatible OCI container runtime whose volume mounts cannot be tricked.
//!
//! # Threat model
//! The container image and everything the container can write (its rootfs, and host directories shared
//! into it) are hostile: any path in them may be a symlink, a `..`, a magic link, a device node, or be
//! swapped for one of those while berth works (`renameat2(RENAME_EXCHANGE)` races, runc CVE-2021-30465
//! class). The bundle's config.json and the CLI are trusted to say *what* to do, not that the paths they
//! name are benign. berth therefore resolves every path inside the rootfs with `openat2(RESOLVE_IN_ROOT)`
//! from a handle it opened itself ([`resolve::Root`]) and mounts onto the resulting fds with the new mount
//! API, never by handing a path string to mount(2).
//!
//! # Shape
//! `cli` parses runc's command line, `spec` validates config.json, `mount::plan` turns it into a list of
//! mount operations without touching the system, `process` clones the container init and talks to it over
//! one socket, `process::init` is the recipe the init follows, `rootfs` and `mount::apply` do the mounts
//! on fds, `state` keeps `<root>/<id>/state.json`. All `unsafe` code is in `sys`.
#![deny(unsafe_code)]
#![warn(missing_docs)]

pub mod cgroups;
pub mod cli;
pub mod error;
pub mod files;
pub mod front;
pub mod hooks;
pub mod image;
pub mod lifecycle;
pub mod logging;
pub mod mount;
pub mod netdev;
pub mod policy;
pub mod process;
pub mod resolve;
pub mod rootfs;
pub mod security;
pub mod spec;
pub mod state;
pub mod sys;

pub use error::{Error, ErrorKind, Result};
