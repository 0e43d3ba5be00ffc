//! The XSalsa20 keystream for attachments (spec/xrcp.md §3.1, §10), eight blocks at a time.
//!
//! The `salsa20` crate computes one 64-byte block at a time with scalar code (0.10 has no SIMD
//! backend), which made it the largest single cost of a file transfer (BENCHMARKS.md). Here
//! the state of eight consecutive blocks is held word by word across the eight lanes
//! (`[u32; 8]` per state word), so every step of the double round is the same operation on
//! eight independent values: safe Rust that the compiler turns into SIMD instructions of the
//! target (two SSE2 registers per word in the default x86-64 build, one AVX2 register where
//! the build enables it). Output is byte-identical to `salsa20::XSalsa20` (the tests compare
//! the two, and the attachment vectors pin the wire bytes).

use salsa20::cipher::consts::U10;
use zeroize::Zeroize;

const LANES: usize = 8;
const BLOCK: usize = 64;
/// Keystream bytes made per refill.
const WIDE: usize = LANES * BLOCK;

type Lanes = [u32; LANES];

/// "expand 32-byte k".
const SIGMA: [u32; 4] = [0x6170_7865, 0x3320_646e, 0x7962_2d32, 0x6b20_6574];

/// XSalsa20 keystream generator; key material and unused keystream are wiped on drop.
pub(crate) struct XSalsa20Stream {
    /// The Salsa20 input block with the block counter (words 8 and 9) left at zero.
    input: [u32; 16],
    /// Index of the next block to generate.
    counter: u64,
    /// Keystream generated and not yet used from `pos` on.
    buf: [u8; WIDE],
    pos: usize,
}

impl XSalsa20Stream {
    /// XSalsa20 under `key` with the 24-byte `nonce`: Salsa20/20 keyed by
    /// `HSalsa20(key, nonce[..16])` with `nonce[16..]`, counter from 0.
    pub(crate) fn new(key: &[u8; 32], nonce: &[u8; 24]) -> Self {
        let mut sub = salsa20::hsalsa::<U10>(key.into(), nonce[..16].into());
        let mut input = [0u32; 16];
        let word = |b: &[u8]| u32::from_le_bytes([b[0], b[1], b[2], b[3]]);
        input[0] = SIGMA[0];
        input[5] = SIGMA[1];
        input[10] = SIGMA[2];
        input[15] = SIGMA[3];
        for i in 0..4 {
            input[1 + i] = word(&sub[4 * i..]);
            input[11 + i] = word(&sub[16 + 4 * i..]);
        }
        input[6] = word(&nonce[16..]);
        input[7] = word(&nonce[20..]);
        sub.as_mut_slice().zeroize();
        XSalsa20Stream {
            input,
            counter: 0,
            buf: [0; WIDE],
            pos: WIDE,
        }
    }

    /// XORs the next `data.len()` keystream bytes into `data`.
    pub(crate) fn apply_keystream(&mut self, data: &mut [u8]) {
        let mut done = 0;
        while done < data.len() {
            if self.pos == WIDE {
                self.refill();
            }
            let n = (WIDE - self.pos).min(data.len() - done);
            for (d, k) in data[done..done + n]
                .iter_mut()
                .zip(&self.buf[self.pos..self.pos + n])
            {
                *d ^= k;
            }
            self.pos += n;
            done += n;
        }
    }

    /// The next eight blocks into `buf`.
    // Lane indices run over two arrays at once (counter words, then state and input); the
    // index form is what the vectorizer sees as eight independent lanes.
    #[allow(clippy::needless_range_loop)]
    fn refill(&mut self) {
        let mut init = [[0u32; LANES]; 16];
        for (w, lanes) in init.iter_mut().enumerate() {
            *lanes = [self.input[w]; LANES];
        }
        for l in 0..LANES {
            let c = self.counter.wrapping_add(l as u64);
            init[8][l] = c as u32;
            init[9][l] = (c >> 32) as u32;
        }
        let mut x = init;
        for _ in 0..10 {
            // Column round, then row round (the Salsa20 specification's doubleround).
            quarter(&mut x, 0, 4, 8, 12);
            quarter(&mut x, 5, 9, 13, 1);
            quarter(&mut x, 10, 14, 2, 6);
            quarter(&mut x, 15, 3, 7, 11);
            quarter(&mut x, 0, 1, 2, 3);
            quarter(&mut x, 5, 6, 7, 4);
            quarter(&mut x, 10, 11, 8, 9);
            quarter(&mut x, 15, 12, 13, 14);
        }
        for w in 0..16 {
            for l in 0..LANES {
                let v = x[w][l].wrapping_add(init[w][l]);
                let at = l * BLOCK + w * 4;
                self.buf[at..at + 4].copy_from_slice(&v.to_le_bytes());
            }
        }
        x.zeroize();
        init.zeroize();
        self.counter = self.counter.wrapping_add(LANES as u64);
        self.pos = 0;
    }
}

