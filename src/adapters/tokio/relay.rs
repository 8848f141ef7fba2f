//! The relay over tokio: [`run_relay`] serves a [`Relay`] on a listener (the machine decides who
//! is joined to whom, tokio moves the octets with `copy_bidirectional`), and [`relay_dial`] is the
//! client side both iP2P peers use.

use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

use crate::machine::Machine;
use crate::relay::wire::{Hello, Role, Status, HELLO_LEN};
use crate::relay::{ConnId, Input, Output, Relay, RelayConfig, RelayToken};
use crate::time::Time;

/// Why [`relay_dial`] gave no stream.
#[derive(Debug, thiserror::Error)]
pub enum RelayDialError {
    /// The relay refused (or gave up waiting for the other side).
    #[error("the relay refused: {0:?}")]
    Refused(Status),
    /// The relay answered something that is not a status.
    #[error("the relay answered {0}, not a status")]
    BadAnswer(u8),
    /// No pairing within the time-out.
    #[error("no answer from the relay in time")]
    Timeout,
    /// Connecting, writing or reading failed.
    #[error("relay connection: {0}")]
    Io(#[from] io::Error),
}

/// Connect to the relay at `relay`, present `token` as `role`, and wait (at most `timeout`) until
/// the relay has joined the other side: the stream then carries its octets.
pub async fn relay_dial(
    relay: SocketAddr,
    token: RelayToken,
    role: Role,
    timeout: Duration,
) -> Result<TcpStream, RelayDialError> {
    let attempt = async {
        let mut s = TcpStream::connect(relay).await?;
        s.set_nodelay(true)?;
        s.write_all(&Hello { role, token }.encode()).await?;
        let mut status = [0u8; 1];
        s.read_exact(&mut status).await?;
        match Status::from_code(status[0]) {
            Ok(Status::Paired) => Ok(s),
            Ok(other) => Err(RelayDialError::Refused(other)),
            Err(_) => Err(RelayDialError::BadAnswer(status[0])),
        }
    };
    tokio::time::timeout(timeout, attempt)
        .await
        .map_err(|_| RelayDialError::Timeout)?
}

enum Event {
    Accepted(TcpStream, SocketAddr),
    Hello(ConnId, Vec<u8>, TcpStream),
    Closed(ConnId),
}

/// Counters of a running relay.
#[derive(Clone, Copy, Debug, Default)]
pub struct RelayCounters {
    /// Pairs joined.
    pub paired: u64,
    /// Octets copied, both ways, by pairs that have ended.
    pub bytes: u64,
}

/// Serve `listener` as a relay for ever (until the listener fails). Each accepted connection
/// gets its hello read (at most [`HELLO_LEN`] octets, within the machine's time-out); the
/// machine's statuses are written, its splices carried out with `copy_bidirectional`, and the end
/// of either side closes the other.
pub async fn run_relay(listener: TcpListener, config: RelayConfig) -> io::Result<()> {
    let origin = Instant::now();
    let now = move || Time::ZERO + origin.elapsed();
    let mut relay = Relay::new(config);
    let (tx, mut rx) = mpsc::unbounded_channel::<Event>();
    let mut next = 0u64;
    // connections whose stream the relay task holds: waiting for a partner
    let mut held: HashMap<ConnId, TcpStream> = HashMap::new();
    let accept_tx = tx.clone();
    let acceptor = tokio::spawn(async move {
        loop {
            match listener.accept().await {
                Ok((s, from)) => {
                    if accept_tx.send(Event::Accepted(s, from)).is_err() {
                        return;
                    }
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
            }
        }
    });
    loop {
        let deadline = relay.poll_timeout();
        let ev = match deadline {
            Some(d) => {
                let wait = d.saturating_since(now());
                match tokio::time::timeout(wait, rx.recv()).await {
                    Ok(Some(e)) => Some(e),
                    Ok(None) => break,
                    Err(_) => {
                        relay.handle_timeout(now());
                        None
                    }
                }
            }
            None => match rx.recv().await {
                Some(e) => Some(e),
                None => break,
            },
        };
        let mut pending_streams: Vec<(ConnId, TcpStream)> = Vec::new();
        match ev {
            Some(Event::Accepted(stream, from)) => {
                next += 1;
                let conn = ConnId(next);
                let _ = relay.handle(
                    now(),
                    Input::Accepted {
                        conn,
                        from: from.ip(),
                    },
                );
                pending_streams.push((conn, stream));
            }
            Some(Event::Hello(conn, bytes, stream)) => {
                held.insert(conn, stream);
                let _ = relay.handle(now(), Input::Data { conn, bytes });
            }
            Some(Event::Closed(conn)) => {
                held.remove(&conn);
                let _ = relay.handle(now(), Input::Closed(conn));
            }
            None => {}
        }
        // carry out what the machine decided
        let mut closing = Vec::new();
        while let Some(o) = relay.poll() {
            match o {
                Output::Status { conn, status } => {
                    if let Some(s) = held.get_mut(&conn) {
                        // one octet on a fresh connection: the socket buffer takes it at once
                        let _ = s.try_write(&[status.code()]);
                    } else if let Some((_, s)) =
                        pending_streams.iter_mut().find(|(c, _)| *c == conn)
                    {
                        let _ = s.try_write(&[status.code()]);
                    }
                }
                Output::Close(conn) => closing.push(conn),
                Output::Splice { caller, callee } => {
                    if let (Some(mut a), Some(mut b)) = (held.remove(&caller), held.remove(&callee))
                    {
                        let tx = tx.clone();
                        tokio::spawn(async move {
                            let _ = tokio::io::copy_bidirectional(&mut a, &mut b).await;
                            drop((a, b));
                            // the machine closes the partner itself
                            let _ = tx.send(Event::Closed(caller));
                        });
                    }
                }
            }
        }
        for conn in closing {
            held.remove(&conn);
            pending_streams.retain(|(c, _)| *c != conn);
        }
        // accepted and still wanted: read the hello
        for (conn, mut stream) in pending_streams {
            let tx = tx.clone();
            let limit = config.pending_timeout;
            tokio::spawn(async move {
                let mut buf = vec![0u8; HELLO_LEN];
                match tokio::time::timeout(limit, stream.read_exact(&mut buf)).await {
                    Ok(Ok(_)) => {
                        let _ = tx.send(Event::Hello(conn, buf, stream));
                    }
                    _ => {
                        let _ = tx.send(Event::Closed(conn));
                    }
                }
            });
        }
    }
    acceptor.abort();
    Ok(())
}
