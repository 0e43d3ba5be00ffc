#!/usr/bin/env python3
"""Generate the xrcp-rs known-answer vectors (spec/vectors/*.json).

Every value is computed by a small Python model of spec/xrcp.md and, wherever an
independent implementation exists on this machine, recomputed with it and compared:

  * libsodium (the copy bundled in PyNaCl, called through PyNaCl and through ctypes for the
    primitives PyNaCl does not wrap: crypto_core_hsalsa20, crypto_secretbox_detached,
    crypto_stream_xsalsa20_xor);
  * the `cryptography` package (X25519, Ed25519, DER SubjectPublicKeyInfo, HKDF, SHA3);
  * the Python standard library (hashlib, hmac, base64, urllib.parse);
  * published constants: NaCl core1/core2, RFC 5869, RFC 7748 §6.1, RFC 8032 §7.1, NIST SHA3,
    and the one padding example asserted by the Haskell reference's own test suite.

Values with no independent anchor (the XRCP-specific compositions: key schedule, invitation,
HELLO blocks) are "model" values: they follow from spec/xrcp.md and from anchored primitives,
and they are asserted against the headline values of spec/xrcp.md §14. Session bodies
(session.json) are opened again by a separate receiver model that uses libsodium and libzstd.

Run:  pip install pynacl cryptography zstandard && python3 spec/vectors/gen.py
The output is deterministic; running it twice gives byte-identical files.
"""

import base64
import ctypes
import hashlib
import hmac
import json
import os
import re
import struct
import urllib.parse

import nacl._sodium
import nacl.bindings as nb
import nacl.signing
from nacl.public import Box, PrivateKey, PublicKey
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, x25519
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
import zstandard

OUT_DIR = os.path.dirname(os.path.abspath(__file__))


def hx(b):
    return b.hex()


def check(cond, what):
    if not cond:
        raise AssertionError(what)


def check_eq(a, b, what):
    if a != b:
        raise AssertionError(f"{what}: {a!r} != {b!r}")


# ---------------------------------------------------------------------------------------------
# libsodium through ctypes (the library PyNaCl ships)

_SODIUM = ctypes.CDLL(nacl._sodium.__file__)
check(_SODIUM.sodium_init() >= 0, "sodium_init")


def sodium_hsalsa20(key, inp16):
    out = ctypes.create_string_buffer(32)
    check_eq(_SODIUM.crypto_core_hsalsa20(out, inp16, key, None), 0, "crypto_core_hsalsa20")
    return out.raw


def sodium_secretbox_detached(msg, nonce, key):
    """Returns (mac, ciphertext) of plain crypto_secretbox under `key`."""
    c = ctypes.create_string_buffer(max(len(msg), 1))
    mac = ctypes.create_string_buffer(16)
    rc = _SODIUM.crypto_secretbox_detached(c, mac, msg, ctypes.c_ulonglong(len(msg)), nonce, key)
    check_eq(rc, 0, "crypto_secretbox_detached")
    return mac.raw, c.raw[: len(msg)]


def sodium_xsalsa20_xor(msg, nonce, key):
    out = ctypes.create_string_buffer(max(len(msg), 1))
    rc = _SODIUM.crypto_stream_xsalsa20_xor(out, msg, ctypes.c_ulonglong(len(msg)), nonce, key)
    check_eq(rc, 0, "crypto_stream_xsalsa20_xor")
    return out.raw[: len(msg)]


# ---------------------------------------------------------------------------------------------
# Pure-Python model of the primitives (spec §3)

M32 = 0xFFFFFFFF
SIGMA = struct.unpack("<4I", b"expand 32-byte k")


def _rotl(v, c):
    return ((v << c) & M32) | (v >> (32 - c))


def _salsa_rounds(x):
    def qr(a, b, c, d):
        x[b] ^= _rotl((x[a] + x[d]) & M32, 7)
        x[c] ^= _rotl((x[b] + x[a]) & M32, 9)
        x[d] ^= _rotl((x[c] + x[b]) & M32, 13)
        x[a] ^= _rotl((x[d] + x[c]) & M32, 18)

    for _ in range(10):
        qr(0, 4, 8, 12)
        qr(5, 9, 13, 1)
        qr(10, 14, 2, 6)
        qr(15, 3, 7, 11)
        qr(0, 1, 2, 3)
        qr(5, 6, 7, 4)
        qr(10, 11, 8, 9)
        qr(15, 12, 13, 14)


def _salsa_state(key, inp16):
    k = struct.unpack("<8I", key)
    i = struct.unpack("<4I", inp16)
    return [SIGMA[0], k[0], k[1], k[2], k[3], SIGMA[1], i[0], i[1], i[2], i[3],
            SIGMA[2], k[4], k[5], k[6], k[7], SIGMA[3]]


def py_hsalsa20(key, inp16):
    x = _salsa_state(key, inp16)
    _salsa_rounds(x)
    return struct.pack("<8I", x[0], x[5], x[10], x[15], x[6], x[7], x[8], x[9])


def py_salsa20_stream(key, nonce8, n):
    out = bytearray()
    ctr = 0
    while len(out) < n:
        s0 = _salsa_state(key, nonce8 + struct.pack("<Q", ctr))
        x = list(s0)
        _salsa_rounds(x)
        out += struct.pack("<16I", *[(a + b) & M32 for a, b in zip(x, s0)])
        ctr += 1
    return bytes(out[:n])


def py_xsalsa20_stream(key, nonce24, n):
    return py_salsa20_stream(py_hsalsa20(key, nonce24[:16]), nonce24[16:], n)


def py_poly1305(key32, msg):
    r = int.from_bytes(key32[:16], "little") & 0x0FFFFFFC0FFFFFFC0FFFFFFC0FFFFFFF
    s = int.from_bytes(key32[16:], "little")
    p = (1 << 130) - 5
    acc = 0
    for i in range(0, len(msg), 16):
        acc = (acc + int.from_bytes(msg[i:i + 16] + b"\x01", "little")) * r % p
    return ((acc + s) % (1 << 128)).to_bytes(16, "little")


def py_xsalsa20poly1305(key, nonce, msg):
    """(tag, ciphertext) of the XSalsa20-Poly1305 construction with an already-derived key."""
    ks = py_xsalsa20_stream(key, nonce, 32 + len(msg))
    ct = bytes(a ^ b for a, b in zip(msg, ks[32:]))
    return py_poly1305(ks[:32], ct), ct


Z16 = bytes(16)


def box(key, nonce, msg):
    """The reference's box (spec §3.1): tag ‖ ciphertext under HSalsa20(key, 0^16).

    Computed twice: pure Python, and libsodium crypto_secretbox (via PyNaCl) keyed with
    libsodium's own crypto_core_hsalsa20(key, 0^16). Both must agree.
    """
    sub = py_hsalsa20(key, Z16)
    check_eq(sub, sodium_hsalsa20(key, Z16), "hsalsa20 model vs libsodium")
    tag, ct = py_xsalsa20poly1305(sub, nonce, msg)
    lib = nb.crypto_secretbox(msg, nonce, sodium_hsalsa20(key, Z16))
    check_eq(tag + ct, lib, "box model vs libsodium secretbox(HSalsa20(key))")
    mac, c2 = sodium_secretbox_detached(msg, nonce, sub)
    check_eq((mac, c2), (tag, ct), "box model vs libsodium secretbox_detached")
    ks_lib = sodium_xsalsa20_xor(b"\0" * (32 + len(msg)), nonce, sub)
    check_eq(ks_lib, py_xsalsa20_stream(sub, nonce, 32 + len(msg)), "xsalsa20 stream vs libsodium")
    return tag + ct


def box_open(key, nonce, data):
    return nb.crypto_secretbox_open(data, nonce, sodium_hsalsa20(key, Z16))


def box_tail_tag(key, nonce, msg):
    """Session-data variant (spec §3.1): ciphertext ‖ tag, no padding."""
    out = box(key, nonce, msg)
    return out[16:] + out[:16]


def pad(msg, n):
    if len(msg) > 65533 or n - len(msg) - 2 < 0:
        return None
    return struct.pack(">H", len(msg)) + msg + b"#" * (n - len(msg) - 2)


def unpad(b):
    if len(b) < 2:
        return None
    (n,) = struct.unpack(">H", b[:2])
    if len(b) - 2 < n:
        return None
    return b[2:2 + n]


def hkdf_sha512(salt, ikm, info, n):
    """RFC 5869 with SHA-512 via hmac, cross-checked with `cryptography`'s HKDF."""
    prk = hmac.new(salt, ikm, hashlib.sha512).digest()
    out, t, i = b"", b"", 1
    while len(out) < n:
        t = hmac.new(prk, t + info + bytes([i]), hashlib.sha512).digest()
        out += t
        i += 1
    out = out[:n]
    # An empty salt must behave as 64 zero bytes: hand `cryptography` None in that case.
    lib = HKDF(algorithm=hashes.SHA512(), length=n, salt=salt or None, info=info).derive(ikm)
    check_eq(out, lib, "hkdf model vs cryptography")
    return out


