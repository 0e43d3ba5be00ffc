//! Searching this process's own memory for secrets (tests/tests/hardening_memory.rs).
//!
//! Every writable mapping listed in `/proc/self/maps` (heap, thread stacks, `.data`/`.bss`,
//! anonymous maps) is read through `/proc/self/mem` — no `unsafe` needed — and searched for
//! the secrets' bytes. Read-only mappings (code, constants) are skipped: a key made at run
//! time can only be in writable memory.
//!
//! The test must not hold the secrets itself, or it would find its own copy: a
//! [`MaskedSecret`] keeps only `secret ⊕ mask` and `mask` (random), and compares windows of
//! memory against them byte by byte. The buffer that memory is read into is excluded from
//! the search (it holds copies of what it read) and wiped afterwards.

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::os::unix::fs::FileExt;

use zeroize::Zeroizing;

/// A 32-byte secret held as `secret ⊕ mask` with its random `mask`, so that the holder's
/// memory contains neither the secret nor any 32-byte window equal to it.
#[derive(Clone)]
pub struct MaskedSecret {
    pub name: String,
    masked: [u8; 32],
    mask: [u8; 32],
}

impl MaskedSecret {
    pub fn new(name: &str, secret: &[u8; 32]) -> Self {
        let mut mask = [0u8; 32];
        mask[..24].copy_from_slice(&xrcp::crypto::Nonce::random().0);
        mask[24..].copy_from_slice(&xrcp::crypto::Nonce::random().0[..8]);
        let mut masked = [0u8; 32];
        for i in 0..32 {
            masked[i] = secret[i] ^ mask[i];
        }
        MaskedSecret {
            name: name.to_owned(),
            masked,
            mask,
        }
    }

    fn first_byte(&self) -> u8 {
        self.masked[0] ^ self.mask[0]
    }

    fn matches(&self, window: &[u8]) -> bool {
        window.len() >= 32 && (0..32).all(|i| window[i] ^ self.mask[i] == self.masked[i])
    }
}

/// One mapping from `/proc/self/maps`.
struct Region {
    start: u64,
    end: u64,
    label: String,
}

fn writable_regions() -> std::io::Result<Vec<Region>> {
    let maps = BufReader::new(File::open("/proc/self/maps")?);
    let mut out = Vec::new();
    for line in maps.lines() {
        let line = line?;
        let mut fields = line.split_whitespace();
        let (Some(range), Some(perms)) = (fields.next(), fields.next()) else {
            continue;
        };
        let label = fields.nth(3).unwrap_or("").to_owned();
        // Kernel-provided pages cannot hold our data and some cannot be read.
        if !perms.starts_with("rw") || label.starts_with("[v") {
            continue;
        }
        let Some((a, b)) = range.split_once('-') else {
            continue;
        };
        let (Ok(start), Ok(end)) = (u64::from_str_radix(a, 16), u64::from_str_radix(b, 16)) else {
            continue;
        };
        out.push(Region { start, end, label });
    }
    Ok(out)
}

/// Where each secret was found: `(secret name, address, mapping)` per occurrence.
pub struct ScanReport {
    pub hits: Vec<(String, u64, String)>,
    pub bytes_scanned: u64,
}

impl ScanReport {
    pub fn count(&self, name: &str) -> usize {
        self.hits.iter().filter(|h| h.0 == name).count()
    }
}

const CHUNK: usize = 1 << 20;

/// Searches every writable mapping of this process for each secret.
pub fn scan_own_memory(secrets: &[MaskedSecret]) -> std::io::Result<ScanReport> {
    let mem = File::open("/proc/self/mem")?;
    // One allocation above glibc's mmap threshold: its own mapping, excluded below.
    let mut buf = Zeroizing::new(vec![0u8; CHUNK + 31]);
    let own = (buf.as_ptr() as u64, buf.as_ptr() as u64 + buf.len() as u64);
    let regions = writable_regions()?;
    let mut report = ScanReport {
        hits: Vec::new(),
        bytes_scanned: 0,
    };
    for r in &regions {
        // The parts of the region outside the read buffer.
        let mut parts = Vec::new();
        if own.1 <= r.start || own.0 >= r.end {
            parts.push((r.start, r.end));
        } else {
            if r.start < own.0 {
                parts.push((r.start, own.0));
            }
            if own.1 < r.end {
                parts.push((own.1, r.end));
            }
        }
        for (start, end) in parts {
            let mut at = start;
            while at < end {
                // Chunks overlap by 31 bytes so that no window is cut in two.
                let len = ((end - at) as usize).min(CHUNK + 31);
                let got = match mem.read_at(&mut buf[..len], at) {
                    Ok(n) => n,
                    // Pages that cannot be read (e.g. a guard page) end this part.
                    Err(_) => break,
                };
                if got == 0 {
                    break;
                }
                report.bytes_scanned += got as u64;
                let data = &buf[..got];
                for s in secrets {
                    let first = s.first_byte();
                    let mut from = 0;
                    while let Some(i) = memchr::memchr(first, &data[from..]) {
                        let pos = from + i;
                        if s.matches(&data[pos..]) {
                            report
                                .hits
                                .push((s.name.clone(), at + pos as u64, r.label.clone()));
                        }
                        from = pos + 1;
                    }
                }
                if got <= 31 {
                    break;
                }
                at += (got - 31) as u64;
                if got < len {
                    break;
                }
            }
        }
    }
    Ok(report)
}

/// Overwrites the stack below the caller's frame (after a helper that held secrets there).
#[inline(never)]
pub fn scrub_stack() {
    let mut area = [0u8; 64 * 1024];
    std::hint::black_box(&mut area);
}
