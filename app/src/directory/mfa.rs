//! The second factor: signing in with a TOTP code after the password, setting it up (when
//! signed in, or during a sign-in the tenant asks a second factor of), recovery codes, turning it
//! off, and an administrator's reset for a lost device. See `ioto_domain::mfa`.

use std::net::IpAddr;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use ioto_domain::directory::User;
use ioto_domain::fleet::secret::{Sealed, SecretCipher};
use ioto_domain::mfa::{self, Challenge, ChallengePurpose, ChallengeToken, MfaRecord, TotpSecret};
use ioto_domain::{Actor, Error, Result, Scope, UserId};

use super::DirectoryService;

/// What a right password leads to.
#[derive(Debug, Clone)]
pub enum SignIn {
    /// Signed in: start the session.
    Done(User),
    /// A second step first: a code (`SignIn`), or setting up a factor (`Enrol`), answered with
    /// `token` before `expires_at`.
    Challenged {
        user: User,
        token: ChallengeToken,
        purpose: ChallengePurpose,
        expires_at: DateTime<Utc>,
    },
}

/// A factor being set up: what the authenticator app needs.
#[derive(Debug, Clone)]
pub struct TotpSetup {
    /// Base32, to type in.
    pub secret: String,
    /// `otpauth://…`, to scan or open.
    pub otpauth_uri: String,
}

/// Whose factor is set up: the signed-in caller's, or the user of a sign-in that has to set one
/// up before it finishes.
#[derive(Debug, Clone, Copy)]
pub enum Enrollee<'a> {
    Caller(&'a Actor),
    SigningIn(&'a str),
}

/// The caller's second factor, as shown to them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MfaStatus {
    pub enabled: bool,
    pub recovery_codes_left: u32,
    /// Whether the tenant asks every user for one.
    pub required: bool,
}

/// The issuer an authenticator app shows beside the account.
const ISSUER: &str = "Ioto";
/// The field a sealed secret is bound to (with the user's id).
const SEALED_AS: &str = "totp";

impl DirectoryService {
    /// Seals second-factor secrets with `cipher` (the server's fleet secret key).
    pub fn with_secret_cipher(mut self, cipher: Arc<SecretCipher>) -> Self {
        self.secrets = Some(cipher);
        self
    }

    fn cipher(&self) -> Result<&SecretCipher> {
        self.secrets
            .as_deref()
            .ok_or_else(|| Error::Unavailable("second factors (this server has no secret key)".into()))
    }

    fn open_secret(&self, user: UserId, record: &MfaRecord) -> Result<TotpSecret> {
        let plain = self.cipher()?.open(
            &user.to_string(),
            SEALED_AS,
            &Sealed::from_stored(record.sealed_secret.clone()),
        )?;
        TotpSecret::from_base32(&plain)
    }

    /// Checks e-mail and password (as [`DirectoryService::login`]) and says what comes next: a
    /// user with a second factor answers a code, a user of a tenant that requires one sets one up.
    pub async fn sign_in(&self, email: &str, password: &str, client: Option<IpAddr>) -> Result<SignIn> {
        let (_, user) = self.login(email, password, client).await?;
        let scope = user.scope();
        let has = self
            .store
            .mfa(scope, user.id)
            .await?
            .is_some_and(|m| m.confirmed_at.is_some());
        let purpose = if has {
            ChallengePurpose::SignIn
        } else if self.store.mfa_required(scope, user.tenant_id).await? {
            ChallengePurpose::Enrol
        } else {
            return Ok(SignIn::Done(user));
        };
        let now = Utc::now();
        let token = ChallengeToken::generate();
        let challenge = Challenge {
            tenant_id: user.tenant_id,
            customer_id: user.customer_id,
            user_id: user.id,
            purpose,
            expires_at: mfa::challenge_expiry(now),
            attempts: 0,
            used_at: None,
        };
        self.store
            .create_challenge(&token.hash(), &challenge, now)
            .await?;
        Ok(SignIn::Challenged {
            user,
            token,
            purpose,
            expires_at: challenge.expires_at,
        })
    }

    /// A challenge that can still be answered, with its user.
    async fn open_challenge(&self, token: &str) -> Result<(String, Challenge, User)> {
        let hash = ChallengeToken::check(token)?.hash();
        let challenge = self
            .store
            .challenge(&hash)
            .await?
            .ok_or_else(|| Error::Unauthenticated("this sign-in is not known; sign in again".into()))?;
        challenge.open(Utc::now())?;
        let scope = Scope::Tenant {
            tenant_id: challenge.tenant_id,
            customer_id: challenge.customer_id,
        };
        let user = self
            .store
            .user(scope, challenge.user_id)
            .await?
            .ok_or_else(|| Error::Unauthenticated("the user of this sign-in no longer exists".into()))?;
        Ok((hash, challenge, user))
    }

