//! The multicast announcer: how a controller reaches a *known* host without showing a link
//! (spec/xrcp.md §5).
//!
//! While [`Listening`] waits for the host, the controller sends the signed invitation,
//! encrypted to the host's DH key from the previous session, to `224.0.0.251:5227`: 60
//! datagrams one second apart, each with a fresh nonce, stopping as soon as the host connects.
//! Only a host holding that DH key (current or previous) can read it, and the host connects
//! only if the datagram came from the invitation's address.
//!
//! Socket choices. The reference sends from an unconnected socket with OS defaults. We set
//! the options explicitly, to the values Linux would pick for this group anyway, so the
//! behaviour does not depend on the platform or on routing:
//! - the outgoing interface is the advertised address, and the socket is bound to it, so the
//!   datagram's source address is the invitation's `host` — on a multi-homed machine the
//!   OS's own choice could differ and the host would discard every datagram (spec/xrcp.md §5, step 5);
//! - TTL 1: 224.0.0.0/24 is link-local and never routed;
//! - loop on, so a host on the same machine (and the tests) can hear it.
//!
//! Usage: [`start_announced`] for the whole reconnect flow, or [`Announcer::start`] next to a
//! [`Listening`] you drive yourself; drop or [`Announcer::stop`] the announcer when
//! [`Listening::accept`] returns.

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use socket2::{Domain, Protocol, Socket, Type};
use tokio::net::UdpSocket;
use tokio::task::JoinHandle;
use xrcp::pairing::HostPairing;
use xrcp::RcError;

use crate::connect::{ControllerOptions, Listening, PendingHello};
use crate::error::RemoteHostError;

/// The reference's multicast group (`MULTICAST_ADDR_V4`).
pub const MULTICAST_GROUP: Ipv4Addr = Ipv4Addr::new(224, 0, 0, 251);
/// The reference's discovery port (`DISCOVERY_PORT`).
pub const DISCOVERY_PORT: u16 = 5227;
/// Datagrams per session (`announceRC drg 60`).
pub const ANNOUNCE_COUNT: u32 = 60;
/// Pause between datagrams.
pub const ANNOUNCE_INTERVAL: Duration = Duration::from_secs(1);
/// Bound on one `sendto`; a UDP send normally completes at once.
const SEND_TIMEOUT: Duration = Duration::from_secs(1);

/// Where and how often to announce. The defaults are the reference's; tests change the
/// group, port, count and interval.
#[derive(Clone, Debug)]
pub struct AnnounceOptions {
    /// The multicast group (the reference's 224.0.0.251).
    pub group: Ipv4Addr,
    /// The UDP port (the reference's 5227).
    pub port: u16,
    /// How many datagrams one session sends.
    pub count: u32,
    /// The pause between datagrams.
    pub interval: Duration,
    /// The outgoing interface's address; `None` uses the advertised address.
    pub interface: Option<Ipv4Addr>,
    /// The datagrams' TTL (1: they do not leave the link).
    pub ttl: u32,
    /// Whether this machine's own listeners receive them too.
    pub multicast_loop: bool,
}

impl Default for AnnounceOptions {
    fn default() -> Self {
        AnnounceOptions {
            group: MULTICAST_GROUP,
            port: DISCOVERY_PORT,
            count: ANNOUNCE_COUNT,
            interval: ANNOUNCE_INTERVAL,
            interface: None,
            ttl: 1,
            multicast_loop: true,
        }
    }
}

/// A running announcement. Dropping it stops the sending at once.
#[derive(Debug)]
pub struct Announcer {
    task: Option<JoinHandle<()>>,
    sent: Arc<AtomicU32>,
}

fn io_error(what: &str, e: std::io::Error) -> RcError {
    RcError::Exception(xrcp::ErrorDetail::with_source(
        format!("announcer {what}: {e}"),
        e,
    ))
}

/// The sending socket: bound to `source` (so the datagram's source address is the
/// invitation's host), outgoing interface, TTL and loop set explicitly.
fn announce_socket(source: Ipv4Addr, options: &AnnounceOptions) -> Result<UdpSocket, RcError> {
    let s = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP))
        .map_err(|e| io_error("socket", e))?;
    s.bind(&SocketAddr::from(SocketAddrV4::new(source, 0)).into())
        .map_err(|e| io_error("bind", e))?;
    s.set_multicast_if_v4(&options.interface.unwrap_or(source))
        .map_err(|e| io_error("IP_MULTICAST_IF", e))?;
    s.set_multicast_ttl_v4(options.ttl)
        .map_err(|e| io_error("IP_MULTICAST_TTL", e))?;
    s.set_multicast_loop_v4(options.multicast_loop)
        .map_err(|e| io_error("IP_MULTICAST_LOOP", e))?;
    s.set_nonblocking(true)
        .map_err(|e| io_error("nonblocking", e))?;
    UdpSocket::from_std(s.into()).map_err(|e| io_error("register", e))
}

