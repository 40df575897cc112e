//! Normalized renditions (`media.transcode`): WhatsApp's voice notes are Ogg Opus and AMR, which
//! some browsers and CRM previews cannot play, and its videos come in whatever the phone wrote.
//! Next to the original, an MP3 (audio) or an MP4 with H.264 and AAC (video) is made with the
//! system's ffmpeg, run as a child process with a time limit and killed with its job.
//!
//! The input is a customer's file, so ffmpeg is held tight: it may open local files only
//! (`-protocol_whitelist file`), only through the one demuxer that matches the type wa2crm
//! sniffed (`-f` and `-format_whitelist`: no playlist, concat, DASH or image-sequence demuxer can
//! open another file or a URL; a type without a demuxer here is refused), MOV's external data
//! references stay off, the output is capped in size (`-fs`, then checked against
//! `media.max_bytes`) and length (`-t`), and the child runs under `prlimit` with CPU-time,
//! address-space, file-size and open-file limits.

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

/// The one demuxer ffmpeg may use for a sniffed type; `None`: not transcoded.
fn demuxer(mime: &str) -> Option<&'static str> {
    Some(match mime {
        "audio/ogg" => "ogg",
        "audio/mpeg" => "mp3",
        "audio/aac" => "aac",
        "audio/amr" => "amr",
        "audio/x-wav" | "audio/wav" => "wav",
        "audio/x-flac" | "audio/flac" => "flac",
        "audio/mp4" | "video/mp4" | "video/3gpp" | "video/quicktime" => "mov",
        "video/webm" | "video/x-matroska" | "audio/webm" => "matroska",
        _ => return None,
    })
}

/// What one ffmpeg run may take.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Wall-clock time; the child is killed after it.
    pub time: Duration,
    /// The rendition's size (`media.max_bytes`): larger is refused.
    pub max_bytes: u64,
    /// The rendition's length: ffmpeg stops writing after it.
    pub max_length: Duration,
}

/// The rendition of a media longer than this is not made (`-t` caps what a lying file claims).
pub const MAX_LENGTH: Duration = Duration::from_secs(3 * 3600);
/// Address space for ffmpeg: H.264 of a phone's 4K video at `veryfast` needs well under this.
const MAX_ADDRESS_SPACE: u64 = 2 * 1024 * 1024 * 1024;
/// How far past `-fs` the kernel lets ffmpeg write before it is stopped.
const FSIZE_MARGIN: u64 = 64 * 1024 * 1024;
/// Threads ffmpeg uses: with one run per core at a time, two keep a core busy and bound CPU time.
const THREADS: u64 = 2;

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
    /// Not run, or its output not kept: the input's type is not transcoded, or the rendition
    /// would be larger than `media.max_bytes`.
    #[error("no rendition: {0}")]
    Refused(String),
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
    // ffmpeg runs under prlimit (util-linux), which sets its resource limits.
    Command::new("prlimit")
        .arg("--version")
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .output()
        .await
        .map_err(|e| {
            TranscodeError::Unavailable(format!("prlimit (util-linux) is not available: {e}"))
        })?;
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

/// The ffmpeg command line for `input` of the sniffed type `mime`, under `limits`, run through
/// `prlimit`.
fn command(
    input: &Path,
    mime: &str,
    rendition: Rendition,
    out: &Path,
    limits: Limits,
) -> Result<Command, TranscodeError> {
    let demuxer = demuxer(mime).ok_or_else(|| {
        TranscodeError::Refused(format!("{mime} is not a type ffmpeg is allowed to read"))
    })?;
    let cpu_seconds = limits.time.as_secs().max(1) * THREADS;
    let mut c = Command::new("prlimit");
    c.arg(format!("--cpu={cpu_seconds}"))
        .arg(format!("--as={MAX_ADDRESS_SPACE}"))
        // A backstop past `-fs`, which may overshoot by a packet: a rendition that reaches the
        // cap is refused below, not cut off unnoticed.
        .arg(format!(
            "--fsize={}",
            limits.max_bytes.saturating_add(FSIZE_MARGIN)
        ))
        .arg("--nofile=64")
        .args(["--", "ffmpeg"])
        .args(["-nostdin", "-hide_banner", "-loglevel", "error", "-y"])
        .args(["-protocol_whitelist", "file", "-format_whitelist", demuxer])
        .args(["-f", demuxer]);
    if demuxer == "mov" {
        c.args(["-enable_drefs", "0"]);
    }
    let mut path = std::ffi::OsString::from("file:");
    path.push(input.as_os_str());
    c.arg("-i")
        .arg(path)
        .args(["-threads", &THREADS.to_string()])
        .args(["-t", &limits.max_length.as_secs().to_string()])
        .args(["-fs", &limits.max_bytes.to_string()])
        .args(rendition.codec_args());
    let mut target = std::ffi::OsString::from("file:");
    target.push(out.as_os_str());
    c.arg(target);
    Ok(c)
}

