//! OCI image layouts for tests: blobs by digest, tar entries, gzip, a layout with its index,
//! manifest and config.

use serde_json::json;
use sha2::{Digest, Sha256};
use std::path::Path;

/// Writes `bytes` as a blob; returns its digest.
pub fn blob(layout: &Path, bytes: &[u8]) -> String {
    let hex: String = Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let dir = layout.join("blobs/sha256");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join(&hex), bytes).unwrap();
    format!("sha256:{hex}")
}

/// A regular file (0644) or, with no data and a name ending in '/', a directory (0755).
pub fn entry(tar: &mut tar::Builder<Vec<u8>>, name: &str, data: &[u8]) {
    let dir = name.ends_with('/');
    let mut h = tar::Header::new_gnu();
    h.set_mode(if dir { 0o755 } else { 0o644 });
    h.set_size(data.len() as u64);
    h.set_entry_type(if dir {
        tar::EntryType::Directory
    } else {
        tar::EntryType::Regular
    });
    tar.append_data(&mut h, name, data).unwrap();
}

/// gzip of `bytes`.
pub fn gzip(bytes: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(bytes).unwrap();
    e.finish().unwrap()
}

/// An OCI layout at `layout` with these layers (gzip when `.1`), the config and a tag.
pub fn write_layout(
    layout: &Path,
    layers: &[(Vec<u8>, bool)],
    config: serde_json::Value,
    tag: &str,
) {
    std::fs::create_dir_all(layout).unwrap();
    std::fs::write(
        layout.join("oci-layout"),
        r#"{"imageLayoutVersion":"1.0.0"}"#,
    )
    .unwrap();
    let descs: Vec<_> = layers
        .iter()
        .map(|(bytes, gz)| {
            let (data, mt) = if *gz {
                (gzip(bytes), "application/vnd.oci.image.layer.v1.tar+gzip")
            } else {
                (bytes.clone(), "application/vnd.oci.image.layer.v1.tar")
            };
            json!({"mediaType": mt, "digest": blob(layout, &data), "size": data.len()})
        })
        .collect();
    let cfg = serde_json::to_vec(
        &json!({"architecture": "amd64", "os": "linux", "config": config,
        "rootfs": {"type": "layers", "diff_ids": []}}),
    )
    .unwrap();
    let manifest = serde_json::to_vec(&json!({"schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                   "digest": blob(layout, &cfg), "size": cfg.len()},
        "layers": descs}))
    .unwrap();
    let index = json!({"schemaVersion": 2, "manifests": [{
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "digest": blob(layout, &manifest), "size": manifest.len(),
        "annotations": {"org.opencontainers.image.ref.name": tag}}]});
    std::fs::write(layout.join("index.json"), index.to_string()).unwrap();
}
