//! Forecasts and anomalies end to end, on both engine sets: 60 days of usage with a weekly
//! pattern written into the usage store, the forecast pass run, and what it stored read through
//! GraphQL — forecasts with their intervals and the weekly pattern, quotas' exhaustion dates, the
//! tenant's forecast, the anomalies of the SIMs that behaved oddly and of no other, a pass run
//! twice storing nothing twice and a later one computing again only the SIMs whose usage, quota or
//! dismissals changed, dismissals refused to those who may not and taken into account.

use std::collections::BTreeSet;

use chrono::{DateTime, Datelike, Duration, NaiveDate, Timelike, Utc, Weekday};
use ioto_domain::fleet::Sim;
use ioto_domain::ports::{period_start, Granularity, SessionUpdate};
use ioto_domain::usage::RadioAccessType;
use ioto_domain::{MccMnc, Role};
use ioto_test_support::app::{assert_refused, error_code};
use ioto_test_support::{earlier_today, Engines, TestApp, TEST_PASSWORD};
use serde_json::{json, Value};

pub(crate) const MB: u64 = 1_000_000;
/// A working day's usage; weekends use less.
const BASE: u64 = 50 * MB;
/// The SIMs' parts in the story, by their index.
pub(crate) const CROSSING: usize = 0;
pub(crate) const ROOMY: usize = 1;
pub(crate) const SPIKE: usize = 2;
pub(crate) const SILENT: usize = 3;
pub(crate) const ROAMING: usize = 4;
pub(crate) const IDLE: usize = 5;

/// What a steady SIM uses on `day`: busy on working days, quiet at the weekend.
pub(crate) fn usual(day: NaiveDate) -> u64 {
    match day.weekday() {
        Weekday::Sat => 15 * MB,
        Weekday::Sun => 10 * MB,
        _ => BASE,
    }
}

pub(crate) fn session(sim: &Sim, at: DateTime<Utc>, network: &str, bytes: u64, id: &str) -> SessionUpdate {
    SessionUpdate {
        tenant_id: sim.tenant_id,
        customer_id: sim.customer_id,
        iccid: sim.iccid.clone(),
        session_id: id.to_owned(),
        started_at: at,
        event_time: at,
        hour: period_start(at, Granularity::Hour),
        mcc_mnc: MccMnc::parse(network).unwrap(),
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

/// 60 days of history before today: every SIM steady on 262-01 (Germany), but the spike SIM
/// used 10 × a working day yesterday, the silent SIM used nothing the last two days, the
/// roaming SIM was in France (208-01) yesterday, and the idle SIM never used anything.
pub(crate) fn history(sims: &[Sim], today: NaiveDate) -> Vec<SessionUpdate> {
    let mut updates = Vec::new();
    for back in 1..=60 {
        let day = today - Duration::days(back);
        let noon = day.and_hms_opt(12, 0, 0).unwrap().and_utc();
        for (i, sim) in sims.iter().enumerate() {
            let (bytes, network) = match i {
                IDLE => continue,
                SILENT if back <= 2 => continue,
                SPIKE if back == 1 => (10 * BASE, "262-01"),
                ROAMING if back == 1 => (usual(day), "208-01"),
                _ => (usual(day), "262-01"),
            };
            updates.push(session(sim, noon, network, bytes, &format!("d{back}")));
        }
    }
    updates
}

/// Writes the story's 60 days of history before `today` into the usage store and sets two
/// quotas: one the forecast crosses this period (5 MB left of it), one it does not (1 TB).
/// Returns the crossing SIM's usage this month.
pub(crate) async fn seed_story(app: &TestApp, token: &str, sims: &[Sim], today: NaiveDate) -> u64 {
    app.app_engines
        .usage
        .write_session_updates(&history(sims, today))
        .await
        .unwrap();
    app.app_engines.usage.flush_pending().await.unwrap();
    let used: u64 = (1..=60)
        .map(|back| today - Duration::days(back))
        .filter(|d| d.year() == today.year() && d.month() == today.month())
        .map(usual)
        .sum();
    for (sim, limit) in [(&sims[CROSSING], used + 5 * MB), (&sims[ROOMY], 1_000_000 * MB)] {
        let set = app
            .gql(
                Some(token),
                "mutation($i: Iccid!, $l: BigInt!) { setSimQuota(iccid: $i, input: { limitBytes: $l,
                    stages: [], action: NOTIFY }) { limitBytes } }",
                json!({"i": sim.iccid, "l": limit}),
            )
            .await;
        assert!(set["errors"].is_null(), "{set}");
    }
    used
}

