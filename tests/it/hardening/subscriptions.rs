//! Open subscriptions follow what their caller may see now: a device moved to another
//! sub-customer stops streaming to the old one's users, and SIM streams end for customers once
//! their provider stops sharing SIMs.

use ioto_domain::Role;
use ioto_test_support::{Engines, TestApp, TEST_PASSWORD};
use serde_json::{json, Value};

use crate::http::{ws_next, ws_subscribe};

/// The next message for subscription `1` that is not data: its error, or its completion.
async fn end_of(ws: &mut crate::http::Ws) -> Value {
    loop {
        let msg = ws_next(ws).await.expect("the server closed the connection");
        if msg["type"] == "next" && msg["payload"]["errors"].is_null() {
            continue;
        }
        return msg;
    }
}

/// Sets whether the tenant of `admin` (a token) shares SIMs with its customers.
async fn share_sims(app: &TestApp, admin: &str, shared: bool) {
    let body = app
        .gql(
            Some(admin),
            "mutation($s: Boolean) { setFleetSettings(customersSeeSims: $s) { customersSeeSims } }",
            json!({ "s": shared }),
        )
        .await;
    assert_eq!(
        body["data"]["setFleetSettings"]["customersSeeSims"], shared,
        "{body}"
    );
}

#[tokio::test]
async fn a_device_moved_to_another_sub_customer_stops_streaming_to_the_old_one() {
    let app = TestApp::spawn(Engines::Real).await;
    let f = &app.factory;
    let tenant = f.tenant("Moves").await;
    let (a, b) = (f.customer(&tenant, "A").await, f.customer(&tenant, "B").await);
    let device = f.device(&tenant, Some(a.id), "tracker").await;
    let admin = f.user(&tenant, Role::TenantAdmin, None).await;
    let admin = app.login(admin.email.as_str(), TEST_PASSWORD).await;
    let cu_a = f.user(&tenant, Role::CustomerUser, Some(a.id)).await;
    let cu_a = app.login(cu_a.email.as_str(), TEST_PASSWORD).await;

    let sub = format!(
        "subscription {{ deviceTelemetry(deviceId: \"{}\") {{ at }} }}",
        device.id
    );
    let mut following = ws_subscribe(&app, &cu_a, &sub).await;
    let mut admins = ws_subscribe(&app, &admin, &sub).await;
    let moved = app
        .gql(
            Some(&admin),
            "mutation($d: ID!, $c: ID) { assignDevice(id: $d, customerId: $c) { device { id } } }",
            json!({"d": device.id.to_string(), "c": b.id.to_string()}),
        )
        .await;
    assert!(moved["errors"].is_null(), "{moved}");
    let end = end_of(&mut following).await;
    assert_eq!(
        end["payload"]["errors"][0]["extensions"]["code"], "NOT_FOUND",
        "{end}"
    );
    // The tenant's admin still sees the device: their subscription stays open.
    let still = tokio::time::timeout(std::time::Duration::from_secs(2), ws_next(&mut admins)).await;
    assert!(still.is_err(), "nothing ends the admin's subscription: {still:?}");
    app.stop().await;
}

#[tokio::test]
async fn sim_streams_end_for_customers_once_sims_are_no_longer_shared() {
    let app = TestApp::spawn(Engines::Real).await;
    let f = &app.factory;
    let tenant = f.tenant("Sharing").await;
    let a = f.customer(&tenant, "A").await;
    let admin = f.user(&tenant, Role::TenantAdmin, None).await;
    let admin = app.login(admin.email.as_str(), TEST_PASSWORD).await;
    share_sims(&app, &admin, true).await;
    let cu = f.user(&tenant, Role::CustomerUser, Some(a.id)).await;
    let cu = app.login(cu.email.as_str(), TEST_PASSWORD).await;

    let mut changes = ws_subscribe(&app, &cu, "subscription { simStateChanged { iccid } }").await;
    let mut sessions = ws_subscribe(&app, &cu, "subscription { liveSessions { iccid } }").await;
    share_sims(&app, &admin, false).await;
    for ws in [&mut changes, &mut sessions] {
        let end = end_of(ws).await;
        assert_eq!(
            end["payload"]["errors"][0]["extensions"]["code"], "FORBIDDEN",
            "{end}"
        );
        let message = end["payload"]["errors"][0]["message"].as_str().unwrap();
        assert!(message.contains("shares device data only"), "{end}");
    }
    app.stop().await;
}

/// A SIM moved to another sub-customer: its next session update is counted for, and shown to,
/// the new one, not the old one (the worker looked owners up at most once a minute, so for up
/// to a minute the old sub-customer's users went on seeing its sessions).
#[tokio::test]
async fn a_sims_sessions_follow_it_to_its_new_sub_customer() {
    use ioto_ingest::worker::IngestTopics;

    let app = crate::live::app_with_pipeline(false).await;
    let f = &app.factory;
    let tenant = f.tenant("Moving SIMs").await;
    let (a, b) = (f.customer(&tenant, "A").await, f.customer(&tenant, "B").await);
    let iccid = f.sims(&tenant, Some(a.id), 1).await.remove(0).iccid.to_string();
    let admin = f.user(&tenant, Role::TenantAdmin, None).await;
    let admin = app.login(admin.email.as_str(), TEST_PASSWORD).await;
    share_sims(&app, &admin, true).await;
    let (cu_a, cu_b) = (
        f.user(&tenant, Role::CustomerUser, Some(a.id)).await,
        f.user(&tenant, Role::CustomerUser, Some(b.id)).await,
    );
    let (cu_a, cu_b) = (
        app.login(cu_a.email.as_str(), TEST_PASSWORD).await,
        app.login(cu_b.email.as_str(), TEST_PASSWORD).await,
    );
    let sub = "subscription { liveSessions { iccid customerId } }";
    let (mut of_a, mut of_b) = (
        ws_subscribe(&app, &cu_a, sub).await,
        ws_subscribe(&app, &cu_b, sub).await,
    );
    let topics = IngestTopics::with_prefix(&app.config.kafka.topic_prefix);
    let publish = |total: u64, minutes_ago: i64| {
        let (bus, topics, iccid) = (&app.app_engines.bus, &topics, &iccid);
        async move {
            let at = chrono::Utc::now() - chrono::Duration::minutes(minutes_ago);
            let body = crate::live::rollup("s-move", iccid, at, total);
            bus.publish(&topics.sessions, "s-move", body.as_bytes())
                .await
                .unwrap();
        }
    };
    // While the SIM is A's, A sees its session (and the worker has its owner cached).
    publish(100, 10).await;
    let seen = ws_next(&mut of_a).await.unwrap();
    assert_eq!(
        seen["payload"]["data"]["liveSessions"]["customerId"],
        a.id.to_string(),
        "{seen}"
    );

    let moved = app
        .gql(
            Some(&admin),
            "mutation($i: Iccid!, $c: ID) { assignSim(iccid: $i, customerId: $c) { sim { iccid } } }",
            json!({"i": iccid, "c": b.id.to_string()}),
        )
        .await;
    assert!(moved["errors"].is_null(), "{moved}");
    // The move reaches the worker over the bus, as it would in another process.
    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    publish(300, 5).await;
    let seen = ws_next(&mut of_b).await.unwrap();
    assert_eq!(
        seen["payload"]["data"]["liveSessions"]["customerId"],
        b.id.to_string(),
        "{seen}"
    );
    let stale = tokio::time::timeout(std::time::Duration::from_secs(3), ws_next(&mut of_a)).await;
    assert!(stale.is_err(), "A no longer sees the SIM's sessions: {stale:?}");
    app.stop().await;
}
