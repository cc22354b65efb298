// SPDX-License-Identifier: GPL-2.0

//! Generates fr1ctl's man pages (section 8: fr1ctl.8 and one page per verb,
//! fr1ctl-build.8, ...) and its bash, zsh and fish completions from the
//! clap definition in src/cli.rs, into `$OUT_DIR/assets`.
//!
//! `scripts/fr1ctl-build.sh` prints where that is; `make install` installs
//! them.

use std::env;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use clap::CommandFactory;
use clap_complete::Shell;
use clap_mangen::Man;

#[allow(dead_code)]
#[path = "src/cli.rs"]
mod cli;

fn main() -> io::Result<()> {
    println!("cargo::rerun-if-changed=src/cli.rs");
    let out = PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR")).join("assets");
    fs::create_dir_all(&out)?;
    let mut cmd = cli::Cli::command().disable_help_subcommand(true);
    cmd.build();
    man_pages(&cmd, &out)?;
    for shell in [Shell::Bash, Shell::Zsh, Shell::Fish] {
        // The help verb completes too.
        clap_complete::generate_to(shell, &mut cli::Cli::command(), "fr1ctl", &out)?;
    }
    Ok(())
}

/// `cmd`'s page and those of its verbs, as clap_mangen::generate_to writes
/// them but in section 8 (system administration).
fn man_pages(cmd: &clap::Command, out: &Path) -> io::Result<()> {
    Man::new(cmd.clone())
        .section("8")
        .source(concat!("fr1ctl ", env!("CARGO_PKG_VERSION")))
        .generate_to(out)?;
    for verb in cmd.get_subcommands() {
        man_pages(verb, out)?;
    }
    Ok(())
}
