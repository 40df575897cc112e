//! What a file really is: its type from its own bytes, its duration, its picture size.
//!
//! Probing runs on the blocking pool under a time limit, and a panic in a parser is caught: a
//! truncated or hostile file leaves the duration empty with a reason, it never takes a worker down.
//! The parsers read through a [`budget::BudgetReader`]: when the time limit passes (or they read
//! far more than the file holds) their reads fail, so they stop too, not only the wait for them.

pub mod adts;
pub mod amr;
pub mod budget;
mod sniff;

use std::io::{BufReader, Read, Seek};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use budget::{Budget, BudgetReader};
pub use sniff::{Sniffed, canonical_mime, extension_for_mime, sniff};

/// How long probing one file may take before the worker gives up on the duration.
pub const PROBE_TIMEOUT: Duration = Duration::from_secs(20);

/// The inspect step's findings, stored as the job's `inspect` checkpoint.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Inspection {
    /// The MIME type the bytes show, or the declared one when the bytes are not recognized.
    pub mime_type: String,
    /// The file extension for the stored object (from the sniffed type).
    pub extension: String,
    /// Set when the declared MIME type and the bytes disagree.
    pub mime_mismatch: Option<String>,
    pub duration_seconds: Option<f64>,
    /// Why there is no duration for a type that should have one.
    pub duration_error: Option<String>,
    pub width: Option<u32>,
    pub height: Option<u32>,
}

/// Inspects a spooled file. Never fails: what cannot be learned is recorded as such.
pub async fn inspect(path: &Path, declared_mime: Option<&str>) -> Inspection {
    let path: PathBuf = path.to_owned();
    let declared = declared_mime.map(str::to_owned);
    let len = std::fs::metadata(&path).map_or(0, |m| m.len());
    let budget = Budget::new(
        Budget::for_file(len),
        std::time::Instant::now() + PROBE_TIMEOUT,
    );
    let parser_budget = budget.clone();
    let work = tokio::task::spawn_blocking(move || {
        inspect_within(&path, declared.as_deref(), &parser_budget)
    });
    // Dropped (the job cancelled) or timed out: the parser's next read fails and it returns.
    let _give_up = CancelOnDrop(budget);
    match tokio::time::timeout(PROBE_TIMEOUT, work).await {
        Ok(Ok(inspection)) => inspection,
        Ok(Err(join)) => Inspection {
            mime_type: declared_mime
                .unwrap_or("application/octet-stream")
                .to_owned(),
            extension: "bin".into(),
            duration_error: Some(format!("the prober failed on this file: {join}")),
            ..Inspection::default()
        },
        Err(_) => Inspection {
            mime_type: declared_mime
                .unwrap_or("application/octet-stream")
                .to_owned(),
            extension: "bin".into(),
            duration_error: Some(format!(
                "probing took longer than {}s; the file may be malformed",
                PROBE_TIMEOUT.as_secs()
            )),
            ..Inspection::default()
        },
    }
}

/// Tells the parser to stop when the waiting side is done with it, whichever way.
struct CancelOnDrop(Budget);

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        self.0.cancel();
    }
}

/// The same, synchronously (the caller owns the thread), with a budget of [`PROBE_TIMEOUT`].
pub fn inspect_blocking(path: &Path, declared_mime: Option<&str>) -> Inspection {
    let len = std::fs::metadata(path).map_or(0, |m| m.len());
    let budget = Budget::new(
        Budget::for_file(len),
        std::time::Instant::now() + PROBE_TIMEOUT,
    );
    inspect_within(path, declared_mime, &budget)
}

