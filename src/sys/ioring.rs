// SPDX-License-Identifier: GPL-2.0

//! Asynchronous page I/O for the sync thread: a few buffers ("lanes"), each
//! with at most one bio in flight, and one completion counting the bios that
//! landed. The thread keeps several copies in flight and sleeps until any of
//! them lands.
//!
//! C header: [`include/linux/completion.h`](srctree/include/linux/completion.h)

use core::sync::atomic::{AtomicU8, Ordering};
use kernel::{bindings, prelude::*, sync::Arc, types::Opaque};

use super::bio::{BioSet, PageBuf, Submitter};
use super::member::Member;

/// Lane states.
const IDLE: u8 = 0;
const FLYING: u8 = 1;
const LANDED_OK: u8 = 2;
const LANDED_ERR: u8 = 3;

/// The counting completion the lanes signal (one `complete()` per bio).
#[pin_data]
struct Landing {
    #[pin]
    inner: Opaque<bindings::completion>,
}

impl Landing {
    fn new() -> impl PinInit<Self> {
        pin_init!(Self {
            // SAFETY: `p` is valid storage that stays pinned from now on.
            inner <- Opaque::ffi_init(|p| unsafe { bindings::init_completion(p) }),
        })
    }
}

/// What a bio's completion handler touches: the lane's state and the
/// ring's completion.
///
/// # Invariants
///
/// `landing` points to the owning ring's [`Landing`], which outlives every
/// bio of the ring (the ring waits for them all before it is dropped).
struct Flight {
    state: AtomicU8,
    landing: *mut bindings::completion,
}

/// One buffer and what keeps its bio's device open.
struct Lane<H> {
    buf: PageBuf,
    hold: Option<H>,
}

/// Lanes of page buffers with asynchronous bios.
///
/// `H` is the caller's proof that a member stays open (a counted reference
/// to it): the ring keeps it until the bio landed.
///
/// # Invariants
///
/// - `flights` and `lanes` have the same length and are never resized, so
///   a flight's address is stable while a bio points to it.
/// - `flying` is the number of bios submitted whose landing `wait_any` has
///   not yet returned; each of them holds its lane's `hold` and will call
///   `complete()` on `landing` exactly once, as its last access to the ring.
pub(crate) struct IoRing<H> {
    landing: Pin<KBox<Landing>>,
    flights: KVec<Flight>,
    lanes: KVec<Lane<H>>,
    flying: usize,
}

// SAFETY: The raw pointers only refer to the ring's own pinned completion;
// the ring may move between threads like its other (Send) contents.
unsafe impl<H: Send> Send for IoRing<H> {}

impl<H: AsRef<Member>> IoRing<H> {
    /// `lanes` buffers of `bytes` each (may sleep).
    pub(crate) fn new(lanes: usize, bytes: usize) -> Result<Self> {
        let landing = KBox::pin_init(Landing::new(), GFP_KERNEL)?;
        let mut flights = KVec::with_capacity(lanes, GFP_KERNEL)?;
        let mut bufs = KVec::with_capacity(lanes, GFP_KERNEL)?;
        for _ in 0..lanes {
            flights.push(
                Flight {
                    state: AtomicU8::new(IDLE),
                    landing: landing.inner.get(),
                },
                GFP_KERNEL,
            )?;
            bufs.push(
                Lane {
                    buf: PageBuf::new(bytes)?,
                    hold: None,
                },
                GFP_KERNEL,
            )?;
        }
        Ok(IoRing {
            landing,
            flights,
            lanes: bufs,
            flying: 0,
        })
    }

    /// A lane's capacity in sectors.
    pub(crate) fn lane_sectors(&self) -> u64 {
        self.lanes.first().map_or(0, |l| l.buf.sectors())
    }

