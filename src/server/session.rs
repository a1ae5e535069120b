//! Per-request confirmation that a token's user still exists with the claimed role, cached for a
//! few seconds per user so that the check costs one read per user per interval, not per request.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use ioto_app::DirectoryService;
use ioto_domain::{Actor, Result, UserId};

pub struct SessionCheck {
    directory: DirectoryService,
    ttl: Duration,
    confirmed: Mutex<HashMap<(UserId, String), Instant>>,
}

impl SessionCheck {
    pub fn new(directory: DirectoryService, ttl: Duration) -> Self {
        Self {
            directory,
            ttl,
            confirmed: Mutex::new(HashMap::new()),
        }
    }

    fn key(actor: &Actor, user: UserId) -> (UserId, String) {
        // The role, customer and issue time are part of the key: a token with other claims is
        // checked afresh (an old token is not confirmed by a newer one's check).
        (
            user,
            format!(
                "{}:{}:{:?}:{:?}",
                actor.tenant_id,
                actor.role,
                actor.customer_id,
                actor.issued_at.map(|t| t.timestamp())
            ),
        )
    }

    /// How long a confirmation is reused: the cadence at which open connections are re-checked.
    pub fn every(&self) -> Duration {
        self.ttl
    }

    pub async fn confirm(&self, actor: &Actor) -> Result<()> {
        let Some(user) = actor.user_id else { return Ok(()) };
        let key = Self::key(actor, user);
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
