//! Creating rooms with a visibility, and managing their members.
//!
//! To a non-member a private room does not exist: every call here answers
//! 404 for it, exactly as for a missing room. Admins manage the members of
//! any room.

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post, put};
use axum::Router;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::error::{ApiError, ErrorBody};
use super::extract::{Json, Path};
use crate::auth::access::RoomAccess;
use crate::auth::extract::CurrentUser;
use crate::domain::RoomName;
use crate::identity::{Role, User, Username, Visibility};
use crate::store::accounts::{CreateError, RoomInfo};
use crate::store::RoomSummary;
use crate::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/rooms", post(create_room))
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
    /// Default: public.
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
        Ok(room) => Ok((StatusCode::CREATED, axum::Json(RoomBody { room }))),
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
    params(("room" = String, Path, description = "Room name", pattern = "^[a-z0-9][a-z0-9_-]{0,63}$")),
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

/// Add a member (owner or admin).
#[utoipa::path(
    put,
    path = "/api/v1/rooms/{room}/members/{username}",
    tag = "rooms",
    security(("session" = []), ("bearer" = [])),
    params(("room" = String, Path, description = "Room name", pattern = "^[a-z0-9][a-z0-9_-]{0,63}$"),
           ("username" = String, Path, description = "Username")),
    responses(
        (status = 204, description = "A member (also when already one)"),
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
    may_manage(&current, &info)?;
    let user = target(&state, &username).await?;
    state.auth.add_member(&room, &user.id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Remove a member (owner or admin); their open streams on the room close
/// with reason `removed`.
#[utoipa::path(
    delete,
    path = "/api/v1/rooms/{room}/members/{username}",
    tag = "rooms",
    security(("session" = []), ("bearer" = [])),
    params(("room" = String, Path, description = "Room name", pattern = "^[a-z0-9][a-z0-9_-]{0,63}$"),
           ("username" = String, Path, description = "Username")),
    responses(
        (status = 204, description = "Not a member any more (also when they were not one)"),
        (status = 400, description = "Invalid room name or username", body = ErrorBody),
        (status = 401, description = "Not signed in", body = ErrorBody),
        (status = 403, description = "Not the owner or an admin, or a cross-site cookie request", body = ErrorBody),
        (status = 404, description = "No such room (or a private room you are not in), or no such user", body = ErrorBody),
        (status = 409, description = "The owner cannot be removed, or a direct room (its members are fixed)", body = ErrorBody),
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
    may_manage(&current, &info)?;
    let user = target(&state, &username).await?;
    if info.owner_id.as_ref() == Some(&user.id) {
        return Err(ApiError::conflict(
            "owner_cannot_be_removed",
            "the room's owner cannot be removed",
        ));
    }
    state.auth.remove_member(&room, &user.id).await?;
    Ok(StatusCode::NO_CONTENT)
}
