//! Asymmetric tokens: ES256 with PEM keys, and an external identity provider's JWKS.

use std::path::PathBuf;

use axum::routing::get;
use chrono::Utc;
use ioto_domain::Role;
use ioto_test_support::app::error_code;
use ioto_test_support::{Engines, TestApp, TEST_PASSWORD};
use jsonwebtoken::{encode, Algorithm, EncodingKey, Header};
use serde_json::{json, Value};

const ME: &str = "{ me { role subject tenant { name } } }";

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

fn es256(kid: Option<&str>, claims: &Value) -> String {
    let key = EncodingKey::from_ec_pem(&std::fs::read(fixture("es256-private.pem")).unwrap()).unwrap();
    let mut header = Header::new(Algorithm::ES256);
    header.kid = kid.map(str::to_owned);
    encode(&header, claims, &key).unwrap()
}

fn claims(tenant: &str) -> Value {
    let now = Utc::now().timestamp();
    json!({ "sub": "idp-user-7", "iss": "ioto", "aud": "ioto", "iat": now, "nbf": now, "exp": now + 600, "tid": tenant, "role": "OPERATOR" })
}

#[tokio::test]
async fn es256_with_pem_keys_signs_logins_and_refuses_algorithm_confusion() {
    let mut config = TestApp::config(Engines::Embedded).await;
    config.auth.algorithm = ioto::config::JwtAlgorithm::ES256;
    config.auth.public_key_pem = Some(fixture("es256-public.pem"));
    config.auth.private_key_pem = Some(fixture("es256-private.pem"));
    let app = TestApp::spawn_with(config).await;
    let t = app.factory.tenant("Curve Co").await;
    let u = app.factory.user(&t, Role::Viewer, None).await;

    let token = app.login(u.email.as_str(), TEST_PASSWORD).await;
    let body = app.gql(Some(&token), ME, json!({})).await;
    assert_eq!(body["data"]["me"]["role"], "VIEWER", "{body}");

    // HS256 "signed" with the public key as the HMAC secret: the classic confusion attack.
    let public = std::fs::read(fixture("es256-public.pem")).unwrap();
    let forged = encode(
        &Header::new(Algorithm::HS256),
        &claims(&t.id.to_string()),
        &EncodingKey::from_secret(&public),
    )
    .unwrap();
    let (status, body) = app.gql_status(Some(&forged), ME, json!({})).await;
    assert_eq!(
        (status, error_code(&body).as_deref()),
        (401, Some("UNAUTHENTICATED")),
        "{body}"
    );
    app.stop().await;
}

#[tokio::test]
async fn tokens_from_an_identity_provider_are_verified_against_its_jwks() {
    // The identity provider: serves its key set.
    let jwks = std::fs::read_to_string(fixture("es256-jwks.json")).unwrap();
    let idp = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let idp_addr = idp.local_addr().unwrap();
    let router = axum::Router::new().route(
        "/certs",
        get(move || {
            let jwks = jwks.clone();
            async move { ([("content-type", "application/json")], jwks) }
        }),
    );
    tokio::spawn(async move { axum::serve(idp, router).await.unwrap() });

    let mut config = TestApp::config(Engines::Embedded).await;
    config.auth.algorithm = ioto::config::JwtAlgorithm::ES256;
    config.auth.jwks_url = Some(format!("http://{idp_addr}/certs"));
    let app = TestApp::spawn_with(config).await;
    let t = app.factory.tenant("Federated").await;
    let u = app.factory.user(&t, Role::Viewer, None).await;

    let body = app
        .gql(
            Some(&es256(Some("test-key"), &claims(&t.id.to_string()))),
            ME,
            json!({}),
        )
        .await;
    assert_eq!(
        body["data"]["me"],
        json!({ "role": "OPERATOR", "subject": "idp-user-7", "tenant": { "name": "Federated" } }),
        "{body}"
    );

    for (what, token) in [
        (
            "unknown kid",
            es256(Some("other-key"), &claims(&t.id.to_string())),
        ),
        ("no kid", es256(None, &claims(&t.id.to_string()))),
    ] {
        let (status, body) = app.gql_status(Some(&token), ME, json!({})).await;
        assert_eq!(
            (status, error_code(&body).as_deref()),
            (401, Some("UNAUTHENTICATED")),
            "{what}: {body}"
        );
    }

    // This server holds no signing key: password login is refused, pointing at the provider.
    let body = app
        .gql(
            None,
            "mutation($e: String!, $p: String!) { login(email: $e, password: $p) { token } }",
            json!({"e": u.email.as_str(), "p": TEST_PASSWORD}),
        )
        .await;
    assert_eq!(error_code(&body).as_deref(), Some("FORBIDDEN"), "{body}");
    assert!(body["errors"][0]["message"]
        .as_str()
        .unwrap()
        .contains("identity provider"));
    app.stop().await;
}
