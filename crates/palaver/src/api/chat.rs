//! The seed-compatible endpoint: room `general`, the seed's exact answers.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use std::sync::Arc;

use bytes::Bytes;

use super::error::{ApiError, ErrorBody};
use super::extract::{ClientIp, Json, Query};
use super::pages;
use super::params::{PageLimit, SeedSize};
use crate::domain::{format_timestamp, Author, Message, MessageText, NewMessage, RoomName};
use crate::store::Cursor;
use crate::AppState;

/// The author stored for messages sent through `/chat`.
pub const SEED_AUTHOR: &str = "anonymous";

pub fn router() -> Router<AppState> {
    Router::new().route("/chat", get(read).put(send))
}

// Read leniently (any JSON value, or none) so that the seed's `Message is
// required` answer is kept; documented as what is accepted: a string with
// something besides white space, newline and tab the only control
// characters, at most 4000 characters.
/// A message to send to room `general`.
#[derive(Debug, Deserialize, ToSchema)]
pub struct SeedSend {
    /// The message text.
    #[schema(value_type = String, required = true, example = "hello", min_length = 1, max_length = 4000,
             pattern = r"^[^\x00-\x08\x0b-\x1f\x7f-\x9f]*[^\s\x00-\x1f\x7f-\x9f][^\x00-\x08\x0b-\x1f\x7f-\x9f]*$")]
    pub message: Option<serde_json::Value>,
}

/// Send a message to room `general` (seed-compatible).
#[utoipa::path(
    put,
    path = "/chat",
    tag = "seed",
    request_body = SeedSend,
    responses(
        (status = 201, description = "Message sent", body = String, content_type = "text/plain", example = "Message sent"),
        (status = 400, description = "`Message is required` (text/plain) when the message is missing or empty; a JSON error for malformed JSON or otherwise invalid text",
            content(
                (String = "text/plain", example = "Message is required"),
                (ErrorBody = "application/json"),
            )),
        (status = 413, description = "Body larger than the limit", body = ErrorBody),
        (status = 415, description = "Content type is not application/json", body = ErrorBody),
        (status = 429, description = "Rate limited; see Retry-After", body = ErrorBody),
        (status = 503, description = "Database unavailable", body = ErrorBody),
    )
)]
async fn send(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    Json(body): Json<SeedSend>,
) -> Result<Response, ApiError> {
    state.check_rate(ip)?;
    let text = match body.message {
        Some(serde_json::Value::String(text)) if !text.trim().is_empty() => text,
        _ => return Ok((StatusCode::BAD_REQUEST, "Message is required").into_response()),
    };
    let message = NewMessage {
        author: Author::parse(SEED_AUTHOR)?,
        author_id: None,
        text: MessageText::parse(&text, state.limits.max_message_chars)?,
        client_id: None,
        client_ip: ip.to_string(),
        reply_to: None,
        mentions: Vec::new(),
        files: Vec::new(),
    };
    state.writer.send(&RoomName::general(), message).await?;
    Ok((StatusCode::CREATED, "Message sent").into_response())
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct SizeParams {
    /// How many of the newest messages, 0-1000 (default 1000).
    #[param(minimum = 0, maximum = 1000)]
    size: Option<i64>,
}

/// One message as the seed returned it.
#[derive(Debug, Serialize, ToSchema)]
pub struct SeedMessage {
    /// The sender's address.
    pub ip: String,
    /// When it was stored (UTC, RFC 3339).
    #[schema(example = "2026-11-25T10:00:00.123Z")]
    pub datetime: String,
    pub message: String,
}

/// The newest messages of room `general`, newest first (seed-compatible).
#[utoipa::path(
    get,
    path = "/chat",
    tag = "seed",
    params(SizeParams),
    responses(
        (status = 200, description = "Newest first", body = [SeedMessage]),
        (status = 400, description = "size is not a number between 0 and 1000", body = ErrorBody),
        (status = 503, description = "Database unavailable", body = ErrorBody),
    )
)]
async fn read(
    State(state): State<AppState>,
    Query(params): Query<SizeParams>,
) -> Result<Response, ApiError> {
    let size = SeedSize::parse(params.size)?.get();
    if size == 0 {
        return Ok(pages::json(Bytes::from_static(b"[]")));
    }
    let room = RoomName::general();
    let body = pages::newest(&state, &room, size, "seed", render, None)
        .await?
        .unwrap_or_else(|| Bytes::from_static(b"[]"));
    if !body.is_empty() {
        return Ok(pages::json(body));
    }
    // Deleted messages were among the newest: page back until `size`
    // messages that are not deleted are found, or history ends.
    let mut found: Vec<Arc<Message>> = Vec::with_capacity(size);
    let mut cursor = Cursor::Latest;
    while found.len() < size {
        let Some(page) = state.store.page(&room, cursor, PageLimit::MAX).await? else {
            break;
        };
        let oldest = page.messages.last().map(|m| m.seq);
        found.extend(
            page.messages
                .into_iter()
                .filter(|m| !m.deleted)
                .take(size - found.len())
                .map(Arc::new),
        );
        match (page.has_more, oldest) {
            (true, Some(seq)) => cursor = Cursor::Before(seq),
            _ => break,
        }
    }
    Ok(pages::json(seed_body(&found)))
}

/// The seed's answer: an array of `{ip, datetime, message}`, newest first,
/// deleted messages left out. Empty (not `[]`) when leaving them out made
/// the page short while older messages exist: the caller then pages back.
fn render(messages: &[Arc<Message>], has_more: bool, _viewer: Option<&str>) -> Bytes {
    if has_more && messages.iter().any(|m| m.deleted) {
        return Bytes::new();
    }
    seed_body(messages)
}

fn seed_body(messages: &[Arc<Message>]) -> Bytes {
    #[derive(Serialize)]
    struct Seed<'a> {
        ip: &'a str,
        datetime: String,
        message: &'a str,
    }
    let seed: Vec<Seed<'_>> = messages
        .iter()
        .filter(|m| !m.deleted)
        .map(|m| Seed {
            ip: &m.client_ip,
            datetime: format_timestamp(m.sent_at),
            message: &m.text,
        })
        .collect();
    serde_json::to_vec(&seed)
        .map(Bytes::from)
        .unwrap_or_default()
}
