//! Shared plumbing for the test-vector suites: compare a freshly generated
//! vector file with the committed one in `docs/test-vectors/`, or rewrite it
//! on explicit request.
//!
//! Modes, chosen by the environment variable `UMBRA_REGENERATE_VECTORS`:
//!
//! - unset: compare. The test passes only if the generated vectors equal the
//!   committed file.
//! - exactly `1`: regenerate. The file is rewritten and the test then
//!   **fails** on purpose, naming the file and whether its content changed,
//!   so a regeneration run can never be mistaken for (or pass as) a check.
//!   Review `git diff docs/test-vectors/`, update docs/PROTOCOL.md in the same
//!   commit, and run the tests again without the variable to see them pass.
//! - any other value (including `0` or empty): the test fails with an error
//!   saying so, because a typo must not silently pick either mode.
//!
//! Must never: rewrite a vector file unless asked with exactly
//! `UMBRA_REGENERATE_VECTORS=1`, or pass in a run that rewrote one.

use std::path::PathBuf;

/// The variable that asks for regeneration.
pub const REGENERATE_VAR: &str = "UMBRA_REGENERATE_VECTORS";

/// Where the committed vectors live, relative to the workspace root.
pub fn vector_path(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join("docs")
        .join("test-vectors")
        .join(name)
}

/// What the environment asks for.
#[derive(Debug, PartialEq, Eq)]
pub enum Mode {
    Compare,
    Regenerate,
}

/// Reads [`REGENERATE_VAR`]: unset is compare, `1` is regenerate, anything
/// else is an error naming the value.
pub fn mode_from(value: Option<std::ffi::OsString>) -> Result<Mode, String> {
    match value {
        None => Ok(Mode::Compare),
        Some(v) if v == "1" => Ok(Mode::Regenerate),
        Some(v) => Err(format!(
            "{REGENERATE_VAR}={v:?} is not understood: set it to exactly 1 to rewrite \
             docs/test-vectors/, or unset it to compare"
        )),
    }
}

/// Asserts that `generated` equals the committed `docs/test-vectors/<name>`,
/// or (with `UMBRA_REGENERATE_VECTORS=1`) rewrites the file and fails.
#[allow(dead_code)] // the spec suites read files but never write them
pub fn check_or_regenerate(name: &str, generated: &serde_json::Value) {
    let path = vector_path(name);
    let pretty = serde_json::to_string_pretty(generated).expect("vectors serialize") + "\n";
    let mode = mode_from(std::env::var_os(REGENERATE_VAR)).unwrap_or_else(|e| panic!("{e}"));
    if mode == Mode::Regenerate {
        let changed = std::fs::read_to_string(&path).ok().as_deref() != Some(pretty.as_str());
        std::fs::write(&path, pretty).expect("write vector file");
        panic!(
            "{REGENERATE_VAR}=1: rewrote {} ({}); this run checked nothing. Review \
             `git diff docs/test-vectors/`, then run again without {REGENERATE_VAR}",
            path.display(),
            if changed {
                "content changed"
            } else {
                "content unchanged"
            }
        );
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "missing {}: {e}; run with {REGENERATE_VAR}=1 once",
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

/// Reads a committed vector file as JSON (for suites that check the file
/// itself against values rebuilt from the spec).
#[allow(dead_code)] // not every suite that includes this module reads files
pub fn committed(name: &str) -> serde_json::Value {
    let path = vector_path(name);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("missing {}: {e}", path.display()));
    serde_json::from_str(&text).expect("committed vector file is JSON")
}

/// Lower-case hex, the encoding every vector file uses for bytes.
#[allow(dead_code)] // not every suite that includes this module encodes hex
pub fn hex(bytes: impl AsRef<[u8]>) -> String {
    hex::encode(bytes)
}

/// The name a vector file gives a wire error (the variant, without its
/// fields), for the wire and content suites.
#[allow(dead_code)] // not every suite that includes this module names errors
pub fn wire_error_name(error: &umbra_protocol::wire::WireError) -> &'static str {
    use umbra_protocol::wire::WireError;
    match error {
        WireError::Empty => "Empty",
        WireError::TooLarge { .. } => "TooLarge",
        WireError::UnsupportedVersion { .. } => "UnsupportedVersion",
        WireError::PeerRejectedVersion { .. } => "PeerRejectedVersion",
        WireError::Malformed(_) => "Malformed",
        WireError::TrailingBytes { .. } => "TrailingBytes",
        WireError::NonCanonical => "NonCanonical",
        WireError::Encode(_) => "Encode",
    }
}

#[cfg(test)]
mod mode_tests {
    use super::{mode_from, Mode};

    #[test]
    fn only_an_explicit_one_regenerates() {
        assert_eq!(mode_from(None), Ok(Mode::Compare));
        assert_eq!(mode_from(Some("1".into())), Ok(Mode::Regenerate));
        for other in ["0", "", "true", "yes", " 1", "2"] {
            assert!(mode_from(Some(other.into())).is_err(), "{other:?}");
        }
    }
}
