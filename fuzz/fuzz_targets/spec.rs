//! config.json bytes → the parser, the validator and the mount plan (never a panic).
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Ok(spec) = berth::spec::parse(data)
        && let Ok(vs) = berth::spec::ValidSpec::new(spec, std::path::Path::new("/bundle"))
    {
        let _ = berth::mount::plan::plan_for(&vs);
    }
});
