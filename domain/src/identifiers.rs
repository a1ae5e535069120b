//! Identifiers that parse: once a value has one of these types it is known to be well formed.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::{Error, Result};

fn all_digits(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())
}

/// Luhn (mod 10) check over a string of ASCII digits, check digit last.
pub fn luhn_valid(digits: &str) -> bool {
    let sum: u32 = digits
        .bytes()
        .rev()
        .enumerate()
        .map(|(i, b)| {
            let d = u32::from(b - b'0');
            if i % 2 == 1 {
                let x = d * 2;
                if x > 9 {
                    x - 9
                } else {
                    x
                }
            } else {
                d
            }
        })
        .sum();
    sum % 10 == 0
}

/// Computes the Luhn check digit for `body` (digits without the check digit).
pub fn luhn_check_digit(body: &str) -> Option<char> {
    if !all_digits(body) {
        return None;
    }
    (0..10u8)
        .map(|d| (b'0' + d) as char)
        .find(|c| luhn_valid(&format!("{body}{c}")))
}

/// Serde goes through the parser: a value read from JSON (a bus message, a stored document) is
/// checked like one typed by a person, and is written as its text.
macro_rules! parsed_serde {
    ($name:ident, $parse:expr) => {
        impl TryFrom<String> for $name {
            type Error = Error;
            fn try_from(s: String) -> Result<Self> {
                $parse(&s)
            }
        }

        impl From<$name> for String {
            fn from(v: $name) -> String {
                v.to_string()
            }
        }
    };
}

macro_rules! string_newtype {
    ($name:ident) => {
        impl $name {
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }
    };
}

/// Integrated Circuit Card Identifier (ITU-T E.118): 19 or 20 digits, starting with the telecom
/// industry prefix `89`, ending in a Luhn check digit.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Iccid(String);
string_newtype!(Iccid);
parsed_serde!(Iccid, Iccid::parse);

impl Iccid {
    /// Completes an ICCID body (18 or 19 digits) with its Luhn check digit.
    pub fn with_check_digit(body: &str) -> Result<Self> {
        let check = luhn_check_digit(body)
            .ok_or_else(|| Error::invalid("iccid", format!("'{body}' must contain digits only")))?;
        Self::parse(&format!("{body}{check}"))
    }

    pub fn parse(s: &str) -> Result<Self> {
        let s = s.trim();
        const FIELD: &str = "iccid";
        if !all_digits(s) {
            return Err(Error::invalid(FIELD, format!("'{s}' must contain digits only")));
        }
        if !(19..=20).contains(&s.len()) {
            return Err(Error::invalid(
                FIELD,
                format!("'{s}' has {} digits; an ICCID has 19 or 20", s.len()),
            ));
        }
        if !s.starts_with("89") {
            return Err(Error::invalid(
                FIELD,
                format!("'{s}' must start with 89 (telecom industry prefix)"),
            ));
        }
        if !luhn_valid(s) {
            return Err(Error::invalid(FIELD, format!("'{s}' fails the Luhn check digit")));
        }
        Ok(Self(s.to_owned()))
    }
}

/// International Mobile Subscriber Identity: MCC (3) + MNC (2–3) + MSIN, 6 to 15 digits in all.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Imsi(String);
string_newtype!(Imsi);
parsed_serde!(Imsi, Imsi::parse);

impl Imsi {
    pub fn parse(s: &str) -> Result<Self> {
        let s = s.trim();
        if !all_digits(s) || !(6..=15).contains(&s.len()) {
            return Err(Error::invalid("imsi", format!("'{s}' must be 6 to 15 digits")));
        }
        Ok(Self(s.to_owned()))
    }

    /// The home country code (first three digits).
    pub fn mcc(&self) -> &str {
        &self.0[..3]
    }
}

/// Phone number in E.164: a leading `+`, a non-zero first digit, at most 15 digits.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Msisdn(String);
string_newtype!(Msisdn);
parsed_serde!(Msisdn, Msisdn::parse);

impl Msisdn {
    /// Accepts `+4915112345678` or `4915112345678`; stores the `+` form.
    pub fn parse(s: &str) -> Result<Self> {
        let s = s.trim();
        let digits = s.strip_prefix('+').unwrap_or(s);
        if !all_digits(digits) || !(8..=15).contains(&digits.len()) || digits.starts_with('0') {
            return Err(Error::invalid(
                "msisdn",
                format!(
                    "'{s}' is not an E.164 number (8 to 15 digits, not starting with 0, optional leading +)"
                ),
            ));
        }
        Ok(Self(format!("+{digits}")))
    }
}

/// A mobile network: Mobile Country Code (3 digits) and Mobile Network Code (2 or 3 digits).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct MccMnc {
    mcc: String,
    mnc: String,
}

