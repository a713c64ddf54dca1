//! The container process: [`spawn`] clones it in its namespaces and drives it from the parent,
//! [`init`] is the recipe it follows inside, [`sync`] is how the two talk.

pub mod exec;
pub mod init;
pub mod spawn;
pub mod sync;
