//! Uploaded files (DESIGN §5d): the bytes in a file store, the facts in the
//! database.
//!
//! - The store is `object_store`'s one interface over two backends:
//!   `file://<dir>` (`LocalFileSystem`: a multipart upload is written to a
//!   staging file and renamed into place when complete) and
//!   `s3://<bucket>/<prefix>` (`AmazonS3`: a multipart upload, aborted on
//!   any failure), configured from the standard `AWS_*` environment.
//! - An upload is streamed: at most one part (1 MiB on disk, 5 MiB on S3,
//!   S3's minimum) per upload is held in memory, at most
//!   `--max-concurrent-uploads` run at once, and `--max-file-bytes` is
//!   checked as the bytes arrive. Its row is written only once the bytes
//!   are complete, so a failed upload is never referenced.
//! - Uploads never attached are erased after [`UNATTACHED_TTL`], and the
//!   files of deleted messages by [`Files::erase_message_files`] (called
//!   after a delete commits) and by the sweep as a backstop.

pub mod sniff;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::stream::BoxStream;
use futures::{Stream, StreamExt};
use object_store::aws::AmazonS3Builder;
use object_store::local::LocalFileSystem;
use object_store::path::Path;
use object_store::{ClientOptions, ObjectStore, RetryConfig, WriteMultipart};
use tokio::sync::{OnceCell, Semaphore};
use tokio_util::sync::CancellationToken;

use crate::domain::{FileRef, RoomName};
use crate::identity::UserId;
use crate::store::search::{FileRow, SearchStore};
use crate::store::StoreError;

/// How long an upload may wait for the send that attaches it.
pub const UNATTACHED_TTL: Duration = Duration::from_secs(24 * 60 * 60);
/// Files one message may carry.
pub const MAX_FILES_PER_MESSAGE: usize = 10;
/// Rows the sweep handles per run and kind.
const SWEEP_BATCH: u32 = 100;
const SWEEP_EVERY: Duration = Duration::from_secs(60);

