// SPDX-License-Identifier: GPL-2.0

//! A `core::fmt::Write` into a fixed byte buffer (names, log fragments).

use core::fmt;

/// Writes into a borrowed buffer; fails instead of truncating.
pub(crate) struct FmtBuf<'a> {
    buf: &'a mut [u8],
    len: usize,
}

impl<'a> FmtBuf<'a> {
    /// An empty writer over `buf`.
    pub(crate) fn new(buf: &'a mut [u8]) -> Self {
        FmtBuf { buf, len: 0 }
    }

    /// What was written.
    #[cfg(test)]
    pub(crate) fn as_str(&self) -> &str {
        core::str::from_utf8(self.buf.get(..self.len).unwrap_or(&[])).unwrap_or("")
    }
}

impl fmt::Write for FmtBuf<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let end = self.len.checked_add(s.len()).ok_or(fmt::Error)?;
        let dst = self.buf.get_mut(self.len..end).ok_or(fmt::Error)?;
        dst.copy_from_slice(s.as_bytes());
        self.len = end;
        Ok(())
    }
}

/// An owned fixed-capacity string (truncates at a char boundary).
#[derive(Clone, Copy)]
pub(crate) struct FixedStr<const N: usize> {
    buf: [u8; N],
    len: usize,
}

impl<const N: usize> Default for FixedStr<N> {
    fn default() -> Self {
        FixedStr {
            buf: [0; N],
            len: 0,
        }
    }
}

impl<const N: usize> FixedStr<N> {
    /// The content.
    pub(crate) fn as_str(&self) -> &str {
        core::str::from_utf8(self.buf.get(..self.len).unwrap_or(&[])).unwrap_or("")
    }
}

impl<const N: usize> fmt::Write for FixedStr<N> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        for c in s.chars() {
            let mut tmp = [0u8; 4];
            let b = c.encode_utf8(&mut tmp).as_bytes();
            let end = self.len + b.len();
            let Some(dst) = self.buf.get_mut(self.len..end) else {
                return Err(fmt::Error);
            };
            dst.copy_from_slice(b);
            self.len = end;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::fmt::Write;

    #[test]
    fn writes_and_refuses_overflow() {
        let mut b = [0u8; 5];
        let mut w = FmtBuf::new(&mut b);
        write!(w, "md{}", 12).unwrap();
        assert_eq!(w.as_str(), "md12");
        assert!(write!(w, "34").is_err());
        assert_eq!(w.as_str(), "md12");
    }

    #[test]
    fn fixed_str_truncates_on_char_boundary() {
        let mut f = FixedStr::<4>::default();
        assert!(write!(f, "ab\u{e9}x").is_err());
        assert_eq!(f.as_str(), "ab\u{e9}");
    }
}
