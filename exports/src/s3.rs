//! Export storage in an S3-compatible object store (AWS S3, MinIO, Ceph, R2, …) through the
//! `object_store` crate.
//!
//! A file is sent as a multipart upload: the object appears only when the upload completes, so
//! a reader sees the whole file or none; a failed upload is aborted (its parts are dropped).
//! Keys are `prefix/tenant/job.ext`.

use std::path::Path as FsPath;
use std::sync::Arc;

use async_trait::async_trait;
use futures::stream::BoxStream;
use futures::{StreamExt, TryStreamExt};
use ioto_domain::ports::export::ExportStorage;
use ioto_domain::{Error, Result};
use object_store::aws::AmazonS3Builder;
use object_store::path::Path;
use object_store::{ObjectStore, WriteMultipart};
use tokio::io::AsyncReadExt;

/// Bytes per part of an upload (S3 wants at least 5 MiB for every part but the last).
const PART: usize = 8 * 1024 * 1024;

/// Where and how to reach the bucket.
#[derive(Debug, Clone)]
pub struct S3Settings {
    /// `https://s3.eu-central-1.amazonaws.com`, `http://127.0.0.1:9000`, …
    pub endpoint: String,
    pub bucket: String,
    pub region: String,
    /// Keys start with it (`exports`, `prod/exports`); may be empty.
    pub prefix: String,
    pub access_key_id: String,
    pub secret_access_key: String,
    /// Path-style requests (`endpoint/bucket/key`), as most S3-compatible servers want.
    pub path_style: bool,
}

pub struct S3Storage {
    store: Arc<dyn ObjectStore>,
    prefix: String,
    location: String,
}

fn store_error(what: &str, e: object_store::Error) -> Error {
    match e {
        object_store::Error::NotFound { .. } => Error::not_found("export file", what),
        e => Error::Unavailable(format!("export storage: {what}: {e}")),
    }
}

impl S3Storage {
    pub fn new(s: &S3Settings) -> Result<Self> {
        let store = AmazonS3Builder::new()
            .with_endpoint(&s.endpoint)
            .with_bucket_name(&s.bucket)
            .with_region(&s.region)
            .with_access_key_id(&s.access_key_id)
            .with_secret_access_key(&s.secret_access_key)
            .with_allow_http(s.endpoint.starts_with("http://"))
            .with_virtual_hosted_style_request(!s.path_style)
            .build()
            .map_err(|e| Error::invalid("exports.s3", format!("{e}")))?;
        let prefix = s.prefix.trim_matches('/').to_owned();
        Ok(Self {
            store: Arc::new(store),
            location: format!("s3://{}/{}", s.bucket, prefix),
            prefix,
        })
    }

    fn path(&self, key: &str) -> Result<Path> {
        let ok = !key.is_empty()
            && key
                .split('/')
                .all(|p| !p.is_empty() && p != "." && p != ".." && !p.starts_with('.'));
        if !ok {
            return Err(Error::Internal(format!(
                "export storage key '{key}' is not a relative file name"
            )));
        }
        let full = if self.prefix.is_empty() {
            key.to_owned()
        } else {
            format!("{}/{key}", self.prefix)
        };
        Path::parse(&full).map_err(|e| Error::Internal(format!("export storage key '{key}': {e}")))
    }
}

#[async_trait]
impl ExportStorage for S3Storage {
    async fn put(&self, key: &str, local: &FsPath) -> Result<()> {
        let path = self.path(key)?;
        let mut file = tokio::fs::File::open(local)
            .await
            .map_err(|e| Error::Internal(format!("opening {}: {e}", local.display())))?;
        let upload = self
            .store
            .put_multipart(&path)
            .await
            .map_err(|e| store_error(key, e))?;
        let mut writer = WriteMultipart::new_with_chunk_size(upload, PART);
        let mut buf = vec![0_u8; PART];
        loop {
            let n = match file.read(&mut buf).await {
                Ok(n) => n,
                Err(e) => {
                    let _ = writer.abort().await;
                    return Err(Error::Internal(format!("reading {}: {e}", local.display())));
                }
            };
            if n == 0 {
                break;
            }
            // At most two parts in flight: memory stays at a few parts whatever the file's size.
            if let Err(e) = writer.wait_for_capacity(2).await {
                return Err(store_error(key, e));
            }
            writer.write(&buf[..n]);
        }
        writer.finish().await.map_err(|e| store_error(key, e))?;
        Ok(())
    }

    async fn get(&self, key: &str) -> Result<BoxStream<'static, std::io::Result<Vec<u8>>>> {
        let path = self.path(key)?;
        let got = self.store.get(&path).await.map_err(|e| store_error(key, e))?;
        Ok(got
            .into_stream()
            .map_ok(|b| b.to_vec())
            .map_err(std::io::Error::other)
            .boxed())
    }

    async fn delete(&self, key: &str) -> Result<()> {
        let path = self.path(key)?;
        match self.store.delete(&path).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(store_error(key, e)),
        }
    }

    fn location(&self) -> String {
        self.location.clone()
    }
}
