//! Configuration variables by name: a Lambda function's environment, a test's map, or the
//! command line's flags standing for the variables they are read from.

use crate::error::{Error, Result};

/// Reads configuration variables; tests hand in a map instead of the process environment.
pub trait Env {
    fn get(&self, name: &str) -> Option<String>;
}

impl dyn Env + '_ {
    pub fn require(&self, name: &str, what: &str) -> Result<String> {
        self.get(name).ok_or_else(|| Error::Config {
            variable: name.to_string(),
            reason: format!("is not set; it must name {what}"),
        })
    }

    /// A whole number of minutes, hours or days (`unit`, e.g. `TimeDelta::try_minutes`) as a
    /// duration: not negative, and small enough for any clock arithmetic (at most 100 years).
    pub fn duration(
        &self,
        name: &str,
        default: i64,
        unit: fn(i64) -> Option<chrono::TimeDelta>,
        expected: &str,
    ) -> Result<chrono::TimeDelta> {
        let value: i64 = self.parse(name, default, expected)?;
        unit(value)
            .filter(|d| *d >= chrono::TimeDelta::zero() && *d <= chrono::TimeDelta::days(36_600))
            .ok_or_else(|| Error::Config {
                variable: name.to_string(),
                reason: format!("is {value}, which is not {expected} from 0 to 100 years"),
            })
    }

    pub fn parse<T: std::str::FromStr>(&self, name: &str, default: T, expected: &str) -> Result<T> {
        match self.get(name) {
            None => Ok(default),
            Some(value) => value.trim().parse().map_err(|_| Error::Config {
                variable: name.to_string(),
                reason: format!("is {value:?}, which is not {expected}"),
            }),
        }
    }
}

/// The process environment; empty values count as unset.
pub struct ProcessEnv;

impl Env for ProcessEnv {
    fn get(&self, name: &str) -> Option<String> {
        std::env::var(name).ok().filter(|v| !v.trim().is_empty())
    }
}

impl Env for std::collections::HashMap<String, String> {
    fn get(&self, name: &str) -> Option<String> {
        self.get(name).cloned().filter(|v| !v.trim().is_empty())
    }
}
