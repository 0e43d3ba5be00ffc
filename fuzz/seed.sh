#!/usr/bin/env bash
# Writes the seed corpora of every fuzz target into fuzz/corpus/<target>/ (or the directory
# given as $1): inputs built from spec/vectors/*.json, the RFC 8448 client flights, and a few
# hand-made ones, each in the input format its harness documents (fuzz/src/<target>.rs).
# Existing corpus files are kept; seeds are rewritten. Needs python3 only.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
out="${1:-$here/corpus}"
mkdir -p "$out"
python3 - "$here/../spec/vectors" "$out" "$here" <<'PY'
import json, os, random, struct, sys

vectors, out, here = sys.argv[1], sys.argv[2], sys.argv[3]
def load(name):
    with open(os.path.join(vectors, name)) as f:
        return json.load(f)
def h(s):
    return bytes.fromhex(s)
def pad(msg, size):
    assert len(msg) + 2 <= size
    return struct.pack(">H", len(msg)) + msg + b"#" * (size - 2 - len(msg))
def block(content):
    return pad(content, 16384)

count = {}
def seed(target, name, data):
    d = os.path.join(out, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "seed-" + name), "wb") as f:
        f.write(data)
    count[target] = count.get(target, 0) + 1

inv = load("invitation.json")
msg = load("messages.json")
enc = load("encoding.json")
rng = random.Random(0x5eed)
def rand_bytes(n):
    return bytes(rng.randrange(256) for _ in range(n))

# invitation: the link text.
signed = inv["signed_uri"].encode()
seed("invitation", "signed_uri", signed)
for i, t in enumerate(inv["tampered"]):
    seed("invitation", f"tampered-{i}", t["uri"].encode())
for i, t in enumerate(inv["accepted_variants"]):
    seed("invitation", f"accepted-{i}", t["uri"].encode())
seed("invitation", "model-plus-in-app", signed.replace(b"My%20Desktop", b"My+Desktop"))
seed("invitation", "bare-prefix", b"xrcp:/AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=@1.2.3.4:1#/?v=1")

# announcement: mode 0 = datagram, mode 1 = box plaintext sealed by the harness.
ann = msg["announcement"]
seed("announcement", "datagram", b"\x00" + h(ann["datagram"]))
seed("announcement", "datagram-short", b"\x00" + h(ann["datagram"])[:80])
seed("announcement", "plain-padded", b"\x01" + pad(ann["signed_uri"].encode(), ann["pad_to"]))
seed("announcement", "plain-unpadded", b"\x01" + ann["signed_uri"].encode())
seed("announcement", "plain-tampered", b"\x01" + pad(inv["tampered"][0]["uri"].encode(), 900))
seed("announcement", "plain-accepted", b"\x01" + pad(inv["accepted_variants"][0]["uri"].encode(), 900))

# block: blocks and padded buffers.
hh, ch, ce = msg["host_hello"], msg["ctrl_hello"], msg["ctrl_error"]
seed("block", "host_hello", h(hh["block"]))
seed("block", "ctrl_hello", h(ch["block"]))
seed("block", "ctrl_error", block(h(ce["content"])))
for i, p in enumerate(enc["pad"]):
    if p["padded"] is not None:
        seed("block", f"pad-{i}", h(p["padded"]))
for i, p in enumerate(enc["unpad"]):
    seed("block", f"unpad-{i}", h(p["padded"]))

# host_hello: 0 = block or content, 1 = JSON, 2 = JSON sealed by the harness.
hb = h(hh["block"])
hc = hb[2:2 + struct.unpack(">H", hb[:2])[0]]
seed("host_hello", "block", b"\x00" + hb)
seed("host_hello", "content", b"\x00" + hc)
seed("host_hello", "json", b"\x01" + hh["json"].encode())
seed("host_hello", "json-sealed", b"\x02" + hh["json"].encode())
seed("host_hello", "json-minimal", b"\x01" + b'{"v":1,"ca":"AAAA","kem":"AAAA"}')

