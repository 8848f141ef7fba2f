//! The SMS side of an iP2P phone over a real modem (features `tokio` and `modem`): iP2P control
//! messages ↔ port-addressed SMS ↔ AT commands.
//!
//! ```text
//! (to, control message) ─► sms::port_message(to, SMS_PORT) ─► Submit::encode_pdu_mode ─► ModemHandle::send_pdu
//! ModemEvent::Received ─► split_smsc ─► Deliver::decode ─► Reassembler ─► port SMS_PORT? ─► (from, control message)
//!                                                                        └─ any other message ─► `other` (never dropped)
//! ```
//!
//! [`spawn`] returns the two ends the iP2P task wants ([`super::ip2p::Links::sms_out`] and
//! [`super::ip2p::Links::sms_in`]) and a channel of every other complete message the modem
//! received (text for the user's inbox, other applications' ports), so that nothing the modem
//! hands over is lost. All protocol logic stays in the sans-IO pieces ([`crate::sms`],
//! [`crate::sms::at`]); this file only moves bytes between them.

use std::time::Duration;

use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::adapters::modem::{self, Modem, ModemEvent, ModemHandle};
use crate::ip2p::SMS_PORT;
use crate::machine::Machine;
use crate::msisdn::Msisdn;
use crate::sms::at::Event as AtEvent;
use crate::sms::{self, Body, Deliver, Event as SmsEvent, Message, Reassembler};
use crate::time::Time;

/// Counters of the link.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LinkCounters {
    /// SMS parts handed to the modem.
    pub parts_sent: u64,
    /// Sends the modem reported failed.
    pub send_failures: u64,
    /// Received PDUs that did not decode as SMS-DELIVER.
    pub undecodable: u64,
    /// Partial messages that expired or were evicted with parts missing.
    pub incomplete: u64,
    /// iP2P control messages delivered.
    pub delivered: u64,
}

/// The ends of a running link.
pub struct SmsLink {
    /// Control messages to send: (to, payload).
    pub sms_out: mpsc::UnboundedSender<(Msisdn, Vec<u8>)>,
    /// Control messages received: (from, payload).
    pub sms_in: mpsc::Receiver<(Msisdn, Vec<u8>)>,
    /// Every other complete message (not to the iP2P port).
    pub other: mpsc::UnboundedReceiver<Message>,
    /// Counters, updated by the link task.
    pub counters: tokio::sync::watch::Receiver<LinkCounters>,
    /// The modem driver (dropping the link stops it).
    pub modem: std::sync::Arc<ModemHandle>,
}

impl std::fmt::Debug for SmsLink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmsLink").finish_non_exhaustive()
    }
}

/// Open the modem at `path` and run the link on it. Call from inside a tokio runtime.
pub fn spawn(
    path: &str,
    baud: u32,
    config: modem::Config,
    reassembly: sms::Config,
) -> std::io::Result<SmsLink> {
    let (ev_tx, mut ev_rx) = mpsc::unbounded_channel::<ModemEvent>();
    let handle = std::sync::Arc::new(Modem::open(path, baud, config, move |e| {
        let _ = ev_tx.send(e);
    })?);
    let (out_tx, mut out_rx) = mpsc::unbounded_channel::<(Msisdn, Vec<u8>)>();
    let (in_tx, in_rx) = mpsc::channel(64);
    let (other_tx, other_rx) = mpsc::unbounded_channel();
    let (count_tx, count_rx) = tokio::sync::watch::channel(LinkCounters::default());
    let modem = std::sync::Arc::clone(&handle);
    tokio::spawn(async move {
        let origin = Instant::now();
        let now = || Time::from_millis(origin.elapsed().as_millis() as u64);
        let mut r = Reassembler::new(reassembly);
        let mut c = LinkCounters::default();
        let mut reference: u16 = 0;
        loop {
            let deadline = r
                .poll_timeout()
                .map(|t| origin + Duration::from_millis(t.as_millis()));
            let sleep = async {
                match deadline {
                    Some(d) => tokio::time::sleep_until(d).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                out = out_rx.recv() => {
                    let Some((to, payload)) = out else { break };
                    reference = reference.wrapping_add(1) % 256;
                    let parts = match sms::port_message(to.into(), SMS_PORT, SMS_PORT, &payload, reference) {
                        Ok(p) => p,
                        Err(_) => { c.send_failures += 1; continue; }
                    };
                    for part in parts {
                        let mut pdu = Vec::new();
                        let sent = part
                            .encode_pdu_mode(None, &mut pdu)
                            .ok()
                            .and_then(|n| u8::try_from(n).ok())
                            .map(|n| modem.send_pdu(pdu, n).is_ok());
                        if sent == Some(true) {
                            c.parts_sent += 1;
                        } else {
                            c.send_failures += 1;
                        }
                    }
                }
                ev = ev_rx.recv() => {
                    let Some(ev) = ev else { break };
                    match ev {
                        ModemEvent::At(AtEvent::Received { pdu, .. }) => {
                            let deliver = sms::split_smsc(&pdu)
                                .ok()
                                .and_then(|(_, tpdu)| Deliver::decode(tpdu).ok());
                            match deliver {
                                Some(d) => {
                                    if r.handle(now(), d).is_err() {
                                        c.undecodable += 1;
                                    }
                                }
                                None => c.undecodable += 1,
                            }
                        }
                        ModemEvent::At(AtEvent::SendFailed { .. }) | ModemEvent::Rejected { .. } => {
                            c.send_failures += 1;
                        }
                        _ => {}
                    }
                }
                _ = sleep => r.handle_timeout(now()),
            }
            while let Some(e) = r.poll() {
                match e {
                    SmsEvent::Complete(m) => match (&m.ports, &m.body, m.from.msisdn()) {
                        (Some((dst, _)), Body::Bytes(b), Some(from)) if *dst == SMS_PORT => {
                            c.delivered += 1;
                            let _ = in_tx.send((from, b.clone())).await;
                        }
                        _ => {
                            let _ = other_tx.send(m);
                        }
                    },
                    SmsEvent::Expired { .. } | SmsEvent::Evicted { .. } => c.incomplete += 1,
                }
            }
            let _ = count_tx.send(c);
        }
    });
    Ok(SmsLink {
        sms_out: out_tx,
        sms_in: in_rx,
        other: other_rx,
        counters: count_rx,
        modem: handle,
    })
}
