//! Local accounts: register, sign in, sign out, who am I (DESIGN §5a).

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::error::{ApiError, ErrorBody};
use super::extract::{ClientIp, Credential, CurrentUser, Https, Json, SameSiteOnly};
use crate::auth::{session, AuthError, SignedIn};
use crate::identity::{DisplayName, Password, User, Username};
use crate::AppState;

/// `local_accounts`: whether register and login are mounted.
pub fn router(local_accounts: bool) -> Router<AppState> {
    let router = Router::new()
        .route("/api/v1/auth/logout", post(logout))
        .route("/api/v1/me", get(me).patch(update_me))
        .route("/api/v1/me/password", post(change_password));
    if local_accounts {
        router
            .route("/api/v1/auth/register", post(register))
            .route("/api/v1/auth/login", post(login))
    } else {
        router
    }
}

/// `{"user": {...}}`
#[derive(Debug, Serialize, ToSchema)]
pub struct UserBody {
    pub user: User,
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct Register {
    /// Normalised (NFKC, lower case), then `^[a-z0-9][a-z0-9_.-]{1,31}$`
    /// (the schema's pattern is the ASCII part of what is accepted).
    #[schema(
        example = "ada",
        min_length = 2,
        max_length = 32,
        pattern = r"^[A-Za-z0-9][A-Za-z0-9_.-]{1,31}$"
    )]
    pub username: String,
    /// At least 10 characters, at most 1024, no control characters.
    #[schema(
        example = "correct horse battery",
        min_length = 10,
        max_length = 1024,
        pattern = r"^[^\x00-\x1f\x7f-\x9f]*$"
    )]
    pub password: String,
    /// Shown on messages, 1-64 characters after trimming, no control
    /// characters; default: the username.
    #[schema(
        example = "Ada",
        min_length = 1,
        max_length = 64,
        pattern = r"^[^\x00-\x1f\x7f-\x9f]*[^\s\x00-\x1f\x7f-\x9f][^\x00-\x1f\x7f-\x9f]*$"
    )]
    pub display_name: Option<String>,
}

/// Create a local account and sign in.
#[utoipa::path(
    post,
    path = "/api/v1/auth/register",
    tag = "accounts",
    request_body = Register,
    responses(
        (status = 201, description = "Created (the first account is admin) and signed in: `Set-Cookie: palaver_session=...`", body = UserBody),
        (status = 400, description = "Invalid username, password or display name, or malformed JSON", body = ErrorBody),
        (status = 403, description = "Registration is closed, or the request comes from another site", body = ErrorBody),
        (status = 409, description = "Username taken", body = ErrorBody),
        (status = 415, description = "Content type is not application/json", body = ErrorBody),
        (status = 429, description = "Too many registrations from this address (a burst of `--registrations-per-ip-burst`, then `--registrations-per-ip-per-hour`); see Retry-After", body = ErrorBody),
        (status = 503, description = "Database unavailable", body = ErrorBody),
    )
)]
async fn register(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    Https(https): Https,
    _: SameSiteOnly,
    Json(body): Json<Register>,
) -> Result<Response, ApiError> {
    let auth = &state.auth;
    if !auth.settings.registration_open {
        return Err(ApiError::forbidden(
            "registration_closed",
            "registration is closed; ask an operator for an account",
        ));
    }
    let username = Username::parse(&body.username)?;
    let password = Password::parse(&body.password)?;
    let display_name =
        DisplayName::parse(body.display_name.as_deref().unwrap_or(username.as_str()))?;
    auth.throttle
        .register(ip)
        .map_err(|retry_after_secs| ApiError::RateLimited { retry_after_secs })?;
    let user = auth
        .create_local_user(username, display_name.as_str().to_owned(), &password, None)
        .await?;
    let signed_in = auth.start_session(user).await?;
    Ok(with_session(StatusCode::CREATED, signed_in, https))
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct Login {
    #[schema(example = "ada")]
    pub username: String,
    #[schema(example = "correct horse battery")]
    pub password: String,
}

/// Sign in with a username and password.
#[utoipa::path(
    post,
    path = "/api/v1/auth/login",
    tag = "accounts",
    request_body = Login,
    responses(
        (status = 200, description = "Signed in: `Set-Cookie: palaver_session=...`", body = UserBody),
        (status = 400, description = "Malformed JSON", body = ErrorBody),
        (status = 401, description = "Wrong username or password (the same answer for an unknown user)", body = ErrorBody),
        (status = 403, description = "The account is suspended, or the request comes from another site", body = ErrorBody),
        (status = 415, description = "Content type is not application/json", body = ErrorBody),
        (status = 429, description = "Too many attempts for this username, or too many failed sign-ins from this address (`--login-failures-per-ip` a minute); see Retry-After", body = ErrorBody),
        (status = 503, description = "Database unavailable", body = ErrorBody),
    )
)]
async fn login(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    Https(https): Https,
    _: SameSiteOnly,
    Json(body): Json<Login>,
) -> Result<Response, ApiError> {
    let auth = &state.auth;
    let key = Username::parse(&body.username).ok();
    let attempt = auth
        .throttle
        .sign_in(ip, key.as_ref())
        .map_err(|retry_after_secs| ApiError::RateLimited { retry_after_secs })?;
    if body.password.len() > 4 * Password::MAX_CHARS {
        attempt.failed();
        return Err(AuthError::BadCredentials.into());
    }
    // Only failures count against the address (credential stuffing).
    let user = match auth.check_password(&body.username, &body.password).await {
        Err(AuthError::BadCredentials) => {
            attempt.failed();
            return Err(AuthError::BadCredentials.into());
        }
        checked => checked?,
    };
    drop(attempt);
    let signed_in = auth.start_session(user).await?;
    Ok(with_session(StatusCode::OK, signed_in, https))
}

