//! Relay throughput on loopback, side by side: our relay (`adapters::tokio::relay`: hello,
//! pairing, then `copy_bidirectional`), a plain TCP splice by `socat` (what a user would put in
//! front of a peer instead), and a direct connection for reference. The same payload goes one
//! way from a sender to a sink through each; the median of `IP2P_BENCH_RUNS` runs (7) of
//! `IP2P_BENCH_MIB` MiB (256), rounds interleaved. Prints bytes/s and the ratio relay/socat.
//! Skips socat with a message when it is not installed (`apt-get install socat`).
//!
//! `cargo bench --features tokio --bench relay`

use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use ip2p::adapters::tokio::relay::{relay_dial, run_relay};
use ip2p::relay::wire::Role;
use ip2p::relay::RelayToken;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const CHUNK: usize = 64 * 1024;

async fn send(mut s: TcpStream, total: usize) {
    let buf = vec![0x5au8; CHUNK];
    let mut left = total;
    while left > 0 {
        let n = left.min(CHUNK);
        s.write_all(&buf[..n]).await.expect("write");
        left -= n;
    }
    s.shutdown().await.expect("shutdown");
}

async fn sink(mut s: TcpStream) -> usize {
    let mut buf = vec![0u8; CHUNK];
    let mut got = 0;
    loop {
        let n = s.read(&mut buf).await.expect("read");
        if n == 0 {
            return got;
        }
        got += n;
    }
}

/// Time `total` octets from a sender to a sink listening on `sink_at`, the sender connecting to
/// `via` (the sink itself, or a splice in front of it).
async fn through(via: SocketAddr, sink_listener: &TcpListener, total: usize) -> Duration {
    let t = Instant::now();
    let (a, b) = tokio::join!(TcpStream::connect(via), sink_listener.accept());
    let sender = tokio::spawn(send(a.expect("connect"), total));
    let got = sink(b.expect("accept").0).await;
    sender.await.expect("sender");
    assert_eq!(got, total);
    t.elapsed()
}

async fn through_relay(relay: SocketAddr, total: usize, n: u8) -> Duration {
    let token = RelayToken([n; 16]);
    let t = Instant::now();
    let (a, b) = tokio::join!(
        relay_dial(relay, token, Role::Caller, Duration::from_secs(5)),
        relay_dial(relay, token, Role::Callee, Duration::from_secs(5))
    );
    let sender = tokio::spawn(send(a.expect("caller"), total));
    let got = sink(b.expect("callee")).await;
    sender.await.expect("sender");
    assert_eq!(got, total);
    t.elapsed()
}

fn socat(listen: u16, to: SocketAddr) -> Option<Child> {
    Command::new("socat")
        .args([
            format!("TCP-LISTEN:{listen},bind=127.0.0.1,reuseaddr,fork"),
            format!("TCP:{to}"),
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .ok()
}

fn median(v: &mut [Duration]) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn main() {
    let runs: usize = std::env::var("IP2P_BENCH_RUNS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(7);
    let mib: usize = std::env::var("IP2P_BENCH_MIB")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(256);
    let total = mib << 20;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let sink_l = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let sink_at = sink_l.local_addr().expect("addr");
        let relay_l = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let relay_at = relay_l.local_addr().expect("addr");
        tokio::spawn(run_relay(relay_l, Default::default()));
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
            l.local_addr().expect("addr").port()
        };
        let mut child = socat(port, sink_at);
        tokio::time::sleep(Duration::from_millis(300)).await;
        let socat_at: SocketAddr = ([127, 0, 0, 1], port).into();
        if child.is_none() {
            eprintln!("benches/relay: socat not installed, its column is skipped");
        }
        let (mut direct, mut ours, mut theirs) = (Vec::new(), Vec::new(), Vec::new());
        for i in 0..runs {
            direct.push(through(sink_at, &sink_l, total).await);
            ours.push(through_relay(relay_at, total, i as u8).await);
            if child.is_some() {
                theirs.push(through(socat_at, &sink_l, total).await);
            }
        }
        let rate = |d: Duration| total as f64 / d.as_secs_f64() / 1e6;
        let d = rate(median(&mut direct));
        let o = rate(median(&mut ours));
        println!("{mib} MiB one way, median of {runs} runs (MB/s):");
        println!("  direct (no relay)      {d:8.0}");
        println!(
            "  ip2p relay             {o:8.0}   ({:.2} of direct)",
            o / d
        );
        if !theirs.is_empty() {
            let s = rate(median(&mut theirs));
            println!(
                "  socat splice           {s:8.0}   ({:.2} of direct)",
                s / d
            );
            println!("  ratio ip2p relay / socat: {:.2}", o / s);
        }
        if let Some(c) = child.as_mut() {
            let _ = c.kill();
            let _ = c.wait();
        }
    });
}
