//! The `NotificationStore` port contract, on Postgres and SQLite.

use super::open;
use std::collections::{HashMap, HashSet};
use std::fmt::Debug;
use std::sync::Arc;

use chrono::{DateTime, Duration, SubsecRound, Utc};
use ioto_domain::fleet::bulk::{BulkJob, BulkJobStatus, BulkSource};
use ioto_domain::fleet::NetworkAction;
use ioto_domain::notify::{
    Delivery, DeliveryAttempt, DeliveryQuery, DeliveryStatus, Notification, NotificationKind,
    NotificationQuery, WebhookEndpoint,
};
use ioto_domain::ports::{BulkJobStore, BulkStatusChange, NotificationStore};
use ioto_domain::{Error, Role, Scope, TenantId, UserId};
use ioto_store::{SqlFleet, StoreLocation};
use ioto_test_support::{pg, temp_dir, Factory};
use uuid::Uuid;

use DeliveryStatus::{Delivered, Failed, Pending};

/// Now, to the microsecond both engines keep: a time written is read back equal.
fn now() -> DateTime<Utc> {
    Utc::now().trunc_subsecs(6)
}

fn secs(n: i64) -> Duration {
    Duration::seconds(n)
}

#[track_caller]
fn not_found<T: Debug>(r: ioto_domain::Result<T>, why: &str) {
    let ok = matches!(r, Err(Error::NotFound { .. }));
    assert!(ok, "{why}: expected NOT_FOUND, got {r:?}");
}

/// A bulk job of `by` (none: a token's) cancelled at `at`; its end writes its notification
/// unless its caller waited for it (`notify` off).
async fn ended_job(
    fleet: &SqlFleet,
    tenant: TenantId,
    by: Option<UserId>,
    at: DateTime<Utc>,
    notify: bool,
) -> BulkJob {
    let job = BulkJob {
        id: Uuid::new_v4(),
        tenant_id: tenant,
        source: BulkSource::File,
        file_name: Some("sims.csv".into()),
        action: Some(NetworkAction::Suspend),
        status: BulkJobStatus::AwaitingConfirmation,
        total: 0,
        valid: 0,
        invalid: 0,
        already_in_state: 0,
        processed: 0,
        succeeded: 0,
        failed: 0,
        skipped: 0,
        created_by: "contract".into(),
        created_by_user: by,
        created_by_role: Role::TenantAdmin,
        confirmed_by: None,
        cancelled_by: None,
        note: None,
        notify,
        failure: None,
        created_at: at,
        confirmed_at: None,
        started_at: None,
        finished_at: None,
        heartbeat_at: None,
    };
    let scope = Scope::tenant(tenant);
    fleet.create_bulk_job(scope, &job, &[]).await.unwrap();
    let cancel = BulkStatusChange {
        from: vec![BulkJobStatus::AwaitingConfirmation],
        to: BulkJobStatus::Cancelled,
        at,
        by: Some("contract".into()),
        claim: None,
    };
    fleet.change_bulk_status(scope, job.id, &cancel).await.unwrap()
}

/// The notification written with `job`'s end.
async fn about(fleet: &SqlFleet, job: &BulkJob) -> Notification {
    let scope = Scope::tenant(job.tenant_id);
    fleet.notification_about(scope, job.id).await.unwrap().unwrap()
}

async fn listed(fleet: &SqlFleet, scope: Scope, query: &NotificationQuery) -> Vec<Uuid> {
    let found = fleet.notifications(scope, query).await.unwrap();
    found.into_iter().map(|n| n.id).collect()
}

async fn unread(fleet: &SqlFleet, scope: Scope, query: &NotificationQuery) -> u64 {
    fleet.unread_notifications(scope, query).await.unwrap()
}

fn endpoint(tenant: TenantId, url: &str, at: DateTime<Utc>) -> WebhookEndpoint {
    WebhookEndpoint {
        id: Uuid::new_v4(),
        tenant_id: tenant,
        url: url.to_owned(),
        description: Some("ops".into()),
        enabled: true,
        created_by: "contract".into(),
        created_at: at,
    }
}

