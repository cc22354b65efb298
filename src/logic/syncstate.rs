// SPDX-License-Identifier: GPL-2.0

//! The sync state: which sync (recovery, initial resync, check, repair) the
//! array is in, as every interface reports it (md's `MD_RECOVERY_NEEDED` /
//! `MD_RECOVERY_RUNNING` folded into one word).
//!
//! The rule it exists for: from the moment a call that needs a sync (a hot
//! add, a not-clean RUN_ARRAY, a `sync_action` write) returns, the state says
//! "syncing" until the sync thread has finished **and** made its result
//! visible (the member in sync, `resync_pending` cleared). There is no
//! instant in between in which a reader (`/proc/mdstat`, `md/sync_action`,
//! `fr1ctl wait`, `mdadm --wait`) sees "idle" while a member still waits for
//! its copy: that instant is what let a wait return before the copy.
//!
//! Protocol. The word holds a mode (0: idle) and a generation; a
//! [`Ticket`] names one `begin`.
//!
//! - [`SyncState::begin`] runs on the control path, under the array's
//!   `config` mutex (process context), **before** the sync thread it
//!   announces is started and before an old thread is stopped: it installs
//!   the new mode and generation in one store, so the state goes from one
//!   sync to the next without passing through idle, and it voids every
//!   earlier ticket.
//! - [`SyncState::end`] is the sync thread's last act when it finishes by
//!   itself (not when asked to stop), after it published its result. It is
//!   a compare-and-swap from its own ticket to idle: if the control path
//!   began a newer sync meanwhile (and is about to stop this thread), the
//!   swap fails and the newer sync stays visible.
//! - [`SyncState::clear`] runs on the control path under `config` after it
//!   stopped the thread and starts none (freeze, a check set idle, stop).
//!
//! So: `begin`/`clear` never race each other (`config`); `end` races
//! `begin`/`clear` and loses to both, which is what each of them wants.
//! Readers never lock: one load gives a consistent mode. Nothing here runs in
//! interrupt context.

use core::sync::atomic::{AtomicU32, Ordering};

/// What the sync thread does (md's `sync_action` words).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub(crate) enum Mode {
    /// Copy the dirty blocks of recovering members (md's "recover").
    Recover = 1,
    /// Compare the in-sync members, count mismatches.
    Check = 2,
    /// Compare and overwrite mismatches with the first in-sync member.
    Repair = 3,
    /// The initial sync of a not-clean array: copy the first in-sync member
    /// over the others.
    Resync = 4,
}

impl Mode {
    /// The word md's `sync_action` shows for it.
    pub(crate) fn word(self) -> &'static str {
        match self {
            Mode::Recover => "recover",
            Mode::Check => "check",
            Mode::Repair => "repair",
            Mode::Resync => "resync",
        }
    }
}

impl TryFrom<u8> for Mode {
    type Error = ();

    fn try_from(v: u8) -> Result<Self, ()> {
        [Mode::Recover, Mode::Check, Mode::Repair, Mode::Resync]
            .into_iter()
            .find(|m| *m as u8 == v)
            .ok_or(())
    }
}

/// One `begin`: the sync thread it started ends with it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Ticket(u32);

/// Low byte: the mode (0: idle); the rest: the generation.
const MODE_MASK: u32 = 0xff;

/// The sync state word (see the module's protocol).
#[derive(Default)]
pub(crate) struct SyncState {
    word: AtomicU32,
}

impl SyncState {
    /// Announces a sync in `mode` (control path, under `config`).
    pub(crate) fn begin(&self, mode: Mode) -> Ticket {
        let generation = (self.word.load(Ordering::SeqCst) | MODE_MASK).wrapping_add(1);
        let word = generation | mode as u32;
        self.word.store(word, Ordering::SeqCst);
        Ticket(word)
    }

    /// The thread of `ticket` finished by itself: idle, unless a newer sync
    /// was begun. True if this made the state idle.
    pub(crate) fn end(&self, ticket: Ticket) -> bool {
        self.word
            .compare_exchange(
                ticket.0,
                ticket.0 & !MODE_MASK,
                Ordering::SeqCst,
                Ordering::SeqCst,
            )
            .is_ok()
    }

    /// No sync any more (control path, under `config`, thread stopped).
    /// True if a sync was announced.
    pub(crate) fn clear(&self) -> bool {
        let old = self.word.fetch_and(!MODE_MASK, Ordering::SeqCst);
        old & MODE_MASK != 0
    }

    /// The announced sync, if any.
    pub(crate) fn mode(&self) -> Option<Mode> {
        Mode::try_from((self.word.load(Ordering::SeqCst) & MODE_MASK) as u8).ok()
    }

