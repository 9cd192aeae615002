//! Storage errors, each naming the operation and the file it concerned.

/// What went wrong with a file operation.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{op} {location}: no such file")]
    NotFound { op: &'static str, location: String },
    #[error("{op} {location}: {source}")]
    Io { op: &'static str, location: String, source: std::io::Error },
    #[error("{op} {location}: the object store answered {status} {code}: {message}")]
    Service { op: &'static str, location: String, status: u16, code: String, message: String },
    #[error("{op} {location}: cannot reach the object store: {message}")]
    Unreachable { op: &'static str, location: String, message: String },
    #[error("{0}")]
    Config(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn is_not_found(&self) -> bool {
        matches!(self, Error::NotFound { .. })
    }
}
