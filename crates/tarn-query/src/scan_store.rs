//! The lake's files as DataFusion reads them: an `object_store` view of a [`Store`] (a local
//! directory or an S3 location) that counts every byte it returns, so each query can report the
//! bytes it scanned, as Athena bills them. Read-only: queries never write through it.

use std::collections::HashMap;
use std::fmt;
use std::ops::Range;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use async_trait::async_trait;
use bytes::Bytes;
use chrono::{DateTime, Utc};
use futures_util::StreamExt;
use futures_util::stream::{self, BoxStream};
use object_store::path::Path;
use object_store::{
    Attributes, CopyOptions, GetOptions, GetRange, GetResult, GetResultPayload, ListResult, MultipartUpload,
    ObjectMeta, ObjectStore, PutMultipartOptions, PutOptions, PutPayload, PutResult,
};
use tarn_store::Store;

/// The URL DataFusion knows the lake by; file locations are store keys under it.
pub const LAKE_URL: &str = "tarn://lake/";

/// Ranged GETs of one file in flight at once on S3.
const S3_READS_AT_ONCE: usize = 8;

/// One query's reader of the lake.
#[derive(Debug)]
pub struct ScanStore {
    store: Store,
    /// Sizes known from the table metadata, so a ranged read needs no HEAD first.
    sizes: Mutex<HashMap<String, u64>>,
    bytes: AtomicU64,
}

impl fmt::Display for ScanStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ScanStore({})", self.store.url(""))
    }
}

fn failed(e: tarn_store::Error, key: &str) -> object_store::Error {
    if e.is_not_found() {
        object_store::Error::NotFound { path: key.to_owned(), source: Box::new(e) }
    } else {
        object_store::Error::Generic { store: "tarn", source: Box::new(e) }
    }
}

fn read_only() -> object_store::Error {
    object_store::Error::NotSupported { source: "queries read the lake; they do not write through this store".into() }
}

fn epoch() -> DateTime<Utc> {
    DateTime::<Utc>::from_timestamp(0, 0).unwrap_or_default()
}

impl ScanStore {
    pub fn new(store: Store) -> ScanStore {
        ScanStore { store, sizes: Mutex::default(), bytes: AtomicU64::new(0) }
    }

    /// Records the size of `key`, known from the table's metadata.
    pub fn know_size(&self, key: &str, size: u64) {
        self.sizes.lock().unwrap_or_else(|p| p.into_inner()).insert(key.to_owned(), size);
    }

    /// Bytes returned so far.
    pub fn bytes_scanned(&self) -> u64 {
        self.bytes.load(Ordering::Relaxed)
    }

    async fn size_of(&self, key: &str) -> object_store::Result<u64> {
        if let Some(size) = self.sizes.lock().unwrap_or_else(|p| p.into_inner()).get(key) {
            return Ok(*size);
        }
        match self.store.head(key).await.map_err(|e| failed(e, key))? {
            Some(size) => {
                self.know_size(key, size);
                Ok(size)
            }
            None => Err(object_store::Error::NotFound { path: key.to_owned(), source: "no such file".into() }),
        }
    }

    fn meta(key: &str, size: u64) -> ObjectMeta {
        ObjectMeta { location: Path::from(key), last_modified: epoch(), size, e_tag: None, version: None }
    }

    /// The bytes of `ranges` of `key`. A local file is read right here, on the query's own
    /// thread (queries run on a runtime of their own, and a read of a local file is short: a
    /// hand-off to a blocking thread per read cost more than the read); S3 ranges are fetched
    /// concurrently.
    async fn read(&self, key: &str, ranges: &[Range<u64>]) -> object_store::Result<Vec<Bytes>> {
        let parts = match &self.store {
            Store::Local(local) => local.read_ranges_now(key, ranges),
            store => {
                let reads: Vec<_> = ranges.iter().cloned().map(|r| store.get_range(key, r)).collect();
                stream::iter(reads).buffered(S3_READS_AT_ONCE).collect::<Vec<_>>().await.into_iter().collect()
            }
        }
        .map_err(|e| failed(e, key))?;
        let total: usize = parts.iter().map(Bytes::len).sum();
        self.bytes.fetch_add(total as u64, Ordering::Relaxed);
        Ok(parts)
    }
}

fn resolve(range: Option<GetRange>, size: u64) -> object_store::Result<Range<u64>> {
    let range = match range {
        None => 0..size,
        Some(GetRange::Bounded(r)) => r.start..r.end.min(size),
        Some(GetRange::Offset(o)) => o..size,
        Some(GetRange::Suffix(n)) => size.saturating_sub(n)..size,
    };
    if range.start > range.end || (range.start == range.end && size > 0) {
        return Err(object_store::Error::Generic {
            store: "tarn",
            source: format!("range {range:?} is outside an object of {size} bytes").into(),
        });
    }
    Ok(range)
}

