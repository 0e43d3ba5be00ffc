//! Finding a known controller by its multicast announcement, the host's half of the
//! reconnect flow (spec/xrcp.md §5; wire facts §4; research `simplex-chat-session-layer.md`
//! §7, `/find remote ctrl`).
//!
//! A controller started for a known host sends its signed invitation, boxed to the host's DH
//! key from the previous session, to `224.0.0.251:5227` once a second. The host listens on the
//! group, and for each datagram (any failure is logged at debug and the host keeps listening,
//! as the reference does):
//! 1. parses it (`INVITATION` if malformed);
//! 2. tries every known controller's current, then previous, DH private key
//!    (`CTRL_NOT_FOUND` if none opens it) — the previous key matters when the controller
//!    missed the last pairing update (spec/xrcp.md §9.2);
//! 3. parses and verifies the invitation (`SYNTAX` / `INVITATION`), requires its `dh` to be
//!    the announced key and the datagram's IPv4 source to be its `host` (`INVITATION`).
//!
//! After 30 s without a match it gives up with `NOT_DISCOVERED`. The found invitation goes
//! to [`crate::connect`] with the pairing, exactly as if it had been scanned; the identity
//! check against the pairing happens there (wire facts §4, last bullet).
//!
//! # Bounded work per datagram
//!
//! Step 2 costs two X25519 operations per known controller. A controller repeats the same
//! invitation under the same session key every second, and anyone on the link can send
//! datagrams, so [`AnnouncementMatcher`] remembers recent announced keys in two small LRU
//! caches:
//! - *matched* keys (a pairing's key opened the box and the invitation inside verified, signed
//!   for that very key): the next datagram with that key costs one box opening with the
//!   remembered shared secret, and when its plaintext is the invitation already verified, no
//!   signature check either — O(1) in the number of pairings. Only a paired controller's
//!   signed announcements enter this cache, so a flood of forged keys cannot evict it;
//! - *unmatched* keys: the X25519 outputs for every pairing key are kept, so a repeated
//!   unknown (or tampered) key costs box openings but **no further DH** — each
//!   (announced key, pairing key) pair is computed once while the key is cached. A tampered
//!   copy of a genuine datagram therefore never blacklists the genuine key.
//!
//! # One group membership per process
//!
//! Concurrent discoveries in one process share one socket and one membership
//! ([`Subscription`]), counted like the reference's multicast subscriber count: the first
//! subscriber joins, the last one leaving closes the socket (and so leaves the group). A
//! reader thread fans datagrams out to every subscriber.

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::Duration;

use serde_json::Value;
use socket2::{Domain, Protocol, Socket, Type};
use tokio::sync::broadcast;
use xrcp::crypto::secretbox::open_padded;
use xrcp::crypto::{BoxKey, CryptoError, X25519PublicKey};
use xrcp::message::announcement::{check_source, MAX_DATAGRAM};
use xrcp::message::{Announcement, DhKeyUsed, SignedInvitation};
use xrcp::pairing::CtrlPairing;
use xrcp::RcError;

use crate::connect::{HostOptions, PendingConfirmation};
use crate::error::RemoteCtrlError;

/// The reference's multicast group (`MULTICAST_ADDR_V4`).
pub const MULTICAST_GROUP: Ipv4Addr = Ipv4Addr::new(224, 0, 0, 251);
/// The reference's discovery port (`DISCOVERY_PORT`).
pub const DISCOVERY_PORT: u16 = 5227;
/// The reference's discovery timeout (`discoverRCCtrl`).
pub const DISCOVERY_TIMEOUT: Duration = Duration::from_secs(30);
/// Default sizes of the two key caches.
pub const MATCHED_CACHE: usize = 8;
pub const UNMATCHED_CACHE: usize = 16;
/// How long the reader thread blocks in one `recvfrom` before checking for subscribers.
const READ_TIMEOUT: Duration = Duration::from_millis(250);
/// Datagrams buffered per subscriber; a slower subscriber loses the oldest.
const FANOUT_BUFFER: usize = 64;

