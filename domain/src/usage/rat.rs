//! Radio access types: the codes mediation systems send, as the names people read.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// Serialized as its readable name; read back through [`RadioAccessType::parse`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum RadioAccessType {
    /// 2G (GSM/GPRS/EDGE).
    Geran,
    /// 3G (UMTS/HSPA).
    Utran,
    /// 4G.
    Lte,
    /// LTE for machines (Cat-M1).
    LteM,
    /// Narrowband IoT.
    NbIot,
    /// 5G New Radio.
    Nr,
}

impl RadioAccessType {
    pub const ALL: [RadioAccessType; 6] = [
        Self::Geran,
        Self::Utran,
        Self::Lte,
        Self::LteM,
        Self::NbIot,
        Self::Nr,
    ];

    /// The readable name: GERAN, UTRAN, LTE, LTE-M, NB-IoT, 5G NR.
    pub fn name(self) -> &'static str {
        match self {
            Self::Geran => "GERAN",
            Self::Utran => "UTRAN",
            Self::Lte => "LTE",
            Self::LteM => "LTE-M",
            Self::NbIot => "NB-IoT",
            Self::Nr => "5G NR",
        }
    }

    /// Accepts the readable names (any case, `-`/`_`/space ignored), the GTPv2 RAT Type values
    /// (TS 29.274: 1 UTRAN, 2 GERAN, 5 HSPA Evolution, 6 EUTRAN, 8 EUTRAN-NB-IoT, 9 LTE-M, 10 NR)
    /// and the Diameter RAT-Type values (TS 29.212: 1000 UTRAN, 1001 GERAN, 1004 HSPA Evolution,
    /// 1005 EUTRAN, 1006 EUTRAN-NB-IoT, 1007 LTE-M, 1009 NR).
    pub fn parse(s: &str) -> Result<Self> {
        let norm: String = s
            .trim()
            .chars()
            .filter(|c| !matches!(c, '-' | '_' | ' '))
            .collect::<String>()
            .to_ascii_uppercase();
        let rat = match norm.as_str() {
            "GERAN" | "GSM" | "2G" | "2" | "1001" => Self::Geran,
            "UTRAN" | "UMTS" | "3G" | "HSPA" | "1" | "5" | "1000" | "1004" => Self::Utran,
            "LTE" | "EUTRAN" | "4G" | "6" | "1005" => Self::Lte,
            "LTEM" | "CATM" | "CATM1" | "9" | "1007" => Self::LteM,
            "NBIOT" | "EUTRANNBIOT" | "8" | "1006" => Self::NbIot,
            "5GNR" | "NR" | "5G" | "10" | "1009" => Self::Nr,
            _ => {
                return Err(Error::invalid(
                    "radio_access_type",
                    format!("'{s}' is not a known radio access type (GERAN, UTRAN, LTE, LTE-M, NB-IoT, 5G NR or a 3GPP RAT code)"),
                ))
            }
        };
        Ok(rat)
    }
}

impl fmt::Display for RadioAccessType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl TryFrom<String> for RadioAccessType {
    type Error = Error;
    fn try_from(s: String) -> Result<Self> {
        Self::parse(&s)
    }
}

impl From<RadioAccessType> for String {
    fn from(v: RadioAccessType) -> String {
        v.name().to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_and_names() {
        assert_eq!(RadioAccessType::parse("6").unwrap(), RadioAccessType::Lte);
        assert_eq!(RadioAccessType::parse("1006").unwrap(), RadioAccessType::NbIot);
        assert_eq!(RadioAccessType::parse("lte-m").unwrap(), RadioAccessType::LteM);
        assert_eq!(RadioAccessType::parse("5G NR").unwrap().name(), "5G NR");
        assert!(RadioAccessType::parse("7").is_err());
        for rat in RadioAccessType::ALL {
            assert_eq!(
                RadioAccessType::parse(rat.name()).unwrap(),
                rat,
                "names round-trip"
            );
        }
    }
}
