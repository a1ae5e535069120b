//! JWT: issuing tokens for logins and the CLI, and validating every token strictly.
//!
//! Validation pins the configured algorithm (a token signed with anything else, or `alg: none`,
//! is refused), and checks the signature, `exp`, `nbf`, `iss` and `aud`.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use chrono::{DateTime, Utc};
use ioto_domain::account::SessionId;
use ioto_domain::directory::User;
use ioto_domain::{Actor, CustomerId, Error, Result, Role, TenantId, UserId};
use ioto_resolvers::TokenIssuer;
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::Serialize;
use tokio::sync::RwLock;

use crate::config::{AuthConfig, JwtAlgorithm, Secret};

/// Where verification keys come from.
enum Keys {
    Static(DecodingKey),
    Jwks {
        url: String,
        keys: RwLock<(HashMap<String, DecodingKey>, Option<Instant>)>,
        http: reqwest::Client,
    },
}

pub struct Jwt {
    algorithm: Algorithm,
    issuer: String,
    audience: String,
    ttl: Duration,
    leeway: u64,
    encoding: Option<EncodingKey>,
    keys: Keys,
    tenant_claim: String,
    role_claim: String,
    customer_claim: String,
}

#[derive(Serialize)]
struct IssuedClaims<'a> {
    sub: String,
    iss: &'a str,
    aud: &'a str,
    iat: i64,
    nbf: i64,
    exp: i64,
    jti: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    uid: Option<String>,
    tid: String,
    role: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    cid: Option<String>,
    /// The sign-in session a login's token belongs to. A name of Ioto's own: identity providers
    /// put other things in `sid`.
    #[serde(rename = "ioto_sid", skip_serializing_if = "Option::is_none")]
    sid: Option<String>,
}

fn unauthenticated(msg: impl Into<String>) -> Error {
    Error::Unauthenticated(msg.into())
}

/// Refetch a JWKS at most this often when a token names an unknown key id.
const JWKS_REFRESH: Duration = Duration::from_secs(60);

impl Jwt {
    /// Builds from configuration. `hs_secret` is the configured or data-dir secret for HS256.
    pub async fn from_config(cfg: &AuthConfig, hs_secret: Option<&Secret>) -> anyhow::Result<Self> {
        let algorithm = match cfg.algorithm {
            JwtAlgorithm::HS256 => Algorithm::HS256,
            JwtAlgorithm::RS256 => Algorithm::RS256,
            JwtAlgorithm::ES256 => Algorithm::ES256,
        };
        let read = |p: &Path| std::fs::read(p).with_context(|| format!("reading key file {}", p.display()));
        let (encoding, keys) = match algorithm {
            Algorithm::HS256 => {
                let secret = hs_secret.context("auth.jwt_secret: HS256 needs a secret")?;
                (
                    Some(EncodingKey::from_secret(secret.expose().as_bytes())),
                    Keys::Static(DecodingKey::from_secret(secret.expose().as_bytes())),
                )
            }
            _ => {
                let rsa = algorithm == Algorithm::RS256;
                let encoding = match &cfg.private_key_pem {
                    Some(p) => Some(
                        if rsa {
                            EncodingKey::from_rsa_pem(&read(p)?)
                        } else {
                            EncodingKey::from_ec_pem(&read(p)?)
                        }
                        .with_context(|| {
                            format!(
                                "auth.private_key_pem: {} is not a {} private key",
                                p.display(),
                                cfg.algorithm
                            )
                        })?,
                    ),
                    None => None,
                };
                let keys = match (&cfg.public_key_pem, &cfg.jwks_url) {
                    (Some(p), _) => Keys::Static(
                        if rsa {
                            DecodingKey::from_rsa_pem(&read(p)?)
                        } else {
                            DecodingKey::from_ec_pem(&read(p)?)
                        }
                        .with_context(|| {
                            format!(
                                "auth.public_key_pem: {} is not a {} public key",
                                p.display(),
                                cfg.algorithm
                            )
                        })?,
                    ),
                    (None, Some(url)) => {
                        let keys = Keys::Jwks {
                            url: url.clone(),
                            keys: RwLock::new((HashMap::new(), None)),
                            http: reqwest::Client::builder()
                                .timeout(Duration::from_secs(5))
                                .build()?,
                        };
                        fetch_jwks(&keys)
                            .await
                            .with_context(|| format!("auth.jwks_url: fetching {url}"))?;
                        keys
                    }
                    (None, None) => bail!(
                        "auth: {} needs auth.public_key_pem or auth.jwks_url",
                        cfg.algorithm
                    ),
                };
                (encoding, keys)
            }
        };
        Ok(Self {
            algorithm,
            issuer: cfg.issuer.clone(),
            audience: cfg.audience.clone(),
            ttl: Duration::from_secs(cfg.token_ttl_minutes * 60),
            leeway: cfg.leeway_seconds,
            encoding,
            keys,
            tenant_claim: cfg.tenant_claim.clone(),
            role_claim: cfg.role_claim.clone(),
            customer_claim: cfg.customer_claim.clone(),
        })
    }

