//! SAMP over UDP: a [`Server`] on one socket that carries both SIP and Chord, and the
//! [`MobileNode`] and [`Correspondent`] each on a SIP socket, all run by the crate's generic
//! driver ([`super::spawn`]); this module adds only what is particular to SAMP.
//!
//! - **Demultiplexing.** A server's socket carries SIP (text) and Chord (binary) datagrams. The
//!   codec [`SampWire`] tells them apart by the first byte: `0x01` (the Chord wire version) is
//!   Chord, anything else is SIP — SIP requests start with an ASCII letter, responses with
//!   `SIP/`, keep-alives with CR/LF, none with `0x01` (see [`crate::samp::wire`]). A datagram that
//!   is neither is counted in [`super::Counters::decode_errors`] and dropped; the driver never
//!   panics on what a peer sends.
//! - **Multicast discovery.** An MN finds its anchor with `REGISTER sip:sip.mcast.net` sent to
//!   224.0.1.75:5060. [`ServerOptions::multicast`] makes a server's socket join that group on an
//!   interface (with `IP_MULTICAST_LOOP` on). A socket only hears the group on its own port, and
//!   only when bound to the wildcard (or the group) address: so a multicast-discoverable server is
//!   bound to `0.0.0.0:<group port>`, one per host and port. Where multicast cannot reach the
//!   servers — several servers on one loopback address with distinct ports, as in the tests, or a
//!   network that drops multicast — [`spawn_mobile`] takes a list of **discovery addresses**
//!   ([`MobileOptions::discovery`]): every datagram the MN addresses to the multicast group is sent
//!   to each of them instead ([`UnicastDiscovery`]); an entry may also be the group on another
//!   port. [`MobileOptions::multicast_if`] picks the interface multicast leaves by. The MN machine
//!   is unchanged: it sends one discovery REGISTER and gathers the answers within δ.
//!   `tests/samp_tokio.rs` checks both: real multicast on loopback (server on `0.0.0.0:P` joined
//!   on 127.0.0.1, MN sending to 224.0.1.75:P out of 127.0.0.1) and unicast discovery addresses.
//! - **Timers** come from each machine's `poll_timeout`, as for every machine the driver runs.
//!
//! ```no_run
//! use ip2p::adapters::tokio::samp::{spawn_server, ServerOptions};
//! use ip2p::chord::{Command, NodeId, RingId};
//! use ip2p::samp::server::{Input, Server, ServerConfig};
//! use ip2p::TransportAddr;
//!
//! # async fn f() -> std::io::Result<()> {
//! let socket = tokio::net::UdpSocket::bind("0.0.0.0:5060").await?;
//! let addr = TransportAddr("192.0.2.10:5060".parse().unwrap()); // the address peers reach
//! let server = Server::new(NodeId::sha1_of(addr.to_string().as_bytes()), addr, ServerConfig::default());
//! let opts = ServerOptions { multicast: Some("192.0.2.10".parse().unwrap()), ..Default::default() };
//! let (handle, _events) = spawn_server(socket, server, opts)?;
//! handle.input(Input::Command(Command::Create)).await.ok();
//! # Ok(()) }
//! ```

use alloc::collections::VecDeque;
use alloc::vec::Vec;
use core::convert::Infallible;
use std::io;
use std::net::Ipv4Addr;

use tokio::net::UdpSocket;
use tokio::sync::mpsc;

use super::{spawn, Config, NodeHandle};
use crate::chord::RingId;
use crate::machine::{Effect, Machine, Networked};
use crate::samp::correspondent::{self, Correspondent};
use crate::samp::mobile::{self, MobileNode};
use crate::samp::server::{self, Server, MCAST_GROUP};
use crate::samp::wire::SipWire;
pub use crate::samp::wire::{Packet, SampDecodeError, SampWire};
use crate::sip::Message;
use crate::time::Time;
use crate::TransportAddr;

/// The SIP multicast group as an IPv4 address (224.0.1.75).
pub const MCAST_V4: Ipv4Addr = Ipv4Addr::new(224, 0, 1, 75);

/// How a server's socket is set up.
#[derive(Clone, Debug, Default)]
pub struct ServerOptions {
    /// The generic driver's settings.
    pub driver: Config,
    /// Join the SIP multicast group 224.0.1.75 on the interface with this address (with
    /// `IP_MULTICAST_LOOP` on, so an MN on the same host is heard). `None`: no multicast; MNs
    /// then need unicast discovery addresses ([`spawn_mobile`]).
    pub multicast: Option<Ipv4Addr>,
}

/// Run a SAMP server on `socket` (SIP and Chord on the same socket). Its Chord node is idle until
/// the application sends [`server::Input::Command`] (`Create` or `Join`), unless it was built
/// with a ring state ([`Server::with_node`]).
#[allow(clippy::type_complexity)]
pub fn spawn_server<I>(
    socket: UdpSocket,
    server: Server<I>,
    options: ServerOptions,
) -> io::Result<(NodeHandle<Server<I>>, mpsc::Receiver<server::Event<I>>)>
where
    I: RingId + Send + 'static,
{
    if let Some(iface) = options.multicast {
        socket.join_multicast_v4(MCAST_V4, iface)?;
        socket.set_multicast_loop_v4(true)?;
    }
    spawn(socket, server, options.driver)
}

