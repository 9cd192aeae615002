//! A local directory as an object store: keys are relative paths.

use std::io::Write;
use std::ops::Range;
use std::path::{Path, PathBuf};

use bytes::Bytes;

use crate::{Error, ObjectInfo, Result};

#[derive(Debug, Clone)]
pub struct LocalStore {
    root: PathBuf,
}

/// Runs blocking file work off the async threads.
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> Result<T> + Send + 'static) -> Result<T> {
    tokio::task::spawn_blocking(f).await.map_err(|e| Error::Config(format!("file task failed: {e}")))?
}

impl LocalStore {
    /// The store rooted at `root`, made absolute (against the working directory) so that the
    /// `file://` URLs Iceberg metadata records stay valid wherever they are read from.
    pub fn new(root: impl Into<PathBuf>) -> LocalStore {
        let root = root.into();
        LocalStore { root: std::path::absolute(&root).unwrap_or(root) }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn path(&self, key: &str) -> PathBuf {
        if key.is_empty() { self.root.clone() } else { self.root.join(key) }
    }

    fn io(op: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> Error {
        let location = path.display().to_string();
        move |source| {
            if source.kind() == std::io::ErrorKind::NotFound {
                Error::NotFound { op, location }
            } else {
                Error::Io { op, location, source }
            }
        }
    }

    /// Writes `body` aside, fsyncs it, renames it into place and fsyncs the folder.
    pub async fn put(&self, key: &str, body: Bytes) -> Result<()> {
        let path = self.path(key);
        blocking(move || {
            let dir = path.parent().unwrap_or(Path::new("/")).to_owned();
            std::fs::create_dir_all(&dir).map_err(Self::io("create folder", &dir))?;
            let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
            let tmp = dir.join(format!(".{name}.tmp"));
            let mut f = std::fs::File::create(&tmp).map_err(Self::io("write", &tmp))?;
            f.write_all(&body).and_then(|_| f.sync_all()).map_err(Self::io("write", &tmp))?;
            std::fs::rename(&tmp, &path).map_err(Self::io("rename", &path))?;
            std::fs::File::open(&dir).and_then(|d| d.sync_all()).map_err(Self::io("sync folder", &dir))
        })
        .await
    }

    pub async fn get(&self, key: &str) -> Result<Bytes> {
        let path = self.path(key);
        blocking(move || std::fs::read(&path).map(Bytes::from).map_err(Self::io("read", &path))).await
    }

    pub async fn get_range(&self, key: &str, range: Range<u64>) -> Result<Bytes> {
        let store = self.clone();
        let key = key.to_owned();
        blocking(move || Ok(store.read_ranges_now(&key, &[range])?.remove(0))).await
    }

    /// The bytes of each of `ranges` of `key`, read on the calling thread with one open of the
    /// file. For callers whose thread may block on a short local read (the query runtime);
    /// async code elsewhere uses [`LocalStore::get_range`].
    pub fn read_ranges_now(&self, key: &str, ranges: &[Range<u64>]) -> Result<Vec<Bytes>> {
        use std::os::unix::fs::FileExt;
        let path = self.path(key);
        let f = std::fs::File::open(&path).map_err(Self::io("read", &path))?;
        ranges
            .iter()
            .map(|range| {
                let mut buf = vec![0; (range.end - range.start) as usize];
                f.read_exact_at(&mut buf, range.start).map_err(Self::io("read", &path))?;
                Ok(Bytes::from(buf))
            })
            .collect()
    }

    pub async fn head(&self, key: &str) -> Result<Option<u64>> {
        let path = self.path(key);
        blocking(move || match std::fs::metadata(&path) {
            Ok(m) if m.is_file() => Ok(Some(m.len())),
            Ok(_) => Ok(None),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(Self::io("stat", &path)(e)),
        })
        .await
    }

    /// Deletes the file and the folders it leaves empty (up to the root).
    pub async fn delete(&self, key: &str) -> Result<()> {
        let path = self.path(key);
        let root = self.root.clone();
        blocking(move || {
            match std::fs::remove_file(&path) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
                Err(e) => return Err(Self::io("delete", &path)(e)),
            }
            let mut dir = path.parent();
            while let Some(d) = dir {
                if d == root || !d.starts_with(&root) || std::fs::remove_dir(d).is_err() {
                    break;
                }
                dir = d.parent();
            }
            Ok(())
        })
        .await
    }

    pub async fn list(&self, prefix: &str) -> Result<Vec<ObjectInfo>> {
        let root = self.root.clone();
        let prefix = prefix.to_owned();
        blocking(move || {
            // Walk from the deepest folder the prefix names completely.
            let start = match prefix.rfind('/') {
                Some(i) => prefix[..i].to_owned(),
                None => String::new(),
            };
            let mut out = Vec::new();
            let mut pending = vec![start];
            while let Some(rel) = pending.pop() {
                let dir = if rel.is_empty() { root.clone() } else { root.join(&rel) };
                let entries = match std::fs::read_dir(&dir) {
                    Ok(e) => e,
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                    Err(e) => return Err(Self::io("list", &dir)(e)),
                };
                for entry in entries {
                    let entry = entry.map_err(Self::io("list", &dir))?;
                    let name = entry.file_name().to_string_lossy().into_owned();
                    if name.starts_with('.') && name.ends_with(".tmp") {
                        continue; // a write in progress
                    }
                    let key = if rel.is_empty() { name } else { format!("{rel}/{name}") };
                    let meta = entry.metadata().map_err(Self::io("list", &entry.path()))?;
                    if meta.is_dir() {
                        if key.starts_with(&prefix) || prefix.starts_with(&format!("{key}/")) {
                            pending.push(key);
                        }
                    } else if key.starts_with(&prefix) {
                        out.push(ObjectInfo { key, size: meta.len() });
                    }
                }
            }
            out.sort_by(|a, b| a.key.cmp(&b.key));
            Ok(out)
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_relative_root_gives_absolute_urls() {
        let store = crate::Store::local("tarn-data/lake");
        let url = store.url("warehouse");
        assert!(url.starts_with("file:///") && url.ends_with("/tarn-data/lake/warehouse"), "{url}");
    }

    #[tokio::test]
    async fn puts_lists_reads_and_deletes_by_key() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalStore::new(dir.path());
        store.put("a/b/one.json", Bytes::from_static(b"0123456789")).await.unwrap();
        store.put("a/c/two.json", Bytes::from_static(b"xy")).await.unwrap();
        store.put("ab/three.json", Bytes::from_static(b"z")).await.unwrap();
        let keys = |v: Vec<ObjectInfo>| v.into_iter().map(|o| o.key).collect::<Vec<_>>();
        assert_eq!(keys(store.list("a/").await.unwrap()), ["a/b/one.json", "a/c/two.json"]);
        assert_eq!(keys(store.list("a").await.unwrap()), ["a/b/one.json", "a/c/two.json", "ab/three.json"]);
        assert_eq!(keys(store.list("a/b/o").await.unwrap()), ["a/b/one.json"]);
        assert_eq!(store.get_range("a/b/one.json", 2..5).await.unwrap(), Bytes::from_static(b"234"));
        assert_eq!(store.head("a/c/two.json").await.unwrap(), Some(2));
        assert_eq!(store.head("a/c/none").await.unwrap(), None);
        assert!(store.get("nope").await.unwrap_err().is_not_found());
        store.delete("a/c/two.json").await.unwrap();
        store.delete("a/c/two.json").await.unwrap();
        assert!(!dir.path().join("a/c").exists(), "emptied folders go with their last file");
        assert!(dir.path().join("a/b/one.json").exists());
    }
}
