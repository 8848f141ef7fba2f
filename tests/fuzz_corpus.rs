//! Replays every committed fuzz corpus (`fuzz/corpus/<target>/*`) through the very function the
//! cargo-fuzz target calls, on stable, under a plain `cargo test`: a regression found once by the
//! fuzzer fails CI forever after.
//!
//! The target bodies live in `fuzz/src/lib.rs`, included here as a module. To (re)write the seed
//! inputs: `IP2P_WRITE_SEEDS=1 cargo test --test fuzz_corpus seeds`.

#[path = "../fuzz/src/lib.rs"]
mod fuzz_lib;

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};

fn corpus_dir(target: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/corpus")
        .join(target)
}

/// Run `body` on every file of the target's corpus; fail naming every input that panics.
fn replay(target: &str, body: fn(&[u8])) {
    let dir = corpus_dir(target);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("corpus {} unreadable: {e}", dir.display()))
        .map(|e| e.expect("corpus entry").path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    let mut failed = Vec::new();
    for f in &files {
        let data = std::fs::read(f).expect("corpus file");
        if catch_unwind(AssertUnwindSafe(|| body(&data))).is_err() {
            failed.push(f.display().to_string());
        }
    }
    assert!(
        !files.is_empty(),
        "no corpus files for {target} in {}",
        dir.display()
    );
    assert!(
        failed.is_empty(),
        "{} of {} {target} inputs panicked: {failed:#?}",
        failed.len(),
        files.len()
    );
    eprintln!("{target}: replayed {} inputs", files.len());
}

#[test]
fn chord_wire_corpus() {
    replay("chord_wire", fuzz_lib::chord_wire);
}

#[test]
fn chord_node_corpus() {
    replay("chord_node", fuzz_lib::chord_node);
}

#[test]
fn chord_sim_corpus() {
    replay("chord_sim", fuzz_lib::chord_sim);
}

#[test]
fn upnp_ssdp_corpus() {
    replay("upnp_ssdp", fuzz_lib::upnp_targets::upnp_ssdp);
}

#[test]
fn upnp_http_corpus() {
    replay("upnp_http", fuzz_lib::upnp_targets::upnp_http);
}

#[test]
fn upnp_xml_corpus() {
    replay("upnp_xml", fuzz_lib::upnp_targets::upnp_xml);
}

#[test]
fn upnp_client_corpus() {
    replay("upnp_client", fuzz_lib::upnp_targets::upnp_client);
}

#[test]
fn ip2p_wire_corpus() {
    replay("ip2p_wire", fuzz_lib::ip2p_targets::ip2p_wire);
}

#[test]
fn ip2p_peer_corpus() {
    replay("ip2p_peer", fuzz_lib::ip2p_targets::ip2p_peer);
}

#[test]
fn broker_wire_corpus() {
    replay("broker_wire", fuzz_lib::broker_targets::broker_wire);
}

#[test]
fn broker_pair_corpus() {
    replay("broker_pair", fuzz_lib::ip2p_targets::broker_pair);
}

#[test]
fn sip_wire_corpus() {
    replay("sip_wire", fuzz_lib::sip_targets::sip_wire);
}

#[test]
fn samp_server_corpus() {
    replay("samp_server", fuzz_lib::samp_targets::samp_server);
}

#[test]
fn samp_roles_corpus() {
    replay("samp_roles", fuzz_lib::samp_targets::samp_roles);
}

#[test]
fn relay_wire_corpus() {
    replay("relay_wire", fuzz_lib::relay_targets::relay_wire);
}

#[test]
fn relay_roles_corpus() {
    replay("relay_roles", fuzz_lib::relay_targets::relay_roles);
}

#[test]
fn stunt_wire_corpus() {
    replay("stunt_wire", fuzz_lib::stunt_targets::stunt_wire);
}

#[test]
fn stunt_roles_corpus() {
    replay("stunt_roles", fuzz_lib::stunt_targets::stunt_roles);
}

#[test]
fn sms_tpdu_corpus() {
    replay("sms_tpdu", fuzz_lib::sms_targets::sms_tpdu);
}

#[test]
fn sms_gsm7_corpus() {
    replay("sms_gsm7", fuzz_lib::sms_targets::sms_gsm7);
}

#[test]
fn sms_concat_corpus() {
    replay("sms_concat", fuzz_lib::sms_targets::sms_concat);
}

