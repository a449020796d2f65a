//! Creating rooms with a visibility, and managing their members.
//!
//! To a non-member a private room does not exist: every call here answers
//! 404 for it, exactly as for a missing room. Admins manage the members of
//! any room.

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, patch, post, put};
use axum::Router;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::error::{ApiError, ErrorBody};
use super::extract::{CurrentUser, Json, Path};
use crate::auth::access::RoomAccess;
use crate::domain::RoomName;
use crate::identity::{Role, User, Username, Visibility};
use crate::store::accounts::{CreateError, RoomInfo, RoomTopic};
use crate::store::RoomSummary;
use crate::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/rooms", post(create_room))
        .route("/api/v1/rooms/{room}", patch(set_topic))
        .route("/api/v1/rooms/{room}/members", get(list_members))
        .route(
            "/api/v1/rooms/{room}/members/{username}",
            put(add_member).delete(remove_member),
        )
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct CreateRoom {
    #[schema(example = "design", pattern = "^[a-z0-9][a-z0-9_-]{0,63}$")]
    pub name: String,
    /// `public` or `private` (default: public); direct rooms are opened
    /// with `POST /api/v1/dms`.
    #[schema(value_type = Option<String>, example = "private", pattern = "^(public|private)$")]
    pub visibility: Option<Visibility>,
}

/// `{"room": {...}}`
#[derive(Debug, Serialize, ToSchema)]
pub struct RoomBody {
    pub room: RoomSummary,
}

/// Create a room; the creator is its owner and first member.
#[utoipa::path(
    post,
    path = "/api/v1/rooms",
    tag = "rooms",
    security(("session" = []), ("bearer" = [])),
    request_body = CreateRoom,
    responses(
        (status = 201, description = "Created", body = RoomBody),
        (status = 400, description = "Invalid name or visibility (`direct` rooms are opened with POST /api/v1/dms), or malformed JSON", body = ErrorBody),
        (status = 401, description = "Not signed in", body = ErrorBody),
        (status = 403, description = "Suspended, or a cross-site cookie request", body = ErrorBody),
        (status = 409, description = "A room of that name exists (private rooms included)", body = ErrorBody),
        (status = 503, description = "Database unavailable", body = ErrorBody),
    )
)]
async fn create_room(
    State(state): State<AppState>,
    current: CurrentUser,
    Json(body): Json<CreateRoom>,
) -> Result<(StatusCode, axum::Json<RoomBody>), ApiError> {
    let room = RoomName::parse(&body.name)?;
    let visibility = body.visibility.unwrap_or(Visibility::Public);
    if visibility == Visibility::Direct {
        return Err(ApiError::bad_request(
            "invalid_visibility",
            "direct rooms are opened with POST /api/v1/dms",
        ));
    }
    match state
        .auth
        .create_room(&room, visibility, &current.user)
        .await
    {
        Ok(mut room) => {
            room.owner = Some(current.user.username.to_string());
            Ok((StatusCode::CREATED, axum::Json(RoomBody { room })))
        }
        Err(CreateError::Taken) => Err(ApiError::conflict(
            "room_exists",
            format!("a room named {room} exists"),
        )),
        Err(CreateError::Store(e)) => Err(e.into()),
    }
}

/// `{"members": [user, ...]}`
#[derive(Debug, Serialize, ToSchema)]
pub struct MemberList {
    pub members: Vec<User>,
}

/// The room for a member call: 404 when missing or hidden from the caller
/// (unless they are an admin).
async fn managed_room(
    state: &AppState,
    room: &str,
    current: &CurrentUser,
) -> Result<(RoomName, RoomInfo), ApiError> {
    let room = RoomName::parse(room)?;
    let missing = || ApiError::NotFound(format!("no room named {room}"));
    match state.auth.room_access(&room, &current.user).await? {
        RoomAccess::Allowed(info) => Ok((room, info)),
        RoomAccess::Hidden(info) if current.user.role == Role::Admin => Ok((room, info)),
        RoomAccess::Hidden(_) | RoomAccess::Missing => Err(missing()),
    }
}