/// Why an upload, a download or a claim failed.
#[derive(Debug, thiserror::Error)]
pub enum FileError {
    #[error("the file is larger than {0} bytes")]
    TooLarge(u64),
    #[error("as many uploads as the server takes at once are running")]
    Busy,
    #[error("{1}")]
    Invalid(&'static str, String),
    #[error("file store: {0}")]
    Storage(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

fn storage(e: impl std::fmt::Display) -> FileError {
    FileError::Storage(e.to_string())
}

/// An uploaded file's name: what follows the last `/` or `\`, control
/// characters removed, 1 to 255 bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileName(String);

impl FileName {
    pub const MAX_BYTES: usize = 255;

    pub fn parse(raw: &str) -> Result<Self, FileError> {
        let base = raw.rsplit(['/', '\\']).next().unwrap_or_default();
        let name: String = base.chars().filter(|c| !c.is_control()).collect();
        let name = name.trim();
        if name.is_empty() || name == "." || name == ".." || name.len() > Self::MAX_BYTES {
            return Err(FileError::Invalid(
                "invalid_file_name",
                format!(
                    "name is 1 to {} bytes after any directory part",
                    Self::MAX_BYTES
                ),
            ));
        }
        Ok(Self(name.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

enum Backend {
    /// Created on first use, so a server that never stores a file leaves
    /// no directory behind.
    Local {
        root: PathBuf,
        store: OnceCell<Arc<dyn ObjectStore>>,
    },
    S3 {
        store: Arc<dyn ObjectStore>,
        prefix: String,
    },
}

/// The file store and the upload bounds.
pub struct Files {
    backend: Backend,
    rows: Arc<dyn SearchStore>,
    pub max_bytes: u64,
    uploads: Arc<Semaphore>,
}

impl Files {
    /// Opens `--file-store` (`file://…` or `s3://bucket/prefix`).
    pub fn new(
        url: &str,
        max_bytes: u64,
        max_concurrent: u32,
        rows: Arc<dyn SearchStore>,
    ) -> anyhow::Result<Self> {
        let backend = if let Some(dir) = url.strip_prefix("file://") {
            anyhow::ensure!(!dir.is_empty(), "--file-store file:// needs a directory");
            Backend::Local {
                root: std::path::absolute(dir)?,
                store: OnceCell::new(),
            }
        } else if let Some(rest) = url.strip_prefix("s3://") {
            let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
            anyhow::ensure!(!bucket.is_empty(), "--file-store s3:// needs a bucket");
            let mut builder = AmazonS3Builder::from_env()
                .with_bucket_name(bucket)
                // Fail fast when S3 is down: an upload answers 503 within
                // seconds instead of retrying for minutes.
                .with_retry(RetryConfig {
                    max_retries: 2,
                    retry_timeout: Duration::from_secs(10),
                    ..RetryConfig::default()
                })
                .with_client_options(
                    ClientOptions::new()
                        .with_connect_timeout(Duration::from_secs(3))
                        .with_timeout(Duration::from_secs(60)),
                );
            if std::env::var("AWS_REGION").is_err() && std::env::var("AWS_DEFAULT_REGION").is_err()
            {
                builder = builder.with_region("us-east-1");
            }
            if let Ok(endpoint) = std::env::var("AWS_ENDPOINT_URL") {
                builder = builder.with_allow_http(endpoint.starts_with("http://"));
            }
            Backend::S3 {
                store: Arc::new(builder.build()?),
                prefix: prefix.trim_matches('/').to_owned(),
            }
        } else {
            anyhow::bail!("--file-store must be file://<directory> or s3://<bucket>/<prefix>");
        };
        Ok(Self {
            backend,
            rows,
            max_bytes,
            uploads: Arc::new(Semaphore::new(max_concurrent as usize)),
        })
    }

    async fn store(&self) -> Result<&Arc<dyn ObjectStore>, FileError> {
        match &self.backend {
            Backend::S3 { store, .. } => Ok(store),
            Backend::Local { root, store } => {
                store
                    .get_or_try_init(|| async {
                        tokio::fs::create_dir_all(root).await.map_err(storage)?;
                        let local = LocalFileSystem::new_with_prefix(root).map_err(storage)?;
                        Ok::<Arc<dyn ObjectStore>, FileError>(Arc::new(local))
                    })
                    .await
            }
        }
    }

    fn key(&self, id: &str) -> String {
        match &self.backend {
            Backend::S3 { prefix, .. } if !prefix.is_empty() => format!("{prefix}/{id}"),
            _ => id.to_owned(),
        }
    }

    /// Part size: S3's minimum on S3, smaller on disk.
    fn chunk(&self) -> usize {
        match self.backend {
            Backend::S3 { .. } => 5 * 1024 * 1024,
            Backend::Local { .. } => 1024 * 1024,
        }
    }

    /// Streams `body` into the store and records it as an upload of
    /// `uploader` to `room`. `declared` is the request's `Content-Length`:
    /// over the limit, nothing is read.
    pub async fn upload<S, E>(
        &self,
        room: &RoomName,
        uploader: &UserId,
        name: FileName,
        declared: Option<u64>,
        mut body: S,
    ) -> Result<FileRow, FileError>
    where
        S: Stream<Item = Result<Bytes, E>> + Unpin,
        E: std::fmt::Display,
    {
        if declared.is_some_and(|n| n > self.max_bytes) {
            return Err(FileError::TooLarge(self.max_bytes));
        }
        let _permit = self
            .uploads
            .clone()
            .try_acquire_owned()
            .map_err(|_| FileError::Busy)?;
        let id = uuid::Uuid::new_v4().to_string();
        let key = self.key(&id);
        let store = self.store().await?;
        let upload = store
            .put_multipart(&Path::from(key.as_str()))
            .await
            .map_err(storage)?;
        let mut writer = WriteMultipart::new_with_chunk_size(upload, self.chunk());
        let mut head: Vec<u8> = Vec::new();
        let mut size: u64 = 0;
        let failure = loop {
            let chunk = match body.next().await {
                None => break None,
                Some(Ok(chunk)) => chunk,
                Some(Err(e)) => {
                    break Some(FileError::Invalid(
                        "body_broken",
                        format!("the body could not be read: {e}"),
                    ))
                }
            };
            size += chunk.len() as u64;
            if size > self.max_bytes {
                break Some(FileError::TooLarge(self.max_bytes));
            }
            if head.len() < sniff::HEAD_BYTES {
                let take = (sniff::HEAD_BYTES - head.len()).min(chunk.len());
                head.extend_from_slice(&chunk[..take]);
            }
            // One part in flight beside the one being filled.
            if let Err(e) = writer.wait_for_capacity(1).await {
                break Some(storage(e));
            }
            writer.put(chunk);
        };
        let failure = failure.or_else(|| {
            (size == 0).then(|| FileError::Invalid("empty_file", "the file is empty".into()))
        });
        if let Some(failure) = failure {
            if let Err(e) = writer.abort().await {
                tracing::warn!(error = %e, "aborting an upload failed");
            }
            return Err(failure);
        }
        writer.finish().await.map_err(storage)?;
        let sniffed = sniff::sniff(&head);
        let (width, height) = match sniffed.inline_image.then(|| sniff::image_size(&head)) {
            Some(Some((w, h))) => (i32::try_from(w).ok(), i32::try_from(h).ok()),
            _ => (None, None),
        };
        let row = FileRow {
            id,
            room: room.as_str().to_owned(),
            uploader_id: uploader.as_str().to_owned(),
            name: name.0,
            size: i64::try_from(size).unwrap_or(i64::MAX),
            content_type: sniffed.content_type.to_owned(),
            width,
            height,
            storage_key: key,
            created_at: now_ms(),
            attached_seq: None,
        };
        if let Err(e) = self.rows.insert_file(&row).await {
            // Not referenced: do not keep the bytes either.
            let _ = store.delete(&Path::from(row.storage_key.as_str())).await;
            return Err(e.into());
        }
        Ok(row)
    }

    pub async fn row(&self, id: &str) -> Result<Option<FileRow>, FileError> {
        if uuid::Uuid::parse_str(id).is_err() {
            return Ok(None);
        }
        Ok(self.rows.file(id).await?)
    }

    /// The stored bytes of `row`.
    pub async fn open(
        &self,
        row: &FileRow,
    ) -> Result<BoxStream<'static, object_store::Result<Bytes>>, FileError> {
        let store = self.store().await?;
        let got = store
            .get(&Path::from(row.storage_key.as_str()))
            .await
            .map_err(storage)?;
        Ok(got.into_stream())
    }

    /// Checks that `ids` may be attached by `user` to a message in `room`
    /// (uploads of this room by this user, not attached yet, not older than
    /// 24 h, at most ten, no repeats) and returns their shapes, in order.
    pub async fn claim(
        &self,
        room: &RoomName,
        user: &UserId,
        ids: &[String],
    ) -> Result<Vec<FileRef>, FileError> {
        let invalid = |m: String| FileError::Invalid("invalid_file", m);
        if ids.len() > MAX_FILES_PER_MESSAGE {
            return Err(invalid(format!(
                "a message carries at most {MAX_FILES_PER_MESSAGE} files"
            )));
        }
        let cutoff = now_ms() - UNATTACHED_TTL.as_millis() as i64;
        let mut refs = Vec::with_capacity(ids.len());
        for (i, id) in ids.iter().enumerate() {
            if ids[..i].contains(id) {
                return Err(invalid(format!("file {id} is listed twice")));
            }
            let usable = self.row(id).await?.filter(|row| {
                row.room == room.as_str()
                    && row.uploader_id == user.as_str()
                    && row.attached_seq.is_none()
                    && row.created_at >= cutoff
            });
            match usable {
                Some(row) => refs.push(row.to_ref()),
                None => {
                    return Err(invalid(format!(
                        "no upload {id} of yours to this room waits to be attached"
                    )))
                }
            }
        }
        Ok(refs)
    }

    /// Records that message `seq` of `room` carries `files`, after its send
    /// committed.
    pub async fn attached(
        &self,
        room: &RoomName,
        seq: i64,
        files: &[FileRef],
    ) -> Result<(), FileError> {
        if files.is_empty() {
            return Ok(());
        }
        let ids: Vec<String> = files.iter().map(|f| f.id.clone()).collect();
        Ok(self.rows.attach_files(room.as_str(), seq, &ids).await?)
    }

    /// Erases the files of message `seq` of `room` (bytes, then rows): to
    /// call after its deletion commits.
    pub async fn erase_message_files(&self, room: &RoomName, seq: i64) -> Result<(), FileError> {
        let rows = self.rows.message_files(room.as_str(), seq).await?;
        self.erase(&rows).await
    }

    async fn erase(&self, rows: &[FileRow]) -> Result<(), FileError> {
        if rows.is_empty() {
            return Ok(());
        }
        let store = self.store().await?;
        for row in rows {
            match store.delete(&Path::from(row.storage_key.as_str())).await {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
                Err(e) => return Err(storage(e)),
            }
            self.rows.delete_file(&row.id).await?;
        }
        Ok(())
    }

    /// One sweep: uploads never attached after [`UNATTACHED_TTL`], and the
    /// files of deleted messages, up to a batch of each. Returns how many
    /// files it erased.
    pub async fn sweep_once(&self) -> Result<usize, FileError> {
        let cutoff = now_ms() - UNATTACHED_TTL.as_millis() as i64;
        let stale = self.rows.stale_uploads(cutoff, SWEEP_BATCH).await?;
        self.erase(&stale).await?;
        let deleted = self.rows.files_of_deleted(SWEEP_BATCH).await?;
        self.erase(&deleted).await?;
        Ok(stale.len() + deleted.len())
    }

    /// Runs [`Files::sweep_once`] every minute until shutdown (api role).
    pub async fn sweep(self: Arc<Self>, shutdown: CancellationToken) {
        let mut every = tokio::time::interval(SWEEP_EVERY);
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = every.tick() => {
                    if let Err(e) = self.sweep_once().await {
                        tracing::warn!(error = %e, "file sweep failed; next run retries");
                    }
                }
            }
        }
    }
}

fn now_ms() -> i64 {
    i64::try_from(time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000)
        .unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_drop_directories_and_stay_within_255_bytes() {
        assert_eq!(
            FileName::parse("../../etc/passwd").unwrap().as_str(),
            "passwd"
        );
        assert_eq!(FileName::parse("C:\\a\\b.txt").unwrap().as_str(), "b.txt");
        assert_eq!(
            FileName::parse("ré sumé.pdf").unwrap().as_str(),
            "ré sumé.pdf"
        );
        assert!(FileName::parse(&"a".repeat(255)).is_ok());
        assert!(FileName::parse(&"a".repeat(600)).is_err());
        for bad in ["", "dir/", "..", "a/..", "\u{0}\u{7}"] {
            assert!(FileName::parse(bad).is_err(), "{bad:?}");
        }
    }
}
