//! Writes the `umbra-relay` man pages, generated from the relay's clap
//! definitions: `umbra-relay.1` plus one page per subcommand
//! (`umbra-relay-migrate.1`, ...). For packagers:
//!
//! ```sh
//! cargo run --release -p umbra-relay --example relay-man -- target/man
//! install -Dm644 -t /usr/share/man/man1 target/man/*.1
//! ```
//!
//! An example rather than a build script, so ordinary builds never pay for it.
//!
//! Must never: describe a command line other than the shipped one (it uses
//! the relay library's own `config::Cli`), or write outside the given
//! directory.

use std::path::PathBuf;

use anyhow::Context;
use clap::CommandFactory;

fn main() -> anyhow::Result<()> {
    let out: PathBuf = std::env::args_os()
        .nth(1)
        .map(PathBuf::from)
        .context("usage: man OUT_DIR (the directory receives umbra-relay.1 and umbra-relay-*.1)")?;
    std::fs::create_dir_all(&out).with_context(|| format!("cannot create {}", out.display()))?;
    clap_mangen::generate_to(umbra_relay::config::Cli::command(), &out)
        .with_context(|| format!("cannot write man pages to {}", out.display()))?;
    println!("man pages written to {}", out.display());
    Ok(())
}
