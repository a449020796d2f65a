//! The OpenAPI document, generated from the handlers' annotations.

use utoipa::OpenApi;

#[derive(OpenApi)]
#[openapi(
    info(title = "Palaver", description = "Self-hosted chat: rooms, history, live streams."),
    paths(
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
        super::error::ErrorBody,
        super::error::ErrorDetail,
    )),
    tags(
        (name = "rooms", description = "Rooms and their messages"),
        (name = "streams", description = "Live message streams"),
        (name = "seed", description = "Compatibility with the original /chat endpoint"),
        (name = "operations", description = "Health, readiness, metrics"),
    )
)]
pub struct ApiDoc;

/// `GET /api/v1/openapi.json`
pub async fn document() -> axum::Json<utoipa::openapi::OpenApi> {
    axum::Json(ApiDoc::openapi())
}
