//! The XSalsa20 keystream for attachments (spec/xrcp.md §3.1, §10), many blocks at a time.
//!
//! The `salsa20` crate computes one 64-byte block at a time with scalar code (0.10 has no SIMD
//! backend), which made it the largest single cost of a file transfer (BENCHMARKS.md). Here
//! the state of several consecutive blocks is held word by word across lanes (`[u32; L]` per
//! state word), so every step of the double round is the same operation on `L` independent
//! values: safe Rust that the compiler turns into SIMD instructions.
//!
//! Which instructions is decided at run time. The workspace forbids `unsafe`, and calling a
//! `#[target_feature]` function from code compiled without that feature needs it, so the
//! detection and the call go through `pulp` (its `Simd::vectorize` runs an operation inside a
//! function compiled for the detected feature level, and our `#[inline(always)]` block
//! function is compiled into it): on x86-64 with AVX2 (or AVX-512 with the `avx512` feature)
//! sixteen blocks at a time, where the baseline (SSE2) build is fastest at eight and keeps
//! the portable path it had. Output is byte-identical to `salsa20::XSalsa20` on every path
//! (the tests run each path the CPU offers against the crate and libsodium's bytes).

use salsa20::cipher::consts::U10;
use zeroize::Zeroize;

const BLOCK: usize = 64;
/// Blocks per refill on the portable path: two SSE2 registers per state word in the baseline
/// x86-64 build (sixteen lanes there would spill).
const NARROW: usize = 8;
/// Blocks per refill on the AVX2 / AVX-512 paths: two ymm or one zmm register per word.
const WIDE_LANES: usize = 16;
/// Keystream bytes per refill: one wide refill, or two portable ones.
const WIDE: usize = WIDE_LANES * BLOCK;

/// "expand 32-byte k".
const SIGMA: [u32; 4] = [0x6170_7865, 0x3320_646e, 0x7962_2d32, 0x6b20_6574];

/// The code path that makes the keystream, chosen once per stream by CPU detection.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Engine {
    /// Eight lanes compiled for the build's target (SSE2 in the default x86-64 build).
    Portable,
    /// Sixteen lanes compiled for AVX2 (x86-64-v3).
    #[cfg(target_arch = "x86_64")]
    Avx2(pulp::x86::V3),
    /// Sixteen lanes compiled for AVX-512 (x86-64-v4; its vector rotate saves two of the
    /// three instructions per step).
    #[cfg(all(target_arch = "x86_64", feature = "avx512"))]
    Avx512(pulp::x86::V4),
}

impl Engine {
    /// The fastest path this CPU supports.
    pub(crate) fn detect() -> Self {
        #[cfg(all(target_arch = "x86_64", feature = "avx512"))]
        if let Some(v4) = pulp::x86::V4::try_new() {
            return Engine::Avx512(v4);
        }
        #[cfg(target_arch = "x86_64")]
        if let Some(v3) = pulp::x86::V3::try_new() {
            return Engine::Avx2(v3);
        }
        Engine::Portable
    }

    /// Every path this CPU can run, the portable one first (for tests and benchmarks).
    pub(crate) fn available() -> Vec<Self> {
        #[allow(unused_mut)]
        let mut all = vec![Engine::Portable];
        #[cfg(target_arch = "x86_64")]
        if let Some(v3) = pulp::x86::V3::try_new() {
            all.push(Engine::Avx2(v3));
        }
        #[cfg(all(target_arch = "x86_64", feature = "avx512"))]
        if let Some(v4) = pulp::x86::V4::try_new() {
            all.push(Engine::Avx512(v4));
        }
        all
    }

    /// A short name for reports.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Engine::Portable => "portable (8 lanes)",
            #[cfg(target_arch = "x86_64")]
            Engine::Avx2(_) => "AVX2 (16 lanes)",
            #[cfg(all(target_arch = "x86_64", feature = "avx512"))]
            Engine::Avx512(_) => "AVX-512 (16 lanes)",
        }
    }
}

