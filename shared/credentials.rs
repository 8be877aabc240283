//! Where database credentials come from: a Secrets Manager secret or an RDS IAM token in AWS,
//! the environment locally. Errors name the secret, never its value.

use std::future::Future;

use aws_config::SdkConfig;
use serde_json::Value;

use crate::config::{DatabaseSource, DatabaseUrl, Tls};
use crate::error::{Error, Result};

/// A [`DatabaseSource`] with the AWS access it needs to give a connection URL whenever one is
/// wanted: made once (a Lambda cold start, a command), asked at every connection.
pub enum Credentials {
    /// The secret is read at every [`Credentials::url`], so a rotation needs no redeploy.
    Secret {
        client: aws_sdk_secretsmanager::Client,
        secret_id: String,
        database: Option<String>,
    },
    /// With `iam` (DATABASE_IAM_AUTH) a fresh RDS IAM token replaces the password at every
    /// [`Credentials::url`].
    Url {
        url: DatabaseUrl,
        iam: Option<Box<SdkConfig>>,
    },
}

impl Credentials {
    /// `sdk_config` is awaited only when the source needs AWS: a secret, or IAM tokens.
    pub async fn new<F>(source: DatabaseSource, sdk_config: impl FnOnce() -> F) -> Self
    where
        F: Future<Output = SdkConfig>,
    {
        match source {
            DatabaseSource::Secret {
                secret_id,
                database,
            } => Credentials::Secret {
                client: aws_sdk_secretsmanager::Client::new(&sdk_config().await),
                secret_id,
                database,
            },
            DatabaseSource::Url { url, iam_auth } => Credentials::Url {
                url,
                iam: if iam_auth {
                    Some(Box::new(sdk_config().await))
                } else {
                    None
                },
            },
        }
    }

    /// The URL to connect with now, over `tls` ([`Tls::from_env`]): the secret read, or an IAM
    /// token made.
    pub async fn url(&self, tls: Option<Tls>) -> Result<DatabaseUrl> {
        match self {
            Credentials::Secret {
                client,
                secret_id,
                database,
            } => Ok(from_secret(client, secret_id, database.as_deref())
                .await?
                .with_tls(tls)),
            Credentials::Url { url, iam } => {
                let url = url.clone().with_tls(tls);
                match iam {
                    Some(config) => with_iam_token(&url, config).await,
                    None => Ok(url),
                }
            }
        }
    }
}

/// Reads a secret in the standard RDS shape (`username`, `password`, `host`, `port`, `dbname`)
/// into a URL; `database` overrides the secret's `dbname`.
pub async fn from_secret(
    client: &aws_sdk_secretsmanager::Client,
    secret_id: &str,
    database: Option<&str>,
) -> Result<DatabaseUrl> {
    from_secret_if_exists(client, secret_id, database)
        .await?
        .ok_or_else(|| Error::Secret {
            secret: secret_id.to_string(),
            reason: "cannot be read: it does not exist".into(),
        })
}

/// [`from_secret`], with None when the secret does not exist (a part of the stack that is
/// not deployed).
pub async fn from_secret_if_exists(
    client: &aws_sdk_secretsmanager::Client,
    secret_id: &str,
    database: Option<&str>,
) -> Result<Option<DatabaseUrl>> {
    let failed = |reason: String| Error::Secret {
        secret: secret_id.to_string(),
        reason,
    };
    let output = match client.get_secret_value().secret_id(secret_id).send().await {
        Ok(output) => output,
        Err(e)
            if e.as_service_error()
                .is_some_and(|s| s.is_resource_not_found_exception()) =>
        {
            return Ok(None)
        }
        Err(e) => {
            return Err(failed(format!(
                "cannot be read: {}",
                aws_sdk_secretsmanager::error::DisplayErrorContext(&e)
            )))
        }
    };
    let text = output
        .secret_string()
        .ok_or_else(|| failed("has no SecretString (binary secrets are not supported)".into()))?;
    parse_secret(secret_id, text, database).map(Some)
}

