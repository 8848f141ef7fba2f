//! An emulated broadband radio for the iP2P tests: attaches `attach` after being switched on, with
//! address `ip`, and logs every command it gets.
#![allow(dead_code)]

use std::net::IpAddr;
use std::time::Duration;

use ip2p::adapters::tokio::ip2p::{RadioCommand, RadioEvent};
use tokio::sync::mpsc;

/// The radio's ends: commands in (give to `Links::radio_out`), events out (`Links::radio_in`),
/// and a log of the commands it received.
pub struct Radio {
    pub commands: mpsc::UnboundedSender<RadioCommand>,
    pub events: mpsc::Receiver<RadioEvent>,
    pub log: mpsc::UnboundedReceiver<RadioCommand>,
}

/// Start one (inside a tokio runtime).
pub fn radio(ip: IpAddr, attach: Duration) -> Radio {
    let (cmd_tx, mut cmd_rx) = mpsc::unbounded_channel::<RadioCommand>();
    let (ev_tx, ev_rx) = mpsc::channel(8);
    let (log_tx, log_rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Some(c) = cmd_rx.recv().await {
            let _ = log_tx.send(c);
            if c == RadioCommand::On {
                tokio::time::sleep(attach).await;
                let _ = ev_tx.send(RadioEvent::Up(ip)).await;
            }
        }
    });
    Radio {
        commands: cmd_tx,
        events: ev_rx,
        log: log_rx,
    }
}

/// Wait until the radio is switched off (at most 10 s).
pub async fn wait_off(log: &mut mpsc::UnboundedReceiver<RadioCommand>) {
    loop {
        match tokio::time::timeout(Duration::from_secs(10), log.recv()).await {
            Ok(Some(RadioCommand::Off)) => return,
            Ok(Some(RadioCommand::On)) => {}
            other => panic!("radio never switched off: {other:?}"),
        }
    }
}
