//! People: finding users by the start of their username or display name.

use axum::extract::State;
use axum::routing::get;
use axum::Router;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::error::{ApiError, ErrorBody};
use super::extract::{CurrentUser, Query};
use crate::identity::User;
use crate::AppState;

/// Longest `query` looked up (a username is at most 32 characters, a
/// display name 64).
const MAX_QUERY_CHARS: usize = 64;

pub fn router() -> Router<AppState> {
    Router::new().route("/api/v1/users", get(find_people))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct PeopleParams {
    /// The start of a username or display name, case-insensitive (at most
    /// 64 characters; empty lists everyone, by username).
    #[param(max_length = 64)]
    query: Option<String>,
    /// 1-50, default 20.
    #[param(minimum = 1, maximum = 50)]
    limit: Option<i64>,
}

/// `{"users": [user, ...]}`
#[derive(Debug, Serialize, ToSchema)]
pub struct UserList {
    pub users: Vec<User>,
}

/// Find people: prefix match on username or display name, suspended users
/// left out, by username.
#[utoipa::path(
    get,
    path = "/api/v1/users",
    tag = "accounts",
    security(("session" = []), ("bearer" = [])),
    params(PeopleParams),
    responses(
        (status = 200, description = "Matching users, by username", body = UserList),
        (status = 400, description = "Query longer than 64 characters, limit outside 1-50, or an unknown parameter", body = ErrorBody),
        (status = 401, description = "Not signed in", body = ErrorBody),
        (status = 403, description = "Suspended", body = ErrorBody),
        (status = 503, description = "Database unavailable", body = ErrorBody),
    )
)]
async fn find_people(
    State(state): State<AppState>,
    _current: CurrentUser,
    Query(params): Query<PeopleParams>,
) -> Result<axum::Json<UserList>, ApiError> {
    let query = params.query.unwrap_or_default();
    if query.chars().count() > MAX_QUERY_CHARS {
        return Err(ApiError::bad_request(
            "invalid_query",
            format!("query is at most {MAX_QUERY_CHARS} characters"),
        ));
    }
    let limit = match params.limit {
        // No name holds a control character: such a query matches nobody
        // (and PostgreSQL refuses a NUL in a text parameter).
        Some(1..=50) | None if query.chars().any(char::is_control) => {
            return Ok(axum::Json(UserList { users: Vec::new() }));
        }
        None => 20,
        Some(n @ 1..=50) => n as u32,
        Some(_) => return Err(ApiError::bad_request("invalid_limit", "limit is 1 to 50")),
    };
    let users = directory(&state)?
        .people(&query.trim().to_lowercase(), limit)
        .await?;
    Ok(axum::Json(UserList { users }))
}

/// The store's people, direct rooms, search and file rows.
pub(crate) fn directory(
    state: &AppState,
) -> Result<std::sync::Arc<dyn crate::store::search::SearchStore>, ApiError> {
    state
        .store
        .clone()
        .search()
        .ok_or_else(|| ApiError::Internal("this store has no directory".into()))
}
