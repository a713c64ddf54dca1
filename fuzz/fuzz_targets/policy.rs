//! A host mount policy file → its parser and validation.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = berth::policy::Policy::parse(data, std::path::Path::new("policy.json"));
});
