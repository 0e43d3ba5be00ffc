//! The reference's binary ("smp") encoding: 1-byte-length strings, 2-byte big-endian `Large`
//! strings, big-endian integers, raw fixed-size fields and `Tail` (spec/xrcp.md §2.1).
//!
//! [`Parser`] borrows its input and never allocates; every read is bounds-checked and fails
//! with [`RcError::Syntax`].

use crate::error::RcError;

/// A cursor over untrusted bytes.
#[derive(Clone, Debug)]
pub struct Parser<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Parser<'a> {
    /// A parser at the start of `buf`.
    pub fn new(buf: &'a [u8]) -> Self {
        Parser { buf, pos: 0 }
    }

    /// Bytes not consumed yet.
    pub fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    /// Exactly `n` raw bytes.
    pub fn take(&mut self, n: usize) -> Result<&'a [u8], RcError> {
        if self.remaining() < n {
            return Err(RcError::syntax(format!(
                "need {n} bytes, {} left",
                self.remaining()
            )));
        }
        let out = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(out)
    }

    /// A fixed-size array of raw bytes.
    pub fn array<const N: usize>(&mut self) -> Result<[u8; N], RcError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }

    /// One byte; end of input is `SYNTAX`.
    pub fn u8(&mut self) -> Result<u8, RcError> {
        Ok(self.take(1)?[0])
    }

    /// A big-endian `u16`; end of input is `SYNTAX`.
    pub fn u16(&mut self) -> Result<u16, RcError> {
        Ok(u16::from_be_bytes(self.array()?))
    }

    /// A big-endian `u32`; end of input is `SYNTAX`.
    pub fn u32(&mut self) -> Result<u32, RcError> {
        Ok(u32::from_be_bytes(self.array()?))
    }

    /// A big-endian `u64`; end of input is `SYNTAX`.
    pub fn u64(&mut self) -> Result<u64, RcError> {
        Ok(u64::from_be_bytes(self.array()?))
    }

    /// A string with a 1-byte length prefix.
    pub fn short_bytes(&mut self) -> Result<&'a [u8], RcError> {
        let n = self.u8()? as usize;
        self.take(n)
    }

    /// A `Large` string: 2-byte big-endian length prefix.
    pub fn large(&mut self) -> Result<&'a [u8], RcError> {
        let n = self.u16()? as usize;
        self.take(n)
    }

    /// The literal bytes `lit`, or a syntax error naming what was expected.
    pub fn literal(&mut self, lit: &[u8]) -> Result<(), RcError> {
        let got = self.take(lit.len())?;
        if got == lit {
            Ok(())
        } else {
            Err(RcError::syntax(format!(
                "expected '{}'",
                String::from_utf8_lossy(lit)
            )))
        }
    }

    /// Everything left (`Tail`).
    pub fn tail(&mut self) -> &'a [u8] {
        let out = &self.buf[self.pos..];
        self.pos = self.buf.len();
        out
    }

    /// Succeeds only when the whole input was consumed.
    pub fn end(&self) -> Result<(), RcError> {
        match self.remaining() {
            0 => Ok(()),
            n => Err(RcError::syntax(format!("{n} trailing bytes"))),
        }
    }
}

/// Appends encodings to a byte vector. Length-prefixed writers refuse content that does not
/// fit its prefix (the reference silently truncates the length byte; we never emit that).
#[derive(Clone, Debug, Default)]
pub struct Encoder {
    /// The bytes written so far.
    pub buf: Vec<u8>,
}

impl Encoder {
    /// An empty encoder.
    pub fn new() -> Self {
        Encoder::default()
    }

    /// An empty encoder with room for `n` bytes.
    pub fn with_capacity(n: usize) -> Self {
        Encoder {
            buf: Vec::with_capacity(n),
        }
    }

    /// Appends `b` as is (no length prefix).
    pub fn raw(&mut self, b: &[u8]) -> &mut Self {
        self.buf.extend_from_slice(b);
        self
    }