    /// Signs a token for `tenant`/`role`. `user` is set for logins, `None` for CLI service tokens.
    pub fn issue_for(
        &self,
        user: Option<UserId>,
        subject: String,
        tenant: TenantId,
        role: Role,
        customer: Option<CustomerId>,
        ttl: Option<Duration>,
    ) -> Result<(String, DateTime<Utc>)> {
        let claims = |now: i64, exp: i64| IssuedClaims {
            sub: subject,
            iss: &self.issuer,
            aud: &self.audience,
            iat: now,
            nbf: now,
            exp,
            jti: uuid::Uuid::new_v4().to_string(),
            uid: user.map(|u| u.to_string()),
            tid: tenant.to_string(),
            role: role.as_str(),
            cid: customer.map(|c| c.to_string()),
            sid: None,
        };
        self.sign(ttl.unwrap_or(self.ttl), claims)
    }

    /// Whether this server signs tokens (it does not when an external identity provider does).
    pub fn issues_tokens(&self) -> Result<()> {
        self.encoding.as_ref().map(|_| ()).ok_or_else(|| {
            Error::Forbidden(
                "this server does not issue tokens; sign in at the configured identity provider".into(),
            )
        })
    }

    /// Signs an access token of `user`'s sign-in `session`, `ttl` long.
    pub fn issue_in_session(
        &self,
        user: &User,
        session: SessionId,
        ttl: Duration,
    ) -> Result<(String, DateTime<Utc>)> {
        let claims = |now: i64, exp: i64| IssuedClaims {
            sub: user.id.to_string(),
            iss: &self.issuer,
            aud: &self.audience,
            iat: now,
            nbf: now,
            exp,
            jti: uuid::Uuid::new_v4().to_string(),
            uid: Some(user.id.to_string()),
            tid: user.tenant_id.to_string(),
            role: user.role.as_str(),
            cid: user.customer_id.map(|c| c.to_string()),
            sid: Some(session.to_string()),
        };
        self.sign(ttl, claims)
    }

