//! Free-text key/value labels on SIMs and devices.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// Most labels one SIM or device may carry.
pub const MAX_LABELS: usize = 64;

/// Labels of one SIM or device, ordered by key.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Labels(BTreeMap<String, String>);

impl Labels {
    pub fn new() -> Self {
        Self::default()
    }

    /// Builds labels from pairs, checking each key and value.
    pub fn parse<K: AsRef<str>, V: AsRef<str>>(pairs: impl IntoIterator<Item = (K, V)>) -> Result<Self> {
        let mut out = Self::default();
        for (k, v) in pairs {
            out.set(k.as_ref(), v.as_ref())?;
        }
        Ok(out)
    }

    /// Sets one label, replacing the value of an existing key.
    pub fn set(&mut self, key: &str, value: &str) -> Result<()> {
        let key = parse_key(key)?;
        let value = parse_value(&key, value)?;
        if !self.0.contains_key(&key) && self.0.len() >= MAX_LABELS {
            return Err(Error::invalid(
                "labels",
                format!("at most {MAX_LABELS} labels per SIM or device"),
            ));
        }
        self.0.insert(key, value);
        Ok(())
    }

    pub fn remove(&mut self, key: &str) -> Option<String> {
        self.0.remove(key.trim())
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).map(String::as_str)
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn to_json(&self) -> serde_json::Value {
        serde_json::to_value(&self.0).unwrap_or_default()
    }
}

/// A label key: 1 to 63 characters of letters, digits, `_`, `-`, `.`, `/`, starting with a
/// letter or digit.
pub fn parse_key(key: &str) -> Result<String> {
    let key = key.trim();
    let ok = (1..=63).contains(&key.len())
        && key.chars().next().is_some_and(|c| c.is_ascii_alphanumeric())
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | '/'));
    if !ok {
        return Err(Error::invalid(
            "labels.key",
            format!("'{key}' must be 1 to 63 letters, digits, '_', '-', '.' or '/', starting with a letter or digit"),
        ));
    }
    Ok(key.to_owned())
}

/// A label value: up to 255 printable characters (may be empty).
pub fn parse_value(key: &str, value: &str) -> Result<String> {
    let value = value.trim();
    if value.chars().count() > 255 || value.chars().any(char::is_control) {
        return Err(Error::invalid(
            "labels.value",
            format!("value of '{key}' must be at most 255 printable characters"),
        ));
    }
    Ok(value.to_owned())
}

/// One entry of a tenant's label catalogue: a key offered in dropdowns, with suggested values.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LabelSuggestion {
    pub key: String,
    pub values: Vec<String>,
    pub description: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_and_values_are_checked() {
        let mut l = Labels::parse([("site", "Berlin"), ("fw/version", "1.2")]).unwrap();
        assert_eq!(l.get("site"), Some("Berlin"));
        l.set("site", "Hamburg").unwrap();
        assert_eq!(l.len(), 2);
        let err = Labels::parse([("-bad", "x")]).unwrap_err().to_string();
        assert!(err.contains("labels.key"), "{err}");
        assert!(Labels::parse([("k", "a\u{7}b")]).is_err());
        assert!(Labels::parse([("k", "x".repeat(256))]).is_err());
    }

    #[test]
    fn at_most_64() {
        let mut l = Labels::new();
        for i in 0..MAX_LABELS {
            l.set(&format!("k{i}"), "v").unwrap();
        }
        assert!(l.set("one-more", "v").is_err());
        l.set("k0", "replaced").unwrap();
    }
}
