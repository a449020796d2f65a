//! Files: upload to a room, download by its members.

use axum::body::Body;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use futures::TryStreamExt;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::error::{ApiError, ErrorBody};
use super::extract::{CurrentUser, Path, Query};
use crate::auth::access::RoomAccess;
use crate::domain::{FileRef, RoomName};
use crate::files::{FileError, FileName};
use crate::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/rooms/{room}/files", post(upload))
        .route("/api/v1/files/{id}", get(download))
}

impl From<FileError> for ApiError {
    fn from(e: FileError) -> Self {
        match e {
            FileError::TooLarge(_) => ApiError::PayloadTooLarge,
            FileError::Busy => ApiError::RateLimited {
                retry_after_secs: 1,
            },
            FileError::Invalid(code, message) => ApiError::bad_request(code, message),
            FileError::Storage(cause) => ApiError::FileStoreUnavailable(cause),
            FileError::Store(e) => e.into(),
        }
    }
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct UploadParams {
    /// The file's name, 1 to 255 bytes; any directory part is dropped.
    #[param(min_length = 1, example = "report.pdf")]
    name: Option<String>,
}

/// `{"file": {...}}`
#[derive(Debug, Serialize, ToSchema)]
pub struct FileBody {
    #[schema(value_type = Object)]
    pub file: FileRef,
}

/// Upload a file to a room (its raw bytes as the body); attach it with
/// `"files": [id]` on a send within 24 hours.
#[utoipa::path(
    post,
    path = "/api/v1/rooms/{room}/files",
    tag = "files",
    security(("session" = []), ("bearer" = [])),
    params(("room" = String, Path, description = "Room name", pattern = "^[a-z0-9][a-z0-9_-]{0,63}$"),
           UploadParams),
    request_body(content = Vec<u8>, content_type = "application/octet-stream",
                 description = "The file's bytes; its type is sniffed from them"),
    responses(
        (status = 201, description = "Stored: `{\"file\": {\"id\", \"name\", \"size\", \"content_type\", \"width\"?, \"height\"?}}`", body = FileBody),
        (status = 400, description = "Missing or invalid name, an empty file, an invalid room name, or an unknown parameter", body = ErrorBody),
        (status = 401, description = "Not signed in", body = ErrorBody),
        (status = 403, description = "Suspended, or a cross-site cookie request", body = ErrorBody),
        (status = 404, description = "No such room (or a private room you are not in)", body = ErrorBody),
        (status = 413, description = "Larger than --max-file-bytes", body = ErrorBody),
        (status = 429, description = "As many uploads as the server takes at once are running; see Retry-After", body = ErrorBody),
        (status = 503, description = "File store or database unavailable", body = ErrorBody),
    )
)]
async fn upload(
    state: State<AppState>,
    current: CurrentUser,
    room: Path<String>,
    params: Query<UploadParams>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    match store_upload(state, current, room, params, headers, body).await {
        Ok(created) => created.into_response(),
        // A body left unread: the connection cannot carry another request.
        Err(ApiError::PayloadTooLarge) => {
            let mut response = ApiError::PayloadTooLarge.into_response();
            response
                .headers_mut()
                .insert(header::CONNECTION, HeaderValue::from_static("close"));
            response
        }
        Err(e) => e.into_response(),
    }
}

async fn store_upload(
    State(state): State<AppState>,
    current: CurrentUser,
    Path(room): Path<String>,
    Query(params): Query<UploadParams>,
    headers: HeaderMap,
    body: Body,
) -> Result<(StatusCode, axum::Json<FileBody>), ApiError> {
    let room = RoomName::parse(&room)?;
    let name = FileName::parse(params.name.as_deref().unwrap_or_default())?;
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > state.files.max_bytes) {
        return Err(ApiError::PayloadTooLarge);
    }
    match state.auth.room_access(&room, &current.user).await? {
        RoomAccess::Allowed(_) => {}
        _ => return Err(ApiError::NotFound(format!("no room named {room}"))),
    }
    let row = state
        .files
        .upload(
            &room,
            &current.user.id,
            name,
            declared,
            body.into_data_stream(),
        )
        .await?;
    Ok((
        StatusCode::CREATED,
        axum::Json(FileBody { file: row.to_ref() }),
    ))
}

/// Download a file (members of its room only): inline for PNG, JPEG, GIF
/// and WebP, as an attachment otherwise, never sniffed by the browser.
#[utoipa::path(
    get,
    path = "/api/v1/files/{id}",
    tag = "files",
    security(("session" = []), ("bearer" = [])),
    params(("id" = String, Path, description = "File id")),
    responses(
        (status = 200, description = "The bytes, with the sniffed Content-Type", content_type = "application/octet-stream"),
        (status = 401, description = "Not signed in", body = ErrorBody),
        (status = 403, description = "Suspended", body = ErrorBody),
        (status = 404, description = "No such file, or one of a room you may not read", body = ErrorBody),
        (status = 503, description = "File store or database unavailable", body = ErrorBody),
    )
)]
async fn download(
    State(state): State<AppState>,
    current: CurrentUser,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let missing = || ApiError::NotFound("no such file".into());
    let row = state.files.row(&id).await?.ok_or_else(missing)?;
    let room = RoomName::parse(&row.room).map_err(|_| missing())?;
    match state.auth.room_access(&room, &current.user).await? {
        RoomAccess::Allowed(_) => {}
        _ => return Err(missing()),
    }
    let bytes = state.files.open(&row).await?;
    let inline = matches!(
        row.content_type.as_str(),
        "image/png" | "image/jpeg" | "image/gif" | "image/webp"
    );
    let mut response = Body::from_stream(bytes.map_err(std::io::Error::other)).into_response();
    let headers = response.headers_mut();
    let value = |v: &str| {
        HeaderValue::from_str(v).unwrap_or(HeaderValue::from_static("application/octet-stream"))
    };
    headers.insert(header::CONTENT_TYPE, value(&row.content_type));
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(row.size));
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("sandbox; default-src 'none'"),
    );
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("private, max-age=86400"),
    );
    headers.insert(
        header::CONTENT_DISPOSITION,
        content_disposition(inline, &row.name),
    );
    Ok(response)
}

/// `inline` or `attachment`, with the name as an ASCII fallback and as
/// RFC 5987 UTF-8.
fn content_disposition(inline: bool, name: &str) -> HeaderValue {
    let ascii: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_graphic() && c != '"' && c != '\\' || c == ' ' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let mut encoded = String::new();
    for b in name.bytes() {
        if b.is_ascii_alphanumeric() || b"!#$&+-.^_`|~".contains(&b) {
            encoded.push(b as char);
        } else {
            encoded.push_str(&format!("%{b:02X}"));
        }
    }
    let kind = if inline { "inline" } else { "attachment" };
    HeaderValue::from_str(&format!(
        "{kind}; filename=\"{ascii}\"; filename*=UTF-8''{encoded}"
    ))
    .unwrap_or(HeaderValue::from_static("attachment"))
}
