// SPDX-License-Identifier: GPL-2.0

//! md's sysfs directory of an array (`/sys/block/<array>/md/`, with a
//! `bitmap/` subdirectory): a kobject under the disk's device with attribute
//! groups whose `show`/`store` dispatch to safe Rust handlers.
//!
//! C header: [`include/linux/sysfs.h`](srctree/include/linux/sysfs.h)

use core::fmt;
use core::ptr::NonNull;
use kernel::{bindings, prelude::*, sync::Arc};

use super::disk::{Disk, DiskOps};

/// Size of a sysfs show buffer.
const SHOW_BUF: usize = 4096;

/// A `fmt::Write` into a sysfs show buffer.
pub(crate) struct ShowBuf {
    buf: *mut u8,
    len: usize,
}

impl fmt::Write for ShowBuf {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let end = self
            .len
            .checked_add(s.len())
            .filter(|&e| e < SHOW_BUF)
            .ok_or(fmt::Error)?;
        // SAFETY: sysfs hands `show` a buffer of PAGE_SIZE bytes; `end` stays
        // below it.
        unsafe { core::ptr::copy_nonoverlapping(s.as_ptr(), self.buf.add(self.len), s.len()) };
        self.len = end;
        Ok(())
    }
}

/// One attribute: name and mode; handlers are chosen by index.
pub(crate) struct AttrDef {
    pub(crate) name: &'static CStr,
    pub(crate) mode: u16,
}

/// Handlers of a group of the directory of a `T`'s disk:
/// `show(index, owner, dir, out)`, `store(index, owner, dir, text)`; `dir`
/// is the name of the attribute's directory (`md`, `bitmap` or
/// `dev-<name>`). Both run in process context with the attribute's active
/// reference held (store: broken, see `do_store`).
pub(crate) struct GroupOps<T> {
    pub(crate) show: fn(usize, &T, &str, &mut ShowBuf) -> fmt::Result,
    pub(crate) store: fn(usize, &Arc<T>, &str, &str) -> Result,
}

/// `kobj_attribute`s that may live in statics.
#[repr(transparent)]
pub(crate) struct KAttr(pub(crate) bindings::kobj_attribute);
// SAFETY: Immutable after initialisation; only the kernel reads it.
unsafe impl Sync for KAttr {}

/// Pointer arrays and groups that may live in statics.
#[repr(transparent)]
pub(crate) struct SyncPtr<T>(pub(crate) T);
// SAFETY: Immutable tables of pointers to immutable statics.
unsafe impl<T> Sync for SyncPtr<T> {}

/// An attribute group built by [`attribute_group!`], as its users name it.
pub(crate) type AttrGroup = SyncPtr<bindings::attribute_group>;

/// Builds a `kobj_attribute` (C's `__ATTR`).
pub(crate) const fn kattr(
    def: &AttrDef,
    show: unsafe extern "C" fn(
        *mut bindings::kobject,
        *mut bindings::kobj_attribute,
        *mut c_char,
    ) -> isize,
    store: unsafe extern "C" fn(
        *mut bindings::kobject,
        *mut bindings::kobj_attribute,
        *const c_char,
        usize,
    ) -> isize,
) -> KAttr {
    // SAFETY: All-zero is a valid `kobj_attribute` (null pointers, no
    // lockdep key: static attributes need none).
    let mut a: bindings::kobj_attribute = unsafe { core::mem::zeroed() };
    a.attr.name = kernel::str::as_char_ptr_in_const_context(def.name);
    a.attr.mode = def.mode;
    a.__bindgen_anon_1.show = Some(show);
    if def.mode & 0o200 != 0 {
        a.__bindgen_anon_2.store = Some(store);
    }
    KAttr(a)
}

