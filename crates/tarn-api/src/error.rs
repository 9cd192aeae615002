//! [`ApiError`]: an AWS error as it goes on the wire, `{"__type": ..., "message": ...}` with an
//! HTTP status. Every failure of every API is turned into one here, in one place.

use tarn_streams::ErrorKind;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {message}")]
pub struct ApiError {
    pub code: &'static str,
    pub message: String,
    pub status: u16,
}

impl ApiError {
    pub fn new(code: &'static str, status: u16, message: impl Into<String>) -> ApiError {
        ApiError { code, message: message.into(), status }
    }
    pub fn validation(message: impl Into<String>) -> ApiError {
        ApiError::new("ValidationException", 400, message)
    }
    pub fn serialization(message: impl Into<String>) -> ApiError {
        ApiError::new("SerializationException", 400, message)
    }
    pub fn invalid_argument(message: impl Into<String>) -> ApiError {
        ApiError::new("InvalidArgumentException", 400, message)
    }
    pub fn unknown_operation(message: impl Into<String>) -> ApiError {
        ApiError::new("UnknownOperationException", 400, message)
    }
    pub fn internal(message: impl Into<String>) -> ApiError {
        ApiError::new("InternalFailure", 500, message)
    }

    /// Coral writes `Message` for serialization errors and `message` for Kinesis and Firehose
    /// errors; Athena's error shapes declare `Message`. SDKs read both, and matching AWS keeps
    /// scripts that read the raw body working.
    pub fn message_key(&self) -> &'static str {
        match self.code {
            "SerializationException"
            | "InvalidRequestException"
            | "InternalServerException"
            | "TooManyRequestsException"
            | "MetadataException" => "Message",
            _ => "message",
        }
    }
}

impl From<tarn_streams::Error> for ApiError {
    fn from(e: tarn_streams::Error) -> ApiError {
        let status = match e.kind {
            ErrorKind::InternalFailure => 500,
            _ => 400,
        };
        ApiError::new(e.kind.aws_name(), status, e.message)
    }
}
