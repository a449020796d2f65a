//! Message search over the rooms the caller may read.

use axum::extract::State;
use axum::routing::get;
use axum::Router;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::error::{ApiError, ErrorBody};
use super::extract::{CurrentUser, Query};
use super::people::directory;
use crate::auth::access::RoomAccess;
use crate::domain::{Message, RoomName};
use crate::store::search::{is_cjk, SearchError, SearchQuery};
use crate::AppState;

pub const MAX_QUERY_CHARS: usize = 500;
/// Terms (words, phrases, exclusions) one query may hold.
pub const MAX_TERMS: usize = 32;
/// Characters of context a highlight keeps around its first match.
const SNIPPET_CHARS: usize = 240;

pub fn router() -> Router<AppState> {
    Router::new().route("/api/v1/search", get(search))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct SearchParams {
    /// Words (all must match), `"quoted phrases"` and `-excluded` words;
    /// 1 to 500 characters.
    #[param(min_length = 1, max_length = 500)]
    q: Option<String>,
    /// Only this room.
    #[param(pattern = "^[a-z0-9][a-z0-9_-]{0,63}$")]
    room: Option<String>,
    /// 1-100, default 20.
    #[param(minimum = 1, maximum = 100)]
    limit: Option<i64>,
    /// The `next` of the previous page.
    before: Option<String>,
}

/// One result.
#[derive(Debug, Serialize, ToSchema)]
pub struct SearchResult {
    pub message: Message,
    /// The text (or an excerpt of it), HTML-escaped, with each match in
    /// `<mark>`.
    #[schema(example = "… the <mark>deploy</mark> is done …")]
    pub highlight: String,
}

/// `{"results": [...], "next": cursor | null}`
#[derive(Debug, Serialize, ToSchema)]
pub struct SearchResults {
    pub results: Vec<SearchResult>,
    /// Pass as `before` for the next (older) page; null on the last page.
    pub next: Option<String>,
}

/// Search messages, newest first, in the rooms the caller may read; never
/// a deleted message.
#[utoipa::path(
    get,
    path = "/api/v1/search",
    tag = "rooms",
    security(("session" = []), ("bearer" = [])),
    params(SearchParams),
    responses(
        (status = 200, description = "Results, newest first", body = SearchResults),
        (status = 400, description = "Missing, empty or over-long query, a query of operators only, limit outside 1-100, a bad cursor or room name, or an unknown parameter", body = ErrorBody),
        (status = 401, description = "Not signed in", body = ErrorBody),
        (status = 403, description = "Suspended", body = ErrorBody),
        (status = 404, description = "`room` is no room you may read", body = ErrorBody),
        (status = 503, description = "Database unavailable", body = ErrorBody),
    )
)]
async fn search(
    State(state): State<AppState>,
    current: CurrentUser,
    Query(params): Query<SearchParams>,
) -> Result<axum::Json<SearchResults>, ApiError> {
    let (include, exclude) = parse_query(params.q.as_deref().unwrap_or_default())?;
    let limit = match params.limit {
        None => 20,
        Some(n @ 1..=100) => n as u32,
        Some(_) => return Err(ApiError::bad_request("invalid_limit", "limit is 1 to 100")),
    };
    let room = match params.room.as_deref() {
        None => None,
        Some(raw) => {
            let room = RoomName::parse(raw)?;
            match state.auth.room_access(&room, &current.user).await? {
                RoomAccess::Allowed(_) => Some(room),
                _ => return Err(ApiError::NotFound(format!("no room named {room}"))),
            }
        }
    };
    let bad_cursor =
        || ApiError::bad_request("invalid_cursor", "before is not a cursor from a search");
    let before = match params.before.as_deref() {
        None => None,
        Some(raw) => {
            let bytes = URL_SAFE_NO_PAD.decode(raw).map_err(|_| bad_cursor())?;
            Some(String::from_utf8(bytes).map_err(|_| bad_cursor())?)
        }
    };
    let query = SearchQuery {
        include,
        exclude,
        room,
        user: current.user.id.clone(),
        before,
        limit: limit + 1,
    };
    let mut hits = match directory(&state)?.search(&query).await {
        Ok(hits) => hits,
        Err(SearchError::BadCursor) => return Err(bad_cursor()),
        Err(SearchError::Unanswerable) => {
            return Err(ApiError::bad_request(
                "invalid_query",
                "the search index cannot answer this query",
            ))
        }
        Err(SearchError::Store(e)) => return Err(e.into()),
    };
    let next = if hits.len() > limit as usize {
        hits.truncate(limit as usize);
        hits.last()
            .map(|h| URL_SAFE_NO_PAD.encode(h.cursor.as_bytes()))
    } else {
        None
    };
    let results = hits
        .into_iter()
        .map(|hit| SearchResult {
            highlight: highlight(&hit.message.text, &query.include),
            message: hit.message,
        })
        .collect();
    Ok(axum::Json(SearchResults { results, next }))
}