/// The `T` owning an md/ (or md/bitmap/) kobject: its parent is the disk's
/// device.
///
/// # Safety
///
/// `kobj` is a kobject made by [`MdDir::new`] (or its parent chain), alive
/// for the call (sysfs holds an active reference while show/store run).
unsafe fn owner_of_kobj<T: DiskOps>(kobj: *mut bindings::kobject) -> Option<Arc<T>> {
    // SAFETY: By the safety requirements the parent is the device kobject
    // embedded in the disk's whole-disk block device (`bd_device.kobj`).
    unsafe {
        let dev_kobj = (*kobj).parent;
        if dev_kobj.is_null() {
            return None;
        }
        let dev: *mut bindings::device = kernel::container_of!(dev_kobj, bindings::device, kobj);
        let bdev: *mut bindings::block_device =
            kernel::container_of!(dev, bindings::block_device, bd_device);
        super::disk::owner_of::<T>((*bdev).bd_disk)
    }
}

/// The array and directory name of an attribute's kobject: `md/` itself
/// (its parent is the disk's device), or `md/dev-<name>/`.
///
/// # Safety
///
/// `kobj` is an fr1 md/ or md/dev-* kobject, alive for the call.
unsafe fn resolve<'a, T: DiskOps>(kobj: *mut bindings::kobject) -> Option<(Arc<T>, &'a str)> {
    // SAFETY: By the safety requirements.
    let name = unsafe { kobj_name(kobj) };
    if name.starts_with("dev-") {
        // SAFETY: A member directory's parent is the live md/ kobject.
        Some((unsafe { owner_of_kobj::<T>((*kobj).parent) }?, name))
    } else {
        // SAFETY: By the safety requirements.
        Some((unsafe { owner_of_kobj::<T>(kobj) }?, name))
    }
}

/// The index of `attr` in `attrs`, and its array and directory; or the
/// negative errno a handler returns.
///
/// # Safety
///
/// As for [`resolve`].
unsafe fn lookup<'a, T: DiskOps>(
    kobj: *mut bindings::kobject,
    attr: *mut bindings::kobj_attribute,
    attrs: &[KAttr],
) -> core::result::Result<(usize, Arc<T>, &'a str), isize> {
    let idx = attrs
        .iter()
        .position(|a| core::ptr::eq(&a.0, attr))
        .ok_or(EINVAL.to_errno() as isize)?;
    // SAFETY: By the safety requirements.
    let (array, dir) = unsafe { resolve::<T>(kobj) }.ok_or(ENODEV.to_errno() as isize)?;
    Ok((idx, array, dir))
}

/// Runs a show handler (shared by all attribute trampolines).
///
/// # Safety
///
/// Called by sysfs for an attribute of `attrs`, with its PAGE_SIZE buffer.
pub(crate) unsafe fn do_show<T: DiskOps>(
    kobj: *mut bindings::kobject,
    attr: *mut bindings::kobj_attribute,
    buf: *mut c_char,
    attrs: &[KAttr],
    ops: &GroupOps<T>,
) -> isize {
    // SAFETY: By the safety requirements.
    let (idx, array, dir) = match unsafe { lookup::<T>(kobj, attr, attrs) } {
        Ok(found) => found,
        Err(e) => return e,
    };
    let mut out = ShowBuf {
        buf: buf.cast(),
        len: 0,
    };
    match (ops.show)(idx, &array, dir, &mut out) {
        Ok(()) => out.len as isize,
        Err(_) => EINVAL.to_errno() as isize,
    }
}

/// Runs a store handler.
///
/// # Safety
///
/// Called by sysfs for an attribute of `attrs` with `count` bytes at `buf`.
pub(crate) unsafe fn do_store<T: DiskOps>(
    kobj: *mut bindings::kobject,
    attr: *mut bindings::kobj_attribute,
    buf: *const c_char,
    count: usize,
    attrs: &[KAttr],
    ops: &GroupOps<T>,
) -> isize {
    // SAFETY: By the safety requirements.
    let (idx, array, dir) = match unsafe { lookup::<T>(kobj, attr, attrs) } {
        Ok(found) => found,
        Err(e) => return e,
    };
    // SAFETY: sysfs passes `count` readable bytes.
    let bytes = unsafe { core::slice::from_raw_parts(buf.cast::<u8>(), count) };
    let Ok(text) = core::str::from_utf8(bytes) else {
        return EINVAL.to_errno() as isize;
    };
    // A store may remove its own directory (a member's remove or re-add) or
    // wait for `config` while a stop removes md/: like md's `state_store`,
    // drop the active reference first so no removal waits for this handler.
    // The kobject stays allocated (the break holds a reference) and `array`
    // keeps the array alive.
    // SAFETY: `kobj` and `attr` are the live objects of this call.
    let kn = unsafe { bindings::sysfs_break_active_protection(kobj, &raw const (*attr).attr) };
    let ret = match (ops.store)(idx, &array, dir, text.trim_end_matches('\n')) {
        Ok(()) => count as isize,
        Err(e) => e.to_errno() as isize,
    };
    if !kn.is_null() {
        // SAFETY: `kn` came from `sysfs_break_active_protection` above,
        // which holds a reference on it.
        unsafe { bindings::sysfs_unbreak_active_protection(kn) };
    }
    ret
}

