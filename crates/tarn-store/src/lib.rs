//! Where the lake's files live. A [`Store`] is rooted at a location, a local directory or an
//! `s3://bucket/prefix` on any S3-compatible service, and addresses files by keys relative to
//! that root (`warehouse/…`, `errors/…`, `backup/…`). Writes are durable when they return: a
//! local file is written aside, fsynced and renamed; an S3 PUT is acknowledged by the service.

mod error;
mod local;
pub mod s3;

use std::ops::Range;
use std::path::{Path, PathBuf};

use bytes::Bytes;

pub use error::{Error, Result};
pub use local::LocalStore;
pub use s3::{S3Config, S3Store};
pub use tarn_sigv4::Credentials;

/// One stored file, as a listing returns it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectInfo {
    /// Relative to the store's root, `/`-separated.
    pub key: String,
    pub size: u64,
}

/// A local directory or an S3 location, addressed by relative keys.
#[derive(Debug, Clone)]
pub enum Store {
    Local(LocalStore),
    S3 { s3: Box<S3Store>, prefix: String },
}

impl Store {
    pub fn local(root: impl Into<PathBuf>) -> Store {
        Store::Local(LocalStore::new(root))
    }

    /// The store at `s3://bucket/prefix` with the service settings in `config` (whose bucket the
    /// URL sets).
    pub fn s3(url: &str, mut config: S3Config) -> Result<Store> {
        let (bucket, prefix) = s3::parse_url(url)?;
        config.bucket = bucket;
        Ok(Store::S3 { s3: Box::new(S3Store::new(config)?), prefix })
    }

    /// The URL of `key`: `file:///…` or `s3://bucket/…` (the form Iceberg metadata records).
    pub fn url(&self, key: &str) -> String {
        match self {
            Store::Local(l) => format!("file://{}", l.path(key).display()),
            Store::S3 { s3, prefix } => format!("s3://{}/{}", s3.bucket(), join(prefix, key)),
        }
    }

    /// The key of a URL that [`Store::url`] made (or an equivalent `file:` / `s3a://` form), or
    /// `None` when the URL lies outside this store.
    pub fn key_of<'a>(&self, url: &'a str) -> Option<&'a str> {
        match self {
            Store::Local(l) => {
                let path = url.strip_prefix("file://").or_else(|| url.strip_prefix("file:")).unwrap_or(url);
                let root = l.root().to_str()?;
                path.strip_prefix(root)?.strip_prefix('/')
            }
            Store::S3 { s3, prefix } => {
                let rest = url.strip_prefix("s3://").or_else(|| url.strip_prefix("s3a://"))?;
                let key = rest.strip_prefix(s3.bucket())?.strip_prefix('/')?;
                if prefix.is_empty() { Some(key) } else { key.strip_prefix(prefix.as_str())?.strip_prefix('/') }
            }
        }
    }

    /// The local directory of a local store.
    pub fn local_root(&self) -> Option<&Path> {
        match self {
            Store::Local(l) => Some(l.root()),
            Store::S3 { .. } => None,
        }
    }

    pub async fn put(&self, key: &str, body: Bytes) -> Result<()> {
        match self {
            Store::Local(l) => l.put(key, body).await,
            Store::S3 { s3, prefix } => s3.put(&join(prefix, key), body).await,
        }
    }

    pub async fn get(&self, key: &str) -> Result<Bytes> {
        match self {
            Store::Local(l) => l.get(key).await,
            Store::S3 { s3, prefix } => s3.get(&join(prefix, key), None).await,
        }
    }

    pub async fn get_range(&self, key: &str, range: Range<u64>) -> Result<Bytes> {
        match self {
            Store::Local(l) => l.get_range(key, range).await,
            Store::S3 { s3, prefix } => s3.get(&join(prefix, key), Some(range)).await,
        }
    }

    /// The size of `key`, or `None` if there is no such file.
    pub async fn head(&self, key: &str) -> Result<Option<u64>> {
        match self {
            Store::Local(l) => l.head(key).await,
            Store::S3 { s3, prefix } => s3.head(&join(prefix, key)).await,
        }
    }

    /// Deletes `key`; deleting a missing file is not an error.
    pub async fn delete(&self, key: &str) -> Result<()> {
        match self {
            Store::Local(l) => l.delete(key).await,
            Store::S3 { s3, prefix } => s3.delete(&join(prefix, key)).await,
        }
    }

    /// Every file whose key starts with `prefix` (a folder when it ends with `/`), sorted by key.
    pub async fn list(&self, key_prefix: &str) -> Result<Vec<ObjectInfo>> {
        match self {
            Store::Local(l) => l.list(key_prefix).await,
            Store::S3 { s3, prefix } => {
                let root = if prefix.is_empty() { String::new() } else { format!("{prefix}/") };
                let mut found = s3.list(&format!("{root}{key_prefix}")).await?;
                for o in &mut found {
                    o.key = o.key[root.len()..].to_owned();
                }
                Ok(found)
            }
        }
    }
}

fn join(prefix: &str, key: &str) -> String {
    match (prefix.is_empty(), key.is_empty()) {
        (true, _) => key.to_owned(),
        (false, true) => prefix.to_owned(),
        (false, false) => format!("{prefix}/{key}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_of_undoes_url_and_refuses_other_locations() {
        let local = Store::local("/var/lake");
        assert_eq!(local.key_of(&local.url("warehouse/a/b.parquet")), Some("warehouse/a/b.parquet"));
        assert_eq!(local.key_of("file:/var/lake/warehouse/x"), Some("warehouse/x"));
        assert_eq!(local.key_of("file:///var/lakehouse/x"), None);
        assert_eq!(local.key_of("s3://b/warehouse/x"), None);

        let config = S3Config {
            bucket: String::new(),
            endpoint: Some("http://127.0.0.1:9".into()),
            region: "us-east-1".into(),
            access_key_id: "k".into(),
            secret_access_key: "s".into(),
            session_token: None,
            path_style: true,
        };
        let s3 = Store::s3("s3://bucket/tarn", config.clone()).unwrap();
        assert_eq!(s3.key_of(&s3.url("warehouse/t/x.parquet")), Some("warehouse/t/x.parquet"));
        assert_eq!(s3.key_of("s3a://bucket/tarn/w"), Some("w"));
        assert_eq!(s3.key_of("s3://bucket/tarnish/w"), None);
        assert_eq!(s3.key_of("s3://other/tarn/w"), None);
        let bare = Store::s3("s3://bucket", config).unwrap();
        assert_eq!(bare.key_of("s3://bucket/w/x"), Some("w/x"));
    }
}
