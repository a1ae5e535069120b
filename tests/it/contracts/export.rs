//! The `ExportStorage` port contract, on a local directory (`ioto_exports::LocalStorage`) and on an
//! S3-compatible bucket (`ioto_exports::S3Storage`, on moto's server from `scripts/engines.sh`).

use std::path::{Path, PathBuf};

use futures::TryStreamExt;
use ioto_domain::ports::export::ExportStorage;
use ioto_domain::Error;
use ioto_exports::{LocalStorage, S3Settings, S3Storage};
use ioto_test_support::{temp_dir, S3Server};
use uuid::Uuid;

/// A file of `len` bytes (every byte value) in `dir`, and its bytes.
fn source(dir: &Path, name: &str, len: usize, seed: u8) -> (PathBuf, Vec<u8>) {
    let data: Vec<u8> = (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect();
    let path = dir.join(name);
    std::fs::write(&path, &data).unwrap();
    (path, data)
}

async fn read(storage: &dyn ExportStorage, key: &str) -> Vec<u8> {
    storage.get(key).await.unwrap().try_concat().await.unwrap()
}

/// The error reading `key` gives.
async fn unreadable(storage: &dyn ExportStorage, key: &str) -> Error {
    match storage.get(key).await {
        Ok(_) => panic!("{key:?} reads as a file"),
        Err(e) => e,
    }
}

fn refused(result: &Result<(), Error>) -> bool {
    matches!(result, Err(Error::Internal(m)) if m.contains("is not a relative file name"))
}

async fn contract(storage: &dyn ExportStorage, location: &str) {
    assert_eq!(
        storage.location(),
        location,
        "where files go, as the start-up log says"
    );
    let sources = temp_dir();
    let tenant = Uuid::new_v4();
    let key = format!("{tenant}/{}.csv", Uuid::new_v4());
    // 20,000,007 bytes: more than one part of an upload and more than one chunk of a read, not
    // a whole number of either.
    let (big, data) = source(&sources, "big.csv", 20_000_007, 1);
    storage.put(&key, &big).await.unwrap();
    std::fs::remove_file(&big).unwrap();
    let chunks: Vec<Vec<u8>> = storage.get(&key).await.unwrap().try_collect().await.unwrap();
    assert!(
        chunks.len() > 1,
        "a large file is read in one piece: memory holds it whole"
    );
    let back = chunks.concat();
    assert_eq!(back.len(), 20_000_007, "the stored file's size");
    assert!(
        back == data,
        "the stored file byte for byte, its source removed since"
    );
    let neighbour = format!("{tenant}/{}.xlsx", Uuid::new_v4());
    let (other, other_data) = source(&sources, "other.xlsx", 4_099, 2);
    storage.put(&neighbour, &other).await.unwrap();

    // Stored again: the new file whole, nothing of the longer old one.
    let (small, replacement) = source(&sources, "small.csv", 1_000, 3);
    storage.put(&key, &small).await.unwrap();
    assert_eq!(
        read(storage, &key).await,
        replacement,
        "a file stored again replaces the old one"
    );

    // A write that fails changes nothing.
    let gone = sources.join("not-there.csv");
    let failed = storage.put(&key, &gone).await;
    assert!(
        failed.is_err(),
        "a source that is not there is not stored: {failed:?}"
    );
    assert_eq!(
        read(storage, &key).await,
        replacement,
        "the file stored before is still whole"
    );
    let never = format!("{tenant}/never.csv");
    let failed = storage.put(&never, &gone).await;
    assert!(
        failed.is_err(),
        "a source that is not there is not stored: {failed:?}"
    );
    let err = unreadable(storage, &never).await;
    assert!(
        matches!(err, Error::NotFound { .. }),
        "a failed write leaves no file: {err:?}"
    );

    // An empty file, under a deeper key.
    let (empty, nothing) = source(&sources, "empty.parquet", 0, 0);
    let deep = format!("{tenant}/2026/03/{}.parquet", Uuid::new_v4());
    storage.put(&deep, &empty).await.unwrap();
    assert_eq!(
        read(storage, &deep).await,
        nothing,
        "an empty file reads back empty"
    );

    // What is not there.
    for missing in [
        format!("{tenant}/none.csv"),
        format!("{}/none.csv", Uuid::new_v4()),
    ] {
        let err = unreadable(storage, &missing).await;
        assert!(
            matches!(err, Error::NotFound { .. }),
            "{missing} is not there: {err:?}"
        );
    }

    // Keys that could leave their place, or hide: refused for every operation.
    let up = format!("{tenant}/../x");
    for bad in [
        "",
        "/etc/passwd",
        "../x",
        "a/../../b",
        "a//b",
        ".hidden",
        "a/.b",
        "a/./b",
        "a/",
        up.as_str(),
    ] {
        let put = storage.put(bad, &small).await;
        assert!(refused(&put), "{bad:?} stored: {put:?}");
        let get = unreadable(storage, bad).await;
        assert!(matches!(get, Error::Internal(_)), "{bad:?} read: {get:?}");
        let deleted = storage.delete(bad).await;
        assert!(refused(&deleted), "{bad:?} deleted: {deleted:?}");
    }

    // Deleting: the file goes, its neighbour stays; deleting again, or what never was, is fine.
    storage.delete(&key).await.unwrap();
    let err = unreadable(storage, &key).await;
    assert!(
        matches!(err, Error::NotFound { .. }),
        "a deleted file is gone: {err:?}"
    );
    assert_eq!(
        read(storage, &neighbour).await,
        other_data,
        "its neighbour is untouched"
    );
    for k in [&key, &never, &neighbour, &deep] {
        storage.delete(k).await.unwrap();
    }
    let err = unreadable(storage, &neighbour).await;
    assert!(matches!(err, Error::NotFound { .. }), "{err:?}");
}

/// Every file under `dir`.
fn files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(files(&path));
        } else {
            out.push(path);
        }
    }
    out
}

#[tokio::test]
async fn export_storage_contract_on_a_local_directory() {
    let dir = temp_dir();
    let root = dir.join("exports");
    let storage = LocalStorage::new(&root).unwrap();
    contract(&storage, &format!("file://{}", root.display())).await;
    assert_eq!(
        files(&root),
        Vec::<PathBuf>::new(),
        "no file left, no part of one"
    );
    let beside: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(beside, vec!["exports"], "nothing written beside the directory");
}

#[tokio::test]
async fn export_storage_contract_on_an_s3_bucket() {
    let s3 = S3Server::start().await;
    let settings = S3Settings {
        endpoint: s3.endpoint.clone(),
        bucket: s3.bucket.clone(),
        region: "us-east-1".into(),
        prefix: "exports".into(),
        access_key_id: "test".into(),
        secret_access_key: "test".into(),
        path_style: true,
    };
    let storage = S3Storage::new(&settings).unwrap();
    contract(&storage, &format!("s3://{}/exports", s3.bucket)).await;
    assert_eq!(
        s3.keys().await,
        Vec::<String>::new(),
        "nothing left in the bucket"
    );
}
