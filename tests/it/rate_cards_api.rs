//! A rate card's life through GraphQL: a version added for a later day prices from that day,
//! a retired card rates no period from its retirement, access fees are checked like prices and
//! charged to the SIMs that were ACTIVE in the month (on Postgres and on SQLite).

use chrono::{DateTime, Duration, Months, NaiveDate, Utc};
use ioto_domain::directory::Tenant;
use ioto_domain::fleet::{AuditAction, AuditStamp, NewSim, Sim, SimState};
use ioto_domain::identifiers::{Iccid, Imsi, MccMnc};
use ioto_domain::ports::{CdrRecord, Changeset, Versioned};
use ioto_domain::{Role, Scope, TenantId};
use ioto_test_support::app::assert_refused;
use ioto_test_support::{Engines, TestApp, TEST_PASSWORD};
use serde_json::{json, Value};

const CREATE: &str = "mutation($input: CreateRateCardInput!) { createRateCard(input: $input) { id } }";
const ADD: &str = "mutation($id: ID!, $v: RateCardVersionInput!) { addRateCardVersion(rateCardId: $id, version: $v) { versions { effectiveFrom } } }";
const RETIRE: &str =
    "mutation($id: ID!, $from: Date!) { retireRateCard(rateCardId: $id, from: $from) { retiredFrom } }";
const RATE: &str = "mutation($t: ID, $day: Date) { rateBillingPeriod(tenantId: $t, day: $day) { kind periodStart totals { records usageCost accessFees accessFeeSims } } }";

fn day(d: NaiveDate) -> String {
    d.format("%Y-%m-%d").to_string()
}

fn this_month() -> NaiveDate {
    let today = Utc::now().date_naive();
    today - Duration::days(i64::from(chrono::Datelike::day0(&today)))
}

/// A monthly card from `from`: home network 262-01 at 0.50 per MB, the world at 0.10.
fn card(tenant: &Tenant, kind: &str, from: NaiveDate, access_fee: &str) -> Value {
    json!({ "input": {
        "tenantId": tenant.id.to_string(), "kind": kind, "name": "Standard", "currency": "EUR",
        "billingPeriod": "MONTHLY",
        "versions": [{
            "effectiveFrom": day(from), "accessFee": access_fee,
            "zones": [
                { "name": "Home", "networks": ["262-01"], "pricePerMb": "0.50" },
                { "name": "World", "pricePerMb": "0.10", "isDefault": true }
            ]
        }]
    }})
}

async fn platform_admin(app: &TestApp, tenant: &Tenant) -> String {
    let u = app.factory.user(tenant, Role::PlatformAdmin, None).await;
    app.login(u.email.as_str(), TEST_PASSWORD).await
}

async fn create_card(app: &TestApp, token: &str, vars: Value) -> String {
    let body = app.gql(Some(token), CREATE, vars).await;
    body["data"]["createRateCard"]["id"]
        .as_str()
        .unwrap_or_else(|| panic!("{body}"))
        .to_owned()
}

/// `bytes` in at home (262-01) on `on`, the tenant's CDR number `n`.
pub(super) fn home_cdr(tenant: TenantId, sim: &Sim, n: u32, on: NaiveDate, bytes: u64) -> CdrRecord {
    let start = on.and_hms_opt(10, 0, 0).unwrap().and_utc();
    CdrRecord {
        tenant_id: tenant,
        customer_id: None,
        cdr_id: format!("{tenant}-{n}"),
        iccid: sim.iccid.clone(),
        start,
        end: start + Duration::minutes(5),
        mcc_mnc: MccMnc::parse("262-01").unwrap(),
        bytes_in: bytes,
        bytes_out: 0,
        rating_group: 0,
    }
}

/// Rates the period holding `on` and answers the retail cost of the day `on` (`None`: not rated).
async fn cost_on(app: &TestApp, token: &str, tenant: &Tenant, on: NaiveDate) -> Option<String> {
    let t = tenant.id.to_string();
    let body = app.gql(Some(token), RATE, json!({"t": t, "day": day(on)})).await;
    assert!(body["errors"].is_null(), "{body}");
    let body = app
        .gql(
            Some(token),
            "query($t: ID, $day: Date) { ratedUsage(tenantId: $t, day: $day, by: DAY) { usage { key cost } } }",
            json!({"t": t, "day": day(on)}),
        )
        .await;
    let rows = body["data"]["ratedUsage"]["usage"]
        .as_array()
        .unwrap_or_else(|| panic!("{body}"));
    rows.iter()
        .find(|r| r["key"] == day(on))
        .map(|r| r["cost"].as_str().unwrap().to_owned())
}

