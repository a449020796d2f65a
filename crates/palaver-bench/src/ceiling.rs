//! `ceiling`: the least work an axum server can do per request — a fixed
//! JSON body, no middleware, no database — so read figures can be compared
//! with what HTTP alone costs on the same machine.

use axum::http::header;
use axum::routing::get;
use axum::Router;

use crate::cli::CeilingArgs;

pub async fn run(args: CeilingArgs) -> anyhow::Result<()> {
    let body = fixed_body(args.body_bytes);
    let app = Router::new().fallback(get(move || {
        let body = body.clone();
        async move { ([(header::CONTENT_TYPE, "application/json")], body) }
    }));
    let listener = tokio::net::TcpListener::bind(args.listen).await?;
    eprintln!(
        "ceiling: serving {} bytes on http://{}",
        args.body_bytes,
        listener.local_addr()?
    );
    axum::serve(listener, app)
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
    Ok(())
}

/// A JSON array of `{"message": "xxx"}` objects, padded to `n` bytes.
pub fn fixed_body(n: usize) -> axum::body::Bytes {
    let mut body = String::from("[");
    while body.len() + 40 < n {
        if body.len() > 1 {
            body.push(',');
        }
        body.push_str(r#"{"message":"0123456789012345678901"}"#);
    }
    body.push(']');
    while body.len() < n {
        body.push(' ');
    }
    axum::body::Bytes::from(body)
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_body_is_json_of_the_asked_size() {
        for n in [2, 100, 8192] {
            let body = super::fixed_body(n);
            assert_eq!(body.len(), n);
            let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
            assert!(v.is_array());
        }
    }
}
