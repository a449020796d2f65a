//! The OpenAPI document, generated from the handlers' annotations.

use serde_json::{json, Value};
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
        super::auth::update_me,
        super::auth::change_password,
        super::users::suspend,
        super::users::unsuspend,
        super::members::create_room,
        super::members::list_members,
        super::members::add_member,
        super::members::remove_member,
        super::members::set_topic,
        super::rooms::list_rooms,
        super::people::find_people,
        super::presence::presence,
        super::dms::open_direct_room,
        super::search::search,
        super::files::upload,
        super::files::download,
        super::rooms::send_message,
        super::rooms::list_messages,
        super::messages::edit_message,
        super::messages::delete_message,
        super::messages::add_reaction,
        super::messages::remove_reaction,
        super::messages::mark_read,
        super::multiplex::multiplexed,
        super::stream::stream,
        super::chat::send,
        super::chat::read,
        super::health::healthz,
        super::health::readyz,
        super::health::metrics_text,
    ),
    components(schemas(
        crate::domain::Message,
        crate::domain::Reaction,
        crate::domain::FileRef,
        crate::domain::EditEvent,
        crate::domain::DeleteEvent,
        crate::domain::ReactionEvent,
        super::messages::EditMessage,
        super::messages::ReadMarker,
        super::multiplex::ClientFrame,
        crate::store::Page,
        crate::store::RoomSummary,
        crate::identity::User,
        crate::identity::Role,
        crate::identity::Visibility,
        super::auth::UserBody,
        super::auth::Register,
        super::auth::Login,
        super::auth::UpdateMe,
        super::auth::ChangePassword,
        super::members::CreateRoom,
        super::members::RoomBody,
        super::members::MemberList,
        super::people::UserList,
        super::presence::PresenceBody,
        super::presence::UserPresence,
        super::presence::PresenceStatus,
        super::dms::OpenDirect,
        super::dms::DirectRoomShape,
        super::dms::DirectRoomBody,
        super::search::SearchResult,
        super::search::SearchResults,
        super::files::FileBody,
        super::members::UpdateRoom,
        super::members::RoomTopicBody,
        crate::store::accounts::RoomTopic,
        super::error::ErrorBody,
        super::error::ErrorDetail,
    )),
    tags(
        (name = "accounts", description = "Local accounts, sessions, and admin actions on users"),
        (name = "rooms", description = "Rooms, their members and their messages"),
        (name = "messages", description = "Changes to messages: edits, deletions, reactions (room events, DESIGN §5b)"),
        (name = "streams", description = "Live message streams"),
        (name = "files", description = "Uploading and downloading files"),
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
pub async fn document() -> axum::Json<Value> {
    axum::Json(document_json())
}

/// The served document: the annotations' document with the paging
/// parameters added (see [`paging_parameter`]).
pub fn document_json() -> Value {
    let mut doc = serde_json::to_value(ApiDoc::openapi()).unwrap_or_default();
    if let Some(params) = doc
        .pointer_mut("/paths/~1api~1v1~1rooms~1{room}~1messages/get/parameters")
        .and_then(Value::as_array_mut)
    {
        params.push(paging_parameter());
    }
    doc
}

/// `GET /api/v1/rooms/{room}/messages` takes `before` or `after` (never
/// both) and `limit`. OpenAPI cannot say "not both" of separate parameters,
/// so the three are one query object (`style: form`, `explode: true`: the
/// same query string) whose schema is "a `before` page or an `after` page",
/// and no other parameter (the server refuses unknown ones).
fn paging_parameter() -> Value {
    let seq = |description: &str| json!({"type": "integer", "format": "int64", "minimum": 0, "description": description});
    let limit = json!({
        "type": "integer", "format": "int64", "minimum": 1, "maximum": super::params::PageLimit::MAX,
        "description": "Page size, 1-200 (default 50)",
    });
    let page = |cursor: &str, description: &str| {
        json!({
            "type": "object",
            "properties": {cursor: seq(description), "limit": limit},
            "additionalProperties": false,
        })
    };
    json!({
        "name": "page",
        "in": "query",
        "required": false,
        "style": "form",
        "explode": true,
        "description": "`before` (messages with a smaller seq, newest first), `after` \
            (messages with a greater seq, oldest first) or `around` (messages around that \
            seq, itself included, oldest first), at most one, and `limit`; \
            without a cursor, the newest page",
        "schema": {"anyOf": [
            page("before", "Messages with a smaller seq, newest first"),
            page("after", "Messages with a greater seq, oldest first"),
            page("around", "Messages around this seq, itself included, oldest first"),
        ]},
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_paging_parameters_are_one_query_object_of_before_or_after() {
        let doc = document_json();
        let params = &doc["paths"]["/api/v1/rooms/{room}/messages"]["get"]["parameters"];
        let page = params
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == "page")
            .expect("the page parameter");
        assert_eq!(page["in"], "query");
        assert_eq!(page["explode"], true);
        let any_of = page["schema"]["anyOf"].as_array().unwrap();
        assert_eq!(any_of.len(), 3);
        assert!(any_of[2]["properties"]["around"].is_object());
        assert!(any_of[0]["properties"]["before"].is_object());
        assert_eq!(any_of[0]["additionalProperties"], false);
        assert!(any_of[1]["properties"]["after"].is_object());
        assert_eq!(any_of[1]["additionalProperties"], false);
        assert_eq!(any_of[1]["properties"]["limit"]["maximum"], 200);
    }
}
