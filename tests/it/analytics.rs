//! The analytics query layer and the dashboard through GraphQL, on the embedded engines and on
//! Postgres + ClickHouse: the same events give the same, hand-computed answers on both; each
//! answer names the cube it came from (the coarsest exact one: a day in Berlin comes from hours,
//! a day in Kolkata from nothing, with the reason); drill-down, carrier breakdown, costs and
//! what a customer user may see.

use chrono::{DateTime, Duration, TimeZone, Utc};
use ioto_domain::identifiers::{Iccid, MccMnc};
use ioto_domain::ports::{period_start, CdrRecord, Granularity, SessionUpdate};
use ioto_domain::usage::RadioAccessType;
use ioto_domain::{CustomerId, Role, TenantId};
use ioto_test_support::app::error_code;
use ioto_test_support::{Engines, TestApp, TEST_PASSWORD};
use serde_json::{json, Value};

fn t(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

struct Sess<'a> {
    tenant: TenantId,
    customer: Option<CustomerId>,
    iccid: &'a Iccid,
    id: &'a str,
    started: DateTime<Utc>,
    network: &'a str,
    rat: RadioAccessType,
}

impl Sess<'_> {
    /// An update at `at` with the session's totals so far and what this update added.
    fn update(
        &self,
        at: DateTime<Utc>,
        total: (u64, u64),
        delta: (u64, u64),
        terminated: bool,
    ) -> SessionUpdate {
        SessionUpdate {
            tenant_id: self.tenant,
            customer_id: self.customer,
            iccid: self.iccid.clone(),
            session_id: self.id.into(),
            started_at: self.started,
            event_time: at,
            hour: period_start(at, Granularity::Hour),
            mcc_mnc: MccMnc::parse(self.network).unwrap(),
            rat: self.rat,
            ip_address: None,
            cell_id: None,
            terminated,
            total_in: total.0,
            total_out: total.1,
            delta_in: delta.0,
            delta_out: delta.1,
            imei: None,
        }
    }
}

const ANALYTICS: &str = "query($input: UsageAnalyticsInput!) { usageAnalytics(input: $input) { \
     source unserved { reason message } from to granularity timeZone currency dimensions \
     rows { time network { mccMnc } country subCustomerId iccid label tariffPlan rat \
            measures { bytesIn bytesOut bytesTotal ratedBytes cost activeSims sessions } } \
     totals { bytesIn bytesOut bytesTotal ratedBytes cost activeSims sessions } } }";

const MARCH: (&str, &str) = ("2026-03-01T00:00:00Z", "2026-04-01T00:00:00Z");

fn range(from: &str, to: &str) -> Value {
    json!({ "from": from, "to": to })
}

