//! API keys: a tenant's credentials for services and scripts, as opposed to people.
//!
//! A key reads `ioto_` + 30 random base62 characters + a 6-character base62 CRC32 of the random
//! part (GitHub's token format): the prefix lets secret scanners recognise a leaked key, and
//! the checksum lets the server refuse a mistyped or truncated key before it looks anything up.
//! Only the SHA-256 of the whole key is stored; the key itself is shown once, when it is made.
//! A key carries a role (never above its creator's) and, for `CUSTOMER_USER`, a sub-customer.

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::identifiers::Name;
use crate::{Actor, ApiKeyId, CustomerId, Error, Result, Role, TenantId, UserId};

/// What every key starts with.
pub const PREFIX: &str = "ioto_";
/// Random characters after the prefix (base62: about 178 bits).
const RANDOM_CHARS: usize = 30;
/// Checksum characters at the end.
const CHECKSUM_CHARS: usize = 6;
/// A key's whole length.
pub const TOKEN_LEN: usize = PREFIX.len() + RANDOM_CHARS + CHECKSUM_CHARS;

/// Keys a tenant may hold that are not revoked or expired.
pub const MAX_LIVE_KEYS_PER_TENANT: u64 = 100;
/// The longest a key may be made to last; a key may also never expire.
pub const MAX_EXPIRY_DAYS: i64 = 1096;
/// The longest a rolled key keeps working beside its replacement.
pub const MAX_OVERLAP_HOURS: i64 = 168;

/// Letters and digits: what keys, refresh tokens and challenges are made of.
pub(crate) const BASE62: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// `n` characters drawn from `alphabet` by the thread's cryptographic generator.
pub(crate) fn random_chars(alphabet: &[u8], n: usize) -> String {
    use rand::Rng;
    let mut rng = rand::thread_rng();
    (0..n)
        .map(|_| char::from(alphabet[rng.gen_range(0..alphabet.len())]))
        .collect()
}

/// Whether `token` is `prefix` and then exactly `n` ASCII letters and digits (checked on bytes:
/// a multi-byte character is refused, never sliced).
pub(crate) fn is_prefixed_alphanumeric(token: &str, prefix: &str, n: usize) -> bool {
    token.len() == prefix.len() + n
        && token.starts_with(prefix)
        && token.as_bytes()[prefix.len()..]
            .iter()
            .all(u8::is_ascii_alphanumeric)
}

/// CRC-32 (IEEE), bit by bit: keys are short, and this runs once per key check.
fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in bytes {
        crc ^= u32::from(b);
        for _ in 0..8 {
            let mask = (crc & 1).wrapping_neg();
            crc = (crc >> 1) ^ (0xEDB8_8320 & mask);
        }
    }
    !crc
}

/// The checksum of the random part, as six base62 characters.
fn checksum(random: &str) -> String {
    let mut n = u64::from(crc32(random.as_bytes()));
    let mut out = [b'0'; CHECKSUM_CHARS];
    for slot in out.iter_mut().rev() {
        *slot = BASE62[(n % 62) as usize];
        n /= 62;
    }
    String::from_utf8(out.to_vec()).unwrap_or_default()
}

/// A key whose form and checksum were checked: safe to hash and look up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckedToken(String);

impl CheckedToken {
    /// A new random key.
    pub fn generate() -> Self {
        let random = random_chars(BASE62, RANDOM_CHARS);
        let sum = checksum(&random);
        Self(format!("{PREFIX}{random}{sum}"))
    }

    /// Checks a presented key's form and checksum; nothing is looked up for a key that fails.
    pub fn check(token: &str) -> Result<Self> {
        let malformed = |why: &str| {
            Error::Unauthenticated(format!(
                "the API key is malformed: {why} (a key is '{PREFIX}' and {} letters and digits)",
                RANDOM_CHARS + CHECKSUM_CHARS
            ))
        };
        let Some(rest) = token.strip_prefix(PREFIX) else {
            return Err(malformed("it does not start with 'ioto_'"));
        };
        if token.len() != TOKEN_LEN {
            return Err(malformed(&format!("it has {} characters", token.chars().count())));
        }
        if !rest.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return Err(malformed("it holds characters other than letters and digits"));
        }
        let (random, sum) = rest.split_at(RANDOM_CHARS);
        if checksum(random) != sum {
            return Err(Error::Unauthenticated(
                "the API key's checksum does not match: a character was changed or lost in copying".into(),
            ));
        }
        Ok(Self(token.to_owned()))
    }

    pub fn expose(&self) -> &str {
        &self.0
    }

    /// What is stored and looked up: the SHA-256 of the key, in hex.
    pub fn hash(&self) -> String {
        hash_token(&self.0)
    }

    /// The part shown in lists, enough to tell keys apart: `ioto_AbCd…wXyZ`.
    pub fn hint(&self) -> String {
        format!("{}…{}", &self.0[..PREFIX.len() + 4], &self.0[self.0.len() - 4..])
    }
}

