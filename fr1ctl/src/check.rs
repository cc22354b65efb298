// SPDX-License-Identifier: GPL-2.0

//! `fr1ctl check`: md's check (or repair), and where the legs differ.

use std::time::{Duration, Instant};

use rustix::io::Errno;

use crate::ioctl::Error;
use crate::report::{self, CheckJson, RangeJson};
use crate::sysfs::{self, MismatchRange};
use crate::wait::{self, View};

/// Starts a check (`repair`: a repair) through md/sync_action, follows it
/// as `wait` does, then reports md's mismatch_cnt and md/fr1_mismatches.
///
/// A check that found ranges that differ exits 1 (EUCLEAN, the errno of
/// data found inconsistent) after listing them; so does the timeout, which
/// leaves the check running. With `json`, stdout gets one object (see
/// [`CheckJson`]) and the progress goes to stderr, if that is a terminal.
pub(crate) fn check(array: &str, timeout: Duration, repair: bool, json: bool) -> Result<(), Error> {
    wait::has_md_dir(array)?;
    let action = if repair { "repair" } else { "check" };
    std::fs::write(format!("{}/sync_action", sysfs::md_dir(array)), action).map_err(|e| {
        Error::io(
            format!("{array}: cannot start a {action}"),
            &e,
            "EBUSY: a sync runs or a member needs recovery (fr1ctl wait first); \
             EINVAL: fewer than two members are in sync",
        )
    })?;
    let start = Instant::now();
    let mut view = View::new(json);
    let (_, timed_out) = wait::follow(array, &mut view, start, timeout)?;
    view.end(!timed_out);
    let mismatch_cnt = sysfs::read_u64(array, "mismatch_cnt");
    let (ranges, unlisted) = sysfs::read(array, "fr1_mismatches")
        .and_then(|t| sysfs::parse_mismatches(&t))
        .unwrap_or_default();
    let differ = mismatch_cnt.unwrap_or(0) > 0;
    let result = match (timed_out, differ, repair) {
        (true, ..) => "timed_out",
        (false, false, _) => "same",
        (false, true, true) => "repaired",
        (false, true, false) => "differ",
    };
    let names = sysfs::slot_names(array);
    let name = |slot: u32| {
        names
            .iter()
            .find(|(s, _)| *s == slot)
            .map(|(_, n)| n.clone())
    };
    if json {
        let report = CheckJson {
            array,
            action,
            result,
            mismatch_cnt,
            ranges: ranges.iter().map(|r| range_json(r, &name)).collect(),
            unlisted_sectors: unlisted,
            elapsed_ms: start.elapsed(),
        };
        println!("{}", report::to_json(&report));
    } else if !timed_out {
        print_text(array, action, mismatch_cnt, &ranges, unlisted, &name);
    }
    match result {
        "timed_out" => Err(Error::os(
            format!("{array}: the {action} still runs after {timeout:?}"),
            Errno::TIMEDOUT,
            "it goes on; write idle to md/sync_action to stop it",
        )),
        "differ" => Err(Error::os(
            format!(
                "{array}: the legs differ in {} sectors",
                mismatch_cnt.unwrap_or(0)
            ),
            Errno::UCLEAN,
            "fr1ctl repair-range --from PRIMARY each range, or fr1ctl check --repair",
        )),
        _ => Ok(()),
    }
}

fn range_json(r: &MismatchRange, name: &impl Fn(u32) -> Option<String>) -> RangeJson {
    RangeJson {
        sector: r.sector,
        sectors: r.sectors,
        offset: r.sector * 512,
        length: r.sectors * 512,
        slot: r.slot,
        device: name(r.slot),
        primary: r.primary,
        primary_device: name(r.primary),
    }
}

fn print_text(
    array: &str,
    action: &str,
    mismatch_cnt: Option<u64>,
    ranges: &[MismatchRange],
    unlisted: u64,
    name: &impl Fn(u32) -> Option<String>,
) {
    let cnt = mismatch_cnt.map_or("unknown".into(), |n| n.to_string());
    println!("fr1ctl: {array}: {action} done: mismatch_cnt {cnt}");
    let dev = |slot| name(slot).unwrap_or_else(|| "gone".into());
    for r in ranges {
        println!(
            "  slot {} ({}) differs from slot {} ({}) at sector {}, {} sectors \
             (--offset {} --length {})",
            r.slot,
            dev(r.slot),
            r.primary,
            dev(r.primary),
            r.sector,
            r.sectors,
            r.sector * 512,
            r.sectors * 512
        );
    }
    if unlisted > 0 {
        println!("  and {unlisted} more sectors not listed (md/fr1_mismatches is full)");
    }
}