/// XSalsa20 keystream generator; key material and unused keystream are wiped on drop.
pub(crate) struct XSalsa20Stream {
    /// The Salsa20 input block with the block counter (words 8 and 9) left at zero.
    input: [u32; 16],
    /// Index of the next block to generate.
    counter: u64,
    /// Keystream generated and not yet used from byte `pos` on.
    buf: [[u8; BLOCK]; WIDE_LANES],
    pos: usize,
    engine: Engine,
}

impl XSalsa20Stream {
    /// XSalsa20 under `key` with the 24-byte `nonce`: Salsa20/20 keyed by
    /// `HSalsa20(key, nonce[..16])` with `nonce[16..]`, counter from 0.
    pub(crate) fn new(key: &[u8; 32], nonce: &[u8; 24]) -> Self {
        Self::with_engine(key, nonce, Engine::detect())
    }

    /// As [`XSalsa20Stream::new`] on the given path (which the CPU must support: the
    /// `Engine` values come from `pulp`'s detection, so an unsupported one cannot be made).
    pub(crate) fn with_engine(key: &[u8; 32], nonce: &[u8; 24], engine: Engine) -> Self {
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
            buf: [[0; BLOCK]; WIDE_LANES],
            pos: WIDE,
            engine,
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
                .zip(&self.buf.as_flattened()[self.pos..self.pos + n])
            {
                *d ^= k;
            }
            self.pos += n;
            done += n;
        }
    }

    /// The next sixteen blocks into `buf`.
    fn refill(&mut self) {
        let (input, counter, blocks) = (&self.input, self.counter, &mut self.buf);
        match self.engine {
            Engine::Portable => {
                let (lo, hi) = blocks.split_at_mut(NARROW);
                blocks_into::<NARROW>(input, counter, lo);
                blocks_into::<NARROW>(input, counter.wrapping_add(NARROW as u64), hi);
            }
            #[cfg(target_arch = "x86_64")]
            Engine::Avx2(simd) => pulp::Simd::vectorize(
                simd,
                Wide {
                    input,
                    counter,
                    blocks,
                },
            ),
            #[cfg(all(target_arch = "x86_64", feature = "avx512"))]
            Engine::Avx512(simd) => pulp::Simd::vectorize(
                simd,
                Wide {
                    input,
                    counter,
                    blocks,
                },
            ),
        }
        self.counter = self.counter.wrapping_add(WIDE_LANES as u64);
        self.pos = 0;
    }
}

/// One wide refill as a `pulp` operation. A struct with an always-inlined `with_simd`
/// rather than a closure: a closure's body was called through its `FnOnce` shim, compiled
/// without the target features, instead of being inlined into pulp's AVX2 function.
#[cfg(target_arch = "x86_64")]
struct Wide<'a> {
    input: &'a [u32; 16],
    counter: u64,
    blocks: &'a mut [[u8; BLOCK]],
}

#[cfg(target_arch = "x86_64")]
impl pulp::WithSimd for Wide<'_> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: pulp::Simd>(self, _: S) {
        blocks_into::<WIDE_LANES>(self.input, self.counter, self.blocks)
    }
}

/// `L` consecutive Salsa20 blocks from `counter` on, block `l` into `out[l]`. Always inlined,
/// so that it is compiled with the target features of the function it is called from.
// Lane indices run over two arrays at once (counter words, then state and input); the
// index form is what the vectorizer sees as `L` independent lanes.
#[allow(clippy::needless_range_loop)]
#[inline(always)]
fn blocks_into<const L: usize>(input: &[u32; 16], counter: u64, out: &mut [[u8; BLOCK]]) {
    let out: &mut [[u8; BLOCK]; L] = out.try_into().expect("the caller passes exactly L blocks");
    let mut init = [[0u32; L]; 16];
    for (w, lanes) in init.iter_mut().enumerate() {
        *lanes = [input[w]; L];
    }
    for l in 0..L {
        let c = counter.wrapping_add(l as u64);
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
        for l in 0..L {
            let v = x[w][l].wrapping_add(init[w][l]);
            out[l][w * 4..w * 4 + 4].copy_from_slice(&v.to_le_bytes());
        }
    }
    x.zeroize();
    init.zeroize();
}

