//! Archived objects: which data the bucket's lifecycle moves to colder classes and when, an
//! object's Glacier or Deep Archive state, and asking S3 for a readable copy.

use super::{describe, S3Store};
use crate::error::{Error, Result};
use crate::store::{is_archive_class, ArchiveState, ObjectStore, RetrievalTier};

impl S3Store {
    /// [`ObjectStore::data_transitions`]: the moves the bucket's lifecycle makes of data objects
    /// under `prefix`.
    pub(super) async fn read_data_transitions(&self, prefix: &str) -> Result<Vec<(u32, String)>> {
        let full_prefix = format!("{}{prefix}", self.prefix);
        let rules = match self
            .client
            .get_bucket_lifecycle_configuration()
            .bucket(&self.bucket)
            .send()
            .await
        {
            Ok(output) => output.rules().to_vec(),
            Err(e) => {
                // No lifecycle (404), or no permission to read it: nothing known to move.
                tracing::debug!("no lifecycle read for {}: {}", self.bucket, describe(&e));
                return Ok(Vec::new());
            }
        };
        let mut transitions = Vec::new();
        for rule in rules {
            if rule.status().as_str() != "Enabled" {
                continue;
            }
            let (rule_prefix, tags) = match rule.filter() {
                Some(filter) => match filter.and() {
                    Some(and) => (
                        and.prefix().unwrap_or_default().to_string(),
                        and.tags()
                            .iter()
                            .map(|t| (t.key().to_string(), t.value().to_string()))
                            .collect::<Vec<_>>(),
                    ),
                    None => (
                        filter.prefix().unwrap_or_default().to_string(),
                        filter
                            .tag()
                            .map(|t| vec![(t.key().to_string(), t.value().to_string())])
                            .unwrap_or_default(),
                    ),
                },
                #[allow(deprecated)]
                None => (rule.prefix().unwrap_or_default().to_string(), Vec::new()),
            };
            let for_data = tags
                .iter()
                .all(|(k, v)| k == "backup-object" && v == "data");
            if !for_data || !full_prefix.starts_with(&rule_prefix) {
                continue;
            }
            for transition in rule.transitions() {
                if let (Some(days), Some(class)) = (transition.days(), transition.storage_class()) {
                    transitions.push((days.max(0) as u32, class.as_str().to_string()));
                }
            }
        }
        transitions.sort();
        Ok(transitions)
    }

    /// [`ObjectStore::archive_state`]: HeadObject's storage class and `x-amz-restore` header.
    pub(super) async fn read_archive_state(&self, key: &str) -> Result<ArchiveState> {
        let full_key = self.full_key(key)?;
        let head = self
            .client
            .head_object()
            .bucket(&self.bucket)
            .key(&full_key)
            .send()
            .await
            .map_err(|e| match e.raw_response().map(|r| r.status().as_u16()) {
                Some(404) => Error::MissingFile {
                    file: key.to_string(),
                },
                _ => self.error("HeadObject", &full_key, describe(&e)),
            })?;
        let class = head
            .storage_class()
            .map(|c| c.as_str().to_string())
            .unwrap_or_else(|| "STANDARD".into());
        if !is_archive_class(&class) {
            return Ok(ArchiveState::Readable);
        }
        Ok(archive_state_from(class, head.restore()))
    }

    /// [`ObjectStore::request_retrieval`]: RestoreObject, unless the object is readable or on
    /// its way.
    pub(super) async fn ask_retrieval(
        &self,
        key: &str,
        tier: RetrievalTier,
        days: u32,
    ) -> Result<ArchiveState> {
        let state = self.archive_state(key).await?;
        if !matches!(state, ArchiveState::Archived { .. }) {
            return Ok(state);
        }
        let full_key = self.full_key(key)?;
        let tier = match tier {
            RetrievalTier::Expedited => aws_sdk_s3::types::Tier::Expedited,
            RetrievalTier::Standard => aws_sdk_s3::types::Tier::Standard,
            RetrievalTier::Bulk => aws_sdk_s3::types::Tier::Bulk,
        };
        let request = aws_sdk_s3::types::RestoreRequest::builder()
            .days(days.clamp(1, 30) as i32)
            .glacier_job_parameters(
                aws_sdk_s3::types::GlacierJobParameters::builder()
                    .tier(tier)
                    .build()
                    .map_err(|e| Error::Task(e.to_string()))?,
            )
            .build();
        match self
            .client
            .restore_object()
            .bucket(&self.bucket)
            .key(&full_key)
            .restore_request(request)
            .send()
            .await
        {
            Ok(_) => {}
            // RestoreAlreadyInProgress: someone asked already.
            Err(e) if e.raw_response().map(|r| r.status().as_u16()) == Some(409) => {}
            Err(e) => return Err(self.error("RestoreObject", &full_key, describe(&e))),
        }
        self.archive_state(key).await
    }
}

/// An archived object's state from S3's `x-amz-restore` header: absent (never asked, or the
/// copy expired), `ongoing-request="true"`, or `ongoing-request="false", expiry-date="…"`.
fn archive_state_from(class: String, restore: Option<&str>) -> ArchiveState {
    match restore {
        None => ArchiveState::Archived { class },
        Some(header) if header.contains("ongoing-request=\"true\"") => {
            ArchiveState::Retrieving { class }
        }
        Some(header) => ArchiveState::Retrieved {
            class,
            until: header
                .split("expiry-date=\"")
                .nth(1)
                .and_then(|rest| rest.split('"').next())
                .map(str::to_string),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_restore_header_says_how_far_a_retrieval_is() {
        assert_eq!(
            archive_state_from("GLACIER".into(), None),
            ArchiveState::Archived {
                class: "GLACIER".into()
            }
        );
        assert_eq!(
            archive_state_from("DEEP_ARCHIVE".into(), Some("ongoing-request=\"true\"")),
            ArchiveState::Retrieving {
                class: "DEEP_ARCHIVE".into()
            }
        );
        let done = archive_state_from(
            "GLACIER".into(),
            Some("ongoing-request=\"false\", expiry-date=\"Fri, 21 Dec 2012 00:00:00 GMT\""),
        );
        assert_eq!(
            done,
            ArchiveState::Retrieved {
                class: "GLACIER".into(),
                until: Some("Fri, 21 Dec 2012 00:00:00 GMT".into())
            }
        );
        assert!(done.readable());
    }
}
