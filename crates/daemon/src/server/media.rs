//! `GET /media/{token}`: the link in the CRM field. A valid token names one media, resolved
//! through the queue (an erased or expired media is gone even when its file is kept for someone
//! else), or, for links made before those, an object; how a browser
//! gets it follows [`Presentation`]: audio, video, raster images and PDF inline under their own
//! type, anything else as a download of `application/octet-stream`, and every answer with
//! `X-Content-Type-Options: nosniff` and `Content-Security-Policy: sandbox`, so a customer's file
//! never runs as a page on this origin. Cloud storage answers an inline type with a redirect to a
//! short-lived presigned URL (the object was stored with the same type and disposition); a
//! download is streamed from here, so an object stored before those attributes were set cannot
//! be served under its old type. File storage is streamed from here with Range support, so
//! browsers can seek in audio and video. Erased or expired media: 404.

use std::time::Duration;

use axum::body::Body;
use axum::extract::{Path, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use tower::ServiceExt;
use tower_http::services::ServeFile;
use wa2crm_media::link::Linked;
use wa2crm_media::present::{NOSNIFF, Presentation, SANDBOX};

use super::AppState;

/// How long a presigned URL handed to a browser stays valid.
const PRESIGNED_TTL: Duration = Duration::from_secs(300);

fn not_found() -> Response {
    (StatusCode::NOT_FOUND, "no such media\n").into_response()
}

fn unavailable(what: &str, e: &wa2crm_core::Error) -> Response {
    tracing::warn!(error = %e, "Cannot {what} for a media link.");
    (
        StatusCode::SERVICE_UNAVAILABLE,
        "storage unavailable, try again\n",
    )
        .into_response()
}

/// The headers every answer with a customer's file carries.
fn present(headers: &mut HeaderMap, shown: &Presentation) {
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(shown.content_type),
    );
    if let Ok(v) = HeaderValue::from_str(&shown.disposition()) {
        headers.insert(header::CONTENT_DISPOSITION, v);
    }
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static(NOSNIFF),
    );
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(SANDBOX),
    );
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("private, max-age=300"),
    );
}

pub async fn get_media(
    State(state): State<AppState>,
    Path(token): Path<String>,
    request: Request,
) -> Response {
    let Some(media) = &state.media else {
        return not_found();
    };
    // A bad token, an erased or expired media and a missing object all look the same: links
    // cannot be probed.
    let key = match media.links.verify(&token) {
        None => return not_found(),
        Some(Linked::Object(key)) => key,
        Some(Linked::Media { job, rendition }) => match state.store.get(job).await {
            Ok(Some(job)) if job.removed_at_ms.is_none() => {
                let key = if rendition {
                    crate::removal::rendition_of(&job)
                } else {
                    crate::removal::object_of(&job)
                };
                match key {
                    Some(key) => key,
                    None => return not_found(),
                }
            }
            Ok(_) => return not_found(),
            Err(e) => {
                tracing::warn!(error = %e, "Cannot read the queue for a media link.");
                return (StatusCode::SERVICE_UNAVAILABLE, "try again\n").into_response();
            }
        },
    };
    serve_object(&media.storage, &key, request).await
}

/// One stored object as a browser gets it (see the module's description): also what the
/// console's player reads, behind its login.
pub async fn serve_object(
    storage: &wa2crm_media::store::Storage,
    key: &str,
    request: Request,
) -> Response {
    let key = key.to_owned();
    match storage.exists(&key).await {
        Ok(true) => {}
        Ok(false) => return not_found(),
        Err(e) => return unavailable("reach storage", &e),
    }
    let shown = Presentation::of(&key);
    if shown.inline
        && let Some(signed) = storage.signed_url(&key, PRESIGNED_TTL).await
    {
        return match signed {
            Ok(url) => {
                let mut r = Redirect::to(&url).into_response();
                r.headers_mut().insert(
                    header::X_CONTENT_TYPE_OPTIONS,
                    HeaderValue::from_static(NOSNIFF),
                );
                r
            }
            Err(e) => unavailable("presign", &e),
        };
    }
    let mut response = if let Some(path) = storage.local_path(&key) {
        // ServeFile answers Range, If-Modified-Since and HEAD; its Content-Type (from the
        // extension) is replaced below.
        match ServeFile::new(path).oneshot(request).await {
            Ok(r) => r.map(Body::new),
            Err(never) => match never {},
        }
    } else {
        match storage.get_stream(&key).await {
            Ok(Some((size, stream))) => {
                let mut r = Body::from_stream(stream).into_response();
                r.headers_mut()
                    .insert(header::CONTENT_LENGTH, HeaderValue::from(size));
                r
            }
            Ok(None) => return not_found(),
            Err(e) => return unavailable("read storage", &e),
        }
    };
    present(response.headers_mut(), &shown);
    response
}
