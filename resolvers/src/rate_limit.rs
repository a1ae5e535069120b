//! Per-tenant and per-caller rate limits: token buckets charged with each operation's
//! complexity (what the schema computes before running it; at least 1), so a page of 500 nested
//! SIMs costs what it weighs and `me` almost nothing.
//!
//! Every operation is charged to two buckets: the caller's own (by token subject; its size set
//! by role) and the tenant's (shared by all its users). Both must hold the cost, or the operation
//! is refused before it runs with `RATE_LIMITED`, how long to wait (`retryAfter`) and which limit
//! was hit. Buckets live in each server instance: with several instances behind a balancer a
//! client may get up to instances × the limit (see `rate_limit` in docs/configuration.md).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use ioto_domain::{Actor, Role, TenantId};

/// A bucket's size: points refilled per second and the most it holds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rate {
    pub per_second: f64,
    pub burst: f64,
}

/// The limits of a deployment.
#[derive(Debug, Clone, PartialEq)]
pub struct RateLimits {
    pub enabled: bool,
    /// Per caller, by role.
    pub platform_admin: Rate,
    pub tenant_admin: Rate,
    pub operator: Rate,
    pub customer_user: Rate,
    pub viewer: Rate,
    /// All callers of one tenant together.
    pub tenant: Rate,
    /// Callers without a token, per client address (login, public fields).
    pub anonymous: Rate,
}

impl Default for RateLimits {
    fn default() -> Self {
        let rate = |per_second: f64| Rate {
            per_second,
            burst: per_second * 5.0,
        };
        Self {
            enabled: true,
            platform_admin: rate(20_000.0),
            tenant_admin: rate(20_000.0),
            operator: rate(20_000.0),
            customer_user: rate(5_000.0),
            viewer: rate(5_000.0),
            tenant: rate(50_000.0),
            anonymous: rate(1_000.0),
        }
    }
}