fn attempt(
    status: DeliveryStatus,
    at: DateTime<Utc>,
    next: Option<DateTime<Utc>>,
    http: u16,
) -> DeliveryAttempt {
    DeliveryAttempt {
        at,
        status,
        next_attempt_at: next,
        error: (status != Delivered).then(|| format!("HTTP {http}")),
        response_status: Some(http),
    }
}

async fn deliveries(fleet: &SqlFleet, scope: Scope, query: DeliveryQuery) -> Vec<Delivery> {
    let query = DeliveryQuery { limit: 100, ..query };
    fleet.deliveries(scope, &query).await.unwrap()
}

async fn delivery(fleet: &SqlFleet, id: Uuid) -> Delivery {
    let all = deliveries(fleet, Scope::Platform, DeliveryQuery::default()).await;
    all.into_iter().find(|d| d.id == id).unwrap()
}

fn of_endpoint(endpoint: Uuid) -> DeliveryQuery {
    DeliveryQuery {
        endpoint: Some(endpoint),
        ..DeliveryQuery::default()
    }
}

fn of_notification(notification: Uuid) -> DeliveryQuery {
    DeliveryQuery {
        notification: Some(notification),
        ..DeliveryQuery::default()
    }
}

/// The deliveries `worker` claims at `at`, held for a minute.
async fn claim(fleet: &SqlFleet, worker: &str, at: DateTime<Utc>, limit: u64) -> HashSet<Uuid> {
    let due = fleet.claim_deliveries(worker, at, at + secs(60), limit).await;
    due.unwrap().into_iter().map(|d| d.delivery.id).collect()
}

/// How a delivery goes: its channel, where to, and the endpoint.
fn way(d: &Delivery) -> (&'static str, String, Option<Uuid>) {
    (d.channel.as_str(), d.target.clone(), d.endpoint_id)
}

