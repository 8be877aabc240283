//! Connection settings parsed from what a person types, with secrets kept out of every printout.

use std::fmt;

use percent_encoding::percent_decode_str;

use crate::error::{Error, Result};

const DEFAULT_PORT: u16 = 3306;

/// A parsed `mysql://USER[:PASSWORD]@HOST[:PORT]/[DATABASE]` URL.
///
/// `Display` and `Debug` never show the password, so the value can be logged and put into errors
/// freely.
#[derive(Clone, PartialEq, Eq)]
pub struct DatabaseUrl {
    pub user: String,
    password: Option<String>,
    pub host: String,
    pub port: u16,
    pub database: Option<String>,
    pub tls: Option<Tls>,
    /// Send the password in clear text (over TLS): what RDS IAM authentication tokens need.
    pub clear_text_password: bool,
}

/// TLS to the database server; `ca_file` adds a CA bundle (e.g. Amazon RDS's) to the roots.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Tls {
    pub ca_file: Option<std::path::PathBuf>,
}

impl Tls {
    /// The one place TLS settings become connection options (CLI flags and Lambda environment
    /// alike): `mode` is DATABASE_TLS's value (`on`/`off`; unset means on when a CA file is
    /// given), `ca_file` DATABASE_TLS_CA_FILE's. A bad value is named. With TLS on, a
    /// connection is TLS or fails: it never falls back to plain text.
    pub fn from_settings(
        mode: Option<&str>,
        ca_file: Option<std::path::PathBuf>,
    ) -> Result<Option<Tls>> {
        let ca_file = ca_file.filter(|path| !path.as_os_str().is_empty());
        let enabled = match mode.map(str::trim) {
            None | Some("") => ca_file.is_some(),
            Some("on" | "true" | "required") => true,
            Some("off" | "false") => false,
            Some(other) => {
                return Err(Error::Config {
                    variable: "DATABASE_TLS".into(),
                    reason: format!("is {other:?}, which is not on or off"),
                })
            }
        };
        if let Some(path) = &ca_file {
            if !path.is_file() {
                return Err(Error::Config {
                    variable: "DATABASE_TLS_CA_FILE".into(),
                    reason: format!("names {}, which is not a readable file", path.display()),
                });
            }
        }
        Ok(enabled.then_some(Tls { ca_file }))
    }
}

impl DatabaseUrl {
    pub fn parse(input: &str) -> Result<Self> {
        let invalid = |reason: &str| Error::InvalidDatabaseUrl {
            url: redact_unparsed(input),
            reason: reason.to_string(),
        };
        let url = url::Url::parse(input).map_err(|e| invalid(&e.to_string()))?;
        if url.scheme() != "mysql" && url.scheme() != "mariadb" {
            return Err(invalid(&format!(
                "scheme {:?} is not mysql:// or mariadb://",
                url.scheme()
            )));
        }
        let host = url
            .host_str()
            .filter(|h| !h.is_empty())
            .ok_or_else(|| invalid("no host"))?
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_string();
        let user = decode(url.username()).map_err(|_| invalid("user is not UTF-8"))?;
        if user.is_empty() {
            return Err(invalid("no user"));
        }
        let password = match url.password() {
            Some(p) => Some(decode(p).map_err(|_| invalid("password is not UTF-8"))?),
            None => None,
        };
        let path = url.path().trim_start_matches('/');
        if path.contains('/') {
            return Err(invalid("the path must be at most one database name"));
        }
        let database = if path.is_empty() {
            None
        } else {
            Some(decode(path).map_err(|_| invalid("database name is not UTF-8"))?)
        };
        if url.query().is_some() || url.fragment().is_some() {
            return Err(invalid("query strings and fragments are not supported"));
        }
        Ok(DatabaseUrl {
            user,
            password,
            host,
            port: url.port().unwrap_or(DEFAULT_PORT),
            database,
            tls: None,
            clear_text_password: false,
        })
    }