/// Where to listen and for how long. The defaults are the reference's.
#[derive(Clone, Debug)]
pub struct DiscoverOptions {
    pub group: Ipv4Addr,
    pub port: u16,
    /// The interface address to join the group on; unspecified lets the kernel choose by
    /// route (the reference joins on 0.0.0.0).
    pub interface: Ipv4Addr,
    pub timeout: Duration,
    pub matched_cache: usize,
    pub unmatched_cache: usize,
}

impl Default for DiscoverOptions {
    fn default() -> Self {
        DiscoverOptions {
            group: MULTICAST_GROUP,
            port: DISCOVERY_PORT,
            interface: Ipv4Addr::UNSPECIFIED,
            timeout: DISCOVERY_TIMEOUT,
            matched_cache: MATCHED_CACHE,
            unmatched_cache: UNMATCHED_CACHE,
        }
    }
}

/// Counters of one discovery, for diagnostics and tests.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DiscoveryStats {
    /// Datagrams examined.
    pub datagrams: u64,
    /// Not an announcement (`INVITATION` at parsing).
    pub malformed: u64,
    /// No known key opened it (`CTRL_NOT_FOUND`).
    pub not_found: u64,
    /// Opened, but the invitation was unreadable, badly signed or not for the announced key.
    pub invalid: u64,
    /// Genuine, but not sent from the invitation's address.
    pub wrong_source: u64,
    /// Datagrams whose announced key was in a cache.
    pub cache_hits: u64,
    /// X25519 operations performed.
    pub dh_operations: u64,
}

/// A datagram that passed every check.
#[derive(Clone, Debug)]
pub struct Found {
    /// Index of the pairing in the matcher's list.
    pub index: usize,
    pub key_used: DhKeyUsed,
    pub invitation: SignedInvitation,
    pub source: Ipv4Addr,
}

/// An announced key whose box a pairing key opened.
struct Matched {
    key: X25519PublicKey,
    index: usize,
    used: DhKeyUsed,
    shared: BoxKey,
    /// The last plaintext that verified, and its invitation (always set in the cache).
    verified: Option<(Vec<u8>, SignedInvitation)>,
}

/// An announced key no pairing key opened: the X25519 outputs with each pairing key
/// (`2i` current, `2i + 1` previous of pairing `i`; `None` where there is no key or the
/// announced key is low-order).
struct Unmatched {
    key: X25519PublicKey,
    shared: Vec<Option<BoxKey>>,
}

/// Why a datagram was ignored (mapped to the reference's kind for callers).
enum Rejection {
    Malformed,
    NotFound,
    Invalid(RcError),
    WrongSource,
}

/// The sans-IO core of discovery: decides about one datagram at a time, with the caches
/// described in the module docs. Benchmarked in `xrcp-host/benches/discover.rs`.
pub struct AnnouncementMatcher {
    known: Vec<(i64, CtrlPairing)>,
    matched: Vec<Matched>,
    unmatched: Vec<Unmatched>,
    matched_capacity: usize,
    unmatched_capacity: usize,
    stats: DiscoveryStats,
}

impl std::fmt::Debug for AnnouncementMatcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AnnouncementMatcher")
            .field("known", &self.known.len())
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

/// Moves entry `pos` to the back (most recently used) and returns it.
fn touch<T>(v: &mut Vec<T>, pos: usize) -> &mut T {
    let e = v.remove(pos);
    v.push(e);
    let last = v.len() - 1;
    &mut v[last]
}

/// Adds an entry as most recently used, evicting the least recently used if full (a
/// capacity of 0 keeps nothing).
fn remember<T>(v: &mut Vec<T>, capacity: usize, e: T) {
    if capacity == 0 {
        return;
    }
    if v.len() >= capacity {
        v.remove(0);
    }
    v.push(e);
}

impl AnnouncementMatcher {
    /// A matcher for these `(id, pairing)`s with the default cache sizes.
    pub fn new(known: Vec<(i64, CtrlPairing)>) -> AnnouncementMatcher {
        AnnouncementMatcher::with_cache(known, MATCHED_CACHE, UNMATCHED_CACHE)
    }

