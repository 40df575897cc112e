//! The queue database (with its WAL) and the spool hold customers' names, numbers, captions and
//! files: they are private to wa2crm's user whatever the umask it was started with. The real
//! binary, started under `umask 000`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use wa2crm_e2e::{NO_GRAPH, binary, config_toml, free_port};

fn mode(p: &Path) -> u32 {
    std::fs::metadata(p)
        .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
        .permissions()
        .mode()
        & 0o777
}

#[test]
fn the_database_and_the_spool_are_private_whatever_the_umask() {
    let dir = tempfile::tempdir().unwrap();
    // The queue and the spool in directories wa2crm has to create itself.
    let port = free_port();
    let config = config_toml(dir.path(), port, NO_GRAPH, "")
        .replace("/queue.db", "/state/queue.db")
        .replace("/spool\"", "/work/spool\"");
    let config_path = dir.path().join("wa2crm.toml");
    std::fs::write(&config_path, config).unwrap();
    let mut child = Command::new("sh")
        .args(["-c", "umask 000 && exec \"$0\" run --config \"$1\""])
        .arg(binary())
        .arg(&config_path)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "the daemon did not start");
        assert!(child.try_wait().unwrap().is_none(), "the daemon exited");
        std::thread::sleep(Duration::from_millis(20));
    }
    let state = dir.path().join("state");
    let spool = dir.path().join("work/spool");
    let run = std::fs::read_dir(&spool)
        .unwrap()
        .flatten()
        .find(|e| e.file_name().to_string_lossy().starts_with("run-"))
        .unwrap()
        .path();
    let found = [
        (state.clone(), 0o700),
        (state.join("queue.db"), 0o600),
        (state.join("queue.db-wal"), 0o600),
        (spool.clone(), 0o700),
        (run.clone(), 0o700),
        (run.join(".lock"), 0o600),
    ]
    .into_iter()
    .map(|(p, want)| (p.display().to_string(), mode(&p), want))
    .collect::<Vec<_>>();
    child.kill().unwrap();
    child.wait().unwrap();
    for (path, got, want) in found {
        assert_eq!(got, want, "{path}: {got:o}, wanted {want:o}");
    }
}

/// A database an older version left readable by others is made private when it is opened.
#[test]
fn a_database_readable_by_others_is_made_private() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let config_path = dir.path().join("wa2crm.toml");
    std::fs::write(&config_path, config_toml(dir.path(), port, NO_GRAPH, "")).unwrap();
    let db = dir.path().join("queue.db");
    std::fs::write(&db, b"").unwrap();
    std::fs::set_permissions(&db, std::fs::Permissions::from_mode(0o644)).unwrap();
    let out = Command::new(binary())
        .args(["status", "--config"])
        .arg(&config_path)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    assert_eq!(mode(&db), 0o600);
}
