//! PIN and PUK at rest: AES-256-GCM with a configured key, bound to the SIM and the field so a
//! sealed value copied onto another SIM or into another column does not open.

use std::fmt;

use aes_gcm::aead::rand_core::RngCore;
use aes_gcm::aead::{Aead, AeadCore, KeyInit, OsRng, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use serde::{Deserialize, Serialize};

use crate::{Error, Result};

const PREFIX: &str = "v1:";

/// A sealed secret as stored: `v1:` and base64 of nonce and ciphertext. Never printed.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Sealed(String);

impl Sealed {
    /// Wraps a stored value (no check: a bad one fails when opened).
    pub fn from_stored(s: String) -> Self {
        Self(s)
    }

    pub fn as_stored(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Sealed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Sealed(***)")
    }
}

/// Seals and opens SIM secrets with one 256-bit key.
#[derive(Clone)]
pub struct SecretCipher {
    cipher: Aes256Gcm,
}

impl fmt::Debug for SecretCipher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretCipher(***)")
    }
}

impl SecretCipher {
    /// From 32 raw bytes.
    pub fn new(key: &[u8; 32]) -> Self {
        Self {
            cipher: Aes256Gcm::new(key.into()),
        }
    }

    /// From the configured text form: base64 of 32 bytes.
    pub fn from_base64(key: &str) -> Result<Self> {
        let bytes = B64.decode(key.trim()).map_err(|_| {
            Error::invalid(
                "fleet.secret_key",
                "must be base64 of 32 random bytes (openssl rand -base64 32)",
            )
        })?;
        let key: [u8; 32] = bytes.try_into().map_err(|b: Vec<u8>| {
            Error::invalid(
                "fleet.secret_key",
                format!("must be 32 bytes once base64-decoded, got {}", b.len()),
            )
        })?;
        Ok(Self::new(&key))
    }

    /// A fresh random key in the configured text form.
    pub fn generate_key() -> String {
        B64.encode(Aes256Gcm::generate_key(&mut OsRng))
    }

    /// Seals `plain` for the SIM `iccid` and the field `field` (`pin`, `puk`).
    pub fn seal(&self, iccid: &str, field: &str, plain: &str) -> Result<Sealed> {
        self.seal_nonce(&Aes256Gcm::generate_nonce(&mut OsRng), iccid, field, plain)
    }

    /// Seals with the next of `nonces` (each is handed out once).
    pub(crate) fn seal_with(
        &self,
        nonces: &mut Nonces,
        iccid: &str,
        field: &str,
        plain: &str,
    ) -> Result<Sealed> {
        let nonce = nonces
            .0
            .next()
            .ok_or_else(|| Error::Internal("fewer nonces drawn than secrets to seal".into()))?;
        self.seal_nonce(&nonce, iccid, field, plain)
    }

    /// Seals with `nonce`, 12 bytes.
    fn seal_nonce(&self, nonce: &[u8], iccid: &str, field: &str, plain: &str) -> Result<Sealed> {
        let nonce = Nonce::from_slice(nonce);
        let aad = format!("{iccid}/{field}");
        let ct = self
            .cipher
            .encrypt(
                nonce,
                Payload {
                    msg: plain.as_bytes(),
                    aad: aad.as_bytes(),
                },
            )
            .map_err(|_| Error::Internal("sealing a SIM secret failed".into()))?;
        let mut out = nonce.to_vec();
        out.extend_from_slice(&ct);
        Ok(Sealed(format!("{PREFIX}{}", B64.encode(out))))
    }

    /// Opens a sealed value; `Internal` when it was sealed with another key or for another SIM.
    pub fn open(&self, iccid: &str, field: &str, sealed: &Sealed) -> Result<String> {
        let bad = || {
            Error::Internal(format!(
                "the stored {field} of SIM {iccid} does not open with the configured key"
            ))
        };
        let raw = sealed.0.strip_prefix(PREFIX).ok_or_else(bad)?;
        let bytes = B64.decode(raw).map_err(|_| bad())?;
        if bytes.len() < 12 {
            return Err(bad());
        }
        let (nonce, ct) = bytes.split_at(12);
        let aad = format!("{iccid}/{field}");
        let plain = self
            .cipher
            .decrypt(
                Nonce::from_slice(nonce),
                Payload {
                    msg: ct,
                    aad: aad.as_bytes(),
                },
            )
            .map_err(|_| bad())?;
        String::from_utf8(plain).map_err(|_| bad())
    }
}