#[inline(always)]
fn quarter(x: &mut [Lanes; 16], a: usize, b: usize, c: usize, d: usize) {
    step(x, b, a, d, 7);
    step(x, c, b, a, 9);
    step(x, d, c, b, 13);
    step(x, a, d, c, 18);
}

/// `x[t] ^= (x[p] + x[q]) <<< r`, lane by lane.
#[inline(always)]
fn step(x: &mut [Lanes; 16], t: usize, p: usize, q: usize, r: u32) {
    let (p, q) = (x[p], x[q]);
    let t = &mut x[t];
    for l in 0..LANES {
        t[l] ^= p[l].wrapping_add(q[l]).rotate_left(r);
    }
}

impl Drop for XSalsa20Stream {
    fn drop(&mut self) {
        self.input.zeroize();
        self.buf.zeroize();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use salsa20::cipher::{KeyIvInit, StreamCipher};

    fn reference(key: &[u8; 32], nonce: &[u8; 24], data: &mut [u8]) {
        salsa20::XSalsa20::new(key.into(), nonce.into()).apply_keystream(data);
    }

    // Long enough to cross several refills, split at arbitrary points.
    proptest! {
        #[test]
        fn same_keystream_as_the_salsa20_crate(
            key in any::<[u8; 32]>(),
            nonce in any::<[u8; 24]>(),
            len in 0usize..5000,
            cuts in proptest::collection::vec(0usize..5000, 0..8),
        ) {
            let mut want = vec![0u8; len];
            reference(&key, &nonce, &mut want);
            let mut got = vec![0u8; len];
            let mut bounds: Vec<usize> = cuts.into_iter().map(|c| c.min(len)).collect();
            bounds.push(0);
            bounds.push(len);
            bounds.sort_unstable();
            let mut s = XSalsa20Stream::new(&key, &nonce);
            for w in bounds.windows(2) {
                s.apply_keystream(&mut got[w[0]..w[1]]);
            }
            prop_assert_eq!(got, want);
        }
    }

    /// The 32-bit block counter carries into word 9 (the reference increments a 64-bit
    /// counter): compare across the 2^32-block boundary.
    #[test]
    fn counter_carries_into_the_high_word() {
        let (key, nonce) = ([5u8; 32], [6u8; 24]);
        let mut s = XSalsa20Stream::new(&key, &nonce);
        s.counter = (1 << 32) - 3;
        let mut got = vec![0u8; 6 * BLOCK];
        s.apply_keystream(&mut got);
        let mut want = vec![0u8; 6 * BLOCK];
        let mut r = salsa20::XSalsa20::new((&key).into(), (&nonce).into());
        salsa20::cipher::StreamCipherSeek::seek(&mut r, ((1u64 << 32) - 3) * BLOCK as u64);
        r.apply_keystream(&mut want);
        assert_eq!(got, want);
    }

    /// Independent of both implementations: libsodium's `crypto_secretbox` (PyNaCl) of 600
    /// zero bytes under NaCl's test key and nonce is the keystream from byte 32 on (the first
    /// 32 bytes key Poly1305), so its last 32 bytes are keystream bytes 600..632 — past the
    /// first refill.
    #[test]
    fn libsodium_secretbox_keystream() {
        let key: [u8; 32] =
            hex::decode("1b27556473e985d462cd51197a9a46c76009549eac6474f206c4ee0844f68389")
                .unwrap()
                .try_into()
                .unwrap();
        let nonce: [u8; 24] = hex::decode("69696ee955b62b73cd62bda875fc73d68219e0036b7a0b37")
            .unwrap()
            .try_into()
            .unwrap();
        let mut out = [0u8; 632];
        XSalsa20Stream::new(&key, &nonce).apply_keystream(&mut out);
        assert_eq!(
            hex::encode(&out[600..]),
            "f963a64167629757a0737d7811ce96472efed12258b78122f11deaec8759ccbd"
        );
    }
}