/// The same, the parsers reading within `budget`.
pub fn inspect_within(path: &Path, declared_mime: Option<&str>, budget: &Budget) -> Inspection {
    let mut head = Vec::with_capacity(8192);
    let opened = std::fs::File::open(path).and_then(|f| f.take(8192).read_to_end(&mut head));
    if let Err(e) = opened {
        return Inspection {
            mime_type: declared_mime
                .unwrap_or("application/octet-stream")
                .to_owned(),
            extension: "bin".into(),
            duration_error: Some(format!("cannot read the spooled file: {e}")),
            ..Inspection::default()
        };
    }
    let declared = declared_mime.map(canonical_mime);
    let sniffed = sniff(&head);
    let (mime_type, extension) = match (&sniffed, &declared) {
        (Some(s), _) => (s.mime.to_owned(), s.extension.to_owned()),
        (None, Some(d)) => (d.clone(), extension_for_mime(d).to_owned()),
        (None, None) => ("application/octet-stream".to_owned(), "bin".to_owned()),
    };
    let mime_mismatch = match (&sniffed, &declared) {
        (Some(s), Some(d)) if &s.mime != d => Some(format!(
            "declared {} but the bytes are {}",
            declared_mime.unwrap_or_default(),
            s.mime
        )),
        _ => None,
    };
    let mut out = Inspection {
        mime_type,
        extension,
        mime_mismatch,
        ..Inspection::default()
    };
    match duration_of(path, &out.mime_type, budget) {
        Ok(Some(d)) => out.duration_seconds = Some(round_ms(d)),
        Ok(None) => {}
        // A parser that ran out of budget says only that it failed; the budget says why.
        Err(e) => out.duration_error = Some(budget.spent().unwrap_or(e)),
    }
    if out.mime_type.starts_with("image/")
        && let Ok(size) = imagesize::blob_size(&head)
    {
        out.width = u32::try_from(size.width).ok();
        out.height = u32::try_from(size.height).ok();
    }
    out
}

fn round_ms(seconds: f64) -> f64 {
    (seconds * 1000.0).round() / 1000.0
}

/// `Ok(None)`: this type has no duration (images, documents).
fn duration_of(path: &Path, mime: &str, budget: &Budget) -> Result<Option<f64>, String> {
    match mime {
        "audio/ogg" | "audio/mpeg" | "audio/x-flac" | "audio/x-wav" => {
            lofty_duration(path, mime, budget).map(Some)
        }
        "audio/aac" => {
            let data = std::fs::read(path).map_err(|e| e.to_string())?;
            adts::duration_seconds(&data)
                .map(Some)
                .ok_or_else(|| "no ADTS frame at the start of the AAC file".into())
        }
        "audio/mp4" | "video/mp4" | "video/3gpp" | "video/quicktime" => {
            mp4_duration(path, budget).map(Some)
        }
        "audio/amr" => {
            let data = std::fs::read(path).map_err(|e| e.to_string())?;
            match amr::walk(&data) {
                Some(info) if info.frames > 0 => Ok(Some(info.duration_seconds())),
                Some(_) => Err("AMR file without a single complete frame".into()),
                None => Err("not an AMR file".into()),
            }
        }
        m if m.starts_with("audio/") || m.starts_with("video/") => {
            Err(format!("no duration prober for {m}"))
        }
        _ => Ok(None),
    }
}

/// The file types lofty reads a MIME type as. Never lofty's own guess: on 51 bytes starting with
/// an ADTS sync word it guesses AAC, and its AAC reader then never returns (found by the
/// `probe_media` fuzz target). AAC goes to [`adts`] instead.
fn lofty_types(mime: &str) -> &'static [lofty::file::FileType] {
    use lofty::file::FileType;
    match mime {
        "audio/ogg" => &[FileType::Opus, FileType::Vorbis, FileType::Speex],
        "audio/mpeg" => &[FileType::Mpeg],
        "audio/x-flac" => &[FileType::Flac],
        "audio/x-wav" => &[FileType::Wav],
        _ => &[],
    }
}

