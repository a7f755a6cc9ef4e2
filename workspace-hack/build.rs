//! Empty on purpose: cargo resolves a package's `[build-dependencies]` (here the
//! host-side crates whose features must be unified, such as `syn`) only when
//! the package has a build script.
//!
//! Must never: do work. It compiles once and, with the line below, never reruns.

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
}