impl Announcer {
    /// Starts announcing `listening`'s invitation. All datagrams are sealed here, each with a
    /// fresh nonce (the same invitation and session key, as the reference re-sends), because
    /// [`Listening::accept`] consumes the listener while the announcer keeps running.
    ///
    /// `NEW_CONTROLLER` if the pairing has no known host (a new host pairs by scanning).
    /// Must be called inside a tokio runtime.
    pub fn start(listening: &Listening, options: &AnnounceOptions) -> Result<Announcer, RcError> {
        let datagrams = (0..options.count)
            .map(|_| listening.announcement())
            .collect::<Result<Vec<_>, _>>()?;
        let mut datagrams = datagrams.into_iter();
        let source = listening
            .local_address()
            .ok_or(RcError::Exception(
                "announcements need one of this machine's addresses in the link".into(),
            ))?
            .address;
        Announcer::start_with(source, options, move || {
            datagrams
                .next()
                .ok_or_else(|| RcError::Internal("announcement count exceeded".into()))
        })
    }

    /// Starts announcing the datagrams `next` produces, one per interval, `options.count` in
    /// all, from a socket bound to `source` (the address in the invitation).
    pub fn start_with<F>(
        source: Ipv4Addr,
        options: &AnnounceOptions,
        mut next: F,
    ) -> Result<Announcer, RcError>
    where
        F: FnMut() -> Result<Vec<u8>, RcError> + Send + 'static,
    {
        let runtime = tokio::runtime::Handle::try_current()
            .map_err(|_| RcError::Internal("announcer needs a tokio runtime".into()))?;
        let _guard = runtime.enter();
        let socket = announce_socket(source, options)?;
        let sent = Arc::new(AtomicU32::new(0));
        let counter = sent.clone();
        let to = SocketAddr::from(SocketAddrV4::new(options.group, options.port));
        let (count, interval) = (options.count, options.interval);
        let task = runtime.spawn(async move {
            let mut ticks = tokio::time::interval(interval.max(Duration::from_millis(1)));
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            for i in 0..count {
                ticks.tick().await;
                let datagram = match next() {
                    Ok(d) => d,
                    Err(e) => {
                        tracing::warn!(error = %e, "cannot make announcement; stopped");
                        return;
                    }
                };
                match tokio::time::timeout(SEND_TIMEOUT, socket.send_to(&datagram, to)).await {
                    Ok(Ok(_)) => {
                        counter.fetch_add(1, Ordering::Relaxed);
                        tracing::debug!(n = i + 1, %to, "announcement sent");
                    }
                    Ok(Err(e)) => tracing::warn!(error = %e, %to, "announcement not sent"),
                    Err(_) => tracing::warn!(%to, "announcement send timed out"),
                }
            }
            tracing::debug!(count, "announcements done");
        });
        Ok(Announcer {
            task: Some(task),
            sent,
        })
    }

    /// Datagrams sent so far.
    pub fn sent(&self) -> u32 {
        self.sent.load(Ordering::Relaxed)
    }

    /// Whether all datagrams were sent (or sending gave up).
    pub fn is_finished(&self) -> bool {
        self.task.as_ref().is_none_or(JoinHandle::is_finished)
    }

    /// Waits until every datagram was sent; returns how many were.
    pub async fn finished(mut self) -> u32 {
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
        self.sent()
    }

    /// Stops sending now (the same as dropping it).
    pub fn stop(self) {}
}

impl Drop for Announcer {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

/// A controller session for a known host with the announcer running: the reconnect flow's
/// first half (`/start remote host <id> multicast=on`).
pub struct Announced {
    listening: Listening,
    announcer: Announcer,
}

impl std::fmt::Debug for Announced {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Announced")
            .field("advertised", &self.listening.advertised())
            .field("announcer", &self.announcer)
            .finish_non_exhaustive()
    }
}