# ctrl_hello: 0 = block or content, 1 = HELLO plaintext, 2 = ERROR plaintext.
cb = h(ch["block"])
seed("ctrl_hello", "hello-block", b"\x00" + cb)
seed("ctrl_hello", "hello-content", b"\x00" + cb[2:2 + struct.unpack(">H", cb[:2])[0]])
seed("ctrl_hello", "error-content", b"\x00" + h(ce["content"]))
seed("ctrl_hello", "hello-plain", b"\x01" + pad(b"{}", 12288))
seed("ctrl_hello", "hello-plain-short", b"\x01" + pad(b'{"a":[1,2]}', 40))
seed("ctrl_hello", "error-plain-padded", b"\x02" + pad(ce["text"].encode(), ce["pad_to"]))
seed("ctrl_hello", "error-plain", b"\x02" + ce["text"].encode())

# session_body: flags (bit 0 response, bit 1 compression, bits 2-3 mode, bit 4 attachment).
req, resp = msg["session_body"]
code = h(req["tls_unique"])
seed("session_body", "request", b"\x00" + h(req["body"]))
seed("session_body", "response", b"\x01" + h(resp["body"]))
seed("session_body", "request-attachment", b"\x10" + h(req["body"]) + b"\x01\x00\x00\x00\x13abc" + b"\x00" * 16)
seed("session_body", "response-truncated", b"\x01" + h(resp["body"])[:40])
def crafted(flags, js, file=b""):
    return bytes([flags]) + struct.pack(">H", len(js)) + js + file
cmds = [
    b'{"type":"send","command":"/u","retryNumber":0}',
    b'{"type":"recv","wait":10000000}',
    b'{"type":"storeFile","fileName":"a.pdf","fileSize":3,"fileDigest":"' + b"A" * 86 + b'=="}',
    b'{"type":"getFile","file":{"userId":1,"fileId":3,"sent":false,"fileSource":{"filePath":"x.jpg"}}}',
]
resps = [
    b'{"type":"chatEvent"}',
    b'{"type":"chatResponse","chatResponse":{"result":{"type":"activeUser"}}}',
    b'{"type":"fileStored","filePath":"a_1.pdf"}',
    b'{"type":"protocolError","remoteProcotolError":{"type":"pREDuplicateId"}}',
]
for i, js in enumerate(cmds):
    seed("session_body", f"crafted-cmd-{i}", crafted(0x04, js))
    seed("session_body", f"crafted-cmd-zstd-{i}", crafted(0x06, js))
for i, js in enumerate(resps):
    seed("session_body", f"crafted-resp-{i}", crafted(0x05, js))
seed("session_body", "crafted-file", crafted(0x14 | 0x20, cmds[2], b"abc" * 50))
seed("session_body", "crafted-file-resp", crafted(0x15, resps[0], rand_bytes(300)))
seed("session_body", "plain-request", b"\x08" + bytes([len(code)]) + code + cmds[0])
seed("session_body", "plain-response", b"\x09" + bytes([len(code)]) + code + resps[0])
seed("session_body", "plain-wrong-code", b"\x08" + b"\x20" + b"\x00" * 32 + cmds[0])
seed("session_body", "plain-zstd-raw", b"\x0a" + bytes([len(code)]) + code + b"\x28\xb5\x2f\xfd" + rand_bytes(20))
seed("session_body", "attachment", b"\x0c" + struct.pack(">I", 3) + b"\x05" + b"\x01\x00\x00\x00\x13" + rand_bytes(19))

# app_info: JSON and version strings.
seed("app_info", "ctrl", inv["app"].encode())
seed("app_info", "ctrl-new", b'{"appVersionRange":{"minVersion":"6.5.0.12","maxVersion":"6.5.6.1"},"deviceName":"SimpleX CLI","compression":true}')
seed("app_info", "host", b'{"appVersion":"6.5.6.1","deviceName":"Mobile","encoding":"kotlin","encryptFiles":false,"compression":true}')
seed("app_info", "host-swift", b'{"appVersion":"6.5.0.12-beta","deviceName":"iPhone","encoding":"swift","encryptFiles":true}')
seed("app_info", "wrapped", b'{"app":{"appVersion":"6.4","deviceName":"x","encoding":"kotlin","encryptFiles":false}}')
seed("app_info", "versions", b"6.5.0.12 6.5.6.1\n6.10")
seed("app_info", "versions-tags", b"1.2-beta 1.2 01.2.0")

