#!/usr/bin/env python3
"""OpenSSL-backed TLS 1.3 peer for xrcp's interop tests (driven by tests/tls_openssl.rs).

Runs one handshake as server or client with the given chain and key, then prints:
    tls_unique=<hex of get_channel_binding('tls-unique')>
    cipher=<negotiated suite>
    peer=<line the Rust side sent over TLS>
After the handshake each side sends its own tls-unique hex plus a newline over the TLS
channel, so the Rust test can compare both values from both ends.

Python 3.11's ssl module has no set_ciphersuites() or set1_groups(), so the TLS 1.3 suite and
key-exchange groups are forced through an OPENSSL_CONF file written before `ssl` is imported
(OpenSSL reads it when the library initialises).
"""
import argparse
import os
import socket
import sys
import tempfile

TIMEOUT = 20.0


def openssl_conf(ciphersuites, groups):
    lines = [
        "openssl_conf = openssl_init",
        "[openssl_init]",
        "ssl_conf = ssl_sect",
        "[ssl_sect]",
        "system_default = system_default_sect",
        "[system_default_sect]",
        "MinProtocol = TLSv1.3",
        "Ciphersuites = " + ciphersuites,
    ]
    if groups:
        lines.append("Groups = " + groups)
    handle = tempfile.NamedTemporaryFile("w", suffix=".cnf", delete=False)
    handle.write("\n".join(lines) + "\n")
    handle.close()
    return handle.name


def exchange(tls):
    ours = tls.get_channel_binding("tls-unique").hex()
    print("tls_unique=" + ours, flush=True)
    print("cipher=" + tls.cipher()[0], flush=True)
    tls.sendall((ours + "\n").encode())
    received = b""
    while not received.endswith(b"\n") and len(received) < 256:
        chunk = tls.recv(256)
        if not chunk:
            break
        received += chunk
    print("peer=" + received.decode(errors="replace").strip(), flush=True)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("role", choices=["server", "client"])
    parser.add_argument("--chain", required=True, help="PEM: leaf then CA")
    parser.add_argument("--key", required=True, help="PEM: PKCS#8 v1 Ed25519 key")
    parser.add_argument("--ca", help="PEM CA to verify the peer with (server: required)")
    parser.add_argument("--port", type=int, help="client: port on 127.0.0.1")
    parser.add_argument("--ciphersuites", default="TLS_CHACHA20_POLY1305_SHA256")
    parser.add_argument("--groups", default="", help="OpenSSL Groups list, e.g. P-256:X25519")
    args = parser.parse_args()

    conf = openssl_conf(args.ciphersuites, args.groups)
    os.environ["OPENSSL_CONF"] = conf
    import ssl  # noqa: E402  (must follow OPENSSL_CONF)

    try:
        if args.role == "server":
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.minimum_version = ssl.TLSVersion.TLSv1_3
            ctx.load_cert_chain(args.chain, args.key)
            ctx.verify_mode = ssl.CERT_REQUIRED
            ctx.load_verify_locations(args.ca)
            with socket.create_server(("127.0.0.1", 0)) as listener:
                listener.settimeout(TIMEOUT)
                print("port=%d" % listener.getsockname()[1], flush=True)
                conn, _ = listener.accept()
                conn.settimeout(TIMEOUT)
                with ctx.wrap_socket(conn, server_side=True) as tls:
                    exchange(tls)
        else:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            ctx.minimum_version = ssl.TLSVersion.TLSv1_3
            ctx.load_cert_chain(args.chain, args.key)
            ctx.check_hostname = False
            if args.ca:
                ctx.load_verify_locations(args.ca)
            else:
                # OpenSSL refuses extension-less CAs like the reference's; the Rust side's
                # chain is checked by the Rust test instead.
                ctx.verify_mode = ssl.CERT_NONE
            conn = socket.create_connection(("127.0.0.1", args.port), timeout=TIMEOUT)
            with ctx.wrap_socket(conn) as tls:
                exchange(tls)
    finally:
        os.unlink(conf)


if __name__ == "__main__":
    sys.exit(main())
