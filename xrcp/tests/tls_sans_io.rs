//! The session binding without tokio: two rustls connections driven through their own
//! `read_tls`/`write_tls` in memory, each feeding a `FinishedCapture`. Both sides must recover
//! the same tls-unique and see the other's CA, however the transport cuts the bytes.

use std::io::{Read, Write};
use std::sync::Arc;

use rustls::pki_types::ServerName;
use rustls::{ClientConnection, ServerConnection};
use xrcp::tls::{
    client_config, server_config, CaRole, FinishedCapture, Pin, TlsIdentity, TlsSession,
};

/// A reader that hands out at most `step` bytes per `read`, as a slow transport does.
struct Trickle<'a> {
    data: &'a [u8],
    step: usize,
}

impl Read for Trickle<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.data.len().min(self.step).min(buf.len());
        buf[..n].copy_from_slice(&self.data[..n]);
        self.data = &self.data[n..];
        Ok(n)
    }
}

/// Moves everything `from` wants to write into `to`, `step` bytes per `read_tls`.
fn pump(
    from: &mut rustls::ConnectionCommon<impl rustls::SideData>,
    from_capture: &mut FinishedCapture,
    to: &mut rustls::ConnectionCommon<impl rustls::SideData>,
    to_capture: &mut FinishedCapture,
    step: usize,
) -> bool {
    let mut wire = Vec::new();
    while from.wants_write() {
        from.write_tls(&mut from_capture.tap_write(&mut wire))
            .unwrap();
    }
    let moved = !wire.is_empty();
    let mut input = Trickle { data: &wire, step };
    while !input.data.is_empty() {
        to.read_tls(&mut to_capture.tap_read(&mut input)).unwrap();
        to.process_new_packets().unwrap();
    }
    moved
}

fn handshake(step: usize) -> (TlsSession, TlsSession, TlsIdentity, TlsIdentity) {
    let controller = TlsIdentity::generate(CaRole::Controller).unwrap();
    let host = TlsIdentity::generate(CaRole::Host).unwrap();
    let client_cfg = client_config(
        &host.session_credentials().unwrap(),
        Pin::Fingerprint(controller.fingerprint()),
    )
    .unwrap();
    let server_cfg = server_config(
        &controller.session_credentials().unwrap(),
        Pin::Fingerprint(host.fingerprint()),
    )
    .unwrap();
    let (mut client_capture, client_cfg) = FinishedCapture::client(&client_cfg);
    let (mut server_capture, server_cfg) = FinishedCapture::server(&server_cfg);
    let name = ServerName::from(std::net::IpAddr::from([127, 0, 0, 1]));
    let mut client = ClientConnection::new(Arc::new(client_cfg), name).unwrap();
    let mut server = ServerConnection::new(Arc::new(server_cfg)).unwrap();
    for _ in 0..20 {
        let a = pump(
            &mut client,
            &mut client_capture,
            &mut server,
            &mut server_capture,
            step,
        );
        let b = pump(
            &mut server,
            &mut server_capture,
            &mut client,
            &mut client_capture,
            step,
        );
        if !a && !b && !client.is_handshaking() && !server.is_handshaking() {
            break;
        }
    }
    assert!(!client.is_handshaking() && !server.is_handshaking());
    let at_client = client_capture.finish(&client).unwrap();
    let at_server = server_capture.finish(&server).unwrap();
    // Application data after the handshake is not recorded and does not disturb anything.
    client.writer().write_all(b"after").unwrap();
    pump(
        &mut client,
        &mut client_capture,
        &mut server,
        &mut server_capture,
        step,
    );
    let mut got = [0u8; 5];
    server.reader().read_exact(&mut got).unwrap();
    assert_eq!(&got, b"after");
    (at_client, at_server, controller, host)
}

#[test]
fn both_sides_recover_the_same_binding_from_rustls_bytes() {
    for step in [1, 7, 100, usize::MAX] {
        let (client, server, controller, host) = handshake(step);
        assert_eq!(client.tls_unique.len(), 32, "step {step}");
        assert_eq!(client.tls_unique, server.tls_unique, "step {step}");
        assert_eq!(client.peer_ca_fingerprint, controller.fingerprint());
        assert_eq!(server.peer_ca_fingerprint, host.fingerprint());
        assert!(!client.hello_retried && !server.hello_retried);
    }
}

#[test]
fn two_handshakes_have_different_bindings() {
    let (a, _, _, _) = handshake(usize::MAX);
    let (b, _, _, _) = handshake(usize::MAX);
    assert_ne!(a.tls_unique, b.tls_unique);
}

#[test]
fn a_capture_fed_the_wrong_direction_finds_nothing() {
    let controller = TlsIdentity::generate(CaRole::Controller).unwrap();
    let host = TlsIdentity::generate(CaRole::Host).unwrap();
    let client_cfg = client_config(
        &host.session_credentials().unwrap(),
        Pin::Fingerprint(controller.fingerprint()),
    )
    .unwrap();
    let (mut capture, cfg) = FinishedCapture::client(&client_cfg);
    let name = ServerName::from(std::net::IpAddr::from([127, 0, 0, 1]));
    let mut client = ClientConnection::new(Arc::new(cfg), name).unwrap();
    let mut wire = Vec::new();
    client.write_tls(&mut wire).unwrap();
    // A client's capture keeps only what the client writes.
    capture.incoming(&wire);
    assert!(capture.finish(&client).is_err());
}