    /// Whether `code` (six digits, or a recovery code) is a good second factor of `user` now;
    /// a good one is used up. Wrong codes count against the factor (every fifth in a row locks
    /// it for a while, `mfa::lockout`) and in the sign-in throttle of the user's e-mail.
    async fn second_factor_holds(&self, user: &User, code: &str, client: Option<IpAddr>) -> Result<bool> {
        let scope = user.scope();
        let Some(record) = self.store.mfa(scope, user.id).await? else {
            return Ok(false);
        };
        if record.confirmed_at.is_none() {
            return Ok(false);
        }
        let now = Utc::now();
        if let Some(until) = record.locked_until.filter(|u| *u > now) {
            let minutes = (until - now).num_minutes() + 1;
            return Err(Error::RateLimited(format!(
                "too many wrong codes for this account: codes are checked again in {minutes} min"
            )));
        }
        let attempt = self
            .throttle
            .begin(user.email.as_str(), client)
            .map_err(|refused| Error::RateLimited(refused.message()))?;
        let held = if let Ok(digits) = mfa::parse_code(code, "code") {
            match self
                .open_secret(user.id, &record)?
                .matching_step(&digits, Utc::now())
            {
                Some(step) => self.store.accept_totp_step(scope, user.id, step).await?,
                None => false,
            }
        } else if let Some(recovery) = mfa::normalize_recovery(code) {
            self.store
                .use_recovery_code(scope, user.id, &mfa::hash(&recovery), Utc::now())
                .await?
        } else {
            return Err(Error::invalid(
                "code",
                "must be the 6 digits your authenticator app shows, or one of your recovery codes (xxxx-xxxx-xxxx)",
            ));
        };
        if held {
            attempt.succeeded();
            if record.failures > 0 {
                self.store.second_factor_passed(scope, user.id).await?;
            }
        } else {
            attempt.failed();
            if let Some(until) = self
                .store
                .second_factor_failed(scope, user.id, Utc::now())
                .await?
            {
                tracing::warn!(user = %user.id, until = %until, client = ?client, "a second factor is locked after wrong codes");
            }
        }
        Ok(held)
    }

    /// Finishes a sign-in with its second factor: answers the user to start the session for.
    pub async fn verify_mfa(&self, token: &str, code: &str, client: Option<IpAddr>) -> Result<User> {
        let (hash, challenge, user) = self.open_challenge(token).await?;
        if challenge.purpose != ChallengePurpose::SignIn {
            return Err(Error::Conflict(
                "this sign-in sets up a second factor first (startTotpEnrolment, then confirmTotpEnrolment)"
                    .into(),
            ));
        }
        if !self.store.claim_challenge_attempt(&challenge, &hash).await? {
            return Err(Error::Unauthenticated(
                "too many wrong codes for this sign-in; sign in again".into(),
            ));
        }
        // A wrong code is the answer's fault, not the sign-in's: it may be typed again.
        if !self.second_factor_holds(&user, code, client).await? {
            return Err(Error::invalid(
                "code",
                "is wrong or was used already; wait for the app's next code, or use a recovery code",
            ));
        }
        if !self.store.finish_challenge(&challenge, &hash, Utc::now()).await? {
            return Err(Error::Unauthenticated(
                "this sign-in was finished already; sign in again".into(),
            ));
        }
        Ok(user)
    }

    /// The user a set-up is for, and the sign-in's challenge when it is part of one.
    async fn enrollee(&self, who: Enrollee<'_>) -> Result<(User, Option<(String, Challenge)>)> {
        match who {
            Enrollee::Caller(actor) => {
                Self::person_only(actor, "set up a second factor")?;
                let id = actor.user_id.ok_or_else(|| {
                    Error::Forbidden(
                        "this token belongs to no user; there is nobody to set a second factor up for".into(),
                    )
                })?;
                let user = self
                    .store
                    .user(actor.scope(), id)
                    .await?
                    .ok_or_else(|| Error::not_found("user", id))?;
                Ok((user, None))
            }
            Enrollee::SigningIn(token) => {
                let (hash, challenge, user) = self.open_challenge(token).await?;
                if challenge.purpose != ChallengePurpose::Enrol {
                    return Err(Error::Conflict(
                        "this sign-in asks for a code (verifyMfa); a second factor is set up already".into(),
                    ));
                }
                Ok((user, Some((hash, challenge))))
            }
        }
    }

    /// Starts setting up a TOTP factor: answers the secret for the authenticator app. Nothing
    /// changes for signing in until a first code confirms it.
    pub async fn start_totp_enrolment(&self, who: Enrollee<'_>) -> Result<TotpSetup> {
        let (user, _) = self.enrollee(who).await?;
        let secret = TotpSecret::generate();
        let sealed = self
            .cipher()?
            .seal(&user.id.to_string(), SEALED_AS, &secret.base32())?;
        self.store
            .start_totp(&user, sealed.as_stored().to_owned(), Utc::now())
            .await?;
        Ok(TotpSetup {
            secret: secret.base32(),
            otpauth_uri: secret.otpauth_uri(ISSUER, user.email.as_str()),
        })
    }

