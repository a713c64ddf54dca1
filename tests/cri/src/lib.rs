//! berth-cri-tests: the CRI scenarios live in tests/cri.rs; this crate has no library code.
