//! The SAMP paper's simulation (`ip2p::sim::samp`) on a reduced set-up: the orderings the paper
//! reports (Fig. 4, Fig. 5) must come out of the real machines.
//!
//! Reduced: a 60 × 60 grid of ARs in 10 × 10 domains of 6 × 6 (100 SIP servers / MAPs), 500 MNs,
//! 40 movements each, δ = 12 ms (a 6-hop radius at 1 ms per hop, scaled with the domain).

use ip2p::sim::samp::{self, Pass, PassReport, SampSimConfig};

fn small(alpha: f64) -> SampSimConfig {
    SampSimConfig {
        grid: 60,
        block: 6,
        mns: 500,
        moves: 40,
        alpha,
        hotspot: (45, 15),
        delta_ms: 12,
        call_every: 10,
        calls_per_burst: 2,
        threads: 2,
        ..SampSimConfig::default()
    }
}

#[test]
fn fig4_samp_stays_flat_while_hmipv6_rises_with_alpha() {
    let c0 = small(0.0);
    let c1 = small(1.0);
    c0.check().unwrap();
    let a = samp::fig4(&c0);
    let b = samp::fig4(&c1);
    eprintln!("{a:?}\n{b:?}");
    // MIPv6: one agent serves all MNs; the highest σ, whatever α
    assert_eq!(a.mipv6, b.mipv6);
    assert!(a.mipv6 > a.hmipv6 && a.mipv6 > a.samp_home, "{a:?}");
    assert!(b.mipv6 > b.hmipv6 && b.mipv6 > b.samp_home, "{b:?}");
    // HMIPv6 concentrates MNs at the hotspot's MAP as α grows
    assert!(b.hmipv6 > 2.0 * a.hmipv6, "{a:?} {b:?}");
    // SAMP's home servers are fixed by H(home URI): α changes nothing
    assert!(
        (b.samp_home - a.samp_home).abs() <= 0.1 * a.samp_home,
        "{a:?} {b:?}"
    );
    assert!(b.samp_home < b.hmipv6, "{b:?}");
    assert!(a.samp_home > 0.0);
}

#[test]
fn fig5_hr_cuts_registration_hops_and_ttc_cuts_first_packet_hops() {
    let c = small(0.5);
    let r = samp::fig5(&c);
    eprintln!("{r:?}");
    // every handoff registered: nothing lost on the way
    assert!(r.reg_samp_hr > 0.0 && r.reg_samp_no_hr > 0.0, "{r:?}");
    // (a) HR: most moves end at the nearby anchor; without HR every move crosses the overlay
    assert!(r.reg_samp_hr < 0.5 * r.reg_samp_no_hr, "{r:?}");
    assert!(r.reg_hmipv6 < r.reg_mipv6, "{r:?}");
    assert!(r.reg_samp_no_hr > r.reg_mipv6, "{r:?}");
    assert!(
        r.hr_reanchor_share > 0.0 && r.hr_reanchor_share < 0.5,
        "{r:?}"
    );
    assert!(r.lookup_hops > 0.0, "{r:?}");
    // (b) TTC: repeat calls go straight to the MN
    assert!(r.ttc_direct_share > 0.0, "{r:?}");
    assert!(r.call_samp_ttc < r.call_samp_no_ttc, "{r:?}");
    assert!(r.call_hmipv6 < r.call_samp_no_ttc, "{r:?}");
    assert!(r.calls_established > 0 && r.calls_established <= r.calls_placed);
}

fn without_secs(mut r: PassReport) -> PassReport {
    r.secs = 0.0;
    r
}

#[test]
fn results_do_not_depend_on_the_thread_count() {
    let pass = Pass {
        hr: true,
        ttc: true,
        calls: true,
    };
    let mut c = small(0.4);
    c.mns = 200;
    c.moves = 20;
    c.threads = 1;
    let one = without_secs(samp::run_pass(&c, pass));
    c.threads = 2;
    let two = without_secs(samp::run_pass(&c, pass));
    assert_eq!(one, two);
    assert!(
        one.handoffs > 0 && one.registered == one.handoffs,
        "{one:?}"
    );
    assert_eq!(
        one.home_load.iter().map(|&n| u64::from(n)).sum::<u64>(),
        200
    );
}
