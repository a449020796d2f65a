//! The v1 rooms API: list rooms, send, page through history.

use axum::extract::State;
use axum::http::{HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use std::sync::Arc;

use bytes::Bytes;

use super::error::{ApiError, ErrorBody};
use super::extract::{ClientIp, CurrentUser, Json, Path, Query};
use super::pages;
use super::params::{PageCursor, PageLimit};
use crate::auth::access::RoomAccess;
use crate::domain::{Author, ClientId, Message, MessageText, NewMessage, RoomName};
use crate::state::RateKey;
use crate::store::{Cursor, Page, RoomSummary};
use crate::AppState;

pub fn router() -> Router<AppState> {
    Router::new().route("/api/v1/rooms", get(list_rooms)).route(
        "/api/v1/rooms/{room}/messages",
        get(list_messages).post(send_message),
    )
}

/// Header set on a send that repeated a stored `client_id`.
pub const IDEMPOTENT_REPLAYED: HeaderName = HeaderName::from_static("idempotent-replayed");

#[derive(Debug, Serialize, ToSchema)]
pub struct RoomList {
    pub rooms: Vec<RoomSummary>,
}

/// List the public rooms and the caller's private rooms.
#[utoipa::path(
    get,
    path = "/api/v1/rooms",
    tag = "rooms",
    security(("session" = []), ("bearer" = [])),
    responses(
        (status = 200, description = "Public rooms and your private rooms, by name", body = RoomList),
        (status = 401, description = "Not signed in", body = ErrorBody),
        (status = 403, description = "Suspended", body = ErrorBody),
        (status = 503, description = "Database unavailable", body = ErrorBody),
    )
)]
async fn list_rooms(
    State(state): State<AppState>,
    current: CurrentUser,
) -> Result<axum::Json<RoomList>, ApiError> {
    let rooms = state
        .auth
        .accounts
        .rooms_visible_to(&current.user.id)
        .await?;
    Ok(axum::Json(RoomList { rooms }))
}

/// Refuses (404, as for a missing room) a private room the user is not in.
pub async fn visible(
    state: &AppState,
    room: &RoomName,
    current: &CurrentUser,
) -> Result<RoomAccess, ApiError> {
    match state.auth.room_access(room, &current.user).await? {
        RoomAccess::Hidden(_) => Err(ApiError::NotFound(format!("no room named {room}"))),
        access => Ok(access),
    }
}

/// A message to send; its author is the signed-in user (an `author` field
/// is ignored).
#[derive(Debug, Deserialize, ToSchema)]
pub struct SendMessage {
    /// Message text, 1-4000 characters after trimming; newline and tab are
    /// the only control characters allowed.
    #[schema(
        example = "hi",
        min_length = 1,
        max_length = 4000,
        pattern = r"^[^\x00-\x08\x0b-\x1f\x7f-\x9f]*[^\s\x00-\x1f\x7f-\x9f][^\x00-\x08\x0b-\x1f\x7f-\x9f]*$"
    )]
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
    /// The seq of the message this one answers: a message of the same room,
    /// not deleted.
    #[schema(minimum = 1)]
    pub reply_to: Option<i64>,
    /// Uploads to attach (at most 10): each an upload of yours to this room,
    /// made within 24 hours and not attached yet (400 `invalid_file`
    /// otherwise).
    #[schema(max_items = 10)]
    pub files: Option<Vec<String>>,
}

