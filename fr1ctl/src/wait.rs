// SPDX-License-Identifier: GPL-2.0

//! `fr1ctl wait`: the sync's progress until the array is in sync.

use std::io::IsTerminal;
use std::time::{Duration, Instant};

use indicatif::{BinaryBytes, FormattedDuration, ProgressBar, ProgressDrawTarget, ProgressStyle};
use rustix::io::Errno;

use crate::ioctl::Error;
use crate::report::{self, WaitJson};
use crate::sysfs::{self, StatusWatch, SyncSample};

/// Shows the progress bar while a sync is announced, then succeeds only if
/// every member is in sync. A member that failed, a recovery that stopped,
/// a frozen sync or a degraded array with nothing to recover is an error
/// naming the reason (exit status 1), and so is the timeout.
///
/// With `json`, stdout gets one object with the outcome (see
/// [`WaitJson`]) and the bar goes to stderr, if that is a terminal.
pub(crate) fn wait(array: &str, timeout: Duration, json: bool) -> Result<(), Error> {
    has_md_dir(array)?;
    let start = Instant::now();
    let mut view = View::new(json);
    let (last, timed_out) = follow(array, &mut view, start, timeout)?;
    let result = if timed_out {
        Outcome::TimedOut
    } else {
        match sysfs::not_in_sync(array) {
            None => Outcome::InSync,
            Some(why) => Outcome::NotInSync(why),
        }
    };
    view.end(matches!(result, Outcome::InSync));
    if json {
        let report = WaitJson {
            array,
            result: result.word(),
            reason: result.reason(),
            sync_action: &last.action,
            sync_completed: last.completed,
            elapsed_ms: start.elapsed(),
        };
        println!("{}", report::to_json(&report));
    }
    match result {
        Outcome::InSync => {
            if !json {
                println!("fr1ctl: {array}: in sync");
            }
            Ok(())
        }
        Outcome::NotInSync(why) => Err(Error::os(
            format!("{array} is not in sync: {why}"),
            Errno::IO,
            "fr1ctl detail shows each member; add, re-add or replace the member",
        )),
        Outcome::TimedOut => Err(Error::os(
            format!("{array}: still syncing after {timeout:?}"),
            Errno::TIMEDOUT,
            "check dmesg",
        )),
    }
}

/// ENODEV unless `array` has an md/ directory.
pub(crate) fn has_md_dir(array: &str) -> Result<(), Error> {
    match sysfs::read(array, "sync_action") {
        Some(_) => Ok(()),
        None => Err(Error::os(
            format!("{array} has no md/ directory"),
            Errno::NODEV,
            "is it an fr1 array?",
        )),
    }
}

/// Shows the announced sync's progress in `view` until none runs (`false`)
/// or `timeout` since `start` has passed (`true`), with the last sample.
/// ENODEV if the array goes away meanwhile.
pub(crate) fn follow(
    array: &str,
    view: &mut View,
    start: Instant,
    timeout: Duration,
) -> Result<(SyncSample, bool), Error> {
    // Without a status file (not expected) fall back to polling sysfs.
    let mut watch = StatusWatch::open().ok();
    loop {
        // Re-arm before looking, so an event in between is not missed.
        if let Some(w) = watch.as_mut() {
            w.arm();
        }
        let Some(sample) = SyncSample::read(array) else {
            view.end(false);
            return Err(Error::os(
                format!("{array} went away while waiting"),
                Errno::NODEV,
                "was it stopped?",
            ));
        };
        if !sample.is_running() {
            return Ok((sample, false));
        }
        view.show(&sample);
        if start.elapsed() > timeout {
            return Ok((sample, true));
        }
        // Woken by the array's events (md's mdstat poll); the timeout only
        // refreshes the progress bar.
        match watch.as_mut() {
            Some(w) => {
                w.wait(view.tick());
            }
            None => std::thread::sleep(Duration::from_millis(200)),
        }
    }
}

/// How a wait ended.
enum Outcome {
    /// Every member in sync.
    InSync,
    /// No sync runs and the array is not in sync, for this reason.
    NotInSync(String),
    /// Still syncing at the timeout.
    TimedOut,
}

impl Outcome {
    /// `wait --json`'s `result`.
    fn word(&self) -> &'static str {
        match self {
            Outcome::InSync => "in_sync",
            Outcome::NotInSync(_) => "not_in_sync",
            Outcome::TimedOut => "timed_out",
        }
    }

    fn reason(&self) -> Option<&str> {
        match self {
            Outcome::NotInSync(why) => Some(why),
            _ => None,
        }
    }
}

/// How the progress is shown.
pub(crate) enum View {
    /// An indicatif bar, on a terminal.
    Bar(ProgressBar),
    /// md's progress line, printed on stdout whenever it changes (stdout is
    /// not a terminal: a log, a pipe, a test's capture).
    Lines { last: Option<String> },
}

