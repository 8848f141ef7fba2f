//! An SMS network and broadband radios emulated in memory, for running iP2P phones on one
//! machine: demos (`cargo run --example broker_demo --features tokio`), tests, and applications
//! that want to try iP2P before a modem is plugged in. Only the SMS network and the radios are
//! emulated; IP traffic is real (loopback or network namespaces).
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")] async fn main() {
//! use std::time::Duration;
//! use ip2p::adapters::tokio::emulated::SmsNetwork;
//! let net = SmsNetwork::new(Duration::from_millis(20));
//! let a = "+886900000001".parse().unwrap();
//! let b = "+886900000002".parse().unwrap();
//! let la = net.links(a, "127.0.0.1".parse().unwrap(), Duration::from_millis(10));
//! let mut lb = net.links(b, "127.0.0.2".parse().unwrap(), Duration::from_millis(10));
//! la.sms_out.send((b, b"hi".to_vec())).unwrap();
//! assert_eq!(lb.sms_in.recv().await, Some((a, b"hi".to_vec())));
//! # }
//! ```

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::mpsc;

use super::ip2p::{Links, RadioCommand, RadioEvent};
use crate::msisdn::Msisdn;

/// Most SMS waiting in one phone's inbox; more are dropped (an inbox full of unread messages).
pub const INBOX: usize = 64;

/// Something that happened on the emulated network, for a trace.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Emulated {
    /// An SMS from `from` to `to` was delivered.
    Sms {
        /// The sender.
        from: Msisdn,
        /// The receiver.
        to: Msisdn,
        /// Octets of user data.
        len: usize,
    },
    /// An SMS to a number nobody attached was dropped.
    Undeliverable {
        /// The sender.
        from: Msisdn,
        /// The unknown receiver.
        to: Msisdn,
    },
    /// A phone's radio was switched on (`true`) or off.
    Radio {
        /// The phone.
        phone: Msisdn,
        /// On or off.
        on: bool,
    },
}

/// One phone's inbox: (from, user data).
type Inbox = mpsc::Sender<(Msisdn, Vec<u8>)>;

/// An in-memory SMS network: every phone attached to it can text every other after `delay`.
#[derive(Clone, Debug)]
pub struct SmsNetwork {
    delay: Duration,
    inboxes: Arc<Mutex<HashMap<Msisdn, Inbox>>>,
    trace: Option<mpsc::UnboundedSender<Emulated>>,
}

impl SmsNetwork {
    /// A network delivering every SMS after `delay`.
    pub fn new(delay: Duration) -> SmsNetwork {
        SmsNetwork {
            delay,
            inboxes: Arc::default(),
            trace: None,
        }
    }

    /// Also report what happens on the network to `trace`.
    pub fn with_trace(mut self, trace: mpsc::UnboundedSender<Emulated>) -> SmsNetwork {
        self.trace = Some(trace);
        self
    }

    fn note(&self, e: Emulated) {
        if let Some(t) = &self.trace {
            let _ = t.send(e);
        }
    }

    /// The links of phone `me` (inside a tokio runtime): its SMS to and from this network, and an
    /// emulated radio that attaches with address `ip` `attach` after being switched on.
    pub fn links(&self, me: Msisdn, ip: IpAddr, attach: Duration) -> Links {
        let (sms_out, mut out_rx) = mpsc::unbounded_channel::<(Msisdn, Vec<u8>)>();
        let (in_tx, sms_in) = mpsc::channel(INBOX);
        if let Ok(mut m) = self.inboxes.lock() {
            m.insert(me, in_tx);
        }
        let net = self.clone();
        tokio::spawn(async move {
            while let Some((to, payload)) = out_rx.recv().await {
                let inbox = net.inboxes.lock().ok().and_then(|m| m.get(&to).cloned());
                let Some(inbox) = inbox else {
                    net.note(Emulated::Undeliverable { from: me, to });
                    continue;
                };
                let (delay, net) = (net.delay, net.clone());
                tokio::spawn(async move {
                    tokio::time::sleep(delay).await;
                    let len = payload.len();
                    if inbox.try_send((me, payload)).is_ok() {
                        net.note(Emulated::Sms { from: me, to, len });
                    }
                });
            }
        });
        let (radio_out, mut cmd_rx) = mpsc::unbounded_channel::<RadioCommand>();
        let (ev_tx, radio_in) = mpsc::channel(8);
        let net = self.clone();
        tokio::spawn(async move {
            while let Some(c) = cmd_rx.recv().await {
                net.note(Emulated::Radio {
                    phone: me,
                    on: c == RadioCommand::On,
                });
                if c == RadioCommand::On {
                    tokio::time::sleep(attach).await;
                    let _ = ev_tx.send(RadioEvent::Up(ip)).await;
                }
            }
        });
        Links {
            sms_out,
            sms_in,
            radio_out,
            radio_in,
        }
    }
}
