//! Changes to messages (DESIGN §5b): edit, delete, react; and the reading
//! state of §5c (read markers). Every change goes through the write path
//! like a send: group commit, a seq of its own, fan-out, the read cache.

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{patch, put};
use axum::Router;
use serde::Deserialize;
use utoipa::ToSchema;

use super::error::{ApiError, ErrorBody};
use super::extract::{CurrentUser, Json, Path};
use super::rooms::visible;
use crate::auth::access::RoomAccess;
use crate::domain::{Change, Emoji, InvalidInput, Message, MessageText, RoomEvent, RoomName};
use crate::identity::Role;
use crate::state::RateKey;
use crate::store::{Applied, Refused};
use crate::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route(
            "/api/v1/rooms/{room}/messages/{seq}",
            patch(edit_message).delete(delete_message),
        )
        .route(
            "/api/v1/rooms/{room}/messages/{seq}/reactions/{emoji}",
            put(add_reaction).delete(remove_reaction),
        )
        .route("/api/v1/rooms/{room}/read", put(mark_read))
}

/// A message's seq in a path: an integer, 1 or greater.
pub fn parse_seq(raw: &str) -> Result<i64, ApiError> {
    match raw.parse::<i64>() {
        Ok(seq) if seq >= 1 => Ok(seq),
        _ => Err(ApiError::bad_request(
            "invalid_seq",
            "a message seq is an integer, 1 or greater",
        )),
    }
}

impl From<Refused> for ApiError {
    fn from(refused: Refused) -> Self {
        match refused {
            Refused::NoMessage => ApiError::NotFound("no such message in this room".into()),
            Refused::Forbidden => {
                ApiError::forbidden("not_allowed", "you may not change this message")
            }
            Refused::Deleted => ApiError::conflict("deleted", "the message is deleted"),
            Refused::TooManyReactions => ApiError::conflict(
                "too_many_reactions",
                "a message carries at most 20 different emoji",
            ),
        }
    }
}

/// The `@username`s of a text (lower-cased, at most 50 distinct), in order.
pub fn mentioned_usernames(text: &str) -> Vec<String> {
    const MAX: usize = 50;
    let mut names: Vec<String> = Vec::new();
    let mut rest = text;
    let mut previous: Option<char> = None;
    while let Some(at) = rest.find('@') {
        let before = rest[..at].chars().next_back().or(previous);
        let after = &rest[at + 1..];
        let name: String = after
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
            .collect();
        // Not an address (`ada@example.com`) and not a trailing dot.
        let name = name.trim_end_matches(['.', '-']).to_ascii_lowercase();
        let starts_word = before.is_none_or(|c| !c.is_alphanumeric());
        if starts_word
            && crate::identity::Username::parse(&name).is_ok_and(|u| u.as_str() == name)
            && !names.contains(&name)
        {
            names.push(name);
            if names.len() == MAX {
                break;
            }
        }
        previous = Some('@');
        rest = after;
    }
    names
}

/// The ids of the users `text` mentions who may read `room`.
pub async fn resolve_mentions(
    state: &AppState,
    room: &RoomName,
    text: &str,
) -> Result<Vec<String>, ApiError> {
    let names = mentioned_usernames(text);
    if names.is_empty() {
        return Ok(Vec::new());
    }
    Ok(state.store.mentionable(room, &names).await?)
}

/// The room named in the path, which the caller may read (404 otherwise),
/// and the message seq.
async fn target(
    state: &AppState,
    current: &CurrentUser,
    room: &str,
    seq: &str,
) -> Result<(RoomName, i64, RoomAccess), ApiError> {
    let room = RoomName::parse(room)?;
    let seq = parse_seq(seq)?;
    let access = visible(state, &room, current).await?;
    if access == RoomAccess::Missing {
        return Err(ApiError::NotFound(format!("no room named {room}")));
    }
    Ok((room, seq, access))
}

/// Stores one change and answers its event (or `None`: nothing changed).
async fn apply(
    state: &AppState,
    room: &RoomName,
    change: Change,
) -> Result<Option<Arc<RoomEvent>>, ApiError> {
    match state.writer.change(room, change).await?? {
        Applied::Changed(event) => Ok(event),
        Applied::Sent(_) => Err(ApiError::Internal("a change answered as a send".into())),
    }
}