impl MccMnc {
    /// Accepts `262-01`, `262/01`, `26201` (5 digits: 2-digit MNC) and `310260` (6 digits: 3-digit MNC).
    pub fn parse(s: &str) -> Result<Self> {
        let s = s.trim();
        let (mcc, mnc) = match s.find(['-', '/', ' ']) {
            Some(i) => (&s[..i], &s[i + 1..]),
            // Only digits may be split by position: `split_at` on a multi-byte character panics.
            None if s.len() >= 5 && all_digits(s) => s.split_at(3),
            None => ("", ""),
        };
        if mcc.len() != 3 || !all_digits(mcc) || !(2..=3).contains(&mnc.len()) || !all_digits(mnc) {
            return Err(Error::invalid(
                "mccMnc",
                format!("'{s}' is not an MCC/MNC (3-digit MCC and 2- or 3-digit MNC, e.g. 262-01)"),
            ));
        }
        Ok(Self {
            mcc: mcc.to_owned(),
            mnc: mnc.to_owned(),
        })
    }

    pub fn mcc(&self) -> &str {
        &self.mcc
    }

    pub fn mnc(&self) -> &str {
        &self.mnc
    }
}

parsed_serde!(MccMnc, MccMnc::parse);

impl fmt::Display for MccMnc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.mcc, self.mnc)
    }
}

/// A login e-mail address, stored lower-cased.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Email(String);
string_newtype!(Email);
parsed_serde!(Email, Email::parse);

impl Email {
    pub fn parse(s: &str) -> Result<Self> {
        let s = s.trim().to_lowercase();
        let valid = s.len() <= 254
            && !s.chars().any(char::is_whitespace)
            && matches!(s.split_once('@'), Some((local, domain))
                if !local.is_empty() && domain.contains('.') && !domain.starts_with('.')
                    && !domain.ends_with('.') && !domain.contains('@'));
        if !valid {
            return Err(Error::invalid(
                "email",
                format!("'{s}' is not an e-mail address (name@domain.tld)"),
            ));
        }
        Ok(Self(s))
    }
}

/// A short, URL-safe handle for a tenant: lower-case letters, digits and `-`, 2 to 40 characters.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Slug(String);
string_newtype!(Slug);
parsed_serde!(Slug, Slug::parse);

impl Slug {
    pub fn parse(s: &str) -> Result<Self> {
        let s = s.trim();
        let ok = (2..=40).contains(&s.len())
            && s.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            && !s.starts_with('-')
            && !s.ends_with('-');
        if !ok {
            return Err(Error::invalid(
                "slug",
                format!("'{s}' must be 2 to 40 lower-case letters, digits or '-', not starting or ending with '-'"),
            ));
        }
        Ok(Self(s.to_owned()))
    }
}

/// A display name: trimmed, 1 to 200 characters, no control characters.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Name(String);
string_newtype!(Name);
parsed_serde!(Name, |s: &str| Name::parse(s, "name"));