    /// Confirms the set-up with the app's current code: from now on signing in asks for a code.
    /// Answers the user (to start a session when it finishes a sign-in) and ten recovery codes,
    /// shown this once.
    pub async fn confirm_totp_enrolment(&self, who: Enrollee<'_>, code: &str) -> Result<(User, Vec<String>)> {
        let (user, challenge) = self.enrollee(who).await?;
        let digits = mfa::parse_code(code, "code")?;
        let record = self
            .store
            .mfa(user.scope(), user.id)
            .await?
            .filter(|m| m.confirmed_at.is_none())
            .ok_or_else(|| {
                Error::Conflict("there is no set-up of a second factor to confirm; start one first".into())
            })?;
        if let Some((hash, c)) = &challenge {
            if !self.store.claim_challenge_attempt(c, hash).await? {
                return Err(Error::Unauthenticated(
                    "too many wrong codes for this sign-in; sign in again".into(),
                ));
            }
        }
        let Some(step) = self
            .open_secret(user.id, &record)?
            .matching_step(&digits, Utc::now())
        else {
            return Err(Error::invalid(
                "code",
                "is not the code the app shows now; check that the device's clock is right",
            ));
        };
        let codes = mfa::recovery_codes();
        let hashes = mfa::recovery_hashes(&codes);
        self.store.confirm_totp(&user, step, &hashes, Utc::now()).await?;
        if let Some((hash, c)) = &challenge {
            if !self.store.finish_challenge(c, hash, Utc::now()).await? {
                return Err(Error::Unauthenticated(
                    "this sign-in was finished already; sign in again".into(),
                ));
            }
        }
        Ok((user, codes))
    }

    /// The signed-in caller's user, with the factor checked by `code`.
    async fn caller_with_code(
        &self,
        actor: &Actor,
        code: &str,
        action: &str,
        client: Option<IpAddr>,
    ) -> Result<User> {
        Self::person_only(actor, action)?;
        let id = actor.user_id.ok_or_else(|| {
            Error::Forbidden(format!(
                "this token belongs to no user; there is no second factor to {action}"
            ))
        })?;
        let user = self
            .store
            .user(actor.scope(), id)
            .await?
            .ok_or_else(|| Error::not_found("user", id))?;
        if !self.second_factor_holds(&user, code, client).await? {
            return Err(Error::invalid(
                "code",
                "is wrong or was used already (or no second factor is set up)",
            ));
        }
        Ok(user)
    }

    /// Turns the caller's second factor off, with a current code or a recovery code; refused
    /// where the tenant requires one.
    pub async fn disable_totp(&self, actor: &Actor, code: &str, client: Option<IpAddr>) -> Result<()> {
        if self.store.mfa_required(actor.scope(), actor.tenant_id).await? {
            return Err(Error::Forbidden(
                "your tenant requires a second factor; it can be replaced (ask an administrator to reset it) but not turned off".into(),
            ));
        }
        let user = self.caller_with_code(actor, code, "turn off", client).await?;
        self.store.remove_totp(user.scope(), user.id).await.map(|_| ())
    }

    /// Replaces the caller's recovery codes (the old ones stop working); answers the new ones,
    /// shown this once.
    pub async fn new_recovery_codes(
        &self,
        actor: &Actor,
        code: &str,
        client: Option<IpAddr>,
    ) -> Result<Vec<String>> {
        let user = self
            .caller_with_code(actor, code, "renew recovery codes of", client)
            .await?;
        let codes = mfa::recovery_codes();
        let hashes = mfa::recovery_hashes(&codes);
        self.store.replace_recovery_codes(&user, &hashes).await?;
        Ok(codes)
    }

    /// An administrator removes another user's second factor (a lost device): the user's
    /// sessions end, and the next sign-in sets up a new factor where the tenant requires one.
    pub async fn reset_user_mfa(&self, actor: &Actor, id: UserId) -> Result<()> {
        let user = self
            .managed_user(
                actor,
                id,
                "reset the second factor",
                "turn your own second factor off with a code instead",
            )
            .await?;
        // The sessions end first: should the removal fail after, the factor is still there.
        self.end_user_sessions_because(&user, None, ioto_domain::account::SessionEnd::FactorReset)
            .await?;
        self.store.remove_totp(user.scope(), user.id).await.map(|_| ())
    }

    /// The caller's second factor, as shown to them.
    pub async fn mfa_status(&self, actor: &Actor) -> Result<MfaStatus> {
        let required = self.store.mfa_required(actor.scope(), actor.tenant_id).await?;
        let record = match actor.user_id {
            Some(id) => self.store.mfa(actor.scope(), id).await?,
            None => None,
        };
        let enabled = record.as_ref().is_some_and(|m| m.confirmed_at.is_some());
        Ok(MfaStatus {
            enabled,
            recovery_codes_left: record.filter(|_| enabled).map_or(0, |m| m.recovery_left),
            required,
        })
    }
}