/// Splits a query into the terms to find and the terms to exclude: words,
/// `"quoted phrases"`, and either prefixed by `-` to exclude it. Terms with
/// no letter or digit are dropped; at least one term to find must remain.
pub fn parse_query(q: &str) -> Result<(Vec<String>, Vec<String>), ApiError> {
    let length = q.chars().count();
    if q.trim().is_empty() || length > MAX_QUERY_CHARS {
        return Err(ApiError::bad_request(
            "invalid_query",
            format!("q is 1 to {MAX_QUERY_CHARS} characters"),
        ));
    }
    let (mut include, mut exclude) = (Vec::new(), Vec::new());
    let mut chars = q.chars().peekable();
    loop {
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        let Some(&first) = chars.peek() else { break };
        let negated = first == '-';
        if negated {
            chars.next();
        }
        let term: String = if chars.peek() == Some(&'"') {
            chars.next();
            let phrase: String = chars.by_ref().take_while(|&c| c != '"').collect();
            phrase.split_whitespace().collect::<Vec<_>>().join(" ")
        } else {
            let mut word = String::new();
            while let Some(c) = chars.next_if(|c| !c.is_whitespace()) {
                word.push(c);
            }
            word
        };
        // Control characters match nothing stored (texts refuse them), and
        // PostgreSQL refuses a NUL in a parameter: they are dropped.
        let term: String = term.chars().filter(|c| !c.is_control()).collect();
        if term.chars().any(char::is_alphanumeric) {
            if negated {
                exclude.push(term);
            } else {
                include.push(term);
            }
        }
    }
    if include.is_empty() {
        return Err(ApiError::bad_request(
            "invalid_query",
            "q needs at least one word to find",
        ));
    }
    if include.len() + exclude.len() > MAX_TERMS {
        return Err(ApiError::bad_request(
            "invalid_query",
            format!("q holds at most {MAX_TERMS} terms"),
        ));
    }
    Ok((include, exclude))
}

fn fold(c: char) -> char {
    c.to_lowercase().next().unwrap_or(c)
}

