//! The release binary's code layout. The functions a container's start, exec and delete run are
//! spread over all 2 MB of berth's text, and the kernel maps a binary's pages 64 KiB at a time
//! around each one first touched, so a start used to map nearly all of it (peak RSS 2.2 MiB).
//! Release builds are therefore linked with rust-lld (rustc's own, from its sysroot) and
//! `--symbol-ordering-file=scripts/hot-functions.txt`: the functions listed there, in that order,
//! first in `.text`, the rest after them. The list is written by `scripts/hot-order.sh`, which
//! traces which functions a start, an exec and a delete really run; a name it lists that a build
//! no longer has is skipped, and a function missing from it only lands among the cold ones, so a
//! stale list costs memory, never correctness. Debug builds and hosts whose toolchain has no
//! rust-lld link as before.
//!
//! `BERTH_LINK_MAP=FILE` also writes the linker's map (mangled names) to FILE, which
//! `scripts/hot-order.sh` reads to know each function's address.
use std::path::{Path, PathBuf};
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed=scripts/hot-functions.txt");
    println!("cargo:rerun-if-env-changed=BERTH_LINK_MAP");
    let release = std::env::var("PROFILE").is_ok_and(|p| p == "release");
    let linux = std::env::var("CARGO_CFG_TARGET_OS").is_ok_and(|os| os == "linux");
    if !release || !linux {
        return;
    }
    let Some(lld) = rust_lld_dir() else {
        println!(
            "cargo:warning=no rust-lld in the toolchain: berth is linked without its hot-code order"
        );
        return;
    };
    let manifest = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").unwrap_or_default());
    let order = manifest.join("scripts/hot-functions.txt");
    link_arg("-fuse-ld=lld");
    link_arg(&format!("-B{}", lld.display()));
    if order.is_file() {
        link_arg(&format!("-Wl,--symbol-ordering-file={}", order.display()));
        link_arg("-Wl,--no-warn-symbol-ordering");
    }
    if let Some(map) = std::env::var_os("BERTH_LINK_MAP") {
        link_arg(&format!("-Wl,-Map={}", Path::new(&map).display()));
        link_arg("-Wl,--no-demangle");
    }
}

fn link_arg(arg: &str) {
    println!("cargo:rustc-link-arg-bins={arg}");
}

/// rustc's `gcc-ld` directory (its `ld.lld` runs the toolchain's rust-lld), so that `cc
/// -fuse-ld=lld -B DIR` links with it; None where the toolchain has none.
fn rust_lld_dir() -> Option<PathBuf> {
    let rustc = std::env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    let out = Command::new(rustc)
        .args(["--print", "sysroot"])
        .output()
        .ok()?;
    let sysroot = PathBuf::from(String::from_utf8(out.stdout).ok()?.trim());
    let host = std::env::var("HOST").ok()?;
    let dir = sysroot.join("lib/rustlib").join(host).join("bin/gcc-ld");
    dir.join("ld.lld").is_file().then_some(dir)
}
