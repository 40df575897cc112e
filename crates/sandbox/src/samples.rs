//! Real media files bundled with wa2crm (made by `samples/generate.sh`), with their true sizes,
//! digests and durations from `samples/manifest.json`.

use serde::Deserialize;
use wa2crm_core::MediaKind;

/// One bundled file and what is true of it.
#[derive(Debug, Clone, Deserialize)]
pub struct SampleMedia {
    pub file: String,
    pub kind: MediaKind,
    pub mime_type: String,
    pub size: u64,
    /// Lowercase hex.
    pub sha256: String,
    pub duration_seconds: Option<f64>,
    #[serde(default)]
    pub width: Option<u32>,
    #[serde(default)]
    pub height: Option<u32>,
    #[serde(skip)]
    pub bytes: &'static [u8],
}

const MANIFEST: &str = include_str!("../samples/manifest.json");

fn bytes_of(file: &str) -> &'static [u8] {
    match file {
        "voice.ogg" => include_bytes!("../samples/voice.ogg"),
        "voice.amr" => include_bytes!("../samples/voice.amr"),
        "audio.mp3" => include_bytes!("../samples/audio.mp3"),
        "audio.m4a" => include_bytes!("../samples/audio.m4a"),
        "audio.aac" => include_bytes!("../samples/audio.aac"),
        "video.mp4" => include_bytes!("../samples/video.mp4"),
        "video-silent.mp4" => include_bytes!("../samples/video-silent.mp4"),
        "video.3gp" => include_bytes!("../samples/video.3gp"),
        "image.jpg" => include_bytes!("../samples/image.jpg"),
        "image.png" => include_bytes!("../samples/image.png"),
        "sticker.webp" => include_bytes!("../samples/sticker.webp"),
        "document.pdf" => include_bytes!("../samples/document.pdf"),
        _ => &[],
    }
}

/// Every bundled sample, in manifest order.
pub fn all() -> Vec<SampleMedia> {
    // The manifest is compiled in and checked by this crate's tests.
    let mut list: Vec<SampleMedia> =
        serde_json::from_str(MANIFEST).expect("bundled manifest.json is valid");
    for s in &mut list {
        s.bytes = bytes_of(&s.file);
    }
    list
}

#[cfg(test)]
mod tests {
    use sha2::{Digest, Sha256};

    #[test]
    fn manifest_tells_the_truth_about_every_file() {
        let all = super::all();
        assert_eq!(all.len(), 12);
        for s in all {
            assert!(!s.bytes.is_empty(), "{} not bundled", s.file);
            assert_eq!(s.bytes.len() as u64, s.size, "{}", s.file);
            assert_eq!(hex::encode(Sha256::digest(s.bytes)), s.sha256, "{}", s.file);
            assert!(s.size < 100_000, "{}", s.file);
        }
    }
}
