//! How S3's failures are told: the service's code and message, or an error's causes on one
//! line, as an [`Error::S3`] naming the operation, bucket and key.

use aws_sdk_s3::error::ProvideErrorMetadata;

use super::S3Store;
use crate::error::Error;

impl S3Store {
    pub(super) fn error(
        &self,
        operation: &'static str,
        key: &str,
        detail: impl std::fmt::Display,
    ) -> Error {
        Error::S3 {
            operation,
            bucket: self.bucket.clone(),
            key: key.to_string(),
            detail: detail.to_string(),
        }
    }
}

pub(super) fn describe<E: ProvideErrorMetadata + std::error::Error + 'static>(
    error: &aws_sdk_s3::error::SdkError<E, aws_sdk_s3::config::http::HttpResponse>,
) -> String {
    match error.as_service_error() {
        Some(service) => format!(
            "{}: {}",
            service.code().unwrap_or("error"),
            service.message().unwrap_or("no message")
        ),
        None => error_chain(error),
    }
}

/// An error and its causes on one line, each said once, without Debug dumps.
pub(super) fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let next = cause.to_string();
        if !text.contains(&next) {
            text.push_str(": ");
            text.push_str(&next);
        }
        source = cause.source();
    }
    text
}

/// How an error of [`S3Store::get_versioned_once`] says the body was cut off.
pub(super) const BODY_CUT: &str = "the body was cut off: ";
