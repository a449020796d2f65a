//! The web UI: static files from `web/`, embedded at compile time.
//!
//! The entry page is served `no-cache` (revalidated by ETag) with its
//! `/assets/...` URLs rewritten to `/assets/v-<version>/...`, where the
//! version is a digest of every embedded file. Versioned URLs are immutable
//! and cached for a year; ES modules import each other by relative URL, so a
//! page only ever loads modules of one version, and a new binary with
//! different files gets new URLs. Unversioned asset URLs still work,
//! revalidated like the entry page.

use std::sync::LazyLock;

use axum::extract::Path;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use rust_embed::RustEmbed;

use crate::AppState;

#[derive(RustEmbed)]
#[folder = "../../web/"]
struct Assets;

/// Browsers revalidate with the ETag before every use.
const NO_CACHE: &str = "no-cache";
/// A versioned URL never changes content.
const IMMUTABLE: &str = "public, max-age=31536000, immutable";

/// A digest of every embedded file: its name and content hash.
static VERSION: LazyLock<String> = LazyLock::new(|| {
    let mut files: Vec<_> = Assets::iter()
        .filter_map(|path| Assets::get(&path).map(|f| (path, f.metadata.sha256_hash())))
        .collect();
    files.sort();
    // FNV-1a over inputs that are already SHA-256 digests: stable across
    // builds and toolchains, which `DefaultHasher` does not promise.
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for (path, digest) in &files {
        for byte in path.as_bytes().iter().chain([0u8].iter()).chain(digest) {
            hash ^= u64::from(*byte);
            hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    format!("{hash:016x}")
});

/// The entry page with its asset URLs pointing at the current version.
static INDEX: LazyLock<Option<String>> = LazyLock::new(|| {
    let file = Assets::get("index.html")?;
    let html = String::from_utf8_lossy(&file.data);
    Some(html.replace("\"/assets/", &format!("\"/assets/v-{}/", *VERSION)))
});

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/", get(index))
        .route("/assets/{*path}", get(asset))
}

async fn index(headers: HeaderMap) -> Response {
    index_response(&headers)
}

async fn asset(Path(path): Path<String>, headers: HeaderMap) -> Response {
    asset_response(&path, &headers)
}

fn index_response(headers: &HeaderMap) -> Response {
    let Some(html) = INDEX.as_ref() else {
        return not_found("index.html");
    };
    respond(
        html.as_bytes().to_vec(),
        "text/html; charset=utf-8".to_owned(),
        format!("\"{}\"", *VERSION),
        NO_CACHE,
        headers,
    )
}

/// Serves `/assets/{path}`; `v-<version>/` in front of the file name marks a
/// versioned URL, immutable only when it names the version this binary holds
/// (during a rolling upgrade another replica may be asked for its version).
fn asset_response(path: &str, headers: &HeaderMap) -> Response {
    let (immutable, name) = match path
        .strip_prefix("v-")
        .and_then(|rest| rest.split_once('/'))
    {
        Some((version, name)) => (version == VERSION.as_str(), name),
        None => (false, path),
    };
    let Some(file) = Assets::get(name) else {
        return not_found(name);
    };
    let etag = format!(
        "\"{}\"",
        file.metadata
            .sha256_hash()
            .iter()
            .take(16)
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    );
    let mut mime = file.metadata.mimetype().to_owned();
    if mime.starts_with("text/") || mime.ends_with("javascript") || mime.ends_with("+xml") {
        mime.push_str("; charset=utf-8");
    }
    let cache = if immutable { IMMUTABLE } else { NO_CACHE };
    respond(file.data.into_owned(), mime, etag, cache, headers)
}

fn respond(
    body: Vec<u8>,
    content_type: String,
    etag: String,
    cache: &'static str,
    headers: &HeaderMap,
) -> Response {
    let validators = [
        (header::ETAG, etag.clone()),
        (header::CACHE_CONTROL, cache.to_owned()),
    ];
    if headers
        .get(header::IF_NONE_MATCH)
        .is_some_and(|v| v.as_bytes() == etag.as_bytes())
    {
        return (StatusCode::NOT_MODIFIED, validators).into_response();
    }
    ([(header::CONTENT_TYPE, content_type)], validators, body).into_response()
}

fn not_found(name: &str) -> Response {
    crate::api::error::ApiError::NotFound(format!("no asset {name}")).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn header_of(response: &Response, name: header::HeaderName) -> &str {
        response.headers()[name].to_str().unwrap()
    }

    async fn body_of(response: Response) -> String {
        let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .unwrap();
        String::from_utf8(bytes.to_vec()).unwrap()
    }

    #[tokio::test]
    async fn entry_page_is_revalidated_and_points_at_versioned_assets() {
        let response = index_response(&HeaderMap::new());
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(header_of(&response, header::CACHE_CONTROL), "no-cache");
        assert!(header_of(&response, header::CONTENT_TYPE).starts_with("text/html"));
        let html = body_of(response).await;
        let versioned = format!("\"/assets/v-{}/app.js\"", *VERSION);
        assert!(html.contains(&versioned), "{html}");
        assert!(!html.contains("\"/assets/app.js\""));
    }

    #[test]
    fn assets_of_the_current_version_are_immutable() {
        let path = format!("v-{}/app.js", *VERSION);
        let response = asset_response(&path, &HeaderMap::new());
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(header_of(&response, header::CACHE_CONTROL), IMMUTABLE);
        assert!(header_of(&response, header::CONTENT_TYPE).contains("javascript"));
    }

    #[test]
    fn unversioned_or_other_version_assets_are_revalidated() {
        for path in ["app.css", "v-0000000000000000/app.css"] {
            let response = asset_response(path, &HeaderMap::new());
            assert_eq!(response.status(), StatusCode::OK, "{path}");
            assert_eq!(header_of(&response, header::CACHE_CONTROL), "no-cache");
        }
    }

    #[test]
    fn a_matching_etag_gets_304() {
        let first = asset_response("app.css", &HeaderMap::new());
        let mut headers = HeaderMap::new();
        headers.insert(
            header::IF_NONE_MATCH,
            HeaderValue::from_str(header_of(&first, header::ETAG)).unwrap(),
        );
        let second = asset_response("app.css", &headers);
        assert_eq!(second.status(), StatusCode::NOT_MODIFIED);
    }

    #[test]
    fn unknown_assets_are_404() {
        for path in ["nope.js", "../Cargo.toml", "v-1/"] {
            let response = asset_response(path, &HeaderMap::new());
            assert_eq!(response.status(), StatusCode::NOT_FOUND, "{path}");
        }
    }
}