#[tokio::test]
async fn a_version_added_for_a_later_day_prices_from_that_day() {
    let app = TestApp::spawn(Engines::Real).await;
    let t = app.factory.tenant("Versions").await;
    let sim = app.factory.sims(&t, None, 1).await.remove(0);
    let platform = platform_admin(&app, &t).await;
    let id = create_card(&app, &platform, card(&t, "RETAIL", this_month(), "0")).await;

    // From the day after tomorrow, everything costs 0.30 per MB.
    let new_day = Utc::now().date_naive() + Duration::days(2);
    let body = app
        .gql(
            Some(&platform),
            ADD,
            json!({"id": id, "v": {"effectiveFrom": day(new_day), "accessFee": "0",
                "zones": [{"name": "World", "pricePerMb": "0.30", "isDefault": true}]}}),
        )
        .await;
    assert_eq!(
        body["data"]["addRateCardVersion"]["versions"],
        json!([{"effectiveFrom": day(this_month())}, {"effectiveFrom": day(new_day)}]),
        "{body}"
    );

    // 1 MB at home the day before and 1 MB on the day: the old price, then the new one.
    let before = new_day - Duration::days(1);
    app.app_engines
        .usage
        .write_cdrs(&[
            home_cdr(t.id, &sim, 1, before, 1_000_000),
            home_cdr(t.id, &sim, 2, new_day, 1_000_000),
        ])
        .await
        .unwrap();
    assert_eq!(
        cost_on(&app, &platform, &t, before).await.as_deref(),
        Some("0.50")
    );
    assert_eq!(
        cost_on(&app, &platform, &t, new_day).await.as_deref(),
        Some("0.30")
    );
    app.stop().await;
}

#[tokio::test]
async fn a_retired_card_rates_no_period_from_its_retirement() {
    let app = TestApp::spawn(Engines::Real).await;
    let t = app.factory.tenant("Retiring").await;
    let sim = app.factory.sims(&t, None, 1).await.remove(0);
    let platform = platform_admin(&app, &t).await;
    let retail = create_card(&app, &platform, card(&t, "RETAIL", this_month(), "0")).await;
    create_card(&app, &platform, card(&t, "SUPPLIER", this_month(), "0")).await;

    // A day already past is refused, naming the field; nothing is retired.
    let yesterday = Utc::now().date_naive() - Duration::days(1);
    let body = app
        .gql(
            Some(&platform),
            RETIRE,
            json!({"id": retail, "from": day(yesterday)}),
        )
        .await;
    assert_refused(&body, "from", "in the past");

    let next_month = this_month() + Months::new(1);
    let body = app
        .gql(
            Some(&platform),
            RETIRE,
            json!({"id": retail, "from": day(next_month)}),
        )
        .await;
    assert_eq!(
        body["data"]["retireRateCard"]["retiredFrom"],
        day(next_month),
        "{body}"
    );
    // No version can take effect once it is retired.
    let body = app
        .gql(
            Some(&platform),
            ADD,
            json!({"id": retail, "v": {"effectiveFrom": day(next_month + Duration::days(3)), "accessFee": "0",
                "zones": [{"name": "World", "pricePerMb": "0.30", "isDefault": true}]}}),
        )
        .await;
    assert_eq!(
        body["errors"][0]["extensions"]["field"], "effectiveFrom",
        "{body}"
    );

    // This month is still rated by both cards; next month by the supplier card only.
    let today = Utc::now().date_naive();
    let later = next_month + Duration::days(4);
    app.app_engines
        .usage
        .write_cdrs(&[
            home_cdr(t.id, &sim, 1, today, 1_000_000),
            home_cdr(t.id, &sim, 2, later, 1_000_000),
        ])
        .await
        .unwrap();
    let kinds = |body: &Value| {
        let mut k: Vec<String> = body["data"]["rateBillingPeriod"]
            .as_array()
            .unwrap_or_else(|| panic!("{body}"))
            .iter()
            .map(|r| r["kind"].as_str().unwrap().to_owned())
            .collect();
        k.sort_unstable();
        k
    };
    let tenant = t.id.to_string();
    let body = app
        .gql(Some(&platform), RATE, json!({"t": tenant, "day": day(today)}))
        .await;
    assert_eq!(kinds(&body), ["RETAIL", "SUPPLIER"], "{body}");
    let body = app
        .gql(Some(&platform), RATE, json!({"t": tenant, "day": day(later)}))
        .await;
    assert_eq!(kinds(&body), ["SUPPLIER"], "{body}");
    assert_eq!(
        body["data"]["rateBillingPeriod"][0]["totals"]["usageCost"], "0.50",
        "{body}"
    );
    let rated = "query($t: ID, $day: Date, $kind: RateCardKind!) { ratedUsage(tenantId: $t, kind: $kind, day: $day, by: TENANT) { usageTotal } }";
    let body = app
        .gql(
            Some(&platform),
            rated,
            json!({"t": tenant, "day": day(later), "kind": "RETAIL"}),
        )
        .await;
    assert!(body["errors"].is_null(), "{body}");
    assert_eq!(
        body["data"]["ratedUsage"],
        Value::Null,
        "the retired card prices nothing"
    );
    let body = app
        .gql(
            Some(&platform),
            rated,
            json!({"t": tenant, "day": day(today), "kind": "RETAIL"}),
        )
        .await;
    assert_eq!(body["data"]["ratedUsage"]["usageTotal"], "0.50", "{body}");
    app.stop().await;
}

