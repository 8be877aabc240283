//! Paths inside a file snapshot: the exact bytes of a name, which on Linux need not be UTF-8.
//!
//! In the manifest a path is its text when it is valid UTF-8, and `hex:` + its bytes in hex
//! otherwise (or when the text itself starts with `hex:`), so every name round-trips exactly and
//! ordinary names stay readable.

use std::ffi::OsStr;
use std::fmt;
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

use serde::{Deserialize, Deserializer, Serialize, Serializer};

const HEX_MARKER: &str = "hex:";

/// A relative, `/`-separated path as raw bytes.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct RawPath(Vec<u8>);

impl RawPath {
    pub fn from_bytes(bytes: impl Into<Vec<u8>>) -> Self {
        RawPath(bytes.into())
    }

    /// The path of `path` below `root`, or None when it is not below it.
    pub fn relative(root: &Path, path: &Path) -> Option<Self> {
        let relative = path.strip_prefix(root).ok()?;
        let parts: Vec<&[u8]> = relative
            .components()
            .map(|c| c.as_os_str().as_bytes())
            .collect();
        Some(RawPath(parts.join(&b'/')))
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    pub fn as_path(&self) -> &Path {
        Path::new(OsStr::from_bytes(&self.0))
    }

    /// Whether this path is `other` or lies inside it.
    pub fn is_within(&self, other: &RawPath) -> bool {
        self.0 == other.0
            || (self.0.starts_with(&other.0) && self.0.get(other.0.len()) == Some(&b'/'))
    }

    /// Where this path lands below `root`, refusing anything that could escape it (a tampered
    /// or hand-edited manifest must not write outside the restore folder).
    pub fn under(&self, root: &Path) -> Option<PathBuf> {
        let relative = self.as_path();
        let safe = !self.0.is_empty()
            && relative
                .components()
                .all(|c| matches!(c, Component::Normal(_)));
        safe.then(|| root.join(relative))
    }
}

impl fmt::Display for RawPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", String::from_utf8_lossy(&self.0))
    }
}

impl fmt::Debug for RawPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", String::from_utf8_lossy(&self.0))
    }
}

impl From<&str> for RawPath {
    fn from(text: &str) -> Self {
        RawPath(text.trim_matches('/').as_bytes().to_vec())
    }
}

impl Serialize for RawPath {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match std::str::from_utf8(&self.0) {
            Ok(text) if !text.starts_with(HEX_MARKER) => serializer.serialize_str(text),
            _ => serializer.serialize_str(&format!("{HEX_MARKER}{}", hex::encode(&self.0))),
        }
    }
}

impl<'de> Deserialize<'de> for RawPath {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        match text.strip_prefix(HEX_MARKER) {
            Some(encoded) => hex::decode(encoded)
                .map(RawPath)
                .map_err(|e| serde::de::Error::custom(format!("bad hex path {text:?}: {e}"))),
            None => Ok(RawPath(text.into_bytes())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_exactly() {
        for bytes in [
            b"plain/name.pdf".to_vec(),
            b"with space/and \"quotes\"".to_vec(),
            b"hex:looks-encoded".to_vec(),
            vec![b'b', b'a', b'd', 0xff, 0xfe, b'/', b'x'],
        ] {
            let path = RawPath::from_bytes(bytes.clone());
            let json = serde_json::to_string(&path).unwrap();
            let back: RawPath = serde_json::from_str(&json).unwrap();
            assert_eq!(back.as_bytes(), bytes.as_slice(), "{json}");
        }
        assert_eq!(
            serde_json::to_string(&RawPath::from("a b/c")).unwrap(),
            "\"a b/c\""
        );
    }

    #[test]
    fn refuses_paths_that_escape_the_root() {
        let root = Path::new("/restore");
        assert_eq!(
            RawPath::from("a/b").under(root),
            Some(PathBuf::from("/restore/a/b"))
        );
        for bad in ["../etc/passwd", "a/../../x", "/etc/passwd", ""] {
            assert_eq!(RawPath::from_bytes(bad).under(root), None, "{bad}");
        }
    }

    #[test]
    fn within_means_the_path_or_below_it() {
        let docs = RawPath::from("docs");
        assert!(RawPath::from("docs").is_within(&docs));
        assert!(RawPath::from("docs/a.pdf").is_within(&docs));
        assert!(!RawPath::from("docs2/a.pdf").is_within(&docs));
        assert!(!RawPath::from("doc").is_within(&docs));
    }
}
