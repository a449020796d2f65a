//! Files (DESIGN §5d) on the local store and on an S3 server (moto's, on
//! loopback).

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::{json, Value};

use crate::both_backends;
use crate::helpers::{client_with_cookie, free_port, sign_up, spawn_app_with, Backend, TestApp};

/// A PNG header: signature and an IHDR of 3 x 2 pixels.
fn png() -> Vec<u8> {
    let mut bytes = b"\x89PNG\r\n\x1a\n\x00\x00\x00\x0dIHDR".to_vec();
    bytes.extend_from_slice(&3u32.to_be_bytes());
    bytes.extend_from_slice(&2u32.to_be_bytes());
    bytes.extend_from_slice(&[8, 6, 0, 0, 0, 0, 0, 0, 0]);
    bytes.extend_from_slice(&[0u8; 64]);
    bytes
}

async fn upload(
    app: &TestApp,
    client: &reqwest::Client,
    room: &str,
    name: &str,
    body: impl Into<reqwest::Body>,
) -> (u16, Value) {
    let mut encoded = String::new();
    for b in name.bytes() {
        if b.is_ascii_alphanumeric() || b == b'.' {
            encoded.push(b as char);
        } else {
            encoded.push_str(&format!("%{b:02X}"));
        }
    }
    let r = client
        .post(app.url(&format!("/api/v1/rooms/{room}/files?name={encoded}")))
        .header("content-type", "image/png")
        .body(body)
        .send()
        .await
        .expect("request");
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

async fn send_with(app: &TestApp, client: &reqwest::Client, room: &str, files: Value) -> u16 {
    client
        .post(app.url(&format!("/api/v1/rooms/{room}/messages")))
        .json(&json!({"text": "see attached", "files": files}))
        .send()
        .await
        .expect("send")
        .status()
        .as_u16()
}

/// Upload, download, sniffing and every bad input of the issue, on the
/// store `app` was started with.
async fn exercise(app: &TestApp) {
    let c = &app.client;
    let (status, body) = upload(app, c, "general", "../../etc/passwd.png", png()).await;
    assert_eq!(status, 201, "{body}");
    let file = &body["file"];
    assert_eq!(file["name"], "passwd.png");
    assert_eq!(file["content_type"], "image/png");
    assert_eq!(file["size"], png().len());
    assert_eq!(
        (file["width"].as_u64(), file["height"].as_u64()),
        (Some(3), Some(2))
    );
    let id = file["id"].as_str().expect("id").to_owned();

    let got = c
        .get(app.url(&format!("/api/v1/files/{id}")))
        .send()
        .await
        .expect("get");
    assert_eq!(got.status(), 200);
    let header = |name: &str| {
        got.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    assert_eq!(header("content-type"), "image/png");
    assert_eq!(header("x-content-type-options"), "nosniff");
    assert_eq!(
        header("content-security-policy"),
        "sandbox; default-src 'none'"
    );
    assert!(header("content-disposition").starts_with("inline;"));
    assert_eq!(got.bytes().await.expect("bytes").to_vec(), png());

    // HTML labelled image/png, and an SVG with a script: attachments.
    let html = b"<!doctype html><script>alert(document.cookie)</script>".to_vec();
    let (status, body) = upload(app, c, "general", "cat.png", html).await;
    assert_eq!(status, 201);
    assert_eq!(body["file"]["content_type"], "text/html");
    let html_id = body["file"]["id"].as_str().expect("id");
    let got = c
        .get(app.url(&format!("/api/v1/files/{html_id}")))
        .send()
        .await
        .expect("get");
    assert_eq!(got.headers()["content-type"], "text/html");
    let disposition = got.headers()["content-disposition"]
        .to_str()
        .expect("ascii");
    assert!(disposition.starts_with("attachment;"), "{disposition}");
    let svg = b"<svg xmlns=\"http://www.w3.org/2000/svg\"><script>alert(1)</script></svg>".to_vec();
    let (status, body) = upload(app, c, "general", "logo.svg", svg).await;
    assert_eq!(status, 201);
    assert_eq!(body["file"]["content_type"], "image/svg+xml");
    assert!(body["file"].get("width").is_none());

    // Bad input.
    assert_eq!(
        upload(app, c, "general", &"n".repeat(600), png()).await.0,
        400
    );
    assert_eq!(upload(app, c, "general", "", png()).await.0, 400);
    assert_eq!(upload(app, c, "general", "../", png()).await.0, 400);
    assert_eq!(
        upload(app, c, "general", "empty.txt", Vec::new()).await.0,
        400
    );
    assert_eq!(upload(app, c, "Bad Room", "a.png", png()).await.0, 400);
    assert_eq!(upload(app, c, "nowhere", "a.png", png()).await.0, 404);
    let unknown = uuid::Uuid::new_v4();
    for path in [
        format!("/api/v1/files/{unknown}"),
        "/api/v1/files/not-an-id".into(),
    ] {
        let r = c.get(app.url(&path)).send().await.expect("get");
        assert_eq!(r.status(), 404, "{path}");
    }
    // Over --max-file-bytes (1 MiB here): refused from Content-Length
    // before reading, and while streaming when no length is declared.
    let big = vec![b'x'; 30 * 1024 * 1024];
    match c
        .post(app.url("/api/v1/rooms/general/files?name=big.bin"))
        .body(big)
        .send()
        .await
    {
        Ok(r) => assert_eq!(r.status(), 413),
        // The server may answer and close before the client is done
        // sending; then the client sees the connection end.
        Err(e) => assert!(e.is_request() || e.is_body(), "{e}"),
    }
    let chunks = futures::stream::iter(
        (0..30).map(|_| Ok::<_, std::io::Error>(bytes::Bytes::from(vec![b'y'; 100 * 1024]))),
    );
    match c
        .post(app.url("/api/v1/rooms/general/files?name=streamed.bin"))
        .body(reqwest::Body::wrap_stream(chunks))
        .send()
        .await
    {
        Ok(r) => assert_eq!(r.status(), 413),
        Err(e) => assert!(e.is_request() || e.is_body(), "{e}"),
    }
    assert_eq!(
        upload(app, c, "general", "ok.bin", vec![1u8; 512 * 1024])
            .await
            .0,
        201
    );

    // Private rooms: members only.
    let ada = client_with_cookie(&sign_up(&app.address, "ada", "Ada").await);
    let eve = client_with_cookie(&sign_up(&app.address, "eve", "Eve").await);
    let create = ada
        .post(app.url("/api/v1/rooms"))
        .json(&json!({"name": "secret", "visibility": "private"}))
        .send()
        .await
        .expect("create");
    assert_eq!(create.status(), 201);
    let (status, body) = upload(app, &ada, "secret", "plan.pdf", b"%PDF-1.7 plan".to_vec()).await;
    assert_eq!(status, 201);
    assert_eq!(body["file"]["content_type"], "application/pdf");
    let secret_id = body["file"]["id"].as_str().expect("id").to_owned();
    let url = app.url(&format!("/api/v1/files/{secret_id}"));
    assert_eq!(eve.get(&url).send().await.expect("get").status(), 404);
    assert_eq!(ada.get(&url).send().await.expect("get").status(), 200);
    assert_eq!(upload(app, &eve, "secret", "x.png", png()).await.0, 404);

    // Attaching on send: own uploads of this room, once.
    assert_eq!(send_with(app, c, "general", json!([id])).await, 201);
    assert_eq!(send_with(app, c, "general", json!([id])).await, 400);
    assert_eq!(send_with(app, &ada, "secret", json!([html_id])).await, 400);
    assert_eq!(
        send_with(app, &ada, "general", json!([secret_id])).await,
        400
    );
    assert_eq!(
        send_with(app, c, "general", json!([unknown.to_string()])).await,
        400
    );
    assert_eq!(
        send_with(app, c, "general", json!(["not-an-id"])).await,
        400
    );
    let eleven: Vec<String> = (0..11).map(|_| uuid::Uuid::new_v4().to_string()).collect();
    assert_eq!(send_with(app, c, "general", json!(eleven)).await, 400);
    assert_eq!(
        send_with(app, &ada, "secret", json!([secret_id])).await,
        201
    );
}

async fn files_are_stored_served_and_checked_on_the_local_store(backend: Backend) {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = format!("file://{}", dir.path().display());
    let app = spawn_app_with(
        backend,
        &["--file-store", &store, "--max-file-bytes", "1048576"],
    )
    .await;
    exercise(&app).await;
    // Only whole files are left on disk: no staging file of the refused
    // uploads.
    let names: Vec<String> = std::fs::read_dir(dir.path())
        .expect("dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names.len(), 5, "{names:?}");
    assert!(
        names.iter().all(|n| uuid::Uuid::parse_str(n).is_ok()),
        "{names:?}"
    );
    app.stop().await;
}

/// moto's S3 server on a free loopback port; stopped by its PID on drop.
struct Moto {
    child: Child,
    pub port: u16,
}

impl Moto {
    async fn start() -> Self {
        let port = free_port();
        let bin = std::env::var("MOTO_SERVER").unwrap_or_else(|_| {
            let root = env!("CARGO_MANIFEST_DIR");
            format!("{root}/../../.tools/venv/bin/moto_server")
        });
        let child = Command::new(bin)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("moto_server (the venv of .tools, or MOTO_SERVER)");
        let moto = Moto { child, port };
        for _ in 0..200 {
            if tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .is_ok()
            {
                return moto;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("moto_server did not start");
    }

    fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        self.stop();
    }
}

async fn files_are_stored_on_s3_and_an_s3_outage_is_a_503_for_files_only(backend: Backend) {
    let mut moto = Moto::start().await;
    let endpoint = format!("http://127.0.0.1:{}", moto.port);
    // Each test runs in its own process under nextest: these are its own.
    std::env::set_var("AWS_ENDPOINT_URL", &endpoint);
    std::env::set_var("AWS_ACCESS_KEY_ID", "testing");
    std::env::set_var("AWS_SECRET_ACCESS_KEY", "testing");
    std::env::set_var("AWS_REGION", "us-east-1");
    let made = reqwest::Client::new()
        .put(format!("{endpoint}/palaver-files"))
        .send()
        .await
        .expect("create bucket");
    assert!(made.status().is_success(), "{}", made.status());
    let app = spawn_app_with(
        backend,
        &[
            "--file-store",
            "s3://palaver-files/uploads",
            "--max-file-bytes",
            "1048576",
        ],
    )
    .await;
    exercise(&app).await;
    let listing = reqwest::Client::new()
        .get(format!(
            "{endpoint}/palaver-files?list-type=2&prefix=uploads/"
        ))
        .send()
        .await
        .expect("list")
        .text()
        .await
        .expect("text");
    assert_eq!(listing.matches("<Key>uploads/").count(), 5, "{listing}");

    let (_, body) = upload(&app, &app.client, "general", "later.png", png()).await;
    let id = body["file"]["id"].as_str().expect("id").to_owned();
    moto.stop();
    let (status, body) = upload(&app, &app.client, "general", "down.png", png()).await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["error"]["code"], "file_store_unavailable");
    let got = app
        .client
        .get(app.url(&format!("/api/v1/files/{id}")))
        .send()
        .await
        .expect("get");
    assert_eq!(got.status(), 503);
    // The rest of the chat keeps working.
    app.send("general", "still here").await;
    let (status, _) = app.get_json("/api/v1/search?q=still").await;
    assert_eq!(status, 200);
    app.stop().await;
}

both_backends!(
    files_are_stored_served_and_checked_on_the_local_store,
    files_are_stored_on_s3_and_an_s3_outage_is_a_503_for_files_only,
);

/// The sweep, driven directly: an upload never attached for 24 h and the
/// file of a deleted message are erased (bytes and row); an attached file,
/// a fresh upload and a stale upload a stored message names are kept.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sweep_erases_stale_uploads_and_the_files_of_deleted_messages() {
    use palaver::domain::{Author, MessageText, NewMessage, RoomName};
    use palaver::files::{FileName, Files};
    use palaver::identity::UserId;

    let dir = tempfile::tempdir().expect("temp dir");
    let url = format!("sqlite://{}/palaver.db", dir.path().display());
    let config =
        palaver::config::Config::from_args(["palaver", "--database-url", &url]).expect("config");
    let store = palaver::store::connect(&config).await.expect("store");
    let files_dir = dir.path().join("files");
    let files = Files::new(
        &format!("file://{}", files_dir.display()),
        1 << 20,
        4,
        store.clone().search().expect("rows"),
    )
    .expect("files");
    let room = RoomName::parse("general").expect("room");
    let user = UserId::generate();
    let mut rows = Vec::new();
    for name in [
        "stale.txt",
        "attached.txt",
        "deleted.txt",
        "fresh.txt",
        "named.txt",
    ] {
        let body = futures::stream::iter([Ok::<_, std::io::Error>(bytes::Bytes::from_static(
            b"some bytes",
        ))]);
        let name = FileName::parse(name).expect("name");
        rows.push(
            files
                .upload(&room, &user, name, None, body)
                .await
                .expect("upload"),
        );
    }
    let message = |text: &str| NewMessage {
        author: Author::parse("Ada").expect("author"),
        author_id: Some(user.as_str().to_owned()),
        text: MessageText::parse(text, 4000).expect("text"),
        client_id: None,
        client_ip: "127.0.0.1".into(),
        reply_to: None,
        mentions: Vec::new(),
        files: Vec::new(),
    };
    let now = time::OffsetDateTime::now_utc();
    store
        .append(
            &room,
            &[message("keeps a file"), message("loses a file")],
            now,
        )
        .await
        .expect("append");
    files
        .attached(&room, 1, &[rows[1].to_ref()])
        .await
        .expect("attach");
    files
        .attached(&room, 2, &[rows[2].to_ref()])
        .await
        .expect("attach");

    let pool = sqlx::SqlitePool::connect(&url).await.expect("pool");
    for (sql, id) in [
        ("UPDATE files SET created_at = 0 WHERE id = $1", &rows[0].id),
        ("UPDATE files SET created_at = 0 WHERE id = $1", &rows[4].id),
        // A send that stored its message but died before recording the seq.
        (
            "UPDATE messages SET files = '[{\"id\":\"' || $1 || '\"}]' WHERE room = 'general' AND seq = 1",
            &rows[4].id,
        ),
    ] {
        sqlx::query(sql).bind(id).execute(&pool).await.expect("update");
    }
    sqlx::query("UPDATE messages SET deleted = TRUE, text = '' WHERE room = 'general' AND seq = 2")
        .execute(&pool)
        .await
        .expect("delete");

    assert_eq!(files.sweep_once().await.expect("sweep"), 2);
    let mut kept = Vec::new();
    for row in &rows {
        if files.row(&row.id).await.expect("row").is_some() {
            kept.push(row.name.clone());
        }
    }
    assert_eq!(kept, ["attached.txt", "fresh.txt", "named.txt"]);
    let on_disk = std::fs::read_dir(&files_dir).expect("dir").count();
    assert_eq!(on_disk, 3);
    assert_eq!(files.sweep_once().await.expect("sweep"), 0);

    // Erasing a message's files at once (after its delete commits).
    files.erase_message_files(&room, 1).await.expect("erase");
    assert!(files.row(&rows[1].id).await.expect("row").is_none());
    assert_eq!(std::fs::read_dir(&files_dir).expect("dir").count(), 2);
}
