//! REGISTER load, side by side: our SAMP server as a plain registrar against kamailio 5.6 with
//! in-memory usrloc, both driven by the same SIPp scenario (`benches/samp_register/`).
//!
//! Each server runs as its own process on 127.0.0.1 (ours: this binary started again with
//! `IP2P_SAMP_REGISTRAR_CHILD=<port>`, a one-node ring on a current-thread tokio runtime;
//! kamailio: `benches/samp_register/kamailio.cfg`, one UDP worker). SIPp sends `N` REGISTERs for
//! `N` distinct users at a fixed rate, every one must get its 200, and the server must then hold
//! exactly `N` bindings. Measured over the load, summed over every process (and thread) of the
//! server:
//!
//! - CPU: on-CPU time from `/proc/<pid>/task/<tid>/schedstat` (nanoseconds, user + system),
//!   after − before, per 10,000 REGISTERs;
//! - memory: proportional set size (`Pss` of `/proc/<pid>/smaps_rollup`, so kamailio's shared
//!   memory is counted once across its processes), after − before, per binding; for kamailio
//!   also its shared-memory allocator's `real_used` delta (`kamcmd core.shmmem`).
//!
//! Medians over `IP2P_BENCH_RUNS` rounds (3), servers interleaved within a round. Tunables:
//! `IP2P_BENCH_USERS` (50,000), `IP2P_BENCH_RATE` (REGISTERs per second, 5,000). Prints
//! `skipped: …` and exits 0 without `sipp`, `kamailio` or `kamcmd`.
//!
//! `cargo bench --features tokio --bench samp_register`

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

const CHILD_ENV: &str = "IP2P_SAMP_REGISTRAR_CHILD";

