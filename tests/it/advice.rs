//! Quota and plan advice end to end, on both engine sets: a tenant with a retail card whose plan
//! `heavy` is cheaper for heavy users, 90 days of usage written into the usage store, the
//! forecast pass run, and its advice read through GraphQL — a heavy SIM on the base prices told
//! to switch with the saving worked out here by hand, a SIM whose quota is below its month told
//! to raise it, a SIM without a quota and a runaway month told to set one with what it would
//! have saved, a pool below its members' month; sorted by saving, paged; amounts hidden from a
//! sub-customer's user the tenant shares no costs with; another tenant's advice invisible; the
//! projected cost on a forecast; hostile arguments refused naming the argument.

use chrono::{DateTime, Datelike, Duration, Months, NaiveDate, Utc};
use ioto_domain::fleet::Sim;
use ioto_domain::ports::{period_start, Granularity, SessionUpdate};
use ioto_domain::usage::RadioAccessType;
use ioto_domain::{MccMnc, Role};
use ioto_test_support::app::{assert_refused, error_code};
use ioto_test_support::{Engines, TestApp, TEST_PASSWORD};
use serde_json::{json, Value};

pub(crate) const MB: u64 = 1_000_000;
/// The SIMs' parts, by their index: 200 MB a day on the base prices; 10 MB a day under a 100 MB
/// quota; 6 MB a day without a quota, and 2 GB more on the 5th of the pass's month (a
/// sub-customer's SIM, alone in its pool of 100 MB).
pub(crate) const HEAVY: usize = 0;
pub(crate) const CAPPED: usize = 1;

/// The day of the pass: the 18th of this month, or of the month before when that is not past
/// yet (the history is written up to the day before; nothing runs ahead of the clock). Its
/// window — 90 completed days — holds the end of one month, two whole months and 17 days of
/// its own month, whatever the month.
pub(crate) fn pass_day() -> NaiveDate {
    let today = Utc::now().date_naive();
    let this = today.with_day(18).unwrap();
    if this < today {
        this
    } else {
        today
            .with_day(1)
            .unwrap()
            .checked_sub_months(Months::new(1))
            .unwrap()
            .with_day(18)
            .unwrap()
    }
}

pub(crate) fn session(sim: &Sim, day: NaiveDate, bytes: u64, id: &str) -> SessionUpdate {
    let at = day.and_hms_opt(12, 0, 0).unwrap().and_utc();
    SessionUpdate {
        tenant_id: sim.tenant_id,
        customer_id: sim.customer_id,
        iccid: sim.iccid.clone(),
        session_id: id.to_owned(),
        started_at: at,
        event_time: at,
        hour: period_start(at, Granularity::Hour),
        mcc_mnc: MccMnc::parse("262-01").unwrap(),
        rat: RadioAccessType::Lte,
        ip_address: None,
        cell_id: None,
        terminated: true,
        total_in: bytes,
        total_out: 0,
        delta_in: bytes,
        delta_out: 0,
        imei: None,
    }
}

/// 90 days before `day`, at home (262-01): each SIM its part.
pub(crate) fn history(sims: &[Sim], runaway: &Sim, day: NaiveDate) -> Vec<SessionUpdate> {
    let fifth = day.with_day(5).unwrap();
    let mut updates = Vec::new();
    for back in 1..=90 {
        let d = day - Duration::days(back);
        let id = format!("d{back}");
        updates.push(session(&sims[HEAVY], d, 200 * MB, &id));
        updates.push(session(&sims[CAPPED], d, 10 * MB, &id));
        let extra = if d == fifth { 2_000 * MB } else { 0 };
        updates.push(session(runaway, d, 6 * MB + extra, &id));
    }
    updates
}