#[tokio::test]
async fn access_fees_that_are_negative_or_too_precise_are_refused_naming_the_field() {
    let app = TestApp::spawn(Engines::Real).await;
    let t = app.factory.tenant("Fee checks").await;
    let platform = platform_admin(&app, &t).await;
    for (fee, why) in [("-1.50", "negative"), ("0.0000001", "6 decimal places")] {
        let body = app
            .gql(Some(&platform), CREATE, card(&t, "RETAIL", this_month(), fee))
            .await;
        assert_refused(&body, "versions[0].accessFee", why);
    }
    let id = create_card(&app, &platform, card(&t, "RETAIL", this_month(), "1.50")).await;
    let later = Utc::now().date_naive() + Duration::days(1);
    for (fee, why) in [("-0.01", "negative"), ("1.0000001", "6 decimal places")] {
        let body = app
            .gql(
                Some(&platform),
                ADD,
                json!({"id": id, "v": {"effectiveFrom": day(later), "accessFee": fee,
                    "zones": [{"name": "World", "pricePerMb": "0.30", "isDefault": true}]}}),
            )
            .await;
        assert_refused(&body, "version.accessFee", why);
    }
    // Nothing of the refused versions was stored.
    let body = app
        .gql(
            Some(&platform),
            "query($id: ID!) { rateCard(id: $id) { versions { accessFee } } }",
            json!({"id": id}),
        )
        .await;
    assert_eq!(
        body["data"]["rateCard"]["versions"],
        json!([{"accessFee": "1.50"}]),
        "{body}"
    );
    app.stop().await;
}

/// A SIM created in `state` at `at` (its audit trail says so from then).
async fn sim_since(app: &TestApp, tenant: &Tenant, state: SimState, at: DateTime<Utc>) -> Sim {
    let n = uuid::Uuid::new_v4().as_u128() % 10_000_000_000_000;
    let mut s = NewSim::basic(
        tenant.id,
        Iccid::with_check_digit(&format!("8977{n:014}")).unwrap(),
        Imsi::parse(&format!("{n:015}")).unwrap(),
    );
    s.state = state;
    let fleet = &app.factory.fleet;
    let ids = fleet
        .insert_sims(Scope::Platform, &[&s], AuditAction::Created, &stamp(at), None)
        .await
        .unwrap();
    fleet.sims_by_id(Scope::Platform, &ids).await.unwrap().remove(0)
}

fn stamp(at: DateTime<Utc>) -> AuditStamp {
    AuditStamp {
        actor: "test".into(),
        actor_user_id: None,
        at,
        note: None,
    }
}

