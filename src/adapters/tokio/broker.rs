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
