//! The container process: [`spawn`] clones the init in its namespaces and drives it from the parent,
//! [`init`] is the recipe it follows inside, [`sync`] is how the two talk, [`exec`] puts one more
//! process into a running container, [`supervise`] waits for a process berth stays with (signals,
//! terminal), and [`ChildGuard`] makes sure no child is left behind on an error.

mod attrs;
pub mod exec;
mod guard;
pub mod init;
pub mod spawn;
pub mod supervise;
pub mod sync;

pub use guard::ChildGuard;
