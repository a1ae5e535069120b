//! Rate cards and rated usage through GraphQL: validation names the field, roles see what they
//! may, a tenant bills its sub-customers from `ratedUsage`, supplier cost stays the platform's.

use chrono::Utc;
use ioto_domain::identifiers::MccMnc;
use ioto_domain::ports::CdrRecord;
use ioto_domain::Role;
use ioto_test_support::app::{assert_refused, error_code};
use ioto_test_support::{Engines, TestApp, TEST_PASSWORD};
use serde_json::{json, Value};

const CREATE: &str = "mutation($input: CreateRateCardInput!) { createRateCard(input: $input) { id kind currency \
     versions { effectiveFrom accessFee roundingIncrementBytes zones { name countries networks pricePerMb isDefault } } } }";

fn card(tenant: &str, kind: &str, from: &str, eu_countries: Value, price: &str) -> Value {
    json!({ "input": {
        "tenantId": tenant, "kind": kind, "name": "Standard", "currency": "eur", "billingPeriod": "MONTHLY",
        "versions": [{
            "effectiveFrom": from, "accessFee": "1.50", "roundingIncrementBytes": 1000,
            "zones": [
                { "name": "Home", "networks": ["262-01"], "pricePerMb": price },
                { "name": "EU", "countries": eu_countries, "pricePerMb": "0.02" },
                { "name": "World", "pricePerMb": "0.1", "isDefault": true }
            ]
        }]
    }})
}