    /// Whether `ticket` is still the announced sync.
    #[cfg(test)]
    pub(crate) fn is_current(&self, ticket: Ticket) -> bool {
        self.word.load(Ordering::SeqCst) == ticket.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicBool;
    use std::sync::{Arc, Mutex};
    use std::thread;

    #[test]
    fn words_round_trip() {
        for m in [Mode::Recover, Mode::Check, Mode::Repair, Mode::Resync] {
            assert_eq!(Mode::try_from(m as u8), Ok(m));
        }
        assert_eq!(Mode::try_from(0), Err(()));
        assert_eq!(Mode::try_from(5), Err(()));
        assert_eq!(Mode::Recover.word(), "recover");
    }

    #[test]
    fn sequential_protocol() {
        let s = SyncState::default();
        assert_eq!(s.mode(), None);
        let a = s.begin(Mode::Recover);
        assert_eq!(s.mode(), Some(Mode::Recover));
        // A newer begin voids the older ticket: its end changes nothing.
        let b = s.begin(Mode::Recover);
        assert_ne!(a, b);
        assert!(!s.end(a));
        assert_eq!(s.mode(), Some(Mode::Recover));
        assert!(s.is_current(b));
        assert!(s.end(b));
        assert_eq!(s.mode(), None);
        // clear after end: nothing announced.
        assert!(!s.clear());
        let c = s.begin(Mode::Check);
        assert!(s.clear());
        assert!(!s.end(c));
        assert_eq!(s.mode(), None);
    }

    #[test]
    fn generations_wrap_without_idle() {
        let s = SyncState {
            word: AtomicU32::new(!MODE_MASK),
        };
        let t = s.begin(Mode::Resync);
        assert_eq!(s.mode(), Some(Mode::Resync));
        assert!(s.end(t));
    }

    /// The model of the race the state exists for: a controller repeatedly
    /// attaches a "member" that needs a copy and starts a new sync thread,
    /// replacing the old one (begin, then stop); each thread copies and ends.
    /// A reader polling without locks must never see idle while a member
    /// still waits for its copy.
    #[test]
    fn never_idle_while_a_copy_is_owed() {
        struct Shared {
            state: SyncState,
            owed: std::sync::atomic::AtomicU32,
            config: Mutex<()>,
            done: AtomicBool,
        }
        let sh = Arc::new(Shared {
            state: SyncState::default(),
            owed: std::sync::atomic::AtomicU32::new(0),
            config: Mutex::new(()),
            done: AtomicBool::new(false),
        });
        let reader = {
            let sh = sh.clone();
            thread::spawn(move || {
                let mut seen = 0u64;
                while !sh.done.load(Ordering::SeqCst) {
                    // Read the mode first, then what is owed: a sync that is
                    // idle now with a copy owed now is the defect.
                    let owed_before = sh.owed.load(Ordering::SeqCst);
                    let idle = sh.state.mode().is_none();
                    let owed_after = sh.owed.load(Ordering::SeqCst);
                    if idle && owed_before > 0 && owed_after > 0 {
                        panic!("idle while a copy is owed");
                    }
                    seen += 1;
                }
                seen
            })
        };
        let mut thread: Option<(thread::JoinHandle<()>, Arc<AtomicBool>)> = None;
        for _ in 0..5000 {
            let _cfg = sh.config.lock().unwrap();
            // The member joins, owing a copy, and the sync is announced at
            // once (the order attach_recovering uses).
            let ticket = sh.state.begin(Mode::Recover);
            sh.owed.fetch_add(1, Ordering::SeqCst);
            // Stop the old thread (it may have just ended by itself).
            if let Some((h, stop)) = thread.take() {
                stop.store(true, Ordering::SeqCst);
                h.join().unwrap();
            }
            let stop = Arc::new(AtomicBool::new(false));
            let h = {
                let sh = sh.clone();
                let stop = stop.clone();
                thread::spawn(move || {
                    // Copy everything owed, then publish, then end.
                    while !stop.load(Ordering::SeqCst) {
                        let n = sh.owed.load(Ordering::SeqCst);
                        if n == 0 {
                            break;
                        }
                        let _ =
                            sh.owed
                                .compare_exchange(n, n - 1, Ordering::SeqCst, Ordering::SeqCst);
                    }
                    if !stop.load(Ordering::SeqCst) {
                        sh.state.end(ticket);
                    }
                })
            };
            thread = Some((h, stop));
        }
        if let Some((h, _)) = thread.take() {
            h.join().unwrap();
        }
        sh.done.store(true, Ordering::SeqCst);
        assert!(reader.join().unwrap() > 0);
        // The last thread was never stopped: it copied all and ended.
        assert_eq!(sh.owed.load(Ordering::SeqCst), 0);
        assert_eq!(sh.state.mode(), None);
    }
}
