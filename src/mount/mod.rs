//! OCI mounts: [`options`] is the one table of option strings, [`plan`] turns config.json's mounts into
//! [`plan::MountOp`]s without touching the system (unit-tested without root), and [`apply`] performs them
//! on file descriptors inside the container's mount namespace; [`copyup`] is `tmpcopyup`.

pub mod apply;
pub mod copyup;
pub mod idmap;
pub mod options;
pub mod plan;