    /// Builds a URL from parts, e.g. from a Secrets Manager secret.
    pub fn from_parts(
        user: impl Into<String>,
        password: Option<String>,
        host: impl Into<String>,
        port: u16,
        database: Option<String>,
    ) -> Self {
        DatabaseUrl {
            user: user.into(),
            password,
            host: host.into(),
            port,
            database,
            tls: None,
            clear_text_password: false,
        }
    }

    /// The same address with another password (a secret's, or an IAM token).
    pub fn with_password(&self, password: Option<String>) -> Self {
        DatabaseUrl {
            password,
            ..self.clone()
        }
    }

    /// The same address with TLS settings from [`Tls::from_settings`].
    pub fn with_tls(mut self, tls: Option<Tls>) -> Self {
        self.tls = tls;
        self
    }

    pub fn password(&self) -> Option<&str> {
        self.password.as_deref()
    }

    /// `host:port`, for messages.
    pub fn address(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }

    /// The database named in the URL, or an error saying the command needs one.
    pub fn require_database(&self) -> Result<&str> {
        self.database
            .as_deref()
            .ok_or_else(|| Error::InvalidDatabaseUrl {
                url: self.to_string(),
                reason: "no database name after the host".into(),
            })
    }

    pub fn with_database(&self, database: Option<&str>) -> Self {
        DatabaseUrl {
            database: database.map(str::to_string),
            ..self.clone()
        }
    }
}

fn decode(part: &str) -> std::result::Result<String, std::str::Utf8Error> {
    percent_decode_str(part)
        .decode_utf8()
        .map(|s| s.into_owned())
}

/// Hides anything between `://user:` and `@` in a string that did not parse as a URL, so even a
/// malformed URL can be quoted in an error without leaking its password.
fn redact_unparsed(input: &str) -> String {
    let Some(at) = input.rfind('@') else {
        return format!("{input:?}");
    };
    let credentials_start = input.find("://").map_or(0, |i| i + 3).min(at);
    let credentials = &input[credentials_start..at];
    match credentials.find(':') {
        Some(colon) => format!(
            "\"{}:***{}\"",
            &input[..credentials_start + colon],
            &input[at..]
        ),
        None => format!("{input:?}"),
    }
}

impl fmt::Display for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let secret = if self.password.is_some() { ":***" } else { "" };
        write!(
            f,
            "mysql://{}{}@{}/{}",
            self.user,
            secret,
            self.address(),
            self.database.as_deref().unwrap_or("")
        )
    }
}

impl fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DatabaseUrl({self})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_full_url_and_decodes_parts() {
        let url = DatabaseUrl::parse("mysql://backup%40x:p%40ss@db.example:3307/toc_sis").unwrap();
        assert_eq!(url.user, "backup@x");
        assert_eq!(url.password(), Some("p@ss"));
        assert_eq!(url.host, "db.example");
        assert_eq!(url.port, 3307);
        assert_eq!(url.database.as_deref(), Some("toc_sis"));
    }

    #[test]
    fn default_port_and_no_database() {
        let url = DatabaseUrl::parse("mysql://root@localhost/").unwrap();
        assert_eq!(url.port, 3306);
        assert_eq!(url.database, None);
        assert!(url.require_database().is_err());
    }

    #[test]
    fn display_and_debug_hide_the_password() {
        let url = DatabaseUrl::parse("mysql://u:hunter2@h/d").unwrap();
        assert_eq!(url.to_string(), "mysql://u:***@h:3306/d");
        assert!(!format!("{url:?}").contains("hunter2"));
    }

    #[test]
    fn malformed_urls_are_named_without_their_password() {
        for bad in [
            "mysql//u:hunter2@h/d",
            "postgres://u:hunter2@h/d",
            "mysql://:hunter2@h/d",
            "mysql://u:hunter2@/d",
            "mysql://u:hunter2@h/a/b",
            "mysql://u:hunter2@h:99999/d",
            "mysql//u:hunter2@h/d",
            "u:hunter2@h",
        ] {
            let message = DatabaseUrl::parse(bad).unwrap_err().to_string();
            assert!(message.contains("invalid database URL"), "{message}");
            assert!(!message.contains("hunter2"), "{message}");
        }
    }
}
