//! The attacker's helpers: a thread racing berth's path walks, and processes in namespaces of
//! their own for berth to join.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;

/// A thread that swaps two paths with `renameat2(RENAME_EXCHANGE)` as fast as it can. The swap is
/// berth's `sys::rename_exchange`, passed in: musl has no wrapper for the call, and the kit has no
/// unsafe code of its own.
#[derive(Debug)]
pub struct Swapper {
    stop: Arc<AtomicBool>,
    handle: JoinHandle<u64>,
}

impl Swapper {
    /// Starts swapping `a` and `b` with `exchange`.
    pub fn start<E: 'static>(
        a: PathBuf,
        b: PathBuf,
        exchange: fn(&Path, &Path) -> Result<(), E>,
    ) -> Swapper {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let handle = std::thread::spawn(move || {
            let mut n = 0u64;
            while !flag.load(Ordering::Relaxed) {
                if exchange(&a, &b).is_ok() {
                    n += 1;
                }
            }
            n
        });
        Swapper { stop, handle }
    }

    /// Stops the thread; returns how many swaps succeeded (a test asserts it is not 0, or the race
    /// never happened).
    pub fn stop(self) -> u64 {
        self.stop.store(true, Ordering::Relaxed);
        self.handle.join().expect("the swapper thread panicked")
    }
}

/// A process of the test's own in new namespaces (`unshare ARGS sleep 1000`), killed by pid and
/// reaped on drop.
#[derive(Debug)]
pub struct Sleeper(pub Child);

impl Sleeper {
    /// Starts it and waits until its `typ` namespace (as in /proc/<pid>/ns/) differs from ours.
    pub fn start(args: &[&str], typ: &str) -> Sleeper {
        let child = Command::new("unshare")
            .args(args)
            .args(["sleep", "1000"])
            .stdin(Stdio::null())
            .spawn()
            .expect("spawn unshare");
        let s = Sleeper(child);
        let ours = std::fs::read_link(format!("/proc/self/ns/{typ}")).unwrap();
        for _ in 0..500 {
            let theirs = std::fs::read_link(s.ns(typ)).unwrap_or_default();
            if theirs != ours && !theirs.as_os_str().is_empty() {
                return s;
            }
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        panic!("unshare {args:?} did not make a new {typ} namespace");
    }

    /// Its pid.
    pub fn pid(&self) -> u32 {
        self.0.id()
    }

    /// /proc/<pid>/ns/<typ>.
    pub fn ns(&self, typ: &str) -> String {
        format!("/proc/{}/ns/{typ}", self.pid())
    }
}

impl Drop for Sleeper {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
