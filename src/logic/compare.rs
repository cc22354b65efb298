// SPDX-License-Identifier: GPL-2.0

//! Byte comparison for the check, which compares every byte of the array.
//!
//! The kernel's `memcmp` (lib/string.c) branches once per word; this takes
//! 64 bytes per step and branches once: the XOR of eight words ORed
//! together is zero exactly when the 64 bytes are equal. (No SIMD in the
//! kernel; this is what plain integer code can do.)

/// Whether `a` and `b` hold the same bytes (false if their lengths differ).
pub(crate) fn same_bytes(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let (a64, a_rest) = a.as_chunks::<64>();
    let (b64, b_rest) = b.as_chunks::<64>();
    for (x, y) in a64.iter().zip(b64) {
        let (xw, _) = x.as_chunks::<8>();
        let (yw, _) = y.as_chunks::<8>();
        let diff = xw.iter().zip(yw).fold(0u64, |d, (p, q)| {
            d | (u64::from_ne_bytes(*p) ^ u64::from_ne_bytes(*q))
        });
        if diff != 0 {
            return false;
        }
    }
    a_rest == b_rest
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equal_unequal_and_every_position() {
        let a = [7u8; 4096 + 13];
        assert!(same_bytes(&a, &a.clone()));
        assert!(same_bytes(&[], &[]));
        assert!(!same_bytes(&a[..10], &a[..11]));
        // A difference anywhere is seen: in a 64-byte step, in any of its
        // words, and in the tail.
        for i in [0, 7, 8, 63, 64, 100, 4095, 4096, 4096 + 12] {
            let mut b = a;
            b[i] ^= 0x80;
            assert!(!same_bytes(&a, &b), "difference at {i} not seen");
        }
    }
}