/// A message as stored now, as `user` sees it.
pub async fn current_message(
    state: &AppState,
    room: &RoomName,
    seq: i64,
    user: &str,
) -> Result<Option<Arc<Message>>, ApiError> {
    let events = state.store.range(room, seq, seq).await?;
    Ok(events.into_iter().find_map(|e| match e {
        RoomEvent::Message(m) => Some(m.seen_by(Some(user))),
        _ => None,
    }))
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct EditMessage {
    /// The new text: the rules of a sent message.
    #[schema(
        example = "hi, fixed",
        min_length = 1,
        max_length = 4000,
        pattern = r"^[^\x00-\x08\x0b-\x1f\x7f-\x9f]*[^\s\x00-\x1f\x7f-\x9f][^\x00-\x08\x0b-\x1f\x7f-\x9f]*$"
    )]
    pub text: String,
}

/// Edit a message's text (its author only).
#[utoipa::path(
    patch,
    path = "/api/v1/rooms/{room}/messages/{seq}",
    tag = "messages",
    security(("session" = []), ("bearer" = [])),
    params(
        ("room" = String, Path, description = "Room name", example = "general", pattern = "^[a-z0-9][a-z0-9_-]{0,63}$"),
        ("seq" = i64, Path, description = "The message's seq", example = 2, minimum = 1),
    ),
    request_body = EditMessage,
    responses(
        (status = 200, description = "The message as it is now (`edited_at` set); an `edit` event follows on the streams", body = Message),
        (status = 400, description = "Invalid room, seq or text, or malformed JSON", body = ErrorBody),
        (status = 401, description = "Not signed in", body = ErrorBody),
        (status = 403, description = "Not the message's author, suspended, or a cross-site cookie request", body = ErrorBody),
        (status = 404, description = "No such room or message (or a private room you are not in)", body = ErrorBody),
        (status = 409, description = "The message is deleted", body = ErrorBody),
        (status = 413, description = "Body larger than the limit", body = ErrorBody),
        (status = 415, description = "Content type is not application/json", body = ErrorBody),
        (status = 429, description = "Rate limited; see Retry-After", body = ErrorBody),
        (status = 503, description = "Database unavailable", body = ErrorBody),
    )
)]
async fn edit_message(
    State(state): State<AppState>,
    current: CurrentUser,
    Path((room, seq)): Path<(String, String)>,
    Json(body): Json<EditMessage>,
) -> Result<Response, ApiError> {
    state.check_rate(RateKey::User(current.user.id.clone()))?;
    let (room, seq, _) = target(&state, &current, &room, &seq).await?;
    let text = MessageText::parse(&body.text, state.limits.max_message_chars)?;
    let mentions = resolve_mentions(&state, &room, text.as_str()).await?;
    let user = current.user.id.as_str();
    apply(
        &state,
        &room,
        Change::Edit {
            target: seq,
            user_id: user.to_owned(),
            text,
            mentions,
        },
    )
    .await?;
    let message = current_message(&state, &room, seq, user)
        .await?
        .ok_or_else(|| ApiError::NotFound("no such message in this room".into()))?;
    Ok(axum::Json(&*message).into_response())
}