/// The seeds themselves pass (they are also in the corpora, under `seed-*`).
#[test]
fn seeds_pass() {
    for (_, s) in fuzz_lib::wire_seeds() {
        fuzz_lib::chord_wire(&s);
    }
    for (_, s) in fuzz_lib::node_seeds() {
        fuzz_lib::chord_node(&s);
    }
    for (_, s) in fuzz_lib::sim_seeds() {
        fuzz_lib::chord_sim(&s);
    }
    for (_, s) in fuzz_lib::ip2p_targets::wire_seeds() {
        fuzz_lib::ip2p_targets::ip2p_wire(&s);
    }
    for (_, s) in fuzz_lib::ip2p_targets::peer_seeds() {
        fuzz_lib::ip2p_targets::ip2p_peer(&s);
    }
    for (_, s) in fuzz_lib::broker_targets::wire_seeds() {
        fuzz_lib::broker_targets::broker_wire(&s);
    }
    for (_, s) in fuzz_lib::ip2p_targets::broker_seeds() {
        fuzz_lib::ip2p_targets::broker_pair(&s);
    }
    for (_, s) in fuzz_lib::sip_targets::wire_seeds() {
        fuzz_lib::sip_targets::sip_wire(&s);
    }
    for (_, s) in fuzz_lib::samp_targets::server_seeds() {
        fuzz_lib::samp_targets::samp_server(&s);
    }
    for (_, s) in fuzz_lib::samp_targets::roles_seeds() {
        fuzz_lib::samp_targets::samp_roles(&s);
    }
    for (_, s) in fuzz_lib::relay_targets::wire_seeds() {
        fuzz_lib::relay_targets::relay_wire(&s);
    }
    for (_, s) in fuzz_lib::relay_targets::roles_seeds() {
        fuzz_lib::relay_targets::relay_roles(&s);
    }
    for (_, s) in fuzz_lib::stunt_targets::wire_seeds() {
        fuzz_lib::stunt_targets::stunt_wire(&s);
    }
    for (_, s) in fuzz_lib::stunt_targets::roles_seeds() {
        fuzz_lib::stunt_targets::stunt_roles(&s);
    }
    for (_, s) in fuzz_lib::sms_at_targets::sms_at_seeds() {
        fuzz_lib::sms_at_targets::sms_at(&s);
    }
    for (_, s) in fuzz_lib::sms_targets::tpdu_seeds() {
        fuzz_lib::sms_targets::sms_tpdu(&s);
    }
    for (_, s) in fuzz_lib::sms_targets::gsm7_seeds() {
        fuzz_lib::sms_targets::sms_gsm7(&s);
    }
    for (_, s) in fuzz_lib::sms_targets::concat_seeds() {
        fuzz_lib::sms_targets::sms_concat(&s);
    }
    for (_, s) in fuzz_lib::upnp_targets::ssdp_seeds() {
        fuzz_lib::upnp_targets::upnp_ssdp(&s);
    }
    for (_, s) in fuzz_lib::upnp_targets::http_seeds() {
        fuzz_lib::upnp_targets::upnp_http(&s);
    }
    for (_, s) in fuzz_lib::upnp_targets::xml_seeds() {
        fuzz_lib::upnp_targets::upnp_xml(&s);
    }
    for (_, s) in fuzz_lib::upnp_targets::client_seeds() {
        fuzz_lib::upnp_targets::upnp_client(&s);
    }
}

/// The committed seed files (`seed-<name>`) are exactly what the seed generators in
/// `fuzz/src/lib.rs` produce today: a change to the wire format or to a scenario encoding that
/// leaves stale seeds behind fails here. `IP2P_WRITE_SEEDS=1 cargo test --test fuzz_corpus seeds`
/// rewrites them instead.
#[test]
fn seeds_are_current() {
    let write = std::env::var_os("IP2P_WRITE_SEEDS").is_some();
    let mut stale = Vec::new();
    for (target, seeds) in [
        ("chord_wire", fuzz_lib::wire_seeds()),
        ("chord_node", fuzz_lib::node_seeds()),
        ("chord_sim", fuzz_lib::sim_seeds()),
        ("ip2p_wire", fuzz_lib::ip2p_targets::wire_seeds()),
        ("ip2p_peer", fuzz_lib::ip2p_targets::peer_seeds()),
        ("broker_pair", fuzz_lib::ip2p_targets::broker_seeds()),
        ("broker_wire", fuzz_lib::broker_targets::wire_seeds()),
        ("sip_wire", fuzz_lib::sip_targets::wire_seeds()),
        ("samp_server", fuzz_lib::samp_targets::server_seeds()),
        ("samp_roles", fuzz_lib::samp_targets::roles_seeds()),
        ("relay_wire", fuzz_lib::relay_targets::wire_seeds()),
        ("relay_roles", fuzz_lib::relay_targets::roles_seeds()),
        ("stunt_wire", fuzz_lib::stunt_targets::wire_seeds()),
        ("stunt_roles", fuzz_lib::stunt_targets::roles_seeds()),
        ("sms_at", fuzz_lib::sms_at_targets::sms_at_seeds()),
        ("sms_tpdu", fuzz_lib::sms_targets::tpdu_seeds()),
        ("sms_gsm7", fuzz_lib::sms_targets::gsm7_seeds()),
        ("sms_concat", fuzz_lib::sms_targets::concat_seeds()),
        ("upnp_ssdp", fuzz_lib::upnp_targets::ssdp_seeds()),
        ("upnp_http", fuzz_lib::upnp_targets::http_seeds()),
        ("upnp_xml", fuzz_lib::upnp_targets::xml_seeds()),
        ("upnp_client", fuzz_lib::upnp_targets::client_seeds()),
    ] {
        let dir = corpus_dir(target);
        assert!(!seeds.is_empty(), "{target} has no seeds");
        for (name, bytes) in seeds {
            let path = dir.join(format!("seed-{name}"));
            if write {
                std::fs::create_dir_all(&dir).expect("corpus dir");
                std::fs::write(&path, &bytes).expect("write seed");
            } else if std::fs::read(&path).ok().as_deref() != Some(&bytes[..]) {
                stale.push(path.display().to_string());
            }
        }
    }
    assert!(
        stale.is_empty(),
        "stale or missing seed files (rewrite with IP2P_WRITE_SEEDS=1): {stale:?}"
    );
}

#[test]
fn sms_at_corpus() {
    replay("sms_at", fuzz_lib::sms_at_targets::sms_at);
}
