//! Per-connection capture of the client handshake traffic secret.
//!
//! rustls hands TLS secrets only to a `KeyLog` (NSS key-log labels). rustls calls it on both
//! client and server, once per secret, after the (final) ServerHello. We keep only
//! `CLIENT_HANDSHAKE_TRAFFIC_SECRET` — the key that encrypts the client's Finished — and
//! only until [`HandshakeSecretLog::take`] (spec/xrcp.md §6.5).

use std::sync::Mutex;

use zeroize::Zeroizing;

const CLIENT_HANDSHAKE_TRAFFIC_SECRET: &str = "CLIENT_HANDSHAKE_TRAFFIC_SECRET";

/// What the key log saw: the connection's client_random and the secret.
pub(crate) struct LoggedSecret {
    pub(crate) client_random: Vec<u8>,
    pub(crate) secret: Zeroizing<Vec<u8>>,
}

#[derive(Default)]
enum Slot {
    #[default]
    Empty,
    Filled(LoggedSecret),
    /// More than one secret arrived, which a single TLS 1.3 handshake never does.
    Conflict,
}

/// A `rustls::KeyLog` for exactly one connection.
#[derive(Default)]
pub(crate) struct HandshakeSecretLog {
    slot: Mutex<Slot>,
}

impl std::fmt::Debug for HandshakeSecretLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("HandshakeSecretLog")
    }
}

impl HandshakeSecretLog {
    /// Removes the secret; `None` if it never arrived or arrived twice.
    pub(crate) fn take(&self) -> Option<LoggedSecret> {
        let mut slot = self
            .slot
            .lock()
            .unwrap_or_else(|poison| poison.into_inner());
        match std::mem::take(&mut *slot) {
            Slot::Filled(logged) => Some(logged),
            Slot::Empty | Slot::Conflict => None,
        }
    }
}

impl rustls::KeyLog for HandshakeSecretLog {
    fn log(&self, label: &str, client_random: &[u8], secret: &[u8]) {
        if label != CLIENT_HANDSHAKE_TRAFFIC_SECRET {
            return;
        }
        let mut slot = self
            .slot
            .lock()
            .unwrap_or_else(|poison| poison.into_inner());
        *slot = match *slot {
            Slot::Empty => Slot::Filled(LoggedSecret {
                client_random: client_random.to_vec(),
                secret: Zeroizing::new(secret.to_vec()),
            }),
            Slot::Filled(_) | Slot::Conflict => Slot::Conflict,
        };
    }

    fn will_log(&self, label: &str) -> bool {
        label == CLIENT_HANDSHAKE_TRAFFIC_SECRET
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustls::KeyLog;

    #[test]
    fn keeps_only_the_client_handshake_secret_once() {
        let log = HandshakeSecretLog::default();
        assert!(!log.will_log("SERVER_HANDSHAKE_TRAFFIC_SECRET"));
        log.log("CLIENT_TRAFFIC_SECRET_0", b"r", b"s0");
        assert!(log.take().is_none());

        log.log(CLIENT_HANDSHAKE_TRAFFIC_SECRET, b"rand", b"secret");
        let got = log.take().expect("secret kept");
        assert_eq!(got.client_random, b"rand");
        assert_eq!(got.secret.as_slice(), b"secret");
        assert!(log.take().is_none(), "taken only once");

        log.log(CLIENT_HANDSHAKE_TRAFFIC_SECRET, b"a", b"1");
        log.log(CLIENT_HANDSHAKE_TRAFFIC_SECRET, b"b", b"2");
        assert!(log.take().is_none(), "two secrets is an anomaly");
    }
}
