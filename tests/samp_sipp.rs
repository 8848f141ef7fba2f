//! SAMP against SIPp (Debian `sip-tester`): our ring of servers over real UDP on loopback, SIPp
//! as the mobile node and as the correspondent (scenarios in `tests/sipp/`).
//!
//! 1. `mn_uas.xml` listens at the MN's care-of address (a SIPp UAS);
//! 2. `mn_register.xml` REGISTERs with the anchor (Request-URI = the anchor, Contact = the UAS:
//!    the anchor binding), then REGISTERs `sip:home.example` through it with Contact = the anchor
//!    (the home binding at the owner of H(AOR));
//! 3. `cn_uac.xml` INVITEs `sip:mn@home.example` through its own anchor, gets 200 from the UAS,
//!    sends ACK and BYE straight to the Contact, gets 200.
//!
//! Every SIPp run must exit 0 and its statistics file (`-trace_stat`) must count one successful
//! call and no failed one. The MN is two SIPp processes because a SIPp scenario that starts by
//! sending (the REGISTERs) cannot also take a new incoming call (the INVITE has another Call-ID).
//!
//! Without `sipp` on PATH the test prints a notice and passes, unless `IP2P_REQUIRE_SIPP=1`
//! (set by `.ci/run`, which installs `sip-tester`): then it fails.
//!
//! `cargo test --features tokio --test samp_sipp -- --nocapture`
#![cfg(feature = "tokio")]

#[path = "support/samp_udp.rs"]
mod samp_udp;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use ip2p::samp::Aor;
use ip2p::sip::SipUri;
use ip2p::TransportAddr;
use samp_udp::{bindings, home_of, ring};
use tokio::time::{sleep, timeout, Instant};

const SERVERS: usize = 5;

fn sipp_available() -> bool {
    match Command::new("sipp")
        .arg("-v")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
    {
        Ok(_) => true,
        Err(e) => {
            if std::env::var("IP2P_REQUIRE_SIPP").as_deref() == Ok("1") {
                panic!(
                    "IP2P_REQUIRE_SIPP=1 but sipp cannot be run: {e} (apt-get install sip-tester)"
                );
            }
            eprintln!(
                "skipped: samp_sipp: sipp not found ({e}); install Debian's sip-tester, \
                 set IP2P_REQUIRE_SIPP=1 to make this fatal"
            );
            false
        }
    }
}

fn scenario(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/sipp")
        .join(name)
}

fn work_dir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("ip2p-samp-sipp-{}-{tag}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// A sipp command for one call, run in `dir`, statistics into `dir/stats.csv`. Pass `-p` in
/// `extra`: without it SIPp takes 5060, which a SIP server on this host may hold.
fn sipp(dir: &Path, scenario_file: &str, remote: Option<TransportAddr>, extra: &[&str]) -> Command {
    let mut c = Command::new("sipp");
    if let Some(r) = remote {
        c.arg(r.0.to_string());
    }
    c.arg("-sf")
        .arg(scenario(scenario_file))
        .args([
            "-i",
            "127.0.0.1",
            "-m",
            "1",
            "-timeout",
            "20s",
            "-timeout_error",
        ])
        .args(["-nostdin", "-trace_stat", "-stf"])
        .arg(dir.join("stats.csv"))
        .args(["-trace_err", "-trace_msg"])
        .args(extra)
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    c
}

/// Successful and failed calls in the last row of a SIPp statistics file.
fn calls(dir: &Path) -> (u64, u64) {
    let text = std::fs::read_to_string(dir.join("stats.csv")).unwrap_or_default();
    let mut lines = text.lines().filter(|l| !l.trim().is_empty());
    let Some(header) = lines.next() else {
        return (0, 0);
    };
    let cols: Vec<&str> = header.split(';').collect();
    let Some(last) = lines.next_back() else {
        return (0, 0);
    };
    let vals: Vec<&str> = last.split(';').collect();
    let get = |name: &str| -> u64 {
        cols.iter()
            .position(|c| *c == name)
            .and_then(|i| vals.get(i))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0)
    };
    (get("SuccessfulCall(C)"), get("FailedCall(C)"))
}

fn explain(what: &str, dir: &Path, out: &Output) -> String {
    let mut s = format!(
        "{what}: {}\n--- stdout (tail)\n{}\n--- stderr\n{}",
        out.status,
        tail(&String::from_utf8_lossy(&out.stdout), 40),
        String::from_utf8_lossy(&out.stderr)
    );
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            let p = e.path();
            let n = p.file_name().unwrap().to_string_lossy().to_string();
            if n.ends_with("_errors.log") || n.ends_with("_messages.log") {
                let t = std::fs::read_to_string(&p).unwrap_or_default();
                s.push_str(&format!("\n--- {n} (tail)\n{}", tail(&t, 80)));
            }
        }
    }
    s
}