    /// `lane`'s buffer, while no bio of it is in flight.
    pub(crate) fn buf(&self, lane: usize) -> Option<&PageBuf> {
        let flight = self.flights.get(lane)?;
        if flight.state.load(Ordering::Acquire) != IDLE {
            return None;
        }
        self.lanes.get(lane).map(|l| &l.buf)
    }

    /// Reads into (or writes from) `lane`'s buffer `sectors` at `sector` of
    /// the member `hold` refers to; `via`: handed to that leg's submitter
    /// (`bio::Deferred`'s protocol) instead of submitted here, so that the
    /// reads of several legs are submitted in parallel (a driver that
    /// copies or sends in its submission, brd or NBD, does it on the
    /// worker's CPU, not the sync thread's). Gives `hold` back if the lane
    /// is busy or the range does not fit.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn submit<T>(
        &mut self,
        lane: usize,
        hold: H,
        bioset: &BioSet<T>,
        write: bool,
        sector: u64,
        sectors: u64,
        via: Option<&Arc<Submitter>>,
    ) -> core::result::Result<(), H> {
        let (Some(flight), Some(l)) = (self.flights.get(lane), self.lanes.get_mut(lane)) else {
            return Err(hold);
        };
        if flight.state.load(Ordering::Acquire) != IDLE {
            return Err(hold);
        }
        let Some(mut bio) = bioset.page_bio(hold.as_ref(), write, sector, sectors, &l.buf) else {
            return Err(hold);
        };
        flight.state.store(FLYING, Ordering::Relaxed);
        l.hold = Some(hold);
        self.flying += 1;
        bio.set_end_io(flight_end_io, core::ptr::from_ref(flight).cast_mut().cast());
        match via {
            Some(submitter) => submitter.push(bio),
            None => bio.submit(),
        }
        Ok(())
    }

    /// Sleeps until a bio landed; returns its lane, whether it succeeded
    /// and the hold it kept. `None` when nothing is in flight.
    pub(crate) fn wait_any(&mut self) -> Option<(usize, bool, H)> {
        if self.flying == 0 {
            return None;
        }
        // SAFETY: The completion was initialised in `new` and is pinned.
        unsafe { bindings::wait_for_completion_io(self.landing.inner.get()) };
        // Each landing stores its state before it signals, and each wait
        // consumes one signal: a landed lane is always there to collect.
        let lane = self
            .flights
            .iter()
            .position(|f| matches!(f.state.load(Ordering::Acquire), LANDED_OK | LANDED_ERR))?;
        let ok = self.flights[lane].state.swap(IDLE, Ordering::AcqRel) == LANDED_OK;
        self.flying -= 1;
        let hold = self.lanes[lane].hold.take()?;
        Some((lane, ok, hold))
    }
}

impl<H> Drop for IoRing<H> {
    fn drop(&mut self) {
        // Bios still point into the ring: wait for every one of them.
        while self.flying > 0 {
            // SAFETY: As in `wait_any`.
            unsafe { bindings::wait_for_completion_io(self.landing.inner.get()) };
            self.flying -= 1;
        }
    }
}

/// Completion of a lane's bio (any context).
///
/// # Safety
///
/// Called by the block layer for a bio submitted by [`IoRing::submit`],
/// whose `bi_private` is the lane's [`Flight`].
unsafe extern "C" fn flight_end_io(bio: *mut bindings::bio) {
    // SAFETY: By the safety requirements `bi_private` is a live flight and
    // the bio is ours to put.
    let (flight, ok) = unsafe {
        let f = &*(*bio).bi_private.cast::<Flight>();
        let ok = (*bio).bi_status == 0;
        bindings::bio_put(bio);
        (f, ok)
    };
    let landing = flight.landing;
    flight
        .state
        .store(if ok { LANDED_OK } else { LANDED_ERR }, Ordering::Release);
    // SAFETY: By the `Flight` invariants the ring is alive until this call
    // consumed by its owner; it is the last access to the ring.
    unsafe { bindings::complete(landing) };
}