    /// Cache sizes of 0 disable the respective cache.
    pub fn with_cache(
        known: Vec<(i64, CtrlPairing)>,
        matched_capacity: usize,
        unmatched_capacity: usize,
    ) -> AnnouncementMatcher {
        AnnouncementMatcher {
            known,
            matched: Vec::new(),
            unmatched: Vec::new(),
            matched_capacity,
            unmatched_capacity,
            stats: DiscoveryStats::default(),
        }
    }

    pub fn known(&self) -> &[(i64, CtrlPairing)] {
        &self.known
    }

    pub fn stats(&self) -> DiscoveryStats {
        self.stats
    }

    /// Checks one datagram received from `source`. `Ok` only for a genuine announcement of a
    /// known controller sent from the invitation's address; otherwise the reference's kind
    /// (`INVITATION`, `CTRL_NOT_FOUND`, `SYNTAX`) and the caller keeps listening.
    pub fn handle(&mut self, datagram: &[u8], source: Ipv4Addr) -> Result<Found, RcError> {
        self.stats.datagrams += 1;
        match self.classify(datagram, source) {
            Ok(found) => Ok(found),
            Err(Rejection::Malformed) => {
                self.stats.malformed += 1;
                Err(RcError::Invitation)
            }
            Err(Rejection::NotFound) => {
                self.stats.not_found += 1;
                Err(RcError::CtrlNotFound)
            }
            Err(Rejection::Invalid(e)) => {
                self.stats.invalid += 1;
                Err(e)
            }
            Err(Rejection::WrongSource) => {
                self.stats.wrong_source += 1;
                Err(RcError::Invitation)
            }
        }
    }

    fn classify(&mut self, datagram: &[u8], source: Ipv4Addr) -> Result<Found, Rejection> {
        let ann = Announcement::decode(datagram).map_err(|_| Rejection::Malformed)?;

        if let Some(pos) = self.matched.iter().position(|m| m.key == ann.dh_key) {
            self.stats.cache_hits += 1;
            let m = touch(&mut self.matched, pos);
            return match open_padded(&m.shared, &ann.nonce, &ann.ciphertext) {
                Ok(plain) => accept(m, plain, &ann, source),
                Err(CryptoError::InvalidPadding) => Err(bad_padding()),
                // Only the key's owner could have made a box another pairing opens.
                Err(_) => Err(Rejection::NotFound),
            };
        }

        if let Some(pos) = self.unmatched.iter().position(|u| u.key == ann.dh_key) {
            self.stats.cache_hits += 1;
            let u = touch(&mut self.unmatched, pos);
            let opened = u.shared.iter().enumerate().find_map(|(j, k)| {
                let k = k.as_ref()?;
                match open_padded(k, &ann.nonce, &ann.ciphertext) {
                    Ok(plain) => Some((j, k.clone(), Ok(plain))),
                    Err(CryptoError::InvalidPadding) => Some((j, k.clone(), Err(()))),
                    Err(_) => None,
                }
            });
            let Some((j, shared, plain)) = opened else {
                return Err(Rejection::NotFound);
            };
            let result = self.promote(&ann, j, shared, plain, source);
            if self.is_matched(&ann.dh_key) {
                // The key turned out to be a known controller's: it moved to `matched`.
                self.unmatched.pop();
            }
            return result;
        }

        // First sight of this key: current then previous key of each pairing, in order, as
        // `Announcement::open` does; keep the X25519 outputs in case the key repeats.
        let slots = self.known.len() * 2;
        let mut shared = Vec::with_capacity(slots);
        let mut opened = None;
        for j in 0..slots {
            let k = self.dh_slot(j, &ann.dh_key);
            if let Some(k) = &k {
                match open_padded(k, &ann.nonce, &ann.ciphertext) {
                    Ok(plain) => opened = Some((j, k.clone(), Ok(plain))),
                    Err(CryptoError::InvalidPadding) => opened = Some((j, k.clone(), Err(()))),
                    Err(_) => {}
                }
            }
            shared.push(k);
            if opened.is_some() {
                break;
            }
        }
        let result = match opened {
            Some((j, k, plain)) => {
                let result = self.promote(&ann, j, k, plain, source);
                if self.is_matched(&ann.dh_key) {
                    return result;
                }
                // A box we can open but whose content is not a valid invitation for the
                // key: remember the key with all its outputs, so repeats cost no DH.
                for j in shared.len()..slots {
                    let k = self.dh_slot(j, &ann.dh_key);
                    shared.push(k);
                }
                result
            }
            None => Err(Rejection::NotFound),
        };
        remember(
            &mut self.unmatched,
            self.unmatched_capacity,
            Unmatched {
                key: ann.dh_key,
                shared,
            },
        );
        result
    }