/// The md/ directory of an array and its groups.
///
/// # Invariants
///
/// `kobj` was created by `kobject_create_and_add` under the disk's device
/// and carries `groups`; both are removed on drop.
pub(crate) struct MdDir {
    kobj: NonNull<bindings::kobject>,
    groups: &'static [&'static SyncPtr<bindings::attribute_group>],
}

// SAFETY: kobject operations are internally synchronised.
unsafe impl Send for MdDir {}
// SAFETY: As above.
unsafe impl Sync for MdDir {}

impl MdDir {
    /// Creates `md/` under `disk`'s device with `groups` (which must
    /// dispatch to the disk's owner type).
    pub(crate) fn new(
        disk: &Disk,
        groups: &'static [&'static SyncPtr<bindings::attribute_group>],
    ) -> Result<MdDir> {
        // SAFETY: `disk` is live and added; its whole-disk device kobject
        // (`part0->bd_device.kobj`) is registered.
        let parent = unsafe { &raw mut (*(*disk.as_ptr()).part0).bd_device.kobj };
        // SAFETY: `parent` is a live kobject; the name is static.
        let kobj =
            NonNull::new(unsafe { bindings::kobject_create_and_add(c"md".as_char_ptr(), parent) })
                .ok_or(ENOMEM)?;
        let dir = MdDir { kobj, groups };
        for (i, g) in groups.iter().enumerate() {
            // SAFETY: `kobj` is live; the group is a static table.
            let ret = unsafe { bindings::sysfs_create_group(kobj.as_ptr(), &g.0) };
            if ret != 0 {
                // Remove the groups made so far, then the kobject.
                for g in &groups[..i] {
                    // SAFETY: Created above.
                    unsafe { bindings::sysfs_remove_group(kobj.as_ptr(), &g.0) };
                }
                // SAFETY: Our reference from kobject_create_and_add.
                unsafe { bindings::kobject_put(kobj.as_ptr()) };
                core::mem::forget(dir);
                return Err(Error::from_errno(ret));
            }
        }
        Ok(dir)
    }
}

impl Drop for MdDir {
    fn drop(&mut self) {
        for g in self.groups {
            // SAFETY: By the type invariants the group was created on `kobj`;
            // removal waits for running show/store handlers.
            unsafe { bindings::sysfs_remove_group(self.kobj.as_ptr(), &g.0) };
        }
        // SAFETY: Our reference from kobject_create_and_add.
        unsafe { bindings::kobject_put(self.kobj.as_ptr()) };
    }
}

/// Pointers to the `attribute`s of `attrs`, NULL-terminated.
pub(crate) const fn attr_ptrs<const N: usize, const M: usize>(
    attrs: &'static [KAttr; N],
) -> [*const bindings::attribute; M] {
    let mut out = [core::ptr::null::<bindings::attribute>(); M];
    let mut i = 0;
    while i < N && i + 1 < M {
        out[i] = &attrs[i].0.attr;
        i += 1;
    }
    out
}

/// An `attribute_group` named `name` (NULL: the directory itself) over the
/// NULL-terminated pointer table `ptrs`.
pub(crate) const fn group(
    name: Option<&'static CStr>,
    ptrs: *const *const bindings::attribute,
) -> bindings::attribute_group {
    // SAFETY: All-zero is a valid empty group.
    let mut g: bindings::attribute_group = unsafe { core::mem::zeroed() };
    if let Some(n) = name {
        g.name = kernel::str::as_char_ptr_in_const_context(n);
    }
    g.__bindgen_anon_2.attrs_const = ptrs;
    g
}

