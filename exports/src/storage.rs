//! Export storage in a local directory (the data directory's `exports/` by default).
//!
//! A file is copied in under a temporary name in the same directory, synced, then renamed into
//! place: a reader sees the whole file or none. Keys are `tenant/job.ext`; anything that could
//! leave the directory (`..`, absolute paths, backslashes) is refused.

use std::path::{Path, PathBuf};

use async_trait::async_trait;
use futures::stream::BoxStream;
use futures::StreamExt;
use ioto_domain::ports::export::ExportStorage;
use ioto_domain::{Error, Result};
use tokio::io::AsyncReadExt;

/// Bytes read per chunk of a download.
const CHUNK: usize = 256 * 1024;

pub struct LocalStorage {
    root: PathBuf,
}

impl LocalStorage {
    /// Storage under `root` (created when missing).
    pub fn new(root: impl Into<PathBuf>) -> Result<Self> {
        let root = root.into();
        std::fs::create_dir_all(&root)
            .map_err(|e| Error::Internal(format!("creating export directory {}: {e}", root.display())))?;
        Ok(Self { root })
    }

    fn path(&self, key: &str) -> Result<PathBuf> {
        let ok = !key.is_empty()
            && !key.starts_with('/')
            && !key.contains('\\')
            && key
                .split('/')
                .all(|part| !part.is_empty() && part != "." && part != ".." && !part.starts_with('.'));
        if !ok {
            return Err(Error::Internal(format!(
                "export storage key '{key}' is not a relative file name"
            )));
        }
        Ok(self.root.join(key))
    }
}

fn io(what: &str, path: &Path, e: std::io::Error) -> Error {
    Error::Internal(format!("{what} {}: {e}", path.display()))
}

#[async_trait]
impl ExportStorage for LocalStorage {
    async fn put(&self, key: &str, local: &Path) -> Result<()> {
        let target = self.path(key)?;
        let dir = target
            .parent()
            .ok_or_else(|| Error::Internal(format!("export storage key '{key}' has no directory")))?
            .to_path_buf();
        tokio::fs::create_dir_all(&dir)
            .await
            .map_err(|e| io("creating", &dir, e))?;
        let name = target.file_name().and_then(|n| n.to_str()).unwrap_or("file");
        let temp = dir.join(format!(".{name}.{}.part", uuid::Uuid::new_v4().simple()));
        let result = async {
            // A rename when the file is on the same file system, a copy otherwise.
            if tokio::fs::hard_link(local, &temp).await.is_err() {
                tokio::fs::copy(local, &temp)
                    .await
                    .map_err(|e| io("copying to", &temp, e))?;
            }
            let f = tokio::fs::File::open(&temp)
                .await
                .map_err(|e| io("opening", &temp, e))?;
            f.sync_all().await.map_err(|e| io("syncing", &temp, e))?;
            tokio::fs::rename(&temp, &target)
                .await
                .map_err(|e| io("renaming into", &target, e))?;
            if let Ok(d) = tokio::fs::File::open(&dir).await {
                // Makes the rename durable; not every file system allows syncing a directory.
                let _ = d.sync_all().await;
            }
            Ok(())
        }
        .await;
        if result.is_err() {
            let _ = tokio::fs::remove_file(&temp).await;
        }
        result
    }

    async fn get(&self, key: &str) -> Result<BoxStream<'static, std::io::Result<Vec<u8>>>> {
        let path = self.path(key)?;
        let file = match tokio::fs::File::open(&path).await {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(Error::not_found("export file", key));
            }
            Err(e) => return Err(io("opening", &path, e)),
        };
        let stream = futures::stream::unfold(Some(file), |file| async move {
            let mut file = file?;
            let mut buf = vec![0_u8; CHUNK];
            match file.read(&mut buf).await {
                Ok(0) => None,
                Ok(n) => {
                    buf.truncate(n);
                    Some((Ok(buf), Some(file)))
                }
                Err(e) => Some((Err(e), None)),
            }
        })
        // Fused: a body may be polled once more after its end (the response compression does),
        // which an unfused unfold answers with a panic and a download that never finishes.
        .fuse();
        Ok(stream.boxed())
    }

    async fn delete(&self, key: &str) -> Result<()> {
        let path = self.path(key)?;
        match tokio::fs::remove_file(&path).await {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io("deleting", &path, e)),
        }
    }

    fn location(&self) -> String {
        format!("file://{}", self.root.display())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_stored_file_reads_back_whole_and_keys_cannot_leave_the_directory() -> Result<()> {
        let dir = std::env::temp_dir().join(format!("ioto-storage-{}", uuid::Uuid::new_v4()));
        let storage = LocalStorage::new(&dir)?;
        let local = dir.join("source.bin");
        let data: Vec<u8> = (0..600_000_u32).map(|i| (i % 251) as u8).collect();
        std::fs::write(&local, &data).map_err(|e| Error::Internal(e.to_string()))?;
        storage.put("tenant/job.csv", &local).await?;
        let chunks: Vec<Vec<u8>> = storage
            .get("tenant/job.csv")
            .await?
            .map(|c| c.map_err(|e| Error::Internal(e.to_string())))
            .collect::<Vec<_>>()
            .await
            .into_iter()
            .collect::<Result<_>>()?;
        assert!(chunks.len() > 1, "read in chunks");
        assert_eq!(chunks.concat(), data);
        // No temporary file is left beside it.
        let names: Vec<String> = std::fs::read_dir(dir.join("tenant"))
            .map_err(|e| Error::Internal(e.to_string()))?
            .filter_map(|e| e.ok().map(|e| e.file_name().to_string_lossy().into_owned()))
            .collect();
        assert_eq!(names, vec!["job.csv".to_owned()]);
        for bad in ["../x", "/etc/passwd", "a/../../b", "a\\b", "", "a//b", ".hidden"] {
            assert!(storage.put(bad, &local).await.is_err(), "{bad} refused");
            assert!(storage.get(bad).await.is_err(), "{bad} refused");
        }
        assert!(matches!(
            storage.get("tenant/none.csv").await,
            Err(Error::NotFound { .. })
        ));
        storage.delete("tenant/job.csv").await?;
        storage.delete("tenant/job.csv").await?;
        assert!(storage.get("tenant/job.csv").await.is_err());
        let _ = std::fs::remove_dir_all(&dir);
        Ok(())
    }
}