# protocol_json: command/response/error JSON and error texts.
for i, js in enumerate(cmds + resps):
    seed("protocol_json", f"json-{i}", js)
for i, js in enumerate([
    b'{"type":"pRERemoteControl","rcError":{"type":"ctrlAuth"}}',
    b'{"type":"manySkippedIds","data":300}',
    b'{"type":"invalidJSON","invalidJSON":"x"}',
    b'{"type":"syntax","syntaxErr":"bad"}',
    b'{"type":"chatResponse","chatResponse":{"result":{"_owsf":true,"activeUser":{"user":{"userId":1}}}}}',
    b'{"_owsf":true,"errorAgent":{"_owsf":true,"agentError":{"x":1}}}',
    b'{"type":"file","fileSize":3,"fileDigest":"' + b"A" * 86 + b'=="}',
    b"CTRL_ERROR host identity mismatch",
    b"SYNTAX ",
]):
    seed("protocol_json", f"hand-{i}", js)

# tls_capture: even mode = (params byte, raw flight); odd mode = structured flight.
S3_CH = ("16030100c4010000c00303cb34ecb1e78163ba1c38c6dacb196a6dffa21a8d9912ec18a2ef6283024dece7"
         "000006130113031302010000910000000b0009000006736572766572ff01000100000a00140012001d0017"
         "001800190100010101020103010400230000003300260024001d002099381de560e4bd43d23d8e435a7dba"
         "feb3c06e51c13cae4d5413691e529aaf2c002b0003020304000d0020001e04030503060302030804080508"
         "0604010501060102010402050206020202002d00020101001c00024001")
S3_FIN = ("170303003575ec4dc238cce60b298044a71e219c56cc77b0517fe9b93c7a4bfc44d87f38f80338ac98fc46"
          "deb384bd1caeacab6867d726c40546")
S5_CH1 = ("16030100b4010000b00303b0b1c5a5aa37c5919f2ed1d5c6fff7fcb7849716945a2b8cee9258a346677b6f"
          "000006130113031302010000810000000b0009000006736572766572ff01000100000a00080006001d0017"
          "0018003300260024001d0020e8e8e3f3b93a25ed97a14a7dcacb8a272c6288e585c6484d05262fcad062ad"
          "1f002b0003020304000d0020001e040305030603020308040805080604010501060102010402050206020202"
          "002d00020101001c00024001")
S5_CH2 = ("1603030200010001fc0303b0b1c5a5aa37c5919f2ed1d5c6fff7fcb7849716945a2b8cee9258a346677b6f"
          "000006130113031302010001cd0000000b0009000006736572766572ff01000100000a00080006001d0017"
          "00180033004700450017004104a6da7392ec591e17abfd535964b99894d13befb221b3def2ebe3830eac8f"
          "0151812677c4d6d2237e85cf01d6910cfb83954e76ba7352830534159897e8065780002b0003020304000d"
          "0020001e040305030603020308040805080604010501060102010402050206020202002c0074007271dcd0"
          "4bb88bc3189119398a00000000eefafc76c146b823b096f8aacad365dd0030953f4edf625636e5f21bb2e2"
          "3fcc654b1b5b40318d10d137abcbb87574e36e8a1f025f7dfa5d6e50781b5eda4aa15b0c8be778257d16aa"
          "3030e9e7841dd9e4c0342267e8ca0caf571fb2b7cff0f934b0002d00020101001c00024001001500af")
S5_FIN = ("1703030035d74f1923c662fd34137c6f502f3dd2b93d951d1b3bc97e42afe23c31abea92fe91b474999e85"
          "e3b791ce252fe8c3e9f939a4120cb2")
