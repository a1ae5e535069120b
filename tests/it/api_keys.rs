//! API keys through the API, as an integrator uses them: made by a tenant admin, sent as a
//! bearer token on GraphQL, REST and WebSocket, rolled with an overlap, revoked, and audited.

use std::time::Duration;

use futures::StreamExt;
use ioto_domain::Role;
use ioto_test_support::app::error_code;
use ioto_test_support::{Engines, TestApp, TEST_PASSWORD};
use serde_json::{json, Value};

const CREATE: &str = "mutation($input: CreateApiKeyInput!) {
    createApiKey(input: $input) { secret apiKey { id name role state hint expiresAt createdBy { displayName } } } }";
const ME: &str = "{ me { role subject } }";

async fn create(app: &TestApp, token: &str, input: Value) -> Value {
    app.gql(Some(token), CREATE, json!({ "input": input })).await
}

fn message(body: &Value) -> String {
    body["errors"][0]["message"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

/// Polls `check` every 100 ms for up to 10 s.
async fn eventually(mut check: impl AsyncFnMut() -> bool) -> bool {
    for _ in 0..100 {
        if check().await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    false
}

#[tokio::test]
async fn a_key_works_on_graphql_rest_and_websocket_and_stops_when_revoked() {
    let mut config = TestApp::config(Engines::Real).await;
    config.auth.session_check_seconds = 1;
    let app = TestApp::spawn_with(config).await;
    let t = app.factory.tenant("Keyholder").await;
    let admin = app.factory.user(&t, Role::TenantAdmin, None).await;
    let admin_token = app.login(admin.email.as_str(), TEST_PASSWORD).await;

    let body = create(
        &app,
        &admin_token,
        json!({ "name": "ERP sync", "role": "OPERATOR", "expiresInDays": 30 }),
    )
    .await;
    let made = &body["data"]["createApiKey"];
    let secret = made["secret"]
        .as_str()
        .unwrap_or_else(|| panic!("{body}"))
        .to_owned();
    let id = made["apiKey"]["id"].as_str().unwrap().to_owned();
    assert!(secret.starts_with("ioto_") && secret.len() == 41, "{secret}");
    assert_eq!(made["apiKey"]["state"], "ACTIVE");
    assert_eq!(
        made["apiKey"]["createdBy"]["displayName"],
        admin.display_name.as_str()
    );
    let hint = made["apiKey"]["hint"].as_str().unwrap();
    assert!(
        hint.starts_with(&secret[..9]) && hint.ends_with(&secret[37..]),
        "{hint}"
    );

    // GraphQL: the key acts with its role, as its own subject.
    let me = app.gql(Some(&secret), ME, json!({})).await;
    assert_eq!(me["data"]["me"]["role"], "OPERATOR", "{me}");
    assert_eq!(me["data"]["me"]["subject"], format!("key:{id}"));

    // REST: an import preview with the key.
    let preview = app
        .http
        .post(app.url("/imports/sims?format=csv"))
        .bearer_auth(&secret)
        .body("iccid;imsi\n89490200001234567893;262021234567890\n")
        .send()
        .await
        .unwrap();
    assert_eq!(preview.status(), 200, "{}", preview.text().await.unwrap());

    // WebSocket: a subscription with the key.
    let mut ws =
        crate::http::ws_subscribe(&app, &secret, "subscription { directoryEvents { change } }").await;
    app.gql(
        Some(&admin_token),
        "mutation { createCustomer(input: {name: \"Heard by the key\"}) { id } }",
        json!({}),
    )
    .await;
    let event = crate::http::ws_next(&mut ws).await.expect("the event arrives");
    assert_eq!(
        event["payload"]["data"]["directoryEvents"]["change"], "CUSTOMER_CREATED",
        "{event}"
    );

    // Its use is recorded with the client's address.
    let used = "query($id: ID!) { apiKey(id: $id) { lastUsedAt lastUsedAddress } }";
    assert!(
        eventually(async || {
            let b = app.gql(Some(&admin_token), used, json!({ "id": id })).await;
            b["data"]["apiKey"]["lastUsedAddress"] == "127.0.0.1"
        })
        .await,
        "lastUsedAt and lastUsedAddress are written"
    );

    // A key cannot make keys, even one of a lower role.
    let body = create(&app, &secret, json!({ "name": "child", "role": "VIEWER" })).await;
    assert_eq!(error_code(&body).as_deref(), Some("FORBIDDEN"), "{body}");
    assert!(message(&body).contains("sign in as a person"), "{body}");

    // Revoked: refused on every transport, and the open subscription ends.
    let body = app
        .gql(
            Some(&admin_token),
            "mutation($id: ID!) { revokeApiKey(id: $id) { state revokedAt } }",
            json!({ "id": id }),
        )
        .await;
    assert_eq!(body["data"]["revokeApiKey"]["state"], "REVOKED", "{body}");
    let (status, body) = app.gql_status(Some(&secret), ME, json!({})).await;
    assert_eq!(
        (status, error_code(&body).as_deref()),
        (401, Some("UNAUTHENTICATED")),
        "{body}"
    );
    assert!(message(&body).contains("revoked"), "{body}");
    let refused = app
        .http
        .post(app.url("/imports/sims?format=csv"))
        .bearer_auth(&secret)
        .body("iccid;imsi\n")
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 401);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let frame = loop {
        let msg = tokio::time::timeout_at(deadline, ws.next())
            .await
            .expect("the server closes the socket within 30 s")
            .expect("a close frame before the end")
            .unwrap();
        if let tokio_tungstenite::tungstenite::Message::Close(frame) = msg {
            break frame.expect("with a reason");
        }
    };
    assert_eq!(u16::from(frame.code), 4401, "{frame:?}");
    assert!(frame.reason.contains("revoked"), "{frame:?}");

    // The audit trail names who made and revoked the key.
    let trail = app
        .gql(
            Some(&admin_token),
            "{ auditLog(filter: {entityKind: API_KEY}) { nodes { action reference actor } } }",
            json!({}),
        )
        .await;
    let nodes = trail["data"]["auditLog"]["nodes"]
        .as_array()
        .unwrap_or_else(|| panic!("{trail}"));
    let seen: Vec<(&str, &str, &str)> = nodes
        .iter()
        .map(|n| {
            (
                n["action"].as_str().unwrap(),
                n["reference"].as_str().unwrap(),
                n["actor"].as_str().unwrap(),
            )
        })
        .collect();
    let who = admin.id.to_string();
    assert_eq!(
        seen,
        vec![
            ("REVOKED", "ERP sync", who.as_str()),
            ("CREATED", "ERP sync", who.as_str())
        ],
        "{trail}"
    );
    app.stop().await;
}

#[tokio::test]
async fn keys_are_never_above_their_maker_and_bad_keys_are_refused_before_any_lookup() {
    let app = TestApp::spawn(Engines::Real).await;
    let t = app.factory.tenant("Bounded keys").await;
    let other = app.factory.tenant("Neighbour").await;
    let admin = app.factory.user(&t, Role::TenantAdmin, None).await;
    let operator = app.factory.user(&t, Role::Operator, None).await;
    let neighbour = app.factory.user(&other, Role::TenantAdmin, None).await;
    let admin_token = app.login(admin.email.as_str(), TEST_PASSWORD).await;
    let operator_token = app.login(operator.email.as_str(), TEST_PASSWORD).await;
    let neighbour_token = app.login(neighbour.email.as_str(), TEST_PASSWORD).await;

    let body = create(
        &app,
        &admin_token,
        json!({ "name": "root", "role": "PLATFORM_ADMIN" }),
    )
    .await;
    assert_eq!(error_code(&body).as_deref(), Some("FORBIDDEN"), "{body}");
    assert!(message(&body).contains("never above its creator's"), "{body}");
    let body = create(&app, &operator_token, json!({ "name": "mine", "role": "VIEWER" })).await;
    assert_eq!(error_code(&body).as_deref(), Some("FORBIDDEN"), "{body}");
    let listed = app
        .gql(Some(&operator_token), "{ apiKeys { nodes { id } } }", json!({}))
        .await;
    assert_eq!(error_code(&listed).as_deref(), Some("FORBIDDEN"), "{listed}");

    // Bad input names its field and what is allowed.
    let body = create(
        &app,
        &admin_token,
        json!({ "name": "portal", "role": "CUSTOMER_USER" }),
    )
    .await;
    ioto_test_support::app::assert_refused(&body, "input.customerId", "required for role CUSTOMER_USER");
    let body = create(
        &app,
        &admin_token,
        json!({ "name": "eternal", "role": "VIEWER", "expiresInDays": 5000 }),
    )
    .await;
    ioto_test_support::app::assert_refused(&body, "input.expiresInDays", "1 to 1096 days");
    let body = create(&app, &admin_token, json!({ "name": " ", "role": "VIEWER" })).await;
    ioto_test_support::app::assert_refused(&body, "input.name", "1 to 200 characters");

    // An administrator's key administers the fleet, but neither keys nor people: a leaked key
    // cannot make a user or a key that outlives it.
    let body = create(
        &app,
        &admin_token,
        json!({ "name": "admin tasks", "role": "TENANT_ADMIN" }),
    )
    .await;
    let admin_key = body["data"]["createApiKey"]["secret"]
        .as_str()
        .unwrap_or_else(|| panic!("{body}"))
        .to_owned();
    let made = app
        .gql(
            Some(&admin_key),
            "mutation { createCustomer(input: {name: \"By key\"}) { name } }",
            json!({}),
        )
        .await;
    assert_eq!(made["data"]["createCustomer"]["name"], "By key", "{made}");
    for mutation in [
        "mutation { createApiKey(input: {name: \"child\", role: VIEWER}) { secret } }".to_owned(),
        "mutation { createUser(input: {email: \"backdoor@example.com\", displayName: \"Back Door\", role: TENANT_ADMIN, password: \"a-long-password-1\"}) { id } }".to_owned(),
        format!(
            "mutation {{ setUserPassword(id: \"{}\", password: \"a-long-password-2\") }}",
            operator.id
        ),
    ] {
        let body = app.gql(Some(&admin_key), &mutation, json!({})).await;
        assert_eq!(error_code(&body).as_deref(), Some("FORBIDDEN"), "{mutation}: {body}");
        assert!(message(&body).contains("sign in as a person"), "{body}");
    }

    // A customer key sees its customer only.
    let acme = app.factory.customer(&t, "Acme").await;
    app.factory.customer(&t, "Zenith").await;
    let body = create(
        &app,
        &admin_token,
        json!({ "name": "Acme portal", "role": "CUSTOMER_USER", "customerId": acme.id.to_string() }),
    )
    .await;
    let portal = body["data"]["createApiKey"]["secret"]
        .as_str()
        .unwrap_or_else(|| panic!("{body}"))
        .to_owned();
    let seen = app
        .gql(Some(&portal), "{ customers { nodes { name } } }", json!({}))
        .await;
    assert_eq!(
        seen["data"]["customers"]["nodes"],
        json!([{ "name": "Acme" }]),
        "{seen}"
    );

    // A changed character breaks the checksum: refused as such, before any lookup.
    let mut typo = portal.clone().into_bytes();
    typo[12] = if typo[12] == b'x' { b'y' } else { b'x' };
    let typo = String::from_utf8(typo).unwrap();
    let (status, body) = app.gql_status(Some(&typo), ME, json!({})).await;
    assert_eq!(
        (status, error_code(&body).as_deref()),
        (401, Some("UNAUTHENTICATED")),
        "{body}"
    );
    assert!(message(&body).contains("checksum"), "{body}");
    let (status, body) = app.gql_status(Some(&portal[..30]), ME, json!({})).await;
    assert_eq!(status, 401, "{body}");
    assert!(message(&body).contains("malformed"), "{body}");
    // A well-formed key nobody made.
    let unknown = ioto_domain::api_key::CheckedToken::generate();
    let (status, body) = app.gql_status(Some(unknown.expose()), ME, json!({})).await;
    assert_eq!(status, 401, "{body}");
    assert!(message(&body).contains("not known"), "{body}");

    // Another tenant's admin sees none of it and cannot revoke it.
    let keys = app
        .gql(
            Some(&neighbour_token),
            "{ apiKeys { nodes { name } } }",
            json!({}),
        )
        .await;
    assert_eq!(keys["data"]["apiKeys"]["nodes"], json!([]), "{keys}");
    let ours = app
        .gql(Some(&admin_token), "{ apiKeys { nodes { id name } } }", json!({}))
        .await;
    let id = ours["data"]["apiKeys"]["nodes"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let body = app
        .gql(
            Some(&neighbour_token),
            "mutation($id: ID!) { revokeApiKey(id: $id) { state } }",
            json!({ "id": id }),
        )
        .await;
    assert_eq!(error_code(&body).as_deref(), Some("NOT_FOUND"), "{body}");
    let still = app.gql(Some(&portal), ME, json!({})).await;
    assert_eq!(still["data"]["me"]["role"], "CUSTOMER_USER", "{still}");
    app.stop().await;
}

#[tokio::test]
async fn a_rolled_key_works_beside_its_replacement_for_the_overlap_only() {
    let app = TestApp::spawn(Engines::Embedded).await;
    let t = app.factory.tenant("Rolling").await;
    let admin = app.factory.user(&t, Role::TenantAdmin, None).await;
    let admin_token = app.login(admin.email.as_str(), TEST_PASSWORD).await;
    let body = create(
        &app,
        &admin_token,
        json!({ "name": "metrics pusher", "role": "VIEWER", "expiresInDays": 90 }),
    )
    .await;
    let first = body["data"]["createApiKey"]["secret"]
        .as_str()
        .unwrap()
        .to_owned();
    let first_id = body["data"]["createApiKey"]["apiKey"]["id"]
        .as_str()
        .unwrap()
        .to_owned();

    let roll = "mutation($id: ID!, $h: Int!) { rollApiKey(id: $id, overlapHours: $h) {
        secret apiKey { id name role state expiresAt rolledFrom } } }";
    let body = app
        .gql(Some(&admin_token), roll, json!({ "id": first_id, "h": 24 }))
        .await;
    let rolled = &body["data"]["rollApiKey"];
    let second = rolled["secret"]
        .as_str()
        .unwrap_or_else(|| panic!("{body}"))
        .to_owned();
    let second_id = rolled["apiKey"]["id"].as_str().unwrap().to_owned();
    assert_ne!(second, first);
    assert_eq!(
        (
            &rolled["apiKey"]["name"],
            &rolled["apiKey"]["role"],
            &rolled["apiKey"]["rolledFrom"]
        ),
        (&json!("metrics pusher"), &json!("VIEWER"), &json!(first_id))
    );
    assert!(
        rolled["apiKey"]["expiresAt"].is_string(),
        "as long as the old key was made to last"
    );
    // Both work during the overlap; the old one says it was rolled.
    for key in [&first, &second] {
        let me = app.gql(Some(key), ME, json!({})).await;
        assert_eq!(me["data"]["me"]["role"], "VIEWER", "{me}");
    }
    let old = app
        .gql(
            Some(&admin_token),
            "query($id: ID!) { apiKey(id: $id) { state replacedBy expiresAt } }",
            json!({ "id": first_id }),
        )
        .await;
    assert_eq!(old["data"]["apiKey"]["state"], "ROLLING", "{old}");
    assert_eq!(old["data"]["apiKey"]["replacedBy"], json!(second_id));
    let body = app
        .gql(Some(&admin_token), roll, json!({ "id": first_id, "h": 24 }))
        .await;
    assert_eq!(error_code(&body).as_deref(), Some("CONFLICT"), "{body}");

    // Rolled with no overlap: the old key stops at once.
    let body = app
        .gql(Some(&admin_token), roll, json!({ "id": second_id, "h": 0 }))
        .await;
    let third = body["data"]["rollApiKey"]["secret"]
        .as_str()
        .unwrap_or_else(|| panic!("{body}"))
        .to_owned();
    let (status, body) = app.gql_status(Some(&second), ME, json!({})).await;
    assert_eq!(status, 401, "{body}");
    assert!(message(&body).contains("expired"), "{body}");
    assert_eq!(
        app.gql(Some(&third), ME, json!({})).await["data"]["me"]["role"],
        "VIEWER"
    );
    let body = app
        .gql(Some(&admin_token), roll, json!({ "id": second_id, "h": 500 }))
        .await;
    ioto_test_support::app::assert_refused(&body, "overlapHours", "0 to 168 hours");
    app.stop().await;
}