    fn is_matched(&self, key: &X25519PublicKey) -> bool {
        self.matched.last().is_some_and(|m| m.key == *key)
    }

    /// X25519 of the announced key with pairing key `j` (`2i` current, `2i + 1` previous of
    /// pairing `i`); `None` if the pairing has no such key or the announced key is low-order.
    fn dh_slot(&mut self, j: usize, announced: &X25519PublicKey) -> Option<BoxKey> {
        let pairing = &self.known[j / 2].1;
        let private = if j % 2 == 0 {
            Some(&pairing.dh)
        } else {
            pairing.prev_dh.as_ref()
        }?;
        self.stats.dh_operations += 1;
        private.dh(announced).ok()
    }

    /// Records that pairing key `j` opened `ann`'s box and checks its content.
    fn promote(
        &mut self,
        ann: &Announcement,
        j: usize,
        shared: BoxKey,
        plain: Result<Vec<u8>, ()>,
        source: Ipv4Addr,
    ) -> Result<Found, Rejection> {
        let mut entry = Matched {
            key: ann.dh_key,
            index: j / 2,
            used: if j % 2 == 0 {
                DhKeyUsed::Current
            } else {
                DhKeyUsed::Previous
            },
            shared,
            verified: None,
        };
        let result = match plain {
            Ok(plain) => accept(&mut entry, plain, ann, source),
            Err(()) => Err(bad_padding()),
        };
        // Only a key whose invitation verified is remembered as matched, so a sender who
        // merely knows one of our DH public keys cannot fill this cache.
        if entry.verified.is_some() {
            remember(&mut self.matched, self.matched_capacity, entry);
        }
        result
    }
}

fn bad_padding() -> Rejection {
    Rejection::Invalid(RcError::syntax("bad announcement padding"))
}

/// Steps 3–5 of the listener's checks for an opened box. A plaintext equal to the last one
/// verified under this key skips parsing and signature checks.
fn accept(
    m: &mut Matched,
    plain: Vec<u8>,
    ann: &Announcement,
    source: Ipv4Addr,
) -> Result<Found, Rejection> {
    let invitation = match &m.verified {
        Some((seen, inv)) if *seen == plain => inv.clone(),
        _ => {
            let text = std::str::from_utf8(&plain)
                .map_err(|_| Rejection::Invalid(RcError::syntax("announcement is not UTF-8")))?;
            let inv = SignedInvitation::parse(text).map_err(Rejection::Invalid)?;
            inv.verify().map_err(Rejection::Invalid)?;
            if inv.invitation.dh != ann.dh_key {
                return Err(Rejection::Invalid(RcError::Invitation));
            }
            m.verified = Some((plain, inv.clone()));
            inv
        }
    };
    check_source(&invitation, source).map_err(|_| Rejection::WrongSource)?;
    Ok(Found {
        index: m.index,
        key_used: m.used,
        invitation,
        source,
    })
}

// ------------------------------------------------------------------------------------------
// The shared group membership.

/// One datagram and its sender.
pub type Datagram = (Arc<[u8]>, SocketAddrV4);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct GroupKey {
    group: Ipv4Addr,
    port: u16,
    interface: Ipv4Addr,
}

struct SharedGroup {
    tx: broadcast::Sender<Datagram>,
}

/// Live memberships of this process. Entries are weak: the last [`Subscription`] dropped
/// ends the membership.
static GROUPS: Mutex<Vec<(GroupKey, Weak<SharedGroup>)>> = Mutex::new(Vec::new());

/// A subscriber of a multicast group. All subscribers of the same (group, port, interface)
/// in this process share one socket and see every datagram.
pub struct Subscription {
    group: Arc<SharedGroup>,
    rx: broadcast::Receiver<Datagram>,
}

