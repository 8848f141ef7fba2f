//! A five-namespace network testbed with real Linux NAT (spec/testbed.md):
//!
//! ```text
//! hostA eth0 10.0.1.2/24 ── lan0 10.0.1.1  natA  wan0 80.100.1.1/24 ── a0 80.100.1.254  core
//! core  b0 80.100.2.254 ── wan0 80.100.2.1/24  natB  lan0 10.0.2.1 ── eth0 10.0.2.2/24  hostB
//! ```
//!
//! Every veth is created inside a namespace with its peer moved straight into the neighbour, so the
//! root namespace (which has a real default route) holds neither end and never sends a test packet.
//! Namespace names carry the process id and a counter, so tests of one binary run in parallel. `Drop`
//! kills every process left in the namespaces and deletes them, also while a test panics.
//!
//! Include with `#[path = "support/netns.rs"] mod netns;` (benches: `"../tests/support/netns.rs"`).
#![allow(dead_code)]

use std::fmt;
use std::fs::File;
use std::io::Write;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use nix::sys::signal::{self, Signal};
use nix::unistd::Pid;

/// hostA's address (behind natA).
pub const HOST_A: Ipv4Addr = Ipv4Addr::new(10, 0, 1, 2);
/// natA's LAN address (hostA's gateway; miniupnpd listens here).
pub const NAT_A_LAN: Ipv4Addr = Ipv4Addr::new(10, 0, 1, 1);
/// natA's public (WAN) address: what core sees for hostA's connections.
pub const NAT_A_WAN: Ipv4Addr = Ipv4Addr::new(80, 100, 1, 1);
/// core's address on natA's side.
pub const CORE_A: Ipv4Addr = Ipv4Addr::new(80, 100, 1, 254);
/// core's address on natB's side.
pub const CORE_B: Ipv4Addr = Ipv4Addr::new(80, 100, 2, 254);
/// natB's public (WAN) address.
pub const NAT_B_WAN: Ipv4Addr = Ipv4Addr::new(80, 100, 2, 1);
/// natB's LAN address (hostB's gateway).
pub const NAT_B_LAN: Ipv4Addr = Ipv4Addr::new(10, 0, 2, 1);
/// hostB's address (behind natB).
pub const HOST_B: Ipv4Addr = Ipv4Addr::new(10, 0, 2, 2);

/// The HTTP port every miniupnpd of the testbed listens on (on its NAT's LAN address).
pub const MINIUPNPD_HTTP_PORT: u16 = 5000;

/// How a NAT rewrites source ports of LAN→WAN traffic.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Nat {
    /// `masquerade`: endpoint-independent, keeps the source port when it is free.
    Masquerade,
    /// `masquerade fully-random`: a random public port per connection (a symmetric NAT).
    FullyRandom,
    /// No NAT: the router forwards both ways and `core` routes the LAN prefix to it, so the host
    /// behind it is reachable on its own address (a "public" host).
    Public,
}

/// One of the five hosts (namespaces).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Host {
    /// The peer behind natA.
    A,
    /// The NAT in front of hostA.
    NatA,
    /// The "internet" router; public servers run here.
    Core,
    /// The NAT in front of hostB.
    NatB,
    /// The peer behind natB.
    B,
}

impl Host {
    /// All hosts, left to right.
    pub const ALL: [Host; 5] = [Host::A, Host::NatA, Host::Core, Host::NatB, Host::B];

    fn index(self) -> usize {
        match self {
            Host::A => 0,
            Host::NatA => 1,
            Host::Core => 2,
            Host::NatB => 3,
            Host::B => 4,
        }
    }

    fn short(self) -> &'static str {
        match self {
            Host::A => "hostA",
            Host::NatA => "natA",
            Host::Core => "core",
            Host::NatB => "natB",
            Host::B => "hostB",
        }
    }

    /// The LAN address of a NAT host (where its miniupnpd listens), `None` for the others.
    pub fn lan_addr(self) -> Option<Ipv4Addr> {
        match self {
            Host::NatA => Some(NAT_A_LAN),
            Host::NatB => Some(NAT_B_LAN),
            _ => None,
        }
    }

    /// The LAN prefix behind a NAT host, `None` for the others.
    fn lan_net(self) -> Option<&'static str> {
        match self {
            Host::NatA => Some("10.0.1.0/24"),
            Host::NatB => Some("10.0.2.0/24"),
            _ => None,
        }
    }
}

