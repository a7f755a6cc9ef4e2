//! The crate's layout rules, checked on its sources: no file under `src/`
//! over [`MAX_LINES`] lines, and no `RecordKind::` outside `src/records/`
//! and `src/store/` (every other module reads and writes the store through
//! the typed records layer, so a slot can never be paired with the wrong
//! kind).
//!
//! Must never: pass with an over-long file or a hand-built slot that is not
//! on the explicit allow-list below, each entry with its reason.

use std::path::{Path, PathBuf};

/// The most lines a source file may have.
const MAX_LINES: usize = 600;

/// Files allowed over [`MAX_LINES`], each with the reason. Empty: none has one.
const LONG_FILE_ALLOWED: &[(&str, &str)] = &[];

fn sources(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("read src/") {
        let path = entry.expect("dir entry").path();
        if path.is_dir() {
            sources(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

fn src() -> (PathBuf, Vec<PathBuf>) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    sources(&root, &mut files);
    files.sort();
    assert!(files.len() > 10, "found the crate's sources");
    (root, files)
}

fn relative(root: &Path, path: &Path) -> String {
    path.strip_prefix(root)
        .expect("under src/")
        .to_string_lossy()
        .replace('\\', "/")
}

#[test]
fn no_source_file_is_over_600_lines() {
    let (root, files) = src();
    let too_long: Vec<String> = files
        .iter()
        .filter_map(|path| {
            let name = relative(&root, path);
            let lines = std::fs::read_to_string(path).expect("read").lines().count();
            let allowed = LONG_FILE_ALLOWED.iter().any(|(f, _)| *f == name);
            (lines > MAX_LINES && !allowed).then(|| format!("src/{name} has {lines} lines"))
        })
        .collect();
    assert!(
        too_long.is_empty(),
        "split these files (at most {MAX_LINES} lines each): {too_long:?}"
    );
}

#[test]
fn record_kinds_are_named_only_in_the_records_layer_and_the_store() {
    let (root, files) = src();
    let outside: Vec<String> = files
        .iter()
        .filter_map(|path| {
            let name = relative(&root, path);
            if name.starts_with("records/") || name.starts_with("store/") {
                return None;
            }
            let text = std::fs::read_to_string(path).expect("read");
            let line = text.lines().position(|l| l.contains("RecordKind::"))?;
            Some(format!("src/{name}:{}", line + 1))
        })
        .collect();
    assert!(
        outside.is_empty(),
        "use a records:: slot instead of a RecordKind at: {outside:?}"
    );
}

/// The records each manager type alone reads and writes
/// (docs/ARCHITECTURE.md, "Managers as types"): the records module of the
/// kind, and the files that may name it. A test module of a manager
/// (`timeline/tests.rs`) counts as the manager.
const MANAGED_RECORDS: &[(&str, &[&str])] = &[
    ("records::history::", &["timeline.rs", "timeline/"]),
    ("records::session::", &["sessions.rs", "sessions/"]),
    ("records::prekeys::", &["prekeys.rs", "prekeys/"]),
    ("records::seen::", &["markers.rs", "markers/"]),
    ("records::devices::", &["devices/"]),
];

#[test]
fn managed_records_are_named_only_by_their_manager() {
    let (root, files) = src();
    let mut outside = Vec::new();
    for path in &files {
        let name = relative(&root, path);
        if name.starts_with("records/") {
            continue;
        }
        let text = std::fs::read_to_string(path).expect("read");
        for (records, owners) in MANAGED_RECORDS {
            if owners.iter().any(|owner| name.starts_with(owner)) {
                continue;
            }
            if let Some(line) = text.lines().position(|l| l.contains(records)) {
                outside.push(format!("src/{name}:{} names {records}", line + 1));
            }
        }
    }
    assert!(
        outside.is_empty(),
        "go through the manager (engine.timeline, engine.sessions, engine.prekeys, engine.markers, engine.devices): {outside:?}"
    );
}