/// Starts a session for a known host and announces it by multicast while waiting.
/// `NEW_CONTROLLER` if the pairing has no known host, before anything is bound.
pub async fn start_announced(
    pairing: HostPairing,
    options: ControllerOptions,
    announce: &AnnounceOptions,
) -> Result<Announced, RemoteHostError> {
    if pairing.known_host.is_none() {
        return Err(RcError::NewController.into());
    }
    let listening = crate::connect::start(pairing, options).await?;
    let announcer = Announcer::start(&listening, announce)?;
    Ok(Announced {
        listening,
        announcer,
    })
}

impl Announced {
    /// The listener whose invitation is announced.
    pub fn listening(&self) -> &Listening {
        &self.listening
    }

    /// The running announcement.
    pub fn announcer(&self) -> &Announcer {
        &self.announcer
    }

    /// [`Listening::accept`]; the announcer stops as soon as it returns, whatever the result.
    pub async fn accept(self) -> Result<PendingHello, RemoteHostError> {
        let Announced {
            listening,
            announcer,
        } = self;
        let result = listening.accept().await;
        announcer.stop();
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::address::LocalAddress;
    use std::time::Instant;
    use xrcp::crypto::{KeyHash, X25519SecretKey};
    use xrcp::message::Announcement;
    use xrcp::pairing::KnownHost;

    /// Unicast to a loopback socket stands in for the group here (no multicast leaves the
    /// machine); the multicast path itself is tested in network namespaces
    /// (`tests/tests/multicast.rs`).
    fn loopback(count: u32, interval_ms: u64, port: u16) -> AnnounceOptions {
        AnnounceOptions {
            group: Ipv4Addr::LOCALHOST,
            port,
            count,
            interval: Duration::from_millis(interval_ms),
            ..AnnounceOptions::default()
        }
    }

    fn options() -> ControllerOptions {
        ControllerOptions {
            bind: Ipv4Addr::LOCALHOST,
            candidates: Some(vec![LocalAddress {
                address: Ipv4Addr::LOCALHOST,
                interface: "lo".into(),
            }]),
            ..ControllerOptions::default()
        }
    }

    #[tokio::test]
    async fn sends_count_datagrams_from_the_advertised_address() {
        let rx = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let port = rx.local_addr().unwrap().port();
        let host_dh = X25519SecretKey::generate();
        let mut pairing = HostPairing::new().unwrap();
        pairing.known_host = Some(KnownHost {
            host_ca: KeyHash([1; 32]),
            host_dh: host_dh.public(),
        });
        let announced = start_announced(pairing, options(), &loopback(3, 20, port))
            .await
            .unwrap();
        let mut nonces = Vec::new();
        for _ in 0..3 {
            let mut buf = [0u8; 2048];
            let (n, from) = tokio::time::timeout(Duration::from_secs(5), rx.recv_from(&mut buf))
                .await
                .unwrap()
                .unwrap();
            assert_eq!(from.ip(), std::net::IpAddr::V4(Ipv4Addr::LOCALHOST));
            let ann = Announcement::decode(&buf[..n]).unwrap();
            let (_, _, inv) = ann.open([(&host_dh, None)]).unwrap();
            assert_eq!(inv, *announced.listening().invitation());
            nonces.push(ann.nonce);
        }
        nonces.dedup();
        assert_eq!(nonces.len(), 3, "a fresh nonce per datagram");
        let Announced { announcer, .. } = announced;
        assert_eq!(announcer.finished().await, 3);
    }

    #[tokio::test]
    async fn unknown_host_is_new_controller() {
        let err = start_announced(
            HostPairing::new().unwrap(),
            options(),
            &AnnounceOptions::default(),
        )
        .await
        .unwrap_err();
        assert!(
            matches!(err, RemoteHostError::Protocol(RcError::NewController)),
            "{err}"
        );
    }

    #[tokio::test]
    async fn dropping_the_announcer_stops_it() {
        let rx = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let port = rx.local_addr().unwrap().port();
        let announcer = Announcer::start_with(Ipv4Addr::LOCALHOST, &loopback(60, 50, port), || {
            Ok(vec![7; 10])
        })
        .unwrap();
        let mut buf = [0u8; 64];
        rx.recv_from(&mut buf).await.unwrap();
        drop(announcer);
        let start = Instant::now();
        let mut late = 0;
        while start.elapsed() < Duration::from_millis(300) {
            if let Ok(Ok(_)) =
                tokio::time::timeout(Duration::from_millis(100), rx.recv_from(&mut buf)).await
            {
                late += 1;
            }
        }
        assert!(late <= 1, "{late} datagrams after stop");
    }
}
