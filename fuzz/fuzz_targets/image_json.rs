//! An OCI image index, manifest or config, a reference, a digest, a PAX header.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    berth::image::fuzzing::json(data);
});
