//! The second factor: `verifyMfa`, `startTotpEnrolment`, `confirmTotpEnrolment`, `disableTotp`,
//! `renewRecoveryCodes`, `resetUserMfa`, and `Me.mfa`.

use async_graphql::{Context, Object, SimpleObject, ID};
use ioto_app::Enrollee;
use ioto_domain::UserId;

use crate::context::{actor, services};
use crate::directory::LoginPayload;
use crate::error::{to_gql, GqlResult};

fn client(ctx: &Context<'_>) -> Option<std::net::IpAddr> {
    ctx.data_opt::<crate::RequestContext>().and_then(|r| r.client)
}

/// A second factor being set up: what the authenticator app needs.
#[derive(SimpleObject)]
#[graphql(name = "TotpEnrolment")]
pub struct TotpEnrolmentObject {
    /// The secret in base32, to type into the app.
    pub secret: String,
    /// `otpauth://totp/…`, to scan as a QR code or open on the phone.
    pub otpauth_uri: String,
}

/// A second factor set up.
pub struct TotpConfirmedObject {
    recovery_codes: Vec<String>,
    login: Option<LoginPayload>,
}

#[Object(name = "TotpConfirmed")]
impl TotpConfirmedObject {
    /// Ten codes, each good once instead of the app's code (a lost phone): shown this once.
    async fn recovery_codes(&self) -> &[String] {
        &self.recovery_codes
    }
    /// When the set-up finished a sign-in: its session and tokens.
    async fn login(&self) -> Option<&LoginPayload> {
        self.login.as_ref()
    }
}

/// The caller's second factor.
#[derive(SimpleObject)]
#[graphql(name = "MfaStatus")]
pub struct MfaStatusObject {
    /// Whether signing in asks for a code.
    pub enabled: bool,
    /// Recovery codes not used yet.
    pub recovery_codes_left: i32,
    /// Whether the tenant requires a second factor of every user.
    pub required: bool,
}

impl From<ioto_app::MfaStatus> for MfaStatusObject {
    fn from(s: ioto_app::MfaStatus) -> Self {
        Self {
            enabled: s.enabled,
            recovery_codes_left: i32::try_from(s.recovery_codes_left).unwrap_or(i32::MAX),
            required: s.required,
        }
    }
}

#[derive(Default)]
pub struct MfaMutation;

#[Object]
impl MfaMutation {
    /// Finishes a sign-in that waits for a code (`login` answered `mfa`): the 6 digits the
    /// authenticator app shows, or a recovery code. A code is good once.
    async fn verify_mfa(
        &self,
        ctx: &Context<'_>,
        challenge: String,
        code: String,
    ) -> async_graphql::Result<LoginPayload> {
        let svc = services(ctx);
        svc.tokens.issues_tokens().gql()?;
        let user = svc
            .directory
            .verify_mfa(&challenge, &code, client(ctx))
            .await
            .gql()?;
        crate::directory::types::start(ctx, user).await
    }

    /// Starts setting up an authenticator app: signed in, or with the `challenge` of a sign-in
    /// that has to set one up. Nothing changes for signing in until `confirmTotpEnrolment`.
    async fn start_totp_enrolment(
        &self,
        ctx: &Context<'_>,
        challenge: Option<String>,
    ) -> async_graphql::Result<TotpEnrolmentObject> {
        let svc = services(ctx);
        let setup = match &challenge {
            Some(c) => svc.directory.start_totp_enrolment(Enrollee::SigningIn(c)).await,
            None => {
                svc.directory
                    .start_totp_enrolment(Enrollee::Caller(actor(ctx)?))
                    .await
            }
        }
        .gql()?;
        Ok(TotpEnrolmentObject {
            secret: setup.secret,
            otpauth_uri: setup.otpauth_uri,
        })
    }

    /// Confirms the set-up with the app's current code; answers the recovery codes (and, with a
    /// sign-in's `challenge`, the signed-in session).
    async fn confirm_totp_enrolment(
        &self,
        ctx: &Context<'_>,
        code: String,
        challenge: Option<String>,
    ) -> async_graphql::Result<TotpConfirmedObject> {
        let svc = services(ctx);
        let (user, recovery_codes) = match &challenge {
            Some(c) => {
                svc.tokens.issues_tokens().gql()?;
                svc.directory
                    .confirm_totp_enrolment(Enrollee::SigningIn(c), &code)
                    .await
            }
            None => {
                svc.directory
                    .confirm_totp_enrolment(Enrollee::Caller(actor(ctx)?), &code)
                    .await
            }
        }
        .gql()?;
        let login = match challenge {
            Some(_) => Some(crate::directory::types::start(ctx, user).await?),
            None => None,
        };
        Ok(TotpConfirmedObject {
            recovery_codes,
            login,
        })
    }

    /// Turns the caller's second factor off, with a current code or a recovery code (refused
    /// where the tenant requires one).
    async fn disable_totp(&self, ctx: &Context<'_>, code: String) -> async_graphql::Result<bool> {
        services(ctx)
            .directory
            .disable_totp(actor(ctx)?, &code, client(ctx))
            .await
            .gql()?;
        Ok(true)
    }

    /// New recovery codes for the caller (the old ones stop working), with a current code.
    async fn renew_recovery_codes(
        &self,
        ctx: &Context<'_>,
        code: String,
    ) -> async_graphql::Result<Vec<String>> {
        services(ctx)
            .directory
            .new_recovery_codes(actor(ctx)?, &code, client(ctx))
            .await
            .gql()
    }

    /// TENANT_ADMIN: removes a user's second factor (a lost phone); their sessions end.
    async fn reset_user_mfa(&self, ctx: &Context<'_>, user_id: ID) -> async_graphql::Result<bool> {
        let id = UserId::parse(&user_id, "userId").map_err(to_gql)?;
        services(ctx)
            .directory
            .reset_user_mfa(actor(ctx)?, id)
            .await
            .gql()?;
        Ok(true)
    }
}
