//! The second factor: time-based one-time passwords (RFC 6238: HMAC-SHA1, 6 digits, 30-second
//! steps, one step of clock drift either way) with single-use recovery codes, and the short-lived
//! challenge a sign-in answers between the password and the code.
//!
//! A code is good once: the step it matched is kept, and a code of that step or an earlier one
//! is refused afterwards, so a code seen over someone's shoulder cannot be replayed within its
//! window. Secrets are kept sealed (`crate::fleet::secret::SecretCipher`, bound to their user);
//! recovery codes and challenges only as their SHA-256.

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use totp_rs::{Algorithm, TOTP};

use crate::api_key::{is_prefixed_alphanumeric, random_chars, BASE62};
use crate::{CustomerId, Error, Result, TenantId, UserId};

/// Digits of a code.
pub const DIGITS: usize = 6;
/// Seconds per step.
pub const STEP_SECONDS: u64 = 30;
/// Bytes of a secret (160 bits, RFC 4226's recommendation).
const SECRET_BYTES: usize = 20;
/// Recovery codes made at enrolment.
pub const RECOVERY_CODES: usize = 10;
/// How long a sign-in's challenge lasts.
pub const CHALLENGE_MINUTES: i64 = 5;
/// Wrong codes a challenge takes before it is spent.
pub const CHALLENGE_ATTEMPTS: i32 = 5;
/// What every challenge token starts with.
pub const CHALLENGE_PREFIX: &str = "iotc_";
const CHALLENGE_RANDOM: usize = 40;

/// Recovery codes: lower-case letters and digits without the look-alikes (0/o, 1/l/i).
const RECOVERY_ALPHABET: &[u8; 31] = b"23456789abcdefghjkmnpqrstuvwxyz";

/// A TOTP secret. Never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct TotpSecret(Vec<u8>);

impl std::fmt::Debug for TotpSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TotpSecret(***)")
    }
}

impl TotpSecret {
    pub fn generate() -> Self {
        use rand::RngCore;
        let mut bytes = vec![0u8; SECRET_BYTES];
        rand::thread_rng().fill_bytes(&mut bytes);
        Self(bytes)
    }

    /// The secret as kept (base32); `Internal` for anything else.
    pub fn from_base32(s: &str) -> Result<Self> {
        base32_decode(s)
            .filter(|b| b.len() >= 16)
            .map(Self)
            .ok_or_else(|| Error::Internal("a stored TOTP secret is not base32 of 16 bytes or more".into()))
    }

    /// Base32 without padding: what authenticator apps take typed in, and what is sealed.
    pub fn base32(&self) -> String {
        self.totp(0).get_secret_base32()
    }

    fn totp(&self, skew: u8) -> TOTP {
        TOTP::new_unchecked(Algorithm::SHA1, DIGITS, skew, STEP_SECONDS, self.0.clone())
    }

    /// The `otpauth://` address an authenticator app reads (as a QR code or a link).
    pub fn otpauth_uri(&self, issuer: &str, account: &str) -> String {
        format!(
            "otpauth://totp/{}:{}?secret={}&issuer={}&algorithm=SHA1&digits={DIGITS}&period={STEP_SECONDS}",
            percent(issuer),
            percent(account),
            self.base32(),
            percent(issuer)
        )
    }

    /// The step `code` matches at `now` (the current step or one either side), if any.
    pub fn matching_step(&self, code: &str, now: DateTime<Utc>) -> Option<i64> {
        let t = u64::try_from(now.timestamp()).ok()?;
        let current = t / STEP_SECONDS;
        let exact = self.totp(0);
        [current.saturating_sub(1), current, current + 1]
            .into_iter()
            .find(|step| exact.check(code, step * STEP_SECONDS))
            .and_then(|step| i64::try_from(step).ok())
    }

    /// The code of `now` (for tests and the enrolment's own check).
    pub fn code_at(&self, now: DateTime<Utc>) -> String {
        self.totp(0).generate(u64::try_from(now.timestamp()).unwrap_or(0))
    }
}

/// RFC 4648 base32 without padding, upper or lower case; `None` for anything else.
fn base32_decode(s: &str) -> Option<Vec<u8>> {
    let mut bits = 0u32;
    let mut n = 0u32;
    let mut out = Vec::new();
    for c in s.trim_end_matches('=').bytes() {
        let v = match c.to_ascii_uppercase() {
            b @ b'A'..=b'Z' => b - b'A',
            b @ b'2'..=b'7' => b - b'2' + 26,
            _ => return None,
        };
        bits = (bits << 5) | u32::from(v);
        n += 5;
        if n >= 8 {
            n -= 8;
            out.push((bits >> n) as u8);
            bits &= (1 << n) - 1;
        }
    }
    Some(out)
}