impl Name {
    pub fn parse(s: &str, field: &str) -> Result<Self> {
        let s = s.trim();
        let len = s.chars().count();
        if len == 0 || len > 200 {
            return Err(Error::invalid(
                field,
                format!("must be 1 to 200 characters, got {len}"),
            ));
        }
        if s.chars().any(char::is_control) {
            return Err(Error::invalid(field, "must not contain control characters"));
        }
        Ok(Self(s.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers_deserialize_only_through_their_parser() {
        let good = Iccid::with_check_digit("898822800000000001").unwrap();
        let json = serde_json::to_string(&good).unwrap();
        assert_eq!(serde_json::from_str::<Iccid>(&json).unwrap(), good);
        assert!(serde_json::from_str::<Iccid>("\"89882280000000000199\"").is_err());
        let net: MccMnc = serde_json::from_str("\"262-01\"").unwrap();
        assert_eq!(serde_json::to_string(&net).unwrap(), "\"262-01\"");
        assert!(serde_json::from_str::<MccMnc>("\"12é45\"").is_err());
        assert!(serde_json::from_str::<Email>("\"not-an-address\"").is_err());
    }

    #[test]
    fn iccid_accepts_valid_luhn_and_rejects_a_changed_digit() {
        let body = "898822800000000001";
        let check = luhn_check_digit(body).unwrap();
        let iccid = format!("{body}{check}");
        assert_eq!(Iccid::parse(&iccid).unwrap().as_str(), iccid);
        assert_eq!(Iccid::with_check_digit(body).unwrap().as_str(), iccid);
        let wrong = format!("{body}{}", (((check as u8 - b'0') + 1) % 10 + b'0') as char);
        let err = Iccid::parse(&wrong).unwrap_err();
        assert!(err.to_string().contains("Luhn"), "{err}");
    }

    #[test]
    fn iccid_rejects_wrong_length_and_prefix_and_letters() {
        assert!(Iccid::parse("8988").unwrap_err().to_string().contains("19 or 20"));
        assert!(Iccid::parse("1234567890123456789")
            .unwrap_err()
            .to_string()
            .contains("start with 89"));
        assert!(Iccid::parse("89882280000000000a1")
            .unwrap_err()
            .to_string()
            .contains("digits only"));
    }

    #[test]
    fn known_luhn_examples() {
        // Classic Luhn test vector.
        assert!(luhn_valid("79927398713"));
        assert!(!luhn_valid("79927398710"));
    }

    #[test]
    fn msisdn_normalises_to_plus_form() {
        assert_eq!(Msisdn::parse("4915112345678").unwrap().as_str(), "+4915112345678");
        assert!(Msisdn::parse("+0151").is_err());
        assert!(Msisdn::parse("+49 151").is_err());
    }

    #[test]
    fn mcc_mnc_forms() {
        assert_eq!(MccMnc::parse("262-01").unwrap().to_string(), "262-01");
        assert_eq!(MccMnc::parse("26201").unwrap().mnc(), "01");
        assert_eq!(MccMnc::parse("310260").unwrap().mnc(), "260");
        assert!(MccMnc::parse("26").is_err());
        assert!(MccMnc::parse("262-1").is_err());
    }

    #[test]
    fn email_is_lowercased_and_checked() {
        assert_eq!(
            Email::parse(" Ada@Example.COM ").unwrap().as_str(),
            "ada@example.com"
        );
        for bad in ["", "ada", "ada@", "@x.io", "a@b", "a b@c.io", "a@b@c.io", "a@.io"] {
            assert!(Email::parse(bad).is_err(), "{bad} accepted");
        }
    }

    #[test]
    fn slug_rules() {
        assert!(Slug::parse("acme-iot").is_ok());
        for bad in ["A", "acme_iot", "-acme", "acme-", "Acme"] {
            assert!(Slug::parse(bad).is_err(), "{bad} accepted");
        }
    }

    #[test]
    fn imsi_mcc() {
        assert_eq!(Imsi::parse("262011234567890").unwrap().mcc(), "262");
        assert!(Imsi::parse("26201x").is_err());
    }

    proptest::proptest! {
        /// Every body of 17 or 18 digits after 89 completes to an ICCID that parses; changing any
        /// one digit of it breaks the check digit.
        #[test]
        fn iccid_check_digit_catches_every_single_digit_change(
            body in "89[0-9]{16,17}",
            pos in 0usize..20,
            bump in 1u8..10,
        ) {
            let iccid = Iccid::with_check_digit(&body).unwrap();
            proptest::prop_assert_eq!(Iccid::parse(iccid.as_str()).unwrap(), iccid.clone());
            let mut digits = iccid.as_str().as_bytes().to_vec();
            let pos = pos % digits.len();
            // The prefix must stay 89 for the change to reach the Luhn check.
            proptest::prop_assume!(pos >= 2);
            digits[pos] = b'0' + (digits[pos] - b'0' + bump) % 10;
            let changed = String::from_utf8(digits).unwrap();
            proptest::prop_assert!(Iccid::parse(&changed).is_err(), "{} still parses", changed);
        }

        /// Nothing a person or a producer can send makes a parser panic; what parses round-trips.
        #[test]
        fn parsers_never_panic_and_round_trip(s in "\\PC{0,24}") {
            if let Ok(i) = Iccid::parse(&s) {
                proptest::prop_assert_eq!(Iccid::parse(i.as_str()).unwrap(), i);
            }
            if let Ok(m) = MccMnc::parse(&s) {
                proptest::prop_assert_eq!(MccMnc::parse(&m.to_string()).unwrap(), m);
            }
            if let Ok(n) = Msisdn::parse(&s) {
                proptest::prop_assert!(n.as_str().starts_with('+'));
                proptest::prop_assert_eq!(Msisdn::parse(n.as_str()).unwrap(), n);
            }
            let _ = (Imsi::parse(&s), Email::parse(&s), Slug::parse(&s), Name::parse(&s, "name"));
        }

        /// MCC/MNC in every accepted spelling is the same network.
        #[test]
        fn mcc_mnc_spellings_agree(mcc in "[0-9]{3}", mnc in "[0-9]{2,3}") {
            let dashed = MccMnc::parse(&format!("{mcc}-{mnc}")).unwrap();
            proptest::prop_assert_eq!(MccMnc::parse(&format!("{mcc}/{mnc}")).unwrap(), dashed.clone());
            if mnc.len() == 2 {
                proptest::prop_assert_eq!(MccMnc::parse(&format!("{mcc}{mnc}")).unwrap(), dashed);
            }
        }
    }
}
