//! A token of tenant A can neither read, list nor change anything of tenant B through GraphQL.

use ioto_domain::Role;
use ioto_test_support::app::error_code;
use ioto_test_support::{Engines, TestApp, TEST_PASSWORD};
use serde_json::json;

#[tokio::test]
async fn tenant_a_cannot_touch_tenant_b() {
    let app = TestApp::spawn(Engines::Real).await;
    let f = &app.factory;
    let a = f.tenant("Alpha").await;
    let b = f.tenant("Beta").await;
    let a_admin = f.user(&a, Role::TenantAdmin, None).await;
    let b_customer = f.customer(&b, "Beta Customer").await;
    let b_user = f.user(&b, Role::Operator, None).await;
    f.sims(&b, Some(b_customer.id), 3).await;
    let token = app.login(a_admin.email.as_str(), TEST_PASSWORD).await;
    let bid = b.id.to_string();

    // Reads: B is invisible, by id and in lists.
    let body = app
        .gql(
            Some(&token),
            "query($id: ID!) { tenant(id: $id) { name } }",
            json!({"id": bid}),
        )
        .await;
    assert!(
        body["data"]["tenant"].is_null() && body["errors"].is_null(),
        "{body}"
    );
    let body = app.gql(Some(&token), "{ tenants { id } }", json!({})).await;
    assert_eq!(body["data"]["tenants"], json!([{ "id": a.id.to_string() }]));
    let body = app
        .gql(
            Some(&token),
            "query($id: ID!) { customer(id: $id) { name } }",
            json!({"id": b_customer.id.to_string()}),
        )
        .await;
    assert!(body["data"]["customer"].is_null(), "{body}");
    let body = app
        .gql(
            Some(&token),
            "query($id: ID!) { user(id: $id) { email } }",
            json!({"id": b_user.id.to_string()}),
        )
        .await;
    assert!(body["data"]["user"].is_null(), "{body}");
    for q in [
        "query($t: ID) { customers(tenantId: $t) { nodes { id } } }",
        "query($t: ID) { users(tenantId: $t) { nodes { id } } }",
        "query($t: ID) { sims(tenantId: $t) { nodes { iccid } } }",
    ] {
        let body = app.gql(Some(&token), q, json!({"t": bid})).await;
        assert_eq!(error_code(&body).as_deref(), Some("NOT_FOUND"), "{q}: {body}");
    }
    let own = app
        .gql(
            Some(&token),
            "{ customers { nodes { id } } users { nodes { id } } sims { nodes { iccid } } }",
            json!({}),
        )
        .await;
    assert_eq!(own["data"]["customers"]["nodes"], json!([]), "{own}");
    assert_eq!(own["data"]["users"]["nodes"].as_array().unwrap().len(), 1);
    assert_eq!(own["data"]["sims"]["nodes"], json!([]));

    // Writes: every attempt on B's records answers NOT_FOUND and changes nothing.
    let attempts = [
        ("mutation($id: ID!) { renameTenant(id: $id, name: \"Pwned\") { id } }", json!({"id": bid}), "FORBIDDEN"),
        ("mutation($id: ID!) { updateCustomer(id: $id, input: {name: \"Pwned\"}) { id } }", json!({"id": b_customer.id.to_string()}), "NOT_FOUND"),
        ("mutation($id: ID!) { deleteCustomer(id: $id) }", json!({"id": b_customer.id.to_string()}), "NOT_FOUND"),
        ("mutation($id: ID!) { deleteUser(id: $id) }", json!({"id": b_user.id.to_string()}), "NOT_FOUND"),
        ("mutation($id: ID!) { setUserRole(id: $id, role: VIEWER) { id } }", json!({"id": b_user.id.to_string()}), "NOT_FOUND"),
        ("mutation($t: ID!) { createCustomer(input: {tenantId: $t, name: \"Implant\"}) { id } }", json!({"t": bid}), "NOT_FOUND"),
        (
            "mutation($t: ID!) { createUser(input: {tenantId: $t, email: \"implant@example.com\", displayName: \"I\", role: TENANT_ADMIN, password: \"long-enough-pw\"}) { id } }",
            json!({"t": bid}),
            "NOT_FOUND",
        ),
    ];
    for (q, vars, code) in attempts {
        let body = app.gql(Some(&token), q, vars).await;
        assert_eq!(error_code(&body).as_deref(), Some(code), "{q}: {body}");
    }
    let still = f
        .dir
        .list_customers(
            ioto_domain::Scope::Platform,
            b.id,
            &ioto_domain::fleet::query::Page::first(1000),
        )
        .await
        .unwrap();
    assert_eq!(
        still.iter().map(|c| c.name.as_str()).collect::<Vec<_>>(),
        ["Beta Customer"]
    );
    let users = f
        .dir
        .list_users(
            ioto_domain::Scope::Platform,
            b.id,
            &ioto_domain::fleet::query::Page::first(1000),
        )
        .await
        .unwrap();
    assert_eq!((users.len(), users[0].role), (1, Role::Operator));
    assert_eq!(
        f.dir
            .tenant(ioto_domain::Scope::Platform, b.id)
            .await
            .unwrap()
            .unwrap()
            .name
            .as_str(),
        "Beta"
    );
    app.stop().await;
}