/// Moves `sim` to `state` at `at`, with its audit entry.
async fn change_state(app: &TestApp, sim: &Sim, state: SimState, at: DateTime<Utc>) {
    let mut row = sim.clone();
    row.state = state;
    let entry = ioto_domain::fleet::NewAuditEntry {
        tenant_id: sim.tenant_id,
        customer_id: sim.customer_id,
        entity_kind: ioto_domain::fleet::EntityKind::Sim,
        entity_id: sim.id.0,
        entity_ref: sim.iccid.to_string(),
        action: AuditAction::StateChanged,
        stamp: stamp(at),
        old_value: json!({ "state": sim.state.as_str() }),
        new_value: json!({ "state": state.as_str() }),
    };
    app.factory
        .fleet
        .apply(
            Scope::Platform,
            Changeset {
                sims: vec![Versioned {
                    expected_version: Some(sim.version),
                    row,
                }],
                audit: vec![entry],
                ..Changeset::default()
            },
        )
        .await
        .unwrap();
}

/// The month's access fee is owed by a SIM ACTIVE when the month began (made ACTIVE months
/// before), not by one never ACTIVE in the month, nor by one suspended before the month began.
async fn access_fee_charges_the_sims_active_in_the_month(engines: Engines) {
    let app = TestApp::spawn(engines).await;
    let t = app.factory.tenant("Fees").await;
    let platform = platform_admin(&app, &t).await;
    let month = this_month();
    let last_month = month - Months::new(1);
    let two_months_ago = (month - Months::new(2)).and_hms_opt(12, 0, 0).unwrap().and_utc();
    let mid_last_month = (last_month + Duration::days(14))
        .and_hms_opt(12, 0, 0)
        .unwrap()
        .and_utc();
    let active = sim_since(&app, &t, SimState::Active, two_months_ago).await;
    let inventory = sim_since(&app, &t, SimState::Inventory, two_months_ago).await;
    let suspended = sim_since(&app, &t, SimState::Active, two_months_ago).await;
    change_state(&app, &suspended, SimState::Suspended, mid_last_month).await;
    create_card(
        &app,
        &platform,
        card(&t, "RETAIL", month - Months::new(2), "1.50"),
    )
    .await;

    let tenant = t.id.to_string();
    let fees = "query($t: ID, $day: Date) { ratedUsage(tenantId: $t, day: $day, by: SIM) { fees { key charges fees } feesTotal } }";
    let rate_and_read = |on: NaiveDate| {
        let (app, platform, tenant) = (&app, &platform, &tenant);
        async move {
            let body = app
                .gql(Some(platform), RATE, json!({"t": tenant, "day": day(on)}))
                .await;
            let totals = body["data"]["rateBillingPeriod"][0]["totals"].clone();
            assert!(!totals.is_null(), "{body}");
            let body = app
                .gql(Some(platform), fees, json!({"t": tenant, "day": day(on)}))
                .await;
            (totals, body["data"]["ratedUsage"].clone())
        }
    };
    let owed = |sims: &[&Sim]| {
        let mut rows: Vec<Value> = sims
            .iter()
            .map(|s| json!({"key": s.iccid.to_string(), "charges": 1, "fees": "1.50"}))
            .collect();
        rows.sort_by_key(|r| r["key"].as_str().unwrap().to_owned());
        Value::Array(rows)
    };

    // This month: only the SIM that was ACTIVE when it began.
    let (totals, rated) = rate_and_read(month).await;
    assert_eq!(totals["accessFees"], "1.50", "{totals}");
    assert_eq!(totals["accessFeeSims"], 1, "{totals}");
    assert_eq!(rated["fees"], owed(&[&active]), "{rated}");
    assert_eq!(rated["feesTotal"], "1.50", "{rated}");
    // Last month: the suspended SIM was ACTIVE when it began, and owes it too; the SIM in
    // inventory never does.
    let (totals, rated) = rate_and_read(last_month).await;
    assert_eq!(totals["accessFees"], "3.00", "{totals}");
    assert_eq!(rated["fees"], owed(&[&active, &suspended]), "{rated}");
    assert!(
        !rated.to_string().contains(inventory.iccid.as_str()),
        "a SIM never ACTIVE owes nothing: {rated}"
    );
    app.stop().await;
}

#[tokio::test]
async fn access_fee_charges_the_sims_active_in_the_month_on_postgres() {
    access_fee_charges_the_sims_active_in_the_month(Engines::Real).await;
}

#[tokio::test]
async fn access_fee_charges_the_sims_active_in_the_month_on_sqlite() {
    access_fee_charges_the_sims_active_in_the_month(Engines::Embedded).await;
}