/// Percent-encodes what is not unreserved (RFC 3986), for the otpauth address.
fn percent(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                char::from(b).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// A code as typed: spaces and dashes are dropped; six digits remain or it is refused naming
/// `field`.
pub fn parse_code(code: &str, field: &str) -> Result<String> {
    let digits: String = code.chars().filter(|c| !c.is_whitespace() && *c != '-').collect();
    if digits.len() == DIGITS && digits.bytes().all(|b| b.is_ascii_digit()) {
        Ok(digits)
    } else {
        Err(Error::invalid(
            field,
            format!("must be the {DIGITS} digits your authenticator app shows, or a recovery code"),
        ))
    }
}

/// New recovery codes, as shown once (`abcd-efgh-jkmn`).
pub fn recovery_codes() -> Vec<String> {
    (0..RECOVERY_CODES)
        .map(|_| {
            let raw = random_chars(RECOVERY_ALPHABET, 12);
            format!("{}-{}-{}", &raw[..4], &raw[4..8], &raw[8..])
        })
        .collect()
}

/// What is kept of recovery codes as shown: the SHA-256 of each, normalized.
pub fn recovery_hashes(codes: &[String]) -> Vec<String> {
    codes
        .iter()
        .map(|c| hash(&normalize_recovery(c).unwrap_or_default()))
        .collect()
}

/// A recovery code as typed, in the form it is hashed in (lower case, no dashes or spaces);
/// `None` when it cannot be one.
pub fn normalize_recovery(code: &str) -> Option<String> {
    let c: String = code
        .chars()
        .filter(|c| !c.is_whitespace() && *c != '-')
        .map(|c| c.to_ascii_lowercase())
        .collect();
    (c.len() == 12 && c.bytes().all(|b| RECOVERY_ALPHABET.contains(&b))).then_some(c)
}

/// SHA-256 of a normalized recovery code or a challenge, in hex.
pub fn hash(s: &str) -> String {
    crate::api_key::hash_token(s)
}

/// What a user's second factor is, as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MfaRecord {
    pub user_id: UserId,
    /// The sealed base32 secret.
    pub sealed_secret: String,
    /// Set once a first code confirmed the enrolment; until then the factor is not asked for.
    pub confirmed_at: Option<DateTime<Utc>>,
    /// The last step a code was accepted for.
    pub last_step: Option<i64>,
    /// Recovery codes not used yet.
    pub recovery_left: u32,
    /// Wrong codes in a row.
    pub failures: u32,
    /// No code is checked before then (too many wrong ones).
    pub locked_until: Option<DateTime<Utc>>,
}

/// Wrong codes in a row after which the factor is locked for a while.
pub const FAILURES_PER_LOCK: u32 = 5;

/// How long the factor is locked after `failures` wrong codes in a row: every fifth locks it for
/// 15 minutes, doubling each time, at most a day. A password and a fresh challenge do not undo
/// it, so guessing codes stays slow however often the password is typed.
pub fn lockout(failures: u32) -> Option<Duration> {
    if failures == 0 || failures % FAILURES_PER_LOCK != 0 {
        return None;
    }
    let doublings = (failures / FAILURES_PER_LOCK - 1).min(7);
    Some(Duration::minutes(15 * (1i64 << doublings)).min(Duration::days(1)))
}

/// Why a challenge was given.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ChallengePurpose {
    /// The password was right; a code finishes the sign-in.
    SignIn,
    /// The password was right, the tenant asks for a second factor and the user has none yet:
    /// enrolling finishes the sign-in.
    Enrol,
}

impl ChallengePurpose {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::SignIn => "SIGN_IN",
            Self::Enrol => "ENROL",
        }
    }

    pub fn parse(s: &str) -> Result<Self> {
        match s {
            "SIGN_IN" => Ok(Self::SignIn),
            "ENROL" => Ok(Self::Enrol),
            other => Err(Error::Internal(format!("'{other}' is not a challenge purpose"))),
        }
    }
}

/// A challenge token: `iotc_` and 40 letters and digits.
#[derive(Clone, PartialEq, Eq)]
pub struct ChallengeToken(String);

impl std::fmt::Debug for ChallengeToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ChallengeToken(***)")
    }
}

impl ChallengeToken {
    pub fn generate() -> Self {
        Self(format!(
            "{CHALLENGE_PREFIX}{}",
            random_chars(BASE62, CHALLENGE_RANDOM)
        ))
    }

    pub fn check(s: &str) -> Result<Self> {
        let ok = is_prefixed_alphanumeric(s, CHALLENGE_PREFIX, CHALLENGE_RANDOM);
        if ok {
            Ok(Self(s.to_owned()))
        } else {
            Err(Error::invalid(
                "challenge",
                "is not a sign-in challenge (login answers one in `mfa.challenge`)",
            ))
        }
    }

    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn hash(&self) -> String {
        hash(&self.0)
    }
}

/// A sign-in's challenge, as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Challenge {
    pub tenant_id: TenantId,
    pub customer_id: Option<CustomerId>,
    pub user_id: UserId,
    pub purpose: ChallengePurpose,
    pub expires_at: DateTime<Utc>,
    /// Wrong codes so far.
    pub attempts: i32,
    pub used_at: Option<DateTime<Utc>>,
}

