// SPDX-License-Identifier: GPL-2.0

//! fr1ctl: builds and manages fr1 arrays through md's ioctl ABI
//! (include/uapi/linux/raid/md_u.h), like mdadm's build mode and the
//! raidtools of old (`setfaulty`, `hotadd`, `hotremove`).

mod check;
mod cli;
mod command;
mod dev;
mod ioctl;
mod logic;
mod report;
mod sysfs;
mod verbs;
mod wait;

use std::process::ExitCode;

fn main() -> ExitCode {
    // A malformed command line: clap prints the usage (exit status 2).
    let cmd = command::parse(std::env::args_os()).unwrap_or_else(|e| e.exit());
    match verbs::run(&cmd) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("fr1ctl: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}