def sha3_256(b):
    d = hashlib.sha3_256(b).digest()
    h = hashes.Hash(hashes.SHA3_256())
    h.update(b)
    check_eq(d, h.finalize(), "sha3 hashlib vs cryptography")
    return d


def chain_init(secret):
    o = hkdf_sha512(b"", secret, b"SimpleXSbChainInit", 64)
    return o[:32], o[32:]


def chain_step(ck):
    """One chain step: (next chain key, message key, nonce) -- next key FIRST (spec §3.4)."""
    o = hkdf_sha512(b"", ck, b"SimpleXSbChain", 88)
    return o[:32], o[32:64], o[64:88]


# ---------------------------------------------------------------------------------------------
# Text encodings (spec §2.2)

B64_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"


def b64u(b):
    return base64.urlsafe_b64encode(b).decode()


def b64u_decode_ref(s):
    """Model of the reference's base64url decoder (padded or unpadded, canonical bits only).
    Returns bytes, or None when the reference rejects the text."""
    if s == "":
        return None  # the text parser needs at least one character
    r = len(s) % 4
    if r == 1:
        return None
    if r == 2:
        s = s + "=="
    elif r == 3:
        if s.endswith("="):
            return None
        s = s + "="
    vals = []
    for i, ch in enumerate(s):
        if ch == "=":
            vals.append(None)
        elif ch in B64_ALPHABET:
            vals.append(B64_ALPHABET.index(ch))
        else:
            return None
    out = bytearray()
    for q in range(0, len(vals), 4):
        a, b, c, d = vals[q:q + 4]
        last = q + 4 == len(vals)
        if a is None or b is None:
            return None
        if (c is None or d is None) and not last:
            return None
        if c is None and d is not None:
            return None
        w = (a << 18) | (b << 12) | ((c or 0) << 6) | (d or 0)
        if c is None:
            if b & 0x0F:
                return None
            out += bytes([w >> 16])
        elif d is None:
            if c & 0x03:
                return None
            out += bytes([w >> 16, (w >> 8) & 0xFF])
        else:
            out += bytes([w >> 16, (w >> 8) & 0xFF, w & 0xFF])
    return bytes(out)