async fn contract(store: ioto_store::SqlStore) {
    let fleet = &store.fleet();
    let f = Factory::new(Arc::new(store.directory()), Arc::new(store.fleet()));
    let (a, b) = (f.tenant("Notify A").await, f.tenant("Notify B").await);
    let alice = f.user(&a, Role::TenantAdmin, None).await;
    let bob = f.user(&a, Role::Operator, None).await;
    let carol = f.user(&b, Role::TenantAdmin, None).await;
    let (a_scope, b_scope) = (Scope::tenant(a.id), Scope::tenant(b.id));
    // An hour ago: a notification the store writes now is the newest.
    let t = now() - Duration::hours(1);

    // Notifications are written with the end they tell of, for who submitted the job.
    let j1 = ended_job(fleet, a.id, Some(alice.id), t, true).await;
    let j2 = ended_job(fleet, a.id, Some(alice.id), t + secs(1), true).await;
    let j3 = ended_job(fleet, a.id, Some(bob.id), t + secs(2), true).await;
    let j4 = ended_job(fleet, a.id, None, t + secs(3), true).await;
    let j5 = ended_job(fleet, b.id, Some(carol.id), t + secs(4), true).await;
    let j6 = ended_job(fleet, a.id, Some(bob.id), t + secs(5), false).await;
    let (n1, n2) = (about(fleet, &j1).await, about(fleet, &j2).await);
    let (n3, n4, n5) = (
        about(fleet, &j3).await,
        about(fleet, &j4).await,
        about(fleet, &j5).await,
    );
    let expected = Notification {
        id: n1.id,
        tenant_id: a.id,
        recipient: Some(alice.id),
        kind: NotificationKind::BulkJobFinished,
        subject_id: j1.id,
        title: "Bulk job 'sims.csv' cancelled".into(),
        body: "Cancelled by contract before any SIM was sent.".into(),
        payload: n1.payload.clone(),
        created_at: t,
        read_at: None,
        audience: ioto_domain::notify::Audience::default(),
    };
    assert_eq!(n1, expected, "the notification does not tell of the job's end");
    let status = n1.payload["bulkJob"]["status"].as_str();
    assert_eq!(status, Some("CANCELLED"), "the job's status is missing");
    assert_eq!(n4.recipient, None, "a token's job notifies a user");
    let read = fleet.notification_about(b_scope, j1.id).await.unwrap();
    assert_eq!(read, None, "B sees A's notification");
    let read = fleet.notification_about(a_scope, j6.id).await.unwrap();
    assert_eq!(read, None, "a job its caller waited for is notified");

    // Inboxes: a user's own, plus the tenant-wide ones for fleet managers; newest first.
    let q = |recipient, tenant_wide| NotificationQuery {
        recipient,
        tenant_wide,
        limit: 10,
        ..NotificationQuery::default()
    };
    let alice_own = q(Some(alice.id), None);
    let alice_all = q(Some(alice.id), Some(a.id));
    let bob_own = q(Some(bob.id), None);
    let inbox = listed(fleet, a_scope, &alice_own).await;
    assert_eq!(inbox, [n2.id, n1.id], "alice's inbox is wrong or out of order");
    let inbox = listed(fleet, a_scope, &alice_all).await;
    assert_eq!(inbox, [n4.id, n2.id, n1.id], "a manager misses tenant-wide ones");
    let inbox = listed(fleet, a_scope, &bob_own).await;
    assert_eq!(inbox, [n3.id], "bob sees others' notifications");
    let inbox = listed(fleet, a_scope, &q(None, None)).await;
    assert!(inbox.is_empty(), "a query for nobody lists everyone's: {inbox:?}");
    let inbox = listed(fleet, b_scope, &alice_all).await;
    assert!(inbox.is_empty(), "B sees A's notifications");
    let inbox = listed(fleet, b_scope, &q(Some(carol.id), Some(b.id))).await;
    assert_eq!(inbox, [n5.id], "carol's inbox is wrong");
    let page = NotificationQuery {
        before: Some((n2.created_at, n2.id)),
        ..alice_all.clone()
    };
    let inbox = listed(fleet, a_scope, &page).await;
    assert_eq!(inbox, [n1.id], "the next page loses or repeats notifications");
    let first = NotificationQuery {
        limit: 1,
        ..alice_all.clone()
    };
    assert_eq!(listed(fleet, a_scope, &first).await, [n4.id], "the limit is off");

    // Read marks: unread counts, marking some or all; others' notifications stay unread.
    let count = unread(fleet, a_scope, &alice_all).await;
    assert_eq!(count, 3, "the unread count is off");
    let read_at = t + secs(60);
    let some: &[Uuid] = &[n1.id, n3.id];
    let marked = fleet.mark_notifications_read(a_scope, &alice_own, Some(some), read_at);
    assert_eq!(marked.await.unwrap(), 1, "alice marks bob's notification read");
    let marked = fleet.mark_notifications_read(a_scope, &alice_own, Some(some), read_at);
    assert_eq!(marked.await.unwrap(), 0, "a notification is marked read twice");
    let alice_count = unread(fleet, a_scope, &alice_all).await;
    let bob_count = unread(fleet, a_scope, &bob_own).await;
    assert_eq!((alice_count, bob_count), (2, 1), "an unread count is off");
    let unread_only = NotificationQuery {
        unread_only: true,
        ..alice_all.clone()
    };
    let inbox = listed(fleet, a_scope, &unread_only).await;
    assert_eq!(inbox, [n4.id, n2.id], "read notifications show as unread");
    let mine = fleet.notifications(a_scope, &alice_own).await.unwrap();
    assert_eq!(mine[1].read_at, Some(read_at), "when it was read is lost");
    let marked = fleet.mark_notifications_read(b_scope, &alice_all, None, read_at);
    assert_eq!(marked.await.unwrap(), 0, "B marks A's notifications read");
    let none: &[Uuid] = &[];
    let marked = fleet.mark_notifications_read(a_scope, &alice_all, Some(none), read_at);
    assert_eq!(marked.await.unwrap(), 0, "an empty list marks notifications read");
    let marked = fleet.mark_notifications_read(a_scope, &alice_all, None, read_at);
    assert_eq!(marked.await.unwrap(), 2, "marking all misses some");
    let alice_count = unread(fleet, a_scope, &alice_all).await;
    let bob_count = unread(fleet, a_scope, &bob_own).await;
    assert_eq!((alice_count, bob_count), (0, 1), "unread counts are off");

    // Webhook endpoints: per tenant, in the order created; the store keeps its URL limit.
    let w1 = endpoint(a.id, "https://hooks.example.com/a", t);
    let wb = endpoint(b.id, "https://hooks.example.net/b", t);
    for (scope, e, secret) in [(a_scope, &w1, "whsec_a"), (b_scope, &wb, "whsec_b")] {
        fleet.create_webhook_endpoint(scope, e, secret).await.unwrap();
    }
    let listed_a = fleet.webhook_endpoints(a_scope, a.id).await.unwrap();
    assert_eq!(
        listed_a,
        std::slice::from_ref(&w1),
        "the endpoint reads back changed"
    );
    let r = fleet.webhook_endpoints(b_scope, a.id).await;
    not_found(r, "B lists A's endpoints");
    let foreign = endpoint(a.id, "https://evil.example.com/", t);
    let r = fleet.create_webhook_endpoint(b_scope, &foreign, "whsec_x").await;
    not_found(r, "B adds an endpoint to A");
    let twice = fleet.create_webhook_endpoint(a_scope, &w1, "whsec_y").await;
    let conflict = matches!(twice, Err(Error::Conflict(_)));
    assert!(conflict, "an endpoint is stored twice: {twice:?}");
    let long = format!("https://hooks.example.com/{}", "x".repeat(2048));
    let long = endpoint(a.id, &long, t);
    let r = fleet.create_webhook_endpoint(a_scope, &long, "whsec_l").await;
    assert!(r.is_err(), "a URL over 2048 characters is stored");
    let listed_a = fleet.webhook_endpoints(a_scope, a.id).await.unwrap();
    assert_eq!(
        listed_a,
        std::slice::from_ref(&w1),
        "refused endpoints are stored"
    );
    let r = fleet.set_webhook_endpoint_enabled(b_scope, w1.id, false).await;
    not_found(r, "B disables A's endpoint");
    let r = fleet.delete_webhook_endpoint(b_scope, w1.id).await;
    not_found(r, "B removes A's endpoint");

    // Fan-out: one delivery per enabled endpoint of the tenant, one e-mail per recipient; once.
    let t1 = now();
    let dispatched = fleet.dispatch_notifications(true, t1, 100).await.unwrap();
    assert_eq!(dispatched, 5, "notifications are not fanned out");
    let again = fleet.dispatch_notifications(true, t1, 100).await.unwrap();
    assert_eq!(again, 0, "notifications are fanned out twice");
    let all = deliveries(fleet, Scope::Platform, DeliveryQuery::default()).await;
    assert_eq!(all.len(), 9, "deliveries are missing or extra: {all:?}");
    let mine = deliveries(fleet, a_scope, DeliveryQuery::default()).await;
    assert_eq!(mine.len(), 7, "A's deliveries are missing, or B's show");
    let ways = deliveries(fleet, a_scope, of_notification(n1.id)).await;
    let mut ways: Vec<_> = ways.iter().map(way).collect();
    ways.sort();
    let email = ("EMAIL", alice.email.to_string(), None);
    let hook = ("WEBHOOK", w1.url.clone(), Some(w1.id));
    assert_eq!(ways, [email, hook.clone()], "it is not sent both ways");
    let fresh = |d: &Delivery| (d.status, d.attempts, d.next_attempt_at) == (Pending, 0, Some(t1));
    let due_now = all.iter().all(fresh);
    assert!(due_now, "new deliveries are not due at once: {all:?}");
    let ways = deliveries(fleet, a_scope, of_notification(n4.id)).await;
    let ways: Vec<_> = ways.iter().map(way).collect();
    assert_eq!(ways, [hook], "a tenant-wide notification is e-mailed");
    let hooked = deliveries(fleet, a_scope, of_endpoint(w1.id)).await;
    assert_eq!(hooked.len(), 4, "the endpoint's deliveries are off");
    let hooked = deliveries(fleet, b_scope, of_endpoint(w1.id)).await;
    assert!(hooked.is_empty(), "B sees A's deliveries");

    // Claims: one worker per delivery while its claim holds, with what sending needs.
    let until = t1 + secs(60);
    let c1 = fleet.claim_deliveries("w1", t1, until, 4).await.unwrap();
    let c2 = fleet.claim_deliveries("w2", t1, until, 100).await.unwrap();
    let claimed: HashSet<Uuid> = c1.iter().chain(&c2).map(|d| d.delivery.id).collect();
    let all_ids: HashSet<Uuid> = all.iter().map(|d| d.id).collect();
    assert_eq!((c1.len(), c2.len()), (4, 5), "claims ignore the limit");
    assert_eq!(claimed, all_ids, "a delivery is held twice, or left out");
    let third = claim(fleet, "w3", t1, 100).await;
    assert!(third.is_empty(), "a held delivery is handed out: {third:?}");
    let secrets = HashMap::from([(w1.id, "whsec_a"), (wb.id, "whsec_b")]);
    for d in c1.iter().chain(&c2) {
        let secret = d.delivery.endpoint_id.and_then(|e| secrets.get(&e).copied());
        assert_eq!(d.secret.as_deref(), secret, "a webhook cannot be signed: {d:?}");
        let same = d.notification.id == d.delivery.notification_id;
        assert!(same, "a delivery comes with another notification: {d:?}");
    }

    // Attempts: recorded by the holder only, once per claim; retries wait for their time.
    let (d, e) = (c1[0].delivery.id, c2[0].delivery.id);
    let ok = attempt(Delivered, t1 + secs(1), None, 200);
    fleet.record_delivery(d, "w2", &ok).await.unwrap();
    let held = delivery(fleet, d).await;
    let held = (held.status, held.attempts);
    assert_eq!(held, (Pending, 0), "another worker's attempt counts");
    let t30 = t1 + secs(30);
    let retry = attempt(Pending, t1 + secs(2), Some(t30), 503);
    fleet.record_delivery(d, "w1", &retry).await.unwrap();
    let tried = delivery(fleet, d).await;
    let facts = (
        tried.status,
        tried.attempts,
        tried.next_attempt_at,
        tried.response_status,
    );
    assert_eq!(facts, (Pending, 1, Some(t30), Some(503)), "the retry is lost");
    assert_eq!(tried.last_error.as_deref(), Some("HTTP 503"), "the error is lost");
    fleet.record_delivery(d, "w1", &ok).await.unwrap();
    let twice = delivery(fleet, d).await.attempts;
    assert_eq!(twice, 1, "an attempt is recorded twice on one claim");
    let early = claim(fleet, "w3", t1 + secs(10), 100).await;
    assert!(early.is_empty(), "a retry comes early: {early:?}");
    let due = claim(fleet, "w3", t1 + secs(31), 100).await;
    assert_eq!(due, HashSet::from([d]), "the retry is not due at its time");
    let t32 = t1 + secs(32);
    let ok_late = attempt(Delivered, t32, None, 200);
    fleet.record_delivery(d, "w3", &ok_late).await.unwrap();
    let sent = delivery(fleet, d).await;
    let facts = (sent.status, sent.attempts, sent.delivered_at, sent.last_error);
    assert_eq!(facts, (Delivered, 2, Some(t32), None), "the delivery is lost");
    let lapsed = claim(fleet, "w4", t1 + secs(61), 100).await;
    let rest: HashSet<Uuid> = all_ids.iter().copied().filter(|i| *i != d).collect();
    assert_eq!(lapsed, rest, "deliveries whose claim lapsed are not taken again");
    fleet.record_delivery(e, "w2", &ok).await.unwrap();
    let stale = delivery(fleet, e).await;
    assert_eq!(stale.status, Pending, "a lapsed claim records an attempt");
    let gave_up = attempt(Failed, t1 + secs(62), None, 410);
    fleet.record_delivery(e, "w4", &gave_up).await.unwrap();
    let gone = delivery(fleet, e).await;
    let facts = (gone.status, gone.attempts, gone.next_attempt_at);
    assert_eq!(facts, (Failed, 1, None), "a given-up delivery is not recorded");

    // Disabling an endpoint stops its pending deliveries; it gets no new ones.
    let disabled = fleet.set_webhook_endpoint_enabled(a_scope, w1.id, false).await;
    let disabled = disabled.unwrap();
    let expected = WebhookEndpoint {
        enabled: false,
        ..w1.clone()
    };
    assert_eq!(disabled, expected, "the endpoint is not disabled");
    for x in deliveries(fleet, a_scope, of_endpoint(w1.id)).await {
        let state = (x.status, x.last_error.as_deref(), x.next_attempt_at);
        if x.id == d {
            assert_eq!(x.status, Delivered, "disabling undoes a delivery");
        } else if x.id != e {
            let stopped = (Failed, Some("the endpoint was disabled"), None);
            assert_eq!(state, stopped, "a disabled endpoint's delivery goes on");
        }
    }
    let endpoint_of: HashMap<Uuid, Option<Uuid>> = all.iter().map(|x| (x.id, x.endpoint_id)).collect();
    let ended = |i: &Uuid| *i == d || *i == e || endpoint_of[i] == Some(w1.id);
    let pending: HashSet<Uuid> = all_ids.iter().copied().filter(|i| !ended(i)).collect();
    let left = claim(fleet, "w5", t1 + Duration::days(1), 100).await;
    assert_eq!(left, pending, "an ended or stopped delivery is sent again");
    let w2 = endpoint(a.id, "https://hooks.example.com/a2", t + secs(1));
    let r = fleet.create_webhook_endpoint(a_scope, &w2, "whsec_c").await;
    r.unwrap();
    let listed_a = fleet.webhook_endpoints(a_scope, a.id).await.unwrap();
    let expected = [disabled.clone(), w2.clone()];
    assert_eq!(listed_a, expected, "endpoints are out of order");
    let notified = fleet.notify_bulk_job(a_scope, j6.id).await.unwrap();
    assert!(notified.notify, "a late notification is refused");
    let n6 = about(fleet, &j6).await;
    assert_eq!(n6.recipient, Some(bob.id), "the late notification is not bob's");
    let inbox = listed(fleet, a_scope, &bob_own).await;
    assert_eq!(inbox, [n6.id, n3.id], "the late notification is not bob's newest");
    let dispatched = fleet.dispatch_notifications(false, now(), 100).await.unwrap();
    assert_eq!(dispatched, 1, "the late notification is not fanned out");
    let ways = deliveries(fleet, a_scope, of_notification(n6.id)).await;
    let ways: Vec<_> = ways.iter().map(way).collect();
    let hook = ("WEBHOOK", w2.url.clone(), Some(w2.id));
    assert_eq!(ways, [hook], "a disabled endpoint or e-mail gets it");

    // Removing an endpoint removes its deliveries.
    fleet.delete_webhook_endpoint(a_scope, w2.id).await.unwrap();
    let hooked = deliveries(fleet, a_scope, of_endpoint(w2.id)).await;
    assert!(hooked.is_empty(), "a removed endpoint's deliveries remain");
    let listed_a = fleet.webhook_endpoints(a_scope, a.id).await.unwrap();
    assert_eq!(listed_a, [disabled], "a removed endpoint is listed");
    let r = fleet.delete_webhook_endpoint(a_scope, w2.id).await;
    not_found(r, "an endpoint is removed twice");
    let b_ways = deliveries(fleet, Scope::Platform, of_notification(n5.id)).await;
    assert_eq!(b_ways.len(), 2, "A's endpoint changes touched B's deliveries");
}

#[tokio::test]
async fn notifications_contract_on_sqlite() {
    contract(
        open(StoreLocation::Sqlite {
            path: temp_dir().join("notifications.sqlite"),
        })
        .await,
    )
    .await;
}

#[tokio::test]
async fn notifications_contract_on_postgres() {
    contract(
        open(StoreLocation::Postgres {
            url: pg::database().await,
        })
        .await,
    )
    .await;
}
