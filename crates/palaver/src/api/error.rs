//! The one error type of the HTTP layer and its JSON shape.
//!
//! Every error leaves as `{"error": {"code": "...", "message": "..."}}` with
//! the status of its variant. Database and internal errors are logged here
//! and reach the client only as an opaque message.

use std::sync::Arc;

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

use crate::domain::InvalidInput;
use crate::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{message}")]
    BadRequest { code: &'static str, message: String },
    #[error("{message}")]
    Unauthorized { code: &'static str, message: String },
    #[error("{message}")]
    Forbidden { code: &'static str, message: String },
    #[error("{0}")]
    NotFound(String),
    #[error("{message}")]
    Conflict { code: &'static str, message: String },
    #[error("method not allowed")]
    MethodNotAllowed,
    #[error("request body is too large")]
    PayloadTooLarge,
    #[error("content type must be application/json")]
    UnsupportedMediaType,
    #[error("too many requests")]
    RateLimited { retry_after_secs: u64 },
    #[error("too many open streams")]
    TooManyStreams,
    #[error("this client has as many open streams as it may")]
    TooManyClientStreams { retry_after_secs: u64 },
    #[error("database unavailable")]
    Unavailable(#[source] Arc<StoreError>),
    #[error("fan-out bus unavailable")]
    BusUnavailable,
    #[error("the identity provider's keys cannot be fetched")]
    OidcUnavailable,
    #[error("file store unavailable")]
    FileStoreUnavailable(String),
    #[error("the server is shutting down")]
    ShuttingDown,
    #[error("request timed out")]
    Timeout,
    #[error("internal error")]
    Internal(String),
}

/// The body of every error response.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorDetail {
    /// Stable machine-readable code, e.g. `invalid_room`, `rate_limited`.
    #[schema(example = "invalid_room")]
    pub code: String,
    /// Human-readable explanation.
    pub message: String,
}

impl ApiError {
    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        ApiError::BadRequest {
            code,
            message: message.into(),
        }
    }

    pub fn unauthorized(code: &'static str, message: impl Into<String>) -> Self {
        ApiError::Unauthorized {
            code,
            message: message.into(),
        }
    }

    pub fn forbidden(code: &'static str, message: impl Into<String>) -> Self {
        ApiError::Forbidden {
            code,
            message: message.into(),
        }
    }

    pub fn conflict(code: &'static str, message: impl Into<String>) -> Self {
        ApiError::Conflict {
            code,
            message: message.into(),
        }
    }

    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::BadRequest { .. } => StatusCode::BAD_REQUEST,
            ApiError::Unauthorized { .. } => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden { .. } => StatusCode::FORBIDDEN,
            ApiError::Conflict { .. } => StatusCode::CONFLICT,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::RateLimited { .. } | ApiError::TooManyClientStreams { .. } => {
                StatusCode::TOO_MANY_REQUESTS
            }
            ApiError::TooManyStreams
            | ApiError::Unavailable(_)
            | ApiError::BusUnavailable
            | ApiError::OidcUnavailable
            | ApiError::FileStoreUnavailable(_)
            | ApiError::ShuttingDown => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Timeout => StatusCode::REQUEST_TIMEOUT,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn code(&self) -> &'static str {
        match self {
            ApiError::BadRequest { code, .. }
            | ApiError::Unauthorized { code, .. }
            | ApiError::Forbidden { code, .. }
            | ApiError::Conflict { code, .. } => code,
            ApiError::NotFound(_) => "not_found",
            ApiError::MethodNotAllowed => "method_not_allowed",
            ApiError::PayloadTooLarge => "payload_too_large",
            ApiError::UnsupportedMediaType => "unsupported_media_type",
            ApiError::RateLimited { .. } => "rate_limited",
            ApiError::TooManyStreams => "too_many_streams",
            ApiError::TooManyClientStreams { .. } => "too_many_client_streams",
            ApiError::Unavailable(_) => "database_unavailable",
            ApiError::BusUnavailable => "bus_unavailable",
            ApiError::OidcUnavailable => "oidc_unavailable",
            ApiError::FileStoreUnavailable(_) => "file_store_unavailable",
            ApiError::ShuttingDown => "shutting_down",
            ApiError::Timeout => "timeout",
            ApiError::Internal(_) => "internal",
        }
    }
}

impl From<InvalidInput> for ApiError {
    fn from(e: InvalidInput) -> Self {
        ApiError::BadRequest {
            code: e.code,
            message: e.message,
        }
    }
}

impl From<crate::auth::AuthError> for ApiError {
    fn from(e: crate::auth::AuthError) -> Self {
        use crate::auth::AuthError;
        match e {
            AuthError::BadCredentials => {
                ApiError::unauthorized("bad_credentials", "wrong username or password")
            }
            AuthError::Suspended => ApiError::forbidden("suspended", "this account is suspended"),
            AuthError::Taken => ApiError::conflict("username_taken", "that username is taken"),
            AuthError::Throttled { retry_after_secs } => ApiError::RateLimited { retry_after_secs },
            AuthError::Store(e) => e.into(),
            AuthError::Hash(e) => ApiError::Internal(e.to_string()),
        }
    }
}

impl From<crate::state::RateLimited> for ApiError {
    fn from(limited: crate::state::RateLimited) -> Self {
        ApiError::RateLimited {
            retry_after_secs: limited.retry_after_secs,
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        ApiError::Unavailable(Arc::new(e))
    }
}

impl From<Arc<StoreError>> for ApiError {
    fn from(e: Arc<StoreError>) -> Self {
        ApiError::Unavailable(e)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        match &self {
            ApiError::Unavailable(cause) => {
                tracing::error!(error = %cause, "database unavailable");
            }
            ApiError::Internal(cause) => tracing::error!(error = %cause, "internal error"),
            ApiError::FileStoreUnavailable(cause) => {
                tracing::error!(error = %cause, "file store unavailable");
            }
            _ => {}
        }
        let status = self.status();
        let body = ErrorBody {
            error: ErrorDetail {
                code: self.code().to_owned(),
                message: self.to_string(),
            },
        };
        let mut response = (status, axum::Json(body)).into_response();
        if let ApiError::RateLimited { retry_after_secs }
        | ApiError::TooManyClientStreams { retry_after_secs } = self
        {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(retry_after_secs));
        }
        response
    }
}