/// The story's retail card for tenant `tenant`, created by a platform administrator: 0.01 a MB at
/// home, 0.10 elsewhere, 1 EUR a month; plan `heavy` pays 0.002 a MB at home and 10 EUR a month.
pub(crate) async fn retail_card(app: &TestApp, platform_token: &str, tenant: &str) {
    let card = app
        .gql(
            Some(platform_token),
            "mutation($input: CreateRateCardInput!) { createRateCard(input: $input) { id } }",
            json!({"input": {"tenantId": tenant, "kind": "RETAIL", "name": "Retail",
                "currency": "EUR", "billingPeriod": "MONTHLY",
                "versions": [{"effectiveFrom": "2020-01-01", "accessFee": "1", "roundingIncrementBytes": 1,
                    "zones": [{"name": "Home", "networks": ["262-01"], "pricePerMb": "0.01"},
                              {"name": "World", "pricePerMb": "0.10", "isDefault": true}],
                    "overrides": [{"tariffPlan": "heavy", "accessFee": "10",
                        "zonePrices": [{"zone": "Home", "pricePerMb": "0.002"}]}]}]}}),
        )
        .await;
    assert!(card["errors"].is_null(), "{card}");
}

/// A 100 MB monthly quota (no stages, NOTIFY) on the SIM `iccid`.
pub(crate) async fn quota_of_100_mb(app: &TestApp, token: &str, iccid: &str) {
    let quota = app
        .gql(
            Some(token),
            "mutation($i: Iccid!) { setSimQuota(iccid: $i, input: { limitBytes: 100000000, stages: [],
                action: NOTIFY }) { limitBytes } }",
            json!({"i": iccid}),
        )
        .await;
    assert!(quota["errors"].is_null(), "{quota}");
}

/// A pool `name` of 100 MB (no stages, NOTIFY) for the sub-customer's SIMs; its id.
pub(crate) async fn pool_of_100_mb(app: &TestApp, token: &str, name: &str, customer: &str) -> String {
    let pool = app
        .gql(
            Some(token),
            "mutation($in: QuotaPoolInput!) { createQuotaPool(input: $in) { id } }",
            json!({"in": {"name": name, "customerId": customer,
                "limitBytes": 100_000_000, "stages": [], "action": "NOTIFY"}}),
        )
        .await;
    assert!(pool["errors"].is_null(), "{pool}");
    pool["data"]["createQuotaPool"]["id"].as_str().unwrap().to_owned()
}

const ADVICE: &str = "id kind action iccid sim { iccid } poolId currentPlan recommendedPlan
    currentLimitBytes recommendedLimitBytes currentCost recommendedCost saving currency sentence
    windowFrom windowTo computedAt";

/// The tenant's advice as the caller lists it (one page of `first`, after `after`).
async fn list(app: &TestApp, token: &str, first: i64, after: Option<&str>, filter: Value) -> Value {
    let body = app
        .gql(
            Some(token),
            &format!(
                "query($n: Int, $a: String, $f: AdviceFilter) {{ advice(first: $n, after: $a, filter: $f) {{
                    edges {{ cursor node {{ id }} }} nodes {{ {ADVICE} }} pageInfo {{ hasNextPage endCursor }} }} }}"
            ),
            json!({"n": first, "a": after, "f": filter}),
        )
        .await;
    assert!(body["errors"].is_null(), "{body}");
    body["data"]["advice"].clone()
}

fn nodes(page: &Value) -> Vec<Value> {
    page["nodes"].as_array().unwrap().clone()
}

fn actions(list: &[Value]) -> Vec<(String, Value)> {
    list.iter()
        .map(|a| (a["action"].as_str().unwrap().to_owned(), a["saving"].clone()))
        .collect()
}