impl Challenge {
    /// Whether it may still be answered at `now`.
    pub fn open(&self, now: DateTime<Utc>) -> Result<()> {
        if self.used_at.is_some() {
            return Err(Error::Unauthenticated(
                "this sign-in was finished already; sign in again".into(),
            ));
        }
        if now >= self.expires_at {
            return Err(Error::Unauthenticated(format!(
                "this sign-in waited more than {CHALLENGE_MINUTES} minutes for its code; sign in again"
            )));
        }
        if self.attempts >= CHALLENGE_ATTEMPTS {
            return Err(Error::Unauthenticated(
                "too many wrong codes for this sign-in; sign in again".into(),
            ));
        }
        Ok(())
    }
}

/// A challenge's expiry from `now`.
pub fn challenge_expiry(now: DateTime<Utc>) -> DateTime<Utc> {
    now + Duration::minutes(CHALLENGE_MINUTES)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc_6238_sha1_vectors() {
        // RFC 6238 appendix B, SHA1, secret "12345678901234567890", 8 digits there; the last six
        // digits of each are ours.
        let s = TotpSecret(b"12345678901234567890".to_vec());
        for (t, eight) in [
            (59, "94287082"),
            (1_111_111_109, "07081804"),
            (1_234_567_890, "89005924"),
            (2_000_000_000, "69279037"),
        ] {
            let at = DateTime::from_timestamp(t, 0).unwrap();
            assert_eq!(s.code_at(at), eight[2..], "t = {t}");
        }
    }

    #[test]
    fn a_code_matches_its_step_and_one_either_side_only() {
        let s = TotpSecret::generate();
        let now = DateTime::from_timestamp(1_800_000_015, 0).unwrap();
        let step = 1_800_000_015 / 30;
        let code = s.code_at(now);
        assert_eq!(s.matching_step(&code, now), Some(step));
        assert_eq!(
            s.matching_step(&code, now + Duration::seconds(30)),
            Some(step),
            "a step late"
        );
        assert_eq!(
            s.matching_step(&code, now - Duration::seconds(30)),
            Some(step),
            "a step early"
        );
        assert_eq!(
            s.matching_step(&code, now + Duration::seconds(90)),
            None,
            "three steps late"
        );
        let wrong = if code == "000000" { "111111" } else { "000000" };
        assert_eq!(s.matching_step(wrong, now), None);
        assert_eq!(TotpSecret::from_base32(&s.base32()).unwrap(), s);
        assert_eq!(format!("{s:?}"), "TotpSecret(***)");
    }

    #[test]
    fn the_otpauth_address_names_issuer_account_and_secret() {
        let s = TotpSecret::generate();
        let uri = s.otpauth_uri("Ioto", "ana+ops@example.com");
        assert!(
            uri.starts_with("otpauth://totp/Ioto:ana%2Bops%40example.com?secret="),
            "{uri}"
        );
        assert!(uri.contains(&s.base32()) && uri.contains("issuer=Ioto") && uri.contains("period=30"));
    }

    #[test]
    fn codes_and_recovery_codes_parse_as_typed() {
        assert_eq!(parse_code(" 123 456 ", "code").unwrap(), "123456");
        let err = parse_code("12345", "code").unwrap_err().to_string();
        assert!(err.contains("6 digits"), "{err}");
        assert!(parse_code("12345a", "code").is_err());
        let codes = recovery_codes();
        assert_eq!(codes.len(), RECOVERY_CODES);
        for c in &codes {
            assert_eq!(c.len(), 14);
            let n = normalize_recovery(&c.to_uppercase()).unwrap();
            assert_eq!(n, c.replace('-', ""));
        }
        assert_eq!(normalize_recovery("too-short"), None);
        assert_eq!(
            normalize_recovery("0000-0000-0000"),
            None,
            "look-alikes are not in the alphabet"
        );
    }

    #[test]
    fn every_fifth_wrong_code_locks_longer() {
        assert_eq!(lockout(0), None);
        assert_eq!(lockout(4), None);
        assert_eq!(lockout(5), Some(Duration::minutes(15)));
        assert_eq!(lockout(6), None);
        assert_eq!(lockout(10), Some(Duration::minutes(30)));
        assert_eq!(lockout(25), Some(Duration::minutes(240)));
        assert_eq!(lockout(60), Some(Duration::days(1)));
    }

    #[test]
    fn challenges_check_form_and_state() {
        let t = ChallengeToken::generate();
        assert_eq!(ChallengeToken::check(t.expose()).unwrap(), t);
        assert!(ChallengeToken::check("iotc_short").is_err());
        let now = Utc::now();
        let mut c = Challenge {
            tenant_id: TenantId::new(),
            customer_id: None,
            user_id: UserId::new(),
            purpose: ChallengePurpose::SignIn,
            expires_at: challenge_expiry(now),
            attempts: 0,
            used_at: None,
        };
        assert!(c.open(now).is_ok());
        assert!(c
            .open(now + Duration::minutes(6))
            .unwrap_err()
            .to_string()
            .contains("5 minutes"));
        c.attempts = CHALLENGE_ATTEMPTS;
        assert!(c
            .open(now)
            .unwrap_err()
            .to_string()
            .contains("too many wrong codes"));
        c.used_at = Some(now);
        assert!(c.open(now).unwrap_err().to_string().contains("finished already"));
    }
}