impl std::fmt::Debug for Subscription {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Subscription")
            .field("subscribers", &self.subscribers())
            .finish()
    }
}

/// The listening socket, as the reference's `openListener`: address reuse, bound to the
/// group address and port, membership on `interface`, plus a read timeout so the reader
/// thread notices when nobody listens any more.
fn listen_socket(key: GroupKey) -> std::io::Result<std::net::UdpSocket> {
    let s = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP))?;
    s.set_reuse_address(true)?;
    s.bind(&SocketAddr::from(SocketAddrV4::new(key.group, key.port)).into())?;
    s.join_multicast_v4(&key.group, &key.interface)?;
    s.set_read_timeout(Some(READ_TIMEOUT))?;
    Ok(s.into())
}

/// Receives datagrams until no subscriber is left, then closes the socket (leaving the
/// group).
fn read_loop(socket: std::net::UdpSocket, group: Weak<SharedGroup>) {
    let mut buf = vec![0u8; MAX_DATAGRAM];
    loop {
        match socket.recv_from(&mut buf) {
            Ok((n, SocketAddr::V4(from))) => match group.upgrade() {
                Some(g) => {
                    let _ = g.tx.send((Arc::from(&buf[..n]), from));
                }
                None => break,
            },
            Ok((_, SocketAddr::V6(_))) => {}
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock
                        | std::io::ErrorKind::TimedOut
                        | std::io::ErrorKind::Interrupted
                ) =>
            {
                if group.strong_count() == 0 {
                    break;
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "multicast receive failed");
                if group.strong_count() == 0 {
                    break;
                }
                std::thread::sleep(READ_TIMEOUT);
            }
        }
    }
    tracing::debug!("multicast listener closed");
}

impl Subscription {
    /// Joins `group:port` on `interface`, or shares this process's existing membership.
    pub fn join(group: Ipv4Addr, port: u16, interface: Ipv4Addr) -> std::io::Result<Subscription> {
        let key = GroupKey {
            group,
            port,
            interface,
        };
        let mut groups = GROUPS.lock().unwrap_or_else(PoisonError::into_inner);
        groups.retain(|(_, g)| g.strong_count() > 0);
        if let Some(g) = groups
            .iter()
            .find(|(k, _)| *k == key)
            .and_then(|(_, g)| g.upgrade())
        {
            let rx = g.tx.subscribe();
            return Ok(Subscription { group: g, rx });
        }
        let socket = listen_socket(key)?;
        let (tx, rx) = broadcast::channel(FANOUT_BUFFER);
        let shared = Arc::new(SharedGroup { tx });
        let weak = Arc::downgrade(&shared);
        std::thread::Builder::new()
            .name("xrcp-discovery".into())
            .spawn(move || read_loop(socket, weak))?;
        groups.push((key, Arc::downgrade(&shared)));
        tracing::debug!(%group, port, %interface, "joined multicast group");
        Ok(Subscription { group: shared, rx })
    }

    /// How many subscriptions share this membership.
    pub fn subscribers(&self) -> usize {
        Arc::strong_count(&self.group)
    }

    /// The next datagram; `None` only if the membership ended.
    pub async fn recv(&mut self) -> Option<Datagram> {
        loop {
            match self.rx.recv().await {
                Ok(d) => return Some(d),
                Err(broadcast::error::RecvError::Lagged(n)) => {
                    tracing::debug!(skipped = n, "discovery fell behind; datagrams dropped");
                }
                Err(broadcast::error::RecvError::Closed) => return None,
            }
        }
    }
}

// ------------------------------------------------------------------------------------------
// Discovery.

/// A known controller found on the network.
#[derive(Clone, Debug)]
pub struct Discovered {
    /// The id the caller gave this pairing (the store's id).
    pub id: i64,
    /// The stored pairing, unchanged; pass it to [`crate::connect`].
    pub pairing: CtrlPairing,
    /// The verified invitation, with the controller's app info.
    pub invitation: SignedInvitation,
    /// Whether the pairing's previous DH key was needed (the controller missed an update).
    pub key_used: DhKeyUsed,
    pub source: Ipv4Addr,
}

impl Discovered {
    /// The controller's app info (`deviceName`, `appVersionRange`, ...).
    pub fn app(&self) -> &Value {
        &self.invitation.invitation.app
    }