    /// Signs the claims `claims(now, exp)` makes, expiring `ttl` from now.
    fn sign<'a>(
        &'a self,
        ttl: Duration,
        claims: impl FnOnce(i64, i64) -> IssuedClaims<'a>,
    ) -> Result<(String, DateTime<Utc>)> {
        let key = self.encoding.as_ref().ok_or_else(|| {
            Error::Forbidden(
                "this server does not issue tokens; sign in at the configured identity provider".into(),
            )
        })?;
        let now = Utc::now();
        let ttl = chrono::Duration::from_std(ttl).map_err(|e| Error::Internal(e.to_string()))?;
        let exp = now + ttl;
        let claims = claims(now.timestamp(), exp.timestamp());
        let token = jsonwebtoken::encode(&Header::new(self.algorithm), &claims, key)
            .map_err(|e| Error::Internal(format!("signing token: {e}")))?;
        Ok((token, exp))
    }

    /// Validates a bearer token and turns its claims into the caller.
    pub async fn verify(&self, token: &str) -> Result<Actor> {
        self.verify_with(token, true).await
    }

    /// Validates the token an open WebSocket started with, at its later checks: a token of a
    /// sign-in session is held to its session (checked by the caller), not to its own expiry,
    /// so a connection outlives the short-lived token it began with for as long as the session
    /// holds; any other token stops at its expiry.
    pub async fn verify_open(&self, token: &str) -> Result<Actor> {
        let actor = self.verify_with(token, false).await?;
        if actor.session_id.is_none() || actor.user_id.is_none() {
            return self.verify_with(token, true).await;
        }
        Ok(actor)
    }

    async fn verify_with(&self, token: &str, check_expiry: bool) -> Result<Actor> {
        let header =
            jsonwebtoken::decode_header(token).map_err(|_| unauthenticated("the token is malformed"))?;
        if header.alg != self.algorithm {
            return Err(unauthenticated(format!(
                "the token's algorithm must be {:?}",
                self.algorithm
            )));
        }
        let key = self.decoding_key(header.kid.as_deref()).await?;
        let mut v = Validation::new(self.algorithm);
        v.leeway = self.leeway;
        v.validate_nbf = true;
        v.validate_exp = check_expiry;
        v.set_issuer(&[&self.issuer]);
        v.set_audience(&[&self.audience]);
        v.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        let data = jsonwebtoken::decode::<serde_json::Map<String, serde_json::Value>>(token, &key, &v)
            .map_err(|e| {
                use jsonwebtoken::errors::ErrorKind as K;
                unauthenticated(match e.kind() {
                    K::ExpiredSignature => "the token has expired",
                    K::ImmatureSignature => "the token is not valid yet",
                    K::InvalidIssuer => "the token was issued by someone else",
                    K::InvalidAudience => "the token is meant for another audience",
                    K::InvalidSignature => "the token's signature is invalid",
                    K::MissingRequiredClaim(_) => "the token lacks a required claim",
                    _ => "the token is invalid",
                })
            })?;
        self.actor_from(&data.claims)
    }

    fn actor_from(&self, c: &serde_json::Map<String, serde_json::Value>) -> Result<Actor> {
        let text = |name: &str| c.get(name).and_then(|v| v.as_str());
        let subject = text("sub")
            .ok_or_else(|| unauthenticated("the token lacks 'sub'"))?
            .to_owned();
        let tenant_id = text(&self.tenant_claim)
            .and_then(|t| TenantId::parse(t, "tid").ok())
            .ok_or_else(|| {
                unauthenticated(format!("the token lacks a tenant id in '{}'", self.tenant_claim))
            })?;
        let role = text(&self.role_claim)
            .and_then(|r| Role::parse(r).ok())
            .ok_or_else(|| {
                unauthenticated(format!("the token lacks a known role in '{}'", self.role_claim))
            })?;
        let customer_id = match text(&self.customer_claim) {
            Some(cid) => Some(
                CustomerId::parse(cid, "cid")
                    .map_err(|_| unauthenticated("the token's customer id is malformed"))?,
            ),
            None => None,
        };
        if role.is_customer_scoped() != customer_id.is_some() {
            return Err(unauthenticated(
                "the token's customer claim does not fit its role",
            ));
        }
        let user_id = text("uid").and_then(|u| UserId::parse(u, "uid").ok());
        let session_id = match text("ioto_sid") {
            Some(sid) => Some(
                SessionId::parse(sid, "ioto_sid")
                    .map_err(|_| unauthenticated("the token's session id is malformed"))?,
            ),
            None => None,
        };
        let issued_at = c
            .get("iat")
            .and_then(serde_json::Value::as_i64)
            .and_then(|t| chrono::DateTime::from_timestamp(t, 0));
        Ok(Actor {
            user_id,
            subject,
            tenant_id,
            role,
            customer_id,
            issued_at,
            api_key: None,
            session_id,
        })
    }

    async fn decoding_key(&self, kid: Option<&str>) -> Result<DecodingKey> {
        match &self.keys {
            Keys::Static(k) => Ok(k.clone()),
            Keys::Jwks { keys, .. } => {
                let kid = kid.ok_or_else(|| unauthenticated("the token names no key id ('kid')"))?;
                if let Some(k) = keys.read().await.0.get(kid) {
                    return Ok(k.clone());
                }
                let stale = keys.read().await.1.is_none_or(|at| at.elapsed() > JWKS_REFRESH);
                if stale {
                    fetch_jwks(&self.keys).await.map_err(|e| {
                        tracing::warn!(error = %e, "JWKS refresh failed");
                        Error::Unavailable("the identity provider's key set".into())
                    })?;
                }
                keys.read()
                    .await
                    .0
                    .get(kid)
                    .cloned()
                    .ok_or_else(|| unauthenticated("the token's signing key is unknown"))
            }
        }
    }
}

