//! Direct rooms: one private room per set of people, with fixed members.

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use axum::Router;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::error::{ApiError, ErrorBody};
use super::extract::{CurrentUser, Json};
use super::people::directory;
use crate::domain::RoomName;
use crate::identity::{User, Username, Visibility};
use crate::AppState;

/// Others a direct room may hold besides its creator.
pub const MAX_OTHERS: usize = 8;

pub fn router() -> Router<AppState> {
    Router::new().route("/api/v1/dms", post(open_direct_room))
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct OpenDirect {
    /// The other people (1 to 8 usernames; the caller may be listed too).
    #[schema(example = json!(["grace"]), min_items = 1, max_items = 9)]
    pub usernames: Vec<String>,
}

/// A direct room and its members.
#[derive(Debug, Serialize, ToSchema)]
pub struct DirectRoomShape {
    #[schema(value_type = String, example = "dm-0f3c9a1b2d4e5f60718293a4b5c6d7e8")]
    pub name: RoomName,
    pub last_seq: i64,
    /// Always `direct`.
    pub visibility: Visibility,
    /// Every member, by username.
    pub members: Vec<User>,
}

/// `{"room": {...}}`
#[derive(Debug, Serialize, ToSchema)]
pub struct DirectRoomBody {
    pub room: DirectRoomShape,
}

/// Open the direct room of the caller and `usernames`: the same room for
/// the same set of people, whoever asks.
#[utoipa::path(
    post,
    path = "/api/v1/dms",
    tag = "rooms",
    security(("session" = []), ("bearer" = [])),
    request_body = OpenDirect,
    responses(
        (status = 200, description = "The room existed", body = DirectRoomBody),
        (status = 201, description = "Created", body = DirectRoomBody),
        (status = 400, description = "No one but yourself, more than 8 others, an invalid username, or malformed JSON", body = ErrorBody),
        (status = 401, description = "Not signed in", body = ErrorBody),
        (status = 403, description = "Suspended, or a cross-site cookie request", body = ErrorBody),
        (status = 404, description = "No such user", body = ErrorBody),
        (status = 409, description = "A suspended user", body = ErrorBody),
        (status = 413, description = "Body larger than the limit", body = ErrorBody),
        (status = 415, description = "Content type is not application/json", body = ErrorBody),
        (status = 503, description = "Database unavailable", body = ErrorBody),
    )
)]
async fn open_direct_room(
    State(state): State<AppState>,
    current: CurrentUser,
    Json(body): Json<OpenDirect>,
) -> Result<(StatusCode, axum::Json<DirectRoomBody>), ApiError> {
    let me = &current.user;
    if body.usernames.len() > MAX_OTHERS + 1 {
        return Err(too_many());
    }
    let mut names: Vec<Username> = Vec::new();
    for raw in &body.usernames {
        let name = Username::parse(raw)?;
        if name != me.username && !names.contains(&name) {
            names.push(name);
        }
    }
    if names.is_empty() {
        return Err(ApiError::bad_request(
            "invalid_dm",
            "name at least one other person",
        ));
    }
    if names.len() > MAX_OTHERS {
        return Err(too_many());
    }
    let mut members = vec![me.clone()];
    for name in &names {
        let (user, _) = state
            .auth
            .accounts
            .user_by_username(name)
            .await?
            .ok_or_else(|| ApiError::NotFound(format!("no user named {name}")))?;
        if user.suspended {
            return Err(ApiError::conflict(
                "user_suspended",
                format!("{name} is suspended"),
            ));
        }
        members.push(user);
    }
    members.sort_by(|a, b| a.username.cmp(&b.username));
    let mut ids: Vec<_> = members.iter().map(|u| u.id.clone()).collect();
    ids.sort();
    let room = directory(&state)?
        .direct_room(&ids, &me.id, crate::domain::now_millis())
        .await?;
    if room.created {
        // Every replica drops what it cached about these memberships, and
        // each member's streams hear of the new room.
        for id in &ids {
            state.auth.add_member(&room.name, id).await?;
        }
    }
    let status = if room.created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((
        status,
        axum::Json(DirectRoomBody {
            room: DirectRoomShape {
                name: room.name,
                last_seq: room.last_seq,
                visibility: Visibility::Direct,
                members,
            },
        }),
    ))
}

fn too_many() -> ApiError {
    ApiError::bad_request(
        "invalid_dm",
        format!("a direct room holds at most {MAX_OTHERS} others"),
    )
}
