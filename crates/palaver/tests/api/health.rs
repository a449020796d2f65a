use crate::both_backends;
use crate::helpers::{spawn_app, Backend};

both_backends!(
    health_and_readiness_answer_200,
    metrics_are_prometheus_text_with_the_documented_series,
    every_response_carries_security_headers_and_a_request_id,
    openapi_document_describes_every_endpoint,
);

async fn health_and_readiness_answer_200(backend: Backend) {
    let app = spawn_app(backend).await;
    let (status, body) = app.get_json("/healthz").await;
    assert_eq!((status, body["status"].as_str()), (200, Some("ok")));
    let (status, body) = app.get_json("/readyz").await;
    assert_eq!((status, body["status"].as_str()), (200, Some("ready")));
    app.stop().await;
}

async fn metrics_are_prometheus_text_with_the_documented_series(backend: Backend) {
    let app = spawn_app(backend).await;
    app.send("general", "count me").await;
    let response = app.client.get(app.url("/metrics")).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert!(response.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/plain"));
    let text = response.text().await.unwrap();
    for series in [
        "palaver_http_requests_total",
        "palaver_http_request_duration_seconds_bucket",
        "palaver_stream_connections",
        "palaver_messages_stored_total",
        "palaver_group_commit_batch_size",
        "palaver_db_pool_connections",
    ] {
        assert!(text.contains(series), "missing {series} in:\n{text}");
    }
    assert!(
        text.contains(r#"route="/api/v1/rooms/{room}/messages""#),
        "requests are labelled by route pattern"
    );
    app.stop().await;
}

async fn every_response_carries_security_headers_and_a_request_id(backend: Backend) {
    let app = spawn_app(backend).await;
    for path in ["/", "/healthz", "/api/v1/rooms/general/messages", "/nope"] {
        let response = app.client.get(app.url(path)).send().await.unwrap();
        let headers = response.headers();
        let csp = headers["content-security-policy"].to_str().unwrap();
        assert!(csp.contains("frame-ancestors 'none'"), "{path}: {csp}");
        assert!(!csp.contains("unsafe-inline"), "{path}: {csp}");
        assert_eq!(headers["x-content-type-options"], "nosniff", "{path}");
        assert!(headers.contains_key("referrer-policy"), "{path}");
        assert!(!headers["x-request-id"].is_empty(), "{path}");
    }
    let response = app
        .client
        .get(app.url("/healthz"))
        .header("x-request-id", "trace-me-123")
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()["x-request-id"], "trace-me-123");
    app.stop().await;
}

async fn openapi_document_describes_every_endpoint(backend: Backend) {
    let app = spawn_app(backend).await;
    let (status, doc) = app.get_json("/api/v1/openapi.json").await;
    assert_eq!(status, 200);
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    let paths = doc["paths"].as_object().unwrap();
    for path in [
        "/api/v1/rooms",
        "/api/v1/rooms/{room}/messages",
        "/api/v1/rooms/{room}/stream",
        "/chat",
        "/healthz",
        "/readyz",
        "/metrics",
    ] {
        assert!(paths.contains_key(path), "openapi lacks {path}");
    }
    assert!(doc["components"]["schemas"]["Message"].is_object());
    app.stop().await;
}
