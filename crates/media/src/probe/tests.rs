//! Every bundled sample inspected: type, extension and duration within 50 ms of the manifest.

use super::*;
use serde_json::Value;

fn samples_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../sandbox/samples")
}

fn manifest() -> Vec<Value> {
    serde_json::from_str(&std::fs::read_to_string(samples_dir().join("manifest.json")).unwrap())
        .unwrap()
}

#[tokio::test]
async fn every_sample_matches_its_manifest() {
    for entry in manifest() {
        let file = entry["file"].as_str().unwrap();
        let declared = entry["mime_type"].as_str().unwrap();
        let got = inspect(&samples_dir().join(file), Some(declared)).await;
        assert_eq!(got.mime_type, canonical_mime(declared), "{file}: {got:?}");
        assert_eq!(got.mime_mismatch, None, "{file}");
        assert_eq!(
            got.extension,
            file.rsplit('.').next().unwrap(),
            "{file}: the sniffed type decides the extension"
        );
        match entry["duration_seconds"].as_f64() {
            Some(want) => {
                let d = got
                    .duration_seconds
                    .unwrap_or_else(|| panic!("{file}: no duration: {:?}", got.duration_error));
                assert!(
                    (d - want).abs() <= 0.050,
                    "{file}: {d} s, manifest {want} s"
                );
            }
            None => assert_eq!(got.duration_seconds, None, "{file}"),
        }
        if let Some(w) = entry["width"].as_u64() {
            assert_eq!(got.width, Some(w as u32), "{file}");
            assert_eq!(
                got.height,
                Some(entry["height"].as_u64().unwrap() as u32),
                "{file}"
            );
        }
    }
}

#[tokio::test]
async fn a_wrong_declared_type_is_recorded_and_the_bytes_decide() {
    let got = inspect(&samples_dir().join("image.png"), Some("image/jpeg")).await;
    assert_eq!(got.mime_type, "image/png");
    assert_eq!(got.extension, "png");
    assert_eq!(
        got.mime_mismatch.as_deref(),
        Some("declared image/jpeg but the bytes are image/png")
    );
}

#[tokio::test]
async fn truncated_and_garbage_files_give_a_reason_not_a_crash() {
    let dir = tempfile::tempdir().unwrap();
    for (file, mime) in [
        ("video.mp4", "video/mp4"),
        ("audio.mp3", "audio/mpeg"),
        ("voice.ogg", "audio/ogg"),
        ("audio.m4a", "audio/mp4"),
    ] {
        let data = std::fs::read(samples_dir().join(file)).unwrap();
        for cut in [12, 100, data.len() / 3] {
            let path = dir.path().join(format!("cut-{cut}-{file}"));
            std::fs::write(&path, &data[..cut]).unwrap();
            let got = inspect(&path, Some(mime)).await;
            // Either a plausible duration from what is there, or an explained absence.
            if got.duration_seconds.is_none() {
                assert!(got.duration_error.is_some(), "{file} cut at {cut}: {got:?}");
            }
        }
    }
    let path = dir.path().join("noise.bin");
    std::fs::write(
        &path,
        (0..5000u32)
            .map(|i| (i * 7919 % 251) as u8)
            .collect::<Vec<_>>(),
    )
    .unwrap();
    let got = inspect(&path, Some("audio/ogg")).await;
    assert_eq!(
        got.mime_type, "audio/ogg",
        "unknown bytes: the declared type stands"
    );
    assert!(
        got.duration_seconds.is_none() && got.duration_error.is_some(),
        "{got:?}"
    );
    let empty = dir.path().join("empty");
    std::fs::write(&empty, b"").unwrap();
    let got = inspect(&empty, None).await;
    assert_eq!(
        (got.mime_type.as_str(), got.extension.as_str()),
        ("application/octet-stream", "bin")
    );
}

#[test]
fn canonical_names() {
    assert_eq!(canonical_mime("audio/ogg; codecs=opus"), "audio/ogg");
    assert_eq!(canonical_mime("Audio/OPUS"), "audio/ogg");
    assert_eq!(canonical_mime("video/3gp"), "video/3gpp");
    assert_eq!(extension_for_mime("application/vnd.ms-excel"), "xls");
    assert_eq!(extension_for_mime("application/x-unknown"), "bin");
}

/// Inputs the fuzzer found to hang a prober: each must now be answered at once, for every type a
/// webhook may declare (the timeout only frees the worker; a hung prober thread would spin on).
#[test]
fn inputs_that_once_hung_a_prober_are_answered() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fuzz_regressions");
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        for declared in [
            None,
            Some("audio/ogg"),
            Some("audio/mpeg"),
            Some("audio/aac"),
            Some("video/mp4"),
        ] {
            let (tx, rx) = std::sync::mpsc::channel();
            let p = path.clone();
            std::thread::spawn(move || {
                let _ = tx.send(inspect_blocking(&p, declared));
            });
            let got = rx.recv_timeout(Duration::from_secs(10));
            assert!(
                got.is_ok(),
                "{} as {declared:?} hangs the prober",
                path.display()
            );
        }
    }
}

/// Every parser reads through the budget: given up, each gives up too, with a reason, instead
/// of reading on (an Ogg through lofty, an MP4 through mp4parse).
#[test]
fn every_parser_reads_within_the_budget() {
    for (file, mime) in [
        ("voice.ogg", "audio/ogg"),
        ("video.mp4", "video/mp4"),
        ("audio.mp3", "audio/mpeg"),
    ] {
        let path = samples_dir().join(file);
        let spent = Budget::new(u64::MAX, std::time::Instant::now() + PROBE_TIMEOUT);
        spent.cancel();
        let got = inspect_within(&path, Some(mime), &spent);
        assert_eq!(got.duration_seconds, None, "{file}");
        let why = got.duration_error.unwrap_or_default();
        assert!(why.contains("given up"), "{file}: {why}");
        let fresh = Budget::new(u64::MAX, std::time::Instant::now() + PROBE_TIMEOUT);
        assert!(
            inspect_within(&path, Some(mime), &fresh)
                .duration_seconds
                .is_some(),
            "{file}"
        );
    }
}
