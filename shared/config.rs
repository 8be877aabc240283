//! Connection settings parsed from what a person types, with secrets kept out of every printout.

use std::fmt;

use percent_encoding::percent_decode_str;

use crate::env::Env;
use crate::error::{Error, Result};

const DEFAULT_PORT: u16 = 3306;

/// Where a job's database connection comes from: the one decision the command line (its flags
/// standing for the variables they are read from) and the Lambda functions (their environment)
/// both make. [`crate::credentials::Credentials`] adds the AWS access a source needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DatabaseSource {
    /// DATABASE_SECRET_ARN: a Secrets Manager secret in the RDS shape; DATABASE_NAME overrides
    /// its `dbname`.
    Secret {
        secret_id: String,
        database: Option<String>,
    },
    /// DATABASE_URL, with DATABASE_NAME for its database and DATABASE_PASSWORD when it has no
    /// password; `iam_auth` (DATABASE_IAM_AUTH=true): a fresh RDS IAM token for a password.
    Url { url: DatabaseUrl, iam_auth: bool },
}

impl DatabaseSource {
    /// Decides from DATABASE_SECRET_ARN, DATABASE_URL, DATABASE_NAME, DATABASE_PASSWORD and
    /// DATABASE_IAM_AUTH; None when neither the secret nor the URL is set (each caller says what
    /// that means for it). A URL that does not parse is its own error
    /// ([`Error::InvalidDatabaseUrl`]).
    pub fn from_env(env: &dyn Env) -> Result<Option<Self>> {
        match (env.get("DATABASE_SECRET_ARN"), env.get("DATABASE_URL")) {
            (None, None) => Ok(None),
            (Some(secret_id), None) => Ok(Some(DatabaseSource::Secret {
                secret_id,
                database: env.get("DATABASE_NAME"),
            })),
            (None, Some(text)) => {
                let url = DatabaseUrl::parse(&text)?;
                let url = match env.get("DATABASE_NAME") {
                    Some(name) => url.with_database(Some(&name)),
                    None => url,
                };
                let url = match env.get("DATABASE_PASSWORD") {
                    Some(password) if url.password().is_none() => url.with_password(Some(password)),
                    _ => url,
                };
                let iam_auth = env.parse("DATABASE_IAM_AUTH", false, "true or false")?;
                Ok(Some(DatabaseSource::Url { url, iam_auth }))
            }
            (Some(_), Some(_)) => Err(Error::Config {
                variable: "DATABASE_SECRET_ARN".into(),
                reason: "and DATABASE_URL are both set; set exactly one".into(),
            }),
        }
    }
}

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

    /// [`Tls::from_settings`] from DATABASE_TLS and DATABASE_TLS_CA_FILE.
    pub fn from_env(env: &dyn Env) -> Result<Option<Tls>> {
        Tls::from_settings(
            env.get("DATABASE_TLS").as_deref(),
            env.get("DATABASE_TLS_CA_FILE")
                .map(std::path::PathBuf::from),
        )
    }
}

