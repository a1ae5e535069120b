//! Each role can do exactly what it should (docs/roles.md), checked through GraphQL.

use ioto_domain::Role;
use ioto_test_support::app::error_code;
use ioto_test_support::{Engines, TestApp, TEST_PASSWORD};
use serde_json::{json, Value};

struct Case {
    what: &'static str,
    query: &'static str,
    allowed: &'static [Role],
}

use Role::*;

const CASES: &[Case] = &[
    Case { what: "create tenant", query: "mutation($n: String!) { createTenant(input: {slug: $n, name: \"New\"}) { id } }", allowed: &[PlatformAdmin] },
    Case { what: "list customers", query: "{ customers { nodes { id } } }", allowed: &[PlatformAdmin, TenantAdmin, Operator, CustomerUser, Viewer] },
    Case { what: "create customer", query: "mutation($n: String!) { createCustomer(input: {name: $n}) { id } }", allowed: &[PlatformAdmin, TenantAdmin] },
    Case { what: "list users", query: "{ users { nodes { id } } }", allowed: &[PlatformAdmin, TenantAdmin, Operator] },
    Case {
        what: "create user",
        query: "mutation($n: String!) { createUser(input: {email: $n, displayName: \"N\", role: VIEWER, password: \"long-enough-pw\"}) { id } }",
        allowed: &[PlatformAdmin, TenantAdmin],
    },
    Case { what: "list SIMs", query: "{ sims { nodes { iccid } } }", allowed: &[PlatformAdmin, TenantAdmin, Operator, CustomerUser, Viewer] },
    Case { what: "list devices", query: "{ devices { nodes { id } } }", allowed: &[PlatformAdmin, TenantAdmin, Operator, CustomerUser, Viewer] },
    Case {
        what: "create device",
        query: "mutation($imei: String!) { createDevice(input: {imei: $imei, name: \"D\", kind: SENSOR, connectivity: [LORA]}) { id } }",
        allowed: &[PlatformAdmin, TenantAdmin, Operator],
    },
    Case { what: "change the label catalogue", query: "mutation($n: String!) { putLabelSuggestion(key: $n) { key } }", allowed: &[PlatformAdmin, TenantAdmin, Operator] },
    Case { what: "read the audit log", query: "{ auditLog { nodes { id } } }", allowed: &[PlatformAdmin, TenantAdmin, Operator, Viewer] },
    Case { what: "change fleet settings", query: "mutation { setFleetSettings(customersSeeSims: true) { customersSeeSims } }", allowed: &[PlatformAdmin, TenantAdmin] },
    Case { what: "read me", query: "{ me { role } }", allowed: &[PlatformAdmin, TenantAdmin, Operator, CustomerUser, Viewer] },
    // Costs: customer users only where the tenant shares them (off here, the default).
    Case { what: "read rate cards", query: "{ rateCards { kind } }", allowed: &[PlatformAdmin, TenantAdmin, Operator, Viewer] },
    Case { what: "read rating runs", query: "{ ratingRuns { id } }", allowed: &[PlatformAdmin, TenantAdmin, Operator, Viewer] },
    Case { what: "rate a billing period now", query: "mutation { rateBillingPeriod { id } }", allowed: &[PlatformAdmin, TenantAdmin] },
    Case {
        what: "create a rate card",
        query: "mutation($t: ID!) { createRateCard(input: {tenantId: $t, kind: RETAIL, name: \"Std\", currency: \"EUR\", billingPeriod: MONTHLY, versions: [{effectiveFrom: \"2026-01-01\", accessFee: \"1\", zones: [{name: \"World\", pricePerMb: \"0.01\", isDefault: true}]}]}) { id } }",
        allowed: &[PlatformAdmin],
    },
];

fn vars() -> Value {
    let n = uuid::Uuid::new_v4().simple().to_string();
    let imei = ioto_domain::fleet::Imei::with_check_digit(&format!(
        "{:014}",
        uuid::Uuid::new_v4().as_u128() % 100_000_000_000_000
    ))
    .unwrap();
    json!({ "n": format!("n-{}", &n[..12]), "imei": imei.to_string() })
}

#[tokio::test]
async fn each_role_can_do_exactly_what_it_should() {
    let app = TestApp::spawn(Engines::Real).await;
    let f = &app.factory;
    let t = f.tenant("Roles Co").await;
    let acme = f.customer(&t, "Acme").await;
    let other = f.customer(&t, "Other").await;
    f.sims(&t, Some(acme.id), 2).await;
    f.sims(&t, Some(other.id), 3).await;

    for role in Role::ALL {
        let customer = role.is_customer_scoped().then_some(acme.id);
        let user = f.user(&t, role, customer).await;
        let token = app.login(user.email.as_str(), TEST_PASSWORD).await;
        for case in CASES {
            let mut v = vars();
            v["t"] = json!(t.id.to_string());
            if case.what == "create user" {
                v = json!({ "n": format!("{}@example.com", uuid::Uuid::new_v4().simple()) });
            }
            let body = app.gql(Some(&token), case.query, v).await;
            let code = error_code(&body);
            if case.allowed.contains(&role) {
                assert_eq!(code, None, "{role} should be allowed to {}: {body}", case.what);
            } else {
                assert_eq!(
                    code.as_deref(),
                    Some("FORBIDDEN"),
                    "{role} must not {}: {body}",
                    case.what
                );
            }
        }
        // A customer user sees only its own customer and its SIMs.
        if role == CustomerUser {
            let body = app
                .gql(
                    Some(&token),
                    "{ customers { nodes { name } } sims { nodes { customerId } } }",
                    json!({}),
                )
                .await;
            assert_eq!(
                body["data"]["customers"]["nodes"],
                json!([{ "name": "Acme" }]),
                "{body}"
            );
            let sims = body["data"]["sims"]["nodes"].as_array().unwrap();
            assert_eq!(sims.len(), 2);
            assert!(sims.iter().all(|s| s["customerId"] == acme.id.to_string()));
        }
    }

    // Nobody grants more than they have: a tenant admin cannot mint a platform admin.
    let admin = f.user(&t, TenantAdmin, None).await;
    let token = app.login(admin.email.as_str(), TEST_PASSWORD).await;
    let body = app
        .gql(
            Some(&token),
            "mutation { createUser(input: {email: \"boss@example.com\", displayName: \"B\", role: PLATFORM_ADMIN, password: \"long-enough-pw\"}) { id } }",
            json!({}),
        )
        .await;
    assert_eq!(error_code(&body).as_deref(), Some("FORBIDDEN"), "{body}");
    // And a CUSTOMER_USER needs a customer of this tenant.
    let body = app
        .gql(
            Some(&token),
            "mutation { createUser(input: {email: \"c@example.com\", displayName: \"C\", role: CUSTOMER_USER, password: \"long-enough-pw\"}) { id } }",
            json!({}),
        )
        .await;
    assert_eq!(error_code(&body).as_deref(), Some("BAD_USER_INPUT"), "{body}");
    assert_eq!(
        body["errors"][0]["extensions"]["field"], "input.customerId",
        "{body}"
    );
    app.stop().await;
}
