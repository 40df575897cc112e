//! The media pipeline's file work, filled in by the media-pipeline issue.
//!
//! Where the data goes: a queued job's media is streamed into a spool file here (hashed and counted
//! on the fly, capped at `media.max_bytes`), sniffed and probed for its type and duration, then
//! stored under a content-addressed key in the company's object storage (file://, s3://, gs://,
//! az://) with create-if-absent, and linked through an HMAC-signed `/media/{token}` URL.