impl DatabaseUrl {
    pub fn parse(input: &str) -> Result<Self> {
        let invalid = |reason: &str| Error::InvalidDatabaseUrl {
            url: format!("{:?}", redact_url(input)),
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

/// A database URL as typed, fit to quote in an error whether or not it parsed: the password,
/// and anything that might be one, replaced by `***`. Every error about a URL shows it through
/// this (a parsed one through [`DatabaseUrl`]'s `Display`). It errs on the side of hiding:
///
/// - `SCHEME://USER:***@HOST/DB`: everything from the first `:` after the user up to the
///   *last* `@` (a password may hold `@`, `/`, `?`, `#` or `:`); a second `@` where the `:`
///   should be (`USER@***@HOST`) likewise.
/// - No `@` at all (`mysql://user:secret-host/db`, the `@` mistyped): everything after the
///   first `:` up to the next `/` (`mysql://user:***/db`), so a port is hidden too.
/// - A port that is not digits (`@user:secret-host`), and any query string or fragment (which
///   may carry `password=`).
/// - The scheme may be missing, misspelt or short of its colon or slashes (`mysql//`,
///   `mysql:/`, `mysql:`, none): the user part starts after whatever stands for it.
pub fn redact_url(input: &str) -> String {
    let start = authority_start(input);
    let (scheme, rest) = input.split_at(start);
    let mut out = String::from(scheme);
    match rest.rfind('@') {
        Some(at) => {
            let credentials = &rest[..at];
            match credentials.find([':', '@']) {
                Some(end) => {
                    out.push_str(&credentials[..=end]);
                    out.push_str("***");
                }
                None => out.push_str(credentials),
            }
            out.push('@');
            out.push_str(&redact_host(&rest[at + 1..], false));
        }
        None => out.push_str(&redact_host(rest, true)),
    }
    out
}

/// Where the `USER[:PASSWORD]` part of `input` starts: after `SCHEME://` (any number of
/// slashes), `mysql:` or `mariadb:` with or without slashes, or `mysql//` (a colon missing);
/// else at the start. An unknown word before a single `:` is taken for a user, not a scheme
/// (`user:/secret@host` is a user and a password).
fn authority_start(input: &str) -> usize {
    if let Some(colon) = input.find(':') {
        let scheme = &input[..colon];
        let is_scheme = scheme.starts_with(|c: char| c.is_ascii_alphabetic())
            && scheme
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
        let after = &input[colon + 1..];
        let slashes = after.len() - after.trim_start_matches('/').len();
        let known = scheme.eq_ignore_ascii_case("mysql") || scheme.eq_ignore_ascii_case("mariadb");
        if is_scheme && (known || slashes >= 2) {
            return colon + 1 + slashes;
        }
    }
    match input.find("//") {
        Some(i) if !input[..i].contains([':', '@']) => i + 2,
        _ => 0,
    }
}

/// `HOST[:PORT][/DATABASE][?QUERY]` of [`redact_url`]; `no_at` when the URL has no `@`, so
/// a `user:password` may stand where the host should.
fn redact_host(text: &str, no_at: bool) -> String {
    let hide_query = |tail: &str| match tail.find(['?', '#']) {
        Some(i) => format!("{}***", &tail[..=i]),
        None => tail.to_string(),
    };
    let authority_end = text.find('/').unwrap_or(text.len());
    let query = text.find(['?', '#']).unwrap_or(text.len());
    // An IPv6 address's own colons are inside its brackets.
    let from = if text.starts_with('[') {
        text[..authority_end].find(']').map_or(0, |i| i + 1)
    } else {
        0
    };
    match text[from..authority_end].find(':').map(|i| from + i) {
        Some(colon) if colon < query => {
            let port = &text[colon + 1..authority_end];
            if no_at || !port.bytes().all(|b| b.is_ascii_digit()) {
                format!(
                    "{}***{}",
                    &text[..=colon],
                    hide_query(&text[authority_end..])
                )
            } else {
                format!(
                    "{}{}",
                    &text[..authority_end],
                    hide_query(&text[authority_end..])
                )
            }
        }
        _ => hide_query(text),
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

    fn env(pairs: &[(&str, &str)]) -> std::collections::HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn a_database_url_takes_the_name_and_the_password_it_lacks() {
        let settings = env(&[
            ("DATABASE_URL", "mysql://backup@db.x:3307/toc_sis"),
            ("DATABASE_NAME", "other"),
            ("DATABASE_PASSWORD", "p"),
            ("DATABASE_IAM_AUTH", "true"),
        ]);
        let Some(DatabaseSource::Url { url, iam_auth }) =
            DatabaseSource::from_env(&settings).unwrap()
        else {
            panic!("not a URL source");
        };
        assert_eq!(
            (url.password(), url.database.as_deref(), url.port, iam_auth),
            (Some("p"), Some("other"), 3307, true)
        );
        let settings = env(&[
            ("DATABASE_URL", "mysql://backup:own@db.x/toc_sis"),
            ("DATABASE_PASSWORD", "p"),
        ]);
        let Some(DatabaseSource::Url { url, iam_auth }) =
            DatabaseSource::from_env(&settings).unwrap()
        else {
            panic!("not a URL source");
        };
        assert_eq!((url.password(), iam_auth), (Some("own"), false));
    }

    #[test]
    fn a_database_secret_takes_the_name() {
        let settings = env(&[("DATABASE_SECRET_ARN", "arn:s"), ("DATABASE_NAME", "other")]);
        assert_eq!(
            DatabaseSource::from_env(&settings).unwrap(),
            Some(DatabaseSource::Secret {
                secret_id: "arn:s".into(),
                database: Some("other".into())
            })
        );
    }

    #[test]
    fn no_source_two_sources_and_a_bad_url_are_told_apart() {
        assert_eq!(DatabaseSource::from_env(&env(&[])).unwrap(), None);
        let both = env(&[
            ("DATABASE_URL", "mysql://u@h/d"),
            ("DATABASE_SECRET_ARN", "s"),
        ]);
        let error = DatabaseSource::from_env(&both).unwrap_err();
        assert!(error.to_string().contains("both set"), "{error}");
        let bad = env(&[("DATABASE_URL", "http://u:hunter2@h/d")]);
        let error = DatabaseSource::from_env(&bad).unwrap_err();
        assert!(matches!(error, Error::InvalidDatabaseUrl { .. }), "{error}");
        assert!(!error.to_string().contains("hunter2"), "{error}");
        let iam = env(&[
            ("DATABASE_URL", "mysql://u@h/d"),
            ("DATABASE_IAM_AUTH", "yes"),
        ]);
        let error = DatabaseSource::from_env(&iam).unwrap_err();
        assert!(error.to_string().contains("DATABASE_IAM_AUTH"), "{error}");
    }

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

    #[test]
    fn redaction_hides_whatever_may_be_a_password() {
        for (typed, shown) in [
            ("mysql://u:pw@h:3306/d", "mysql://u:***@h:3306/d"),
            ("mysql://u@h/d", "mysql://u@h/d"),
            ("mysql://u:p@ss:w/rd@h/d", "mysql://u:***@h/d"),
            ("mysql://u:pw-host/d", "mysql://u:***/d"),
            ("mysql://u:pw", "mysql://u:***"),
            ("mysql://h:3306/d", "mysql://h:***/d"),
            ("mysql://[::1]:3306/d", "mysql://[::1]:***/d"),
            ("mysql://u:pw@[::1]:3306/d", "mysql://u:***@[::1]:3306/d"),
            ("mysql://@u:pw-host/d", "mysql://@u:***/d"),
            ("mysql://u:pw@h:port/d", "mysql://u:***@h:***/d"),
            ("mysql://u@pw@h/d", "mysql://u@***@h/d"),
            ("mysql://u@h/d?password=pw", "mysql://u@h/d?***"),
            ("mysql://u@h?password=pw", "mysql://u@h?***"),
            ("mysql://u@h/d#pw", "mysql://u@h/d#***"),
            ("mysql:/u:pw@h/d", "mysql:/u:***@h/d"),
            ("mysql:u:pw@h/d", "mysql:u:***@h/d"),
            ("MariaDB:u:pw-host/d", "MariaDB:u:***/d"),
            ("mysql//u:pw@h/d", "mysql//u:***@h/d"),
            ("u:pw@h", "u:***@h"),
            ("u:/pw@h", "u:***@h"),
            ("u:pa//ss@h", "u:***@h"),
            ("u:pw", "u:***"),
            ("", ""),
            ("é:ü@ñ", "é:***@ñ"),
        ] {
            assert_eq!(redact_url(typed), shown, "{typed}");
        }
    }

    #[test]
    fn no_malformed_url_shows_its_password() {
        // Each of these fails to parse; tests/it/bad_input.rs feeds the same kinds to the CLI.
        for bad in [
            "mysql://user:S3cr3t-PW-host/db",
            "mysql://user:S3cr3t-PW",
            "mysql://user:S3cr3t-PW/db",
            "mysql://@user:S3cr3t-PW-host/db",
            "mysql://user:pa:S3cr3t-PW@",
            "mysql://user:S3cr3t-PW@host:99999/db",
            "mysql://user:S3cr3t-PW@host:port/db",
            "mysql://user:S3cr3t-PW%ff@host/db",
            "mysql://user:S3cr3t-PW@ho st/db",
            "mysql://user:S3cr3t-PW@/db",
            "mysql:/user:S3cr3t-PW@h/db",
            "mysql:/user:S3cr3t-PW-host/db",
            "mysql//user:S3cr3t-PW@h/db",
            "user:/S3cr3t-PW@h",
            "mysql://user@S3cr3t-PW@/db",
            "mysql://user@h/db?password=S3cr3t-PW",
            "mysql://user:S3cr3t-PW@[::1/db",
        ] {
            let message = DatabaseUrl::parse(bad).unwrap_err().to_string();
            assert!(message.starts_with("invalid database URL \""), "{message}");
            assert!(!message.contains("S3cr3t-PW"), "{message}");
        }
    }
}