impl fmt::Display for Host {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.short())
    }
}

static COUNTER: AtomicUsize = AtomicUsize::new(0);

/// A built testbed: five namespaces, their links, routes and NAT rulesets. Dropping it deletes them.
pub struct Testbed {
    /// Namespace names, indexed by `Host::index`; only the created ones (Drop deletes these).
    names: Vec<String>,
    nat_a: Nat,
    nat_b: Nat,
}

/// Run a command to completion; Err with its stderr if it could not start or failed.
fn run(argv: &[&str], stdin: Option<&str>) -> Result<Output, String> {
    let (prog, args) = argv
        .split_first()
        .ok_or_else(|| "empty command".to_string())?;
    let mut cmd = Command::new(prog);
    cmd.args(args)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd
        .spawn()
        .map_err(|e| format!("cannot run `{}`: {e}", argv.join(" ")))?;
    if let (Some(text), Some(mut pipe)) = (stdin, child.stdin.take()) {
        pipe.write_all(text.as_bytes())
            .map_err(|e| format!("`{}`: writing stdin: {e}", argv.join(" ")))?;
    }
    let out = child
        .wait_with_output()
        .map_err(|e| format!("`{}`: {e}", argv.join(" ")))?;
    if out.status.success() {
        Ok(out)
    } else {
        Err(format!(
            "`{}` failed ({}): {}",
            argv.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// Ok if `prog` is an executable file in one of PATH's directories.
pub fn have(prog: &str) -> Result<(), String> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let found = std::env::split_paths(&path).any(|dir| {
        std::fs::metadata(dir.join(prog))
            .map(|m| {
                m.is_file()
                    && std::os::unix::fs::PermissionsExt::mode(&m.permissions()) & 0o111 != 0
            })
            .unwrap_or(false)
    });
    if found {
        Ok(())
    } else {
        Err(format!(
            "`{prog}` is not on PATH (Debian packages: {})",
            debian_package(prog)
        ))
    }
}

/// Which Debian package provides a testbed tool (for skip messages).
fn debian_package(prog: &str) -> &'static str {
    match prog {
        "ip" => "iproute2",
        "nft" => "nftables",
        "conntrack" => "conntrack",
        "miniupnpd" => "miniupnpd-nftables",
        "upnpc" => "miniupnpc",
        "ping" => "iputils-ping",
        _ => "unknown",
    }
}

/// The effective uid, from /proc/self/status (no libc call needed).
fn effective_uid() -> Option<u32> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("Uid:"))?;
    line.split_whitespace().nth(2)?.parse().ok()
}

fn check_available() -> Result<(), String> {
    match effective_uid() {
        Some(0) => {}
        Some(uid) => return Err(format!("needs root (running as uid {uid})")),
        None => return Err("cannot read the effective uid from /proc/self/status".into()),
    }
    have("ip")?;
    have("nft")?;
    // Root in a container may still lack CAP_SYS_ADMIN/CAP_NET_ADMIN: try it once.
    let probe = format!("ip2p-{}-probe", std::process::id());
    run(&["ip", "netns", "add", &probe], None)
        .map_err(|e| format!("cannot create network namespaces: {e}"))?;
    let _ = run(&["ip", "netns", "del", &probe], None);
    Ok(())
}