impl RateLimits {
    pub fn for_role(&self, role: Role) -> Rate {
        match role {
            Role::PlatformAdmin => self.platform_admin,
            Role::TenantAdmin => self.tenant_admin,
            Role::Operator => self.operator,
            Role::CustomerUser => self.customer_user,
            Role::Viewer => self.viewer,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Key {
    Caller(TenantId, String),
    Tenant(TenantId),
    Address(std::net::IpAddr),
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    points: f64,
    at: Instant,
}

impl Bucket {
    fn refill(&mut self, rate: Rate, now: Instant) {
        let gained = now.saturating_duration_since(self.at).as_secs_f64() * rate.per_second;
        self.points = (self.points + gained).min(rate.burst);
        self.at = now;
    }

    /// How long until it holds `cost` (zero when it does).
    fn wait_for(&self, rate: Rate, cost: f64) -> Duration {
        if self.points >= cost {
            return Duration::ZERO;
        }
        if rate.per_second <= 0.0 {
            return Duration::from_secs(3600);
        }
        Duration::from_secs_f64((cost - self.points) / rate.per_second)
    }
}

/// What a charge decided, with the numbers for the `RateLimit-*` headers (of the tighter bucket).
#[derive(Debug, Clone, PartialEq)]
pub struct Decision {
    pub allowed: bool,
    /// Which limit: `caller`, `tenant` or `address`.
    pub scope: &'static str,
    pub limit: u64,
    pub remaining: u64,
    /// Seconds until the bucket is full again (`RateLimit-Reset`).
    pub reset: u64,
    /// When refused: how long to wait before the same operation would pass.
    pub retry_after: Duration,
}

/// Buckets of one server instance.
pub struct RateLimiter {
    limits: RateLimits,
    buckets: Mutex<HashMap<Key, Bucket>>,
    charges: Mutex<u64>,
}

/// Buckets are pruned every this many charges (those full again are forgotten).
const PRUNE_EVERY: u64 = 10_000;

impl RateLimiter {
    pub fn new(limits: RateLimits) -> Self {
        Self {
            limits,
            buckets: Mutex::new(HashMap::new()),
            charges: Mutex::new(0),
        }
    }

    pub fn limits(&self) -> &RateLimits {
        &self.limits
    }

    /// Charges `cost` points for an operation of `actor` (or of an anonymous caller at
    /// `address`); `None` when limits are off.
    pub fn charge(
        &self,
        actor: Option<&Actor>,
        address: Option<std::net::IpAddr>,
        cost: u64,
        now: Instant,
    ) -> Option<Decision> {
        if !self.limits.enabled {
            return None;
        }
        let cost = cost.max(1) as f64;
        let keys: Vec<(Key, Rate, &'static str)> = match (actor, address) {
            (Some(a), _) => vec![
                (
                    Key::Caller(a.tenant_id, a.subject.clone()),
                    self.limits.for_role(a.role),
                    "caller",
                ),
                (Key::Tenant(a.tenant_id), self.limits.tenant, "tenant"),
            ],
            (None, Some(ip)) => vec![(Key::Address(ip), self.limits.anonymous, "address")],
            (None, None) => return None,
        };
        let mut buckets = self
            .buckets
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut state: Vec<Bucket> = keys
            .iter()
            .map(|(k, rate, _)| {
                let mut b = buckets.get(k).copied().unwrap_or(Bucket {
                    points: rate.burst,
                    at: now,
                });
                b.refill(*rate, now);
                b
            })
            .collect();
        // The bucket that waits longest decides; a cost larger than a bucket ever holds can
        // never pass, and says so through a wait of the whole refill.
        let (worst, wait) = keys
            .iter()
            .zip(&state)
            .enumerate()
            .map(|(i, ((_, rate, _), b))| (i, b.wait_for(*rate, cost.min(rate.burst))))
            .max_by_key(|(_, w)| *w)
            .unwrap_or((0, Duration::ZERO));
        let allowed = wait.is_zero();
        if allowed {
            for b in &mut state {
                b.points -= cost;
            }
        }
        for ((k, _, _), b) in keys.iter().zip(&state) {
            buckets.insert(k.clone(), *b);
        }
        // The tightest bucket after the charge, for the headers.
        let (tight, (_, rate, scope)) = state
            .iter()
            .zip(&keys)
            .enumerate()
            .min_by(|(_, (a, _)), (_, (b, _))| a.points.total_cmp(&b.points))
            .map(|(i, (_, k))| (i, k))
            .unwrap_or((0, &keys[0]));
        let tight_bucket = state[tight];
        let (worst_rate, worst_scope) = (keys[worst].1, keys[worst].2);
        let decision = if allowed {
            Decision {
                allowed,
                scope,
                limit: rate.burst as u64,
                remaining: tight_bucket.points.max(0.0) as u64,
                reset: ((rate.burst - tight_bucket.points.max(0.0)) / rate.per_second).ceil() as u64,
                retry_after: Duration::ZERO,
            }
        } else {
            let b = state[worst];
            Decision {
                allowed,
                scope: worst_scope,
                limit: worst_rate.burst as u64,
                remaining: b.points.max(0.0) as u64,
                reset: ((worst_rate.burst - b.points.max(0.0)) / worst_rate.per_second).ceil() as u64,
                retry_after: wait,
            }
        };
        drop(buckets);
        self.prune(now);
        Some(decision)
    }

    fn prune(&self, now: Instant) {
        let mut n = self
            .charges
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        *n += 1;
        if *n % PRUNE_EVERY != 0 {
            return;
        }
        drop(n);
        let limits = &self.limits;
        let mut buckets = self
            .buckets
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        buckets.retain(|k, b| {
            let rate = match k {
                Key::Tenant(_) => limits.tenant,
                Key::Address(_) => limits.anonymous,
                // The role is not in the key; the smallest refill is the safe guess.
                Key::Caller(..) => limits.customer_user,
            };
            let mut b = *b;
            b.refill(rate, now);
            b.points < rate.burst
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use uuid::Uuid;

    fn actor(tenant: u128, subject: &str, role: Role) -> Actor {
        Actor {
            user_id: None,
            subject: subject.into(),
            tenant_id: TenantId(Uuid::from_u128(tenant)),
            role,
            customer_id: None,
            issued_at: None,
            api_key: None,
            session_id: None,
        }
    }

    fn limits() -> RateLimits {
        let r = |per_second: f64, burst: f64| Rate { per_second, burst };
        RateLimits {
            enabled: true,
            platform_admin: r(100.0, 100.0),
            tenant_admin: r(100.0, 100.0),
            operator: r(100.0, 100.0),
            customer_user: r(10.0, 10.0),
            viewer: r(10.0, 10.0),
            tenant: r(150.0, 150.0),
            anonymous: r(5.0, 5.0),
        }
    }

    #[test]
    fn a_caller_is_limited_by_its_bucket_and_refills_over_time() {
        let l = RateLimiter::new(limits());
        let a = actor(1, "a", Role::Operator);
        let t0 = Instant::now();
        let d = l.charge(Some(&a), None, 60, t0).unwrap();
        assert!(d.allowed);
        assert_eq!((d.scope, d.remaining), ("caller", 40));
        let d = l.charge(Some(&a), None, 60, t0).unwrap();
        assert!(!d.allowed, "{d:?}");
        assert_eq!(d.scope, "caller");
        assert!((d.retry_after.as_secs_f64() - 0.2).abs() < 1e-6, "{d:?}");
        // A fifth of a second later 20 more points are there.
        let d = l
            .charge(Some(&a), None, 60, t0 + Duration::from_millis(200))
            .unwrap();
        assert!(d.allowed, "{d:?}");
    }

    #[test]
    fn callers_of_one_tenant_share_its_bucket_and_other_tenants_do_not() {
        let l = RateLimiter::new(limits());
        let t0 = Instant::now();
        assert!(
            l.charge(Some(&actor(1, "a", Role::Operator)), None, 90, t0)
                .unwrap()
                .allowed
        );
        let d = l
            .charge(Some(&actor(1, "b", Role::Operator)), None, 90, t0)
            .unwrap();
        assert!(!d.allowed);
        assert_eq!(d.scope, "tenant");
        assert!(
            l.charge(Some(&actor(2, "c", Role::Operator)), None, 90, t0)
                .unwrap()
                .allowed
        );
    }

    #[test]
    fn roles_have_their_own_sizes_and_anonymous_callers_go_by_address() {
        let l = RateLimiter::new(limits());
        let t0 = Instant::now();
        let viewer = actor(1, "v", Role::Viewer);
        assert!(l.charge(Some(&viewer), None, 8, t0).unwrap().allowed);
        let d = l.charge(Some(&viewer), None, 8, t0).unwrap();
        assert!(!d.allowed, "a viewer's bucket holds 10: {d:?}");
        let ip: std::net::IpAddr = "10.0.0.1".parse().unwrap();
        assert!(l.charge(None, Some(ip), 5, t0).unwrap().allowed);
        let d = l.charge(None, Some(ip), 1, t0).unwrap();
        assert_eq!((d.allowed, d.scope), (false, "address"));
        let off = RateLimiter::new(RateLimits {
            enabled: false,
            ..limits()
        });
        assert_eq!(off.charge(None, Some(ip), 1_000_000, t0), None);
    }
}