/// A direct room's members are fixed (§5d): 409 for every member call
/// that would change them.
async fn not_direct(state: &AppState, room: &RoomName) -> Result<(), ApiError> {
    let direct = match state.store.clone().search() {
        Some(directory) => directory.is_direct(room).await?.unwrap_or(false),
        None => false,
    };
    if direct {
        return Err(ApiError::conflict(
            "direct_room",
            "a direct room's members are fixed",
        ));
    }
    Ok(())
}

fn may_manage(current: &CurrentUser, info: &RoomInfo) -> Result<(), ApiError> {
    if current.user.role == Role::Admin || info.owner_id.as_ref() == Some(&current.user.id) {
        Ok(())
    } else {
        Err(ApiError::forbidden(
            "not_owner",
            "only the room's owner or an admin may manage its members",
        ))
    }
}

/// List a room's members.
#[utoipa::path(
    get,
    path = "/api/v1/rooms/{room}/members",
    tag = "rooms",
    security(("session" = []), ("bearer" = [])),
    params(("room" = String, Path, description = "Room name", example = "general", pattern = "^[a-z0-9][a-z0-9_-]{0,63}$")),
    responses(
        (status = 200, description = "Members, by username", body = MemberList),
        (status = 400, description = "Invalid room name", body = ErrorBody),
        (status = 401, description = "Not signed in", body = ErrorBody),
        (status = 404, description = "No such room (or a private room you are not in)", body = ErrorBody),
        (status = 503, description = "Database unavailable", body = ErrorBody),
    )
)]
async fn list_members(
    State(state): State<AppState>,
    current: CurrentUser,
    Path(room): Path<String>,
) -> Result<axum::Json<MemberList>, ApiError> {
    let (room, _) = managed_room(&state, &room, &current).await?;
    let members = state.auth.accounts.members(&room).await?;
    Ok(axum::Json(MemberList { members }))
}

/// Whether a member call names the caller.
fn is_self(current: &CurrentUser, username: &str) -> Result<bool, ApiError> {
    Ok(Username::parse(username)? == current.user.username)
}

async fn target(state: &AppState, username: &str) -> Result<User, ApiError> {
    let username = Username::parse(username)?;
    state
        .auth
        .accounts
        .user_by_username(&username)
        .await?
        .map(|(user, _)| user)
        .ok_or_else(|| ApiError::NotFound(format!("no user named {username}")))
}