/// The nftables ruleset of a NAT (spec/testbed.md): one `table inet filter` with the chain names
/// miniupnpd 2.3.1 expects.
pub fn nat_ruleset(nat: Nat) -> String {
    let masquerade = match nat {
        Nat::Masquerade => "masquerade",
        Nat::FullyRandom => "masquerade fully-random",
        // a router: no translation, and inbound traffic is let through to the LAN
        Nat::Public => "accept",
    };
    let inbound = if nat == Nat::Public {
        "iifname \"wan0\" oifname \"lan0\" accept"
    } else {
        ""
    };
    format!(
        r#"table inet filter {{
    chain miniupnpd {{
    }}
    chain prerouting_miniupnpd {{
    }}
    chain postrouting_miniupnpd {{
    }}
    chain input {{
        type filter hook input priority filter; policy accept;
        ct state established,related accept
        iifname "wan0" meta l4proto {{ tcp, udp }} drop
    }}
    chain forward {{
        type filter hook forward priority filter; policy drop;
        ct state established,related accept
        jump miniupnpd
        iifname "lan0" oifname "wan0" accept
        {inbound}
    }}
    chain prerouting {{
        type nat hook prerouting priority dstnat; policy accept;
        jump prerouting_miniupnpd
    }}
    chain postrouting {{
        type nat hook postrouting priority srcnat; policy accept;
        jump postrouting_miniupnpd
        oifname "wan0" {masquerade}
    }}
}}
"#
    )
}

impl Testbed {
    /// Ok if we are root, `ip` and `nft` exist and a network namespace can be created; Err(reason)
    /// otherwise. Checked once per process.
    pub fn available() -> Result<(), String> {
        static AVAILABLE: OnceLock<Result<(), String>> = OnceLock::new();
        AVAILABLE.get_or_init(check_available).clone()
    }

    /// A testbed for `test`, or `None` (after printing `skipped: <test>: <reason>`) when this machine
    /// cannot build one. With `IP2P_REQUIRE_TESTBED=1` it panics instead of skipping. A testbed that
    /// should be buildable but fails to build always panics.
    pub fn require(test: &str, nat_a: Nat, nat_b: Nat) -> Option<Testbed> {
        Testbed::require_with(test, nat_a, nat_b, &[])
    }

    /// `require`, and also skip (or panic under `IP2P_REQUIRE_TESTBED=1`) unless every program in
    /// `tools` is on PATH, e.g. `&["conntrack", "miniupnpd", "upnpc"]`.
    pub fn require_with(test: &str, nat_a: Nat, nat_b: Nat, tools: &[&str]) -> Option<Testbed> {
        let ready = Testbed::available().and_then(|()| tools.iter().try_for_each(|t| have(t)));
        if let Err(reason) = ready {
            if std::env::var("IP2P_REQUIRE_TESTBED").as_deref() == Ok("1") {
                panic!("{test}: IP2P_REQUIRE_TESTBED=1 but the testbed is unavailable: {reason}");
            }
            eprintln!("skipped: {test}: {reason}");
            return None;
        }
        match Testbed::new(nat_a, nat_b) {
            Ok(tb) => Some(tb),
            Err(e) => panic!("{test}: building the testbed failed: {e}"),
        }
    }

    /// Build everything (namespaces, veths, addresses, routes, forwarding, NAT rulesets).
    pub fn new(nat_a: Nat, nat_b: Nat) -> Result<Testbed, String> {
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let pid = std::process::id();
        let mut tb = Testbed {
            names: Vec::new(),
            nat_a,
            nat_b,
        };
        for h in Host::ALL {
            let name = format!("ip2p-{pid}-{n}-{}", h.short());
            // A leftover of an earlier, killed run with the same pid would make `add` fail.
            let _ = run(&["ip", "netns", "del", &name], None);
            run(&["ip", "netns", "add", &name], None)?;
            tb.names.push(name);
        }
        tb.build()?;
        Ok(tb)
    }

    /// Set one kernel setting (`name=value`) in `h`'s namespace.
    fn sysctl(&self, h: Host, setting: &str) -> Result<(), String> {
        run(
            &["ip", "netns", "exec", self.ns(h), "sysctl", "-qw", setting],
            None,
        )
        .map(|_| ())
    }