/// Declares `enum $enum` of a directory's attributes and `$table`, their
/// [`AttrDef`]s in the same order, writing each attribute's name once (as
/// rnull's `configfs_attrs!` does): `Variant = c"name", MODE;`. Handlers
/// match on `$enum::at(index)`.
macro_rules! attr_table {
    ($(#[$doc:meta])* $vis:vis $enum:ident, $table:ident { $($var:ident = $name:expr, $mode:expr;)* }) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        $vis enum $enum {
            $($var,)*
        }

        impl $enum {
            const ALL: &'static [$enum] = &[$($enum::$var,)*];

            /// The attribute at `idx` of the table.
            $vis fn at(idx: usize) -> Option<$enum> {
                Self::ALL.get(idx).copied()
            }
        }

        /// The attributes of [`$enum`], in its order.
        $vis const $table: [$crate::sys::sysfs::AttrDef; $enum::ALL.len()] =
            [$($crate::sys::sysfs::AttrDef { name: $name, mode: $mode },)*];
    };
}
pub(crate) use attr_table;

/// Declares module `$module` holding `GROUP`, a static attribute group
/// named `$name` (`None`: the directory itself) for the attributes `$defs`
/// (an array of [`AttrDef`]) dispatched to `$ops` (a [`GroupOps`] of the
/// disk owner type `$owner`). Paths are resolved from inside the new module
/// (use `super::`).
macro_rules! attribute_group {
    ($module:ident, $name:expr, $defs:path, $ops:path, $owner:path) => {
        mod $module {
            use ::kernel::bindings;
            use ::kernel::ffi::c_char;
            use $crate::sys::sysfs::{
                attr_ptrs, do_show, do_store, group, kattr, AttrDef, KAttr, SyncPtr,
            };

            const N: usize = $defs.len();

            /// # Safety
            ///
            /// Called by sysfs for attributes of `ATTRS`.
            unsafe extern "C" fn show(
                kobj: *mut bindings::kobject,
                attr: *mut bindings::kobj_attribute,
                buf: *mut c_char,
            ) -> isize {
                // SAFETY: sysfs calls this for attributes of `ATTRS`.
                unsafe { do_show::<$owner>(kobj, attr, buf, &ATTRS, &$ops) }
            }

            /// # Safety
            ///
            /// Called by sysfs for attributes of `ATTRS`.
            unsafe extern "C" fn store(
                kobj: *mut bindings::kobject,
                attr: *mut bindings::kobj_attribute,
                buf: *const c_char,
                count: usize,
            ) -> isize {
                // SAFETY: sysfs calls this for attributes of `ATTRS`.
                unsafe { do_store::<$owner>(kobj, attr, buf, count, &ATTRS, &$ops) }
            }

            static ATTRS: [KAttr; N] = {
                let mut out = [const { kattr(&AttrDef { name: c"", mode: 0 }, show, store) }; N];
                let mut i = 0;
                while i < N {
                    out[i] = kattr(&$defs[i], show, store);
                    i += 1;
                }
                out
            };
            static PTRS: SyncPtr<[*const bindings::attribute; N + 1]> = SyncPtr(attr_ptrs(&ATTRS));

            /// The group.
            pub(crate) static GROUP: SyncPtr<bindings::attribute_group> =
                SyncPtr(group($name, PTRS.0.as_ptr()));
        }
    };
}
pub(crate) use attribute_group;

impl MdDir {
    /// The md/ kobject.
    pub(crate) fn kobj(&self) -> *mut bindings::kobject {
        self.kobj.as_ptr()
    }
}

/// Longest `dev-<name>` / `rdN` name.
const DIR_NAME: usize = 40;