UNRESERVED = set(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.~")


def url_encode(b):
    out = "".join(chr(c) if c in UNRESERVED else "%%%02X" % c for c in b)
    check_eq(out, urllib.parse.quote(b, safe="-_.~"), "url_encode vs urllib.parse.quote")
    return out


def url_decode(b):
    """The reference's query decoder: %XX either case, '+' -> space, bad escapes kept."""
    out = bytearray()
    i = 0
    while i < len(b):
        c = b[i]
        if c == ord("+"):
            out.append(0x20)
            i += 1
        elif c == ord("%") and re.fullmatch(rb"[0-9A-Fa-f]{2}", b[i + 1:i + 3]):
            out.append(int(b[i + 1:i + 3], 16))
            i += 3
        else:
            out.append(c)
            i += 1
    return bytes(out)


def aeson_encode(v):
    """Compact JSON as the reference's aeson writes a Value: object keys sorted, strings escaped
    only for '"', '\\' and C0 controls (\\n \\r \\t short, others \\u00xx lowercase)."""
    if v is None:
        return "null"
    if v is True:
        return "true"
    if v is False:
        return "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, str):
        out = ['"']
        for ch in v:
            o = ord(ch)
            if ch == '"':
                out.append('\\"')
            elif ch == "\\":
                out.append("\\\\")
            elif ch == "\n":
                out.append("\\n")
            elif ch == "\r":
                out.append("\\r")
            elif ch == "\t":
                out.append("\\t")
            elif o < 0x20:
                out.append("\\u%04x" % o)
            else:
                out.append(ch)
        out.append('"')
        return "".join(out)
    if isinstance(v, list):
        return "[" + ",".join(aeson_encode(x) for x in v) + "]"
    if isinstance(v, dict):
        # Data.Map order on Text keys = code point order, which Python's str sort matches.
        return "{" + ",".join(aeson_encode(k) + ":" + aeson_encode(v[k]) for k in sorted(v)) + "}"
    raise TypeError(type(v))


def verification_code(bs):
    n = int.from_bytes(bs, "big")
    s = str(n)
    # second computation: repeated division, no int->str builtin
    digits, m = [], n
    while True:
        digits.append("0123456789"[m % 10])
        m //= 10
        if m == 0:
            break
    check_eq("".join(reversed(digits)), s, "decimal conversion")
    return " ".join(s[i:i + 5] for i in range(0, len(s), 5))


X25519_SPKI_PREFIX = bytes.fromhex("302a300506032b656e032100")
ED25519_SPKI_PREFIX = bytes.fromhex("302a300506032b6570032100")


def spki_x25519(raw):
    der = x25519.X25519PublicKey.from_public_bytes(raw).public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    check_eq(der, X25519_SPKI_PREFIX + raw, "x25519 spki")
    return der


def spki_ed25519(raw):
    der = ed25519.Ed25519PublicKey.from_public_bytes(raw).public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    check_eq(der, ED25519_SPKI_PREFIX + raw, "ed25519 spki")
    return der


# ---------------------------------------------------------------------------------------------
# Published key material

RFC7748_ALICE_SK = bytes.fromhex("77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a")
RFC7748_ALICE_PK = bytes.fromhex("8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a")
RFC7748_BOB_SK = bytes.fromhex("5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb")
RFC7748_BOB_PK = bytes.fromhex("de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f")
RFC7748_SHARED = bytes.fromhex("4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742")

RFC8032 = [
    ("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60",
     "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a",
     "",
     "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e06522490155"
     "5fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b"),
    ("4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb",
     "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c",
     "72",
     "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da"
     "085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00"),
    ("c5aa8df43f9f837bedb7442f31dcb7b166d38535076f094b85ce3a2e0b4458f7",
     "fc51cd8e6218a1a38da47ed00230f0580816ed13ba3303ac5deb911548908025",
     "af82",
     "6291d657deec24024827e69c3abe01a30ce548a284743a445e3680d7db5ac3ac"
     "18ff9b538d16f290ae67f760984dc6594a7c15e9716ed28dc027beceea1ec40a"),
]


def x25519_pub(sk):
    pk = x25519.X25519PrivateKey.from_private_bytes(sk).public_key().public_bytes_raw()
    check_eq(pk, nb.crypto_scalarmult_base(sk), "x25519 base: cryptography vs libsodium")
    return pk


def x25519_dh(sk, pk):
    s = x25519.X25519PrivateKey.from_private_bytes(sk).exchange(
        x25519.X25519PublicKey.from_public_bytes(pk))
    check_eq(s, nb.crypto_scalarmult(sk, pk), "x25519 dh: cryptography vs libsodium")
    return s


def ed25519_pub(seed):
    pk = ed25519.Ed25519PrivateKey.from_private_bytes(seed).public_key().public_bytes_raw()
    check_eq(pk, bytes(nacl.signing.SigningKey(seed).verify_key), "ed25519 pk: cryptography vs libsodium")
    return pk


def ed25519_sign(seed, msg):
    sig = ed25519.Ed25519PrivateKey.from_private_bytes(seed).sign(msg)
    check_eq(sig, nacl.signing.SigningKey(seed).sign(msg).signature, "ed25519 sig: cryptography vs libsodium")
    return sig


def ed25519_verify(pk, sig, msg):
    try:
        ed25519.Ed25519PublicKey.from_public_bytes(pk).verify(sig, msg)
        return True
    except Exception:
        return False


# Sanity of the anchors themselves.
check_eq(x25519_pub(RFC7748_ALICE_SK), RFC7748_ALICE_PK, "RFC 7748 alice pk")
check_eq(x25519_pub(RFC7748_BOB_SK), RFC7748_BOB_PK, "RFC 7748 bob pk")
check_eq(x25519_dh(RFC7748_ALICE_SK, RFC7748_BOB_PK), RFC7748_SHARED, "RFC 7748 shared (alice)")
check_eq(x25519_dh(RFC7748_BOB_SK, RFC7748_ALICE_PK), RFC7748_SHARED, "RFC 7748 shared (bob)")
for sk, pk, msg, sig in RFC8032:
    check_eq(hx(ed25519_pub(bytes.fromhex(sk))), pk, "RFC 8032 pk")
    check_eq(hx(ed25519_sign(bytes.fromhex(sk), bytes.fromhex(msg))), sig, "RFC 8032 sig")
# RFC 5869 test case 1 (SHA-256) checks the HKDF construction used with SHA-512 above.
_prk = hmac.new(bytes(range(13)), b"\x0b" * 22, hashlib.sha256).digest()
_t1 = hmac.new(_prk, bytes(range(0xF0, 0xFA)) + b"\x01", hashlib.sha256).digest()
_t2 = hmac.new(_prk, _t1 + bytes(range(0xF0, 0xFA)) + b"\x02", hashlib.sha256).digest()
check_eq(hx((_t1 + _t2)[:42]), "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf"
         "34007208d5b887185865", "RFC 5869 test 1")

RFC8032_1_SK = bytes.fromhex(RFC8032[0][0])
RFC8032_1_PK = bytes.fromhex(RFC8032[0][1])
RFC8032_2_SK = bytes.fromhex(RFC8032[1][0])
RFC8032_2_PK = bytes.fromhex(RFC8032[1][1])


def write(name, obj):
    path = os.path.join(OUT_DIR, name)
    with open(path, "w", encoding="utf-8") as f:
        json.dump(obj, f, indent=2, ensure_ascii=False)
        f.write("\n")
    print("wrote", os.path.relpath(path))


# =============================================================================================
# encoding.json

def gen_encoding():
    pads = []
    for msg, size in [(b"abc", 5), (b"abc", 4), (b"abc", 10), (b"", 2), (b"", 4), (b"", 1),
                      (b"hello", 16), (bytes(range(256)), 260)]:
        p = pad(msg, size)
        if p is not None:
            check_eq(len(p), size, "pad size")
            check_eq(unpad(p), msg, "unpad(pad)")
        pads.append({"msg": hx(msg), "size": size, "padded": hx(p) if p is not None else None})
    # The reference's own test suite asserts this one (spec §14.1).
    check_eq(pads[0]["padded"], "0003616263", "pad('abc',5)")
    check_eq(pads[1]["padded"], None, "pad('abc',4) fails")
    check_eq(pads[2]["padded"], "00036162632323232323", "pad('abc',10)")
    check_eq(pads[4]["padded"], "00002323", "pad('',4)")

    # The length limit, without spelling out 64 KiB of hex: msg = msg_len bytes of 0x78 ('x').
    limits = []
    for n, size in [(65533, 65535), (65533, 65536), (65534, 65536), (65534, 70000), (100, 101)]:
        p = pad(b"x" * n, size)
        limits.append({"msg_len": n, "size": size, "ok": p is not None})
    check_eq([e["ok"] for e in limits], [True, True, False, False, False], "pad limits")

    unpads = []
    for p in ["00036162", "0000", "00", "", "0003616263", "000361626323", "00036162637a7a",
              "ffff00", "0001ff"]:
        m = unpad(bytes.fromhex(p))
        unpads.append({"padded": p, "msg": hx(m) if m is not None else None})
    check_eq(unpads[0]["msg"], None, "unpad short")
    check_eq(unpads[1]["msg"], "", "unpad empty")
    check_eq(unpads[6]["msg"], "616263", "unpad ignores fill bytes")

    b64 = []
    for b in [b"", b"A", b"AB", b"ABC", bytes([0xFB, 0xFF]), bytes([0xFF] * 3), bytes(range(32)),
              X25519_SPKI_PREFIX + RFC7748_ALICE_PK, bytes(64), bytes(i % 256 for i in range(1158)),
              bytes((7 * i) % 256 for i in range(1039))]:
        t = b64u(b)
        check_eq(base64.urlsafe_b64decode(t), b, "stdlib round trip")
        if b:
            check_eq(b64u_decode_ref(t), b, "reference decoder accepts canonical text")
            check_eq(b64u_decode_ref(t.rstrip("=")), b, "reference decoder accepts unpadded text")
        b64.append({"bytes": hx(b), "text": t})
    lens = {len(bytes.fromhex(e["bytes"])): e["text"] for e in b64}
    check(len(lens[32]) == 44 and lens[32].endswith("=") and not lens[32].endswith("=="), "32B b64")
    check(len(lens[44]) == 60 and lens[44].endswith("="), "44B b64")
    check(len(lens[64]) == 88 and lens[64].endswith("=="), "64B b64")
    check(len(lens[1158]) == 1544 and not lens[1158].endswith("="), "1158B b64")
    check(len(lens[1039]) == 1388 and lens[1039].endswith("=="), "1039B b64")
    check_eq(lens[44], "MCowBQYDK2VuAyEAhSDwCYkwp1R0i33ctD73Wg2_Og0mOBr066SpjqqbTmo=", "§14.2 alice str")

    # Accepted on input although not what we write: unpadded forms.
    b64_accept = [{"text": "QQ", "bytes": "41"}, {"text": "QUI", "bytes": "4142"},
                  {"text": "-_8", "bytes": "fbff"},
                  {"text": "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8",
                   "bytes": hx(bytes(range(32)))}]
    for e in b64_accept:
        check_eq(hx(b64u_decode_ref(e["text"])), e["bytes"], "accepted unpadded")

    rejects = ["", "A", "AAAAA", "QR==", "QR", "QUF=", "QUF", "QQ=", "Q===", "====", "QQ==QQ==",
               "+/8=", "ab/c", "a b=", "QQ=A", "-_9"]
    for t in rejects:
        check(b64u_decode_ref(t) is None, f"reference rejects {t!r}")

    urls = []
    for b in [b'{"a":"b c+d/e~f"}', b"", b"AZaz09-_.~", b"=&?#/:;@+ %", bytes([0x00, 0x7F, 0x80, 0xFF]),
              "é✓".encode(), b'{"deviceName":"My Desktop"}']:
        urls.append({"bytes": hx(b), "text": url_encode(b)})
    check_eq(urls[0]["text"], "%7B%22a%22%3A%22b%20c%2Bd%2Fe~f%22%7D", "§14.2 url encode")

    spki = []
    for alg, raw in [("x25519", RFC7748_ALICE_PK), ("x25519", RFC7748_BOB_PK),
                     ("ed25519", RFC8032_1_PK), ("ed25519", RFC8032_2_PK)]:
        der = spki_x25519(raw) if alg == "x25519" else spki_ed25519(raw)
        check_eq(len(der), 44, "spki length")
        text = b64u(der)
        check(text.startswith("MCowBQYDK2VuAyEA" if alg == "x25519" else "MCowBQYDK2VwAyEA"), "spki prefix")
        spki.append({"alg": alg, "raw": hx(raw), "spki": hx(der), "text": text})

    versions = [
        {"text": "1", "min": 1, "max": 1},
        {"text": "1-2", "min": 1, "max": 2},
        {"text": "1-1", "min": 1, "max": 1, "note": "parses; written back as \"1\""},
        {"text": "0-65535", "min": 0, "max": 65535},
        {"text": "2-1", "invalid": True},
        {"text": "", "invalid": True},
        {"text": "-", "invalid": True},
        {"text": "1-", "invalid": True},
        {"text": "a", "invalid": True},
        {"text": "1-2-3", "invalid": True},
        {"text": "+1", "invalid": True},
        {"text": "01", "invalid": True,
         "note": "stricter than the reference, which accepts leading zeros (spec §13.2)"},
        {"text": "65536", "invalid": True,
         "note": "stricter than the reference, which wraps to 0 (spec §13.2)"},
    ]

    # aeson-compatible rendering of a JSON value (used for the invitation's app field).
    json_values = []
    for src in [
        '{"deviceName": "My Desktop", "appVersionRange": {"minVersion": "6.4.6.0", "maxVersion": "6.4.6.0"}}',
        '{"b":1,"a":[true,false,null,-7,0],"A":{}}',
        '{"s":"quote\\" backslash\\\\ slash/ tab\\t nl\\n cr\\r bs\\b ff\\f nul\\u0000 us\\u001f del\\u007f"}',
        '{"u":"caf\\u00e9 \\u2713 \\ud83d\\ude00"}',
        '[]',
        '"x"',
    ]:
        val = json.loads(src)
        json_values.append({"input": src, "canonical": aeson_encode(val)})
    check_eq(json_values[0]["canonical"],
             '{"appVersionRange":{"maxVersion":"6.4.6.0","minVersion":"6.4.6.0"},"deviceName":"My Desktop"}',
             "aeson app json")

    write("encoding.json", {
        "pad": pads,
        "pad_limits": limits,
        "unpad": unpads,
        "base64url": b64,
        "base64url_decode_accept": b64_accept,
        "base64url_decode_reject": rejects,
        "url_encode": urls,
        "spki": spki,
        "version_range": versions,
        "json_value": json_values,
    })


# =============================================================================================
# crypto.json

def gen_crypto():
    hs = []
    for key, inp in [(RFC7748_SHARED, Z16),
                     (bytes.fromhex("1b27556473e985d462cd51197a9a46c76009549eac6474f206c4ee0844f68389"),
                      bytes.fromhex("69696ee955b62b73cd62bda875fc73d6")),
                     (bytes(range(32)), Z16), (bytes(32), Z16), (bytes([0xFF] * 32), bytes([0xFF] * 16))]:
        out = py_hsalsa20(key, inp)
        check_eq(out, sodium_hsalsa20(key, inp), "hsalsa20 vs libsodium")
        hs.append({"key": hx(key), "input": hx(inp), "output": hx(out)})
    # NaCl tests/core1.c ("firstkey") and tests/core2.c ("secondkey").
    check_eq(hs[0]["output"], "1b27556473e985d462cd51197a9a46c76009549eac6474f206c4ee0844f68389", "NaCl core1")
    check_eq(hs[1]["output"], "dc908dda0b9344a953629b733820778880f3ceb421bb61b91cbd4c3e66256ce4", "NaCl core2")
    # crypto_box_beforenm is HSalsa20(dh, 0^16): a third route to the first value.
    check_eq(nb.crypto_box_beforenm(RFC7748_BOB_PK, RFC7748_ALICE_SK).hex(), hs[0]["output"], "beforenm")

    boxes = []
    n0 = bytes(range(24))

    # 1. DH-keyed: equals libsodium crypto_box_easy (Alice -> Bob).
    out = box(RFC7748_SHARED, n0, b"hello")
    lib = Box(PrivateKey(RFC7748_ALICE_SK), PublicKey(RFC7748_BOB_PK)).encrypt(b"hello", n0).ciphertext
    check_eq(out, lib, "box == crypto_box_easy")
    check_eq(hx(out), "ba2e1e56b96566ce1dd470d02620a4b16d2b3cc974", "§14.3 dh box")
    boxes.append({"what": "key = raw X25519 output (RFC 7748 shared); equals libsodium crypto_box_easy(alice sk, bob pk)",
                  "key": hx(RFC7748_SHARED), "nonce": hx(n0), "msg": hx(b"hello"), "pad_to": None, "output": hx(out)})

    # 2. Symmetric key 00..1f: NOT plain crypto_secretbox.
    k = bytes(range(32))
    out = box(k, n0, b"hello")
    plain = nb.crypto_secretbox(b"hello", n0, k)
    check(out != plain, "symmetric box must differ from plain secretbox")
    check_eq(hx(out), "36b6b5a5ae4454bef6c196db32f2f49703ebb0dcaf", "§14.3 sym box")
    check(hx(plain).startswith("6698275b") and hx(plain).endswith("a8"), "§14.3 plain secretbox")
    boxes.append({"what": "symmetric key 00..1f", "key": hx(k), "nonce": hx(n0), "msg": hx(b"hello"),
                  "pad_to": None, "output": hx(out), "plain_secretbox_must_differ": hx(plain)})

    # 3. The input of the reference's tsSecretboxTests, padded to 256.
    k = bytes(range(1, 33))
    n1 = bytes(range(1, 25))
    msg = b"hello NaCl secretbox"
    out = box(k, n1, pad(msg, 256))
    check_eq(len(out), 272, "padded box length")
    check_eq(hx(out[:16]), "bc861d7776bd7b5ef059d8b5b415d38a", "§14.3 padded tag")
    check_eq(hashlib.sha256(out).hexdigest(),
             "77cb90ec68815fe43db9bd72578b5bb0d54b5b51c0dea3fd9aabb6b066bd3396", "§14.3 padded sha")
    boxes.append({"what": "symmetric key 01..20, nonce 01..18, padded to 256", "key": hx(k), "nonce": hx(n1),
                  "msg": hx(msg), "pad_to": 256, "output": hx(out)})

    # 4. Empty message, zero key/nonce: output is the tag alone.
    out = box(bytes(32), bytes(24), b"")
    check_eq(len(out), 16, "empty box")
    boxes.append({"what": "empty message, zero key and nonce", "key": hx(bytes(32)), "nonce": hx(bytes(24)),
                  "msg": "", "pad_to": None, "output": hx(out)})

    # 5. Multi-block message (crosses Poly1305 and Salsa20 block boundaries).
    msg = bytes(i % 251 for i in range(200))
    out = box(bytes([0xA5] * 32), bytes([0x5A] * 24), msg)
    boxes.append({"what": "200-byte message", "key": "a5" * 32, "nonce": "5a" * 24, "msg": hx(msg),
                  "pad_to": None, "output": hx(out)})
    for b in boxes:
        m = bytes.fromhex(b["msg"])
        if b["pad_to"] is not None:
            m = pad(m, b["pad_to"])
        check_eq(box_open(bytes.fromhex(b["key"]), bytes.fromhex(b["nonce"]), bytes.fromhex(b["output"])), m,
                 "box opens")

    tail = []
    for k, n, m in [(bytes(range(32)), n0, b"hello"), (bytes(32), bytes(24), b""),
                    (bytes([0xA5] * 32), bytes([0x5A] * 24), bytes(i % 251 for i in range(200)))]:
        out = box_tail_tag(k, n, m)
        mac, ct = sodium_secretbox_detached(m, n, sodium_hsalsa20(k, Z16))
        check_eq(out, ct + mac, "tail tag vs libsodium detached")
        tail.append({"key": hx(k), "nonce": hx(n), "msg": hx(m), "output": hx(out)})

    x = [{"secret": hx(RFC7748_ALICE_SK), "public": hx(RFC7748_ALICE_PK), "peer_public": hx(RFC7748_BOB_PK),
          "shared": hx(RFC7748_SHARED)},
         {"secret": hx(RFC7748_BOB_SK), "public": hx(RFC7748_BOB_PK), "peer_public": hx(RFC7748_ALICE_PK),
          "shared": hx(RFC7748_SHARED)}]

    ed = [{"secret": sk, "public": pk, "msg": msg, "signature": sig} for sk, pk, msg, sig in RFC8032]

    sha3 = []
    for m in [b"", b"abc", RFC7748_SHARED + b"\x42" * 32]:
        sha3.append({"msg": hx(m), "digest": hx(sha3_256(m))})
    check_eq(sha3[0]["digest"], "a7ffc6f8bf1ed76651c14756a061d662f580ff4de43b49fa82d80a4b80f8434a", "NIST sha3 ''")
    check_eq(sha3[1]["digest"], "3a985da74fe225b2045c172d6bd390bd855f086e3e9d525b46bfe24511431532", "NIST sha3 abc")

    hk = []
    for salt, ikm, info, n in [
        (bytes(range(13)), b"\x0b" * 22, bytes(range(0xF0, 0xFA)), 42),       # RFC 5869 #1 inputs
        (bytes(range(0x60, 0xB0)), bytes(range(0x50)), bytes(range(0xB0, 0x100)), 82),  # RFC 5869 #2 inputs
        (b"", b"\x0b" * 22, b"", 42),                                         # RFC 5869 #3 inputs
        (b"", bytes(32), b"SimpleXSbChainInit", 64),
        (b"", bytes(range(32)), b"SimpleXSbChain", 88),
        (bytes(64), bytes(range(32)), b"SimpleXSbChain", 88),                 # = the empty-salt case
    ]:
        hk.append({"salt": hx(salt), "ikm": hx(ikm), "info": hx(info), "length": n,
                   "okm": hx(hkdf_sha512(salt, ikm, info, n))})
    check_eq(hk[4]["okm"], hk[5]["okm"], "empty salt == 64 zero bytes")

    codes = []
    for tu in [bytes(range(32)), bytes([0xFF] * 32), bytes([1, 0]), bytes(32), bytes([0, 0, 1]),
               (100000).to_bytes(12, "big"), bytes(range(0xA0, 0xAC))]:
        codes.append({"tls_unique": hx(tu), "code": verification_code(tu)})
    check_eq(codes[0]["code"], "17807 31860 62770 00449 60722 56837 65922 00742 32963 73031 99754 54759 83699 79440 671",
             "§14.5 00..1f")
    check_eq(codes[1]["code"], "11579 20892 37316 19542 35709 85008 68790 78532 69984 66564 05640 39457 58400 79131 29639 935",
             "§14.5 ff*32")
    check_eq(codes[2]["code"], "256", "01 00")
    check_eq(codes[5]["code"], "10000 0", "100000")

    write("crypto.json", {
        "hsalsa20": hs,
        "box": boxes,
        "box_tail_tag": tail,
        "x25519": x,
        "ed25519": ed,
        "sha3_256": sha3,
        "hkdf_sha512": hk,
        "session_code": codes,
    })


# =============================================================================================
# key_schedule.json

def schedule(hybrid):
    a, b = chain_init(hybrid)

    def steps(ck):
        out = []
        for _ in range(3):
            nxt, key, nonce = chain_step(ck)
            out.append({"key": hx(key), "nonce": hx(nonce), "next": hx(nxt)})
            ck = nxt
        return out

    return {"chain_a": hx(a), "chain_b": hx(b), "steps_a": steps(a), "steps_b": steps(b)}


KEM_SS = b"\x42" * 32


def gen_key_schedule():
    hybrid = sha3_256(RFC7748_SHARED + KEM_SS)
    c1 = {"input": "dh_kem", "dh_shared": hx(RFC7748_SHARED), "kem_shared": hx(KEM_SS), "hybrid": hx(hybrid)}
    c1.update(schedule(hybrid))
    check_eq(c1["hybrid"], "1a3822b2055e8b06798c7b077473ecd4fc849f85ba33b97e522fc8527b8750bd", "§14.4 hybrid")
    check_eq(c1["chain_a"], "ad29a1017e90c4ff8f2c64e3c2735d42f6cb1547d3d2a64267987d0c9661d6bf", "§14.4 A")
    check_eq(c1["chain_b"], "3049eb692ea57647a401c0f060cb81d4bce8f56d5a0a9b86d517665a99993f26", "§14.4 B")
    check_eq(c1["steps_a"][0], {"key": "906399fe1632da38dde771c004651ee94e53ded3d24cb33ddd539a6c057509f0",
                                "nonce": "3ba1385636b1f6888799a22be5caca2a2925bd81584cb917",
                                "next": "7b92f86a9f695c809cb0e7453eb668c2e85b6b0670f695253ce8f161c32c4ed1"},
             "§14.4 A step 1")
    c2 = {"input": "hybrid", "hybrid": hx(bytes(32))}
    c2.update(schedule(bytes(32)))
    check(c2["chain_a"].startswith("cf009a56") and c2["chain_a"].endswith("cc9f"), "§14.4 sbcInit(0) A")
    check(c2["chain_b"].startswith("75272bf8") and c2["chain_b"].endswith("0836"), "§14.4 sbcInit(0) B")
    write("key_schedule.json", {"cases": [c1, c2]})
    return c1


# =============================================================================================
# invitation.json

INV = {
    "ca": bytes(range(32)),
    "host": "192.168.1.10",
    "port": 45678,
    "v": "1",
    "app": {"appVersionRange": {"minVersion": "6.4.6.0", "maxVersion": "6.4.6.0"}, "deviceName": "My Desktop"},
    "ts": 1700000000,
}


def render_invitation(ca, host, port, v, app_json, ts, skey_pk, idkey_pk, dh_pk):
    q = [("v", v.encode()), ("app", app_json.encode()), ("ts", str(ts).encode()),
         ("skey", b64u(spki_ed25519(skey_pk)).encode()), ("idkey", b64u(spki_ed25519(idkey_pk)).encode()),
         ("dh", b64u(spki_x25519(dh_pk)).encode())]
    query = "&".join(url_encode(k.encode()) + "=" + url_encode(val) for k, val in q)
    return f"xrcp:/{b64u(ca)}@{host}:{port}#/?{query}"


def sign_invitation(uri, s_sk, id_sk):
    ssig = ed25519_sign(s_sk, uri.encode())
    idsig = ed25519_sign(id_sk, (uri + "&ssig=" + b64u(ssig)).encode())
    return uri + "&ssig=" + b64u(ssig) + "&idsig=" + b64u(idsig)


class Reject(Exception):
    def __init__(self, kind):
        super().__init__(kind)
        self.kind = kind


def _query(text):
    """http-types parseSimpleQuery: split on & and ;, first '=' splits, both sides decoded."""
    items = []
    for part in re.split(rb"[&;]", text):
        if part == b"":
            continue
        k, _, v = part.partition(b"=")
        items.append((url_decode(k), url_decode(v)))
    return items


def _lookup(q, k):
    for kk, vv in q:
        if kk == k:
            return vv
    raise Reject("SYNTAX")


def _b64(text):
    m = re.fullmatch(r"([A-Za-z0-9_-]+=*)", text)
    if not m:
        raise Reject("SYNTAX")
    b = b64u_decode_ref(text)
    if b is None:
        raise Reject("SYNTAX")
    return b


def _key(text, prefix):
    der = _b64(text)
    if len(der) != 44 or der[:12] != prefix:
        raise Reject("SYNTAX")
    return der[12:]


def _sig(text):
    b = _b64(text)
    if len(b) != 64:
        raise Reject("SYNTAX")
    return b


def reference_transport_host(h):
    """The reference's TransportHost parser (IPv4, then .onion, then a domain name), on the
    bytes before the first ':'. Its alternatives do not backtrack once one matched, so text
    after a complete IPv4 address or after '.onion' fails. IPv4 parts wrap modulo 256."""
    m = re.match(rb"([0-9]+)\.([0-9]+)\.([0-9]+)\.([0-9]+)", h)
    if m:
        if m.end() != len(h):
            raise Reject("SYNTAX")
        return ".".join(str(int(x) % 256) for x in m.groups())
    first = h.split(b".", 1)[0]
    if h[len(first):].startswith(b".onion"):
        if len(h) != len(first) + len(b".onion"):
            raise Reject("SYNTAX")
        return h.decode()
    if h == b"" or re.search(rb"[:#,;/ ]", h):
        raise Reject("SYNTAX")
    return h.decode()


def reference_host_check(text):
    """Model of what a reference host does with a scanned URI: parse (SYNTAX on failure),
    re-serialize canonically, verify both signatures over that (INVITATION on failure).
    Returns the parsed fields on success."""
    raw = text.encode()
    m = re.match(rb"xrcp:/([A-Za-z0-9_-]+=*)@([^:]*):([0-9]+)#/\?([^ ]*)", raw)
    if not m or m.end() != len(raw):
        raise Reject("SYNTAX")
    ca = _b64(m.group(1).decode())
    host = reference_transport_host(url_decode(m.group(2)))
    port = int(m.group(3)) % 65536
    q = _query(m.group(4))
    v = _lookup(q, b"v").decode()
    if not re.fullmatch(r"[0-9]+(-[0-9]+)?", v):
        raise Reject("SYNTAX")
    try:
        app = json.loads(url_decode(_lookup(q, b"app")).decode())
    except ValueError:
        raise Reject("SYNTAX")
    ts_text = url_decode(_lookup(q, b"ts")).decode()
    if not re.fullmatch(r"[+-]?[0-9]+", ts_text):
        raise Reject("SYNTAX")
    ts = int(ts_text)
    skey = _key(_lookup(q, b"skey").decode(), ED25519_SPKI_PREFIX)
    idkey = _key(_lookup(q, b"idkey").decode(), ED25519_SPKI_PREFIX)
    dh = _key(_lookup(q, b"dh").decode(), X25519_SPKI_PREFIX)
    at = raw.find(b"&ssig=")
    if at < 0:
        raise Reject("SYNTAX")
    sq = _query(raw[at + 1:])
    ssig = _sig(_lookup(sq, b"ssig").decode())
    idsig = _sig(_lookup(sq, b"idsig").decode())
    canon = render_invitation(ca, host, port, v, aeson_encode(app), ts, skey, idkey, dh)
    if not (ed25519_verify(skey, ssig, canon.encode()) and
            ed25519_verify(idkey, idsig, (canon + "&ssig=" + b64u(ssig)).encode())):
        raise Reject("INVITATION")
    return {"ca": ca, "host": host, "port": port, "v": v, "app": app, "ts": ts, "skey": skey,
            "idkey": idkey, "dh": dh}


def _flip(s, i):
    c = s[i]
    return s[:i] + ("B" if c != "B" else "C") + s[i + 1:]


def gen_invitation():
    s_pk, id_pk = RFC8032_1_PK, RFC8032_2_PK
    dh_sk, dh_pk = RFC7748_ALICE_SK, RFC7748_ALICE_PK
    app_json = aeson_encode(INV["app"])
    uri = render_invitation(INV["ca"], INV["host"], INV["port"], INV["v"], app_json, INV["ts"], s_pk, id_pk, dh_pk)
    signed = sign_invitation(uri, RFC8032_1_SK, RFC8032_2_SK)
    ssig_t = signed[len(uri) + len("&ssig="):signed.index("&idsig=")]
    idsig_t = signed[signed.index("&idsig=") + len("&idsig="):]
    check_eq(signed, (
        "xrcp:/AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=@192.168.1.10:45678#/?v=1&app=%7B%22appVersionRange"
        "%22%3A%7B%22maxVersion%22%3A%226.4.6.0%22%2C%22minVersion%22%3A%226.4.6.0%22%7D%2C%22deviceName%22%3A"
        "%22My%20Desktop%22%7D&ts=1700000000&skey=MCowBQYDK2VwAyEA11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo%3D"
        "&idkey=MCowBQYDK2VwAyEAPUAXw-hDiVqStwqnTRt-vJyYLM8uxJaMwM1V8Sr0Zgw%3D&dh=MCowBQYDK2VuAyEAhSDwCYkwp1R0i33"
        "ctD73Wg2_Og0mOBr066SpjqqbTmo%3D&ssig=xttFBt_Cm5iyX8lNz-na95P6bfgW8JSNy702vb3q1qLD4eDha1ib2nmzaF73LK0-gZ6"
        "1rqDgwtbWV1RonNTRCg==&idsig=AJTY8r9dN-JIGkBQ4WFIZD_zVClYbVElaJfzOZuqugD4_uiM94KVMsBa87ZF44PywAPtSKWtdl"
        "V0Qh7PF4-XDg=="), "§14.6 signed invitation")
    check_eq(len(signed), 629, "§14.6 length")
    reference_host_check(signed)

    def rep(old, new, count=1):
        check(old in signed, f"variant source {old!r}")
        return signed.replace(old, new, count)

    bob_dh = b64u(spki_x25519(RFC7748_BOB_PK)).replace("=", "%3D")
    alice_dh = b64u(spki_x25519(dh_pk)).replace("=", "%3D")
    skey_t = b64u(spki_ed25519(s_pk)).replace("=", "%3D")
    idkey_t = b64u(spki_ed25519(id_pk)).replace("=", "%3D")
    cut = signed.index("&ssig=")
    tampered = [
        ("one character of ssig changed", signed.replace(ssig_t, _flip(ssig_t, 10)), "INVITATION"),
        ("one character of idsig changed", signed.replace(idsig_t, _flip(idsig_t, 10)), "INVITATION"),
        ("ts changed", rep("ts=1700000000", "ts=1700000001"), "INVITATION"),
        ("ca changed", rep("xrcp:/AAEC", "xrcp:/AQEC"), "INVITATION"),
        ("port changed", rep(":45678#", ":45679#"), "INVITATION"),
        ("host changed", rep("@192.168.1.10:", "@192.168.1.11:"), "INVITATION"),
        ("dh replaced by another X25519 key", rep("dh=" + alice_dh, "dh=" + bob_dh), "INVITATION"),
        ("skey and idkey swapped", rep("skey=" + skey_t + "&idkey=" + idkey_t,
                                       "skey=" + idkey_t + "&idkey=" + skey_t), "INVITATION"),
        ("deviceName changed in app", rep("My%20Desktop", "My%20Laptop"), "INVITATION"),
        ("v changed to 1-2", rep("?v=1&", "?v=1-2&"), "INVITATION"),
        ("app parameter dropped", rep("&app=" + url_encode(app_json.encode()), ""), "SYNTAX"),
        ("ts parameter dropped", rep("&ts=1700000000", ""), "SYNTAX"),
        ("dh parameter dropped", rep("&dh=" + alice_dh, ""), "SYNTAX"),
        ("signatures missing", signed[:cut], "SYNTAX"),
        ("idsig missing", signed[:signed.index("&idsig=")], "SYNTAX"),
        ("ssig truncated to 63 bytes", signed.replace(ssig_t, ssig_t[:-4]), "SYNTAX"),
        ("ssig with non-canonical trailing bits", signed.replace(ssig_t, ssig_t[:-3] + "h=="), "SYNTAX"),
        ("dh holds an Ed25519 key", rep("dh=" + alice_dh, "dh=" + skey_t), "SYNTAX"),
        ("skey holds an X25519 key", rep("skey=" + skey_t, "skey=" + bob_dh), "SYNTAX"),
        ("app is not JSON", rep("app=%7B", "app=%7C"), "SYNTAX"),
        ("scheme xrcp://", rep("xrcp:/", "xrcp://"), "SYNTAX"),
        ("trailing text after a space", signed + " extra", "SYNTAX"),
        ("trailing newline", signed + "\n", "SYNTAX"),
        ("empty string", "", "SYNTAX"),
    ]
    tampered_out = []
    for what, text, kind in tampered:
        check(text != signed, f"variant {what} differs")
        try:
            reference_host_check(text)
            raise AssertionError(f"tampered variant accepted: {what}")
        except Reject as r:
            check_eq(r.kind, kind, f"tampered variant {what}")
        tampered_out.append({"what": what, "uri": text, "error": kind})

    q = uri[uri.index("#/?") + 3:]
    params = q.split("&")
    reordered = uri[:uri.index("#/?") + 3] + "&".join([params[5], params[3], params[0], params[4], params[2], params[1]])
    sigs = signed[cut:]
    accepted = [
        ("parameters reordered", reordered + sigs),
        ("unknown parameter before the signatures", uri + "&x=1" + sigs),
        ("unknown parameter after the signatures", signed + "&zz=yes"),
        ("skey without base64 padding", rep("skey=" + skey_t, "skey=" + skey_t[:-3])),
        ("skey with a raw '=' instead of %3D", rep("skey=" + skey_t, "skey=" + skey_t[:-3] + "=")),
        ("lower-case percent escapes in app", rep("app=%7B%22appVersionRange%22", "app=%7b%22appVersionRange%22")),
        ("';' as the separator before ts", rep("&ts=", ";ts=")),
    ]
    accepted_out = []
    for what, text in accepted:
        check(text != signed, f"accepted variant {what} differs")
        got = reference_host_check(text)
        check_eq((got["ca"], got["dh"], got["ts"]), (INV["ca"], dh_pk, INV["ts"]), f"accepted {what}")
        accepted_out.append({"what": what, "uri": text})

    # The same invitation advertising a relay's domain name (a controller reachable through a
    # tunnel): signed over the name, parsed back as a name by the reference's rules.
    domain_uri = render_invitation(INV["ca"], "relay.example.com", 5225, INV["v"], app_json, INV["ts"],
                                   s_pk, id_pk, dh_pk)
    domain_signed = sign_invitation(domain_uri, RFC8032_1_SK, RFC8032_2_SK)
    check_eq(reference_host_check(domain_signed)["host"], "relay.example.com", "domain host parsed")
    check("@relay.example.com:5225#/?" in domain_signed, "domain host written verbatim")
    domain_tampered = []
    for what, old, new, kind in [
        ("domain name changed", "@relay.example.com:", "@relay.example.org:", "INVITATION"),
        ("text after a complete IPv4 address", "@relay.example.com:", "@10.0.0.1.example.com:", "SYNTAX"),
        ("text after .onion", "@relay.example.com:", "@relay.onion.example.com:", "SYNTAX"),
        ("empty host", "@relay.example.com:", "@:", "SYNTAX"),
    ]:
        text = domain_signed.replace(old, new, 1)
        try:
            reference_host_check(text)
            raise AssertionError(f"domain variant accepted: {what}")
        except Reject as r:
            check_eq(r.kind, kind, f"domain variant {what}")
        domain_tampered.append({"what": what, "uri": text, "error": kind})

    write("invitation.json", {
        "ca": hx(INV["ca"]),
        "host": INV["host"],
        "port": INV["port"],
        "v": INV["v"],
        "app": app_json,
        "ts": INV["ts"],
        "skey": {"secret": hx(RFC8032_1_SK), "public": hx(s_pk)},
        "idkey": {"secret": hx(RFC8032_2_SK), "public": hx(id_pk)},
        "dh": {"secret": hx(dh_sk), "public": hx(dh_pk)},
        "uri": uri,
        "ssig": ssig_t,
        "idsig": idsig_t,
        "signed_uri": signed,
        "tampered": tampered_out + domain_tampered,
        "accepted_variants": accepted_out,
        "domain_host": {"host": "relay.example.com", "port": 5225, "uri": domain_uri,
                        "signed_uri": domain_signed},
    })
    return signed


# =============================================================================================
# messages.json

HELLO_PAD = 12288
BLOCK = 16384
ANNOUNCE_PAD = 900


def gen_messages(signed, ks):
    # Announcement (spec §5): key = raw X25519(host's previous DH pub, controller session DH sk).
    ann_key = x25519_dh(RFC7748_ALICE_SK, RFC7748_BOB_PK)
    nonce_a = bytes(range(24))
    enc = box(ann_key, nonce_a, pad(signed.encode(), ANNOUNCE_PAD))
    dgram = bytes([44]) + spki_x25519(RFC7748_ALICE_PK) + nonce_a + enc
    check_eq(len(dgram), 985, "announcement size")
    check_eq(hashlib.sha256(dgram).hexdigest(), "77da9e6fa321f4fbf8b4c72dc802352be2afe8dd359ed619fe6416682042a926",
             "§14.7 announcement")
    # the host side opens it with its own key pair
    check_eq(unpad(box_open(x25519_dh(RFC7748_BOB_SK, dgram[13:45]), dgram[45:69], dgram[69:])), signed.encode(),
             "announcement opens")
    announcement = {
        "controller_dh": {"secret": hx(RFC7748_ALICE_SK), "public": hx(RFC7748_ALICE_PK)},
        "host_dh": {"secret": hx(RFC7748_BOB_SK), "public": hx(RFC7748_BOB_PK)},
        "key": hx(ann_key),
        "nonce": hx(nonce_a),
        "signed_uri": signed,
        "pad_to": ANNOUNCE_PAD,
        "datagram": hx(dgram),
        "length": len(dgram),
        "sha256": hashlib.sha256(dgram).hexdigest(),
    }

    # Host HELLO (spec §7.2).
    k1 = x25519_dh(RFC7748_BOB_SK, RFC7748_ALICE_PK)  # host DH sk, invitation dh
    kem_pk = bytes(i % 256 for i in range(1158))
    host_ca = bytes(range(32, 64))
    host_app = {"deviceName": "My Phone"}
    hello_json = ('{"v":1,"ca":"' + b64u(host_ca) + '","app":' + aeson_encode(host_app) +
                  ',"kem":"' + b64u(kem_pk) + '"}').encode()
    nonce_h = bytes(range(100, 124))
    content = (b"HELLO " + bytes([44]) + spki_x25519(RFC7748_BOB_PK) + nonce_h +
               box(k1, nonce_h, pad(hello_json, HELLO_PAD)))
    block = pad(content, BLOCK)
    check_eq(len(hello_json), 1644, "§14.7 hello json")
    check_eq(len(content), 12379, "§14.7 hello content")
    check_eq(hx(block[:8]), "305b48454c4c4f20", "§14.7 hello start")
    check_eq(hashlib.sha256(block).hexdigest(), "4590b9eafc1b722e2c1d254b9867486e02595743eff32683af9bbcd4dca4b303",
             "§14.7 host hello")
    # the controller opens it with its session key
    c = unpad(block)
    check_eq(unpad(box_open(x25519_dh(RFC7748_ALICE_SK, c[19:51]), c[51:75], c[75:])), hello_json, "hello opens")
    host_hello = {
        "host_dh": {"secret": hx(RFC7748_BOB_SK), "public": hx(RFC7748_BOB_PK)},
        "controller_dh_public": hx(RFC7748_ALICE_PK),
        "key": hx(k1),
        "nonce": hx(nonce_h),
        "host_ca_fingerprint": hx(host_ca),
        "app": aeson_encode(host_app),
        "kem_public": hx(kem_pk),
        "json": hello_json.decode(),
        "content_length": len(content),
        "block_sha256": hashlib.sha256(block).hexdigest(),
        "block_prefix": hx(block[:64]),
        "block": hx(block),
    }

    # Controller HELLO (spec §7.3): first step of chain A keys it.
    kem_ct = bytes((7 * i) % 256 for i in range(1039))
    sk1 = bytes.fromhex(ks["steps_a"][0]["key"])
    n1 = bytes.fromhex(ks["steps_a"][0]["nonce"])
    content2 = b"HELLO " + struct.pack(">H", len(kem_ct)) + kem_ct + box(sk1, n1, pad(b"{}", HELLO_PAD))
    block2 = pad(content2, BLOCK)
    check_eq(len(content2), 13351, "§14.7 ctrl content")
    check_eq(hx(block2[:10]), "342748454c4c4f20040f", "§14.7 ctrl start")
    check_eq(hashlib.sha256(block2).hexdigest(), "e79e4be9c1f52a33ba15e026296cf3a61541b7231fbb4a2d53a7110188a13fc9",
             "§14.7 ctrl hello")
    ctrl_hello = {
        "kem_ciphertext": hx(kem_ct),
        "dh_shared": ks["dh_shared"],
        "kem_shared": ks["kem_shared"],
        "key": hx(sk1),
        "nonce": hx(n1),
        "json": "{}",
        "content_length": len(content2),
        "block_sha256": hashlib.sha256(block2).hexdigest(),
        "block_prefix": hx(block2[:64]),
        "block": hx(block2),
    }

    # Controller ERROR (spec §7.4): never sent by the reference, but its host opens it with
    # cbDecrypt, i.e. open AND unpad, so the text must be padded (we pad to 12288).
    nonce_e = bytes(range(0x30, 0x48))
    err_text = "host identity mismatch"
    content3 = b"ERROR " + nonce_e + box(k1, nonce_e, pad(err_text.encode(), HELLO_PAD))
    block3 = pad(content3, BLOCK)
    check_eq(unpad(box_open(k1, nonce_e, content3[30:])), err_text.encode(), "error opens")
    ctrl_error = {
        "key": hx(k1),
        "nonce": hx(nonce_e),
        "text": err_text,
        "pad_to": HELLO_PAD,
        "content": hx(content3),
        "content_length": len(content3),
        "block_sha256": hashlib.sha256(block3).hexdigest(),
    }

    # Session data (spec §10): tail-tag boxes with chain keys.
    a2 = ks["steps_a"][1]
    b1 = ks["steps_b"][0]
    cmd = box_tail_tag(bytes.fromhex(a2["key"]), bytes.fromhex(a2["nonce"]), b"command message")
    rsp = box_tail_tag(bytes.fromhex(b1["key"]), bytes.fromhex(b1["nonce"]), b"response message")
    check_eq(hx(cmd), "794273c0b050133a93eb2fdf7ec74fe6558bc461ca24a1a5424e4022934753", "§14.7 ctrl data")
    check_eq(hx(rsp), "46436f390f247a8d566ce0847d9ee03107a931613f47c87d48bacb8fe1e872ee", "§14.7 host data")
    session_data = [
        {"what": "controller's 2nd send on chain A (its first command body)", "chain": "a", "step": 2,
         "key": a2["key"], "nonce": a2["nonce"], "msg": hx(b"command message"), "output": hx(cmd)},
        {"what": "host's 1st send on chain B (its first response body)", "chain": "b", "step": 1,
         "key": b1["key"], "nonce": b1["nonce"], "msg": hx(b"response message"), "output": hx(rsp)},
    ]

    # Full HTTP/2 bodies (spec §10.2): the first command and the first response.
    tls_unique = bytes(range(0xC0, 0xE0))
    cmd_json = b'{"type":"send","command":"/u","retryNumber":0}'
    pt = bytes([len(tls_unique)]) + tls_unique + cmd_json
    ct = box_tail_tag(bytes.fromhex(a2["key"]), bytes.fromhex(a2["nonce"]), pt)
    signed_part = struct.pack(">II", 1, len(ct)) + ct
    h1 = hashlib.sha512(signed_part).digest()
    ssig = ed25519_sign(RFC8032_1_SK, h1)
    idsig = ed25519_sign(RFC8032_2_SK, hashlib.sha512(signed_part + ssig).digest())
    req = signed_part + bytes([64]) + ssig + bytes([64]) + idsig
    rsp_json = b'{"type":"chatEvent"}'
    pt2 = bytes([len(tls_unique)]) + tls_unique + rsp_json
    ct2 = box_tail_tag(bytes.fromhex(b1["key"]), bytes.fromhex(b1["nonce"]), pt2)
    resp = struct.pack(">II", 1, len(ct2)) + ct2
    session_body = [
        {"what": "controller's first request body (corrId 1, body key = chain A step 2, no attachment)",
         "corr_id": 1, "tls_unique": hx(tls_unique), "json": cmd_json.decode(), "key": a2["key"], "nonce": a2["nonce"],
         "session_key_secret": hx(RFC8032_1_SK), "identity_key_secret": hx(RFC8032_2_SK),
         "attachment_key": ks["steps_a"][2]["key"], "attachment_nonce": ks["steps_a"][2]["nonce"],
         "body": hx(req)},
        {"what": "host's first response body (corrId 1, body key = chain B step 1, no signatures)",
         "corr_id": 1, "tls_unique": hx(tls_unique), "json": rsp_json.decode(), "key": b1["key"], "nonce": b1["nonce"],
         "attachment_key": ks["steps_b"][1]["key"], "attachment_nonce": ks["steps_b"][1]["nonce"],
         "body": hx(resp)},
    ]

    write("messages.json", {
        "announcement": announcement,
        "host_hello": host_hello,
        "ctrl_hello": ctrl_hello,
        "ctrl_error": ctrl_error,
        "session_data": session_data,
        "session_body": session_body,
    })


# =============================================================================================
# session.json

def sha512(b):
    d = hashlib.sha512(b).digest()
    h = hashes.Hash(hashes.SHA512())
    h.update(b)
    check_eq(d, h.finalize(), "sha512 hashlib vs cryptography")
    return d


def zstd_frame(data):
    """A single zstd frame (RFC 8878 §3.1.1) holding `data` in one raw block, with the content
    size recorded and no checksum: what one-shot zstd compression emits for a short message
    that does not compress. Checked against libzstd (the `zstandard` package) at level 3, the
    reference's level (spec §10.2): both must give these exact bytes, and libzstd must decode
    them back."""
    check(len(data) < 256, "one-byte content size")
    check(len(data) < 1 << 21, "one block")
    fhd = 0x20  # Single_Segment_flag; Frame_Content_Size_flag 0 -> a 1-byte size field
    block_header = (len(data) << 3) | (0 << 1) | 1  # Block_Size, Block_Type = Raw, Last_Block
    frame = (b"\x28\xb5\x2f\xfd" + bytes([fhd, len(data)]) + block_header.to_bytes(3, "little") + data)
    check_eq(frame, zstandard.ZstdCompressor(level=3).compress(data), "zstd frame vs libzstd level 3")
    check_eq(zstandard.ZstdDecompressor().decompress(frame), data, "libzstd decodes the frame")
    return frame


class SessionSide:
    """One side of a session (spec §8, §10.2): its send chain and send counter, and for the
    controller the two Ed25519 seeds that sign requests."""

    def __init__(self, chain, tls_unique, compression, signing=None):
        self.chain = chain
        self.counter = 0
        self.tls_unique = tls_unique
        self.compression = compression
        self.signing = signing

    def next_keys(self):
        """corrId = ++counter; two chain steps: the body's key and nonce, then the
        attachment's (taken whether or not there is one)."""
        self.counter += 1
        self.chain, body_key, body_nonce = chain_step(self.chain)
        self.chain, file_key, file_nonce = chain_step(self.chain)
        return self.counter, (body_key, body_nonce), (file_key, file_nonce)

    def body(self, corr_id, body_kn, json_bytes):
        payload = zstd_frame(json_bytes) if self.compression else json_bytes
        plain = bytes([len(self.tls_unique)]) + self.tls_unique + payload
        ct = box_tail_tag(body_kn[0], body_kn[1], plain)
        out = struct.pack(">II", corr_id, len(ct)) + ct
        if self.signing is not None:
            session_seed, identity_seed = self.signing
            ssig = ed25519_sign(session_seed, sha512(out))
            idsig = ed25519_sign(identity_seed, sha512(out + ssig))
            out += bytes([64]) + ssig + bytes([64]) + idsig
        return out


def attachment(file_kn, data):
    """01 ‖ u32be(size + 16) ‖ tail-tag box of the file (spec §10.2)."""
    return bytes([1]) + struct.pack(">I", len(data) + 16) + box_tail_tag(file_kn[0], file_kn[1], data)


def open_body(body, body_kn, tls_unique, compression, verify):
    """The receiving side of spec §10.2, independent of SessionSide: returns the JSON and the
    attachment bytes after the body."""
    corr_id, ct_len = struct.unpack(">II", body[:8])
    ct = body[8:8 + ct_len]
    rest = body[8 + ct_len:]
    if verify is not None:
        s_pk, id_pk = verify
        check_eq((rest[0], rest[65]), (64, 64), "signature lengths")
        ssig, idsig = rest[1:65], rest[66:130]
        nacl.signing.VerifyKey(s_pk).verify(hashlib.sha512(body[:8 + ct_len]).digest(), ssig)
        nacl.signing.VerifyKey(id_pk).verify(hashlib.sha512(body[:8 + ct_len] + ssig).digest(), idsig)
        rest = rest[130:]
    plain = nb.crypto_secretbox_open(ct[-16:] + ct[:-16], body_kn[1], sodium_hsalsa20(body_kn[0], Z16))
    check_eq(plain[:1 + len(tls_unique)], bytes([len(tls_unique)]) + tls_unique, "tls-unique prefix")
    payload = plain[1 + len(tls_unique):]
    if compression:
        payload = zstandard.ZstdDecompressor().decompress(payload)
    return payload, rest


SESSION_HYBRID = b"\x42" * 32
SESSION_TLS_UNIQUE = b"\x5a" * 32


def file_json(data):
    return aeson_encode_ordered([("type", "file"), ("fileSize", len(data)),
                                 ("fileDigest", b64u(sha512(data)))])


def aeson_encode_ordered(fields):
    """A JSON object with its fields in the given order (the order the reference's records are
    written in, spec §2.5)."""
    return "{" + ",".join(aeson_encode(k) + ":" + aeson_encode(v) for k, v in fields) + "}"


def session_script(compression):
    """(name, request?, json text, attachment bytes or None), in the order they are sent."""
    if compression:
        return [
            ("compressed request 1: recv", True, '{"type":"recv","wait":10000000}', None),
            ("compressed response 1: bare chatEvent (poll timeout)", False, '{"type":"chatEvent"}', None),
        ]
    data = bytes(range(64))
    return [
        ("request 1: send", True, '{"type":"send","command":"/_get chats 1 pcc=on","retryNumber":0}', None),
        ("response 1: chatResponse", False,
         '{"type":"chatResponse","chatResponse":{"result":{"type":"cmdOk","user_":null}}}', None),
        ("request 2: getFile", True,
         '{"type":"getFile","file":{"userId":1,"fileId":3,"sent":false,"fileSource":{"filePath":"x.jpg"}}}',
         None),
        ("response 2: file with attachment", False, file_json(data), data),
    ]


def gen_session():
    s_pk, id_pk = ed25519_pub(RFC8032_1_SK), ed25519_pub(RFC8032_2_SK)
    cases = []
    for compression in [False, True]:
        # spec §8: (A, B) = chain_init(hybrid); the controller's HELLO took A's first step.
        a, b = chain_init(SESSION_HYBRID)
        a, _, _ = chain_step(a)
        ctrl = SessionSide(a, SESSION_TLS_UNIQUE, compression, signing=(RFC8032_1_SK, RFC8032_2_SK))
        host = SessionSide(b, SESSION_TLS_UNIQUE, compression)
        for name, request, json_text, data in session_script(compression):
            sender = ctrl if request else host
            corr_id, body_kn, file_kn = sender.next_keys()
            body = sender.body(corr_id, body_kn, json_text.encode())
            got, rest = open_body(body, body_kn, SESSION_TLS_UNIQUE, compression,
                                  (s_pk, id_pk) if request else None)
            check_eq((got, rest), (json_text.encode(), b""), f"{name} opens")
            case = {
                "name": name,
                "direction": "controller_to_host" if request else "host_to_controller",
                "corr_id": corr_id,
                "compression": compression,
                "json": json_text,
                "body_key": hx(body_kn[0]),
                "body_nonce": hx(body_kn[1]),
                "file_key": hx(file_kn[0]),
                "file_nonce": hx(file_kn[1]),
                "body": hx(body),
            }
            if data is not None:
                wire = attachment(file_kn, data)
                check_eq(nb.crypto_secretbox_open(wire[-16:] + wire[5:-16], file_kn[1],
                                                  sodium_hsalsa20(file_kn[0], Z16)), data, f"{name} attachment")
                case["file"] = hx(data)
                case["attachment"] = hx(wire)
            cases.append(case)
    # The first request and response equal messages.json's construction (chain A step 2, chain
    # B step 1) under this file's secrets: corrIds 1 and 1, counted per direction.
    check_eq([c["corr_id"] for c in cases], [1, 1, 2, 2, 1, 1], "corrIds per direction")
    write("session.json", {
        "description": (
            "XRCP session bodies (spec/xrcp.md §8, §10.2). Chains: chain_init(hybrid_secret) = (A, B); "
            "the controller sends on A after the one step its HELLO took, the host sends on B. Each "
            "corrId takes two steps: body key/nonce, then attachment key/nonce. Request = u32be corrId | "
            "u32be ctLen | ct | 0x40 ssig | 0x40 idsig; response = u32be corrId | u32be ctLen | ct "
            "[| attachment]. ct = tail-tag box (§3.1) under body_key of (u8 len | tls_unique | json), the "
            "json as one zstd frame when compression is true. ssig/idsig: Ed25519 (seeds below) over "
            "SHA-512(corrId|ctLen|ct) and SHA-512(corrId|ctLen|ct|ssig). attachment = 01 | u32be(size+16) "
            "| tail-tag box of the file under file_key. Within one compression setting the cases are in "
            "sending order; each setting starts a fresh session."),
        "generator": ("spec/vectors/gen.py (a Python model of spec/xrcp.md; boxes checked against "
                      "libsodium, Ed25519 against libsodium and cryptography, HKDF and SHA-512 against "
                      "cryptography, zstd frames against libzstd)"),
        "inputs": {
            "hybrid_secret": hx(SESSION_HYBRID),
            "tls_unique": hx(SESSION_TLS_UNIQUE),
            "session_key_seed": hx(RFC8032_1_SK),
            "identity_key_seed": hx(RFC8032_2_SK),
        },
        "cases": cases,
    })


def main():
    gen_encoding()
    gen_crypto()
    ks = gen_key_schedule()
    signed = gen_invitation()
    gen_messages(signed, ks)
    gen_session()
    print("all cross-checks passed")


if __name__ == "__main__":
    main()
