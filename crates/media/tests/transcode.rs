//! Renditions with the system's ffmpeg (scripts/test.sh installs it; without it these fail): each
//! bundled audio and video sample becomes an MP3 or an MP4 that probes as such, as long as the
//! original within a frame; a file that is not media fails with ffmpeg's reason.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;
use std::time::Duration;

use wa2crm_core::MediaKind;
use wa2crm_media::probe;
use wa2crm_media::transcode::{Limits, Rendition, TranscodeError, ffmpeg_version, transcode};

fn samples() -> Vec<(PathBuf, MediaKind, String, Option<f64>)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../sandbox/samples");
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("manifest.json")).unwrap()).unwrap();
    manifest
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            let kind: MediaKind = serde_json::from_value(s["kind"].clone()).unwrap();
            (
                dir.join(s["file"].as_str().unwrap()),
                kind,
                s["mime_type"].as_str().unwrap().to_owned(),
                s["duration_seconds"].as_f64(),
            )
        })
        .collect()
}

fn limits(seconds: u64) -> Limits {
    Limits {
        time: Duration::from_secs(seconds),
        max_bytes: 100 * 1024 * 1024,
        max_length: wa2crm_media::transcode::MAX_LENGTH,
    }
}

#[tokio::test]
async fn the_system_ffmpeg_can_make_every_rendition() {
    let version = ffmpeg_version()
        .await
        .expect("ffmpeg with libmp3lame, libx264 and aac must be installed (scripts/test.sh does)");
    assert!(version.starts_with("ffmpeg version"), "{version}");
}

#[tokio::test]
async fn audio_and_video_samples_become_mp3_and_mp4_of_the_same_length() {
    let spool = tempfile::tempdir().unwrap();
    let mut made = 0;
    for (path, kind, mime, duration) in samples() {
        let base_mime = mime.split(';').next().unwrap().trim().to_owned();
        let Some(rendition) = Rendition::for_media(kind, &base_mime) else {
            continue;
        };
        let out = transcode(&path, &base_mime, rendition, spool.path(), limits(120))
            .await
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let i = probe::inspect(&out, Some(rendition.mime_type())).await;
        assert_eq!(i.mime_type, rendition.mime_type(), "{}", path.display());
        assert_eq!(i.mime_mismatch, None, "{}", path.display());
        let (want, got) = (duration.unwrap(), i.duration_seconds.unwrap());
        // The MP3 encoder pads a frame or two; at AMR's 8 kHz an MP3 frame lasts 72 ms.
        assert!(
            (want - got).abs() <= 0.25,
            "{}: {got} vs {want}",
            path.display()
        );
        made += 1;
    }
    assert_eq!(
        made, 7,
        "voice.ogg, voice.amr, audio.m4a, audio.aac and three videos"
    );
    let left: Vec<_> = std::fs::read_dir(spool.path()).unwrap().collect();
    assert!(left.is_empty(), "renditions are deleted with their handle");
}

#[tokio::test]
async fn a_file_that_is_not_media_fails_with_ffmpegs_reason() {
    let spool = tempfile::tempdir().unwrap();
    let bogus = spool.path().join("bogus.ogg");
    std::fs::write(&bogus, b"this is not an Ogg file at all").unwrap();
    let e = transcode(
        &bogus,
        "audio/ogg",
        Rendition::Mp3,
        spool.path(),
        limits(60),
    )
    .await
    .unwrap_err();
    assert!(matches!(e, TranscodeError::Failed(_)), "{e}");
    assert!(!e.to_string().is_empty());
}
