//! Confinement layers beyond namespaces and capabilities. Each layer the spec asks for is enforced or
//! refused with a clear error; none is skipped silently.

pub mod apparmor;
pub mod caps;
pub mod exe;
pub mod landlock;
pub mod seccomp;
pub mod selinux;
