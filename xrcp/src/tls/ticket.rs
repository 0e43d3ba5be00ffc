//! A session ticket as the controller's "I accepted your certificate" (spec/xrcp.md §5.3).
//!
//! In TLS 1.3 the client finishes before the server has judged the client certificate, so a
//! host cannot tell from the handshake alone whether the controller accepted it. The reference
//! host waits 100 ms for an alert. RFC 8446 §4.6.1 lets a server send NewSessionTicket only
//! after it has received (and so verified) the client's Certificate, CertificateVerify and
//! Finished; a ticket therefore proves acceptance and the host can stop waiting at once.
//!
//! Neither side lets the ticket be redeemed: the controller's tickets are random bytes with a
//! lifetime of zero ("discard immediately", RFC 8446 §4.6.1) that its ticketer can never
//! decrypt, so a resumption attempt is a full handshake; the host's store keeps nothing and
//! never offers a ticket. The ClientHello is unchanged (rustls offers `psk_dhe_ke` either way),
//! and a peer that sends no ticket — the reference controller — costs the usual wait.

#[cfg(feature = "tokio")]
use std::sync::atomic::{AtomicBool, Ordering};

use rand::RngCore;
#[cfg(feature = "tokio")]
use rustls::client::{ClientSessionStore, Tls12ClientSessionValue, Tls13ClientSessionValue};
#[cfg(feature = "tokio")]
use rustls::pki_types::ServerName;
use rustls::server::ProducesTickets;
#[cfg(feature = "tokio")]
use rustls::NamedGroup;
#[cfg(feature = "tokio")]
use tokio::sync::Notify;

/// The controller's ticketer: issues tickets that cannot be redeemed.
#[derive(Debug, Default)]
pub(crate) struct UnredeemableTickets;

/// Length of the opaque ticket: the length of a real ticket's identifier.
const TICKET_LEN: usize = 32;

impl ProducesTickets for UnredeemableTickets {
    fn enabled(&self) -> bool {
        true
    }

    fn lifetime(&self) -> u32 {
        0
    }

    fn encrypt(&self, _plain: &[u8]) -> Option<Vec<u8>> {
        let mut ticket = vec![0u8; TICKET_LEN];
        rand::rngs::OsRng.fill_bytes(&mut ticket);
        Some(ticket)
    }

    fn decrypt(&self, _cipher: &[u8]) -> Option<Vec<u8>> {
        None
    }
}

/// The host's session store for one connection (the tokio driver's `connect` installs it): remembers only that a ticket arrived.
#[cfg(feature = "tokio")]
#[derive(Debug, Default)]
pub(crate) struct AcceptanceSignal {
    accepted: AtomicBool,
    notify: Notify,
}

#[cfg(feature = "tokio")]
impl AcceptanceSignal {
    /// Whether the server has sent a ticket, i.e. accepted our certificate.
    pub(crate) fn accepted(&self) -> bool {
        self.accepted.load(Ordering::Acquire)
    }

    /// Resolves once a ticket has arrived (immediately if one already has). The ticket is
    /// processed by a read on the TLS stream, so await this alongside such a read.
    pub(crate) async fn wait(&self) {
        loop {
            let notified = self.notify.notified();
            if self.accepted() {
                return;
            }
            notified.await;
        }
    }
}

#[cfg(feature = "tokio")]
impl ClientSessionStore for AcceptanceSignal {
    fn set_kx_hint(&self, _server_name: ServerName<'static>, _group: NamedGroup) {}

    fn kx_hint(&self, _server_name: &ServerName<'_>) -> Option<NamedGroup> {
        None
    }

    fn set_tls12_session(
        &self,
        _server_name: ServerName<'static>,
        _value: Tls12ClientSessionValue,
    ) {
    }

    fn tls12_session(&self, _server_name: &ServerName<'_>) -> Option<Tls12ClientSessionValue> {
        None
    }

    fn remove_tls12_session(&self, _server_name: &ServerName<'static>) {}

    fn insert_tls13_ticket(
        &self,
        _server_name: ServerName<'static>,
        value: Tls13ClientSessionValue,
    ) {
        drop(value);
        self.accepted.store(true, Ordering::Release);
        self.notify.notify_waiters();
    }

    fn take_tls13_ticket(
        &self,
        _server_name: &ServerName<'static>,
    ) -> Option<Tls13ClientSessionValue> {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tickets_are_fresh_opaque_and_never_decrypt() {
        let t = UnredeemableTickets;
        assert!(t.enabled());
        assert_eq!(t.lifetime(), 0);
        let a = t.encrypt(b"resumption secret").unwrap();
        let b = t.encrypt(b"resumption secret").unwrap();
        assert_eq!(a.len(), TICKET_LEN);
        assert_ne!(a, b);
        assert!(!a.windows(6).any(|w| w == b"secret"));
        assert_eq!(t.decrypt(&a), None);
        assert_eq!(t.decrypt(b""), None);
    }

    #[cfg(feature = "tokio")]
    #[test]
    fn the_signal_stores_nothing() {
        let s = AcceptanceSignal::default();
        let name = ServerName::from(std::net::IpAddr::from([127, 0, 0, 1]));
        assert!(!s.accepted());
        assert_eq!(s.kx_hint(&name), None);
        assert!(s.tls12_session(&name).is_none());
        assert!(s.take_tls13_ticket(&name).is_none());
    }
}
