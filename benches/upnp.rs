//! Port mapping through the real miniupnpd (natA of the namespace testbed, spec/testbed.md), from
//! hostA, side by side: this crate cold (SSDP + description + AddPortMapping) and warm (IGD
//! remembered: one connection), the `igd-next` crate (`search_gateway` + `add_port`), and Debian's
//! `upnpc -a`. Time from start to the mapping in place; medians over `IP2P_BENCH_RUNS` runs (20),
//! rounds interleaved. Needs root and the Debian packages; skips with a message otherwise.
//!
//! `cargo bench --features tokio --bench upnp`

#[path = "../tests/support/netns.rs"]
mod netns;

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use ip2p::adapters::tokio::upnp::Igd;
use netns::{Host, Nat, Testbed, HOST_A, NAT_A_WAN};

const PORT: u16 = 4500;

fn median(v: &mut [Duration]) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn main() {
    let Some(tb) = Testbed::require_with(
        "bench upnp",
        Nat::Masquerade,
        Nat::Masquerade,
        &["miniupnpd", "upnpc"],
    ) else {
        eprintln!("benches/upnp: skipped (needs root, miniupnpd-nftables and miniupnpc)");
        return;
    };
    let runs: usize = std::env::var("IP2P_BENCH_RUNS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20);
    let igd = tb.start_miniupnpd(Host::NatA).expect("miniupnpd in natA");
    let url = igd.root_desc_url();
    let internal = SocketAddr::new(IpAddr::V4(HOST_A), PORT);
    let lease = Duration::from_secs(600);

    // one cold discovery to fill the cache the warm runs start from
    let cache = tb.block_on_in(Host::A, || async {
        let igd = Igd::discover(Duration::from_secs(3))
            .await
            .expect("discover");
        igd.external_ip().await.expect("external ip");
        igd.cache().expect("cache")
    });

    let (mut cold, mut warm, mut next, mut upnpc) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for _ in 0..runs {
        let c = cache.clone();
        let (tc, tw) = tb.block_on_in(Host::A, move || async move {
            let t0 = Instant::now();
            let igd = Igd::discover(Duration::from_secs(3))
                .await
                .expect("discover");
            let m = igd
                .add_port_mapping(internal, PORT, lease, "bench")
                .await
                .expect("cold map");
            let tc = t0.elapsed();
            assert_eq!(m.external, SocketAddr::new(IpAddr::V4(NAT_A_WAN), PORT));
            igd.delete_port_mapping(&m).await.expect("delete");

            let t0 = Instant::now();
            let igd = Igd::from_cache(c);
            let m = igd
                .add_port_mapping(internal, PORT, lease, "bench")
                .await
                .expect("warm map");
            let tw = t0.elapsed();
            igd.delete_port_mapping(&m).await.expect("delete");
            (tc, tw)
        });
        cold.push(tc);
        warm.push(tw);

        next.push(tb.block_on_in(Host::A, move || async move {
            use igd_next::aio::tokio::search_gateway;
            use igd_next::{PortMappingProtocol, SearchOptions};
            let t0 = Instant::now();
            let mut opts = SearchOptions::default();
            opts.timeout = Some(Duration::from_secs(3));
            let gw = search_gateway(opts).await.expect("igd-next search");
            gw.add_port(PortMappingProtocol::TCP, PORT, internal, 600, "bench")
                .await
                .expect("igd-next add");
            let t = t0.elapsed();
            gw.remove_port(PortMappingProtocol::TCP, PORT)
                .await
                .expect("igd-next remove");
            t
        }));

        let t0 = Instant::now();
        let out = tb.exec(
            Host::A,
            &[
                "upnpc", "-e", "bench", "-a", "10.0.1.2", "4500", "4500", "TCP", "600",
            ],
        );
        let t = t0.elapsed();
        assert!(
            out.status.success(),
            "upnpc -a: {}",
            String::from_utf8_lossy(&out.stdout)
        );
        upnpc.push(t);
        let out = tb.exec(Host::A, &["upnpc", "-u", &url, "-d", "4500", "TCP"]);
        assert!(out.status.success(), "upnpc -d");
    }
    let base = median(&mut next.clone());
    println!("UPnP port mapping through miniupnpd (natA), from hostA: start → mapping in place, {runs} runs each");
    println!(
        "{:<40} {:>10} {:>10} {:>10} {:>12}",
        "client", "median ms", "min ms", "max ms", "vs igd-next"
    );
    for (name, v) in [
        ("ip2p cold (SSDP + description + add)", &mut cold),
        ("ip2p warm (cached IGD, one connection)", &mut warm),
        ("igd-next 0.18 (search_gateway + add_port)", &mut next),
        ("upnpc -a (miniupnpc)", &mut upnpc),
    ] {
        let m = median(v);
        println!(
            "{:<40} {:>10.1} {:>10.1} {:>10.1} {:>11.2}x",
            name,
            ms(m),
            ms(v[0]),
            ms(v[v.len() - 1]),
            m.as_secs_f64() / base.as_secs_f64()
        );
    }
}
