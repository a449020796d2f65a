//! `GET /api/v1/presence?users=ada,grace` (DESIGN §5e): who is online, as
//! this process's presence table knows it ([`crate::presence`]), and when
//! each was last seen, to the minute.

use std::collections::BTreeMap;

use axum::extract::State;
use axum::routing::get;
use axum::Router;
use futures::StreamExt;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::{IntoParams, ToSchema};

use super::error::{ApiError, ErrorBody};
use super::extract::{CurrentUser, Query};
use crate::identity::Username;
use crate::AppState;

/// Most names one query may ask about.
pub const MAX_USERS: usize = 200;
/// Names resolved at once.
const LOOKUPS_AT_ONCE: usize = 8;

pub fn router() -> Router<AppState> {
    Router::new().route("/api/v1/presence", get(presence))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct PresenceParams {
    /// Usernames, comma-separated: 1 to 200 (duplicates count once).
    #[param(
        example = "ada,grace",
        pattern = "^[a-z0-9][a-z0-9_.-]{1,31}(,[a-z0-9][a-z0-9_.-]{1,31})*$"
    )]
    users: String,
}

/// One user's presence.
#[derive(Debug, Serialize, ToSchema)]
pub struct UserPresence {
    #[schema(example = "online")]
    pub status: PresenceStatus,
    /// When the user was last seen online, to the minute (the current minute
    /// while online); null when this deployment has not seen them since its
    /// processes started (presence is never stored).
    #[serde(serialize_with = "crate::domain::serialize_optional_timestamp")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub last_seen: Option<OffsetDateTime>,
}

#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum PresenceStatus {
    Online,
    Offline,
}

/// `{"presence": {"ada": {"status", "last_seen"}}}`: users that do not
/// exist are left out.
#[derive(Debug, Serialize, ToSchema)]
pub struct PresenceBody {
    pub presence: BTreeMap<String, UserPresence>,
}

/// Who of these users is online.
#[utoipa::path(
    get,
    path = "/api/v1/presence",
    tag = "accounts",
    security(("session" = []), ("bearer" = [])),
    params(PresenceParams),
    responses(
        (status = 200, description = "Each existing user's status and last-seen minute (names that do not exist are left out)", body = PresenceBody),
        (status = 400, description = "`users` missing or empty, more than 200 names, a name that is not a valid username, or an unknown parameter", body = ErrorBody),
        (status = 401, description = "Not signed in", body = ErrorBody),
        (status = 403, description = "Suspended", body = ErrorBody),
        (status = 503, description = "Database unavailable", body = ErrorBody),
    )
)]
pub async fn presence(
    State(state): State<AppState>,
    _current: CurrentUser,
    Query(params): Query<PresenceParams>,
) -> Result<axum::Json<PresenceBody>, ApiError> {
    let mut names: Vec<&str> = params.users.split(',').collect();
    if names.len() > MAX_USERS {
        return Err(ApiError::bad_request(
            "too_many_users",
            format!("ask about at most {MAX_USERS} users at once"),
        ));
    }
    names.sort_unstable();
    names.dedup();
    let usernames = names
        .iter()
        .map(|n| Username::parse(n))
        .collect::<Result<Vec<_>, _>>()?;
    let accounts = state.auth.accounts.clone();
    let found: Vec<_> = futures::stream::iter(usernames)
        .map(|name| {
            let accounts = accounts.clone();
            async move { accounts.user_by_username(&name).await }
        })
        .buffer_unordered(LOOKUPS_AT_ONCE)
        .collect()
        .await;
    let mut presence = BTreeMap::new();
    for user in found {
        let Some((user, _)) = user? else { continue };
        let status = state.signals.status(user.id.as_str());
        presence.insert(
            user.username.as_str().to_owned(),
            UserPresence {
                status: if status.online {
                    PresenceStatus::Online
                } else {
                    PresenceStatus::Offline
                },
                last_seen: status.last_seen,
            },
        );
    }
    Ok(axum::Json(PresenceBody { presence }))
}
