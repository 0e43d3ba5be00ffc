//! A loopback TCP proxy that injects one fault into a connection: after exactly `after` bytes
//! have been forwarded in one direction, it either **cuts** the connection (closes both
//! sockets) or **stalls** it (stops forwarding and reading in both directions, but keeps both
//! sockets open until [`FaultProxy::shutdown`]).
//!
//! The host dials the proxy (`HostOptions::connect_via`), the proxy dials the controller. The
//! fault fires when the first byte *beyond* `after` would be forwarded, so `after` = "all bytes
//! of stage X" hits the moment the next stage starts, not the end of stage X.
//!
//! Byte counters and a read log per direction let a clean calibration run find the offsets of
//! the protocol's stages (see [`FaultProxy::first_flights`]). Counters are shared by all
//! connections of a proxy: the fault tests make exactly one.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::{JoinHandle, JoinSet};

/// Which way bytes flow, seen from TCP: the host is the TCP (and TLS) client.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    /// Host → controller: ClientHello, the client's second TLS flight, the host HELLO, and
    /// in the session the host's HTTP/2 *responses*.
    ToServer,
    /// Controller → host: the server's TLS flight, the controller HELLO, and in the session
    /// the controller's HTTP/2 *requests*.
    ToClient,
}

impl Direction {
    fn index(self) -> usize {
        match self {
            Direction::ToServer => 0,
            Direction::ToClient => 1,
        }
    }
}

/// What happens when the fault fires.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// Close both sockets.
    Cut,
    /// Stop forwarding and reading; keep both sockets open.
    Stall,
}

/// One fault: after `after` bytes in `direction` (counted from the start of the connection).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Fault {
    pub direction: Direction,
    pub after: u64,
    pub action: Action,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    Forwarding,
    Cut,
    Stalled,
    /// The proxy is shutting down: every pump ends and drops its sockets.
    Released,
}

/// One read, for calibration: its direction and both counters after forwarding it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReadEvent {
    pub direction: Direction,
    pub to_server: u64,
    pub to_client: u64,
}

#[derive(Default)]
struct Shared {
    fault: Option<Fault>,
    forwarded: [u64; 2],
    log: Vec<ReadEvent>,
    fired: Option<Fault>,
    connections: usize,
}

/// Sizes of the first flights, read off a clean connection's log.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FirstFlights {
    /// Bytes the client sent before the server sent anything (the ClientHello).
    pub client_hello: u64,
    /// Bytes the server sent before the client sent anything more (the server's flight,
    /// ServerHello to Finished).
    pub server_flight: u64,
}

/// A running proxy; see the module documentation.
pub struct FaultProxy {
    addr: SocketAddr,
    shared: Arc<Mutex<Shared>>,
    phase: Arc<watch::Sender<Phase>>,
    accept: JoinHandle<()>,
}

impl FaultProxy {
    /// Listens on 127.0.0.1 (ephemeral port) and forwards every connection to `target`.
    pub async fn start(target: SocketAddr, fault: Option<Fault>) -> std::io::Result<FaultProxy> {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Mutex::new(Shared {
            fault,
            ..Shared::default()
        }));
        let (phase, _) = watch::channel(Phase::Forwarding);
        let phase = Arc::new(phase);
        let accept = tokio::spawn(accept_loop(
            listener,
            target,
            Arc::clone(&shared),
            Arc::clone(&phase),
        ));
        Ok(FaultProxy {
            addr,
            shared,
            phase,
            accept,
        })
    }

    /// The address to dial.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    fn shared(&self) -> std::sync::MutexGuard<'_, Shared> {
        self.shared.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Bytes forwarded so far in `direction`.
    pub fn forwarded(&self, direction: Direction) -> u64 {
        self.shared().forwarded[direction.index()]
    }

    /// Arms (or re-arms) the fault to fire after `more` further bytes in `direction`.
    pub fn arm(&self, direction: Direction, more: u64, action: Action) -> Fault {
        let mut s = self.shared();
        let fault = Fault {
            direction,
            after: s.forwarded[direction.index()] + more,
            action,
        };
        s.fault = Some(fault);
        fault
    }

    /// The fault, once it fired.
    pub fn fired(&self) -> Option<Fault> {
        self.shared().fired
    }

    /// Connections accepted so far.
    pub fn connections(&self) -> usize {
        self.shared().connections
    }

    /// Every read forwarded so far, in order.
    pub fn log(&self) -> Vec<ReadEvent> {
        self.shared().log.clone()
    }

    /// The ClientHello and server flight sizes of a connection that has progressed past the
    /// client's second flight; `None` before that.
    pub fn first_flights(&self) -> Option<FirstFlights> {
        let log = self.log();
        let first_down = log
            .iter()
            .position(|e| e.direction == Direction::ToClient)?;
        let client_hello = log[first_down].to_server;
        let second_up = first_down
            + log[first_down..]
                .iter()
                .position(|e| e.direction == Direction::ToServer && e.to_server > client_hello)?;
        // The server's flight is everything it sent before the client's next bytes.
        let server_flight = log[second_up].to_client;
        Some(FirstFlights {
            client_hello,
            server_flight,
        })
    }

    /// Ends every connection (also a stalled one), stops listening and waits until all
    /// of the proxy's tasks have ended. Errors if that takes more than `within`.
    pub async fn shutdown(self, within: Duration) -> Result<(), String> {
        self.phase.send_replace(Phase::Released);
        tokio::time::timeout(within, self.accept)
            .await
            .map_err(|_| "proxy tasks did not end".to_owned())?
            .map_err(|e| format!("proxy task failed: {e}"))
    }
}

