#!/usr/bin/env bash
# RUSTC_WRAPPER for the fuzz builds (run.sh sets it): compiles the cryptographic primitive
# crates listed below without sanitizer coverage, everything else exactly as asked.
#
# Why: the targets fuzz our parsers and state machines, not field arithmetic. Compare tracing
# inside curve25519-dalek, SHA-2, Salsa20 and friends cost a third of every `handshake` run
# (perf: `__sanitizer_cov_trace_const_cmp8`/`_cmp8` called from `FieldElement51::mul`), and
# its "coverage" only leads libFuzzer into constant-time arithmetic no input can steer. The
# crates stay optimized and keep `--cfg fuzzing` and debug assertions; only the
# `-Cpasses=sancov-module` / `-Cllvm-args=-sanitizer-coverage-*` arguments are dropped for them.
# rustls, webpki, x509-parser, ring and the ASN.1 crates stay instrumented (the tls_* targets
# fuzz them).
#
# Usage (by cargo): rustc-uninstrumented.sh <rustc> <args...>
set -euo pipefail
rustc="$1"
shift

uninstrumented=" aead block_buffer cipher crypto_secretbox curve25519_dalek digest ed25519
  ed25519_dalek fiat_crypto hkdf hmac inout keccak poly1305 ppv_lite86 pqcrypto_internals
  pqcrypto_ntruprime rand_chacha salsa20 sha2 sha3 subtle universal_hash x25519_dalek zeroize "

crate=""
prev=""
for a in "$@"; do
  if [ "$prev" = "--crate-name" ]; then crate="$a"; fi
  prev="$a"
done
case "$uninstrumented" in
  *[[:space:]]"$crate"[[:space:]]*) [ -n "$crate" ] || exec "$rustc" "$@" ;;
  *) exec "$rustc" "$@" ;;
esac

args=()
for a in "$@"; do
  case "$a" in
    -Cpasses=sancov-module | -Cllvm-args=-sanitizer-coverage-*) ;;
    *) args+=("$a") ;;
  esac
done
exec "$rustc" "${args[@]}"