/// Delete a message: its author, the room's owner or an admin.
#[utoipa::path(
    delete,
    path = "/api/v1/rooms/{room}/messages/{seq}",
    tag = "messages",
    security(("session" = []), ("bearer" = [])),
    params(
        ("room" = String, Path, description = "Room name", example = "general", pattern = "^[a-z0-9][a-z0-9_-]{0,63}$"),
        ("seq" = i64, Path, description = "The message's seq", example = 1, minimum = 1),
    ),
    responses(
        (status = 204, description = "Deleted: the text and its earlier versions are erased, a tombstone stays; a `delete` event follows on the streams"),
        (status = 400, description = "Invalid room or seq", body = ErrorBody),
        (status = 401, description = "Not signed in", body = ErrorBody),
        (status = 403, description = "Neither its author, the room's owner nor an admin; suspended; or a cross-site cookie request", body = ErrorBody),
        (status = 404, description = "No such room or message (or a private room you are not in)", body = ErrorBody),
        (status = 409, description = "Already deleted", body = ErrorBody),
        (status = 429, description = "Rate limited; see Retry-After", body = ErrorBody),
        (status = 503, description = "Database unavailable", body = ErrorBody),
    )
)]
async fn delete_message(
    State(state): State<AppState>,
    current: CurrentUser,
    Path((room, seq)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    state.check_rate(RateKey::User(current.user.id.clone()))?;
    let (room, seq, access) = target(&state, &current, &room, &seq).await?;
    let owner = match &access {
        RoomAccess::Allowed(info) => info.owner_id.as_ref() == Some(&current.user.id),
        _ => false,
    };
    let moderator = owner || current.user.role == Role::Admin;
    apply(
        &state,
        &room,
        Change::Delete {
            target: seq,
            user_id: current.user.id.as_str().to_owned(),
            moderator,
        },
    )
    .await?;
    // The text is gone with the commit; the files' bytes follow at once,
    // off the request (the sweep erases what this misses, e.g. with the
    // file store down, within its interval).
    let files = state.files.clone();
    tokio::spawn(async move {
        if let Err(error) = files.erase_message_files(&room, seq).await {
            tracing::warn!(%error, room = %room, seq, "could not erase a deleted message's files yet");
        }
    });
    Ok(StatusCode::NO_CONTENT)
}

/// Add a reaction (idempotent: a second one adds nothing).
#[utoipa::path(
    put,
    path = "/api/v1/rooms/{room}/messages/{seq}/reactions/{emoji}",
    tag = "messages",
    security(("session" = []), ("bearer" = [])),
    params(
        ("room" = String, Path, description = "Room name", example = "general", pattern = "^[a-z0-9][a-z0-9_-]{0,63}$"),
        ("seq" = i64, Path, description = "The message's seq", example = 3, minimum = 1),
        ("emoji" = String, Path, description = "One emoji (one grapheme cluster of at most 32 bytes that is a known emoji or a pictograph of the emoji blocks), percent-encoded. The pattern is the pictographs U+1F300-U+1F5FF, a subset the fuzzer can draw from; the server accepts any emoji", max_length = 32, example = "👍", pattern = "^[\u{1F300}-\u{1F5FF}]$"),
    ),
    responses(
        (status = 204, description = "The reaction is there; a `reaction` event follows on the streams when it was not before"),
        (status = 400, description = "Invalid room, seq or emoji", body = ErrorBody),
        (status = 401, description = "Not signed in", body = ErrorBody),
        (status = 403, description = "Suspended, or a cross-site cookie request", body = ErrorBody),
        (status = 404, description = "No such room or message (or a private room you are not in)", body = ErrorBody),
        (status = 409, description = "The message is deleted, or already carries 20 different emoji", body = ErrorBody),
        (status = 429, description = "Rate limited; see Retry-After", body = ErrorBody),
        (status = 503, description = "Database unavailable", body = ErrorBody),
    )
)]
async fn add_reaction(
    state: State<AppState>,
    current: CurrentUser,
    path: Path<(String, String, String)>,
) -> Result<StatusCode, ApiError> {
    react(state, current, path, true).await
}

/// Take a reaction back (idempotent).
#[utoipa::path(
    delete,
    path = "/api/v1/rooms/{room}/messages/{seq}/reactions/{emoji}",
    tag = "messages",
    security(("session" = []), ("bearer" = [])),
    params(
        ("room" = String, Path, description = "Room name", example = "general", pattern = "^[a-z0-9][a-z0-9_-]{0,63}$"),
        ("seq" = i64, Path, description = "The message's seq", example = 3, minimum = 1),
        ("emoji" = String, Path, description = "One emoji, percent-encoded (see PUT)", max_length = 32, example = "👍", pattern = "^[\u{1F300}-\u{1F5FF}]$"),
    ),
    responses(
        (status = 204, description = "The reaction is gone; a `reaction` event follows on the streams when it was there"),
        (status = 400, description = "Invalid room, seq or emoji", body = ErrorBody),
        (status = 401, description = "Not signed in", body = ErrorBody),
        (status = 403, description = "Suspended, or a cross-site cookie request", body = ErrorBody),
        (status = 404, description = "No such room or message (or a private room you are not in)", body = ErrorBody),
        (status = 409, description = "The message is deleted", body = ErrorBody),
        (status = 429, description = "Rate limited; see Retry-After", body = ErrorBody),
        (status = 503, description = "Database unavailable", body = ErrorBody),
    )
)]
async fn remove_reaction(
    state: State<AppState>,
    current: CurrentUser,
    path: Path<(String, String, String)>,
) -> Result<StatusCode, ApiError> {
    react(state, current, path, false).await
}