fn with_session(status: StatusCode, signed_in: SignedIn, https: bool) -> Response {
    let cookie = session::set_cookie(&signed_in.token, https);
    let mut response = (
        status,
        axum::Json(UserBody {
            user: signed_in.user,
        }),
    )
        .into_response();
    response.headers_mut().insert(header::SET_COOKIE, cookie);
    response.headers_mut().insert(
        header::CACHE_CONTROL,
        axum::http::HeaderValue::from_static("no-store"),
    );
    response
}

/// Sign out: the session is revoked on the server and the cookie cleared.
#[utoipa::path(
    post,
    path = "/api/v1/auth/logout",
    tag = "accounts",
    security(("session" = []), ("bearer" = [])),
    responses(
        (status = 204, description = "Signed out"),
        (status = 401, description = "Not signed in", body = ErrorBody),
        (status = 403, description = "The request comes from another site", body = ErrorBody),
        (status = 503, description = "Database unavailable", body = ErrorBody),
    )
)]
async fn logout(
    State(state): State<AppState>,
    Https(https): Https,
    current: CurrentUser,
) -> Result<Response, ApiError> {
    if let Credential::Session(id) = &current.credential {
        state.auth.end_session(id).await?;
    }
    let mut response = StatusCode::NO_CONTENT.into_response();
    response
        .headers_mut()
        .insert(header::SET_COOKIE, session::clear_cookie(https));
    Ok(response)
}

/// The signed-in user.
#[utoipa::path(
    get,
    path = "/api/v1/me",
    tag = "accounts",
    security(("session" = []), ("bearer" = [])),
    responses(
        (status = 200, description = "Who you are", body = UserBody),
        (status = 401, description = "Not signed in", body = ErrorBody),
        (status = 403, description = "The account is suspended", body = ErrorBody),
        (status = 503, description = "Database unavailable", body = ErrorBody),
    )
)]
async fn me(current: CurrentUser) -> axum::Json<UserBody> {
    axum::Json(UserBody { user: current.user })
}