/// Add a member (owner or admin); naming yourself joins a public room.
#[utoipa::path(
    put,
    path = "/api/v1/rooms/{room}/members/{username}",
    tag = "rooms",
    security(("session" = []), ("bearer" = [])),
    params(("room" = String, Path, description = "Room name", example = "general", pattern = "^[a-z0-9][a-z0-9_-]{0,63}$"),
           ("username" = String, Path, description = "Username (case and look-alike spellings fold onto one account; the pattern is the ASCII part of what is accepted)", example = "ada", pattern = r"^[A-Za-z0-9][A-Za-z0-9_.-]{1,31}$")),
    responses(
        (status = 204, description = "A member (also when already one); naming yourself joins a public room"),
        (status = 400, description = "Invalid room name or username", body = ErrorBody),
        (status = 401, description = "Not signed in", body = ErrorBody),
        (status = 403, description = "Not the owner or an admin, or a cross-site cookie request", body = ErrorBody),
        (status = 404, description = "No such room (or a private room you are not in), or no such user", body = ErrorBody),
        (status = 409, description = "A direct room (its members are fixed)", body = ErrorBody),
        (status = 503, description = "Database unavailable", body = ErrorBody),
    )
)]
async fn add_member(
    State(state): State<AppState>,
    current: CurrentUser,
    Path((room, username)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    let (room, info) = managed_room(&state, &room, &current).await?;
    not_direct(&state, &room).await?;
    if !(is_self(&current, &username)? && info.visibility == Visibility::Public) {
        may_manage(&current, &info)?;
    }
    let user = target(&state, &username).await?;
    state.auth.add_member(&room, &user.id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Remove a member (owner or admin), or leave a room by naming yourself;
/// their open streams on the room close with reason `removed`.
#[utoipa::path(
    delete,
    path = "/api/v1/rooms/{room}/members/{username}",
    tag = "rooms",
    security(("session" = []), ("bearer" = [])),
    params(("room" = String, Path, description = "Room name", example = "general", pattern = "^[a-z0-9][a-z0-9_-]{0,63}$"),
           ("username" = String, Path, description = "Username (case and look-alike spellings fold onto one account; the pattern is the ASCII part of what is accepted)", example = "ada", pattern = r"^[A-Za-z0-9][A-Za-z0-9_.-]{1,31}$")),
    responses(
        (status = 204, description = "Not a member any more (also when they were not one)"),
        (status = 400, description = "Invalid room name or username", body = ErrorBody),
        (status = 401, description = "Not signed in", body = ErrorBody),
        (status = 403, description = "Not the owner or an admin, or a cross-site cookie request", body = ErrorBody),
        (status = 404, description = "No such room (or a private room you are not in), or no such user", body = ErrorBody),
        (status = 409, description = "The owner cannot be removed (nor leave their private room), or a direct room (its members are fixed)", body = ErrorBody),
        (status = 503, description = "Database unavailable", body = ErrorBody),
    )
)]
async fn remove_member(
    State(state): State<AppState>,
    current: CurrentUser,
    Path((room, username)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    let (room, info) = managed_room(&state, &room, &current).await?;
    not_direct(&state, &room).await?;
    let leaving = is_self(&current, &username)?;
    if !leaving {
        may_manage(&current, &info)?;
    }
    let user = target(&state, &username).await?;
    let owner = info.owner_id.as_ref() == Some(&user.id);
    if owner && leaving && info.visibility == Visibility::Private {
        return Err(ApiError::conflict(
            "owner_cannot_leave",
            "the owner of a private room cannot leave it",
        ));
    }
    if owner && !leaving {
        return Err(ApiError::conflict(
            "owner_cannot_be_removed",
            "the room's owner cannot be removed",
        ));
    }
    state.auth.remove_member(&room, &user.id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct UpdateRoom {
    /// At most 250 characters after trimming, no control characters; empty
    /// clears it.
    #[schema(
        example = "Design reviews, Thursdays",
        max_length = 250,
        pattern = r"^[^\x00-\x1f\x7f-\x9f]*$"
    )]
    pub topic: String,
}

/// `{"room": {...}}` with the room's topic.
#[derive(Debug, Serialize, ToSchema)]
pub struct RoomTopicBody {
    pub room: RoomTopic,
}

/// Longest topic, in characters.
pub const MAX_TOPIC_CHARS: usize = 250;

/// Set a room's topic (owner or admin).
#[utoipa::path(
    patch,
    path = "/api/v1/rooms/{room}",
    tag = "rooms",
    security(("session" = []), ("bearer" = [])),
    params(("room" = String, Path, description = "Room name", example = "general", pattern = "^[a-z0-9][a-z0-9_-]{0,63}$")),
    request_body = UpdateRoom,
    responses(
        (status = 200, description = "The room with its new topic", body = RoomTopicBody),
        (status = 400, description = "Invalid room name or topic, or malformed JSON", body = ErrorBody),
        (status = 401, description = "Not signed in", body = ErrorBody),
        (status = 403, description = "Not the owner or an admin, or a cross-site cookie request", body = ErrorBody),
        (status = 404, description = "No such room (or a private room you are not in)", body = ErrorBody),
        (status = 415, description = "Content type is not application/json", body = ErrorBody),
        (status = 503, description = "Database unavailable", body = ErrorBody),
    )
)]
async fn set_topic(
    State(state): State<AppState>,
    current: CurrentUser,
    Path(room): Path<String>,
    Json(body): Json<UpdateRoom>,
) -> Result<axum::Json<RoomTopicBody>, ApiError> {
    let (room, info) = managed_room(&state, &room, &current).await?;
    may_manage(&current, &info)?;
    let topic = body.topic.trim();
    if topic.chars().count() > MAX_TOPIC_CHARS || topic.chars().any(char::is_control) {
        return Err(ApiError::bad_request(
            "invalid_topic",
            format!("a topic is at most {MAX_TOPIC_CHARS} characters, without control characters"),
        ));
    }
    let room = state
        .auth
        .accounts
        .set_topic(&room, topic)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no room named {room}")))?;
    Ok(axum::Json(RoomTopicBody { room }))
}
