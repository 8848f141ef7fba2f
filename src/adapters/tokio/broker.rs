//! P2PBroker's probe over tokio: what the network around this host supports, learned from a
//! STUNT #2 prediction and an UPnP IGD discovery run at once, as a [`Profile`].
//!
//! Feed the result to the iP2P host (`HostConfig::profile`, `Ip2pHandle::set_profile`) on start
//! and after every change of network.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use super::upnp::{Igd, Options};
use crate::broker::profile::classify;
use crate::broker::Profile;
use crate::stunt::predict::PredictConfig;

/// What to probe with.
#[derive(Clone, Debug, Default)]
pub struct ProbeOptions {
    /// Prediction servers (one per probe; empty: no prediction, the NAT stays `Unknown`).
    pub servers: Vec<SocketAddr>,
    /// How predictions are made.
    pub predict: PredictConfig,
    /// UPnP discovery (`None`: no IGD is looked for).
    pub upnp: Option<Options>,
    /// Give up on the IGD after this long (default: the discovery options' own time-out).
    pub upnp_timeout: Option<Duration>,
}

/// Probe the network of local address `local`: a prediction from an ephemeral port and an IGD
/// discovery (with its external address), concurrently. Never fails: what could not be learned is
/// left unknown in the profile.
pub async fn probe(local: IpAddr, options: &ProbeOptions) -> Profile {
    let predict = async {
        if options.servers.is_empty() {
            return None;
        }
        let bind = SocketAddr::new(local, 0);
        match super::stunt::predict(bind, &options.servers, options.predict).await {
            Ok(p) => Some(Ok(p)),
            Err(super::stunt::Error::Stunt(e)) => Some(Err(e)),
            Err(super::stunt::Error::Io { .. }) => None,
        }
    };
    let igd = async {
        let opts = options.upnp.clone()?;
        let limit = options
            .upnp_timeout
            .unwrap_or(opts.config.discovery_timeout + opts.config.http_timeout);
        let find = async {
            let igd = Igd::discover_with(opts).await.ok()?;
            igd.external_ip().await.ok()
        };
        tokio::time::timeout(limit, find).await.ok().flatten()
    };
    let (prediction, igd) = tokio::join!(predict, igd);
    classify(local, prediction, igd)
}

/// The paper's second deployment: one broker for a whole LAN. It answers every query on `socket`
/// with the network part of the profile in `profile` (update it after each new probe; hosts on
/// the LAN then ask instead of probing themselves). Runs until the socket fails.
///
/// ```no_run
/// # async fn f(profile: ip2p::broker::Profile) -> std::io::Result<()> {
/// use ip2p::adapters::tokio::broker::{ask_lan, serve_lan};
/// let (set, profile) = tokio::sync::watch::channel(profile);
/// let socket = tokio::net::UdpSocket::bind("10.0.1.1:4790").await?;
/// tokio::spawn(serve_lan(socket, profile));
/// // on another host of the LAN:
/// let mine = ask_lan("10.0.1.1:4790".parse().unwrap(), "10.0.1.7".parse().unwrap(),
///                    std::time::Duration::from_secs(1)).await?;
/// # let _ = (set, mine); Ok(()) }
/// ```
pub async fn serve_lan(
    socket: tokio::net::UdpSocket,
    profile: tokio::sync::watch::Receiver<Profile>,
) -> std::io::Result<()> {
    let mut buf = [0u8; 64];
    loop {
        let (n, from) = socket.recv_from(&mut buf).await?;
        if crate::broker::wire::is_query(&buf[..n]) {
            let answer = crate::broker::wire::encode_answer(&profile.borrow());
            // a lost answer is asked again by the host
            let _ = socket.send_to(&answer, from).await;
        }
    }
}

/// Ask the LAN broker at `service` for the profile of this host (local address `local`),
/// trying three times within `timeout`.
pub async fn ask_lan(
    service: SocketAddr,
    local: IpAddr,
    timeout: Duration,
) -> std::io::Result<Profile> {
    let socket = tokio::net::UdpSocket::bind(SocketAddr::new(local, 0)).await?;
    let each = timeout / 3;
    let mut buf = [0u8; crate::broker::wire::MAX_ANSWER + 1];
    for _ in 0..3 {
        socket.send_to(&crate::broker::wire::QUERY, service).await?;
        let Ok(r) = tokio::time::timeout(each, socket.recv_from(&mut buf)).await else {
            continue;
        };
        let (n, from) = r?;
        if from != service {
            continue;
        }
        return crate::broker::wire::decode_answer(&buf[..n], local)
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e));
    }
    Err(std::io::Error::new(
        std::io::ErrorKind::TimedOut,
        "no answer from the LAN broker",
    ))
}
