//! The media pipeline's file work.
//!
//! Where the data goes: a job's download is streamed into the [`spool`] (hashed and counted on
//! the fly, cut off at `media.max_bytes`), [`probe`]d for its real type and duration, then put in
//! the company's object storage by [`store`] under a content-addressed key, and reached through an
//! HMAC-signed [`link`], where [`present`] decides how a browser gets it. With `media.transcode`, [`transcode`] makes an MP3 or MP4 rendition
//! next to it with the system's ffmpeg.

pub mod link;
pub mod present;
pub mod probe;
pub mod spool;
pub mod store;
pub mod transcode;