/// `PATCH /api/v1/me`: what may change of your own account.
#[derive(Debug, Deserialize, ToSchema)]
pub struct UpdateMe {
    /// 1-64 characters after trimming, no control characters.
    #[schema(
        example = "Ada Lovelace",
        min_length = 1,
        max_length = 64,
        pattern = r"^[^\x00-\x1f\x7f-\x9f]*[^\s\x00-\x1f\x7f-\x9f][^\x00-\x1f\x7f-\x9f]*$"
    )]
    pub display_name: String,
}

/// Change your display name; later messages carry the new name.
#[utoipa::path(
    patch,
    path = "/api/v1/me",
    tag = "accounts",
    security(("session" = []), ("bearer" = [])),
    request_body = UpdateMe,
    responses(
        (status = 200, description = "The updated user", body = UserBody),
        (status = 400, description = "Invalid display name, or malformed JSON", body = ErrorBody),
        (status = 401, description = "Not signed in", body = ErrorBody),
        (status = 403, description = "Suspended, or a cross-site cookie request", body = ErrorBody),
        (status = 415, description = "Content type is not application/json", body = ErrorBody),
        (status = 503, description = "Database unavailable", body = ErrorBody),
    )
)]
async fn update_me(
    State(state): State<AppState>,
    current: CurrentUser,
    Json(body): Json<UpdateMe>,
) -> Result<axum::Json<UserBody>, ApiError> {
    let name = DisplayName::parse(&body.display_name)?;
    let user = state
        .auth
        .set_display_name(&current.user, name.as_str())
        .await?
        .ok_or_else(|| ApiError::unauthorized("not_signed_in", "the account no longer exists"))?;
    Ok(axum::Json(UserBody { user }))
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct ChangePassword {
    #[schema(example = "correct horse battery", max_length = 1024)]
    pub current_password: String,
    /// 10-1024 characters, no control characters.
    #[schema(
        example = "a longer passphrase",
        min_length = 10,
        max_length = 1024,
        pattern = r"^[^\x00-\x1f\x7f-\x9f]*$"
    )]
    pub new_password: String,
}

/// Change your password; every other session of yours is signed out (this
/// one stays).
#[utoipa::path(
    post,
    path = "/api/v1/me/password",
    tag = "accounts",
    security(("session" = []), ("bearer" = [])),
    request_body = ChangePassword,
    responses(
        (status = 204, description = "Changed; your other sessions are revoked"),
        (status = 400, description = "The new password is too short or too long, or malformed JSON", body = ErrorBody),
        (status = 401, description = "Not signed in, or the current password is wrong", body = ErrorBody),
        (status = 403, description = "Suspended, or a cross-site cookie request", body = ErrorBody),
        (status = 415, description = "Content type is not application/json", body = ErrorBody),
        (status = 429, description = "Too many attempts; see Retry-After", body = ErrorBody),
        (status = 503, description = "Database unavailable", body = ErrorBody),
    )
)]
async fn change_password(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    current: CurrentUser,
    Json(body): Json<ChangePassword>,
) -> Result<StatusCode, ApiError> {
    let auth = &state.auth;
    let new = Password::parse(&body.new_password)?;
    // Throttled like a sign-in: a wrong current password counts as a
    // failure against the address and the username.
    let attempt = auth
        .throttle
        .sign_in(ip, Some(&current.user.username))
        .map_err(|retry_after_secs| ApiError::RateLimited { retry_after_secs })?;
    if body.current_password.len() > 4 * Password::MAX_CHARS {
        attempt.failed();
        return Err(crate::auth::AuthError::BadCredentials.into());
    }
    let keep = match &current.credential {
        Credential::Session(id) => Some(id),
        Credential::Bearer => None,
    };
    match auth
        .change_password(&current.user, keep, &body.current_password, &new)
        .await
    {
        Err(crate::auth::AuthError::BadCredentials) => {
            attempt.failed();
            Err(crate::auth::AuthError::BadCredentials.into())
        }
        other => {
            other?;
            Ok(StatusCode::NO_CONTENT)
        }
    }
}
