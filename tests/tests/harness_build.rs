//! The harness builds the binaries the way a build from the shell does, so
//! `cargo test --workspace`, `cargo build` and the harness's own `cargo
//! build` share one set of artifacts and nothing is compiled twice.
//!
//! Must never: pass because the second build happened to run in the same
//! environment as the first; it deliberately strips every cargo-set
//! variable (a wider set than the harness strips) before rebuilding.

use std::path::Path;
use std::process::Command;

/// Cargo configuration variables a user may set in the shell; everything
/// else named `CARGO_*` in a test process was set by cargo for the test.
fn is_user_cargo_config(name: &str) -> bool {
    const KEEP: &[&str] = &[
        "CARGO",
        "CARGO_HOME",
        "CARGO_TARGET_DIR",
        "CARGO_INCREMENTAL",
        "CARGO_CACHE_RUSTC_INFO",
    ];
    const KEEP_PREFIXES: &[&str] = &[
        "CARGO_BUILD_",
        "CARGO_PROFILE_",
        "CARGO_TERM_",
        "CARGO_NET_",
        "CARGO_HTTP_",
        "CARGO_REGISTRY_",
        "CARGO_REGISTRIES_",
    ];
    KEEP.contains(&name) || KEEP_PREFIXES.iter().any(|p| name.starts_with(p))
}

/// Third-party crates a `cargo build` of `bin` compiled instead of reusing.
fn recompiled_dependencies(package: &str, bin: &str) -> Vec<String> {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR")).join("../Cargo.toml");
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.arg("build")
        .arg("--message-format=json")
        .arg("--manifest-path")
        .arg(&manifest)
        .args(["--package", package, "--bin", bin]);
    for (name, _) in std::env::vars_os() {
        let Some(name) = name.to_str() else { continue };
        if name == "OUT_DIR" || (name.starts_with("CARGO_") && !is_user_cargo_config(name)) {
            cmd.env_remove(name);
        }
    }
    let out = cmd.output().expect("run cargo build");
    assert!(
        out.status.success(),
        "cargo build failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter(|m| m["reason"] == "compiler-artifact" && m["fresh"] == false)
        .filter_map(|m| m["package_id"].as_str().map(str::to_string))
        // Workspace crates may be rebuilt by edits in between; dependencies
        // may not.
        .filter(|id| id.starts_with("registry+"))
        .collect()
}

#[test]
fn a_shell_build_after_the_harness_build_compiles_no_dependency() {
    for (package, bin) in [("umbra-relay", "umbra-relay"), ("umbra-cli", "umbra")] {
        let path = umbra_e2e::binary(package, bin);
        assert!(path.is_file(), "{} was not built", path.display());
        let rebuilt = recompiled_dependencies(package, bin);
        assert!(
            rebuilt.is_empty(),
            "building {bin} from a clean environment after the harness built it \
             recompiled {rebuilt:?}: the harness builds in a different environment"
        );
    }
}

#[test]
fn cargo_set_variables_are_recognised() {
    for name in [
        "CARGO_MANIFEST_DIR",
        "CARGO_PKG_NAME",
        "CARGO_PKG_VERSION_MAJOR",
        "CARGO_CRATE_NAME",
        "OUT_DIR",
    ] {
        assert!(umbra_e2e::is_set_by_cargo_for_tests(name), "{name}");
    }
    for name in [
        "CARGO",
        "CARGO_HOME",
        "CARGO_TARGET_DIR",
        "CARGO_PROFILE_DEV_DEBUG",
        "PATH",
    ] {
        assert!(!umbra_e2e::is_set_by_cargo_for_tests(name), "{name}");
    }
}