fn tail(s: &str, n: usize) -> String {
    let lines: Vec<&str> = s.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

fn check(what: &str, dir: &Path, out: &Output) {
    assert!(out.status.success(), "{}", explain(what, dir, out));
    assert_eq!(calls(dir), (1, 0), "{}", explain(what, dir, out));
    eprintln!("{what}: sipp exit 0, 1 successful call, 0 failed");
}

async fn run(mut c: Command) -> Output {
    tokio::task::spawn_blocking(move || c.output().expect("sipp runs"))
        .await
        .unwrap()
}

/// A SIPp process that is killed if the test fails before it ends by itself.
struct KillOnDrop(Option<Child>);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        if let Some(mut c) = self.0.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn free_udp_port() -> u16 {
    std::net::UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sipp_mobile_and_correspondent_through_our_ring() {
    if !sipp_available() {
        return;
    }
    timeout(Duration::from_secs(90), scenario_run())
        .await
        .expect("the SIPp scenario hung");
}

async fn scenario_run() {
    let servers = ring(SERVERS).await;
    let aor = Aor::of(&SipUri::parse("sip:mn@home.example").unwrap());
    let home = home_of(&servers, &aor).await;
    let others: Vec<usize> = (0..SERVERS).filter(|&i| i != home).collect();
    let (mn_anchor, cn_anchor) = (others[0], others[1]);
    let anchor = servers[mn_anchor].me.addr;

    // 1. the MN's user agent listens at its care-of address
    let uas_port = free_udp_port();
    let coa = TransportAddr(format!("127.0.0.1:{uas_port}").parse().unwrap());
    let uas_dir = work_dir("mn-uas");
    let mut uas = KillOnDrop(Some(
        sipp(&uas_dir, "mn_uas.xml", None, &["-p", &uas_port.to_string()])
            .spawn()
            .expect("sipp starts"),
    ));
    // wait until it has bound its port
    let t0 = Instant::now();
    while std::net::UdpSocket::bind(("127.0.0.1", uas_port)).is_ok() {
        assert!(
            t0.elapsed() < Duration::from_secs(5),
            "sipp UAS did not bind"
        );
        sleep(Duration::from_millis(20)).await;
    }

    // 2. registration: anchor binding, then home binding through the anchor
    let reg_dir = work_dir("mn-register");
    let out = run(sipp(
        &reg_dir,
        "mn_register.xml",
        Some(anchor),
        &[
            "-p",
            &free_udp_port().to_string(),
            "-key",
            "uas_port",
            &uas_port.to_string(),
        ],
    ))
    .await;
    check(
        "mn_register.xml (REGISTER anchor, REGISTER home)",
        &reg_dir,
        &out,
    );
    for (i, s) in servers.iter().enumerate() {
        let (a, h) = bindings(s, &aor).await;
        let want_anchor = (i == mn_anchor).then_some(coa);
        let want_home = (i == home).then_some(anchor);
        assert_eq!(
            (a, h),
            (want_anchor, want_home),
            "server {i} ({:?})",
            s.me.addr
        );
    }

    // 3. the call, through the CN's anchor and the ring
    let cn_dir = work_dir("cn");
    let out = run(sipp(
        &cn_dir,
        "cn_uac.xml",
        Some(servers[cn_anchor].me.addr),
        &["-p", &free_udp_port().to_string()],
    ))
    .await;
    check("cn_uac.xml (INVITE, 200, ACK, BYE, 200)", &cn_dir, &out);

    let child = uas.0.take().unwrap();
    let out = tokio::task::spawn_blocking(move || child.wait_with_output().unwrap())
        .await
        .unwrap();
    check("mn_uas.xml (INVITE, 200, ACK, BYE, 200)", &uas_dir, &out);

    // the call crossed the ring and filled the CN's anchor's TTC cache with the MN's address
    let cached = servers[cn_anchor]
        .handle
        .inspect({
            let aor = aor.clone();
            move |m: &samp_udp::SampServer, now| m.cached(now, &aor)
        })
        .await
        .unwrap();
    assert_eq!(cached, Some(coa));
    for s in &servers {
        assert_eq!(
            s.handle.counters().decode_errors,
            0,
            "SIPp sent something we cannot parse"
        );
    }
    for d in [uas_dir, reg_dir, cn_dir] {
        let _ = std::fs::remove_dir_all(d);
    }
}
