//! The HTTP API: one router per resource, merged by role.

pub mod auth;
pub mod chat;
pub mod dms;
pub mod error;
pub mod extract;
pub mod files;
pub mod health;
pub mod members;
pub mod messages;
pub mod multiplex;
pub mod openapi;
pub mod pages;
pub mod params;
pub mod people;
pub mod presence;
pub mod rooms;
pub mod search;
pub mod stream;
pub mod users;

use axum::http::{Method, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

use crate::auth::Settings;
use crate::config::Roles;
use crate::AppState;
use error::ApiError;

/// The routes of the roles this process serves (without middleware).
pub fn routes(roles: Roles, settings: Settings) -> Router<AppState> {
    let mut router = health::router();
    if roles.api && settings.seed_api {
        router = router.merge(chat::router());
    }
    if roles.api {
        router = router
            .merge(rooms::router())
            .merge(members::router())
            .merge(messages::router())
            .merge(auth::router(settings.local_accounts))
            .merge(users::router())
            .merge(people::router())
            .merge(presence::router())
            .merge(dms::router())
            .merge(search::router())
            .merge(files::router())
            .route("/api/v1/openapi.json", get(openapi::document));
    }
    if roles.gateway {
        router = router.merge(stream::router()).merge(multiplex::router());
    }
    if roles.web {
        router = router.merge(crate::web::router());
    }
    router
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
}

/// The answer to a request whose handler panicked: an opaque 500.
pub fn panicked(_panic: Box<dyn std::any::Any + Send>) -> Response {
    ApiError::Internal("handler panicked".into()).into_response()
}

/// The answer to a request over its time: 408 in the JSON error shape.
pub async fn timed_out(_: tower::BoxError) -> ApiError {
    ApiError::Timeout
}

async fn not_found(method: Method, uri: Uri) -> ApiError {
    ApiError::NotFound(format!("no route for {method} {}", uri.path()))
}

async fn method_not_allowed() -> ApiError {
    ApiError::MethodNotAllowed
}
