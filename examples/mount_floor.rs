//! The kernel's floor for one bind volume, as `scripts/bench.sh mounts` compares berth with it: for
//! each of N distinct source directories (ROOT bound onto itself first, as a rootfs is), the fd-based
//! sequence and nothing else: mkdirat of the destinations that do not exist yet (every other one),
//! openat2 of the destination inside the root, open_tree of the source, mount_setattr (every other one
//! read-only), move_mount, and the two closes. Prints microseconds per mount.
//!
//!   unshare -m --propagation private mount_floor ROOT SRC N
//!
//! ROOT holds mnt/pI for even I below N (mnt/cI are made); SRC holds s0 .. s{N-1}. Run it in a private mount namespace: its
//! mounts go away with it.

use berth::sys::{self, MountAttr};
use std::path::Path;
use std::time::Instant;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() != 4 {
        eprintln!("usage: mount_floor ROOT SRC N");
        std::process::exit(2);
    }
    let n: usize = args[3].parse().unwrap_or(0);
    // ROOT bound onto itself first, as a container's rootfs is: the volumes become submounts of that
    // mount, not of the sources' filesystem (whose every recursive clone would then walk them all).
    let dir = sys::openat2(
        None,
        Path::new(&args[1]),
        libc::O_PATH | libc::O_DIRECTORY,
        0,
        0,
    )
    .unwrap_or_else(|e| fail(&e.to_string()));
    let bound = sys::open_tree(&dir, sys::OPEN_TREE_CLONE).unwrap_or_else(|e| fail(&e.to_string()));
    sys::move_mount(&bound, &dir).unwrap_or_else(|e| fail(&e.to_string()));
    let root = sys::openat2(
        None,
        Path::new(&args[1]),
        libc::O_PATH | libc::O_DIRECTORY,
        0,
        0,
    )
    .unwrap_or_else(|e| fail(&e.to_string()));
    let ro = MountAttr {
        attr_set: sys::MOUNT_ATTR_RDONLY,
        ..Default::default()
    };
    let mnt = sys::openat2(
        Some(std::os::fd::AsFd::as_fd(&root)),
        Path::new("mnt"),
        libc::O_PATH,
        0,
        0,
    )
    .unwrap_or_else(|e| fail(&e.to_string()));
    let start = Instant::now();
    for i in 0..n {
        // Even destinations exist (mnt/pI), odd ones are made (mnt/cI), as in the bench's bundle.
        let name = if i % 2 == 0 {
            format!("p{i}")
        } else {
            let c = format!("c{i}");
            match nix::sys::stat::mkdirat(
                Some(std::os::fd::AsRawFd::as_raw_fd(&mnt)),
                c.as_str(),
                nix::sys::stat::Mode::from_bits_truncate(0o755),
            ) {
                Ok(()) | Err(nix::errno::Errno::EEXIST) => {}
                Err(e) => fail(&format!("mkdirat {c}: {e}")),
            }
            c
        };
        let dest = sys::openat2(
            Some(std::os::fd::AsFd::as_fd(&root)),
            &Path::new("mnt").join(&name),
            libc::O_PATH,
            0,
            sys::RESOLVE_IN_ROOT | sys::RESOLVE_NO_MAGICLINKS,
        )
        .unwrap_or_else(|e| fail(&e.to_string()));
        let tree = sys::open_tree_path(
            &Path::new(&args[2]).join(format!("s{i}")),
            sys::OPEN_TREE_CLONE | libc::AT_RECURSIVE as u32,
        )
        .unwrap_or_else(|e| fail(&e.to_string()));
        if i % 2 == 1 {
            sys::mount_setattr(&tree, false, &ro).unwrap_or_else(|e| fail(&e.to_string()));
        }
        sys::move_mount(&tree, &dest).unwrap_or_else(|e| fail(&e.to_string()));
    }
    let us = start.elapsed().as_secs_f64() * 1e6 / n.max(1) as f64;
    println!("{us:.2}");
}

fn fail(msg: &str) -> ! {
    eprintln!("mount_floor: {msg}");
    std::process::exit(1)
}