#[async_trait]
impl ObjectStore for ScanStore {
    async fn put_opts(&self, _: &Path, _: PutPayload, _: PutOptions) -> object_store::Result<PutResult> {
        Err(read_only())
    }

    async fn put_multipart_opts(
        &self,
        _: &Path,
        _: PutMultipartOptions,
    ) -> object_store::Result<Box<dyn MultipartUpload>> {
        Err(read_only())
    }

    async fn get_opts(&self, location: &Path, options: GetOptions) -> object_store::Result<GetResult> {
        let key = location.as_ref();
        let size = self.size_of(key).await?;
        let meta = Self::meta(key, size);
        let (range, payload) = if options.head {
            (0..0, Bytes::new())
        } else {
            let range = resolve(options.range, size)?;
            let bytes = if range.is_empty() {
                Bytes::new()
            } else {
                self.read(key, std::slice::from_ref(&range)).await?.remove(0)
            };
            (range, bytes)
        };
        Ok(GetResult {
            payload: GetResultPayload::Stream(stream::once(async move { Ok(payload) }).boxed()),
            meta,
            range,
            attributes: Attributes::default(),
        })
    }

    async fn get_ranges(&self, location: &Path, ranges: &[Range<u64>]) -> object_store::Result<Vec<Bytes>> {
        self.read(location.as_ref(), ranges).await
    }

    fn delete_stream(
        &self,
        locations: BoxStream<'static, object_store::Result<Path>>,
    ) -> BoxStream<'static, object_store::Result<Path>> {
        locations.map(|_| Err(read_only())).boxed()
    }

    fn list(&self, prefix: Option<&Path>) -> BoxStream<'static, object_store::Result<ObjectMeta>> {
        let store = self.store.clone();
        let prefix = prefix.map(|p| format!("{}/", p.as_ref())).unwrap_or_default();
        stream::once(async move {
            match store.list(&prefix).await {
                Ok(found) => found.into_iter().map(|o| Ok(ScanStore::meta(&o.key, o.size))).collect::<Vec<_>>(),
                Err(e) => vec![Err(failed(e, &prefix))],
            }
        })
        .flat_map(stream::iter)
        .boxed()
    }

    async fn list_with_delimiter(&self, prefix: Option<&Path>) -> object_store::Result<ListResult> {
        let base = prefix.map(|p| format!("{}/", p.as_ref())).unwrap_or_default();
        let found = self.store.list(&base).await.map_err(|e| failed(e, &base))?;
        let mut result = ListResult { common_prefixes: Vec::new(), objects: Vec::new() };
        for o in found {
            match o.key[base.len()..].split_once('/') {
                Some((folder, _)) => {
                    let folder = Path::from(format!("{base}{folder}"));
                    if result.common_prefixes.last() != Some(&folder) {
                        result.common_prefixes.push(folder);
                    }
                }
                None => result.objects.push(Self::meta(&o.key, o.size)),
            }
        }
        Ok(result)
    }

    async fn copy_opts(&self, _: &Path, _: &Path, _: CopyOptions) -> object_store::Result<()> {
        Err(read_only())
    }
}

#[cfg(test)]
mod tests {
    use object_store::ObjectStoreExt;

    use super::*;

    #[tokio::test]
    async fn reads_ranges_and_counts_the_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::local(dir.path());
        store.put("warehouse/t/data/a.parquet", Bytes::from_static(b"0123456789")).await.unwrap();
        store.put("warehouse/t/data/year=2026/b.parquet", Bytes::from_static(b"abc")).await.unwrap();
        let scan = ScanStore::new(store);
        let path = Path::from("warehouse/t/data/a.parquet");
        assert_eq!(scan.get_range(&path, 2..5).await.unwrap(), Bytes::from_static(b"234"));
        assert_eq!(scan.head(&path).await.unwrap().size, 10);
        let suffix = scan.get_opts(&path, GetOptions { range: Some(GetRange::Suffix(4)), ..Default::default() });
        assert_eq!(suffix.await.unwrap().bytes().await.unwrap(), Bytes::from_static(b"6789"));
        assert_eq!(scan.bytes_scanned(), 7, "the HEAD is not a scanned byte");
        assert!(
            scan.get_range(&Path::from("warehouse/none"), 0..1).await.unwrap_err().to_string().contains("not found")
        );

        let listed = scan.list_with_delimiter(Some(&Path::from("warehouse/t/data"))).await.unwrap();
        assert_eq!(listed.objects.len(), 1);
        assert_eq!(listed.common_prefixes, vec![Path::from("warehouse/t/data/year=2026")]);
        assert!(scan.put(&path, PutPayload::from_static(b"x")).await.is_err(), "read-only");
    }
}