    /// Connects as if the invitation had been scanned, with the stored pairing: TLS, then the
    /// session code. For a known controller the pairing pins its CA and identity key, so the
    /// caller may [`PendingConfirmation::confirm`] without asking the user to compare the
    /// code (our default for later sessions); `verify` remains available.
    pub async fn connect(
        self,
        options: HostOptions,
    ) -> Result<PendingConfirmation, RemoteCtrlError> {
        crate::connect::connect(self.invitation, Some(self.pairing), options).await
    }
}

/// One discovery: a group subscription and a matcher over the known pairings.
#[derive(Debug)]
pub struct Listener {
    subscription: Subscription,
    matcher: AnnouncementMatcher,
}

impl Listener {
    /// Joins the group for these `(id, pairing)`s. `CTRL_NOT_FOUND` if there are none.
    pub fn join(
        known: Vec<(i64, CtrlPairing)>,
        options: &DiscoverOptions,
    ) -> Result<Listener, RemoteCtrlError> {
        if known.is_empty() {
            return Err(RcError::CtrlNotFound.into());
        }
        let subscription = Subscription::join(options.group, options.port, options.interface)
            .map_err(|e| RcError::Exception(format!("multicast listener: {e}")))?;
        Ok(Listener {
            subscription,
            matcher: AnnouncementMatcher::with_cache(
                known,
                options.matched_cache,
                options.unmatched_cache,
            ),
        })
    }

    pub fn stats(&self) -> DiscoveryStats {
        self.matcher.stats()
    }

    pub fn subscription(&self) -> &Subscription {
        &self.subscription
    }

    /// Listens until a known controller's genuine announcement arrives, or `NOT_DISCOVERED`
    /// after `timeout`. Ignored datagrams are logged at debug level.
    pub async fn find(&mut self, timeout: Duration) -> Result<Discovered, RemoteCtrlError> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let Ok(Some((datagram, from))) =
                tokio::time::timeout_at(deadline, self.subscription.recv()).await
            else {
                tracing::debug!(stats = ?self.matcher.stats(), "no controller found");
                return Err(RcError::NotDiscovered.into());
            };
            match self.matcher.handle(&datagram, *from.ip()) {
                Ok(found) => {
                    let (id, pairing) = self.matcher.known()[found.index].clone();
                    tracing::debug!(id, %from, key = ?found.key_used, "controller found");
                    return Ok(Discovered {
                        id,
                        pairing,
                        invitation: found.invitation,
                        key_used: found.key_used,
                        source: found.source,
                    });
                }
                Err(e) => tracing::debug!(%from, error = %e, "announcement ignored"),
            }
        }
    }
}

