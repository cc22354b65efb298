// SPDX-License-Identifier: GPL-2.0

//! fr1ctl: builds and manages fr1 arrays through md's ioctl ABI
//! (include/uapi/linux/raid/md_u.h), like mdadm's build mode and the
//! raidtools of old (`setfaulty`, `hotadd`, `hotremove`).

mod cli;
mod dev;
mod ioctl;
mod logic;
mod report;
mod sysfs;

use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match cli::parse(&args).and_then(|cmd| cli::run(&cmd)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("fr1ctl: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}
