//! A STUNT #2 prediction server on the testbed's `core` (the "internet"), for the tests that
//! predict NAT mappings through real NATs.
#![allow(dead_code)]

use ip2p::adapters::tokio::stunt::run_prediction_server;

use super::netns::{Host, Testbed};

/// The ports it listens on (one per probe).
pub const PREDICT_PORTS: [u16; 3] = [3478, 3479, 3480];

/// Start it on `core`; it runs until the returned sender is dropped or used.
pub fn prediction_server(tb: &Testbed) -> tokio::sync::oneshot::Sender<()> {
    let listeners = tb.run_in(Host::Core, || {
        PREDICT_PORTS
            .iter()
            .map(|p| {
                let l = std::net::TcpListener::bind(("0.0.0.0", *p)).expect("bind on core");
                l.set_nonblocking(true).expect("nonblocking");
                l
            })
            .collect::<Vec<_>>()
    });
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let ls = listeners
                .into_iter()
                .map(|l| tokio::net::TcpListener::from_std(l).expect("tokio listener"))
                .collect();
            tokio::select! {
                r = run_prediction_server(ls) => panic!("prediction server ended: {r:?}"),
                _ = stopped => {}
            }
        });
    });
    stop
}