fn lofty_duration(path: &Path, mime: &str, budget: &Budget) -> Result<f64, String> {
    use lofty::config::ParseOptions;
    use lofty::file::AudioFile;
    use lofty::probe::Probe;
    let mut last = format!("no reader for {mime}");
    for &file_type in lofty_types(mime) {
        let file = std::fs::File::open(path).map_err(|e| e.to_string())?;
        let file = BudgetReader::new(file, budget.clone());
        let read = Probe::with_file_type(BufReader::new(file), file_type)
            .options(ParseOptions::new().read_properties(true).read_tags(false))
            .read();
        match read {
            Ok(tagged) => {
                let d = tagged.properties().duration();
                return if d.is_zero() {
                    Err("the audio reports no duration".into())
                } else {
                    Ok(d.as_secs_f64())
                };
            }
            Err(e) => last = format!("cannot read the audio: {e}"),
        }
    }
    Err(last)
}

/// The largest `moov` box read into memory; real ones are kilobytes to a few megabytes.
const MAX_MOOV: u64 = 64 * 1024 * 1024;

/// MP4/M4A/3GP: the longest track, so video without an audio track has a duration too.
///
/// Only the `ftyp` and `moov` boxes are handed to mp4parse: the top-level boxes are walked with
/// seeks, so the media data (nearly all of a large video) is never read.
fn mp4_duration(path: &Path, budget: &Budget) -> Result<f64, String> {
    let mut file = std::fs::File::open(path).map_err(|e| e.to_string())?;
    let len = file.metadata().map_err(|e| e.to_string())?.len();
    let mut kept = Vec::new();
    let mut has_moov = false;
    let mut pos = 0u64;
    while pos + 8 <= len {
        let mut header = [0u8; 16];
        file.seek(std::io::SeekFrom::Start(pos))
            .and_then(|_| file.read_exact(&mut header[..8]))
            .map_err(|e| e.to_string())?;
        let small = u64::from(u32::from_be_bytes([
            header[0], header[1], header[2], header[3],
        ]));
        let kind = [header[4], header[5], header[6], header[7]];
        let (size, header_len) = match small {
            1 => {
                file.read_exact(&mut header[8..16])
                    .map_err(|e| e.to_string())?;
                let mut large = [0u8; 8];
                large.copy_from_slice(&header[8..16]);
                (u64::from_be_bytes(large), 16)
            }
            0 => (len - pos, 8),
            n => (n, 8),
        };
        if size < header_len || pos.saturating_add(size) > len {
            break; // truncated: parse what is complete
        }
        if &kind == b"ftyp" || &kind == b"moov" {
            if size > MAX_MOOV {
                return Err(format!(
                    "the MP4's {} box is {size} bytes, too large to read",
                    String::from_utf8_lossy(&kind)
                ));
            }
            let mut buf = vec![0u8; usize::try_from(size).map_err(|e| e.to_string())?];
            file.seek(std::io::SeekFrom::Start(pos))
                .and_then(|_| file.read_exact(&mut buf))
                .map_err(|e| e.to_string())?;
            kept.extend_from_slice(&buf);
            has_moov |= &kind == b"moov";
        }
        pos += size;
    }
    if !has_moov {
        return Err("the MP4 has no complete moov box (truncated, or not an MP4)".into());
    }
    let boxes = BudgetReader::new(std::io::Cursor::new(kept), budget.clone());
    let context = mp4parse::read_mp4(&mut std::io::BufReader::new(boxes))
        .map_err(|e| format!("cannot read the MP4: {e:?}"))?;
    let longest = context
        .tracks
        .iter()
        .filter_map(|t| {
            let duration = t.duration?.0 as f64;
            let scale = t.timescale?.0 as f64;
            (scale > 0.0).then_some(duration / scale)
        })
        .fold(None, |acc: Option<f64>, d| {
            Some(acc.map_or(d, |a| a.max(d)))
        });
    longest.ok_or_else(|| "the MP4 has no track with a duration".into())
}

#[cfg(test)]
mod tests;
