#!/bin/sh
# Makes sure the Rust toolchain can build berth: cargo on PATH and the x86_64-unknown-linux-musl target
# (.cargo/config.toml builds berth for musl, statically linked). Sourced or run by the other scripts.
set -eu
command -v cargo >/dev/null || { echo "berth: needs a Rust toolchain (cargo, rustup) on PATH" >&2; exit 1; }
if ! rustup target list --installed 2>/dev/null | grep -qx x86_64-unknown-linux-musl; then
    rustup target add x86_64-unknown-linux-musl
fi
