//! Per-request confirmation that a token's user (or an API key) still exists with the claimed
//! role, cached for a few seconds per user or key so that the check costs one read per caller
//! per interval, not per request.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use ioto_app::DirectoryService;
use ioto_domain::{Actor, Result};

pub struct SessionCheck {
    directory: DirectoryService,
    ttl: Duration,
    confirmed: Mutex<HashMap<String, Instant>>,
}

impl SessionCheck {
    pub fn new(directory: DirectoryService, ttl: Duration) -> Self {
        Self {
            directory,
            ttl,
            confirmed: Mutex::new(HashMap::new()),
        }
    }

    /// Who is confirmed: a user or a key, with the claims confirmed. The role, customer and
    /// issue time are part of it: a token with other claims is checked afresh (an old token is
    /// not confirmed by a newer one's check). `None`: nothing to confirm (a service token).
    fn key(actor: &Actor) -> Option<String> {
        let who = match (actor.api_key, actor.user_id) {
            (Some(key), _) => format!("key:{key}"),
            (None, Some(user)) => format!("user:{user}"),
            (None, None) => return None,
        };
        Some(format!(
            "{who}:{}:{}:{:?}:{:?}:{:?}",
            actor.tenant_id,
            actor.role,
            actor.customer_id,
            actor.issued_at.map(|t| t.timestamp()),
            actor.session_id,
        ))
    }

    /// The directory that checks users and API keys.
    pub fn directory(&self) -> &DirectoryService {
        &self.directory
    }

    /// How long a confirmation is reused: the cadence at which open connections are re-checked.
    pub fn every(&self) -> Duration {
        self.ttl
    }

    pub async fn confirm(&self, actor: &Actor) -> Result<()> {
        let Some(key) = Self::key(actor) else {
            return Ok(());
        };
        // A session ended on this instance is refused at once, whatever was confirmed before.
        if let Some(why) = actor
            .session_id
            .and_then(|s| self.directory.session_ended_here(s))
        {
            return Err(ioto_domain::Error::Unauthenticated(why.sentence().into()));
        }
        {
            let confirmed = self
                .confirmed
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if confirmed.get(&key).is_some_and(|at| at.elapsed() < self.ttl) {
                return Ok(());
            }
        }
        self.directory.confirm_actor(actor).await?;
        let mut confirmed = self
            .confirmed
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if confirmed.len() > 100_000 {
            let ttl = self.ttl;
            confirmed.retain(|_, at| at.elapsed() < ttl);
        }
        confirmed.insert(key, Instant::now());
        Ok(())
    }
}