/// SHA-256 of a key, in hex.
pub fn hash_token(token: &str) -> String {
    Sha256::digest(token.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Whether a bearer token is meant as an API key (rather than a signed token).
pub fn is_api_key(token: &str) -> bool {
    token.starts_with(PREFIX)
}

/// Where a key stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ApiKeyState {
    /// Works.
    Active,
    /// Rolled: works beside its replacement until its expiry, then stops.
    Rolling,
    /// Past its expiry.
    Expired,
    /// Revoked: refused from then on.
    Revoked,
}

/// A stored key (never the key itself).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiKey {
    pub id: ApiKeyId,
    pub tenant_id: TenantId,
    /// Set exactly when `role` is `CUSTOMER_USER`.
    pub customer_id: Option<CustomerId>,
    pub name: Name,
    pub role: Role,
    /// `ioto_AbCd…wXyZ`: enough to recognise the key.
    pub hint: String,
    /// The user who made it (`None` when made by the platform's tooling or a user since deleted).
    pub created_by: Option<UserId>,
    pub created_at: DateTime<Utc>,
    pub expires_at: Option<DateTime<Utc>>,
    pub last_used_at: Option<DateTime<Utc>>,
    pub last_used_address: Option<String>,
    pub revoked_at: Option<DateTime<Utc>>,
    /// The key this one replaced when it was rolled.
    pub rolled_from: Option<ApiKeyId>,
    /// The key that replaced this one.
    pub replaced_by: Option<ApiKeyId>,
}

impl ApiKey {
    pub fn state(&self, now: DateTime<Utc>) -> ApiKeyState {
        if self.revoked_at.is_some() {
            ApiKeyState::Revoked
        } else if self.expires_at.is_some_and(|e| e <= now) {
            ApiKeyState::Expired
        } else if self.replaced_by.is_some() {
            ApiKeyState::Rolling
        } else {
            ApiKeyState::Active
        }
    }

    /// The caller a request with this key acts as, if the key still works at `now`.
    pub fn actor(&self, now: DateTime<Utc>) -> Result<Actor> {
        match self.state(now) {
            ApiKeyState::Revoked => Err(Error::Unauthenticated("this API key has been revoked".into())),
            ApiKeyState::Expired => Err(Error::Unauthenticated("this API key has expired".into())),
            ApiKeyState::Active | ApiKeyState::Rolling => Ok(Actor {
                user_id: None,
                subject: subject(self.id),
                tenant_id: self.tenant_id,
                role: self.role,
                customer_id: self.customer_id,
                issued_at: None,
                api_key: Some(self.id),
                session_id: None,
            }),
        }
    }
}

/// The subject a key acts as (in the audit trail and rate limits): `key:<id>`.
pub fn subject(id: ApiKeyId) -> String {
    format!("key:{id}")
}

/// A key to store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewApiKey {
    pub id: ApiKeyId,
    pub tenant_id: TenantId,
    pub customer_id: Option<CustomerId>,
    pub name: Name,
    pub role: Role,
    pub token_hash: String,
    pub hint: String,
    pub created_by: Option<UserId>,
    pub created_at: DateTime<Utc>,
    pub expires_at: Option<DateTime<Utc>>,
    pub rolled_from: Option<ApiKeyId>,
}

/// A key's expiry from `days` ahead of `now` (none: never), checked against the bounds.
pub fn expiry(now: DateTime<Utc>, days: Option<i64>, field: &str) -> Result<Option<DateTime<Utc>>> {
    match days {
        None => Ok(None),
        Some(d) if (1..=MAX_EXPIRY_DAYS).contains(&d) => Ok(Some(now + Duration::days(d))),
        Some(d) => Err(Error::invalid(
            field,
            format!("{d} days is not allowed: a key lasts 1 to {MAX_EXPIRY_DAYS} days, or leave it out for a key that does not expire"),
        )),
    }
}

