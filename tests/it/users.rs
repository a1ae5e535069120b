//! User management beyond roles: details, password resets, own password.

use ioto_domain::Role;
use ioto_test_support::app::error_code;
use ioto_test_support::{Engines, TestApp, TEST_PASSWORD};
use serde_json::json;

const UPDATE: &str = "mutation($id: ID!, $name: String, $email: String) { updateUser(id: $id, input: {displayName: $name, email: $email}) { displayName email } }";
const SET_PASSWORD: &str = "mutation($id: ID!, $p: String!) { setUserPassword(id: $id, password: $p) }";
const LOGIN: &str = "mutation($e: String!, $p: String!) { login(email: $e, password: $p) { token } }";

#[tokio::test]
async fn details_and_passwords_are_managed_by_the_right_people() {
    let app = TestApp::spawn(Engines::Real).await;
    let f = &app.factory;
    let t = f.tenant("People").await;
    let admin = f.user(&t, Role::TenantAdmin, None).await;
    let viewer = f.user(&t, Role::Viewer, None).await;
    let operator = f.user(&t, Role::Operator, None).await;
    let admin_token = app.login(admin.email.as_str(), TEST_PASSWORD).await;
    let viewer_token = app.login(viewer.email.as_str(), TEST_PASSWORD).await;

    // Anyone changes their own details.
    let body = app
        .gql(
            Some(&viewer_token),
            UPDATE,
            json!({"id": viewer.id.to_string(), "name": "Vera Viewer"}),
        )
        .await;
    assert_eq!(body["data"]["updateUser"]["displayName"], "Vera Viewer", "{body}");
    // Nobody without ManageUsers changes someone else's.
    let body = app
        .gql(
            Some(&viewer_token),
            UPDATE,
            json!({"id": operator.id.to_string(), "name": "Hacked"}),
        )
        .await;
    assert_eq!(error_code(&body).as_deref(), Some("FORBIDDEN"), "{body}");
    // An administrator does; a taken e-mail is a conflict naming it; a malformed one names the field.
    let body = app
        .gql(
            Some(&admin_token),
            UPDATE,
            json!({"id": operator.id.to_string(), "email": "Ops.Lead@Example.com"}),
        )
        .await;
    assert_eq!(
        body["data"]["updateUser"]["email"], "ops.lead@example.com",
        "{body}"
    );
    let body = app
        .gql(
            Some(&admin_token),
            UPDATE,
            json!({"id": viewer.id.to_string(), "email": "ops.lead@example.com"}),
        )
        .await;
    assert_eq!(error_code(&body).as_deref(), Some("CONFLICT"), "{body}");
    assert!(body["errors"][0]["message"]
        .as_str()
        .unwrap()
        .contains("ops.lead@example.com"));
    let body = app
        .gql(
            Some(&admin_token),
            UPDATE,
            json!({"id": viewer.id.to_string(), "email": "not-an-email"}),
        )
        .await;
    assert_eq!(body["errors"][0]["extensions"]["field"], "input.email", "{body}");

    // Password reset by an administrator: the old password stops working, the new one works.
    let body = app
        .gql(
            Some(&admin_token),
            SET_PASSWORD,
            json!({"id": operator.id.to_string(), "p": "brand-new-password"}),
        )
        .await;
    assert_eq!(body["data"]["setUserPassword"], true, "{body}");
    let old = app
        .gql(
            None,
            LOGIN,
            json!({"e": "ops.lead@example.com", "p": TEST_PASSWORD}),
        )
        .await;
    assert_eq!(error_code(&old).as_deref(), Some("UNAUTHENTICATED"));
    app.login("ops.lead@example.com", "brand-new-password").await;
    let body = app
        .gql(
            Some(&admin_token),
            SET_PASSWORD,
            json!({"id": operator.id.to_string(), "p": "short"}),
        )
        .await;
    assert_eq!(error_code(&body).as_deref(), Some("BAD_USER_INPUT"), "{body}");
    let body = app
        .gql(
            Some(&viewer_token),
            SET_PASSWORD,
            json!({"id": operator.id.to_string(), "p": "long-enough-pw"}),
        )
        .await;
    assert_eq!(error_code(&body).as_deref(), Some("FORBIDDEN"), "{body}");

    // Own password: the current one must be given.
    let change =
        "mutation($c: String!, $n: String!) { changePassword(currentPassword: $c, newPassword: $n) }";
    let body = app
        .gql(
            Some(&viewer_token),
            change,
            json!({"c": "wrong-current", "n": "another-long-pw"}),
        )
        .await;
    assert_eq!(
        body["errors"][0]["extensions"]["field"], "currentPassword",
        "{body}"
    );
    let body = app
        .gql(
            Some(&viewer_token),
            change,
            json!({"c": TEST_PASSWORD, "n": "another-long-pw"}),
        )
        .await;
    assert_eq!(body["data"]["changePassword"], true, "{body}");
    app.login(viewer.email.as_str(), "another-long-pw").await;

    // Deleting a user: not yourself, and the deleted user's token stops answering `me`.
    let body = app
        .gql(
            Some(&admin_token),
            "mutation($id: ID!) { deleteUser(id: $id) }",
            json!({"id": admin.id.to_string()}),
        )
        .await;
    assert_eq!(error_code(&body).as_deref(), Some("CONFLICT"), "{body}");
    let body = app
        .gql(
            Some(&admin_token),
            "mutation($id: ID!) { deleteUser(id: $id) }",
            json!({"id": viewer.id.to_string()}),
        )
        .await;
    assert!(body["errors"].is_null(), "{body}");
    let me = app.gql(Some(&viewer_token), "{ me { email } }", json!({})).await;
    assert_eq!(error_code(&me).as_deref(), Some("UNAUTHENTICATED"), "{me}");
    app.stop().await;
}
