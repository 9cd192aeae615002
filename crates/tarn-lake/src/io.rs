//! Iceberg's file I/O on an S3-compatible store: the `Storage` iceberg-rust calls for metadata,
//! manifests and data files at `s3://bucket/key`, served by Tarn's own S3 client. (Local lakes
//! use iceberg's local file system storage.)

use std::ops::Range;
use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use futures_util::StreamExt;
use futures_util::stream::BoxStream;
use iceberg::io::{FileMetadata, FileRead, FileWrite, InputFile, OutputFile, Storage, StorageConfig, StorageFactory};
use iceberg::{Error, ErrorKind, Result};
use serde::{Deserialize, Serialize};
use tarn_store::S3Store;

fn storage_error(e: tarn_store::Error) -> Error {
    Error::new(ErrorKind::Unexpected, e.to_string())
}

/// Iceberg storage over one bucket.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct S3Storage {
    s3: S3Store,
}

impl S3Storage {
    /// The object key of `path` (`s3://bucket/key`, `s3a://…`), which must be in this bucket.
    fn key<'a>(&self, path: &'a str) -> Result<&'a str> {
        let rest = path.strip_prefix("s3://").or_else(|| path.strip_prefix("s3a://")).unwrap_or("");
        match rest.split_once('/') {
            Some((bucket, key)) if bucket == self.s3.bucket() => Ok(key),
            _ => Err(Error::new(
                ErrorKind::DataInvalid,
                format!("{path} is not in the lake's bucket s3://{}", self.s3.bucket()),
            )),
        }
    }
}

#[async_trait]
#[typetag::serde]
impl Storage for S3Storage {
    async fn exists(&self, path: &str) -> Result<bool> {
        Ok(self.s3.head(self.key(path)?).await.map_err(storage_error)?.is_some())
    }

    async fn metadata(&self, path: &str) -> Result<FileMetadata> {
        match self.s3.head(self.key(path)?).await.map_err(storage_error)? {
            Some(size) => Ok(FileMetadata { size }),
            None => Err(Error::new(ErrorKind::DataInvalid, format!("{path}: no such file"))),
        }
    }

    async fn read(&self, path: &str) -> Result<Bytes> {
        self.s3.get(self.key(path)?, None).await.map_err(storage_error)
    }

    async fn reader(&self, path: &str) -> Result<Box<dyn FileRead>> {
        Ok(Box::new(S3Read { s3: self.s3.clone(), key: self.key(path)?.to_owned() }))
    }

    async fn write(&self, path: &str, bs: Bytes) -> Result<()> {
        self.s3.put(self.key(path)?, bs).await.map_err(storage_error)
    }

    async fn writer(&self, path: &str) -> Result<Box<dyn FileWrite>> {
        Ok(Box::new(S3Write { s3: self.s3.clone(), key: self.key(path)?.to_owned(), buffer: Some(Vec::new()) }))
    }

    async fn delete(&self, path: &str) -> Result<()> {
        self.s3.delete(self.key(path)?).await.map_err(storage_error)
    }

    async fn delete_prefix(&self, path: &str) -> Result<()> {
        let prefix = format!("{}/", self.key(path)?.trim_end_matches('/'));
        for object in self.s3.list(&prefix).await.map_err(storage_error)? {
            self.s3.delete(&object.key).await.map_err(storage_error)?;
        }
        Ok(())
    }

    async fn delete_stream(&self, mut paths: BoxStream<'static, String>) -> Result<()> {
        while let Some(path) = paths.next().await {
            self.delete(&path).await?;
        }
        Ok(())
    }

    fn new_input(&self, path: &str) -> Result<InputFile> {
        Ok(InputFile::new(Arc::new(self.clone()), path.to_owned()))
    }

    fn new_output(&self, path: &str) -> Result<OutputFile> {
        Ok(OutputFile::new(Arc::new(self.clone()), path.to_owned()))
    }
}

/// Ranged reads of one object.
struct S3Read {
    s3: S3Store,
    key: String,
}

#[async_trait]
impl FileRead for S3Read {
    async fn read(&self, range: Range<u64>) -> Result<Bytes> {
        self.s3.get(&self.key, Some(range)).await.map_err(storage_error)
    }
}

/// A file written in memory and uploaded whole when closed (data files are at most the target
/// file size, well under S3's 5 GiB single-upload limit).
struct S3Write {
    s3: S3Store,
    key: String,
    buffer: Option<Vec<u8>>,
}

#[async_trait]
impl FileWrite for S3Write {
    async fn write(&mut self, bs: Bytes) -> Result<()> {
        let buffer =
            self.buffer.as_mut().ok_or_else(|| Error::new(ErrorKind::DataInvalid, "write to a closed file"))?;
        buffer.extend_from_slice(&bs);
        Ok(())
    }

    async fn close(&mut self) -> Result<()> {
        let buffer = self.buffer.take().ok_or_else(|| Error::new(ErrorKind::DataInvalid, "file closed twice"))?;
        self.s3.put(&self.key, Bytes::from(buffer)).await.map_err(storage_error)
    }
}

/// Builds [`S3Storage`] for the catalog's tables.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct S3StorageFactory {
    pub s3: S3Store,
}

#[typetag::serde]
impl StorageFactory for S3StorageFactory {
    fn build(&self, _config: &StorageConfig) -> Result<Arc<dyn Storage>> {
        Ok(Arc::new(S3Storage { s3: self.s3.clone() }))
    }
}