async fn accept_loop(
    listener: TcpListener,
    target: SocketAddr,
    shared: Arc<Mutex<Shared>>,
    phase: Arc<watch::Sender<Phase>>,
) {
    let mut pumps = JoinSet::new();
    let mut released = phase.subscribe();
    loop {
        tokio::select! {
            conn = listener.accept() => {
                let Ok((client, _)) = conn else { continue };
                shared.lock().unwrap_or_else(PoisonError::into_inner).connections += 1;
                let Ok(server) = TcpStream::connect(target).await else { continue };
                let _ = client.set_nodelay(true);
                let _ = server.set_nodelay(true);
                let (client_rd, client_wr) = client.into_split();
                let (server_rd, server_wr) = server.into_split();
                let (s, p) = (Arc::clone(&shared), Arc::clone(&phase));
                pumps.spawn(pump(Direction::ToServer, client_rd, server_wr, s, p));
                let (s, p) = (Arc::clone(&shared), Arc::clone(&phase));
                pumps.spawn(pump(Direction::ToClient, server_rd, client_wr, s, p));
            }
            _ = until(&mut released, |p| p == Phase::Released) => break,
        }
    }
    drop(listener);
    while pumps.join_next().await.is_some() {}
}

/// What to do with a chunk just read.
enum Decision {
    Forward,
    Fire { pass: usize, action: Action },
}

async fn pump(
    direction: Direction,
    mut from: OwnedReadHalf,
    mut to: OwnedWriteHalf,
    shared: Arc<Mutex<Shared>>,
    phase: Arc<watch::Sender<Phase>>,
) {
    let lock = || shared.lock().unwrap_or_else(PoisonError::into_inner);
    let mut phase_rx = phase.subscribe();
    let mut buf = vec![0u8; 16 << 10];
    loop {
        let n = tokio::select! {
            r = from.read(&mut buf) => match r {
                Ok(0) | Err(_) => {
                    // End of stream (or reset): pass the FIN on, keep the other direction.
                    let _ = to.shutdown().await;
                    return;
                }
                Ok(n) => n,
            },
            _ = until(&mut phase_rx, |p| p != Phase::Forwarding) => break,
        };
        let decision = {
            let s = lock();
            match s.fault {
                Some(f) if f.direction == direction => {
                    let allowed = f.after.saturating_sub(s.forwarded[direction.index()]);
                    if (n as u64) <= allowed {
                        Decision::Forward
                    } else {
                        Decision::Fire {
                            pass: allowed as usize,
                            action: f.action,
                        }
                    }
                }
                _ => Decision::Forward,
            }
        };
        let pass = match decision {
            Decision::Forward => n,
            Decision::Fire { pass, .. } => pass,
        };
        let mut written = true;
        if pass > 0 {
            // Counted (and logged) before writing, so the log orders a request before the
            // answer it provokes.
            {
                let mut s = lock();
                s.forwarded[direction.index()] += pass as u64;
                let event = ReadEvent {
                    direction,
                    to_server: s.forwarded[0],
                    to_client: s.forwarded[1],
                };
                s.log.push(event);
            }
            written = tokio::select! {
                r = to.write_all(&buf[..pass]) => r.is_ok(),
                _ = until(&mut phase_rx, |p| p != Phase::Forwarding) => false,
            };
        }
        if let Decision::Fire { action, .. } = decision {
            let mut s = lock();
            s.fired = s.fault;
            drop(s);
            phase.send_replace(match action {
                Action::Cut => Phase::Cut,
                Action::Stall => Phase::Stalled,
            });
            break;
        }
        if !written {
            break;
        }
    }
    if *phase_rx.borrow() == Phase::Stalled {
        // Keep both sockets open, reading nothing, until the proxy is shut down.
        until(&mut phase_rx, |p| p == Phase::Released).await;
    }
    drop(from);
    drop(to);
}

/// Waits until the phase satisfies `pred` (or the proxy is gone).
async fn until(rx: &mut watch::Receiver<Phase>, pred: impl Fn(Phase) -> bool) {
    let _ = rx.wait_for(|p| pred(*p)).await;
}
