//! Admin actions on users: suspend and reinstate.

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use axum::Router;

use super::error::{ApiError, ErrorBody};
use super::extract::{CurrentUser, Path};
use crate::identity::{Role, Username};
use crate::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/users/{username}/suspend", post(suspend))
        .route("/api/v1/users/{username}/unsuspend", post(unsuspend))
}

/// Suspend a user (admin): their sessions are revoked, their streams closed,
/// their logins and sends refused.
#[utoipa::path(
    post,
    path = "/api/v1/users/{username}/suspend",
    tag = "accounts",
    security(("session" = []), ("bearer" = [])),
    params(("username" = String, Path, description = "Username (case and look-alike spellings fold onto one account; the pattern is the ASCII part of what is accepted)", example = "ada", pattern = r"^[A-Za-z0-9][A-Za-z0-9_.-]{1,31}$")),
    responses(
        (status = 204, description = "Suspended"),
        (status = 400, description = "Invalid username", body = ErrorBody),
        (status = 401, description = "Not signed in", body = ErrorBody),
        (status = 403, description = "Not an admin, or a cross-site cookie request", body = ErrorBody),
        (status = 404, description = "No such user", body = ErrorBody),
        (status = 409, description = "Admins cannot suspend themselves", body = ErrorBody),
        (status = 503, description = "Database unavailable", body = ErrorBody),
    )
)]
async fn suspend(
    State(state): State<AppState>,
    current: CurrentUser,
    Path(username): Path<String>,
) -> Result<StatusCode, ApiError> {
    set(state, current, username, true).await
}

/// Reinstate a suspended user (admin).
#[utoipa::path(
    post,
    path = "/api/v1/users/{username}/unsuspend",
    tag = "accounts",
    security(("session" = []), ("bearer" = [])),
    params(("username" = String, Path, description = "Username (case and look-alike spellings fold onto one account; the pattern is the ASCII part of what is accepted)", example = "ada", pattern = r"^[A-Za-z0-9][A-Za-z0-9_.-]{1,31}$")),
    responses(
        (status = 204, description = "Reinstated"),
        (status = 400, description = "Invalid username", body = ErrorBody),
        (status = 401, description = "Not signed in", body = ErrorBody),
        (status = 403, description = "Not an admin, or a cross-site cookie request", body = ErrorBody),
        (status = 404, description = "No such user", body = ErrorBody),
        (status = 503, description = "Database unavailable", body = ErrorBody),
    )
)]
async fn unsuspend(
    State(state): State<AppState>,
    current: CurrentUser,
    Path(username): Path<String>,
) -> Result<StatusCode, ApiError> {
    set(state, current, username, false).await
}

async fn set(
    state: AppState,
    current: CurrentUser,
    username: String,
    suspended: bool,
) -> Result<StatusCode, ApiError> {
    if current.user.role != Role::Admin {
        return Err(ApiError::forbidden("not_admin", "only admins may do this"));
    }
    let username = Username::parse(&username)?;
    if suspended && username == current.user.username {
        return Err(ApiError::conflict(
            "cannot_suspend_self",
            "admins cannot suspend themselves",
        ));
    }
    state
        .auth
        .set_suspended(&username, suspended)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no user named {username}")))?;
    Ok(StatusCode::NO_CONTENT)
}