/// `text`, or an excerpt around its first match, HTML-escaped, with each
/// occurrence of the terms' words (CJK terms: the term itself) in `<mark>`.
/// Escaping happens piece by piece, so only `<mark>` is markup.
pub fn highlight(text: &str, terms: &[String]) -> String {
    let chars: Vec<(usize, char)> = text.char_indices().map(|(i, c)| (i, fold(c))).collect();
    let mut needles: Vec<Vec<char>> = Vec::new();
    for term in terms {
        if is_cjk(term) {
            needles.push(
                term.chars()
                    .filter(|c| !c.is_whitespace())
                    .map(fold)
                    .collect(),
            );
        } else {
            needles.extend(
                term.split(|c: char| !c.is_alphanumeric())
                    .filter(|w| !w.is_empty())
                    .map(|w| w.chars().map(fold).collect()),
            );
        }
    }
    // Match ranges in char indices; words only at word boundaries.
    let mut marks: Vec<(usize, usize)> = Vec::new();
    for needle in needles.iter().filter(|n| !n.is_empty()) {
        let word = !needle.iter().any(|&c| is_cjk(c.encode_utf8(&mut [0; 4])));
        let n = needle.len();
        let mut i = 0;
        while i + n <= chars.len() {
            let hit = chars[i..i + n]
                .iter()
                .map(|&(_, c)| c)
                .eq(needle.iter().copied());
            let bounded = !word
                || ((i == 0 || !chars[i - 1].1.is_alphanumeric())
                    && (i + n == chars.len() || !chars[i + n].1.is_alphanumeric()));
            if hit && bounded {
                marks.push((i, i + n));
                i += n;
            } else {
                i += 1;
            }
        }
    }
    marks.sort_unstable();
    let mut merged: Vec<(usize, usize)> = Vec::new();
    for (a, b) in marks {
        match merged.last_mut() {
            Some(last) if a <= last.1 => last.1 = last.1.max(b),
            _ => merged.push((a, b)),
        }
    }
    let first = merged.first().map_or(0, |m| m.0);
    let start = if chars.len() <= SNIPPET_CHARS {
        0
    } else {
        first
            .saturating_sub(SNIPPET_CHARS / 4)
            .min(chars.len() - SNIPPET_CHARS)
    };
    let end = (start + SNIPPET_CHARS).min(chars.len());
    let byte = |i: usize| chars.get(i).map_or(text.len(), |&(b, _)| b);
    let mut out = String::new();
    if start > 0 {
        out.push('…');
    }
    let mut at = start;
    for &(a, b) in merged.iter().filter(|&&(a, _)| a < end && a >= start) {
        escape_into(&mut out, &text[byte(at)..byte(a)]);
        out.push_str("<mark>");
        escape_into(&mut out, &text[byte(a)..byte(b.min(end))]);
        out.push_str("</mark>");
        at = b.min(end);
    }
    escape_into(&mut out, &text[byte(at)..byte(end)]);
    if end < chars.len() {
        out.push('…');
    }
    out
}

fn escape_into(out: &mut String, s: &str) {
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn terms(q: &str) -> (Vec<String>, Vec<String>) {
        parse_query(q).unwrap()
    }

    #[test]
    fn queries_hold_words_phrases_and_exclusions() {
        assert_eq!(
            terms(r#"deploy "release notes" -staging -"old box""#),
            (
                vec!["deploy".to_owned(), "release notes".to_owned()],
                vec!["staging".to_owned(), "old box".to_owned()]
            )
        );
        assert_eq!(
            terms(r#"AND OR "unclosed"#).0,
            vec!["AND", "OR", "unclosed"]
        );
        for bad in ["", "   ", "-x", "- \" \" * :", "\"\""] {
            assert!(parse_query(bad).is_err(), "{bad:?}");
        }
        assert!(parse_query(&"a".repeat(501)).is_err());
        assert!(parse_query(&"a ".repeat(40)).is_err());
    }

    #[test]
    fn highlights_escape_the_text_and_mark_only_whole_words() {
        let h = highlight("<b>Deploy</b> & deployment: deploy!", &["deploy".into()]);
        assert_eq!(
            h,
            "&lt;b&gt;<mark>Deploy</mark>&lt;/b&gt; &amp; deployment: <mark>deploy</mark>!"
        );
        assert_eq!(
            highlight("東京タワーに行きました", &["東京".into()]),
            "<mark>東京</mark>タワーに行きました"
        );
        assert_eq!(
            highlight("Привет, мир", &["привет".into()]),
            "<mark>Привет</mark>, мир"
        );
        let long = format!("{} needle {}", "x ".repeat(300), "y ".repeat(300));
        let h = highlight(&long, &["needle".into()]);
        assert!(h.starts_with('…') && h.ends_with('…') && h.contains("<mark>needle</mark>"));
    }
}