/// Listens for an announcement of any of these `(id, pairing)`s (e.g.
/// [`crate::store::CtrlStore::known`]) for `options.timeout`. Then
/// [`Discovered::connect`] continues the session.
pub async fn discover(
    known: Vec<(i64, CtrlPairing)>,
    options: &DiscoverOptions,
) -> Result<Discovered, RemoteCtrlError> {
    let mut listener = Listener::join(known, options)?;
    listener.find(options.timeout).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use xrcp::crypto::{Ed25519SecretKey, KeyHash, Nonce, X25519SecretKey};
    use xrcp::handshake::ControllerHandshake;
    use xrcp::pairing::{HostPairing, KnownHost};
    use xrcp::tls::{CaRole, TlsIdentity};

    const CTRL_ADDR: Ipv4Addr = Ipv4Addr::new(10, 77, 0, 1);

    fn ctrl_pairing(ca: &TlsIdentity) -> CtrlPairing {
        CtrlPairing {
            ca: ca.clone(),
            ctrl_ca: KeyHash([1; 32]),
            ctrl_identity: Ed25519SecretKey::generate().public(),
            dh: X25519SecretKey::generate(),
            prev_dh: Some(X25519SecretKey::generate()),
        }
    }

    /// `n` pairings (one CA shared, to keep the test fast) and a controller handshake that
    /// announces to pairing `target`'s current or previous key.
    fn setup(
        n: usize,
        target: usize,
        previous: bool,
    ) -> (Vec<(i64, CtrlPairing)>, ControllerHandshake) {
        let ca = TlsIdentity::generate(CaRole::Host).unwrap();
        let known: Vec<_> = (0..n)
            .map(|i| (100 + i as i64, ctrl_pairing(&ca)))
            .collect();
        let p = &known[target].1;
        let host_dh = if previous {
            p.prev_dh.as_ref().unwrap().public()
        } else {
            p.dh.public()
        };
        let mut hp = HostPairing::new().unwrap();
        hp.known_host = Some(KnownHost {
            host_ca: KeyHash([2; 32]),
            host_dh,
        });
        let hs = ControllerHandshake::new(
            hp,
            CTRL_ADDR,
            4000,
            serde_json::json!({"deviceName": "d"}),
            1,
        )
        .unwrap();
        (known, hs)
    }

    #[test]
    fn finds_current_and_previous_and_caches_repeats() {
        let (known, hs) = setup(5, 3, false);
        let mut m = AnnouncementMatcher::new(known.clone());
        let f = m.handle(&hs.announcement().unwrap(), CTRL_ADDR).unwrap();
        assert_eq!((f.index, f.key_used), (3, DhKeyUsed::Current));
        assert_eq!(f.invitation, *hs.invitation());
        assert_eq!(
            m.stats().dh_operations,
            7,
            "pairings 0..=2 both keys, then 3's current"
        );
        for _ in 0..10 {
            let f = m.handle(&hs.announcement().unwrap(), CTRL_ADDR).unwrap();
            assert_eq!(f.index, 3);
        }
        let s = m.stats();
        assert_eq!((s.dh_operations, s.cache_hits, s.datagrams), (7, 10, 11));

        let (known, hs) = setup(4, 1, true);
        let mut m = AnnouncementMatcher::new(known);
        let f = m.handle(&hs.announcement().unwrap(), CTRL_ADDR).unwrap();
        assert_eq!((f.index, f.key_used), (1, DhKeyUsed::Previous));
        let f = m.handle(&hs.announcement().unwrap(), CTRL_ADDR).unwrap();
        assert_eq!((f.index, f.key_used), (1, DhKeyUsed::Previous));
    }

    #[test]
    fn agrees_with_announcement_open() {
        for (n, target, previous) in [(1, 0, false), (3, 2, true), (6, 0, true)] {
            let (known, hs) = setup(n, target, previous);
            let bytes = hs.announcement().unwrap();
            let (i, used, inv) = Announcement::decode(&bytes)
                .unwrap()
                .open(known.iter().map(|(_, p)| (&p.dh, p.prev_dh.as_ref())))
                .unwrap();
            let f = AnnouncementMatcher::new(known)
                .handle(&bytes, CTRL_ADDR)
                .unwrap();
            assert_eq!((f.index, f.key_used, f.invitation), (i, used, inv));
        }
    }

    #[test]
    fn wrong_source_unknown_and_malformed_are_rejected() {
        let (known, hs) = setup(3, 1, false);
        let mut m = AnnouncementMatcher::new(known);
        let bytes = hs.announcement().unwrap();
        let spoofed = Ipv4Addr::new(10, 77, 0, 3);
        assert_eq!(m.handle(&bytes, spoofed).unwrap_err(), RcError::Invitation);
        // The cached verdict still applies the source check per datagram.
        assert_eq!(
            m.handle(&hs.announcement().unwrap(), spoofed).unwrap_err(),
            RcError::Invitation
        );
        assert!(m.handle(&hs.announcement().unwrap(), CTRL_ADDR).is_ok());

        let (_, other) = setup(2, 0, false);
        assert_eq!(
            m.handle(&other.announcement().unwrap(), CTRL_ADDR)
                .unwrap_err(),
            RcError::CtrlNotFound
        );
        assert_eq!(
            m.handle(&[1, 2, 3], CTRL_ADDR).unwrap_err(),
            RcError::Invitation
        );
        let s = m.stats();
        assert_eq!((s.wrong_source, s.not_found, s.malformed), (2, 1, 1));
    }

    #[test]
    fn tampered_copy_does_not_hide_the_genuine_key() {
        let (known, hs) = setup(50, 49, false);
        let mut m = AnnouncementMatcher::new(known);
        for _ in 0..3 {
            let mut bad = hs.announcement().unwrap();
            bad[600] ^= 0x40;
            assert_eq!(
                m.handle(&bad, CTRL_ADDR).unwrap_err(),
                RcError::CtrlNotFound
            );
        }
        let dh_after_tampering = m.stats().dh_operations;
        assert_eq!(
            dh_after_tampering, 100,
            "X25519 once per pairing key, not per datagram"
        );
        let f = m.handle(&hs.announcement().unwrap(), CTRL_ADDR).unwrap();
        assert_eq!(f.index, 49);
        assert_eq!(m.stats().dh_operations, dh_after_tampering);
        // Once matched, a tampered copy is one failed box opening.
        let mut bad = hs.announcement().unwrap();
        bad[900] ^= 1;
        assert_eq!(
            m.handle(&bad, CTRL_ADDR).unwrap_err(),
            RcError::CtrlNotFound
        );
        assert!(m.handle(&hs.announcement().unwrap(), CTRL_ADDR).is_ok());
    }

    #[test]
    fn a_box_with_a_forged_invitation_is_invalid() {
        // Someone who knows a pairing's DH public key can seal a box it opens, but cannot sign
        // an invitation for the announced key.
        let (known, hs) = setup(2, 0, false);
        let mut m = AnnouncementMatcher::new(known.clone());
        let mut forged = Announcement::decode(&hs.announcement().unwrap()).unwrap();
        let forger = X25519SecretKey::generate();
        let k = forger.dh(&known[0].1.dh.public()).unwrap();
        forged.dh_key = forger.public();
        forged.nonce = Nonce::random();
        forged.ciphertext = xrcp::crypto::secretbox::seal_padded(
            &k,
            &forged.nonce,
            hs.invitation().to_uri().as_bytes(),
            900,
        )
        .unwrap();
        assert_eq!(
            m.handle(&forged.encode(), CTRL_ADDR).unwrap_err(),
            RcError::Invitation
        );
        assert_eq!(m.stats().invalid, 1);
        assert!(
            m.matched.is_empty(),
            "an unverified key is not remembered as matched"
        );
        // Repeats of the forged key cost no further X25519.
        let dh = m.stats().dh_operations;
        for _ in 0..3 {
            forged.nonce = Nonce::random();
            forged.ciphertext = xrcp::crypto::secretbox::seal_padded(
                &k,
                &forged.nonce,
                hs.invitation().to_uri().as_bytes(),
                900,
            )
            .unwrap();
            assert_eq!(
                m.handle(&forged.encode(), CTRL_ADDR).unwrap_err(),
                RcError::Invitation
            );
        }
        assert_eq!(m.stats().dh_operations, dh);
        assert_eq!(m.stats().invalid, 4);
        // The genuine controller is still found.
        assert_eq!(
            m.handle(&hs.announcement().unwrap(), CTRL_ADDR)
                .unwrap()
                .index,
            0
        );
    }

    #[test]
    fn caches_are_bounded() {
        let (known, _) = setup(2, 0, false);
        let mut m = AnnouncementMatcher::with_cache(known, 2, 3);
        for _ in 0..10 {
            let (_, other) = setup(1, 0, false);
            let _ = m.handle(&other.announcement().unwrap(), CTRL_ADDR);
        }
        assert_eq!(m.unmatched.len(), 3);
        let (known, hs) = setup(2, 1, true);
        let mut m = AnnouncementMatcher::with_cache(known, 0, 0);
        for _ in 0..3 {
            assert_eq!(
                m.handle(&hs.announcement().unwrap(), CTRL_ADDR)
                    .unwrap()
                    .index,
                1
            );
        }
        assert_eq!(m.stats().cache_hits, 0);
    }

    #[tokio::test]
    async fn empty_known_list_is_ctrl_not_found() {
        let err = discover(Vec::new(), &DiscoverOptions::default())
            .await
            .unwrap_err();
        assert!(
            matches!(err, RemoteCtrlError::Protocol(RcError::CtrlNotFound)),
            "{err}"
        );
    }
}
