//! The v1 rooms API: list rooms, send, page through history.

use axum::extract::State;
use axum::http::{HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use std::sync::Arc;

use bytes::Bytes;

use super::error::{ApiError, ErrorBody};
use super::extract::{ClientIp, Json, Path, Query};
use super::pages;
use crate::domain::{Author, ClientId, Message, MessageText, NewMessage, RoomName};
use crate::store::{Cursor, Page, RoomSummary};
use crate::AppState;

pub fn router() -> Router<AppState> {
    Router::new().route("/api/v1/rooms", get(list_rooms)).route(
        "/api/v1/rooms/{room}/messages",
        get(list_messages).post(send_message),
    )
}

/// Paging bounds of `GET .../messages`.
pub const DEFAULT_LIMIT: i64 = 50;
pub const MAX_LIMIT: i64 = 200;

/// Header set on a send that repeated a stored `client_id`.
pub const IDEMPOTENT_REPLAYED: HeaderName = HeaderName::from_static("idempotent-replayed");

#[derive(Debug, Serialize, ToSchema)]
pub struct RoomList {
    pub rooms: Vec<RoomSummary>,
}

/// List every room.
#[utoipa::path(
    get,
    path = "/api/v1/rooms",
    tag = "rooms",
    responses(
        (status = 200, description = "All rooms, by name", body = RoomList),
        (status = 503, description = "Database unavailable", body = ErrorBody),
    )
)]
async fn list_rooms(State(state): State<AppState>) -> Result<axum::Json<RoomList>, ApiError> {
    let rooms = state.store.rooms().await?;
    Ok(axum::Json(RoomList { rooms }))
}

/// A message to send.
#[derive(Debug, Deserialize, ToSchema)]
pub struct SendMessage {
    /// Display name, 1-64 characters after trimming.
    #[schema(example = "ada", min_length = 1, max_length = 64)]
    pub author: String,
    /// Message text, 1-4000 characters after trimming; newline and tab are
    /// the only control characters allowed.
    #[schema(example = "hi", min_length = 1, max_length = 4000)]
    pub text: String,
    /// Idempotency key (1-64 visible ASCII characters): sending the same key
    /// to the same room again returns the stored message instead of a copy.
    #[schema(
        example = "3f1c2a9e-5b7d-4c1e-9f0a-1b2c3d4e5f60",
        min_length = 1,
        max_length = 64,
        pattern = "^[!-~]+$"
    )]
    pub client_id: Option<String>,
}

/// Send a message to a room (created on its first message).
#[utoipa::path(
    post,
    path = "/api/v1/rooms/{room}/messages",
    tag = "rooms",
    params(("room" = String, Path, description = "Room name", pattern = "^[a-z0-9][a-z0-9_-]{0,63}$")),
    request_body = SendMessage,
    responses(
        (status = 201, description = "Stored; on an idempotent repeat the stored message, with `Idempotent-Replayed: true`", body = Message),
        (status = 400, description = "Invalid room, author, text or client_id, or malformed JSON", body = ErrorBody),
        (status = 413, description = "Body larger than the limit", body = ErrorBody),
        (status = 415, description = "Content type is not application/json", body = ErrorBody),
        (status = 429, description = "Rate limited; see Retry-After", body = ErrorBody),
        (status = 503, description = "Database unavailable", body = ErrorBody),
    )
)]
async fn send_message(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    Path(room): Path<String>,
    Json(body): Json<SendMessage>,
) -> Result<Response, ApiError> {
    state.check_rate(ip)?;
    let room = RoomName::parse(&room)?;
    let message = NewMessage {
        author: Author::parse(&body.author)?,
        text: MessageText::parse(&body.text, state.limits.max_message_chars)?,
        client_id: body.client_id.as_deref().map(ClientId::parse).transpose()?,
        client_ip: ip.to_string(),
    };
    let appended = state.writer.send(&room, message).await?;
    let mut response = (StatusCode::CREATED, axum::Json(&*appended.message)).into_response();
    if !appended.created {
        response
            .headers_mut()
            .insert(IDEMPOTENT_REPLAYED, HeaderValue::from_static("true"));
    }
    Ok(response)
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct PageParams {
    /// Messages with a smaller seq, newest first.
    #[param(minimum = 0)]
    before: Option<i64>,
    /// Messages with a greater seq, oldest first.
    #[param(minimum = 0)]
    after: Option<i64>,
    /// Page size, 1-200 (default 50).
    #[param(minimum = 1, maximum = 200)]
    limit: Option<i64>,
}

/// Page through a room's history.
#[utoipa::path(
    get,
    path = "/api/v1/rooms/{room}/messages",
    tag = "rooms",
    params(("room" = String, Path, description = "Room name", pattern = "^[a-z0-9][a-z0-9_-]{0,63}$"), PageParams),
    responses(
        (status = 200, description = "A page: newest first without a cursor or with `before`, oldest first with `after`", body = Page),
        (status = 400, description = "Invalid room or paging parameters", body = ErrorBody),
        (status = 404, description = "No such room", body = ErrorBody),
        (status = 503, description = "Database unavailable", body = ErrorBody),
    )
)]
async fn list_messages(
    State(state): State<AppState>,
    Path(room): Path<String>,
    Query(params): Query<PageParams>,
) -> Result<Response, ApiError> {
    let room = RoomName::parse(&room)?;
    let limit = params.limit.unwrap_or(DEFAULT_LIMIT);
    if !(1..=MAX_LIMIT).contains(&limit) {
        return Err(ApiError::bad_request(
            "invalid_limit",
            format!("limit must be between 1 and {MAX_LIMIT}"),
        ));
    }
    let cursor = match (params.before, params.after) {
        (Some(_), Some(_)) => {
            return Err(ApiError::bad_request(
                "invalid_cursor",
                "give before or after, not both",
            ))
        }
        (Some(seq), None) | (None, Some(seq)) if seq < 0 => {
            return Err(ApiError::bad_request(
                "invalid_cursor",
                "before and after must be 0 or greater",
            ))
        }
        (Some(seq), None) => Cursor::Before(seq),
        (None, Some(seq)) => Cursor::After(seq),
        (None, None) => Cursor::Latest,
    };
    let missing = || ApiError::NotFound(format!("no room named {room}"));
    if cursor == Cursor::Latest {
        let body = pages::newest(&state, &room, limit as usize, "v1", render)
            .await?
            .ok_or_else(missing)?;
        return Ok(pages::json(body));
    }
    let page = state
        .store
        .page(&room, cursor, limit as u32)
        .await?
        .ok_or_else(missing)?;
    Ok(axum::Json(page).into_response())
}

/// A v1 page: `{"messages": [...], "has_more": bool}`.
fn render(messages: &[Arc<Message>], has_more: bool) -> Bytes {
    #[derive(Serialize)]
    struct PageRef<'a> {
        messages: Vec<&'a Message>,
        has_more: bool,
    }
    let page = PageRef {
        messages: messages.iter().map(|m| m.as_ref()).collect(),
        has_more,
    };
    serde_json::to_vec(&page)
        .map(Bytes::from)
        .unwrap_or_default()
}