impl View {
    /// On stdout: a bar if it is a terminal, lines otherwise. With `json`,
    /// stdout is for the object: a bar on stderr, which hides itself when
    /// stderr is not a terminal.
    pub(crate) fn new(json: bool) -> View {
        if json {
            View::bar(ProgressDrawTarget::stderr())
        } else if std::io::stdout().is_terminal() {
            View::bar(ProgressDrawTarget::stdout())
        } else {
            View::Lines { last: None }
        }
    }

    fn bar(target: ProgressDrawTarget) -> View {
        View::Bar(ProgressBar::with_draw_target(None, target))
    }

    /// How long to sleep between two looks when nothing happens.
    fn tick(&self) -> Duration {
        Duration::from_millis(match self {
            View::Bar(_) => 200,
            View::Lines { .. } => 1000,
        })
    }

    fn show(&mut self, s: &SyncSample) {
        match self {
            View::Lines { last } => {
                let line = s.plain_line();
                if last.as_ref() != Some(&line) {
                    println!("{line}");
                    *last = Some(line);
                }
            }
            View::Bar(bar) => {
                bar.set_prefix(s.action.clone());
                bar.set_message(bar_message(s));
                match s.completed {
                    Some((done, total)) => {
                        if bar.length() != Some(total * 512) {
                            // The first look at this sync.
                            bar.set_style(counted_style());
                            bar.set_length(total * 512);
                        }
                        bar.set_position(done * 512);
                    }
                    None => {
                        if bar.length().is_some() {
                            bar.unset_length();
                        }
                        bar.set_style(delayed_style());
                        bar.tick();
                    }
                }
            }
        }
    }

    /// Leaves the bar on the screen: full if the array is in sync, as it
    /// stood otherwise.
    pub(crate) fn end(&mut self, in_sync: bool) {
        if let View::Bar(bar) = self {
            if in_sync {
                if let Some(len) = bar.length() {
                    bar.set_position(len);
                    bar.set_message("in sync");
                }
                bar.finish();
            } else {
                bar.abandon();
            }
        }
    }
}

/// The bar while the sync runs, as wide as the terminal allows: action, bar,
/// percentage and the sample's message (what is left, md's rate, the time
/// left).
fn counted_style() -> ProgressStyle {
    ProgressStyle::with_template("{prefix:>7} [{wide_bar}] {percent:>3}% {msg}")
        .expect("a valid template")
        .progress_chars("=> ")
}

/// Before the sync thread has counted the dirty blocks.
fn delayed_style() -> ProgressStyle {
    ProgressStyle::with_template("{prefix:>7} {spinner} {msg}").expect("a valid template")
}

/// The bar's message: the dirty bytes left, md's rate and the time left at
/// that rate.
fn bar_message(s: &SyncSample) -> String {
    let Some(left) = s.left_bytes() else {
        return "DELAYED: counting the dirty blocks".into();
    };
    let mut m = format!("{} left", BinaryBytes(left));
    if s.speed_kib > 0 {
        m += &format!(
            ", {}/s, ETA {}",
            BinaryBytes(s.speed_kib * 1024),
            FormattedDuration(s.eta().unwrap_or_default())
        );
    }
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bar_messages() {
        let s = |completed, speed_kib| SyncSample {
            action: "recover".into(),
            completed,
            speed_kib,
        };
        assert_eq!(
            bar_message(&s(Some((2048, 6144)), 1024)),
            "2.00 MiB left, 1.00 MiB/s, ETA 00:00:02"
        );
        assert_eq!(bar_message(&s(Some((0, 6144)), 0)), "3.00 MiB left");
        assert_eq!(
            bar_message(&s(None, 0)),
            "DELAYED: counting the dirty blocks"
        );
    }

    /// The bar as a terminal shows it: delayed, running, in sync.
    #[test]
    fn bar_on_a_terminal() {
        let term = indicatif::InMemoryTerm::new(4, 80);
        let mut view = View::bar(ProgressDrawTarget::term_like(Box::new(term.clone())));
        let mut sample = SyncSample {
            action: "recover".into(),
            completed: None,
            speed_kib: 0,
        };
        view.show(&sample);
        let screen = term.contents();
        assert!(screen.contains("recover"), "{screen}");
        assert!(
            screen.contains("DELAYED: counting the dirty blocks"),
            "{screen}"
        );
        sample.completed = Some((2048, 8192));
        sample.speed_kib = 1024;
        view.show(&sample);
        let screen = term.contents();
        assert_eq!(
            screen,
            "recover [======>                  ]  25% 3.00 MiB left, 1.00 MiB/s, ETA 00:00:03"
        );
        view.end(true);
        let screen = term.contents();
        assert!(screen.ends_with("] 100% in sync"), "{screen}");
    }
}
