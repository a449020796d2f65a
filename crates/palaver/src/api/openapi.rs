//! The OpenAPI document, generated from the handlers' annotations.

use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

#[derive(OpenApi)]
#[openapi(
    info(title = "Palaver", description = "Self-hosted chat: rooms, history, live streams."),
    modifiers(&SecuritySchemes),
    paths(
        super::auth::register,
        super::auth::login,
        super::auth::logout,
        super::auth::me,
        super::users::suspend,
        super::users::unsuspend,
        super::members::create_room,
        super::members::list_members,
        super::members::add_member,
        super::members::remove_member,
        super::rooms::list_rooms,
        super::rooms::send_message,
        super::rooms::list_messages,
        super::stream::stream,
        super::chat::send,
        super::chat::read,
        super::health::healthz,
        super::health::readyz,
        super::health::metrics_text,
    ),
    components(schemas(
        crate::domain::Message,
        crate::store::Page,
        crate::store::RoomSummary,
        crate::identity::User,
        crate::identity::Role,
        crate::identity::Visibility,
        super::auth::UserBody,
        super::auth::Register,
        super::auth::Login,
        super::members::CreateRoom,
        super::members::RoomBody,
        super::members::MemberList,
        super::error::ErrorBody,
        super::error::ErrorDetail,
    )),
    tags(
        (name = "accounts", description = "Local accounts, sessions, and admin actions on users"),
        (name = "rooms", description = "Rooms, their members and their messages"),
        (name = "streams", description = "Live message streams"),
        (name = "seed", description = "Compatibility with the original /chat endpoint"),
        (name = "operations", description = "Health, readiness, metrics"),
    )
)]
pub struct ApiDoc;

/// The two ways to sign a request in: the session cookie (from register or
/// login) and, with OIDC on, a bearer JWT.
struct SecuritySchemes;

impl Modify for SecuritySchemes {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "session",
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::with_description(
                crate::auth::session::COOKIE,
                "Set by register and login; HttpOnly, SameSite=Lax. Writes and WebSocket \
                 upgrades with it must come from this site's Origin.",
            ))),
        );
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .description(Some(
                        "An OIDC access or ID token from --oidc-issuer, for --oidc-audience",
                    ))
                    .build(),
            ),
        );
    }
}

/// `GET /api/v1/openapi.json`
pub async fn document() -> axum::Json<utoipa::openapi::OpenApi> {
    axum::Json(ApiDoc::openapi())
}