/// A [`MobileNode`] whose datagrams to the SIP multicast group go to a list of unicast
/// discovery addresses instead (see the [module docs](self)). With an empty list it is the MN
/// unchanged.
#[derive(Clone, Debug)]
pub struct UnicastDiscovery {
    mn: MobileNode,
    targets: Vec<TransportAddr>,
    out: VecDeque<mobile::Output>,
}

impl UnicastDiscovery {
    /// Wrap `mn`; its multicast datagrams go to each of `targets`.
    pub fn new(mn: MobileNode, targets: Vec<TransportAddr>) -> Self {
        UnicastDiscovery {
            mn,
            targets,
            out: VecDeque::new(),
        }
    }

    /// The mobile node.
    pub fn mobile(&self) -> &MobileNode {
        &self.mn
    }

    /// The discovery addresses.
    pub fn targets(&self) -> &[TransportAddr] {
        &self.targets
    }
}

impl Machine for UnicastDiscovery {
    type Input = mobile::Input;
    type Output = mobile::Output;
    type Error = Infallible;

    fn handle(&mut self, now: Time, input: mobile::Input) -> Result<(), Infallible> {
        self.mn.handle(now, input)
    }

    fn poll(&mut self) -> Option<mobile::Output> {
        if let Some(o) = self.out.pop_front() {
            return Some(o);
        }
        match self.mn.poll()? {
            mobile::Output::Sip { to, msg } if to == MCAST_GROUP && !self.targets.is_empty() => {
                for t in &self.targets[1..] {
                    self.out.push_back(mobile::Output::Sip {
                        to: *t,
                        msg: msg.clone(),
                    });
                }
                Some(mobile::Output::Sip {
                    to: self.targets[0],
                    msg,
                })
            }
            o => Some(o),
        }
    }

    fn poll_timeout(&self) -> Option<Time> {
        self.mn.poll_timeout()
    }

    fn handle_timeout(&mut self, now: Time) {
        self.mn.handle_timeout(now)
    }
}

impl Networked for UnicastDiscovery {
    type Wire = SipWire;
    type Event = mobile::Event;

    fn message_input(from: TransportAddr, msg: Message) -> mobile::Input {
        MobileNode::message_input(from, msg)
    }

    fn effect(out: mobile::Output) -> Effect<Message, mobile::Event> {
        MobileNode::effect(out)
    }
}

/// How a mobile node's socket is set up.
#[derive(Clone, Debug, Default)]
pub struct MobileOptions {
    /// The generic driver's settings.
    pub driver: Config,
    /// Where discovery goes instead of 224.0.1.75:5060 (see [`UnicastDiscovery`]); empty: to the
    /// SIP multicast group itself. An entry may itself be a multicast address (another port of
    /// the group, as the loopback test does).
    pub discovery: Vec<TransportAddr>,
    /// Send multicast out of the interface with this address (`IP_MULTICAST_IF`, with
    /// `IP_MULTICAST_LOOP` on); `None`: the kernel's choice.
    pub multicast_if: Option<Ipv4Addr>,
}

/// Run a mobile node on `socket`. Send it [`mobile::Input::Attached`] with the socket's address
/// as care-of address to start discovery and registration.
#[allow(clippy::type_complexity)]
pub fn spawn_mobile(
    socket: UdpSocket,
    mn: MobileNode,
    options: MobileOptions,
) -> io::Result<(NodeHandle<UnicastDiscovery>, mpsc::Receiver<mobile::Event>)> {
    if let Some(iface) = options.multicast_if {
        socket2::SockRef::from(&socket).set_multicast_if_v4(&iface)?;
        socket.set_multicast_loop_v4(true)?;
    }
    spawn(
        socket,
        UnicastDiscovery::new(mn, options.discovery),
        options.driver,
    )
}

/// Run a correspondent on `socket`; send it [`correspondent::Input::Call`] to call.
#[allow(clippy::type_complexity)]
pub fn spawn_correspondent(
    socket: UdpSocket,
    cn: Correspondent,
    config: Config,
) -> io::Result<(
    NodeHandle<Correspondent>,
    mpsc::Receiver<correspondent::Event>,
)> {
    spawn(socket, cn, config)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::samp::mobile::MobileConfig;
    use crate::sip::SipUri;

    #[test]
    fn multicast_datagrams_go_to_every_discovery_address_and_nothing_else_changes() {
        let a = TransportAddr("127.0.0.1:7001".parse().unwrap());
        let b = TransportAddr("127.0.0.1:7002".parse().unwrap());
        let coa = TransportAddr("127.0.0.1:7100".parse().unwrap());
        let mn = MobileNode::new(
            SipUri::parse("sip:mn@home.example").unwrap(),
            MobileConfig::default(),
        );
        let mut m = UnicastDiscovery::new(mn, alloc::vec![a, b]);
        m.handle(Time::ZERO, mobile::Input::Attached { coa, random: 1 })
            .unwrap();
        let mut sent = Vec::new();
        while let Some(o) = m.poll() {
            if let mobile::Output::Sip { to, msg } = o {
                sent.push((to, msg));
            }
        }
        assert_eq!(sent.len(), 2);
        assert_eq!((sent[0].0, sent[1].0), (a, b));
        assert_eq!(sent[0].1, sent[1].1);
    }
}
