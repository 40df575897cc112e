//! How a stored file is handed to a browser, decided by its key's extension (which wa2crm chose
//! from the sniffed type): only types that play or display without running anything are shown
//! inline under their own type; everything else — HTML, SVG, XML, scripts, office files, a file
//! whose type is unknown — goes as a download of `application/octet-stream`. A customer's file
//! must never run as a page on wa2crm's origin.

/// Every answer carrying a customer's file also sends these: no type sniffing, and a sandbox
/// that leaves the document no script, no forms, no plugins and an opaque origin, whatever it is.
pub const NOSNIFF: &str = "nosniff";
pub const SANDBOX: &str = "sandbox";

/// The headers that present one stored object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Presentation {
    pub content_type: &'static str,
    /// Shown in the browser (`inline`) or downloaded (`attachment`).
    pub inline: bool,
    /// The object's own name, `{sha256}.{ext}`: only hex, dots and the extension.
    pub file_name: String,
}

/// The types shown inline: audio, video, raster images and PDF.
fn inline_type(extension: &str) -> Option<&'static str> {
    Some(match extension {
        "ogg" | "opus" => "audio/ogg",
        "mp3" => "audio/mpeg",
        "m4a" => "audio/mp4",
        "aac" => "audio/aac",
        "amr" => "audio/amr",
        "wav" => "audio/wav",
        "flac" => "audio/flac",
        "mp4" => "video/mp4",
        "3gp" => "video/3gpp",
        "webm" => "video/webm",
        "mov" => "video/quicktime",
        "jpg" | "jpeg" => "image/jpeg",
        "png" => "image/png",
        "gif" => "image/gif",
        "webp" => "image/webp",
        "bmp" => "image/bmp",
        "pdf" => "application/pdf",
        _ => return None,
    })
}

impl Presentation {
    /// How the object at `key` is presented.
    pub fn of(key: &str) -> Presentation {
        let file_name: String = key
            .rsplit('/')
            .next()
            .unwrap_or("media")
            .chars()
            .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'))
            .collect();
        let extension = file_name
            .rsplit_once('.')
            .map(|(_, e)| e.to_ascii_lowercase())
            .unwrap_or_default();
        match inline_type(&extension) {
            Some(content_type) => Presentation {
                content_type,
                inline: true,
                file_name,
            },
            None => Presentation {
                content_type: "application/octet-stream",
                inline: false,
                file_name,
            },
        }
    }

    /// The `Content-Disposition` value.
    pub fn disposition(&self) -> String {
        format!(
            "{}; filename=\"{}\"",
            if self.inline { "inline" } else { "attachment" },
            self.file_name
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn media_plays_inline_and_everything_else_downloads() {
        for (key, content_type) in [
            ("2026/11/22/ab.ogg", "audio/ogg"),
            ("2026/11/22/ab.r.mp3", "audio/mpeg"),
            ("2026/11/22/ab.mp4", "video/mp4"),
            ("2026/11/22/ab.jpg", "image/jpeg"),
            ("2026/11/22/ab.PDF", "application/pdf"),
        ] {
            let p = Presentation::of(key);
            assert_eq!((p.content_type, p.inline), (content_type, true), "{key}");
        }
        for key in [
            "2026/11/22/ab.html",
            "2026/11/22/ab.htm",
            "2026/11/22/ab.svg",
            "2026/11/22/ab.xml",
            "2026/11/22/ab.xhtml",
            "2026/11/22/ab.js",
            "2026/11/22/ab.txt",
            "2026/11/22/ab.docx",
            "2026/11/22/ab.bin",
            "2026/11/22/ab",
        ] {
            let p = Presentation::of(key);
            assert_eq!(
                (p.content_type, p.inline),
                ("application/octet-stream", false),
                "{key}"
            );
            assert!(p.disposition().starts_with("attachment; "), "{key}");
        }
        let odd = Presentation::of("x/ab\"; evil=\r\n.ogg");
        assert_eq!(odd.file_name, "abevil.ogg");
        assert_eq!(odd.disposition(), "inline; filename=\"abevil.ogg\"");
    }
}