    fn build(&self) -> Result<(), String> {
        use Host::*;
        // (namespace, its interface, neighbour, neighbour's interface)
        let links = [
            (A, "eth0", NatA, "lan0"),
            (NatA, "wan0", Core, "a0"),
            (Core, "b0", NatB, "wan0"),
            (NatB, "lan0", B, "eth0"),
        ];
        for (h, ifname, peer, peer_ifname) in links {
            self.ip(
                h,
                &[
                    "link",
                    "add",
                    ifname,
                    "type",
                    "veth",
                    "peer",
                    "name",
                    peer_ifname,
                    "netns",
                    self.ns(peer),
                ],
            )?;
        }
        let addrs = [
            (A, "eth0", "10.0.1.2/24"),
            (NatA, "lan0", "10.0.1.1/24"),
            (NatA, "wan0", "80.100.1.1/24"),
            (Core, "a0", "80.100.1.254/24"),
            (Core, "b0", "80.100.2.254/24"),
            (NatB, "wan0", "80.100.2.1/24"),
            (NatB, "lan0", "10.0.2.1/24"),
            (B, "eth0", "10.0.2.2/24"),
        ];
        for (h, ifname, cidr) in addrs {
            self.ip(h, &["addr", "add", cidr, "dev", ifname])?;
            self.ip(h, &["link", "set", ifname, "up"])?;
        }
        for h in Host::ALL {
            self.ip(h, &["link", "set", "lo", "up"])?;
        }
        let routes = [
            (A, "10.0.1.1"),
            (NatA, "80.100.1.254"),
            (NatB, "80.100.2.254"),
            (B, "10.0.2.1"),
        ];
        for (h, via) in routes {
            self.ip(h, &["route", "add", "default", "via", via])?;
        }
        for h in [NatA, Core, NatB] {
            self.sysctl(h, "net.ipv4.ip_forward=1")?;
        }
        // Tests bind fixed ports below 50000 (40000 + run, …). Keep the kernel's own choices
        // (connect and bind to port 0) above them, so an earlier run's ephemeral socket can never
        // hold a later run's fixed port or its 4-tuple (TIME-WAIT).
        for h in Host::ALL {
            self.sysctl(h, "net.ipv4.ip_local_port_range=50000 60999")?;
        }
        // a public host's LAN is routed from the core to its router
        for (nat, net, via) in [
            (self.nat_a, "10.0.1.0/24", "80.100.1.1"),
            (self.nat_b, "10.0.2.0/24", "80.100.2.1"),
        ] {
            if nat == Nat::Public {
                self.ip(Core, &["route", "add", net, "via", via])?;
            }
        }
        for (h, nat) in [(NatA, self.nat_a), (NatB, self.nat_b)] {
            run(
                &["ip", "netns", "exec", self.ns(h), "nft", "-f", "-"],
                Some(&nat_ruleset(nat)),
            )?;
        }
        Ok(())
    }

    fn ip(&self, h: Host, args: &[&str]) -> Result<Output, String> {
        let mut argv = vec!["ip", "-n", self.ns(h)];
        argv.extend_from_slice(args);
        run(&argv, None)
    }

    /// The NAT flavour of natA / natB.
    pub fn nat(&self, h: Host) -> Option<Nat> {
        match h {
            Host::NatA => Some(self.nat_a),
            Host::NatB => Some(self.nat_b),
            _ => None,
        }
    }

    /// The namespace name of `h`.
    pub fn ns(&self, h: Host) -> &str {
        self.names.get(h.index()).map(String::as_str).unwrap_or("")
    }

    /// All namespace names of this testbed.
    pub fn namespaces(&self) -> &[String] {
        &self.names
    }

