//! Newest-page reads through the read cache: what every client asks for when
//! it opens a room.

use std::sync::Arc;

use axum::http::header;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;

use super::error::ApiError;
use crate::domain::{Message, RoomName};
use crate::store::Cursor;
use crate::AppState;

/// Renders a page body from its messages (newest first), whether more
/// exist, and who reads it (reactions carry `me`).
pub type Render = fn(&[Arc<Message>], bool, Option<&str>) -> Bytes;

/// The newest `limit` messages of `room` rendered by `render` for `viewer`
/// (memoised under `shape` as rendered for no reader, `me` set per reader:
/// see [`crate::cache::ReadCache::newest`]), or `None` when the room does
/// not exist. Served from the read
/// cache while the bus is ready; a miss reads the room's cacheable newest
/// messages in one query and keeps them.
pub async fn newest(
    state: &AppState,
    room: &RoomName,
    limit: usize,
    shape: &'static str,
    render: Render,
    viewer: Option<&str>,
) -> Result<Option<Bytes>, ApiError> {
    let cache = &state.cache;
    let cacheable = limit <= cache.per_room() && state.bus.is_ready();
    if !cacheable {
        let page = state.store.page(room, Cursor::Latest, limit as u32).await?;
        return Ok(page.map(|p| {
            let messages: Vec<_> = p.messages.into_iter().map(Arc::new).collect();
            render(&messages, p.has_more, viewer)
        }));
    }
    let cached = cache.newest(room, limit, shape, viewer, render);
    if let Some(body) = cached {
        return Ok(Some(body));
    }
    let ticket = cache.ticket(room);
    let per_room = cache.per_room() as u32;
    let Some(page) = state.store.page(room, Cursor::Latest, per_room).await? else {
        return Ok(None);
    };
    cache.fill(room, ticket, &page.messages, page.has_more, page.head);
    let has_more = page.messages.len() > limit || page.has_more;
    let messages: Vec<_> = page
        .messages
        .into_iter()
        .take(limit)
        .map(Arc::new)
        .collect();
    Ok(Some(render(&messages, has_more, viewer)))
}

/// A rendered JSON body as a 200 response.
pub fn json(body: Bytes) -> Response {
    ([(header::CONTENT_TYPE, "application/json")], body).into_response()
}
