// SPDX-License-Identifier: GPL-2.0

//! Memory for the dirty bitmap's nodes: 512 bytes (kmalloc-512), zeroed, allocated from the
//! I/O path without sleeping and without warnings (failure is handled: the
//! bitmap goes coarse).

use core::ptr::NonNull;
use core::sync::atomic::AtomicUsize;
use kernel::{alloc::flags, prelude::*};

use crate::logic::bitmap::{DirtyBitmap, Node, NodeAlloc};

/// The kernel's node allocator.
#[derive(Clone, Copy, Default)]
pub(crate) struct KernelNodes;

impl NodeAlloc for KernelNodes {
    fn alloc(&self) -> Option<NonNull<Node>> {
        let b =
            KBox::<Node>::new_uninit(flags::GFP_NOWAIT | flags::__GFP_NOWARN | flags::__GFP_ZERO)
                .ok()?;
        // A zeroed `Node` is valid: it is an array of atomics.
        NonNull::new(KBox::into_raw(b).cast::<Node>())
    }

    unsafe fn free(&self, node: NonNull<Node>) {
        // SAFETY: By the trait's contract `node` came from `alloc`, i.e. from
        // `KBox::<Node>::into_raw`, and is unused.
        drop(unsafe { KBox::from_raw(node.as_ptr()) });
    }
}

/// A member's dirty bitmap in the kernel.
pub(crate) type Bitmap = DirtyBitmap<KernelNodes, KVec<AtomicUsize>>;

/// A clean bitmap over `blocks` blocks (the root is allocated here, may sleep).
pub(crate) fn new_bitmap(blocks: u64) -> Result<Bitmap> {
    let (_, len) = crate::logic::bitmap::shape(blocks);
    let mut root = KVec::with_capacity(len, GFP_KERNEL)?;
    for _ in 0..len {
        root.push(AtomicUsize::new(0), GFP_KERNEL)?;
    }
    DirtyBitmap::new(KernelNodes, root, blocks).ok_or(EINVAL)
}
