//! Under systemd: READY=1 once listening, WATCHDOG=1 at half the watchdog interval, STOPPING=1 on
//! SIGTERM. systemd's notify socket is played by a Unix datagram socket of the test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::os::unix::net::UnixDatagram;
use std::time::{Duration, Instant};

use wa2crm_e2e::{Daemon, NO_GRAPH, config_toml, free_port};

fn receive_until(socket: &UnixDatagram, wanted: &str, within: Duration) -> Vec<String> {
    let deadline = Instant::now() + within;
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    while Instant::now() < deadline {
        socket
            .set_read_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        if let Ok(n) = socket.recv(&mut buf) {
            let msg = String::from_utf8_lossy(&buf[..n]).into_owned();
            let done = msg.lines().any(|l| l == wanted);
            seen.push(msg);
            if done {
                return seen;
            }
        }
    }
    panic!("{wanted} not received within {within:?}; got {seen:?}");
}

#[tokio::test]
async fn notifies_ready_pets_the_watchdog_and_says_stopping() {
    let dir = tempfile::tempdir().unwrap();
    let socket_path = dir.path().join("notify.sock");
    let socket = UnixDatagram::bind(&socket_path).unwrap();
    let port = free_port();
    let mut d = Daemon::new(
        dir.path(),
        &config_toml(dir.path(), port, NO_GRAPH, ""),
        port,
    );
    d.restart_with_env(&[
        ("NOTIFY_SOCKET", socket_path.to_str().unwrap()),
        // 400 ms: the daemon must send WATCHDOG=1 about every 200 ms.
        ("WATCHDOG_USEC", "400000"),
    ])
    .await;
    receive_until(&socket, "READY=1", Duration::from_secs(10));
    let before = Instant::now();
    receive_until(&socket, "WATCHDOG=1", Duration::from_secs(5));
    receive_until(&socket, "WATCHDOG=1", Duration::from_secs(5));
    assert!(before.elapsed() < Duration::from_secs(5));
    let status = d.terminate();
    assert!(status.success());
    receive_until(&socket, "STOPPING=1", Duration::from_secs(5));
}