/// Random nonces for [`SecretCipher::seal_with`], each handed out once.
pub(crate) struct Nonces(std::vec::IntoIter<[u8; 12]>);

/// `count` random nonces, read from the system's random source in one call where
/// [`SecretCipher::seal`] makes one call per value (most of its cost on small secrets).
pub(crate) fn nonces(count: usize) -> Result<Nonces> {
    let mut bytes = vec![0u8; count * 12];
    OsRng
        .try_fill_bytes(&mut bytes)
        .map_err(|e| Error::Internal(format!("the system's random source failed: {e}")))?;
    Ok(Nonces(
        bytes
            .chunks_exact(12)
            .map(|c| {
                let mut n = [0u8; 12];
                n.copy_from_slice(c);
                n
            })
            .collect::<Vec<_>>()
            .into_iter(),
    ))
}

/// What roles without access see instead of a PIN or PUK.
pub fn mask(plain_len: usize) -> String {
    "•".repeat(plain_len.clamp(4, 8))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    #[test]
    fn round_trip_and_binding() {
        let c = SecretCipher::from_base64(&SecretCipher::generate_key()).unwrap();
        let s = c.seal("8988000000000000001", "pin", "1234").unwrap();
        assert!(!s.as_stored().contains("1234"));
        assert_eq!(c.open("8988000000000000001", "pin", &s).unwrap(), "1234");
        // Bound to SIM and field.
        assert!(c.open("8988000000000000019", "pin", &s).is_err());
        assert!(c.open("8988000000000000001", "puk", &s).is_err());
        // Another key does not open it.
        let other = SecretCipher::from_base64(&SecretCipher::generate_key()).unwrap();
        assert!(other.open("8988000000000000001", "pin", &s).is_err());
        assert_eq!(format!("{s:?}"), "Sealed(***)");
    }

    #[test]
    fn nonces_drawn_together_seal_like_one_drawn_alone_and_run_out_with_an_error() {
        let c = SecretCipher::from_base64(&SecretCipher::generate_key()).unwrap();
        let mut drawn = nonces(2).unwrap();
        let a = c
            .seal_with(&mut drawn, "8988000000000000001", "puk", "12345678")
            .unwrap();
        let b = c
            .seal_with(&mut drawn, "8988000000000000001", "puk", "12345678")
            .unwrap();
        assert_ne!(nonce_of(&a), nonce_of(&b), "each nonce is handed out once");
        assert_eq!(c.open("8988000000000000001", "puk", &a).unwrap(), "12345678");
        assert_eq!(c.open("8988000000000000001", "puk", &b).unwrap(), "12345678");
        assert!(c.open("8988000000000000001", "pin", &a).is_err());
        let err = c
            .seal_with(&mut drawn, "8988000000000000001", "pin", "1234")
            .unwrap_err();
        assert!(
            matches!(&err, Error::Internal(m) if m.contains("nonces")),
            "{err}"
        );
        assert_eq!(nonces(0).unwrap().0.len(), 0);
    }

    /// The nonce a sealed value was sealed with (its first 12 bytes).
    pub(crate) fn nonce_of(sealed: &Sealed) -> Vec<u8> {
        let raw = sealed.as_stored().strip_prefix(PREFIX).unwrap();
        B64.decode(raw).unwrap()[..12].to_vec()
    }

    #[test]
    fn bad_keys_are_explained() {
        assert!(SecretCipher::from_base64("short")
            .unwrap_err()
            .to_string()
            .contains("base64"));
        let err = SecretCipher::from_base64("AAAA").unwrap_err().to_string();
        assert!(err.contains("32 bytes"), "{err}");
    }
}