#[inline(always)]
fn quarter<const L: usize>(x: &mut [[u32; L]; 16], a: usize, b: usize, c: usize, d: usize) {
    step(x, b, a, d, 7);
    step(x, c, b, a, 9);
    step(x, d, c, b, 13);
    step(x, a, d, c, 18);
}

/// `x[t] ^= (x[p] + x[q]) <<< r`, lane by lane.
#[inline(always)]
fn step<const L: usize>(x: &mut [[u32; L]; 16], t: usize, p: usize, q: usize, r: u32) {
    let (p, q) = (x[p], x[q]);
    let t = &mut x[t];
    for l in 0..L {
        t[l] ^= p[l].wrapping_add(q[l]).rotate_left(r);
    }
}

/// The attachment keystream on a chosen code path, for the benchmark harness's paired
/// comparison of the paths (`xrcp-bench crypto`); not part of the API.
#[doc(hidden)]
#[derive(Clone, Copy, Debug)]
pub struct KeystreamPath(Engine);

impl KeystreamPath {
    /// Every path this CPU can run, the portable one first.
    pub fn available() -> Vec<Self> {
        Engine::available().into_iter().map(KeystreamPath).collect()
    }

    /// The path attachments use on this CPU.
    pub fn detected() -> Self {
        KeystreamPath(Engine::detect())
    }

    /// "portable (8 lanes)", "AVX2 (16 lanes)", …
    pub fn name(&self) -> &'static str {
        self.0.name()
    }

    /// XORs the XSalsa20 keystream under `key` and `nonce` (counter 0) into `data`.
    pub fn apply(&self, key: &[u8; 32], nonce: &[u8; 24], data: &mut [u8]) {
        XSalsa20Stream::with_engine(key, nonce, self.0).apply_keystream(data)
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
            let mut bounds: Vec<usize> = cuts.into_iter().map(|c| c.min(len)).collect();
            bounds.push(0);
            bounds.push(len);
            bounds.sort_unstable();
            for engine in Engine::available() {
                let mut got = vec![0u8; len];
                let mut s = XSalsa20Stream::with_engine(&key, &nonce, engine);
                for w in bounds.windows(2) {
                    s.apply_keystream(&mut got[w[0]..w[1]]);
                }
                prop_assert_eq!(&got, &want, "{}", engine.name());
            }
        }
    }

    /// The 32-bit block counter carries into word 9 (the reference increments a 64-bit
    /// counter): compare across the 2^32-block boundary.
    #[test]
    fn counter_carries_into_the_high_word() {
        let (key, nonce) = ([5u8; 32], [6u8; 24]);
        let mut want = vec![0u8; 20 * BLOCK];
        let mut r = salsa20::XSalsa20::new((&key).into(), (&nonce).into());
        salsa20::cipher::StreamCipherSeek::seek(&mut r, ((1u64 << 32) - 3) * BLOCK as u64);
        r.apply_keystream(&mut want);
        for engine in Engine::available() {
            let mut s = XSalsa20Stream::with_engine(&key, &nonce, engine);
            s.counter = (1 << 32) - 3;
            let mut got = vec![0u8; 20 * BLOCK];
            s.apply_keystream(&mut got);
            assert_eq!(got, want, "{}", engine.name());
        }
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
        for engine in Engine::available() {
            let mut out = [0u8; 632];
            XSalsa20Stream::with_engine(&key, &nonce, engine).apply_keystream(&mut out);
            assert_eq!(
                hex::encode(&out[600..]),
                "f963a64167629757a0737d7811ce96472efed12258b78122f11deaec8759ccbd",
                "{}",
                engine.name()
            );
        }
    }

    /// Run-time dispatch: where the CPU has AVX2 a stream does not settle for the portable
    /// path (`std`'s detection is the independent judge here, not pulp's).
    #[test]
    fn a_cpu_with_avx2_gets_a_simd_path() {
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
        {
            let engine = XSalsa20Stream::new(&[0; 32], &[0; 24]).engine;
            assert!(!matches!(engine, Engine::Portable), "{}", engine.name());
            assert!(Engine::available().len() >= 2);
        }
    }
}
