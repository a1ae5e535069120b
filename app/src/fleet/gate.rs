//! The network's capacity, shared fairly between tenants.
//!
//! Every request to the network holds a slot of the gate while it is in flight. When all slots
//! are taken, waiters queue per tenant and a freed slot goes to the next tenant in turn (round
//! robin), not to the longest queue: a tenant with one request waits for one slot to free, however
//! many rows another tenant's job has queued.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex};

use tokio::sync::oneshot;

use ioto_domain::TenantId;

struct State {
    free: usize,
    waiting: BTreeMap<TenantId, VecDeque<oneshot::Sender<GatePermit>>>,
    /// The tenant served last; the next slot goes to the one after it.
    last: Option<TenantId>,
}

struct Inner {
    capacity: usize,
    state: Mutex<State>,
}

/// Slots of network capacity, handed out fairly between tenants. Cheap to clone.
#[derive(Clone)]
pub struct FairGate(Arc<Inner>);

/// A held slot; dropping it frees the slot for the next tenant in turn.
pub struct GatePermit {
    gate: Option<Arc<Inner>>,
}

impl Drop for GatePermit {
    fn drop(&mut self) {
        if let Some(inner) = self.gate.take() {
            release(&inner);
        }
    }
}

fn lock(inner: &Inner) -> std::sync::MutexGuard<'_, State> {
    // The state is plain counters and queues; a panic elsewhere leaves it consistent.
    inner
        .state
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Hands a freed slot to the next waiting tenant after the last one served, or back to the pool.
fn release(inner: &Arc<Inner>) {
    let mut st = lock(inner);
    loop {
        let next = {
            let after = st
                .last
                .and_then(|l| {
                    st.waiting
                        .range((std::ops::Bound::Excluded(l), std::ops::Bound::Unbounded))
                        .next()
                })
                .map(|(t, _)| *t);
            after.or_else(|| st.waiting.keys().next().copied())
        };
        let Some(tenant) = next else {
            st.free += 1;
            return;
        };
        let Some(queue) = st.waiting.get_mut(&tenant) else {
            continue;
        };
        let waiter = queue.pop_front();
        if queue.is_empty() {
            st.waiting.remove(&tenant);
        }
        st.last = Some(tenant);
        let Some(waiter) = waiter else { continue };
        let permit = GatePermit {
            gate: Some(Arc::clone(inner)),
        };
        match waiter.send(permit) {
            Ok(()) => return,
            // The waiter gave up; its permit comes back here. Forget it without releasing
            // (this loop hands the slot on) and try the next waiter.
            Err(mut p) => {
                p.gate = None;
            }
        }
    }
}

impl FairGate {
    pub fn new(capacity: usize) -> Self {
        let capacity = capacity.max(1);
        Self(Arc::new(Inner {
            capacity,
            state: Mutex::new(State {
                free: capacity,
                waiting: BTreeMap::new(),
                last: None,
            }),
        }))
    }

    pub fn capacity(&self) -> usize {
        self.0.capacity
    }

    /// Slots in use or promised.
    pub fn in_use(&self) -> usize {
        self.0.capacity - lock(&self.0).free
    }

    /// Waits for a slot for `tenant`.
    pub async fn acquire(&self, tenant: TenantId) -> GatePermit {
        let rx = {
            let mut st = lock(&self.0);
            if st.free > 0 && st.waiting.is_empty() {
                st.free -= 1;
                return GatePermit {
                    gate: Some(Arc::clone(&self.0)),
                };
            }
            let (tx, rx) = oneshot::channel();
            st.waiting.entry(tenant).or_default().push_back(tx);
            rx
        };
        match rx.await {
            Ok(p) => p,
            // Senders live in the gate, which this handle keeps alive; a dropped sender means a
            // bug. Take a slot outside the queue rather than hang.
            Err(_) => GatePermit { gate: None },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use uuid::Uuid;

    #[tokio::test]
    async fn a_tenant_with_one_request_is_served_before_another_tenants_queue() {
        let gate = FairGate::new(1);
        let big = TenantId(Uuid::from_u128(1));
        let small = TenantId(Uuid::from_u128(2));
        let held = gate.acquire(big).await;
        let order = Arc::new(Mutex::new(Vec::new()));
        let mut tasks = Vec::new();
        for i in 0..5 {
            let (gate, order) = (gate.clone(), Arc::clone(&order));
            tasks.push(tokio::spawn(async move {
                let _p = gate.acquire(big).await;
                order
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .push(format!("big{i}"));
                tokio::task::yield_now().await;
            }));
            tokio::task::yield_now().await;
        }
        {
            let (gate, order) = (gate.clone(), Arc::clone(&order));
            tasks.push(tokio::spawn(async move {
                let _p = gate.acquire(small).await;
                order
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .push("small".to_owned());
            }));
        }
        tokio::task::yield_now().await;
        drop(held);
        for t in tasks {
            t.await.expect("task");
        }
        let order = order
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone();
        let small_at = order.iter().position(|o| o == "small").expect("served");
        assert!(
            small_at <= 1,
            "the small tenant waited behind the big queue: {order:?}"
        );
        assert_eq!(gate.in_use(), 0, "every slot came back");
    }

    #[tokio::test]
    async fn a_waiter_that_gives_up_does_not_lose_the_slot() {
        let gate = FairGate::new(1);
        let t = TenantId(Uuid::from_u128(1));
        let held = gate.acquire(t).await;
        let waiting = tokio::time::timeout(std::time::Duration::from_millis(10), gate.acquire(t)).await;
        assert!(waiting.is_err(), "no slot while one is held");
        drop(held);
        let again = tokio::time::timeout(std::time::Duration::from_millis(100), gate.acquire(t)).await;
        assert!(again.is_ok(), "the slot came back after the waiter gave up");
    }
}
