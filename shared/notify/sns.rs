//! Notifications through an SNS topic, whose email and SMS subscriptions reach a person.

use async_trait::async_trait;
use aws_sdk_sns::error::DisplayErrorContext;
use aws_sdk_sns::types::MessageAttributeValue;
use aws_sdk_sns::Client;

use super::{Notification, Notifier};
use crate::error::{Error, Result};

pub struct SnsNotifier {
    client: Client,
    topic_arn: String,
}

impl SnsNotifier {
    pub fn new(client: Client, topic_arn: impl Into<String>) -> Self {
        SnsNotifier {
            client,
            topic_arn: topic_arn.into(),
        }
    }
}

#[async_trait]
impl Notifier for SnsNotifier {
    async fn notify(&self, n: &Notification) -> Result<()> {
        let severity = MessageAttributeValue::builder()
            .data_type("String")
            .string_value(n.severity.to_string())
            .build()
            .map_err(|e| Error::Notify(e.to_string()))?;
        self.client
            .publish()
            .topic_arn(&self.topic_arn)
            .subject(&n.subject)
            .message(format!("{}\n\n{}", n.subject, n.body))
            .message_attributes("severity", severity)
            .send()
            .await
            .map_err(|e| {
                Error::Notify(format!(
                    "SNS publish to {}: {}",
                    self.topic_arn,
                    DisplayErrorContext(&e)
                ))
            })?;
        tracing::info!(topic = %self.topic_arn, subject = %n.subject, "notification sent");
        Ok(())
    }
}
