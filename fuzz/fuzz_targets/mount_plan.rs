//! One OCI mount object (JSON) → the option table and the plan of that mount.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Ok(m) = serde_json::from_slice::<berth::spec::Mount>(data) {
        if let Ok(op) = berth::mount::plan::plan_one(0, &m, std::path::Path::new("/bundle")) {
            let _ = op.effective_top();
            let _ = op.label();
        }
        for o in &m.options {
            let _ = berth::mount::options::lookup(o);
        }
    }
});
