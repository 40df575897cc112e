//! Normalized renditions (`media.transcode`): WhatsApp's voice notes are Ogg Opus and AMR, which
//! some browsers and CRM previews cannot play, and its videos come in whatever the phone wrote.
//! Next to the original, an MP3 (audio) or an MP4 with H.264 and AAC (video) is made with the
//! system's ffmpeg, run as a child process with a time limit and killed with its job.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use tempfile::TempPath;
use tokio::process::Command;
use wa2crm_core::MediaKind;

/// What a media is made into.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rendition {
    Mp3,
    Mp4,
}

impl Rendition {
    /// The rendition a media gets: audio that is not MP3 already becomes MP3, video becomes MP4
    /// (H.264/AAC, whatever it was: phones write HEVC and 3GP too); images and documents none.
    pub fn for_media(kind: MediaKind, mime_type: &str) -> Option<Rendition> {
        match kind {
            MediaKind::Audio | MediaKind::Voice if mime_type != "audio/mpeg" => {
                Some(Rendition::Mp3)
            }
            MediaKind::Video => Some(Rendition::Mp4),
            _ => None,
        }
    }

    pub fn extension(self) -> &'static str {
        match self {
            Rendition::Mp3 => "mp3",
            Rendition::Mp4 => "mp4",
        }
    }

    pub fn mime_type(self) -> &'static str {
        match self {
            Rendition::Mp3 => "audio/mpeg",
            Rendition::Mp4 => "video/mp4",
        }
    }

    fn codec_args(self) -> &'static [&'static str] {
        match self {
            Rendition::Mp3 => &["-vn", "-c:a", "libmp3lame", "-q:a", "4", "-f", "mp3"],
            Rendition::Mp4 => &[
                "-c:v",
                "libx264",
                "-preset",
                "veryfast",
                "-crf",
                "23",
                "-pix_fmt",
                "yuv420p",
                // Even dimensions: H.264 in 4:2:0 refuses odd ones, which phones produce.
                "-vf",
                "scale=trunc(iw/2)*2:trunc(ih/2)*2",
                "-c:a",
                "aac",
                "-b:a",
                "128k",
                "-movflags",
                "+faststart",
                "-f",
                "mp4",
            ],
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum TranscodeError {
    /// ffmpeg is not installed (or not on PATH): `wa2crm check` says so.
    #[error("ffmpeg is not available: {0}")]
    Unavailable(String),
    /// The file could not be converted; the original is kept and delivered as it is.
    #[error("ffmpeg could not convert the file: {0}")]
    Failed(String),
    #[error("ffmpeg took longer than {0:?}")]
    TimedOut(Duration),
    #[error("transcoding: {0}")]
    Io(#[from] std::io::Error),
}

/// The version line of the ffmpeg on PATH, or why there is none usable (no MP3 or H.264 encoder).
pub async fn ffmpeg_version() -> Result<String, TranscodeError> {
    let run = |args: &'static [&'static str]| async move {
        Command::new("ffmpeg")
            .args(args)
            .stdin(Stdio::null())
            .kill_on_drop(true)
            .output()
            .await
            .map_err(|e| TranscodeError::Unavailable(e.to_string()))
    };
    let version = run(&["-hide_banner", "-version"]).await?;
    let encoders = run(&["-hide_banner", "-encoders"]).await?;
    let listed = String::from_utf8_lossy(&encoders.stdout);
    for needed in ["libmp3lame", "libx264", " aac "] {
        if !listed.contains(needed) {
            return Err(TranscodeError::Unavailable(format!(
                "this ffmpeg has no {} encoder",
                needed.trim()
            )));
        }
    }
    Ok(String::from_utf8_lossy(&version.stdout)
        .lines()
        .next()
        .unwrap_or("ffmpeg")
        .to_owned())
}

/// ffmpeg runs at most once per core at a time: a burst of videos must not starve the intake
/// and the other workers of CPU. (Waiting for a slot counts against no limit.)
fn slots() -> &'static tokio::sync::Semaphore {
    static SLOTS: std::sync::OnceLock<tokio::sync::Semaphore> = std::sync::OnceLock::new();
    SLOTS.get_or_init(|| {
        tokio::sync::Semaphore::new(std::thread::available_parallelism().map_or(1, |n| n.get()))
    })
}

/// Converts `input` into a new file in `dir` (deleted when the returned path is dropped).
pub async fn transcode(
    input: &Path,
    rendition: Rendition,
    dir: &Path,
    limit: Duration,
) -> Result<TempPath, TranscodeError> {
    // The semaphore is never closed: acquire cannot fail.
    let _slot = slots()
        .acquire()
        .await
        .map_err(|e| TranscodeError::Io(std::io::Error::other(e)))?;
    let out = tempfile::Builder::new()
        .prefix("tr-")
        .suffix(&format!(".{}", rendition.extension()))
        .tempfile_in(dir)?
        .into_temp_path();
    let child = Command::new("ffmpeg")
        .args(["-nostdin", "-hide_banner", "-loglevel", "error", "-y", "-i"])
        .arg(input)
        .args(rendition.codec_args())
        .arg(&*out)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => TranscodeError::Unavailable(e.to_string()),
            _ => TranscodeError::Io(e),
        })?;
    let output = tokio::time::timeout(limit, child.wait_with_output())
        .await
        .map_err(|_| TranscodeError::TimedOut(limit))??;
    if !output.status.success() {
        let why = String::from_utf8_lossy(&output.stderr);
        let why = why.lines().last().unwrap_or("no reason given").trim();
        return Err(TranscodeError::Failed(why.chars().take(300).collect()));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn audio_becomes_mp3_video_mp4_and_the_rest_stays() {
        use MediaKind::*;
        assert_eq!(
            Rendition::for_media(Voice, "audio/ogg"),
            Some(Rendition::Mp3)
        );
        assert_eq!(
            Rendition::for_media(Audio, "audio/amr"),
            Some(Rendition::Mp3)
        );
        assert_eq!(
            Rendition::for_media(Audio, "audio/mpeg"),
            None,
            "already MP3"
        );
        assert_eq!(
            Rendition::for_media(Video, "video/3gpp"),
            Some(Rendition::Mp4)
        );
        assert_eq!(Rendition::for_media(Image, "image/jpeg"), None);
        assert_eq!(Rendition::for_media(Document, "application/pdf"), None);
        assert_eq!(Rendition::for_media(Sticker, "image/webp"), None);
    }
}