    /// Run `f` on a fresh thread that first entered `h`'s network namespace (setns), return its
    /// result. Sockets created inside `f` live in that namespace, also after being handed to another
    /// thread. A panic inside `f` is resumed on the caller's thread.
    pub fn run_in<T: Send + 'static>(&self, h: Host, f: impl FnOnce() -> T + Send + 'static) -> T {
        let path = PathBuf::from("/run/netns").join(self.ns(h));
        let handle = std::thread::Builder::new()
            .name(format!("netns-{h}"))
            .spawn(move || {
                let file =
                    File::open(&path).unwrap_or_else(|e| panic!("open {}: {e}", path.display()));
                if let Err(e) = nix::sched::setns(&file, nix::sched::CloneFlags::CLONE_NEWNET) {
                    panic!("setns({}): {e}", path.display());
                }
                drop(file);
                f()
            })
            .unwrap_or_else(|e| panic!("cannot spawn a thread: {e}"));
        match handle.join() {
            Ok(v) => v,
            Err(payload) => std::panic::resume_unwind(payload),
        }
    }

    /// Same as `run_in` for async code: a current-thread tokio runtime (IO and time enabled) on
    /// that thread runs `f()` to completion.
    pub fn block_on_in<T, F, Fut>(&self, h: Host, f: F) -> T
    where
        F: FnOnce() -> Fut + Send + 'static,
        Fut: std::future::Future<Output = T>,
        T: Send + 'static,
    {
        self.run_in(h, move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap_or_else(|e| panic!("cannot build a tokio runtime: {e}"));
            rt.block_on(f())
        })
    }

    /// Run a command inside `h` (`ip netns exec <ns> argv...`) to completion, returning its Output
    /// (whatever its exit status; panics only if `ip` cannot be started).
    pub fn exec(&self, h: Host, argv: &[&str]) -> Output {
        Command::new("ip")
            .args(["netns", "exec", self.ns(h)])
            .args(argv)
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|e| {
                panic!(
                    "cannot run `ip netns exec {} {}`: {e}",
                    self.ns(h),
                    argv.join(" ")
                )
            })
    }

    /// `nft list ruleset` inside `h`.
    pub fn nft_ruleset(&self, h: Host) -> String {
        let out = self.exec(h, &["nft", "list", "ruleset"]);
        assert!(
            out.status.success(),
            "nft list ruleset in {h}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// The lines of `conntrack -L -p <proto> [filter...]` inside `h` (one line per flow).
    pub fn conntrack(&self, h: Host, proto: &str, filter: &[&str]) -> Vec<String> {
        let mut argv = vec!["conntrack", "-L", "-p", proto];
        argv.extend_from_slice(filter);
        let out = self.exec(h, &argv);
        assert!(
            out.status.success(),
            "`{}` in {h}: {}",
            argv.join(" "),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(str::to_string)
            .collect()
    }

    /// Start Debian's miniupnpd (miniupnpd-nftables 2.3.1) inside `nat` (NatA or NatB): its own config
    /// file, pidfile and lease file in a temp dir, foreground (`-d`) with stderr captured to a file;
    /// returns once it accepts TCP on its HTTP port. Dropping the guard kills it and flushes the
    /// miniupnpd chains.
    pub fn start_miniupnpd(&self, nat: Host) -> Result<MiniUpnpd, String> {
        self.start_miniupnpd_with(nat, "")
    }

    /// `start_miniupnpd` with `extra` appended to its config file: one `key=value` per line, for keys
    /// the base config (`miniupnpd_config`) does not set, e.g. `"force_igd_desc_v1=yes\n"`. Keep
    /// `http_port` as it is (the readiness check uses it); extra `allow` lines come after the final
    /// `deny` and never match.
    pub fn start_miniupnpd_with(&self, nat: Host, extra: &str) -> Result<MiniUpnpd, String> {
        let (lan_ip, lan_net) = match (nat.lan_addr(), nat.lan_net()) {
            (Some(ip), Some(net)) => (ip, net),
            _ => return Err(format!("miniupnpd runs on natA or natB, not {nat}")),
        };
        have("miniupnpd")?;
        let ns = self.ns(nat).to_string();
        let dir = std::env::temp_dir().join(format!("{ns}-miniupnpd"));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).map_err(|e| format!("mkdir {}: {e}", dir.display()))?;
        let conf = dir.join("miniupnpd.conf");
        let pidfile = dir.join("miniupnpd.pid");
        let logfile = dir.join("miniupnpd.log");
        let uuid = format!(
            "{:08x}-{:04x}-4000-8000-{:012x}",
            std::process::id(),
            nat.index(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        );
        let mut text = miniupnpd_config(MINIUPNPD_HTTP_PORT, &uuid, &dir.join("leases"), lan_net);
        text.push_str(extra);
        std::fs::write(&conf, text).map_err(|e| format!("write {}: {e}", conf.display()))?;
        let log =
            File::create(&logfile).map_err(|e| format!("create {}: {e}", logfile.display()))?;
        let child = Command::new("ip")
            .args(["netns", "exec", &ns, "miniupnpd", "-d", "-f"])
            .arg(&conf)
            .arg("-P")
            .arg(&pidfile)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .map_err(|e| format!("cannot start miniupnpd: {e}"))?;
        let mut guard = MiniUpnpd {
            child,
            ns,
            dir,
            logfile,
            http_port: MINIUPNPD_HTTP_PORT,
            lan_ip,
        };
        let target = SocketAddr::V4(SocketAddrV4::new(lan_ip, MINIUPNPD_HTTP_PORT));
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Ok(Some(status)) = guard.child.try_wait() {
                return Err(format!("miniupnpd exited ({status}): {}", guard.log()));
            }
            let up = self.run_in(nat, move || {
                TcpStream::connect_timeout(&target, Duration::from_millis(200)).is_ok()
            });
            if up {
                return Ok(guard);
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "miniupnpd does not listen on {target} after 10 s: {}",
                    guard.log()
                ));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// The miniupnpd config the testbed uses (spec/testbed.md explains each key).
pub fn miniupnpd_config(http_port: u16, uuid: &str, lease_file: &Path, lan_net: &str) -> String {
    format!(
        "ext_ifname=wan0\n\
         listening_ip=lan0\n\
         http_port={http_port}\n\
         enable_upnp=yes\n\
         enable_natpmp=no\n\
         secure_mode=yes\n\
         system_uptime=yes\n\
         notify_interval=60\n\
         clean_ruleset_interval=600\n\
         uuid={uuid}\n\
         lease_file={}\n\
         upnp_table_name=filter\n\
         upnp_nat_table_name=filter\n\
         upnp_forward_chain=miniupnpd\n\
         upnp_nat_chain=prerouting_miniupnpd\n\
         upnp_nat_postrouting_chain=postrouting_miniupnpd\n\
         allow 1024-65535 {lan_net} 1024-65535\n\
         deny 0-65535 0.0.0.0/0 0-65535\n",
        lease_file.display()
    )
}

impl Drop for Testbed {
    fn drop(&mut self) {
        for name in self.names.iter().rev() {
            // Anything still running inside (a forgotten server, a miniupnpd whose guard leaked).
            if let Ok(out) = run(&["ip", "netns", "pids", name], None) {
                for pid in String::from_utf8_lossy(&out.stdout).split_whitespace() {
                    if let Ok(pid) = pid.parse::<i32>() {
                        let _ = signal::kill(Pid::from_raw(pid), Signal::SIGKILL);
                    }
                }
            }
            if let Err(e) = run(&["ip", "netns", "del", name], None) {
                eprintln!("testbed: {e}");
            }
        }
    }
}

/// A running miniupnpd (see `Testbed::start_miniupnpd`).
pub struct MiniUpnpd {
    child: Child,
    ns: String,
    dir: PathBuf,
    logfile: PathBuf,
    http_port: u16,
    lan_ip: Ipv4Addr,
}

impl MiniUpnpd {
    /// Its HTTP (description/control) port on the NAT's LAN address.
    pub fn http_port(&self) -> u16 {
        self.http_port
    }

    /// The URL of its root device description.
    pub fn root_desc_url(&self) -> String {
        format!("http://{}:{}/rootDesc.xml", self.lan_ip, self.http_port)
    }

    /// Its process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Everything it wrote to stderr so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.logfile).unwrap_or_default()
    }
}

impl Drop for MiniUpnpd {
    fn drop(&mut self) {
        if let Ok(pid) = i32::try_from(self.child.id()) {
            let _ = signal::kill(Pid::from_raw(pid), Signal::SIGTERM);
        }
        let deadline = Instant::now() + Duration::from_secs(2);
        while !matches!(self.child.try_wait(), Ok(Some(_))) {
            if Instant::now() > deadline {
                let _ = self.child.kill();
                let _ = self.child.wait();
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        // miniupnpd leaves its rules behind on SIGTERM.
        for chain in ["miniupnpd", "prerouting_miniupnpd", "postrouting_miniupnpd"] {
            let _ = run(
                &[
                    "ip", "netns", "exec", &self.ns, "nft", "flush", "chain", "inet", "filter",
                    chain,
                ],
                None,
            );
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