async fn advice_on(engines: Engines) {
    let app = TestApp::spawn(engines).await;
    let f = &app.factory;
    let t = f.tenant("Advice").await;
    let other = f.tenant("Other advice").await;
    let customer = f.customer(&t, "Runaways").await;
    let sims = f.sims(&t, None, 2).await;
    let runaway = f.sims(&t, Some(customer.id), 1).await.remove(0);
    let admin = f.user(&t, Role::TenantAdmin, None).await;
    let viewer = f.user(&t, Role::Viewer, None).await;
    let customer_user = f.user(&t, Role::CustomerUser, Some(customer.id)).await;
    let platform = f.user(&t, Role::PlatformAdmin, None).await;
    let stranger = f.user(&other, Role::TenantAdmin, None).await;
    let token = app.login(admin.email.as_str(), TEST_PASSWORD).await;
    let viewer_token = app.login(viewer.email.as_str(), TEST_PASSWORD).await;
    let customer_token = app.login(customer_user.email.as_str(), TEST_PASSWORD).await;
    let platform_token = app.login(platform.email.as_str(), TEST_PASSWORD).await;
    let stranger_token = app.login(stranger.email.as_str(), TEST_PASSWORD).await;

    retail_card(&app, &platform_token, &t.id.to_string()).await;

    let day = pass_day();
    app.app_engines
        .usage
        .write_session_updates(&history(&sims, &runaway, day))
        .await
        .unwrap();
    app.app_engines.usage.flush_pending().await.unwrap();
    // A 100 MB quota on the capped SIM, and a pool of 100 MB for the sub-customer's SIMs.
    quota_of_100_mb(&app, &token, sims[CAPPED].iccid.as_str()).await;
    let pool_id = pool_of_100_mb(&app, &token, "Runaways", &customer.id.to_string()).await;

    let now: DateTime<Utc> = day.and_hms_opt(10, 0, 0).unwrap().and_utc();
    let pass = app.forecasts.pass(now).await.unwrap();
    assert!(pass.failed.is_empty(), "{pass:?}");
    assert_eq!(pass.advice, 5, "{pass:?}");

    // By saving: the heavy SIM's plan, the runaway's limit, then the advice saving nothing.
    let page = list(&app, &token, 50, None, json!(null)).await;
    let all = nodes(&page);
    assert_eq!(
        actions(&all[..2]),
        [
            ("SWITCH_PLAN".to_owned(), json!("108.00")),
            ("SET".to_owned(), json!("18.52"))
        ],
        "{page}"
    );
    let mut rest = actions(&all[2..]);
    rest.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(
        rest,
        [
            ("RAISE".to_owned(), json!("0.00")),
            ("RAISE".to_owned(), json!("0.00")),
            ("SET".to_owned(), json!("0.00"))
        ],
        "{page}"
    );

    // The heavy SIM, 90 days of 200 MB at home: on the base prices 90 × 200 MB × 0.01 and four
    // months' fees of 1 (the window touches four months) = 184.00; on `heavy` 90 × 200 MB ×
    // 0.002 and four fees of 10 = 76.00.
    let switch = &all[0];
    assert_eq!(switch["iccid"], json!(sims[HEAVY].iccid), "{switch}");
    assert_eq!(switch["sim"]["iccid"], json!(sims[HEAVY].iccid), "{switch}");
    assert_eq!(
        (
            &switch["kind"],
            &switch["currentPlan"],
            &switch["recommendedPlan"],
            &switch["currentCost"],
            &switch["recommendedCost"],
            &switch["currency"]
        ),
        (
            &json!("PLAN"),
            &Value::Null,
            &json!("heavy"),
            &json!("184.00"),
            &json!("76.00"),
            &json!("EUR")
        ),
        "{switch}"
    );
    assert_eq!(
        switch["sentence"],
        "On plan heavy this SIM's last 90 days would have cost 76.00 EUR instead of 184.00 EUR (save 108.00 EUR)"
    );
    assert_eq!(
        (&switch["windowFrom"], &switch["windowTo"]),
        (
            &json!((day - Duration::days(90)).to_string()),
            &json!((day - Duration::days(1)).to_string())
        )
    );
    // The runaway SIM: a 250 MB limit (its usual month, 6 MB a day, with headroom) is reached on
    // the 5th after 24 MB, so it would have stopped 2,006 − 226 MB that day and 6 MB on each of
    // the 12 days after: 1,852 MB at 0.01 = 18.52.
    let set = &all[1];
    assert_eq!(set["iccid"], json!(runaway.iccid), "{set}");
    assert_eq!(
        (&set["currentLimitBytes"], &set["recommendedLimitBytes"]),
        (&Value::Null, &json!(250_000_000))
    );
    let month = day.format("%B").to_string();
    let sentence = set["sentence"].as_str().unwrap();
    assert!(
        sentence.starts_with("Used up to ")
            && sentence.ends_with(&format!(
                "a month without a limit; a 250 MB limit leaves headroom and would have stopped 1.85 GB \
                 of traffic in {month} (18.52 EUR)"
            )),
        "{set}"
    );

    // The capped SIM's quota, on the SIM; the pool's, on the pool.
    let capped = app
        .gql(
            Some(&token),
            &format!("query($i: Iccid!) {{ sim(iccid: $i) {{ advice {{ {ADVICE} }} }} }}"),
            json!({"i": sims[CAPPED].iccid}),
        )
        .await;
    assert!(capped["errors"].is_null(), "{capped}");
    let raise = &capped["data"]["sim"]["advice"][0];
    assert_eq!(
        (
            &raise["action"],
            &raise["currentLimitBytes"],
            &raise["recommendedLimitBytes"],
            &raise["saving"]
        ),
        (
            &json!("RAISE"),
            &json!(100_000_000),
            &json!(500_000_000),
            &json!("0.00")
        ),
        "{capped}"
    );
    let words = raise["sentence"].as_str().unwrap();
    assert!(
        words.starts_with("Its 100 MB limit is below its usual ")
            && words.ends_with("a month: it was reached in 2 of 2 months; raise it to 500 MB"),
        "{words}"
    );
    assert_eq!(
        capped["data"]["sim"]["advice"].as_array().unwrap().len(),
        1,
        "{capped}"
    );
    let pool_query =
        "query($id: ID!) { quotaPool(id: $id) { advice { action poolId recommendedLimitBytes } } }";
    let of_pool = app.gql(Some(&token), pool_query, json!({"id": pool_id})).await;
    assert_eq!(
        of_pool["data"]["quotaPool"]["advice"],
        json!([{"action": "RAISE", "poolId": pool_id, "recommendedLimitBytes": 250_000_000}]),
        "{of_pool}"
    );

    // Pages of one, by cursor, give the same order.
    let mut paged = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let page = list(&app, &token, 1, after.as_deref(), json!(null)).await;
        paged.extend(nodes(&page).into_iter().map(|n| n["id"].clone()));
        if page["pageInfo"]["hasNextPage"] != json!(true) {
            break;
        }
        after = page["pageInfo"]["endCursor"].as_str().map(str::to_owned);
    }
    let ids: Vec<Value> = all.iter().map(|n| n["id"].clone()).collect();
    assert_eq!(paged, ids);
    // Filters.
    let plans = list(&app, &token, 50, None, json!({"kinds": ["PLAN"]})).await;
    assert_eq!(nodes(&plans).len(), 1, "{plans}");
    let worth = list(&app, &token, 50, None, json!({"minSaving": "20"})).await;
    assert_eq!(nodes(&worth).len(), 1, "{worth}");
    let of_sim = list(&app, &token, 50, None, json!({"iccid": sims[HEAVY].iccid})).await;
    assert_eq!(nodes(&of_sim).len(), 2, "{of_sim}");

    // A viewer reads costs (as on the dashboard); a sub-customer's user, whom the tenant shares
    // SIM data with but not costs, sees its own SIM's advice without amounts, and no pool's.
    let viewed = nodes(&list(&app, &viewer_token, 50, None, json!(null)).await);
    assert_eq!(viewed[0]["saving"], "108.00");
    let theirs = nodes(&list(&app, &customer_token, 50, None, json!(null)).await);
    assert_eq!(theirs.len(), 1, "{theirs:?}");
    let own = &theirs[0];
    assert_eq!(
        (&own["action"], &own["iccid"]),
        (&json!("SET"), &json!(runaway.iccid))
    );
    for money in ["currentCost", "recommendedCost", "saving", "currency"] {
        assert!(own[money].is_null(), "{money}: {own}");
    }
    assert_eq!(own["recommendedLimitBytes"], 250_000_000, "bytes are no secret");
    let plain = own["sentence"].as_str().unwrap();
    assert!(
        plain.contains("would have stopped 1.85 GB") && !plain.contains("EUR"),
        "{plain}"
    );
    let by_saving = app
        .gql(
            Some(&customer_token),
            "{ advice(filter: { minSaving: \"1\" }) { nodes { id } } }",
            json!({}),
        )
        .await;
    assert_eq!(
        error_code(&by_saving).as_deref(),
        Some("FORBIDDEN"),
        "{by_saving}"
    );
    let their_pool = app
        .gql(Some(&customer_token), pool_query, json!({"id": pool_id}))
        .await;
    assert_eq!(
        their_pool["data"]["quotaPool"]["advice"],
        json!([]),
        "{their_pool}"
    );

    // The projected cost of the heavy SIM's month: 17 days of 200 MB at 0.01 and the month's
    // fee so far, and about 2.00 a day to the month's end.
    let forecast = app
        .gql(
            Some(&token),
            "query($i: Iccid!) { sim(iccid: $i) { forecast { projectedCost {
                currency costSoFar projected projectedHigh80 } } } }",
            json!({"i": sims[HEAVY].iccid}),
        )
        .await;
    let projected = &forecast["data"]["sim"]["forecast"]["projectedCost"];
    assert_eq!(
        (&projected["currency"], &projected["costSoFar"]),
        (&json!("EUR"), &json!("35.00")),
        "{forecast}"
    );
    let amount = |v: &Value| v.as_str().unwrap().parse::<f64>().unwrap();
    let month_end = day
        .with_day(1)
        .unwrap()
        .checked_add_months(Months::new(1))
        .unwrap();
    let days_left = (month_end - day).num_days() as f64;
    let expected = 35.0 + days_left * 2.0;
    assert!(
        (amount(&projected["projected"]) - expected).abs() < expected * 0.05,
        "{forecast}"
    );
    assert!(
        amount(&projected["projectedHigh80"]) >= amount(&projected["projected"]),
        "{forecast}"
    );
    let hidden = app
        .gql(
            Some(&customer_token),
            "query($i: Iccid!) { sim(iccid: $i) { forecast { projectedCost { projected } } } }",
            json!({"i": runaway.iccid}),
        )
        .await;
    assert!(hidden["errors"].is_null(), "{hidden}");
    assert!(
        hidden["data"]["sim"]["forecast"]["projectedCost"].is_null(),
        "{hidden}"
    );

    // Another tenant's users see none of it.
    let foreign = list(&app, &stranger_token, 50, None, json!(null)).await;
    assert!(nodes(&foreign).is_empty(), "{foreign}");
    let named = app
        .gql(
            Some(&stranger_token),
            "query($t: ID) { advice(tenantId: $t) { nodes { id } } }",
            json!({"t": t.id.to_string()}),
        )
        .await;
    assert_eq!(error_code(&named).as_deref(), Some("NOT_FOUND"), "{named}");

    // The next pass, nothing having changed, keeps the SIMs' advice as stored and writes the
    // pool's again: the same advice, with the same ids.
    let again = app.forecasts.pass(now + Duration::minutes(61)).await.unwrap();
    assert_eq!((again.unchanged, again.advice), (3, 1), "{again:?}");
    let repeated = nodes(&list(&app, &token, 50, None, json!(null)).await);
    let repeated_ids: Vec<Value> = repeated.iter().map(|n| n["id"].clone()).collect();
    assert_eq!(repeated_ids, ids, "a pass changed or repeated the advice");
}

