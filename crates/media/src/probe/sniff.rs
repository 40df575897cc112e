//! A file's type from its magic bytes (infer), in the canonical names wa2crm stores.

/// What the bytes say the file is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sniffed {
    pub mime: String,
    pub extension: &'static str,
}

/// Recognizes the file from its first bytes (8 KiB is plenty).
pub fn sniff(head: &[u8]) -> Option<Sniffed> {
    let kind = infer::get(head)?;
    let mime = canonical_mime(kind.mime_type());
    let extension = match mime.as_str() {
        // infer says "mp4" for every ISO-BMFF file; the brand tells M4A and 3GP apart.
        "audio/mp4" => "m4a",
        "video/3gpp" => "3gp",
        "audio/ogg" => "ogg",
        _ => kind.extension(),
    };
    Some(Sniffed { mime, extension })
}

/// One name per type: drops parameters (`; codecs=opus`) and maps the aliases in use.
pub fn canonical_mime(mime: &str) -> String {
    let essence = mime
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    match essence.as_str() {
        "audio/opus" | "application/ogg" => "audio/ogg".into(),
        "audio/m4a" | "audio/x-m4a" => "audio/mp4".into(),
        "audio/mp3" | "audio/x-mp3" => "audio/mpeg".into(),
        "audio/x-aac" | "audio/aacp" => "audio/aac".into(),
        "video/3gp" | "audio/3gpp" => "video/3gpp".into(),
        "image/jpg" => "image/jpeg".into(),
        "audio/amr-nb" | "audio/amr-wb" => "audio/amr".into(),
        _ => essence,
    }
}

/// The extension for a declared type, when the bytes were not recognized.
pub fn extension_for_mime(mime: &str) -> &'static str {
    match canonical_mime(mime).as_str() {
        "audio/ogg" => "ogg",
        "audio/mpeg" => "mp3",
        "audio/mp4" => "m4a",
        "audio/aac" => "aac",
        "audio/amr" => "amr",
        "video/mp4" => "mp4",
        "video/3gpp" => "3gp",
        "image/jpeg" => "jpg",
        "image/png" => "png",
        "image/webp" => "webp",
        "application/pdf" => "pdf",
        "text/plain" => "txt",
        "application/msword" => "doc",
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document" => "docx",
        "application/vnd.ms-excel" => "xls",
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet" => "xlsx",
        "application/vnd.ms-powerpoint" => "ppt",
        "application/vnd.openxmlformats-officedocument.presentationml.presentation" => "pptx",
        _ => "bin",
    }
}
