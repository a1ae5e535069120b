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
    let shared = app
        .gql(
            Some(&admin),
            "mutation { setFleetSettings(customersSeeSims: true) { customersSeeSims } }",
            json!({}),
        )
        .await;
    assert!(shared["errors"].is_null(), "{shared}");
    let cu = f.user(&tenant, Role::CustomerUser, Some(a.id)).await;
    let cu = app.login(cu.email.as_str(), TEST_PASSWORD).await;

    let mut changes = ws_subscribe(&app, &cu, "subscription { simStateChanged { iccid } }").await;
    let mut sessions = ws_subscribe(&app, &cu, "subscription { liveSessions { iccid } }").await;
    let hidden = app
        .gql(
            Some(&admin),
            "mutation { setFleetSettings(customersSeeSims: false) { customersSeeSims } }",
            json!({}),
        )
        .await;
    assert!(hidden["errors"].is_null(), "{hidden}");
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
