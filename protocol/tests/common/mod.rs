//! Shared plumbing for the test-vector suites: compare a freshly generated
//! vector file with the committed one in `docs/test-vectors/`, or rewrite it
//! when `UMBRA_REGENERATE_VECTORS=1` (only after a deliberate format change,
//! together with docs/PROTOCOL.md).

use std::path::PathBuf;

/// Where the committed vectors live, relative to the workspace root.
pub fn vector_path(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join("docs")
        .join("test-vectors")
        .join(name)
}

/// Asserts that `generated` equals the committed `docs/test-vectors/<name>`,
/// or rewrites the file when regeneration was asked for.
pub fn check_or_regenerate(name: &str, generated: &serde_json::Value) {
    let path = vector_path(name);
    let pretty = serde_json::to_string_pretty(generated).expect("vectors serialize") + "\n";
    if std::env::var_os("UMBRA_REGENERATE_VECTORS").is_some() {
        std::fs::write(&path, pretty).expect("write vector file");
        return;
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "missing {}: {e}; run with UMBRA_REGENERATE_VECTORS=1 once",
            path.display()
        )
    });
    let committed: serde_json::Value =
        serde_json::from_str(&committed).expect("committed vector file is JSON");
    assert_eq!(
        &committed, generated,
        "{name} no longer matches the code: a wire or crypto format changed"
    );
}

/// Lower-case hex, the encoding every vector file uses for bytes.
pub fn hex(bytes: impl AsRef<[u8]>) -> String {
    hex::encode(bytes)
}