const FORECAST: &str = "forecast { method backtestMase historyDays computedAt
    days { date bytes low80 high80 low95 high95 }
    quota { limitBytes usedBytes periodEnd exhaustionDate exhaustionEarliest exhaustionLatest projectedPeriodBytes } }";

async fn sim_field(app: &TestApp, token: &str, sim: &Sim, selection: &str) -> Value {
    let body = app
        .gql(
            Some(token),
            &format!("query($i: Iccid!) {{ sim(iccid: $i) {{ {selection} }} }}"),
            json!({"i": sim.iccid}),
        )
        .await;
    assert!(body["errors"].is_null(), "{body}");
    body["data"]["sim"].clone()
}

fn big(v: &Value) -> u64 {
    v.as_u64().unwrap_or_else(|| panic!("not a byte count: {v}"))
}

fn date(v: &Value) -> NaiveDate {
    NaiveDate::parse_from_str(v.as_str().unwrap(), "%Y-%m-%d").unwrap()
}

/// The tenant's anomalies as (kind, ICCID, day, status).
async fn anomalies(app: &TestApp, token: &str) -> Vec<(String, String, NaiveDate, String)> {
    let body = app
        .gql(
            Some(token),
            "{ anomalies(first: 100) { nodes { id kind severity iccid sentence value status day
                evidence { observed expected bandLow bandHigh series baseline } } } }",
            json!({}),
        )
        .await;
    assert!(body["errors"].is_null(), "{body}");
    body["data"]["anomalies"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            (
                a["kind"].as_str().unwrap().to_owned(),
                a["iccid"].as_str().unwrap().to_owned(),
                date(&a["day"]),
                a["status"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

async fn forecasts_and_anomalies_on(engines: Engines) {
    let app = TestApp::spawn(engines).await;
    let f = &app.factory;
    let t = f.tenant("Forecasts").await;
    let other = f.tenant("Other forecasts").await;
    let sims = f.sims(&t, None, 6).await;
    let admin = f.user(&t, Role::TenantAdmin, None).await;
    let viewer = f.user(&t, Role::Viewer, None).await;
    let stranger = f.user(&other, Role::TenantAdmin, None).await;
    let token = app.login(admin.email.as_str(), TEST_PASSWORD).await;
    let viewer_token = app.login(viewer.email.as_str(), TEST_PASSWORD).await;
    let stranger_token = app.login(stranger.email.as_str(), TEST_PASSWORD).await;

    let today = Utc::now().date_naive();
    let yesterday = today - Duration::days(1);
    let used = seed_story(&app, &token, &sims, today).await;

    let pass = app.forecasts.pass(Utc::now()).await.unwrap();
    assert!(pass.failed.is_empty(), "{pass:?}");
    assert_eq!((pass.sims, pass.anomalies_new), (5, 3), "{pass:?}");
    assert_eq!(
        (pass.partial, pass.unchanged),
        (0, 0),
        "the first pass is whole: {pass:?}"
    );

    // A SIM's forecast: 30 days from today, intervals nested around the expected bytes, the
    // weekly pattern kept (a working day above a weekend day).
    let crossing = sim_field(&app, &token, &sims[CROSSING], FORECAST).await["forecast"].clone();
    assert!(crossing["method"].is_string(), "{crossing}");
    assert_eq!(crossing["historyDays"], 60, "{crossing}");
    let days = crossing["days"].as_array().unwrap();
    assert_eq!(days.len(), 30, "{crossing}");
    assert_eq!(date(&days[0]["date"]), today);
    for d in days {
        let (l95, l80, b, h80, h95) = (
            big(&d["low95"]),
            big(&d["low80"]),
            big(&d["bytes"]),
            big(&d["high80"]),
            big(&d["high95"]),
        );
        assert!(l95 <= l80 && l80 <= b && b <= h80 && h80 <= h95, "{d}");
    }
    let on = |weekend: bool| {
        days.iter()
            .find(|d| matches!(date(&d["date"]).weekday(), Weekday::Sat | Weekday::Sun) == weekend)
            .map(|d| big(&d["bytes"]))
            .unwrap()
    };
    assert!(
        on(false) > on(true),
        "a working day is not forecast above a weekend day: {crossing}"
    );
    // The quota it crosses runs out today; the other lasts the period.
    let quota = &crossing["quota"];
    assert_eq!(big(&quota["usedBytes"]), used, "{quota}");
    assert_eq!(big(&quota["limitBytes"]), used + 5 * MB, "{quota}");
    assert_eq!(date(&quota["exhaustionDate"]), today, "{quota}");
    let roomy = sim_field(&app, &token, &sims[ROOMY], FORECAST).await["forecast"].clone();
    assert!(roomy["quota"]["exhaustionDate"].is_null(), "{roomy}");
    assert!(!roomy["quota"]["periodEnd"].is_null(), "{roomy}");
    // Fewer days on asking; more than 90 refused naming the argument; a SIM without any usage
    // has no forecast.
    let week = sim_field(&app, &token, &sims[ROOMY], "forecast(days: 7) { days { date } }").await;
    assert_eq!(week["forecast"]["days"].as_array().unwrap().len(), 7, "{week}");
    let idle = sim_field(&app, &token, &sims[IDLE], "forecast { method }").await;
    assert!(idle["forecast"].is_null(), "{idle}");
    let too_far = app
        .gql(
            Some(&token),
            "query($i: Iccid!) { sim(iccid: $i) { forecast(days: 91) { method } } }",
            json!({"i": sims[CROSSING].iccid}),
        )
        .await;
    assert_refused(&too_far, "days", "at most 90 days");

    // The tenant's forecast: its SIMs' usage together.
    let body = app
        .gql(
            Some(&token),
            "{ dashboard { forecast { method historyDays days { bytes } } } }",
            json!({}),
        )
        .await;
    assert!(body["errors"].is_null(), "{body}");
    let whole = &body["data"]["dashboard"]["forecast"];
    let total = |f: &Value| -> u64 {
        f["days"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| big(&d["bytes"]))
            .sum()
    };
    assert!(
        whole["days"]
            .as_array()
            .unwrap()
            .iter()
            .all(|d| big(&d["bytes"]) > 0),
        "{whole}"
    );
    assert!(
        total(whole) > total(&roomy) && total(whole) > total(&crossing),
        "the tenant's forecast is not its SIMs' together: {whole}"
    );

    // The tenant hour by hour: every day's usage came at noon (UTC), so the next 48 hours
    // expect it at noon and next to nothing at other hours; today's total is heading for about
    // a day's usage, within its range; a SIM has no hourly outlook.
    let body = app
        .gql(
            Some(&token),
            "{ dashboard { forecast { hourly { method backtestMase hours { at bytes low80 high80 }
                today { dayStart hoursSoFar soFarBytes bytes low80 high80 low95 high95 } } } } }",
            json!({}),
        )
        .await;
    assert!(body["errors"].is_null(), "{body}");
    let hourly = &body["data"]["dashboard"]["forecast"]["hourly"];
    assert!(hourly["method"].is_string(), "{hourly}");
    let hours = hourly["hours"].as_array().unwrap();
    assert_eq!(hours.len(), 48, "{hourly}");
    let at = |h: &Value| {
        DateTime::parse_from_rfc3339(h["at"].as_str().unwrap())
            .unwrap()
            .to_utc()
    };
    let noon: Vec<u64> = hours
        .iter()
        .filter(|h| at(h).hour() == 12)
        .map(|h| big(&h["bytes"]))
        .collect();
    let least_noon = noon.iter().copied().min().unwrap();
    assert!(!noon.is_empty() && least_noon > 5 * MB, "{hourly}");
    for h in hours.iter().filter(|h| at(h).hour() != 12) {
        assert!(big(&h["bytes"]) < least_noon / 10, "{h} in {hourly}");
        assert!(
            big(&h["low80"]) <= big(&h["bytes"]) && big(&h["bytes"]) <= big(&h["high80"]),
            "{h}"
        );
    }
    let day = &hourly["today"];
    assert_eq!(
        DateTime::parse_from_rfc3339(day["dayStart"].as_str().unwrap())
            .unwrap()
            .to_utc(),
        today.and_hms_opt(0, 0, 0).unwrap().and_utc(),
        "{day}"
    );
    assert_eq!(big(&day["soFarBytes"]), 0, "nothing was written today: {day}");
    let (low, expected, high) = (big(&day["low80"]), big(&day["bytes"]), big(&day["high80"]));
    assert!(
        low <= expected && expected <= high && big(&day["low95"]) <= low && high <= big(&day["high95"]),
        "{day}"
    );
    if day["hoursSoFar"].as_i64().unwrap() <= 12 {
        // Noon still ahead: a day's usage of the four steady SIMs at least.
        assert!(expected >= 4 * usual(today) / 2, "{day}");
    }
    let sim_hours = sim_field(&app, &token, &sims[ROOMY], "forecast { hourly { method } }").await;
    assert!(sim_hours["forecast"]["hourly"].is_null(), "{sim_hours}");

    // Anomalies: the spike, the silence and the new country, yesterday; nothing of the steady.
    let found = anomalies(&app, &token).await;
    let kinds: BTreeSet<(String, String)> = found.iter().map(|(k, i, _, _)| (k.clone(), i.clone())).collect();
    let expected: BTreeSet<(String, String)> = [
        ("USAGE_SPIKE", SPIKE),
        ("SILENCE", SILENT),
        ("NEW_COUNTRY", ROAMING),
    ]
    .into_iter()
    .map(|(k, i)| (k.to_owned(), sims[i].iccid.to_string()))
    .collect();
    assert_eq!(kinds, expected, "{found:?}");
    assert!(
        found.iter().all(|(_, _, d, s)| *d == yesterday && s == "OPEN"),
        "{found:?}"
    );
    let spike = sim_field(
        &app,
        &token,
        &sims[SPIKE],
        "anomalies { id kind sentence severity status evidence { observed expected bandHigh baseline } }",
    )
    .await["anomalies"][0]
        .clone();
    let sentence = spike["sentence"].as_str().unwrap();
    assert!(sentence.contains('×'), "{spike}");
    assert_eq!(
        (&spike["severity"], &spike["evidence"]["baseline"]),
        (&json!("HIGH"), &json!("OWN")),
        "{spike}"
    );
    assert!(
        spike["evidence"]["observed"].as_f64().unwrap() >= spike["evidence"]["bandHigh"].as_f64().unwrap(),
        "{spike}"
    );
    let roaming = sim_field(&app, &token, &sims[ROAMING], "anomalies { kind value }").await;
    assert_eq!(roaming["anomalies"][0]["value"], "France", "{roaming}");
    // The high ones are told.
    let body = app
        .gql(
            Some(&token),
            "{ notifications(first: 50) { nodes { kind data } } }",
            json!({}),
        )
        .await;
    assert!(body["errors"].is_null(), "{body}");
    let told: BTreeSet<String> = body["data"]["notifications"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|n| n["kind"] == "ANOMALY")
        .map(|n| n["data"]["anomaly"]["kind"].as_str().unwrap().to_owned())
        .collect();
    assert!(
        told.contains("USAGE_SPIKE") && told.contains("NEW_COUNTRY"),
        "{told:?}"
    );

    // A second pass stores nothing twice; nothing changed, so it keeps every SIM as stored.
    let again = app.forecasts.pass(Utc::now()).await.unwrap();
    assert_eq!(again.anomalies_new, 0, "{again:?}");
    // Both tenants go by the first pass (the other has no SIMs).
    assert_eq!(
        (again.partial, again.sims, again.unchanged),
        (2, 5, 5),
        "{again:?}"
    );
    let kept = sim_field(&app, &token, &sims[ROOMY], FORECAST).await["forecast"].clone();
    assert_eq!(
        kept["computedAt"], roomy["computedAt"],
        "kept as the first pass stored it"
    );
    assert_eq!(anomalies(&app, &token).await.len(), found.len());

    // Dismissing: not a viewer's to do, another tenant's admin finds nothing.
    let id = spike["id"].as_str().unwrap().to_owned();
    let dismiss = "mutation($id: ID!) { dismissAnomaly(id: $id, comment: \"a firmware roll-out\") {
        status decidedBy comment } }";
    let refused = app.gql(Some(&viewer_token), dismiss, json!({"id": id})).await;
    assert_eq!(error_code(&refused).as_deref(), Some("FORBIDDEN"), "{refused}");
    let foreign = app.gql(Some(&stranger_token), dismiss, json!({"id": id})).await;
    assert_eq!(error_code(&foreign).as_deref(), Some("NOT_FOUND"), "{foreign}");
    let body = app.gql(Some(&token), dismiss, json!({"id": id})).await;
    assert!(body["errors"].is_null(), "{body}");
    assert_eq!(body["data"]["dismissAnomaly"]["status"], "DISMISSED");
    assert_eq!(body["data"]["dismissAnomaly"]["comment"], "a firmware roll-out");

    // Today the dismissed SIM uses its spike's level again, and a steady SIM spikes as much: only
    // the steady SIM's is raised.
    let now = earlier_today(5);
    app.app_engines
        .usage
        .write_session_updates(&[
            session(&sims[SPIKE], now, "262-01", 10 * BASE, "today"),
            session(&sims[ROOMY], now, "262-01", 10 * BASE, "today"),
        ])
        .await
        .unwrap();
    app.app_engines.usage.flush_pending().await.unwrap();
    let third = app.forecasts.pass(Utc::now()).await.unwrap();
    assert_eq!(third.anomalies_new, 1, "{third:?}");
    // The dismissed SIM and the two that used data today computed again, the others kept.
    assert_eq!((third.partial, third.unchanged), (2, 3), "{third:?}");
    let after = anomalies(&app, &token).await;
    assert!(
        after.contains(&(
            "USAGE_SPIKE".to_owned(),
            sims[ROOMY].iccid.to_string(),
            today,
            "OPEN".to_owned()
        )),
        "{after:?}"
    );
    let of_spike = sim_field(&app, &token, &sims[SPIKE], "anomalies { kind day status }").await;
    assert_eq!(
        of_spike["anomalies"],
        json!([{"kind": "USAGE_SPIKE", "day": yesterday.to_string(), "status": "DISMISSED"}]),
        "a dismissed spike's level is raised again"
    );

    // A quota changed since is read by the next pass, without usage of that SIM.
    let set = app
        .gql(
            Some(&token),
            "mutation($i: Iccid!, $l: BigInt!) { setSimQuota(iccid: $i, input: { limitBytes: $l,
                stages: [], action: NOTIFY }) { limitBytes } }",
            json!({"i": sims[CROSSING].iccid, "l": 7_000_000}),
        )
        .await;
    assert!(set["errors"].is_null(), "{set}");
    let fourth = app.forecasts.pass(Utc::now()).await.unwrap();
    assert_eq!((fourth.partial, fourth.unchanged), (2, 4), "{fourth:?}");
    let limited = sim_field(&app, &token, &sims[CROSSING], FORECAST).await["forecast"].clone();
    assert_eq!(big(&limited["quota"]["limitBytes"]), 7_000_000, "{limited}");
}