/// A member's `md/dev-<name>/` directory (with a `block` link to the
/// member's device) and the `md/rdN` link to it.
///
/// # Invariants
///
/// `kobj` was created under `md` (which outlives it: member directories are
/// dropped before the md/ directory) with `group` and the two links, all
/// removed on drop.
pub(crate) struct MemberDir {
    kobj: NonNull<bindings::kobject>,
    md: NonNull<bindings::kobject>,
    rd: [u8; DIR_NAME],
    group: &'static SyncPtr<bindings::attribute_group>,
}

// SAFETY: kobject operations are internally synchronised.
unsafe impl Send for MemberDir {}
// SAFETY: As above.
unsafe impl Sync for MemberDir {}

fn cname(buf: &mut [u8; DIR_NAME], args: fmt::Arguments<'_>) -> Result<*const c_char> {
    let mut w = crate::logic::fmtbuf::FmtBuf::new(&mut buf[..DIR_NAME - 1]);
    fmt::Write::write_fmt(&mut w, args).map_err(|_| EINVAL)?;
    Ok(buf.as_ptr().cast())
}

impl MemberDir {
    /// Creates `md/dev-<name>/` for `member` in `slot`.
    pub(crate) fn new(
        md: &MdDir,
        member: &crate::sys::member::Member,
        slot: u32,
        group: &'static SyncPtr<bindings::attribute_group>,
    ) -> Result<MemberDir> {
        let mut name = [0u8; DIR_NAME];
        let dev_name = cname(&mut name, format_args!("dev-{}", member.name()))?;
        // SAFETY: `md.kobj` is live; the name is NUL-terminated.
        let kobj = NonNull::new(unsafe { bindings::kobject_create_and_add(dev_name, md.kobj()) })
            .ok_or(ENOMEM)?;
        let mut rd = [0u8; DIR_NAME];
        let rd_name = cname(&mut rd, format_args!("rd{slot}"))?;
        // SAFETY: `kobj` is live; the group is static; the member's block
        // device is open, so its device kobject is live; the names are
        // NUL-terminated. Failures are undone below.
        unsafe {
            let mut ret = bindings::sysfs_create_group(kobj.as_ptr(), &group.0);
            if ret == 0 {
                let bdev_kobj = &raw mut (*member.bdev()).bd_device.kobj;
                ret = bindings::sysfs_create_link(kobj.as_ptr(), bdev_kobj, c"block".as_char_ptr());
                if ret == 0 {
                    ret = bindings::sysfs_create_link(md.kobj(), kobj.as_ptr(), rd_name);
                    if ret != 0 {
                        bindings::sysfs_remove_link(kobj.as_ptr(), c"block".as_char_ptr());
                    }
                }
                if ret != 0 {
                    bindings::sysfs_remove_group(kobj.as_ptr(), &group.0);
                }
            }
            if ret != 0 {
                bindings::kobject_put(kobj.as_ptr());
                return Err(Error::from_errno(ret));
            }
        }
        Ok(MemberDir {
            kobj,
            // SAFETY: `md.kobj()` is non-null (an `MdDir` invariant).
            md: unsafe { NonNull::new_unchecked(md.kobj()) },
            rd,
            group,
        })
    }
}

impl Drop for MemberDir {
    fn drop(&mut self) {
        // SAFETY: By the type invariants all of these were created; removal
        // waits for running show/store handlers.
        unsafe {
            bindings::sysfs_remove_link(self.md.as_ptr(), self.rd.as_ptr().cast());
            bindings::sysfs_remove_link(self.kobj.as_ptr(), c"block".as_char_ptr());
            bindings::sysfs_remove_group(self.kobj.as_ptr(), &self.group.0);
            bindings::kobject_put(self.kobj.as_ptr());
        }
    }
}

/// The name of a kobject (`dev-vdb`).
///
/// # Safety
///
/// `kobj` is live for the returned lifetime.
pub(crate) unsafe fn kobj_name<'a>(kobj: *mut bindings::kobject) -> &'a str {
    // SAFETY: By the safety requirements; kobject names are C strings.
    let name = unsafe { (*kobj).name };
    if name.is_null() {
        return "";
    }
    // SAFETY: Non-null kobject names are NUL-terminated.
    unsafe { CStr::from_char_ptr(name) }.to_str().unwrap_or("")
}