CCS = bytes.fromhex("140303000101")
s3ch, s3fin = h(S3_CH), h(S3_FIN)
s5ch1, s5ch2, s5fin = h(S5_CH1), h(S5_CH2) + b"\x00" * 0xaf, h(S5_FIN)
def frag(record, n):
    body, out = record[5:], b""
    for i in range(0, len(body), n):
        out += record[:3] + struct.pack(">H", len(body[i:i + n])) + body[i:i + n]
    return out
seed("tls_capture", "rfc8448-s3", b"\x00\x00" + s3ch + s3fin)
seed("tls_capture", "rfc8448-s3-ccs", b"\x00\x00" + s3ch + CCS + s3fin)
seed("tls_capture", "rfc8448-s3-fragmented", b"\x00\x00" + frag(s3ch, 50) + CCS + s3fin + b"\x17\x03\x03\x00\x01\x00")
seed("tls_capture", "rfc8448-s5", b"\x00\x01" + s5ch1 + s5ch2 + s5fin)
seed("tls_capture", "rfc8448-s5-ccs", b"\x00\x01" + frag(s5ch1, 64) + CCS + frag(s5ch2, 100) + s5fin)
seed("tls_capture", "alert", b"\x00\x00" + s3ch + b"\x15\x03\x03\x00\x02\x02\x30")
for i in range(4):
    seed("tls_capture", f"structured-{i}", b"\x01" + rand_bytes(64 * (i + 1)))

# tls_chain: even mode = count, pin, u32 time/64, (u16 len, DER)*; odd mode = edits of the
# embedded genuine chain: pin, i32 step, which, op, u16 offset, bytes.
leaf = bytes.fromhex(open(os.path.join(here, "src/tls_chain_leaf.hex")).read().strip())
ca = bytes.fromhex(open(os.path.join(here, "src/tls_chain_ca.hex")).read().strip())
def chain_raw(count, pin, t, certs):
    return b"\x00" + bytes([count, pin]) + struct.pack(">I", t // 64) + b"".join(struct.pack(">H", len(c)) + c for c in certs)
seed("tls_chain", "raw-any", chain_raw(2, 0, 1_700_000_000, [leaf, ca]))
seed("tls_chain", "raw-pinned", chain_raw(2, 1, 1_700_000_000, [leaf, ca]))
seed("tls_chain", "raw-one", chain_raw(1, 0, 1_700_000_000, [leaf]))
seed("tls_chain", "raw-swapped", chain_raw(2, 0, 1_700_000_000, [ca, leaf]))
def chain_edit(pin, step, which, op, offset, data):
    return b"\x01" + bytes([pin]) + struct.pack(">i", step) + bytes([which, op]) + struct.pack(">H", offset) + data
seed("tls_chain", "genuine", chain_edit(1, 0, 0, 0, 0, b""))
seed("tls_chain", "genuine-early", chain_edit(0, -60, 0, 0, 0, b""))
seed("tls_chain", "ca-validity", chain_edit(0, 0, 1, 0, 100, b"\x00"))
seed("tls_chain", "leaf-truncated", chain_edit(0, 0, 0, 1, 150, b""))

# handshake, session_sequence: `arbitrary` inputs. All zeros is the genuine run; the rest are
# fixed pseudo-random scripts.
seed("handshake", "controller-zeros", b"\x00" * 64)
seed("handshake", "controller-known", b"\x00\x01" + b"\x00" * 64)
seed("handshake", "both-zeros", b"\x1f" + b"\x00" * 64)
seed("handshake", "both-known", b"\x1f\x01" + b"\x00" * 64)
for i in range(6):
    seed("handshake", f"random-{i}", rand_bytes(32 + 48 * i))
seed("session_sequence", "zeros", b"\x00" * 64)
for i in range(8):
    seed("session_sequence", f"random-{i}", rand_bytes(64 + 96 * i))

for t in sorted(count):
    print(f"seeded {t}: {count[t]} files")
PY