/// Parses the secret's JSON without ever quoting its content in an error.
pub fn parse_secret(secret_id: &str, text: &str, database: Option<&str>) -> Result<DatabaseUrl> {
    let failed = |reason: &str| Error::Secret {
        secret: secret_id.to_string(),
        reason: reason.to_string(),
    };
    let json: Value = serde_json::from_str(text)
        .map_err(|_| failed("is not a JSON object with username, password, host and port"))?;
    let field = |name: &str| -> Result<String> {
        match json.get(name) {
            Some(Value::String(s)) if !s.is_empty() => Ok(s.clone()),
            Some(_) => Err(failed(&format!("field {name:?} is not a non-empty string"))),
            None => Err(failed(&format!("has no {name:?} field"))),
        }
    };
    let port = match json.get("port") {
        None => 3306,
        Some(Value::Number(n)) => n
            .as_u64()
            .and_then(|p| u16::try_from(p).ok())
            .ok_or_else(|| failed("field \"port\" is not a port number"))?,
        Some(Value::String(s)) => s
            .parse()
            .map_err(|_| failed("field \"port\" is not a port number"))?,
        Some(_) => return Err(failed("field \"port\" is not a port number")),
    };
    let database = match database {
        Some(name) => Some(name.to_string()),
        None => json
            .get("dbname")
            .and_then(Value::as_str)
            .map(str::to_string),
    };
    Ok(DatabaseUrl::from_parts(
        field("username")?,
        Some(field("password")?),
        field("host")?,
        port,
        database,
    ))
}

/// Replaces the password with a fresh RDS IAM authentication token (valid 15 minutes), which
/// the server accepts only over TLS with the clear-text plugin.
pub async fn with_iam_token(url: &DatabaseUrl, config: &SdkConfig) -> Result<DatabaseUrl> {
    let generator = aws_sdk_rds::auth_token::AuthTokenGenerator::new(
        aws_sdk_rds::auth_token::Config::builder()
            .hostname(url.host.clone())
            .port(u64::from(url.port))
            .username(url.user.clone())
            .build()
            .map_err(|e| Error::Config {
                variable: "DATABASE_IAM_AUTH".into(),
                reason: format!("is on, but the token request cannot be built: {e}"),
            })?,
    );
    let token = generator
        .auth_token(config)
        .await
        .map_err(|e| Error::Config {
            variable: "DATABASE_IAM_AUTH".into(),
            reason: format!(
                "is on, but no RDS IAM token could be made for user {:?}: {e}",
                url.user
            ),
        })?;
    let mut url = url.with_password(Some(token.to_string()));
    url.clear_text_password = true;
    if url.tls.is_none() {
        url.tls = Some(Tls::default());
    }
    Ok(url)
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn no_aws() -> SdkConfig {
        panic!("a URL without IAM authentication needs no AWS configuration")
    }

    #[tokio::test]
    async fn a_url_without_iam_authentication_is_used_as_it_is_over_the_tls_given() {
        let url = DatabaseUrl::parse("mysql://backup:p@db.x/toc_sis").unwrap();
        let source = DatabaseSource::Url {
            url: url.clone(),
            iam_auth: false,
        };
        let tls = Some(Tls::default());
        let made = Credentials::new(source, no_aws)
            .await
            .url(tls.clone())
            .await;
        assert_eq!(made.unwrap(), url.with_tls(tls));
    }

    #[test]
    fn rds_secret_shape() {
        let url = parse_secret(
            "arn:secret",
            r#"{"username":"backup","password":"p@ss:/w","engine":"mysql","host":"db.x","port":3306,"dbname":"toc_sis"}"#,
            None,
        )
        .unwrap();
        assert_eq!(url.user, "backup");
        assert_eq!(url.password(), Some("p@ss:/w"));
        assert_eq!(url.database.as_deref(), Some("toc_sis"));
        let url = parse_secret(
            "s",
            r#"{"username":"u","password":"p","host":"h","port":"3307"}"#,
            Some("other"),
        )
        .unwrap();
        assert_eq!((url.port, url.database.as_deref()), (3307, Some("other")));
    }

    #[test]
    fn malformed_secrets_are_named_without_their_content() {
        for text in [
            "not json hunter2",
            r#"{"username":"u","host":"h"}"#,
            r#"{"username":"u","password":12345678,"host":"h"}"#,
            r#"{"username":"u","password":"hunter2","host":"h","port":"x"}"#,
        ] {
            let message = parse_secret("arn:aws:secretsmanager:eu-west-1:1:secret:db", text, None)
                .unwrap_err()
                .to_string();
            assert!(
                message.contains("arn:aws:secretsmanager:eu-west-1:1:secret:db"),
                "{message}"
            );
            assert!(
                !message.contains("hunter2") && !message.contains("12345678"),
                "{message}"
            );
        }
    }
}