async fn react(
    State(state): State<AppState>,
    current: CurrentUser,
    Path((room, seq, emoji)): Path<(String, String, String)>,
    on: bool,
) -> Result<StatusCode, ApiError> {
    state.check_rate(RateKey::User(current.user.id.clone()))?;
    let (room, seq, _) = target(&state, &current, &room, &seq).await?;
    let emoji = Emoji::parse(&emoji)?;
    apply(
        &state,
        &room,
        Change::React {
            target: seq,
            user_id: current.user.id.as_str().to_owned(),
            emoji,
            on,
        },
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReadMarker {
    /// Everything up to this seq is read (0 to the room's last event).
    #[schema(minimum = 0)]
    pub seq: i64,
    /// Set the marker to exactly `seq`, even backwards ("mark unread").
    #[serde(default)]
    pub mark_unread: bool,
}

/// Move your read marker of a room (forward only, unless `mark_unread`).
#[utoipa::path(
    put,
    path = "/api/v1/rooms/{room}/read",
    tag = "rooms",
    security(("session" = []), ("bearer" = [])),
    params(("room" = String, Path, description = "Room name", example = "general", pattern = "^[a-z0-9][a-z0-9_-]{0,63}$")),
    request_body = ReadMarker,
    responses(
        (status = 204, description = "Stored; your other sessions hear a `read` frame on /api/v1/stream"),
        (status = 400, description = "Invalid room, a negative seq or one past the room's last event, or malformed JSON", body = ErrorBody),
        (status = 401, description = "Not signed in", body = ErrorBody),
        (status = 403, description = "Suspended, or a cross-site cookie request", body = ErrorBody),
        (status = 404, description = "No such room (or a private room you are not in)", body = ErrorBody),
        (status = 415, description = "Content type is not application/json", body = ErrorBody),
        (status = 503, description = "Database unavailable", body = ErrorBody),
    )
)]
async fn mark_read(
    State(state): State<AppState>,
    current: CurrentUser,
    Path(room): Path<String>,
    Json(body): Json<ReadMarker>,
) -> Result<StatusCode, ApiError> {
    let room = RoomName::parse(&room)?;
    if body.seq < 0 {
        return Err(InvalidInput::new("invalid_seq", "seq must be 0 or greater").into());
    }
    if visible(&state, &room, &current).await? == RoomAccess::Missing {
        return Err(ApiError::NotFound(format!("no room named {room}")));
    }
    let user = current.user.id.as_str();
    let Some(read_seq) = state
        .store
        .set_read(user, &room, body.seq, body.mark_unread)
        .await?
    else {
        return Err(ApiError::bad_request(
            "invalid_seq",
            "seq is past the room's last event",
        ));
    };
    state
        .auth
        .read_moved(&current.user.id, &room, read_seq)
        .await;
    Ok(StatusCode::NO_CONTENT)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mentions_are_usernames_after_an_at_sign_that_starts_a_word() {
        assert_eq!(
            mentioned_usernames("hi @ada and @Grace.H, see @ada again"),
            vec!["ada".to_owned(), "grace.h".to_owned()]
        );
        assert!(mentioned_usernames("mail ada@example.com").is_empty());
        assert!(
            mentioned_usernames("@ @a @-x").is_empty(),
            "too short or not a name"
        );
        assert_eq!(mentioned_usernames("(@bob)"), vec!["bob".to_owned()]);
        let many: String = (0..80).map(|i| format!("@user{i} ")).collect();
        assert_eq!(mentioned_usernames(&many).len(), 50);
    }

    #[test]
    fn a_seq_in_a_path_is_a_positive_integer() {
        assert_eq!(parse_seq("42").ok(), Some(42));
        for bad in ["0", "-1", "x", "", "9999999999999999999999"] {
            assert!(parse_seq(bad).is_err(), "{bad:?}");
        }
    }
}