fn main() {
    if let Ok(port) = std::env::var(CHILD_ENV) {
        registrar_child(port.parse().expect("port"));
        return;
    }
    for (tool, arg) in [("sipp", "-v"), ("kamailio", "-v"), ("kamcmd", "-h")] {
        if let Err(e) = Command::new(tool)
            .arg(arg)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
        {
            println!(
                "skipped: samp_register: {tool} cannot be run ({e}); \
                 apt-get install sip-tester kamailio"
            );
            return;
        }
    }
    let env = |name: &str, default: u64| -> u64 {
        std::env::var(name)
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(default)
    };
    let runs = env("IP2P_BENCH_RUNS", 3).max(1) as usize;
    let users = env("IP2P_BENCH_USERS", 50_000).max(1);
    let rate = env("IP2P_BENCH_RATE", 5_000).max(1);

    let dir = std::env::temp_dir().join(format!("ip2p-samp-register-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let mut csv = String::from("SEQUENTIAL\n");
    for i in 0..users {
        csv.push_str(&format!("u{i:06}\n"));
    }
    std::fs::write(dir.join("users.csv"), csv).unwrap();

    println!(
        "REGISTER load: {users} distinct users, one REGISTER each at {rate}/s from SIPp, \
         {runs} rounds, 127.0.0.1"
    );
    let mut kam = Vec::new();
    let mut ours = Vec::new();
    for round in 0..runs {
        for which in [Which::Kamailio, Which::Ours] {
            let m = run_one(which, &dir, users, rate, round);
            println!(
                "  round {round} {:<9} CPU {:>7.3} s/10k REGISTERs   PSS {:>6.0} B/binding{}   \
                 (SIPp: {} ok, {} retransmissions, {:.1} s)",
                which.name(),
                m.cpu_per_10k,
                m.pss_per_binding,
                m.shm_per_binding
                    .map(|b| format!("   shm {b:>6.0} B/binding"))
                    .unwrap_or_default(),
                m.ok,
                m.retrans,
                m.elapsed.as_secs_f64()
            );
            match which {
                Which::Kamailio => kam.push(m),
                Which::Ours => ours.push(m),
            }
        }
    }
    let med = |v: &[Measure], f: fn(&Measure) -> f64| -> f64 {
        let mut x: Vec<f64> = v.iter().map(f).collect();
        x.sort_by(|a, b| a.partial_cmp(b).unwrap());
        x[x.len() / 2]
    };
    let (kc, oc) = (med(&kam, |m| m.cpu_per_10k), med(&ours, |m| m.cpu_per_10k));
    let (km, om) = (
        med(&kam, |m| m.pss_per_binding),
        med(&ours, |m| m.pss_per_binding),
    );
    let ks = med(&kam, |m| m.shm_per_binding.unwrap_or(f64::NAN));
    println!();
    println!(
        "{:<34} {:>22} {:>22}",
        "medians", "CPU-s / 10k REGISTERs", "bytes / binding (PSS)"
    );
    println!(
        "{:<34} {:>22.3} {:>22.0}",
        "kamailio 5.6 (usrloc db_mode 0)", kc, km
    );
    println!("{:<34} {:>22.3} {:>22.0}", "ip2p SAMP server", oc, om);
    println!(
        "{:<34} {:>21.3}x {:>21.3}x",
        "ours / kamailio",
        oc / kc,
        om / km
    );
    println!(
        "kamailio shm allocator (core.shmmem real_used) per binding: {ks:.0} B \
         (ours / that: {:.3}x)",
        om / ks
    );
    println!(
        "aims: CPU <= 0.25x {}, memory <= 0.5x {}",
        if oc / kc <= 0.25 { "met" } else { "MISSED" },
        if om / km <= 0.5 { "met" } else { "MISSED" }
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Which {
    Kamailio,
    Ours,
}

impl Which {
    fn name(self) -> &'static str {
        match self {
            Which::Kamailio => "kamailio",
            Which::Ours => "ip2p",
        }
    }
}

struct Measure {
    cpu_per_10k: f64,
    pss_per_binding: f64,
    shm_per_binding: Option<f64>,
    ok: u64,
    retrans: u64,
    elapsed: Duration,
}

/// A server process (and, for kamailio, its children), killed when dropped.
struct Server {
    which: Which,
    child: Child,
    /// ours: the command pipe
    pipe: Option<(ChildStdin, BufReader<ChildStdout>)>,
    /// kamailio: its control socket
    ctl: Option<String>,
}

impl Drop for Server {
    fn drop(&mut self) {
        if self.which == Which::Kamailio {
            // SIGTERM: kamailio's main process stops its children itself
            let _ = Command::new("kill")
                .arg(self.child.id().to_string())
                .status();
            let t0 = Instant::now();
            while t0.elapsed() < Duration::from_secs(5) {
                if let Ok(Some(_)) = self.child.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        self.pipe = None; // EOF on stdin: ours stops by itself
        let t0 = Instant::now();
        while t0.elapsed() < Duration::from_secs(2) {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    fn start(which: Which, dir: &Path, port: u16) -> Server {
        match which {
            Which::Kamailio => {
                let run = dir.join(format!("kamailio-{port}"));
                std::fs::create_dir_all(&run).unwrap();
                let ctl = format!("unix:{}", run.join("ctl.sock").display());
                let cfg = Path::new(env!("CARGO_MANIFEST_DIR"))
                    .join("benches/samp_register/kamailio.cfg");
                let log = std::fs::File::create(run.join("kamailio.log")).unwrap();
                let child = Command::new("kamailio")
                    .arg("-f")
                    .arg(&cfg)
                    .args(["-DD", "-E", "-m", "512", "-Y"])
                    .arg(&run)
                    .arg("-P")
                    .arg(run.join("kamailio.pid"))
                    .arg("-A")
                    .arg(format!("LISTEN=udp:127.0.0.1:{port}"))
                    .arg("-A")
                    .arg(format!("CTL=\"{ctl}\""))
                    .stdin(Stdio::null())
                    .stdout(log.try_clone().unwrap())
                    .stderr(log)
                    .spawn()
                    .expect("kamailio starts");
                let s = Server {
                    which,
                    child,
                    pipe: None,
                    ctl: Some(ctl),
                };
                let t0 = Instant::now();
                while s.kamcmd(&["core.shmmem"]).is_none() {
                    assert!(
                        t0.elapsed() < Duration::from_secs(10),
                        "kamailio did not start; see {}",
                        run.join("kamailio.log").display()
                    );
                    std::thread::sleep(Duration::from_millis(50));
                }
                s
            }
            Which::Ours => {
                let mut child = Command::new(std::env::current_exe().unwrap())
                    .env(CHILD_ENV, port.to_string())
                    .stdin(Stdio::piped())
                    .stdout(Stdio::piped())
                    .spawn()
                    .expect("our registrar starts");
                let stdin = child.stdin.take().unwrap();
                let mut stdout = BufReader::new(child.stdout.take().unwrap());
                let mut line = String::new();
                stdout.read_line(&mut line).unwrap();
                assert!(line.starts_with("ready"), "our registrar said {line:?}");
                Server {
                    which,
                    child,
                    pipe: Some((stdin, stdout)),
                    ctl: None,
                }
            }
        }
    }

    fn kamcmd(&self, args: &[&str]) -> Option<String> {
        let out = Command::new("kamcmd")
            .arg("-s")
            .arg(self.ctl.as_ref()?)
            .args(args)
            .stderr(Stdio::null())
            .output()
            .ok()?;
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// Bindings the server holds.
    fn bindings(&mut self) -> u64 {
        match self.which {
            Which::Kamailio => {
                let s = self
                    .kamcmd(&["stats.get_statistics", "location_contacts"])
                    .expect("kamcmd stats");
                number_after(&s, "usrloc:location_contacts =").expect("location_contacts")
            }
            Which::Ours => {
                let (i, o) = self.pipe.as_mut().unwrap();
                writeln!(i, "count").unwrap();
                i.flush().unwrap();
                let mut line = String::new();
                o.read_line(&mut line).unwrap();
                // "bindings <anchor> <home> <cache>": a plain registration is a home binding
                let v: Vec<u64> = line
                    .split_whitespace()
                    .skip(1)
                    .map(|x| x.parse().unwrap())
                    .collect();
                v.iter().sum()
            }
        }
    }

    /// Kamailio's shared memory in use as its allocator counts it (`real_used`).
    fn shm_used(&self) -> Option<u64> {
        number_after(&self.kamcmd(&["core.shmmem"])?, "real_used:")
    }

    /// The server's processes: the one we started and all its descendants.
    fn pids(&self) -> Vec<u32> {
        let mut pids = vec![self.child.id()];
        let mut i = 0;
        let all = all_ppids();
        while i < pids.len() {
            let p = pids[i];
            pids.extend(all.iter().filter(|(_, pp)| *pp == p).map(|(c, _)| *c));
            i += 1;
        }
        pids
    }

    /// (on-CPU nanoseconds, PSS bytes) summed over every process and thread.
    fn usage(&self) -> (u64, u64) {
        let mut cpu = 0;
        let mut pss = 0;
        for p in self.pids() {
            if let Ok(rd) = std::fs::read_dir(format!("/proc/{p}/task")) {
                for t in rd.flatten() {
                    let s = std::fs::read_to_string(t.path().join("schedstat")).unwrap_or_default();
                    cpu += s
                        .split_whitespace()
                        .next()
                        .and_then(|x| x.parse::<u64>().ok())
                        .unwrap_or(0);
                }
            }
            let r = std::fs::read_to_string(format!("/proc/{p}/smaps_rollup")).unwrap_or_default();
            pss += number_after(&r, "\nPss:").unwrap_or(0) * 1024;
        }
        (cpu, pss)
    }
}

fn number_after(text: &str, key: &str) -> Option<u64> {
    let at = text.find(key)? + key.len();
    text[at..].split_whitespace().next()?.parse().ok()
}

fn all_ppids() -> Vec<(u32, u32)> {
    let mut v = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(e.path().join("stat")) else {
            continue;
        };
        // "pid (comm) state ppid …": comm may hold spaces, so split after the last ')'
        let Some(rest) = stat.rfind(')').map(|i| &stat[i + 1..]) else {
            continue;
        };
        if let Some(ppid) = rest.split_whitespace().nth(1).and_then(|x| x.parse().ok()) {
            v.push((pid, ppid));
        }
    }
    v
}

fn free_udp_port() -> u16 {
    std::net::UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn run_one(which: Which, dir: &Path, users: u64, rate: u64, round: usize) -> Measure {
    let port = free_udp_port();
    let mut server = Server::start(which, dir, port);
    std::thread::sleep(Duration::from_millis(500));
    let (cpu0, pss0) = server.usage();
    let shm0 = server.shm_used();

    let sipp_dir: PathBuf = dir.join(format!("sipp-{}-{round}", which.name()));
    std::fs::create_dir_all(&sipp_dir).unwrap();
    let scenario = Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/samp_register/register.xml");
    let t0 = Instant::now();
    let out = Command::new("sipp")
        .arg(format!("127.0.0.1:{port}"))
        .arg("-sf")
        .arg(&scenario)
        .arg("-inf")
        .arg(dir.join("users.csv"))
        .args(["-i", "127.0.0.1", "-p"])
        .arg(free_udp_port().to_string())
        .arg("-m")
        .arg(users.to_string())
        .arg("-r")
        .arg(rate.to_string())
        .args(["-timeout", "300s", "-timeout_error", "-nostdin"])
        .args(["-trace_stat", "-stf"])
        .arg(sipp_dir.join("stats.csv"))
        .arg("-trace_err")
        .current_dir(&sipp_dir)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .expect("sipp runs");
    let elapsed = t0.elapsed();
    // let the last answers leave, then read the counters before asking for anything
    std::thread::sleep(Duration::from_millis(300));
    let (cpu1, pss1) = server.usage();
    let shm1 = server.shm_used();
    let (ok, failed, retrans) = sipp_counts(&sipp_dir);
    assert!(
        out.status.success() && ok == users && failed == 0,
        "{}: sipp exit {}, {ok} successful, {failed} failed REGISTERs of {users}; \
         stderr: {}; logs in {}",
        which.name(),
        out.status,
        String::from_utf8_lossy(&out.stderr),
        sipp_dir.display()
    );
    let held = server.bindings();
    assert_eq!(
        held,
        users,
        "{}: bindings held after the load",
        which.name()
    );
    drop(server);
    let _ = std::fs::remove_dir_all(&sipp_dir);
    Measure {
        cpu_per_10k: (cpu1 - cpu0) as f64 / 1e9 * 10_000.0 / users as f64,
        pss_per_binding: (pss1 as f64 - pss0 as f64) / users as f64,
        shm_per_binding: match (shm0, shm1) {
            (Some(a), Some(b)) => Some((b as f64 - a as f64) / users as f64),
            _ => None,
        },
        ok,
        retrans,
        elapsed,
    }
}

/// Successful calls, failed calls and retransmissions in the last row of SIPp's statistics.
fn sipp_counts(dir: &Path) -> (u64, u64, u64) {
    let text = std::fs::read_to_string(dir.join("stats.csv")).unwrap_or_default();
    let mut lines = text.lines().filter(|l| !l.trim().is_empty());
    let header: Vec<&str> = lines.next().unwrap_or("").split(';').collect();
    let last: Vec<&str> = lines.next_back().unwrap_or("").split(';').collect();
    let get = |name: &str| -> u64 {
        header
            .iter()
            .position(|c| *c == name)
            .and_then(|i| last.get(i))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0)
    };
    (
        get("SuccessfulCall(C)"),
        get("FailedCall(C)"),
        get("Retransmissions(C)"),
    )
}

/// Our registrar as its own process: a SAMP server alone on a one-node Chord ring (so it is the
/// home of every AOR), on a current-thread runtime. Prints `ready <addr>`, then answers each
/// `count` line on stdin with `bindings <anchor> <home> <cache>`; stops at EOF.
fn registrar_child(port: u16) {
    use ip2p::adapters::tokio::samp::{spawn_server, ServerOptions};
    use ip2p::chord::{Command as ChordCommand, NodeId, RingId};
    use ip2p::samp::server::{Input, Server as SampServer, ServerConfig};
    use ip2p::TransportAddr;

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
        let socket = tokio::net::UdpSocket::bind(("127.0.0.1", port))
            .await
            .unwrap();
        let addr = TransportAddr(socket.local_addr().unwrap());
        let server = SampServer::<NodeId>::new(
            NodeId::sha1_of(addr.to_string().as_bytes()),
            addr,
            ServerConfig::default(),
        );
        // a registrar with nobody listening to its events: they are dropped and counted
        let (handle, events) = spawn_server(socket, server, ServerOptions::default()).unwrap();
        drop(events);
        handle
            .input(Input::Command(ChordCommand::Create))
            .await
            .unwrap();
        let (tx, mut rx) = tokio::sync::mpsc::channel::<String>(4);
        std::thread::spawn(move || {
            for line in std::io::stdin().lock().lines() {
                let Ok(line) = line else { break };
                if tx.blocking_send(line).is_err() {
                    break;
                }
            }
        });
        println!("ready {addr}");
        while let Some(line) = rx.recv().await {
            if line.trim() == "count" {
                let (a, h, c) = handle
                    .inspect(|s: &SampServer<NodeId>, _| s.binding_counts())
                    .await
                    .unwrap();
                println!("bindings {a} {h} {c}");
            }
        }
        let _ = handle.stop().await;
    });
}