    /// Appends one byte.
    pub fn u8(&mut self, v: u8) -> &mut Self {
        self.buf.push(v);
        self
    }

    /// Appends a big-endian `u16`.
    pub fn u16(&mut self, v: u16) -> &mut Self {
        self.raw(&v.to_be_bytes())
    }

    /// Appends a big-endian `u32`.
    pub fn u32(&mut self, v: u32) -> &mut Self {
        self.raw(&v.to_be_bytes())
    }

    /// Appends a big-endian `u64`.
    pub fn u64(&mut self, v: u64) -> &mut Self {
        self.raw(&v.to_be_bytes())
    }

    /// 1-byte length + bytes; content over 255 bytes is refused.
    pub fn short_bytes(&mut self, b: &[u8]) -> Result<&mut Self, RcError> {
        let n = u8::try_from(b.len())
            .map_err(|_| RcError::Internal(format!("{} bytes exceed a short string", b.len())))?;
        self.u8(n);
        Ok(self.raw(b))
    }

    /// 2-byte big-endian length + bytes; content over 65535 bytes is refused.
    pub fn large(&mut self, b: &[u8]) -> Result<&mut Self, RcError> {
        let n = u16::try_from(b.len())
            .map_err(|_| RcError::Internal(format!("{} bytes exceed a Large string", b.len())))?;
        self.u16(n);
        Ok(self.raw(b))
    }

    /// The encoded bytes.
    pub fn finish(self) -> Vec<u8> {
        self.buf
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn integers_are_big_endian() {
        let mut e = Encoder::new();
        e.u16(0x0102).u32(0x03040506).u64(1234567890123456789);
        assert_eq!(
            hex::encode(&e.buf),
            "0102030405061122 10f47de98115".replace(' ', "")
        );
        let mut p = Parser::new(&e.buf);
        assert_eq!(p.u16().unwrap(), 0x0102);
        assert_eq!(p.u32().unwrap(), 0x03040506);
        assert_eq!(p.u64().unwrap(), 1234567890123456789);
        p.end().unwrap();
    }

    #[test]
    fn oversize_prefixes_are_refused() {
        assert!(Encoder::new().short_bytes(&[0; 256]).is_err());
        assert!(Encoder::new().large(&[0; 65536]).is_err());
        assert!(Encoder::new().short_bytes(&[0; 255]).is_ok());
    }

    #[test]
    fn short_reads_are_syntax_errors() {
        assert!(matches!(
            Parser::new(&[5, 1, 2]).short_bytes(),
            Err(RcError::Syntax(_))
        ));
        assert!(matches!(
            Parser::new(&[0, 3, 1]).large(),
            Err(RcError::Syntax(_))
        ));
        assert!(matches!(Parser::new(&[1]).end(), Err(RcError::Syntax(_))));
    }

    proptest! {
        #[test]
        fn round_trip(a in proptest::collection::vec(any::<u8>(), 0..=255),
                      b in proptest::collection::vec(any::<u8>(), 0..2000),
                      n in any::<u32>(), t in proptest::collection::vec(any::<u8>(), 0..64)) {
            let mut e = Encoder::new();
            e.short_bytes(&a).unwrap().large(&b).unwrap().u32(n).raw(&t);
            let buf = e.finish();
            let mut p = Parser::new(&buf);
            prop_assert_eq!(p.short_bytes().unwrap(), &a[..]);
            prop_assert_eq!(p.large().unwrap(), &b[..]);
            prop_assert_eq!(p.u32().unwrap(), n);
            prop_assert_eq!(p.tail(), &t[..]);
            prop_assert!(p.end().is_ok());
        }

        #[test]
        fn arbitrary_input_never_panics(buf in proptest::collection::vec(any::<u8>(), 0..600)) {
            let mut p = Parser::new(&buf);
            while p.remaining() > 0 {
                if p.short_bytes().is_err() { break; }
                if p.large().is_err() { break; }
            }
        }
    }
}
