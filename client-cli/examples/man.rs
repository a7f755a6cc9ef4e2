//! Writes the `umbra` man pages, generated from the binary's own clap
//! definitions: `umbra.1` plus one page per subcommand (`umbra-send.1`, ...).
//! For packagers:
//!
//! ```sh
//! cargo run --release -p umbra-cli --example man -- target/man
//! install -Dm644 -t /usr/share/man/man1 target/man/*.1
//! ```
//!
//! An example rather than a build script, so ordinary builds never pay for it.
//!
//! Must never: describe a command line other than the shipped one (it
//! compiles the binary's `src/cli/` itself), or write outside the given
//! directory.

use std::path::PathBuf;

use anyhow::Context;
use clap::CommandFactory;

// Items only the binary uses (constants, helpers, their re-exports) are
// unused here.
#[allow(dead_code, unused_imports)]
#[path = "../src/cli/mod.rs"]
mod cli;

fn main() -> anyhow::Result<()> {
    let out: PathBuf = std::env::args_os()
        .nth(1)
        .map(PathBuf::from)
        .context("usage: man OUT_DIR (the directory receives umbra.1 and umbra-*.1)")?;
    std::fs::create_dir_all(&out).with_context(|| format!("cannot create {}", out.display()))?;
    clap_mangen::generate_to(cli::Cli::command(), &out)
        .with_context(|| format!("cannot write man pages to {}", out.display()))?;
    println!("man pages written to {}", out.display());
    Ok(())
}