#[tokio::test]
async fn advice_on_embedded_engines() {
    advice_on(Engines::Embedded).await;
}

#[tokio::test]
async fn advice_on_real_engines() {
    advice_on(Engines::Real).await;
}

/// Hostile arguments to the advice list are refused naming the argument.
#[tokio::test]
async fn advice_arguments_are_refused_naming_the_field() {
    let app = TestApp::spawn(Engines::Embedded).await;
    let f = &app.factory;
    let t = f.tenant("Advice bounds").await;
    let admin = f.user(&t, Role::TenantAdmin, None).await;
    let token = app.login(admin.email.as_str(), TEST_PASSWORD).await;
    let list = "query($n: Int, $a: String) { advice(first: $n, after: $a) { nodes { id } } }";
    let too_many = app.gql(Some(&token), list, json!({"n": 501})).await;
    assert_refused(&too_many, "first", "between 1 and 500");
    let none = app.gql(Some(&token), list, json!({"n": 0})).await;
    assert_refused(&none, "first", "between 1 and");
    let garbage = app.gql(Some(&token), list, json!({"a": "not-a-cursor"})).await;
    assert_refused(&garbage, "after", "not a cursor");
    let customer = app
        .gql(
            Some(&token),
            "{ advice(filter: { customerId: \"nobody\" }) { nodes { id } } }",
            json!({}),
        )
        .await;
    assert_eq!(
        error_code(&customer).as_deref(),
        Some("BAD_USER_INPUT"),
        "{customer}"
    );
}