/// Send a message to a room (created on its first message).
#[utoipa::path(
    post,
    path = "/api/v1/rooms/{room}/messages",
    tag = "rooms",
    security(("session" = []), ("bearer" = [])),
    params(("room" = String, Path, description = "Room name", pattern = "^[a-z0-9][a-z0-9_-]{0,63}$")),
    request_body = SendMessage,
    responses(
        (status = 201, description = "Stored; on an idempotent repeat the stored message, with `Idempotent-Replayed: true`", body = Message),
        (status = 400, description = "Invalid room, text, client_id or reply_to (not a message of this room, or deleted), or malformed JSON", body = ErrorBody),
        (status = 401, description = "Not signed in", body = ErrorBody),
        (status = 403, description = "Suspended, or a cross-site cookie request", body = ErrorBody),
        (status = 404, description = "A private room you are not in", body = ErrorBody),
        (status = 413, description = "Body larger than the limit", body = ErrorBody),
        (status = 415, description = "Content type is not application/json", body = ErrorBody),
        (status = 429, description = "Rate limited; see Retry-After", body = ErrorBody),
        (status = 503, description = "Database unavailable", body = ErrorBody),
    )
)]
async fn send_message(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    current: CurrentUser,
    Path(room): Path<String>,
    Json(body): Json<SendMessage>,
) -> Result<Response, ApiError> {
    state.check_rate(RateKey::User(current.user.id.clone()))?;
    let room = RoomName::parse(&room)?;
    visible(&state, &room, &current).await?;
    let user = &current.user;
    let text = MessageText::parse(&body.text, state.limits.max_message_chars)?;
    let client_id = body.client_id.as_deref().map(ClientId::parse).transpose()?;
    if let Some(reply_to) = body.reply_to {
        let answered = match reply_to {
            1.. => super::messages::current_message(&state, &room, reply_to, user.id.as_str())
                .await?
                .is_some_and(|m| !m.deleted),
            _ => false,
        };
        if !answered {
            return Err(ApiError::bad_request(
                "invalid_reply_to",
                "reply_to must be the seq of a message of this room that is not deleted",
            ));
        }
    }
    let mentions = super::messages::resolve_mentions(&state, &room, text.as_str()).await?;
    let files = match body.files.as_deref() {
        Some(ids) if !ids.is_empty() => state.files.claim(&room, &user.id, ids).await?,
        _ => Vec::new(),
    };
    let message = NewMessage {
        author: Author::parse(&user.display_name)
            .or_else(|_| Author::parse(user.username.as_str()))?,
        author_id: Some(user.id.as_str().to_owned()),
        text,
        client_id,
        client_ip: ip.to_string(),
        reply_to: body.reply_to,
        mentions,
        files: files.clone(),
    };
    let appended = state.writer.send(&room, message).await?;
    if appended.created {
        state
            .files
            .attached(&room, appended.message.seq, &files)
            .await?;
        // Posting in a public room joins it (DESIGN §5a); private and direct
        // rooms only take posts from members. The answer is cached, so a
        // member's sends cost no query here.
        if !state.auth.is_member(&room, &user.id).await? {
            state.auth.add_member(&room, &user.id).await?;
        }
    }
    let mut response = (StatusCode::CREATED, axum::Json(&*appended.message)).into_response();
    if !appended.created {
        response
            .headers_mut()
            .insert(IDEMPOTENT_REPLAYED, HeaderValue::from_static("true"));
    }
    Ok(response)
}

/// Unknown parameters are refused (400 `invalid_query`), as documented: a
/// misspelt cursor must not silently read the newest page.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PageParams {
    /// Messages with a smaller seq, newest first.
    before: Option<i64>,
    /// Messages with a greater seq, oldest first.
    after: Option<i64>,
    /// Messages around this seq (itself included), oldest first.
    around: Option<i64>,
    /// Page size, 1-200 (default 50).
    limit: Option<i64>,
}

/// Page through a room's history.
#[utoipa::path(
    get,
    path = "/api/v1/rooms/{room}/messages",
    tag = "rooms",
    // `before`, `after` and `limit` are documented as one exploded query
    // object (see `openapi::PagingParameters`): OpenAPI has no other way to
    // say that `before` and `after` exclude each other.
    security(("session" = []), ("bearer" = [])),
    params(("room" = String, Path, description = "Room name", pattern = "^[a-z0-9][a-z0-9_-]{0,63}$")),
    responses(
        (status = 200, description = "A page of messages as they are now (tombstones included): newest first without a cursor or with `before`, oldest first with `after` or `around`", body = Page),
        (status = 400, description = "Invalid room or paging parameters (more than one of `before`, `after` and `around`, or an unknown parameter)", body = ErrorBody),
        (status = 401, description = "Not signed in", body = ErrorBody),
        (status = 403, description = "Suspended", body = ErrorBody),
        (status = 404, description = "No such room (or a private room you are not in)", body = ErrorBody),
        (status = 503, description = "Database unavailable", body = ErrorBody),
    )
)]
async fn list_messages(
    State(state): State<AppState>,
    current: CurrentUser,
    Path(room): Path<String>,
    Query(params): Query<PageParams>,
) -> Result<Response, ApiError> {
    let room = RoomName::parse(&room)?;
    if visible(&state, &room, &current).await? == RoomAccess::Missing {
        return Err(ApiError::NotFound(format!("no room named {room}")));
    }
    let limit = PageLimit::parse(params.limit)?.get();
    let cursor = PageCursor::parse(params.before, params.after, params.around)?.get();
    let missing = || ApiError::NotFound(format!("no room named {room}"));
    let viewer = Some(current.user.id.as_str());
    if cursor == Cursor::Latest {
        let body = pages::newest(&state, &room, limit as usize, "v1", render, viewer)
            .await?
            .ok_or_else(missing)?;
        return Ok(pages::json(body));
    }
    let page = state
        .store
        .page(&room, cursor, limit)
        .await?
        .ok_or_else(missing)?;
    let messages: Vec<Arc<Message>> = page.messages.into_iter().map(Arc::new).collect();
    Ok(pages::json(render(&messages, page.has_more, viewer)))
}

/// A v1 page: `{"messages": [...], "has_more": bool}`, as `viewer` sees it.
fn render(messages: &[Arc<Message>], has_more: bool, viewer: Option<&str>) -> Bytes {
    #[derive(Serialize)]
    struct PageRef {
        messages: Vec<Arc<Message>>,
        has_more: bool,
    }
    let page = PageRef {
        messages: messages.iter().map(|m| m.seen_by(viewer)).collect(),
        has_more,
    };
    serde_json::to_vec(&page)
        .map(Bytes::from)
        .unwrap_or_default()
}
