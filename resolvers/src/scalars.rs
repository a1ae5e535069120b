//! Scalars of the contract beyond GraphQL's own: 64-bit counters and identifiers that are parsed
//! once, where the request is validated. A value an identifier scalar refuses is answered with
//! `BAD_USER_INPUT` naming the argument, before any resolver runs; resolvers receive the domain
//! type and never parse strings themselves.

use async_graphql::{InputValueError, InputValueResult, Scalar, ScalarType, Value};
use ioto_domain::identifiers::{Iccid, MccMnc};

/// What each scalar of ours accepts, for error messages that say what is allowed.
pub fn scalar_rule(type_name: &str) -> Option<&'static str> {
    Some(match type_name {
        "Iccid" => "an ICCID has 19 or 20 digits, starts with 89 and ends in a Luhn check digit",
        "MccMnc" => "an MCC/MNC is a 3-digit MCC and a 2- or 3-digit MNC, e.g. 262-01",
        "BigInt" => "a BigInt is a whole number from -2^63 to 2^63-1, as a JSON number or a string of digits",
        "Date" => "a Date is YYYY-MM-DD",
        _ => return None,
    })
}

/// A value refused while the operation runs (async-graphql checks literals and whole variables at
/// validation, but not every value nested in an input object): `BAD_USER_INPUT` with the field
/// the parser names and its reason.
fn refused<T: async_graphql::InputType>(e: ioto_domain::Error) -> InputValueError<T> {
    let public = e.public();
    let err = InputValueError::custom(&public.message).with_extension("code", public.code.as_str());
    match public.field {
        Some(f) => err.with_extension("field", f),
        None => err,
    }
}

/// A 64-bit signed integer for counters that pass GraphQL's 32-bit `Int` (bytes, above all).
/// Answered as a JSON number — exact in every JSON parser up to 2^53 (8 PiB), far beyond any
/// counter Ioto keeps; accepted as a JSON number or a string of digits.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct BigInt(pub i64);

impl From<i64> for BigInt {
    fn from(v: i64) -> Self {
        Self(v)
    }
}

impl From<u64> for BigInt {
    /// Saturates at `i64::MAX` (no counter gets there).
    fn from(v: u64) -> Self {
        Self(i64::try_from(v).unwrap_or(i64::MAX))
    }
}

fn big_int(value: &Value) -> Option<i64> {
    match value {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// A 64-bit signed integer (−2^63 to 2^63−1). Output as a JSON number; input as a JSON number or
/// a string of digits.
#[Scalar(name = "BigInt")]
impl ScalarType for BigInt {
    fn parse(value: Value) -> InputValueResult<Self> {
        big_int(&value).map(Self).ok_or_else(|| {
            refused(ioto_domain::Error::invalid(
                "value",
                format!("{value} is not a 64-bit integer"),
            ))
        })
    }

    fn is_valid(value: &Value) -> bool {
        big_int(value).is_some()
    }

    fn to_value(&self) -> Value {
        Value::Number(self.0.into())
    }
}

/// An ICCID argument, parsed (`Iccid` in the schema).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IccidScalar(pub Iccid);

/// Integrated Circuit Card Identifier (ITU-T E.118): 19 or 20 digits, starting with 89, ending
/// in a Luhn check digit.
#[Scalar(name = "Iccid")]
impl ScalarType for IccidScalar {
    fn parse(value: Value) -> InputValueResult<Self> {
        match &value {
            Value::String(s) => Iccid::parse(s).map(Self).map_err(refused),
            _ => Err(InputValueError::expected_type(value)),
        }
    }

    fn is_valid(value: &Value) -> bool {
        matches!(value, Value::String(s) if Iccid::parse(s).is_ok())
    }

    fn to_value(&self) -> Value {
        Value::String(self.0.to_string())
    }
}

/// An MCC/MNC argument, parsed (`MccMnc` in the schema).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MccMncScalar(pub MccMnc);

/// A mobile network: 3-digit Mobile Country Code and 2- or 3-digit Mobile Network Code, as
/// `262-01` (also accepted: `262/01`, `26201`, `310260`).
#[Scalar(name = "MccMnc")]
impl ScalarType for MccMncScalar {
    fn parse(value: Value) -> InputValueResult<Self> {
        match &value {
            Value::String(s) => MccMnc::parse(s).map(Self).map_err(refused),
            _ => Err(InputValueError::expected_type(value)),
        }
    }

    fn is_valid(value: &Value) -> bool {
        matches!(value, Value::String(s) if MccMnc::parse(s).is_ok())
    }

    fn to_value(&self) -> Value {
        Value::String(self.0.to_string())
    }
}

/// An exact decimal amount of money, written as a string (`"12.345"`) so no JSON parser rounds it.
/// Costs carry up to 12 decimals; prices up to 6.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Decimal(pub ioto_domain::billing::money::Cost);

#[Scalar(name = "Decimal")]
impl ScalarType for Decimal {
    fn parse(value: Value) -> async_graphql::InputValueResult<Self> {
        match &value {
            Value::String(s) => ioto_domain::billing::money::Cost::parse("Decimal", s)
                .map(Decimal)
                .map_err(|e| async_graphql::InputValueError::custom(e.to_string())),
            _ => Err(async_graphql::InputValueError::expected_type(value)),
        }
    }

    fn to_value(&self) -> Value {
        Value::String(self.0.to_string())
    }
}

/// A calendar day, `YYYY-MM-DD` (UTC).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Date(pub chrono::NaiveDate);

#[async_graphql::Scalar(name = "Date")]
impl async_graphql::ScalarType for Date {
    fn parse(value: async_graphql::Value) -> async_graphql::InputValueResult<Self> {
        match &value {
            async_graphql::Value::String(s) => chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d")
                .map(Date)
                .map_err(|_| {
                    async_graphql::InputValueError::custom(format!("'{s}' is not a date (YYYY-MM-DD)"))
                }),
            _ => Err(async_graphql::InputValueError::expected_type(value)),
        }
    }

    fn to_value(&self) -> async_graphql::Value {
        async_graphql::Value::String(self.0.to_string())
    }
}

/// An optional `tenantId` argument (platform admins name a tenant; everyone else is in theirs).
pub(crate) fn parse_tenant(
    id: Option<&async_graphql::ID>,
) -> async_graphql::Result<Option<ioto_domain::TenantId>> {
    id.map(|id| ioto_domain::TenantId::parse(id, "tenantId"))
        .transpose()
        .map_err(crate::error::to_gql)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn big_ints_pass_32_bits_both_ways() {
        let five_gib = 5_i64 << 30;
        assert_eq!(BigInt(five_gib).to_value(), Value::Number(five_gib.into()));
        assert_eq!(
            BigInt::parse(Value::Number(five_gib.into())).ok(),
            Some(BigInt(five_gib))
        );
        assert_eq!(
            BigInt::parse(Value::String("5368709120".into())).ok(),
            Some(BigInt(five_gib))
        );
        assert!(BigInt::parse(Value::String("5 GiB".into())).is_err());
        assert_eq!(BigInt::from(u64::MAX), BigInt(i64::MAX));
    }

    #[test]
    fn identifiers_are_checked_at_validation() {
        assert!(IccidScalar::is_valid(&Value::String(
            "89490200001234567892".into()
        )));
        assert!(!IccidScalar::is_valid(&Value::String(
            "89490200001234567893".into()
        )));
        assert!(MccMncScalar::is_valid(&Value::String("262-01".into())));
        assert!(!MccMncScalar::is_valid(&Value::String("12é45".into())));
    }
}
