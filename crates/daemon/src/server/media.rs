//! `GET /media/{token}`: the link in the CRM field. A valid token names an object; cloud storage
//! answers with a redirect to a short-lived presigned URL, file storage is streamed from here with
//! Range support so browsers can seek in audio and video. Erased or expired media: 404.

use std::time::Duration;

use axum::body::Body;
use axum::extract::{Path, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use tower::ServiceExt;
use tower_http::services::ServeFile;

use super::AppState;

/// How long a presigned URL handed to a browser stays valid.
const PRESIGNED_TTL: Duration = Duration::from_secs(300);

fn not_found() -> Response {
    (StatusCode::NOT_FOUND, "no such media\n").into_response()
}

pub async fn get_media(
    State(state): State<AppState>,
    Path(token): Path<String>,
    request: Request,
) -> Response {
    let Some(media) = &state.media else {
        return not_found();
    };
    // A bad token and a missing object look the same: links cannot be probed.
    let Some(key) = media.links.verify(&token) else {
        return not_found();
    };
    let storage = &media.storage;
    match storage.exists(&key).await {
        Ok(true) => {}
        Ok(false) => return not_found(),
        Err(e) => {
            tracing::warn!(error = %e, "Cannot reach storage for a media link.");
            return (
                StatusCode::SERVICE_UNAVAILABLE,
                "storage unavailable, try again\n",
            )
                .into_response();
        }
    }
    let file_name = key.rsplit('/').next().unwrap_or("media").to_owned();
    let disposition = HeaderValue::from_str(&format!("inline; filename=\"{file_name}\""))
        .unwrap_or(HeaderValue::from_static("inline"));
    if let Some(signed) = storage.signed_url(&key, PRESIGNED_TTL).await {
        return match signed {
            Ok(url) => Redirect::to(&url).into_response(),
            Err(e) => {
                tracing::warn!(error = %e, "Cannot presign a media link.");
                (
                    StatusCode::SERVICE_UNAVAILABLE,
                    "storage unavailable, try again\n",
                )
                    .into_response()
            }
        };
    }
    let mut response = if let Some(path) = storage.local_path(&key) {
        // ServeFile answers Range, If-Modified-Since and HEAD, and sets Content-Type from the
        // extension, which the sniffed type chose.
        match ServeFile::new(path).oneshot(request).await {
            Ok(r) => r.map(Body::new),
            Err(never) => match never {},
        }
    } else {
        match storage.get(&key).await {
            Ok(Some(bytes)) => (StatusCode::OK, bytes).into_response(),
            Ok(None) => return not_found(),
            Err(e) => {
                tracing::warn!(error = %e, "Cannot read media for a link.");
                return (StatusCode::SERVICE_UNAVAILABLE, "storage unavailable\n").into_response();
            }
        }
    };
    response
        .headers_mut()
        .insert(header::CONTENT_DISPOSITION, disposition);
    response.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("private, max-age=300"),
    );
    response
}