/// Runs the whole scenario on one set of engines; returns the answers with the ids that differ
/// between runs (ICCIDs, tenant and customer ids) replaced by stable names.
async fn scenario(engines: Engines) -> Value {
    let app = TestApp::spawn(engines).await;
    let f = &app.factory;
    let tenant = f.tenant("Analytics Co").await;
    let acme = f.customer(&tenant, "Acme").await;
    let acme_sims = f.sims(&tenant, Some(acme.id), 2).await;
    let loose = f.sims(&tenant, None, 1).await;
    let (s0, s1, s2) = (&acme_sims[0], &acme_sims[1], &loose[0]);
    let token = |role: Role, customer| {
        let app = &app;
        let tenant = &tenant;
        async move {
            let u = app.factory.user(tenant, role, customer).await;
            app.login(u.email.as_str(), TEST_PASSWORD).await
        }
    };
    let platform = token(Role::PlatformAdmin, None).await;
    let admin = token(Role::TenantAdmin, None).await;
    let customer = token(Role::CustomerUser, Some(acme.id)).await;
    let names: Vec<(String, &str)> = vec![
        (s0.iccid.to_string(), "s0"),
        (s1.iccid.to_string(), "s1"),
        (s2.iccid.to_string(), "s2"),
        (acme.id.to_string(), "acme"),
        (tenant.id.to_string(), "tenant"),
    ];
    let normal = |v: &Value| {
        let mut text = v.to_string();
        for (id, name) in &names {
            text = text.replace(id.as_str(), name);
        }
        serde_json::from_str::<Value>(&text).unwrap()
    };

    // Labels, tariff plans and a device: s0 north in a tracker, s1 south, s2 on the XL plan.
    let device = f.device(&tenant, Some(acme.id), "truck 7").await;
    for (sim, region, plan) in [
        (s0, Some("north"), "iot-s"),
        (s1, Some("south"), "iot-s"),
        (s2, None, "iot-xl"),
    ] {
        let body = app
            .gql(
                Some(&admin),
                "mutation($i: Iccid!, $p: String) { updateSim(iccid: $i, input: { tariffPlan: $p }) { sim { tariffPlan } } }",
                json!({"i": sim.iccid.to_string(), "p": plan}),
            )
            .await;
        assert!(body["errors"].is_null(), "{body}");
        if let Some(region) = region {
            let body = app
                .gql(
                    Some(&admin),
                    "mutation($i: Iccid!, $v: String) { changeSimLabels(iccid: $i, change: { set: [{ key: \"region\", value: $v }] }) { sim { iccid } } }",
                    json!({"i": sim.iccid.to_string(), "v": region}),
                )
                .await;
            assert!(body["errors"].is_null(), "{body}");
        }
    }
    let body = app
        .gql(
            Some(&admin),
            "mutation($i: Iccid!, $d: ID!) { bindSim(iccid: $i, deviceId: $d) { sim { iccid } } }",
            json!({"i": s0.iccid.to_string(), "d": device.id.to_string()}),
        )
        .await;
    assert!(body["errors"].is_null(), "{body}");

    // March: five sessions on three networks and three radio types.
    let sess = |sim: &'static str, id: &'static str, started: &str, network: &'static str, rat| {
        let s = match sim {
            "s0" => s0,
            "s1" => s1,
            _ => s2,
        };
        Sess {
            tenant: tenant.id,
            customer: s.customer_id,
            iccid: &s.iccid,
            id,
            started: t(started),
            network,
            rat,
        }
    };
    let a = sess("s0", "a", "2026-03-10T10:00:00Z", "262-01", RadioAccessType::Lte);
    let b = sess("s0", "b", "2026-03-10T23:30:00Z", "262-02", RadioAccessType::Lte);
    let c = sess(
        "s1",
        "c",
        "2026-03-11T08:00:00Z",
        "208-01",
        RadioAccessType::NbIot,
    );
    let d = sess("s2", "d", "2026-03-20T12:00:00Z", "262-01", RadioAccessType::LteM);
    let e = sess("s2", "e", "2026-04-02T00:30:00Z", "262-01", RadioAccessType::LteM);
    let updates = vec![
        a.update(a.started, (1_000, 100), (1_000, 100), false),
        a.update(t("2026-03-10T11:30:00Z"), (3_000, 300), (2_000, 200), false),
        b.update(b.started, (500, 50), (500, 50), false),
        c.update(c.started, (4_000, 0), (4_000, 0), false),
        c.update(t("2026-03-11T09:00:00Z"), (6_000, 0), (2_000, 0), true),
        d.update(d.started, (10_000, 1_000), (10_000, 1_000), false),
        e.update(e.started, (7_000, 700), (7_000, 700), false),
    ];
    app.app_engines
        .usage
        .write_session_updates(&updates)
        .await
        .unwrap();
    app.app_engines.usage.flush_pending().await.unwrap();

    let ask = |token: &str, input: Value| {
        let app = &app;
        let token = token.to_owned();
        async move { app.gql(Some(&token), ANALYTICS, json!({ "input": input })).await }
    };
    let mut answers = serde_json::Map::new();

    // A UTC month by network comes from the monthly cube.
    let body = ask(
        &admin,
        json!({ "measures": ["BYTES_IN", "BYTES_OUT", "BYTES_TOTAL", "ACTIVE_SIMS"], "dimensions": ["TIME", "NETWORK"],
                "timeRange": range(MARCH.0, MARCH.1), "granularity": "MONTH" }),
    )
    .await;
    let u = &body["data"]["usageAnalytics"];
    assert_eq!(u["source"], "NETWORK_MONTHLY", "{body}");
    let rows: Vec<(String, i64, i64, i64, i64)> = u["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            assert_eq!(r["time"], "2026-03-01T00:00:00+00:00");
            let m = &r["measures"];
            (
                r["network"]["mccMnc"].as_str().unwrap().to_owned(),
                m["bytesIn"].as_i64().unwrap(),
                m["bytesOut"].as_i64().unwrap(),
                m["bytesTotal"].as_i64().unwrap(),
                m["activeSims"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        rows,
        vec![
            ("208-01".into(), 6_000, 0, 6_000, 1),
            ("262-01".into(), 13_000, 1_300, 14_300, 2),
            ("262-02".into(), 500, 50, 550, 1)
        ]
    );
    assert_eq!(
        u["totals"],
        json!({"bytesIn": 19_500, "bytesOut": 1_350, "bytesTotal": 20_850, "activeSims": 3,
               "ratedBytes": null, "cost": null, "sessions": null}),
        "active SIMs counted once over the networks"
    );
    answers.insert("month_by_network".into(), normal(u));

    // The same month by SIM needs the monthly cube with a SIM column; it adds up the same.
    let body = ask(
        &admin,
        json!({ "measures": ["BYTES_TOTAL", "ACTIVE_SIMS"], "dimensions": ["TIME", "SIM"],
                "timeRange": range(MARCH.0, MARCH.1), "granularity": "MONTH" }),
    )
    .await;
    let by_sim = &body["data"]["usageAnalytics"];
    assert_eq!(by_sim["source"], "USAGE_MONTHLY", "{body}");
    assert_eq!(by_sim["rows"].as_array().unwrap().len(), 3, "{body}");
    assert_eq!(by_sim["totals"]["bytesTotal"], 20_850, "{body}");
    assert_eq!(by_sim["totals"]["activeSims"], 3, "{body}");

    // Days in Berlin start at 23:00 UTC: answered from hours, and session b (23:30 UTC on the
    // 10th) counts on Berlin's 11th; in UTC it counts on the 10th, from the daily cube.
    let body = ask(
        &admin,
        json!({ "measures": ["BYTES_TOTAL"], "dimensions": ["TIME"], "timeZone": "Europe/Berlin",
                "timeRange": range("2026-03-09T23:00:00Z", "2026-03-11T23:00:00Z"), "granularity": "DAY" }),
    )
    .await;
    let berlin = &body["data"]["usageAnalytics"];
    assert_eq!(berlin["source"], "USAGE_HOURLY", "{body}");
    assert_eq!(berlin["timeZone"], "Europe/Berlin");
    let days = |u: &Value| -> Vec<(String, i64)> {
        u["rows"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| {
                (
                    r["time"].as_str().unwrap().to_owned(),
                    r["measures"]["bytesTotal"].as_i64().unwrap(),
                )
            })
            .collect()
    };
    assert_eq!(
        days(berlin),
        vec![
            ("2026-03-09T23:00:00+00:00".into(), 3_300),
            ("2026-03-10T23:00:00+00:00".into(), 6_550)
        ]
    );
    answers.insert("berlin_days".into(), normal(berlin));
    let body = ask(
        &admin,
        json!({ "measures": ["BYTES_TOTAL"], "dimensions": ["TIME"],
                "timeRange": range("2026-03-10T00:00:00Z", "2026-03-12T00:00:00Z"), "granularity": "DAY" }),
    )
    .await;
    let utc = &body["data"]["usageAnalytics"];
    assert_eq!(utc["source"], "USAGE_DAILY", "{body}");
    assert_eq!(
        days(utc),
        vec![
            ("2026-03-10T00:00:00+00:00".into(), 3_850),
            ("2026-03-11T00:00:00+00:00".into(), 6_000)
        ]
    );
    answers.insert("utc_days".into(), normal(utc));

    // Kolkata's days start at 18:30 UTC: no cube holds half hours, and the answer says so.
    let body = ask(
        &admin,
        json!({ "measures": ["BYTES_TOTAL"], "dimensions": ["TIME"], "timeZone": "Asia/Kolkata",
                "timeRange": range("2026-03-09T18:30:00Z", "2026-03-11T18:30:00Z"), "granularity": "DAY" }),
    )
    .await;
    let kolkata = &body["data"]["usageAnalytics"];
    assert_eq!(kolkata["source"], Value::Null, "{body}");
    assert_eq!(kolkata["unserved"]["reason"], "TIME_NOT_ALIGNED");
    assert!(
        kolkata["unserved"]["message"].as_str().unwrap().contains("18:30"),
        "{body}"
    );
    assert_eq!(kolkata["rows"], json!([]));

    // Sessions and radio types come from the session cube.
    let body = ask(
        &admin,
        json!({ "measures": ["SESSIONS", "BYTES_TOTAL"], "dimensions": ["RAT"], "timeRange": range(MARCH.0, MARCH.1) }),
    )
    .await;
    let rat = &body["data"]["usageAnalytics"];
    assert_eq!(rat["source"], "SESSIONS_HOURLY", "{body}");
    let by_rat: Vec<(String, i64, i64)> = rat["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["rat"].as_str().unwrap().to_owned(),
                r["measures"]["sessions"].as_i64().unwrap(),
                r["measures"]["bytesTotal"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        by_rat,
        vec![
            ("LTE".into(), 2, 3_850),
            ("LTE-M".into(), 1, 11_000),
            ("NB-IoT".into(), 1, 6_000)
        ]
    );
    answers.insert("by_rat".into(), normal(rat));

    // Countries: s0 used two German networks and counts once there.
    let body = ask(
        &admin,
        json!({ "measures": ["BYTES_TOTAL", "ACTIVE_SIMS"], "dimensions": ["COUNTRY"], "timeRange": range(MARCH.0, MARCH.1) }),
    )
    .await;
    let country = &body["data"]["usageAnalytics"];
    let by_country: Vec<(String, i64, i64)> = country["rows"]
        .as_array()
        .unwrap_or_else(|| panic!("{body}"))
        .iter()
        .map(|r| {
            (
                r["country"].as_str().unwrap().to_owned(),
                r["measures"]["bytesTotal"].as_i64().unwrap(),
                r["measures"]["activeSims"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        by_country,
        vec![("DE".into(), 14_850, 2), ("FR".into(), 6_000, 1)]
    );
    answers.insert("by_country".into(), normal(country));

    // Labels and tariff plans from the fleet (null: SIMs without the label).
    let body = ask(
        &admin,
        json!({ "measures": ["BYTES_TOTAL"], "dimensions": ["LABEL", "TARIFF_PLAN"], "labelKey": "region",
                "timeRange": range(MARCH.0, MARCH.1) }),
    )
    .await;
    let labels = &body["data"]["usageAnalytics"];
    let by_label: Vec<(Value, Value, i64)> = labels["rows"]
        .as_array()
        .unwrap_or_else(|| panic!("{body}"))
        .iter()
        .map(|r| {
            (
                r["label"].clone(),
                r["tariffPlan"].clone(),
                r["measures"]["bytesTotal"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        by_label,
        vec![
            (Value::Null, json!("iot-xl"), 11_000),
            (json!("north"), json!("iot-s"), 3_850),
            (json!("south"), json!("iot-s"), 6_000)
        ]
    );
    answers.insert("by_label".into(), normal(labels));
    let body = ask(
        &admin,
        json!({ "measures": ["BYTES_TOTAL"], "filter": { "labels": [{"key": "region", "value": "north"}] },
                "timeRange": range(MARCH.0, MARCH.1) }),
    )
    .await;
    assert_eq!(
        body["data"]["usageAnalytics"]["totals"]["bytesTotal"], 3_850,
        "{body}"
    );

    // Drill-down from the 262-01 row to its SIMs, most bytes first, paged.
    let drill = "query($input: UsageAnalyticsInput!, $row: AnalyticsRowInput!, $after: String) { \
         usageAnalyticsSims(input: $input, row: $row, first: 1, after: $after) { totalCount source \
         pageInfo { hasNextPage endCursor } edges { node { iccid measures { bytesTotal } } } } }";
    let input = json!({ "measures": ["BYTES_TOTAL"], "dimensions": ["NETWORK"], "timeRange": range(MARCH.0, MARCH.1) });
    let body = app
        .gql(
            Some(&admin),
            drill,
            json!({"input": input, "row": {"network": "262-01"}}),
        )
        .await;
    let page = &body["data"]["usageAnalyticsSims"];
    assert_eq!(page["totalCount"], 2, "{body}");
    assert_eq!(page["edges"][0]["node"]["iccid"], s2.iccid.to_string());
    assert_eq!(page["edges"][0]["node"]["measures"]["bytesTotal"], 11_000);
    assert_eq!(page["pageInfo"]["hasNextPage"], true);
    let body = app
        .gql(
            Some(&admin),
            drill,
            json!({"input": input, "row": {"network": "262-01"}, "after": page["pageInfo"]["endCursor"]}),
        )
        .await;
    let page = &body["data"]["usageAnalyticsSims"];
    assert_eq!(page["edges"][0]["node"]["iccid"], s0.iccid.to_string(), "{body}");
    assert_eq!(page["edges"][0]["node"]["measures"]["bytesTotal"], 3_300);
    assert_eq!(page["pageInfo"]["hasNextPage"], false);

    // Costs need a card: without one nothing is rated, and the answer says so.
    let body = ask(
        &admin,
        json!({ "measures": ["COST"], "dimensions": ["NETWORK"], "timeRange": range(MARCH.0, MARCH.1) }),
    )
    .await;
    let unrated = &body["data"]["usageAnalytics"];
    assert_eq!(
        (
            &unrated["source"],
            &unrated["unserved"]["reason"],
            &unrated["rows"]
        ),
        (&Value::Null, &json!("NO_RATE_CARD"), &json!([])),
        "{body}"
    );
    answers.insert("cost_without_card".into(), normal(unrated));

    // Costs: a card with a March price history, March CDRs rated, cost by network.
    let card = json!({ "input": {
        "tenantId": tenant.id.to_string(), "kind": "RETAIL", "name": "Standard", "currency": "EUR", "billingPeriod": "MONTHLY",
        "versions": [{ "effectiveFrom": "2026-03-01", "accessFee": "1", "roundingIncrementBytes": 1000, "zones": [
            { "name": "Home", "networks": ["262-01"], "pricePerMb": "1" },
            { "name": "EU", "countries": ["DE", "FR"], "pricePerMb": "2" },
            { "name": "World", "pricePerMb": "5", "isDefault": true } ] }]
    }});
    let body = app
        .gql(
            Some(&platform),
            "mutation($input: CreateRateCardInput!) { createRateCard(input: $input) { id } }",
            card,
        )
        .await;
    assert!(body["errors"].is_null(), "{body}");
    let cdr = |id: &str, sim: &ioto_domain::fleet::sim::Sim, at: &str, network: &str, bytes: (u64, u64)| {
        CdrRecord {
            tenant_id: tenant.id,
            customer_id: sim.customer_id,
            cdr_id: format!("{}-{id}", tenant.id),
            iccid: sim.iccid.clone(),
            start: t(at),
            end: t(at) + Duration::minutes(10),
            mcc_mnc: MccMnc::parse(network).unwrap(),
            bytes_in: bytes.0,
            bytes_out: bytes.1,
            rating_group: 0,
        }
    };
    app.app_engines
        .usage
        .write_cdrs(&[
            cdr("1", s0, "2026-03-10T10:00:00Z", "262-01", (1_500_000, 0)),
            cdr("2", s1, "2026-03-11T08:00:00Z", "208-01", (999_001, 0)),
            cdr("3", s2, "2026-03-20T12:00:00Z", "262-02", (250_000, 250_000)),
        ])
        .await
        .unwrap();
    let body = app
        .gql(
            Some(&admin),
            "mutation { rateBillingPeriod(day: \"2026-03-15\") { kind status } }",
            json!({}),
        )
        .await;
    assert_eq!(
        body["data"]["rateBillingPeriod"][0]["status"], "CURRENT",
        "{body}"
    );
    let body = ask(
        &admin,
        json!({ "measures": ["COST", "RATED_BYTES", "BYTES_TOTAL"], "dimensions": ["NETWORK"],
                "timeRange": range(MARCH.0, MARCH.1), "granularity": "MONTH" }),
    )
    .await;
    let cost = &body["data"]["usageAnalytics"];
    assert_eq!(cost["source"], "RATED_DAILY", "{body}");
    assert_eq!(cost["currency"], "EUR");
    let by_net: Vec<(String, String, i64, i64)> = cost["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            let m = &r["measures"];
            (
                r["network"]["mccMnc"].as_str().unwrap().to_owned(),
                m["cost"].as_str().unwrap().to_owned(),
                m["ratedBytes"].as_i64().unwrap(),
                m["bytesTotal"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        by_net,
        vec![
            ("208-01".into(), "2.00".into(), 1_000_000, 999_001),
            ("262-01".into(), "1.50".into(), 1_500_000, 1_500_000),
            ("262-02".into(), "1.00".into(), 500_000, 500_000)
        ]
    );
    assert_eq!(cost["totals"]["cost"], "4.50");
    answers.insert("cost_by_network".into(), normal(cost));
    // The same rated rows by country and by label: DE = s0 + s2, FR = s1; north s0, south s1,
    // s2 without the label.
    for (key, dims, expected) in [
        (
            "country",
            json!({ "dimensions": ["COUNTRY"] }),
            vec![(json!("DE"), "2.50"), (json!("FR"), "2.00")],
        ),
        (
            "label",
            json!({ "dimensions": ["LABEL"], "labelKey": "region" }),
            vec![
                (Value::Null, "1.00"),
                (json!("north"), "1.50"),
                (json!("south"), "2.00"),
            ],
        ),
        (
            "subCustomerId",
            json!({ "dimensions": ["SUB_CUSTOMER"] }),
            vec![(Value::Null, "1.00"), (json!(acme.id.to_string()), "3.50")],
        ),
    ] {
        let mut input = json!({ "measures": ["COST"], "timeRange": range(MARCH.0, MARCH.1) });
        for (k, v) in dims.as_object().unwrap() {
            input[k] = v.clone();
        }
        let body = ask(&admin, input).await;
        let a = &body["data"]["usageAnalytics"];
        assert_eq!(a["source"], "RATED_DAILY", "{body}");
        let got: Vec<(Value, String)> = a["rows"]
            .as_array()
            .unwrap_or_else(|| panic!("{body}"))
            .iter()
            .map(|r| (r[key].clone(), r["measures"]["cost"].as_str().unwrap().to_owned()))
            .collect();
        let expected: Vec<(Value, String)> = expected.into_iter().map(|(k, c)| (k, c.to_owned())).collect();
        assert_eq!(got, expected, "{body}");
        assert_eq!(
            a["totals"]["cost"], "4.50",
            "every cut sums to the invoice's data total"
        );
    }
    let body = ask(
        &admin,
        json!({ "measures": ["COST", "SESSIONS"], "timeRange": range(MARCH.0, MARCH.1) }),
    )
    .await;
    assert_eq!(
        body["data"]["usageAnalytics"]["unserved"]["reason"], "MIXED_SOURCES",
        "{body}"
    );

    let body = app
        .gql(
            Some(&admin),
            "query($r: TimeRangeInput!) { carrierBreakdown(timeRange: $r) { currency totalBytes totalCost \
             carriers { network { mccMnc country } bytes cost shareOfBytes shareOfCost } } }",
            json!({"r": range(MARCH.0, MARCH.1)}),
        )
        .await;
    let carriers = &body["data"]["carrierBreakdown"];
    assert_eq!(carriers["totalBytes"], 20_850, "{body}");
    assert_eq!(carriers["totalCost"], "4.50");
    let list: Vec<(String, i64, String)> = carriers["carriers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["network"]["mccMnc"].as_str().unwrap().to_owned(),
                c["bytes"].as_i64().unwrap(),
                c["cost"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        list,
        vec![
            ("262-01".into(), 14_300, "1.50".into()),
            ("208-01".into(), 6_000, "2.00".into()),
            ("262-02".into(), 550, "1.00".into())
        ]
    );
    let share = carriers["carriers"][1]["shareOfCost"].as_f64().unwrap();
    assert!((share - 2.0 / 4.5).abs() < 1e-9, "{body}");
    answers.insert("carriers".into(), normal(carriers));

    // A customer user sees its own sub-customer's usage only, and costs only when shared.
    let body = ask(
        &customer,
        json!({ "measures": ["BYTES_TOTAL"], "dimensions": ["NETWORK"], "timeRange": range(MARCH.0, MARCH.1) }),
    )
    .await;
    let mine: Vec<(String, i64)> = body["data"]["usageAnalytics"]["rows"]
        .as_array()
        .unwrap_or_else(|| panic!("{body}"))
        .iter()
        .map(|r| {
            (
                r["network"]["mccMnc"].as_str().unwrap().to_owned(),
                r["measures"]["bytesTotal"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        mine,
        vec![
            ("208-01".into(), 6_000),
            ("262-01".into(), 3_300),
            ("262-02".into(), 550)
        ]
    );
    let body = ask(
        &customer,
        json!({ "measures": ["COST"], "timeRange": range(MARCH.0, MARCH.1) }),
    )
    .await;
    assert_eq!(error_code(&body).as_deref(), Some("FORBIDDEN"), "{body}");

    // Bad input names the field.
    for (input, field) in [
        (
            json!({ "measures": ["BYTES_TOTAL"], "timeZone": "Mars/Olympus", "timeRange": range(MARCH.0, MARCH.1) }),
            "timeZone",
        ),
        (
            json!({ "measures": ["BYTES_TOTAL"], "granularity": "DAY", "timeRange": range("2026-03-01T10:00:00Z", MARCH.1) }),
            "timeRange.from",
        ),
        (
            json!({ "measures": ["BYTES_TOTAL"], "dimensions": ["LABEL"], "timeRange": range(MARCH.0, MARCH.1) }),
            "labelKey",
        ),
        (
            json!({ "measures": [], "timeRange": range(MARCH.0, MARCH.1) }),
            "measures",
        ),
        (
            json!({ "measures": ["BYTES_TOTAL"], "timeRange": { "from": MARCH.0 } }),
            "timeRange",
        ),
        (
            json!({ "measures": ["BYTES_TOTAL"], "timeRange": range(MARCH.0, MARCH.1),
                    "filter": { "networks": vec!["262-01"; 1_001] } }),
            "filter.networks",
        ),
        (
            json!({ "measures": ["BYTES_TOTAL"], "timeRange": range(MARCH.0, MARCH.1),
                    "filter": { "labels": [{ "key": "", "value": "x" }] } }),
            "filter.labels[0].key",
        ),
    ] {
        let body = ask(&admin, input).await;
        assert_eq!(error_code(&body).as_deref(), Some("BAD_USER_INPUT"), "{body}");
        assert_eq!(body["errors"][0]["extensions"]["field"], field, "{body}");
    }
    // A drill-down page is 1 to 500 SIMs.
    let sized = "query($input: UsageAnalyticsInput!, $first: Int) { \
         usageAnalyticsSims(input: $input, row: {network: \"262-01\"}, first: $first) { totalCount } }";
    for first in [0, -1, 501, i64::from(i32::MAX)] {
        let body = app
            .gql(
                Some(&admin),
                sized,
                json!({"input": { "measures": ["BYTES_TOTAL"], "dimensions": ["NETWORK"], "timeRange": range(MARCH.0, MARCH.1) },
                       "first": first}),
            )
            .await;
        assert_eq!(
            error_code(&body).as_deref(),
            Some("BAD_USER_INPUT"),
            "first {first}: {body}"
        );
        assert_eq!(body["errors"][0]["extensions"]["field"], "first", "{body}");
    }

    // The dashboard: live traffic now (s0 online; s1's session ended), the fleet's facts.
    let now = Utc::now().max(period_start(Utc::now(), Granularity::Month) + Duration::seconds(1));
    let at = (now - Duration::seconds(30)).max(period_start(now, Granularity::Month));
    let live = sess(
        "s0",
        "now-0",
        "2026-01-01T00:00:00Z",
        "262-01",
        RadioAccessType::Lte,
    );
    let live = Sess { started: at, ..live };
    let ended = sess(
        "s1",
        "now-1",
        "2026-01-01T00:00:00Z",
        "262-01",
        RadioAccessType::Lte,
    );
    let ended = Sess { started: at, ..ended };
    app.app_engines
        .usage
        .write_session_updates(&[
            live.update(at, (100, 10), (100, 10), false),
            ended.update(at, (200, 20), (200, 20), true),
        ])
        .await
        .unwrap();
    app.app_engines.usage.flush_pending().await.unwrap();
    let body = app
        .gql(
            Some(&admin),
            "{ dashboard(timeZone: \"Europe/Berlin\") { periodFrom periodTo sims_by_state: simsByState { state count } onlineNow \
               bytesTotal activeSims averageBytesPerActiveSim costSoFar projectedCost currency \
               topCarriersByTraffic { network { mccMnc } bytes } trafficByDeviceKind { key value } \
               activations { day count } simsByTariffPlan { key value } } }",
            json!({}),
        )
        .await;
    let dash = &body["data"]["dashboard"];
    assert_eq!(
        dash["sims_by_state"],
        json!([
            {"state": "INVENTORY", "count": 0}, {"state": "ACTIVE", "count": 3}, {"state": "SUSPENDED", "count": 0},
            {"state": "LOST_STOLEN", "count": 0}, {"state": "TERMINATED", "count": 0}
        ]),
        "{body}"
    );
    assert_eq!(dash["onlineNow"], 1);
    assert_eq!(dash["bytesTotal"], 330);
    assert_eq!(dash["activeSims"], 2);
    assert_eq!(dash["averageBytesPerActiveSim"], 165);
    assert_eq!(dash["currency"], "EUR");
    assert_eq!(
        (&dash["costSoFar"], &dash["projectedCost"]),
        (&Value::Null, &Value::Null),
        "nothing rated in this period yet: not rated, which is not a cost of zero"
    );
    assert_eq!(
        dash["topCarriersByTraffic"],
        json!([{"network": {"mccMnc": "262-01"}, "bytes": 330}])
    );
    assert_eq!(
        dash["trafficByDeviceKind"],
        json!([{"key": null, "value": 220}, {"key": "TRACKER", "value": 110}])
    );
    assert_eq!(
        dash["simsByTariffPlan"],
        json!([{"key": "iot-s", "value": 2}, {"key": "iot-xl", "value": 1}])
    );
    let activations = dash["activations"].as_array().unwrap();
    assert_eq!(activations.len(), 30);
    assert_eq!(
        activations.last().unwrap()["count"],
        3,
        "the three SIMs were made active today"
    );
    let berlin_today = chrono_tz::Europe::Berlin
        .from_utc_datetime(&Utc::now().naive_utc())
        .date_naive();
    let midnight = chrono_tz::Europe::Berlin
        .from_local_datetime(&berlin_today.and_hms_opt(0, 0, 0).unwrap())
        .earliest()
        .unwrap()
        .with_timezone(&Utc);
    assert_eq!(
        DateTime::parse_from_rfc3339(activations.last().unwrap()["day"].as_str().unwrap()).unwrap(),
        midnight
    );
    let mut dash = dash.clone();
    dash["activations"] = json!(null); // the day the test runs; compared above
    answers.insert("dashboard".into(), normal(&dash));

    // Once the period is rated it has a cost: 2,000,000 bytes at home (1 EUR per MB) is 2.00,
    // carried on to the period's end at the same rate (days in UTC here, as the rating's).
    app.app_engines
        .usage
        .write_cdrs(&[cdr("4", s0, &at.to_rfc3339(), "262-01", (2_000_000, 0))])
        .await
        .unwrap();
    let body = app
        .gql(
            Some(&admin),
            "mutation($d: Date!) { rateBillingPeriod(day: $d) { status } }",
            json!({ "d": at.date_naive().to_string() }),
        )
        .await;
    assert_eq!(
        body["data"]["rateBillingPeriod"][0]["status"], "CURRENT",
        "{body}"
    );
    let body = app
        .gql(
            Some(&admin),
            "{ dashboard(timeZone: \"UTC\") { costSoFar projectedCost accessFees currency \
               topCarriersByCost { network { mccMnc } cost } } }",
            json!({}),
        )
        .await;
    let rated = &body["data"]["dashboard"];
    assert_eq!(rated["costSoFar"], "2.00", "{body}");
    // Access fees apart from the data: the three SIMs made ACTIVE this month at 1 EUR each.
    assert_eq!(rated["accessFees"], "3.00", "{body}");
    let mut same = rated.clone();
    same["projectedCost"] = json!(null); // depends on the moment it is asked; checked below
    answers.insert("dashboard rated".into(), normal(&same));
    // One sub-customer's dashboard: its SIMs' data cost (s0's CDR) and fees (s0 and s1).
    let q = "query($c: ID) { dashboard(subCustomerId: $c, timeZone: \"UTC\") { costSoFar accessFees \
               topCarriersByCost { network { mccMnc } cost } } }";
    let body = app.gql(Some(&admin), q, json!({ "c": acme.id })).await;
    let of_acme = &body["data"]["dashboard"];
    assert_eq!(
        (&of_acme["costSoFar"], &of_acme["accessFees"]),
        (&json!("2.00"), &json!("2.00")),
        "{body}"
    );
    answers.insert("dashboard rated, acme".into(), normal(of_acme));
    // The sub-customer's own user sees neither until the tenant shares costs.
    let body = app.gql(Some(&customer), q, json!({ "c": acme.id })).await;
    let hidden = &body["data"]["dashboard"];
    assert_eq!(
        (
            &hidden["costSoFar"],
            &hidden["accessFees"],
            &hidden["topCarriersByCost"]
        ),
        (&json!(null), &json!(null), &json!([])),
        "{body}"
    );
    assert_eq!(rated["currency"], "EUR", "{body}");
    assert_eq!(
        rated["topCarriersByCost"][0],
        json!({"network": {"mccMnc": "262-01"}, "cost": "2.00"}),
        "{body}"
    );
    let projected: f64 = rated["projectedCost"].as_str().unwrap().parse().unwrap();
    assert!(projected >= 2.0, "the projection carries the cost on: {body}");

    app.stop().await;
    Value::Object(answers)
}

#[tokio::test]
async fn analytics_and_dashboard_answer_alike_on_both_stores() {
    let embedded = scenario(Engines::Embedded).await;
    let real = scenario(Engines::Real).await;
    assert_eq!(
        embedded, real,
        "the embedded store and ClickHouse answer the same"
    );
}

/// The dashboard's SIM counts and activations, as one dashboard call answers them, for the tenant
/// and for each sub-customer.
async fn counts(app: &TestApp, token: &str, customer: Option<CustomerId>) -> (Value, Value, u64) {
    let body = app
        .gql(
            Some(token),
            "query($c: ID) { dashboard(subCustomerId: $c, timeZone: \"UTC\") { \
               simsByState { state count } simsByTariffPlan { key value } activations { count } } }",
            json!({ "c": customer.map(|c| c.to_string()) }),
        )
        .await;
    let d = &body["data"]["dashboard"];
    assert!(d.is_object(), "{body}");
    let activations = d["activations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["count"].as_u64().unwrap())
        .sum();
    (
        d["simsByState"].clone(),
        d["simsByTariffPlan"].clone(),
        activations,
    )
}

fn by_state(active: u64, suspended: u64, terminated: u64) -> Value {
    json!([
        {"state": "INVENTORY", "count": 0}, {"state": "ACTIVE", "count": active},
        {"state": "SUSPENDED", "count": suspended}, {"state": "LOST_STOLEN", "count": 0},
        {"state": "TERMINATED", "count": terminated}
    ])
}

/// On Postgres the dashboard reads counters that triggers keep with every write to the fleet
/// (it no longer scans the fleet under row-level security). They follow imports, concurrent state
/// changes, moves between sub-customers and tariff plans, agree with the fleet's own lists,
/// never count another tenant's SIMs, and stay the same when folded.
#[tokio::test]
async fn dashboard_counts_follow_every_fleet_write_on_postgres() {
    let app = TestApp::spawn(Engines::Real).await;
    let f = &app.factory;
    let tenant = f.tenant("Counters").await;
    let other = f.tenant("Other").await;
    let a = f.customer(&tenant, "A").await;
    let b = f.customer(&tenant, "B").await;
    let in_a = f.sims(&tenant, Some(a.id), 6).await;
    let loose = f.sims(&tenant, None, 4).await;
    f.sims(&other, None, 5).await;
    let admin = {
        let u = f.user(&tenant, Role::TenantAdmin, None).await;
        app.login(u.email.as_str(), TEST_PASSWORD).await
    };
    assert_eq!(
        counts(&app, &admin, None).await,
        (by_state(10, 0, 0), json!([{"key": null, "value": 10}]), 10)
    );

    // Three of A's SIMs suspended at once (concurrent writers), while the counters are folded.
    let change = |iccid: String, state: &'static str| {
        let (app, admin) = (&app, &admin);
        async move {
            let body = app
                .gql(
                    Some(admin),
                    "mutation($i: Iccid!, $s: SimState!) { changeSimState(iccid: $i, state: $s) { sim { state } } }",
                    json!({"i": iccid, "s": state}),
                )
                .await;
            assert_eq!(body["data"]["changeSimState"]["sim"]["state"], state, "{body}");
        }
    };
    let compact = async { app.app_engines.analytics.compact_counters().await.unwrap() };
    let (_, _) = futures::join!(
        futures::future::join_all(in_a[..3].iter().map(|s| change(s.iccid.to_string(), "SUSPENDED"))),
        compact,
    );
    // One resumed (an activation), one terminated; two loose SIMs moved to B, one given a plan.
    change(in_a[0].iccid.to_string(), "ACTIVE").await;
    change(in_a[5].iccid.to_string(), "TERMINATED").await;
    for s in &loose[..2] {
        let body = app
            .gql(
                Some(&admin),
                "mutation($i: Iccid!, $c: ID) { assignSim(iccid: $i, customerId: $c) { sim { customerId } } }",
                json!({"i": s.iccid.to_string(), "c": b.id.to_string()}),
            )
            .await;
        assert_eq!(
            body["data"]["assignSim"]["sim"]["customerId"],
            b.id.to_string(),
            "{body}"
        );
    }
    let body = app
        .gql(
            Some(&admin),
            "mutation($i: Iccid!) { updateSim(iccid: $i, input: { tariffPlan: \"iot-xl\" }) { sim { tariffPlan } } }",
            json!({"i": loose[0].iccid.to_string()}),
        )
        .await;
    assert_eq!(body["data"]["updateSim"]["sim"]["tariffPlan"], "iot-xl", "{body}");

    let expected = [
        (
            None,
            (
                by_state(7, 2, 1),
                json!([{"key": null, "value": 9}, {"key": "iot-xl", "value": 1}]),
                11,
            ),
        ),
        (
            Some(a.id),
            (by_state(3, 2, 1), json!([{"key": null, "value": 6}]), 7),
        ),
        (
            Some(b.id),
            (
                by_state(2, 0, 0),
                json!([{"key": null, "value": 1}, {"key": "iot-xl", "value": 1}]),
                0,
            ),
        ),
    ];
    for (customer, want) in &expected {
        let got = counts(&app, &admin, *customer).await;
        assert_eq!(&got, want, "sub-customer {customer:?}");
        // The fleet's own lists say the same.
        for s in got.0.as_array().unwrap() {
            let body = app
                .gql(
                    Some(&admin),
                    "query($s: SimState!, $c: ID) { sims(filter: { states: [$s], customerId: $c }) { totalCount } }",
                    json!({"s": s["state"], "c": customer.map(|c| c.to_string())}),
                )
                .await;
            assert_eq!(
                body["data"]["sims"]["totalCount"], s["count"],
                "{} of {customer:?}: {body}",
                s["state"]
            );
        }
    }
    // A customer user of A sees A's counts, whatever it asks for.
    let user_a = {
        let u = f.user(&tenant, Role::CustomerUser, Some(a.id)).await;
        app.login(u.email.as_str(), TEST_PASSWORD).await
    };
    assert_eq!(counts(&app, &user_a, None).await, expected[1].1);

    // Folding leaves the answers as they were, and a second fold has nothing left to do.
    let folded = app.app_engines.analytics.compact_counters().await.unwrap();
    assert!(folded > 0, "the writes above left rows to fold");
    for (customer, want) in &expected {
        assert_eq!(
            &counts(&app, &admin, *customer).await,
            want,
            "after folding, {customer:?}"
        );
    }
    assert_eq!(app.app_engines.analytics.compact_counters().await.unwrap(), 0);
    app.stop().await;
}
