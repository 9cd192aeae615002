//! Errors of the streams service. Each carries the AWS exception name it is reported as and a
//! message in AWS's words, so the API layer only has to encode it.

/// The AWS exception a failure is reported as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    ResourceNotFound,
    ResourceInUse,
    InvalidArgument,
    LimitExceeded,
    ExpiredIterator,
    ExpiredNextToken,
    ProvisionedThroughputExceeded,
    Validation,
    InternalFailure,
}

impl ErrorKind {
    /// The `__type` AWS SDKs match on.
    pub fn aws_name(self) -> &'static str {
        match self {
            ErrorKind::ResourceNotFound => "ResourceNotFoundException",
            ErrorKind::ResourceInUse => "ResourceInUseException",
            ErrorKind::InvalidArgument => "InvalidArgumentException",
            ErrorKind::LimitExceeded => "LimitExceededException",
            ErrorKind::ExpiredIterator => "ExpiredIteratorException",
            ErrorKind::ExpiredNextToken => "ExpiredNextTokenException",
            ErrorKind::ProvisionedThroughputExceeded => "ProvisionedThroughputExceededException",
            ErrorKind::Validation => "ValidationException",
            ErrorKind::InternalFailure => "InternalFailure",
        }
    }
}

#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub struct Error {
    pub kind: ErrorKind,
    pub message: String,
}

impl Error {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Error {
        Error { kind, message: message.into() }
    }
    pub fn not_found(message: impl Into<String>) -> Error {
        Error::new(ErrorKind::ResourceNotFound, message)
    }
    pub fn in_use(message: impl Into<String>) -> Error {
        Error::new(ErrorKind::ResourceInUse, message)
    }
    pub fn invalid(message: impl Into<String>) -> Error {
        Error::new(ErrorKind::InvalidArgument, message)
    }
    pub fn limit(message: impl Into<String>) -> Error {
        Error::new(ErrorKind::LimitExceeded, message)
    }
    pub fn validation(message: impl Into<String>) -> Error {
        Error::new(ErrorKind::Validation, message)
    }
}

impl From<tarn_log::Error> for Error {
    fn from(e: tarn_log::Error) -> Error {
        tracing::error!(error = %e, "shard log failure");
        Error::new(ErrorKind::InternalFailure, format!("Internal service failure: {e}"))
    }
}

impl From<std::io::Error> for Error {
    fn from(e: std::io::Error) -> Error {
        tracing::error!(error = %e, "metadata i/o failure");
        Error::new(ErrorKind::InternalFailure, format!("Internal service failure: {e}"))
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
