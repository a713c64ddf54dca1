//! A layer's tar stream → the unpacker, into a fresh directory on a tmpfs (run as root, as berth
//! unpacks images). Whatever the entries, nothing is written outside the directory: checked after
//! every input by looking for the canary beside it.
#![no_main]
use std::os::fd::AsFd;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let base = std::path::Path::new("/dev/shm/berth-fuzz-layer");
    let _ = std::fs::create_dir_all(base);
    let canary = base.join("canary");
    if !canary.exists() {
        std::fs::write(&canary, "canary").unwrap();
    }
    let dir = base.join(format!("l{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir(&dir).unwrap();
    let fd = std::fs::File::open(&dir).unwrap();
    let _ = berth::image::fuzzing::unpack_layer(data, fd.as_fd());
    drop(fd);
    let _ = std::fs::remove_dir_all(&dir);
    // Only the canary and the directories of this and other fuzzing processes are beside it.
    assert_eq!(std::fs::read(&canary).unwrap(), b"canary", "the canary was written");
    for e in std::fs::read_dir(base).unwrap().flatten() {
        let n = e.file_name();
        let n = n.to_string_lossy();
        assert!(n == "canary" || n.starts_with('l'), "an entry escaped the layer: {n}");
    }
});