#[tokio::test]
async fn rate_cards_and_rated_usage_through_graphql() {
    let app = TestApp::spawn(Engines::Real).await;
    let f = &app.factory;
    let t = f.tenant("Billing Co").await;
    let acme = f.customer(&t, "Acme").await;
    let acme_sims = f.sims(&t, Some(acme.id), 2).await;
    let other_sims = f.sims(&t, None, 1).await;
    let token = |role: Role, customer| {
        let app = &app;
        let t = &t;
        async move {
            let u = app.factory.user(t, role, customer).await;
            app.login(u.email.as_str(), TEST_PASSWORD).await
        }
    };
    let platform = token(Role::PlatformAdmin, None).await;
    let admin = token(Role::TenantAdmin, None).await;
    let viewer = token(Role::Viewer, None).await;
    let customer = token(Role::CustomerUser, Some(acme.id)).await;
    let tenant = t.id.to_string();
    let month = format!("{}", Utc::now().format("%Y-%m-01"));

    // Bad input names the field and what is allowed.
    for (vars, field, why) in [
        (
            card(&tenant, "RETAIL", &month, json!(["DE", "DE"]), "0.01"),
            "versions[0].zones[1].countries[1]",
            "already in zone 'EU'",
        ),
        (
            card(&tenant, "RETAIL", &month, json!(["XX"]), "0.01"),
            "versions[0].zones[1].countries[0]",
            "ISO 3166",
        ),
        (
            card(&tenant, "RETAIL", &month, json!(["DE"]), "-1"),
            "versions[0].zones[0].pricePerMb",
            "negative",
        ),
        (
            card(&tenant, "RETAIL", &month, json!(["DE"]), "0.0000001"),
            "versions[0].zones[0].pricePerMb",
            "6 decimal places",
        ),
    ] {
        let body = app.gql(Some(&platform), CREATE, vars).await;
        assert_refused(&body, field, why);
    }
    let mut bad_network = card(&tenant, "RETAIL", &month, json!(["DE"]), "0.01");
    bad_network["input"]["versions"][0]["zones"][0]["networks"] = json!(["26-201"]);
    let body = app.gql(Some(&platform), CREATE, bad_network).await;
    assert_eq!(
        body["errors"][0]["extensions"]["field"], "versions[0].zones[0].networks[0]",
        "{body}"
    );
    let mut bad_currency = card(&tenant, "RETAIL", &month, json!(["DE"]), "0.01");
    bad_currency["input"]["currency"] = json!("EURO");
    let body = app.gql(Some(&platform), CREATE, bad_currency).await;
    assert_eq!(body["errors"][0]["extensions"]["field"], "currency", "{body}");

    // Nothing of the refused cards was stored.
    let body = app
        .gql(
            Some(&platform),
            "query($t: ID) { rateCards(tenantId: $t) { id } }",
            json!({"t": tenant}),
        )
        .await;
    assert_eq!(body["data"]["rateCards"], json!([]), "{body}");

    let body = app
        .gql(
            Some(&platform),
            CREATE,
            card(&tenant, "RETAIL", &month, json!(["DE", "FR"]), "0.5"),
        )
        .await;
    let created = &body["data"]["createRateCard"];
    assert_eq!(created["currency"], "EUR", "{body}");
    assert_eq!(
        created["versions"][0]["zones"][1]["countries"],
        json!(["DE", "FR"])
    );
    assert_eq!(created["versions"][0]["zones"][0]["pricePerMb"], "0.50");
    assert_eq!(created["versions"][0]["roundingIncrementBytes"], 1000);
    let body = app
        .gql(
            Some(&platform),
            CREATE,
            card(&tenant, "SUPPLIER", &month, json!(["DE", "FR"]), "0.2"),
        )
        .await;
    assert!(body["errors"].is_null(), "{body}");

    // Today's traffic: 2 MB on each of Acme's SIMs at home, 1 MB on the other SIM.
    let now = Utc::now();
    let cdrs: Vec<CdrRecord> = acme_sims
        .iter()
        .chain(&other_sims)
        .enumerate()
        .map(|(i, s)| CdrRecord {
            tenant_id: t.id,
            customer_id: s.customer_id,
            cdr_id: format!("{}-{i}", t.id),
            iccid: s.iccid.clone(),
            start: now - chrono::Duration::minutes(20),
            end: now - chrono::Duration::minutes(10),
            mcc_mnc: MccMnc::parse("262-01").unwrap(),
            bytes_in: if s.customer_id.is_some() {
                1_500_000
            } else {
                999_001
            },
            bytes_out: if s.customer_id.is_some() { 500_000 } else { 0 },
            rating_group: 0,
        })
        .collect();
    app.app_engines.usage.write_cdrs(&cdrs).await.unwrap();

    let body = app
        .gql(
            Some(&admin),
            "mutation { rateBillingPeriod { kind status totals { records usageCost accessFees } } }",
            json!({}),
        )
        .await;
    let runs = body["data"]["rateBillingPeriod"]
        .as_array()
        .unwrap_or_else(|| panic!("{body}"));
    let retail = runs.iter().find(|r| r["kind"] == "RETAIL").unwrap();
    assert_eq!(retail["status"], "CURRENT");
    // 4 MB + 1 MB (999,001 B rounded up to 1,000,000) at 0.5; three SIMs active this month.
    assert_eq!(retail["totals"]["usageCost"], "2.50", "{body}");
    assert_eq!(retail["totals"]["accessFees"], "4.50");

    let by_customer = "query($kind: RateCardKind!) { ratedUsage(kind: $kind, by: CUSTOMER) { currency usage { key records cost } usageTotal feesBy fees { key charges fees } feesTotal } }";
    let body = app
        .gql(Some(&admin), by_customer, json!({"kind": "RETAIL"}))
        .await;
    let rated = &body["data"]["ratedUsage"];
    assert_eq!(rated["currency"], "EUR", "{body}");
    assert_eq!(
        rated["usage"],
        json!([
            { "key": "", "records": 1, "cost": "0.50" },
            { "key": acme.id.to_string(), "records": 2, "cost": "2.00" }
        ]),
        "what the tenant bills each sub-customer"
    );
    assert_eq!(rated["usageTotal"], "2.50");
    assert_eq!(rated["feesBy"], "CUSTOMER");
    assert_eq!(rated["feesTotal"], "4.50");

    // The platform's invoice data for the tenant: lines an ERP imports, total = sum of lines.
    let invoice = "query($t: ID!) { tenantInvoice(tenantId: $t) { currency isFinal total lines { itemCode quantity unit unitPrice amount } } }";
    let body = app.gql(Some(&platform), invoice, json!({"t": tenant})).await;
    assert_eq!(
        body["data"]["tenantInvoice"],
        json!({
            "currency": "EUR", "isFinal": false, "total": "7.00",
            "lines": [
                { "itemCode": "DATA-HOME", "quantity": "5.00", "unit": "MB", "unitPrice": "0.50", "amount": "2.50" },
                { "itemCode": "ACCESS-FEE", "quantity": "3.00", "unit": "SIM-month", "unitPrice": "1.50", "amount": "4.50" }
            ]
        }),
        "{body}"
    );
    let body = app.gql(Some(&admin), invoice, json!({"t": tenant})).await;
    assert_eq!(error_code(&body).as_deref(), Some("FORBIDDEN"), "{body}");
    // Beside it, what the period costs the platform by the supplier card (5 MB at 0.2, three
    // SIM-months at 1.50) and the margin: 7.00 - 5.50.
    let body = app
        .gql(
            Some(&platform),
            "query($t: ID!) { tenantInvoice(tenantId: $t) { total supplierCost margin } }",
            json!({"t": tenant}),
        )
        .await;
    assert_eq!(
        body["data"]["tenantInvoice"],
        json!({ "total": "7.00", "supplierCost": "5.50", "margin": "1.50" }),
        "{body}"
    );

    // Supplier cost is the platform's.
    let body = app
        .gql(Some(&admin), by_customer, json!({"kind": "SUPPLIER"}))
        .await;
    assert_eq!(error_code(&body).as_deref(), Some("FORBIDDEN"), "{body}");
    let body = app
        .gql(
            Some(&platform),
            "query($t: ID) { ratedUsage(tenantId: $t, kind: SUPPLIER, by: TENANT) { usageTotal } }",
            json!({"t": tenant}),
        )
        .await;
    assert_eq!(body["data"]["ratedUsage"]["usageTotal"], "1.00", "{body}");
    let body = app.gql(Some(&viewer), "{ rateCards { kind } }", json!({})).await;
    assert_eq!(body["data"]["rateCards"], json!([{ "kind": "RETAIL" }]), "{body}");

    // A customer user sees costs only once the tenant shares them, and then only its own.
    let by_sim = "{ ratedUsage(by: SIM) { usage { key cost } usageTotal } }";
    let body = app.gql(Some(&customer), by_sim, json!({})).await;
    assert_eq!(error_code(&body).as_deref(), Some("FORBIDDEN"), "{body}");
    let body = app
        .gql(
            Some(&admin),
            "mutation { setFleetSettings(customersSeeCosts: true) { customersSeeSims customersSeeCosts } }",
            json!({}),
        )
        .await;
    assert_eq!(
        body["data"]["setFleetSettings"],
        json!({"customersSeeSims": true, "customersSeeCosts": true}),
        "{body}"
    );
    let body = app.gql(Some(&customer), by_sim, json!({})).await;
    let rows = body["data"]["ratedUsage"]["usage"]
        .as_array()
        .unwrap_or_else(|| panic!("{body}"));
    let mut keys: Vec<&str> = rows.iter().map(|r| r["key"].as_str().unwrap()).collect();
    keys.sort_unstable();
    let mut mine: Vec<String> = acme_sims.iter().map(|s| s.iccid.to_string()).collect();
    mine.sort_unstable();
    assert_eq!(keys, mine, "only Acme's SIMs");
    assert_eq!(body["data"]["ratedUsage"]["usageTotal"], "2.00");

    // Versions for a day already past are refused; the tenant admin cannot add one at all.
    let card_id = created["id"].as_str().unwrap().to_owned();
    let yesterday = (Utc::now() - chrono::Duration::days(1))
        .format("%Y-%m-%d")
        .to_string();
    let add = "mutation($id: ID!, $v: RateCardVersionInput!) { addRateCardVersion(rateCardId: $id, version: $v) { versions { effectiveFrom } } }";
    let version = |from: &str| json!({"effectiveFrom": from, "accessFee": "2", "zones": [{"name": "World", "pricePerMb": "0.3", "isDefault": true}]});
    let body = app
        .gql(
            Some(&platform),
            add,
            json!({"id": card_id, "v": version(&yesterday)}),
        )
        .await;
    assert_eq!(
        body["errors"][0]["extensions"]["field"], "effectiveFrom",
        "{body}"
    );
    let body = app
        .gql(Some(&admin), add, json!({"id": card_id, "v": version(&month)}))
        .await;
    assert_eq!(error_code(&body).as_deref(), Some("FORBIDDEN"), "{body}");
    app.stop().await;
}