/// How long a rolled key keeps working beside its replacement, checked against the bound.
pub fn overlap(hours: i64, field: &str) -> Result<Duration> {
    if (0..=MAX_OVERLAP_HOURS).contains(&hours) {
        Ok(Duration::hours(hours))
    } else {
        Err(Error::invalid(
            field,
            format!(
                "{hours} hours is not allowed: the old key may keep working 0 to {MAX_OVERLAP_HOURS} hours"
            ),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_keys_check_and_differ() {
        let a = CheckedToken::generate();
        let b = CheckedToken::generate();
        assert_ne!(a, b);
        assert_eq!(a.expose().len(), TOKEN_LEN);
        assert_eq!(CheckedToken::check(a.expose()).unwrap(), a);
        assert!(a.hint().starts_with("ioto_") && a.hint().contains('…'));
        assert_eq!(a.hash().len(), 64);
        assert_ne!(a.hash(), b.hash());
    }

    #[test]
    fn a_changed_or_cut_key_is_refused_before_any_lookup() {
        let key = CheckedToken::generate();
        let text = key.expose();
        // Every single-character change of the random part breaks the checksum.
        for i in PREFIX.len()..PREFIX.len() + RANDOM_CHARS {
            let mut bytes = text.as_bytes().to_vec();
            bytes[i] = if bytes[i] == b'a' { b'b' } else { b'a' };
            let changed = String::from_utf8(bytes).unwrap();
            let err = CheckedToken::check(&changed).unwrap_err().to_string();
            assert!(err.contains("checksum"), "{err}");
        }
        let err = CheckedToken::check(&text[..text.len() - 1])
            .unwrap_err()
            .to_string();
        assert!(err.contains("40 characters"), "{err}");
        let err = CheckedToken::check("ghp_abc").unwrap_err().to_string();
        assert!(err.contains("does not start with 'ioto_'"), "{err}");
        let mut odd = text.to_owned();
        odd.replace_range(10..11, "-");
        let err = CheckedToken::check(&odd).unwrap_err().to_string();
        assert!(err.contains("holds characters other than"), "{err}");
        // Multi-byte characters of the right byte length are refused, not sliced.
        let wide = format!("ioto_{}", "é".repeat(18));
        assert_eq!(wide.len(), TOKEN_LEN);
        assert!(CheckedToken::check(&wide).is_err());
    }

    #[test]
    fn crc32_matches_the_standard() {
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
    }

    #[test]
    fn state_and_actor() {
        let now = Utc::now();
        let mut key = ApiKey {
            id: ApiKeyId::new(),
            tenant_id: TenantId::new(),
            customer_id: None,
            name: Name::parse("billing export", "name").unwrap(),
            role: Role::Viewer,
            hint: "ioto_abcd…wxyz".into(),
            created_by: None,
            created_at: now,
            expires_at: Some(now + Duration::days(1)),
            last_used_at: None,
            last_used_address: None,
            revoked_at: None,
            rolled_from: None,
            replaced_by: None,
        };
        assert_eq!(key.state(now), ApiKeyState::Active);
        let actor = key.actor(now).unwrap();
        assert_eq!(actor.role, Role::Viewer);
        assert_eq!(actor.api_key, Some(key.id));
        assert_eq!(actor.user_id, None);
        key.replaced_by = Some(ApiKeyId::new());
        assert_eq!(key.state(now), ApiKeyState::Rolling);
        assert!(key.actor(now).is_ok(), "a rolled key works until it expires");
        assert_eq!(key.state(now + Duration::days(2)), ApiKeyState::Expired);
        assert!(key.actor(now + Duration::days(2)).is_err());
        key.revoked_at = Some(now);
        assert_eq!(key.state(now), ApiKeyState::Revoked);
        assert!(key.actor(now).unwrap_err().to_string().contains("revoked"));
    }

    #[test]
    fn bounds_name_the_field_and_what_is_allowed() {
        let now = Utc::now();
        assert_eq!(expiry(now, None, "expiresInDays").unwrap(), None);
        assert!(expiry(now, Some(90), "expiresInDays").unwrap().is_some());
        let err = expiry(now, Some(0), "expiresInDays").unwrap_err().to_string();
        assert!(
            err.contains("expiresInDays") && err.contains("1 to 1096"),
            "{err}"
        );
        assert!(expiry(now, Some(1097), "x").is_err());
        assert!(overlap(24, "overlapHours").is_ok());
        let err = overlap(-1, "overlapHours").unwrap_err().to_string();
        assert!(err.contains("overlapHours") && err.contains("0 to 168"), "{err}");
        assert!(overlap(169, "overlapHours").is_err());
    }
}
