//! The iP2P socket API over real TCP on loopback, with SMS and radios emulated in memory: two
//! phones, the callee's radio off until the SMS arrives, a real TCP connection at the end.
#![cfg(feature = "tokio")]

#[path = "support/radio.rs"]
mod radio;

use std::time::Duration;

use ip2p::adapters::tokio::ip2p::{
    spawn, ConnectError, HostConfig, HostEvent, Links, RadioCommand,
};
use ip2p::ip2p::wire::{AppName, Key};
use ip2p::ip2p::{Config, Event, Failure, Peer};
use ip2p::Msisdn;
use radio::radio;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;

fn num(s: &str) -> Msisdn {
    s.parse().unwrap()
}

struct Phone {
    handle: ip2p::adapters::tokio::ip2p::Ip2pHandle,
    events: mpsc::Receiver<HostEvent>,
    radio_log: mpsc::UnboundedReceiver<RadioCommand>,
}

/// Two phones joined by an in-memory SMS network delivering after `sms_delay` (dropping the
/// first `lose_first` SMS).
fn two_phones(
    sms_delay: Duration,
    lose_first: usize,
    b_serves: bool,
    tune: impl Fn(&mut Config),
) -> (Phone, Phone) {
    let (a, b) = (num("+886900000001"), num("+886900000002"));
    let key = Key::from_bytes([9; 32]);
    let ftp = AppName::new("ftp").unwrap();
    let mut ca = Config::new(a).with_peer(b, key.clone());
    let mut cb = Config::new(b).with_peer(a, key);
    if b_serves {
        cb = cb.with_app(ftp);
    }
    tune(&mut ca);
    tune(&mut cb);
    let (a_out, mut a_out_rx) = mpsc::unbounded_channel::<(Msisdn, Vec<u8>)>();
    let (b_out, mut b_out_rx) = mpsc::unbounded_channel::<(Msisdn, Vec<u8>)>();
    let (a_in_tx, a_in) = mpsc::channel(8);
    let (b_in_tx, b_in) = mpsc::channel(8);
    // the SMS centre
    tokio::spawn(async move {
        let mut lost = 0;
        loop {
            tokio::select! {
                Some((to, p)) = a_out_rx.recv() => {
                    assert_eq!(to, b);
                    if lost < lose_first { lost += 1; continue; }
                    let tx = b_in_tx.clone();
                    tokio::spawn(async move {
                        tokio::time::sleep(sms_delay).await;
                        let _ = tx.send((a, p)).await;
                    });
                }
                Some((to, p)) = b_out_rx.recv() => {
                    assert_eq!(to, a);
                    let tx = a_in_tx.clone();
                    tokio::spawn(async move {
                        tokio::time::sleep(sms_delay).await;
                        let _ = tx.send((b, p)).await;
                    });
                }
                else => break,
            }
        }
    });
    let mut phones = Vec::new();
    for (cfg, out, inbox, ip) in [
        (ca, a_out, a_in, "127.0.0.1"),
        (cb, b_out, b_in, "127.0.0.2"),
    ] {
        let r = radio(ip.parse().unwrap(), Duration::from_millis(30));
        let radio_log = r.log;
        let links = Links {
            sms_out: out,
            sms_in: inbox,
            radio_out: r.commands,
            radio_in: r.events,
        };
        let (handle, events) = spawn(Peer::new(cfg), links, HostConfig::default());
        phones.push(Phone {
            handle,
            events,
            radio_log,
        });
    }
    let b = phones.pop().unwrap();
    let a = phones.pop().unwrap();
    (a, b)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn phone_calls_phone_and_they_talk_over_tcp() {
    let (a, mut b) = two_phones(Duration::from_millis(20), 0, true, |c| {
        c.idle_off = Duration::from_millis(200);
    });
    let ftp = AppName::new("ftp").unwrap();
    // the callee's application: echo what the caller says
    let server = tokio::spawn(async move {
        loop {
            match b.events.recv().await {
                Some(HostEvent::Incoming(mut served)) => {
                    let mut buf = [0u8; 5];
                    served.stream.read_exact(&mut buf).await.unwrap();
                    served.stream.write_all(&buf).await.unwrap();
                    assert_eq!(served.app.as_str(), "ftp");
                    return b;
                }
                Some(_) => {}
                None => panic!("callee events closed"),
            }
        }
    });
    let mut conn = tokio::time::timeout(
        Duration::from_secs(10),
        a.handle.connect(num("+886900000002"), ftp),
    )
    .await
    .expect("set-up in time")
    .expect("connected");
    assert_eq!(conn.addr.0.ip().to_string(), "127.0.0.2");
    conn.stream.write_all(b"hello").await.unwrap();
    let mut buf = [0u8; 5];
    conn.stream.read_exact(&mut buf).await.unwrap();
    assert_eq!(&buf, b"hello");
    let mut b = server.await.unwrap();
    drop(conn);
    // both radios were switched on, and go off again after the idle time
    let mut a = a;
    for log in [&mut a.radio_log, &mut b.radio_log] {
        assert_eq!(log.recv().await, Some(RadioCommand::On));
        let off = tokio::time::timeout(Duration::from_secs(5), log.recv()).await;
        assert_eq!(off.unwrap(), Some(RadioCommand::Off));
    }
    assert_eq!(a.handle.counters().rejected, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lost_sms_is_retried_and_the_call_still_connects() {
    let (a, mut b) = two_phones(Duration::from_millis(10), 1, true, |c| {
        c.sms_timeout = Duration::from_millis(300);
    });
    tokio::spawn(async move {
        while let Some(e) = b.events.recv().await {
            if let HostEvent::Incoming(served) = e {
                // keep the connection until the test ends
                std::mem::forget(served);
            }
        }
    });
    let conn = tokio::time::timeout(
        Duration::from_secs(10),
        a.handle
            .connect(num("+886900000002"), AppName::new("ftp").unwrap()),
    )
    .await
    .unwrap()
    .expect("connected after a retry");
    assert!(conn.stream.peer_addr().is_ok());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_callee_fails_cleanly_and_refusal_is_reported() {
    // the callee serves no ftp: it refuses by SMS
    let (a, _b) = two_phones(Duration::from_millis(5), 0, false, |_| {});
    let r = a
        .handle
        .connect(num("+886900000002"), AppName::new("ftp").unwrap())
        .await;
    assert!(matches!(r, Err(ConnectError::Failed(Failure::Refused(_)))));
    // every SMS lost: no answer after the attempts
    let (mut a, _b) = two_phones(Duration::from_millis(5), usize::MAX, true, |c| {
        c.sms_timeout = Duration::from_millis(50);
        c.sms_attempts = 2;
    });
    let r = a
        .handle
        .connect(num("+886900000002"), AppName::new("ftp").unwrap())
        .await;
    assert!(matches!(r, Err(ConnectError::Failed(Failure::NoAnswer(2)))));
    let mut saw_failed = false;
    while let Ok(Some(e)) = tokio::time::timeout(Duration::from_millis(100), a.events.recv()).await
    {
        if let HostEvent::Peer(Event::Failed { .. }) = e {
            saw_failed = true;
        }
    }
    assert!(saw_failed);
    // an unknown number is rejected at once
    let r = a
        .handle
        .connect(num("+886900000009"), AppName::new("ftp").unwrap())
        .await;
    assert!(matches!(r, Err(ConnectError::Rejected(_))));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn socket_api_takes_numbers_ip_literals_and_host_names() {
    use ip2p::adapters::tokio::ip2p::Stream;
    use ip2p::msisdn::DialPlan;
    let (a, mut b) = two_phones(Duration::from_millis(5), 0, true, |_| {});
    tokio::spawn(async move {
        while let Some(e) = b.events.recv().await {
            if let HostEvent::Incoming(served) = e {
                std::mem::forget(served);
            }
        }
    });
    let ftp = AppName::new("ftp").unwrap();
    let tw = DialPlan::new("886", "0").unwrap();
    // a national number with the dial plan: iP2P
    let s = a
        .handle
        .connect_name("0900 000 002", ftp, 21, Some(&tw))
        .await
        .unwrap();
    assert!(matches!(s, Stream::Ip2p(_)));
    // an IP literal and a host name: a plain connect to the given port
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        loop {
            let _ = listener.accept().await;
        }
    });
    let mut s = a
        .handle
        .connect_name("127.0.0.1", ftp, port, None)
        .await
        .unwrap();
    assert!(matches!(s, Stream::Direct(_)));
    assert_eq!(s.stream().peer_addr().unwrap().port(), port);
    let s = a
        .handle
        .connect_name("localhost", ftp, port, None)
        .await
        .unwrap();
    assert!(matches!(s, Stream::Direct(_)));
    // a mistyped number is an error, not a DNS query
    let e = a
        .handle
        .connect_name("+886 90x", ftp, port, None)
        .await
        .unwrap_err();
    assert!(matches!(e, ConnectError::Name(_)), "{e}");
}
