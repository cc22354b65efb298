// SPDX-License-Identifier: GPL-2.0

//! The set of arrays, fr1's identity (md's major and /proc/mdstat, or its
//! own), and the status file.

use core::sync::atomic::{AtomicPtr, Ordering};
use kernel::{bindings, new_mutex, prelude::*, sync::Arc, sync::Mutex};

use crate::array::Array;
use crate::logic::abi::MD_MAJOR;
use crate::logic::mdstat;
use crate::sys::disk::{BlkMajor, Probe};
use crate::sys::procfs::{Events, ProcFile, SeqWriter, StatusSource};
use crate::sys::work::Fr1Queue;

/// Highest array minor (arrays md0..md255, or fr0..fr255).
pub(crate) const MAX_ARRAYS: u32 = 256;

/// Which identity fr1 took at load.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Identity {
    /// Major 9, /dev/mdN, /proc/mdstat: a drop-in for md (md_mod absent).
    Md,
    /// A dynamic major named "fr1", /dev/frN, /proc/fr1stat.
    Own,
}

/// Everything fr1 has while loaded.
///
/// # Invariants
///
/// While the module is loaded [`REGISTRY`] points to the one `Registry`,
/// which is pinned in the module's memory; it is cleared before the registry
/// is dropped, after the major and the proc file are gone.
#[pin_data]
pub(crate) struct Registry {
    identity: Identity,
    major: u32,
    #[pin]
    arrays: Mutex<KVec<Arc<Array>>>,
    #[pin]
    events: Events,
}

/// The registry, for the block layer's probe and the proc file.
static REGISTRY: AtomicPtr<Registry> = AtomicPtr::new(core::ptr::null_mut());

/// What the module holds: the registry and the kernel objects that call into
/// it. Field order is drop order: the proc file and the major go first, then
/// the workqueues (their destruction waits for the arrays' last work items,
/// `sys::work`; items of either queue may queue on the other while an array
/// runs, and by now every array is stopped and queues nothing), then the
/// registry.
pub(crate) struct Loaded {
    _proc: ProcFile,
    _major: BlkMajor,
    _leg_queue: Fr1Queue,
    _queue: Fr1Queue,
    registry: Pin<KBox<Registry>>,
}

impl Loaded {
    /// Takes md's identity if allowed and free, else fr1's own.
    pub(crate) fn new(md_compat: bool) -> Result<Loaded> {
        // Before any array can exist: they queue their work on it.
        let queue = Fr1Queue::new()?;
        let leg_queue = Fr1Queue::new_leg()?;
        let md = md_compat.then(|| BlkMajor::register::<ArrayProbe>(MD_MAJOR, c"md"));
        let (identity, major) = match md {
            Some(Ok(m)) => (Identity::Md, m),
            _ => (Identity::Own, BlkMajor::register::<ArrayProbe>(0, c"fr1")?),
        };
        let major_nr = major.major();
        let registry = KBox::pin_init(
            pin_init!(Registry {
                identity,
                major: major_nr,
                arrays <- new_mutex!(KVec::new()),
                events <- Events::new(),
            }),
            GFP_KERNEL,
        )?;
        REGISTRY.store(
            core::ptr::from_ref(registry.as_ref().get_ref()).cast_mut(),
            Ordering::Release,
        );
        let name = match identity {
            Identity::Md => c"mdstat",
            Identity::Own => c"fr1stat",
        };
        let proc = match ProcFile::new::<Status>(name) {
            Ok(p) => p,
            Err(e) => {
                REGISTRY.store(core::ptr::null_mut(), Ordering::Release);
                return Err(e);
            }
        };
        let nodes = match identity {
            Identity::Md => "md compatible: /dev/mdN",
            Identity::Own => "/dev/frN",
        };
        pr_info!(
            "block major {} ({}), status in /proc/{}\n",
            major.major(),
            nodes,
            name.to_str().unwrap_or("?")
        );
        Ok(Loaded {
            _proc: proc,
            _major: major,
            _leg_queue: leg_queue,
            _queue: queue,
            registry,
        })
    }

    /// Stops every array (rmmod: only idle arrays exist, since an open array
    /// pins the module).
    pub(crate) fn stop_all(&self) {
        let arrays = core::mem::take(&mut *self.registry.arrays.lock());
        for a in arrays {
            a.stop_for_unload();
        }
    }
}

impl Drop for Loaded {
    fn drop(&mut self) {
        self.stop_all();
        // Fields drop after this: proc file, major, then the registry.
        REGISTRY.store(core::ptr::null_mut(), Ordering::Release);
    }
}

fn with_registry<R>(f: impl FnOnce(&Registry) -> R) -> Option<R> {
    let p = REGISTRY.load(Ordering::Acquire);
    // SAFETY: By the type invariants a non-null pointer refers to the live,
    // pinned registry; callers (probe, proc show, ioctls) run only while the
    // objects that call them exist, which are dropped before it is cleared.
    (!p.is_null()).then(|| f(unsafe { &*p }))
}

/// The major's probe: [`probe`].
struct ArrayProbe;

impl Probe for ArrayProbe {
    fn probe(minor: u32) {
        probe(minor)
    }
}

/// Creates the (empty) array of `minor` when its node is opened, as md does.
fn probe(minor: u32) {
    if minor >= MAX_ARRAYS {
        return;
    }
    with_registry(|r| {
        let mut arrays = r.arrays.lock();
        if arrays.iter().any(|a| a.minor() == minor) {
            return;
        }
        match Array::create(r.identity, r.major, minor) {
            Ok(a) => {
                if arrays.push(a, GFP_KERNEL).is_err() {
                    pr_err!("out of memory creating array {}\n", minor);
                }
            }
            Err(e) => pr_err!("cannot create array {}: {:?}\n", minor, e),
        }
    });
}

/// Forgets a stopped array (its disk is already deleted).
pub(crate) fn remove(array: &Array) {
    with_registry(|r| {
        r.arrays.lock().retain(|a| !core::ptr::eq(&**a, array));
    });
}

/// The arrays, for loop detection.
pub(crate) fn arrays() -> KVec<Arc<Array>> {
    with_registry(|r| {
        let mut out = KVec::new();
        for a in r.arrays.lock().iter() {
            if out.push(a.clone(), GFP_KERNEL).is_err() {
                break;
            }
        }
        out
    })
    .unwrap_or_default()
}

/// /proc/mdstat (or /proc/fr1stat).
struct Status;

impl StatusSource for Status {
    fn show(w: &mut SeqWriter<'_>) {
        let _ = mdstat::write_personalities(w, &["raid1"]);
        for a in arrays().iter() {
            a.write_status(w);
        }
        let _ = mdstat::write_unused(w);
    }

    fn events() -> Option<&'static Events> {
        let p = REGISTRY.load(Ordering::Acquire);
        // SAFETY: See `with_registry`; the proc file (the only caller) is
        // removed before the registry goes.
        (!p.is_null()).then(|| unsafe { &(*p).events })
    }
}

/// An array changed: wake pollers of the status file (md_new_event).
pub(crate) fn new_event() {
    if let Some(ev) = Status::events() {
        ev.signal();
    }
}

const _: () = assert!(bindings::MD_MAJOR == MD_MAJOR);