/// Converts `input`, whose bytes sniffed as `mime`, into a new file in `dir` (deleted when the
/// returned path is dropped).
pub async fn transcode(
    input: &Path,
    mime: &str,
    rendition: Rendition,
    dir: &Path,
    limits: Limits,
) -> Result<TempPath, TranscodeError> {
    // The semaphore is never closed: acquire cannot fail.
    let _slot = slots()
        .acquire()
        .await
        .map_err(|e| TranscodeError::Io(std::io::Error::other(e)))?;
    let out = tempfile::Builder::new()
        .prefix("tr-")
        .suffix(&format!(".{}", rendition.extension()))
        .permissions(std::os::unix::fs::PermissionsExt::from_mode(0o600))
        .tempfile_in(dir)?
        .into_temp_path();
    let child = command(input, mime, rendition, &out, limits)?
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => TranscodeError::Unavailable(e.to_string()),
            _ => TranscodeError::Io(e),
        })?;
    let output = tokio::time::timeout(limits.time, child.wait_with_output())
        .await
        .map_err(|_| TranscodeError::TimedOut(limits.time))??;
    if !output.status.success() {
        let why = String::from_utf8_lossy(&output.stderr);
        let why = match why.lines().last() {
            Some(line) => line.trim().chars().take(300).collect(),
            None => format!(
                "ffmpeg ended without a reason ({}): a limit stopped it",
                output.status
            ),
        };
        return Err(TranscodeError::Failed(why));
    }
    // `-fs` stops at the cap and exits 0: a rendition that reached it is cut short.
    let size = std::fs::metadata(&out)?.len();
    if size >= limits.max_bytes {
        return Err(TranscodeError::Refused(format!(
            "the rendition would be larger than media.max_bytes ({} bytes)",
            limits.max_bytes
        )));
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

    fn sample(file: &str) -> std::path::PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../sandbox/samples")
            .join(file)
    }

    fn limits() -> Limits {
        Limits {
            time: Duration::from_secs(120),
            max_bytes: 50 * 1024 * 1024,
            max_length: MAX_LENGTH,
        }
    }

    /// A playlist named like an MP3 that points at another file: unhardened ffmpeg follows it
    /// and converts the other file; here only the MP3 demuxer may read it, and it fails.
    #[tokio::test]
    async fn a_playlist_disguised_as_audio_never_opens_another_file() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::copy(sample("audio.mp3"), dir.path().join("secret.mp3")).unwrap();
        let playlist = dir.path().join("voice.mp3");
        std::fs::write(
            &playlist,
            "#EXTM3U\n#EXT-X-TARGETDURATION:10\n#EXTINF:10,\nsecret.mp3\n#EXT-X-ENDLIST\n",
        )
        .unwrap();
        let as_mp3 = transcode(
            &playlist,
            "audio/mpeg",
            Rendition::Mp3,
            dir.path(),
            limits(),
        )
        .await;
        assert!(
            matches!(as_mp3, Err(TranscodeError::Failed(_))),
            "{as_mp3:?}"
        );
        let concat = dir.path().join("list.ogg");
        std::fs::write(&concat, "ffconcat version 1.0\nfile secret.mp3\n").unwrap();
        let as_ogg = transcode(&concat, "audio/ogg", Rendition::Mp3, dir.path(), limits()).await;
        assert!(
            matches!(as_ogg, Err(TranscodeError::Failed(_))),
            "{as_ogg:?}"
        );
        for mime in [
            "application/vnd.apple.mpegurl",
            "text/plain",
            "application/dash+xml",
        ] {
            let refused = transcode(&playlist, mime, Rendition::Mp3, dir.path(), limits()).await;
            assert!(
                matches!(refused, Err(TranscodeError::Refused(_))),
                "{mime}: {refused:?}"
            );
        }
    }

    /// A long silent file (a few kilobytes that decode to hours) is cut at the length cap, and
    /// a rendition over the size cap is refused rather than stored cut short.
    #[tokio::test]
    async fn a_long_silent_file_is_cut_at_the_length_cap_and_the_size_cap_refuses() {
        let dir = tempfile::tempdir().unwrap();
        let silent = dir.path().join("silence.ogg");
        let made = std::process::Command::new("ffmpeg")
            .args([
                "-nostdin",
                "-hide_banner",
                "-loglevel",
                "error",
                "-f",
                "lavfi",
            ])
            .args(["-i", "anullsrc=r=8000:cl=mono", "-t", "600"])
            .args(["-c:a", "libopus", "-b:a", "6k"])
            .arg(&silent)
            .status()
            .unwrap();
        assert!(made.success());
        let capped = Limits {
            max_length: Duration::from_secs(30),
            ..limits()
        };
        let out = transcode(&silent, "audio/ogg", Rendition::Mp3, dir.path(), capped)
            .await
            .unwrap();
        let probe = std::process::Command::new("ffprobe")
            .args([
                "-v",
                "error",
                "-show_entries",
                "format=duration",
                "-of",
                "csv=p=0",
            ])
            .arg(&*out)
            .output()
            .unwrap();
        let seconds: f64 = String::from_utf8_lossy(&probe.stdout)
            .trim()
            .parse()
            .unwrap();
        assert!(seconds <= 30.5, "{seconds} s: the length cap did not hold");
        let tiny = Limits {
            max_bytes: 10_000,
            ..limits()
        };
        let refused = transcode(&silent, "audio/ogg", Rendition::Mp3, dir.path(), tiny).await;
        assert!(
            matches!(refused, Err(TranscodeError::Refused(ref m)) if m.contains("media.max_bytes")),
            "{refused:?}"
        );
    }
}
