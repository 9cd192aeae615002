use std::path::PathBuf;

/// Errors of the shard log. Messages name the file involved so that an operator can act on them.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("log i/o on {path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("corrupt batch in {path} at byte {position}: {reason}")]
    Corrupt { path: PathBuf, position: u64, reason: &'static str },
    #[error("log at {0} is failed after an fsync error and accepts no more writes; restart to recover")]
    Poisoned(PathBuf),
    #[error("log at {0} is closed")]
    Closed(PathBuf),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

pub(crate) trait IoContext<T> {
    fn at(self, path: &std::path::Path) -> Result<T>;
}

impl<T> IoContext<T> for std::io::Result<T> {
    fn at(self, path: &std::path::Path) -> Result<T> {
        self.map_err(|source| Error::Io { path: path.to_owned(), source })
    }
}