async fn fetch_jwks(keys: &Keys) -> anyhow::Result<()> {
    let Keys::Jwks { url, keys, http } = keys else {
        return Ok(());
    };
    let set: JwkSet = http.get(url).send().await?.error_for_status()?.json().await?;
    let mut map = HashMap::new();
    for jwk in &set.keys {
        if let (Some(kid), Ok(key)) = (&jwk.common.key_id, DecodingKey::from_jwk(jwk)) {
            map.insert(kid.clone(), key);
        }
    }
    *keys.write().await = (map, Some(Instant::now()));
    Ok(())
}

/// Extracts the token from an `Authorization: Bearer …` value.
pub fn bearer(value: &str) -> Option<&str> {
    let (scheme, token) = value.trim().split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}

/// Sessions' access tokens through the resolvers' port, each `access_ttl` long.
pub struct JwtIssuer {
    pub jwt: Arc<Jwt>,
    pub access_ttl: Duration,
}

impl TokenIssuer for JwtIssuer {
    fn issues_tokens(&self) -> Result<()> {
        self.jwt.issues_tokens()
    }

    fn issue(&self, user: &User, session: SessionId) -> Result<(String, DateTime<Utc>)> {
        self.jwt.issue_in_session(user, session, self.access_ttl)
    }
}

/// The HS256 secret: configured, or generated once into `<data_dir>/jwt-secret` (mode 0600) so
/// that `ioto serve` and `ioto token issue` with the same data directory agree.
pub fn hs256_secret(configured: Option<&Secret>, data_dir: &Path) -> anyhow::Result<Secret> {
    if let Some(s) = configured {
        return Ok(s.clone());
    }
    let path = data_dir.join("jwt-secret");
    if let Ok(existing) = std::fs::read_to_string(&path) {
        let existing = existing.trim().to_owned();
        if existing.len() >= 32 {
            return Ok(Secret::new(existing));
        }
        bail!(
            "{} holds a secret shorter than 32 bytes; delete it to generate a new one",
            path.display()
        );
    }
    std::fs::create_dir_all(data_dir)
        .with_context(|| format!("creating data directory {}", data_dir.display()))?;
    let secret = random_hex_key();
    write_private(&path, &secret)?;
    Ok(Secret::new(secret))
}

/// Bytes as lower-case hex.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// 32 random bytes from the OS, as hex: a generated signing key.
pub fn random_hex_key() -> String {
    use rand::RngCore;
    let mut bytes = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut bytes);
    hex(&bytes)
}

/// A secret kept in a file of the data directory, generated by `generate` on first use. A file
/// holding less than 32 bytes (empty, cut short) is refused rather than used as a key.
pub fn data_dir_secret(data_dir: &Path, name: &str, generate: fn() -> String) -> anyhow::Result<String> {
    let path = data_dir.join(name);
    if let Ok(existing) = std::fs::read_to_string(&path) {
        let existing = existing.trim().to_owned();
        if existing.len() >= 32 {
            return Ok(existing);
        }
        bail!(
            "{} holds a key shorter than 32 bytes; delete it to generate a new one",
            path.display()
        );
    }
    std::fs::create_dir_all(data_dir)
        .with_context(|| format!("creating data directory {}", data_dir.display()))?;
    let secret = generate();
    write_private(&path, &secret)?;
    Ok(secret)
}