#[tokio::test]
async fn forecasts_and_anomalies_on_embedded_engines() {
    forecasts_and_anomalies_on(Engines::Embedded).await;
}

#[tokio::test]
async fn forecasts_and_anomalies_on_real_engines() {
    forecasts_and_anomalies_on(Engines::Real).await;
}

/// Hostile arguments to the anomaly list and decisions are refused naming the argument, before
/// anything is looked up or written.
#[tokio::test]
async fn anomaly_arguments_are_refused_naming_the_field() {
    let app = TestApp::spawn(Engines::Embedded).await;
    let f = &app.factory;
    let t = f.tenant("Anomaly bounds").await;
    let admin = f.user(&t, Role::TenantAdmin, None).await;
    let token = app.login(admin.email.as_str(), TEST_PASSWORD).await;
    let list = "query($n: Int, $a: String) { anomalies(first: $n, after: $a) { nodes { id } } }";
    let too_many = app.gql(Some(&token), list, json!({"n": 501})).await;
    assert_refused(&too_many, "first", "between 1 and 500");
    let garbage = app.gql(Some(&token), list, json!({"a": "not-a-cursor"})).await;
    assert_refused(&garbage, "after", "not a cursor");
    let dismiss =
        "mutation($id: ID!, $c: String, $u: Date) { dismissAnomaly(id: $id, comment: $c, until: $u) { id } }";
    let id = uuid::Uuid::new_v4().to_string();
    let long = app
        .gql(Some(&token), dismiss, json!({"id": id, "c": "x".repeat(501)}))
        .await;
    assert_refused(&long, "comment", "at most 500 characters");
    let far = (Utc::now() + Duration::days(400)).date_naive().to_string();
    let too_late = app.gql(Some(&token), dismiss, json!({"id": id, "u": far})).await;
    assert_refused(&too_late, "until", "must be between today");
}
