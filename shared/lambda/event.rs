//! The payloads a function accepts: the EventBridge schedule, or a manual JSON object with
//! known fields. Anything else is refused with a message saying what was expected.

use serde::Deserialize;
use serde_json::Value;

use crate::error::{Error, Result};
use crate::store::validate_key;

const EXPECTED: &str = "an EventBridge \"Scheduled Event\" from aws.events, or a manual object \
    {\"label\": \"…\", \"prefix\": \"…\"} (both optional)";

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DumpEvent {
    Scheduled { rule: Option<String> },
    Manual(ManualDump),
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ManualDump {
    /// Kept in the manifest, e.g. `before-results-release`.
    pub label: Option<String>,
    /// Replaces the configured store prefix, for backups kept apart from the catalog, lifecycle
    /// and replication (the deployed functions may write only under `database/`).
    pub prefix: Option<String>,
}

impl ManualDump {
    /// The requested store prefix as a folder, if one was given.
    pub fn store_prefix(&self) -> Option<String> {
        self.prefix
            .as_ref()
            .map(|p| format!("{}/", p.trim_matches('/')))
    }
}

fn invalid(reason: impl Into<String>) -> Error {
    Error::InvalidEvent {
        reason: reason.into(),
        expected: EXPECTED.into(),
    }
}

impl DumpEvent {
    pub fn parse(event: &Value) -> Result<DumpEvent> {
        let Some(object) = event.as_object() else {
            return Err(invalid(format!("the payload is {}", kind_of(event))));
        };
        if let Some(detail_type) = object.get("detail-type") {
            if detail_type != "Scheduled Event"
                || object.get("source") != Some(&Value::from("aws.events"))
            {
                return Err(invalid(format!(
                    "detail-type {detail_type} from source {} is not a scheduled event",
                    object.get("source").unwrap_or(&Value::Null)
                )));
            }
            let rule = object
                .get("resources")
                .and_then(Value::as_array)
                .and_then(|r| r.first())
                .and_then(Value::as_str)
                .map(str::to_string);
            return Ok(DumpEvent::Scheduled { rule });
        }
        let manual: ManualDump =
            serde_json::from_value(event.clone()).map_err(|e| invalid(e.to_string()))?;
        if let Some(label) = &manual.label {
            check_label(label).map_err(invalid)?;
        }
        if let Some(prefix) = &manual.prefix {
            let trimmed = prefix.trim_matches('/');
            if trimmed.is_empty() || validate_key(trimmed).is_err() {
                return Err(invalid(format!(
                    "prefix {prefix:?} must be a relative path without empty, '.' or '..' parts"
                )));
            }
        }
        Ok(DumpEvent::Manual(manual))
    }
}

/// A manual run's label is kept in a manifest and shown in alerts: short and printable.
pub(crate) fn check_label(label: &str) -> std::result::Result<(), &'static str> {
    if label.len() > 200 || label.chars().any(char::is_control) {
        return Err("label must be at most 200 printable characters");
    }
    Ok(())
}

fn kind_of(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn accepts_the_schedule_and_manual_payloads() {
        let scheduled = json!({"detail-type": "Scheduled Event", "source": "aws.events", "resources": ["arn:rule"], "detail": {}});
        assert_eq!(
            DumpEvent::parse(&scheduled).unwrap(),
            DumpEvent::Scheduled {
                rule: Some("arn:rule".into())
            }
        );
        let manual = json!({"label": "pre-release", "prefix": "manual/"});
        assert_eq!(
            DumpEvent::parse(&manual).unwrap(),
            DumpEvent::Manual(ManualDump {
                label: Some("pre-release".into()),
                prefix: Some("manual/".into())
            })
        );
        assert_eq!(
            DumpEvent::parse(&json!({})).unwrap(),
            DumpEvent::Manual(ManualDump::default())
        );
    }

    #[test]
    fn refuses_anything_else_clearly() {
        for (event, fragment) in [
            (json!("dump please"), "the payload is a string"),
            (
                json!({"detail-type": "Object Created", "source": "aws.s3"}),
                "is not a scheduled event",
            ),
            (json!({"lable": "typo"}), "unknown field `lable`"),
            (json!({"prefix": "../etc"}), "prefix \"../etc\""),
            (json!({"label": 5}), "invalid type"),
        ] {
            let message = DumpEvent::parse(&event).unwrap_err().to_string();
            assert!(message.contains(fragment), "{message}");
            assert!(message.contains("expected an EventBridge"), "{message}");
        }
    }
}