/// Writes a new key file readable by its owner only, whole or not at all: the key goes into a
/// file of its own first, which is then linked under `path` (failing if `path` exists), so a
/// crash never leaves an empty or partial key behind.
#[cfg(unix)]
fn write_private(path: &Path, contents: &str) -> anyhow::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let staged = path.with_extension(format!("new-{}", std::process::id()));
    let _ = std::fs::remove_file(&staged);
    let write = || -> anyhow::Result<()> {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&staged)
            .with_context(|| format!("creating {}", staged.display()))?;
        f.write_all(contents.as_bytes())?;
        f.sync_all()?;
        std::fs::hard_link(&staged, path).with_context(|| format!("creating {}", path.display()))
    };
    let written = write();
    let _ = std::fs::remove_file(&staged);
    written
}

#[cfg(not(unix))]
fn write_private(path: &Path, contents: &str) -> anyhow::Result<()> {
    std::fs::write(path, contents).with_context(|| format!("creating {}", path.display()))
}

/// For an open WebSocket's later checks: as [`authenticate`], except that a token of a sign-in
/// session is held to its session rather than to its own expiry ([`Jwt::verify_open`]).
pub async fn authenticate_open(
    jwt: &Jwt,
    sessions: &crate::server::session::SessionCheck,
    token: &str,
    client: Option<std::net::IpAddr>,
) -> ioto_domain::Result<ioto_domain::Actor> {
    checked(jwt, sessions, token, client, true).await
}

/// A valid token whose user (if it names one) still exists with the claimed role.
pub async fn authenticate(
    jwt: &Jwt,
    sessions: &crate::server::session::SessionCheck,
    token: &str,
    client: Option<std::net::IpAddr>,
) -> ioto_domain::Result<ioto_domain::Actor> {
    checked(jwt, sessions, token, client, false).await
}

/// An API key, or a signed token (held to its session rather than its expiry when `open`),
/// then the caller confirmed.
async fn checked(
    jwt: &Jwt,
    sessions: &crate::server::session::SessionCheck,
    token: &str,
    client: Option<std::net::IpAddr>,
    open: bool,
) -> ioto_domain::Result<ioto_domain::Actor> {
    let actor = if ioto_domain::api_key::is_api_key(token) {
        sessions.directory().authenticate_key(token, client).await?
    } else if open {
        jwt.verify_open(token).await?
    } else {
        jwt.verify(token).await?
    };
    sessions.confirm(&actor).await?;
    Ok(actor)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_parsing() {
        assert_eq!(bearer("Bearer abc"), Some("abc"));
        assert_eq!(bearer("bearer  abc "), Some("abc"));
        assert_eq!(bearer("Basic abc"), None);
        assert_eq!(bearer("Bearer "), None);
    }

    /// An empty key file (a crash between creating and writing it) would make every download
    /// link forgeable: it is refused, naming the file.
    #[test]
    fn a_key_file_shorter_than_32_bytes_is_refused() {
        let dir = std::env::temp_dir().join(format!("ioto-key-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("export-link-key"), "").unwrap();
        let err = data_dir_secret(&dir, "export-link-key", random_hex_key)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("export-link-key") && err.contains("shorter than 32 bytes"),
            "{err}"
        );

        let made = data_dir_secret(&dir, "fresh-key", random_hex_key).unwrap();
        assert_eq!(made.len(), 64);
        assert_eq!(
            data_dir_secret(&dir, "fresh-key", random_hex_key).unwrap(),
            made,
            "kept"
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.join("fresh-key"))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let left: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(left.len(), 2, "no staged file left behind: {left:?}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
