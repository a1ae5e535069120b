//! The console's forecasts and anomalies in a real browser, on the embedded engines, over the
//! forecast tests' story (`forecasts::history`: 60 days of usage with a weekly pattern; one SIM
//! spiking, one falling silent, one roaming, one idle) and a pass of the forecast job. The SIM
//! page draws the forecast with its 80 % and 95 % ranges and, for the SIM with a quota, the
//! period's usage against the limit with a sentence saying when the quota runs out or that it
//! lasts — as the API reads it —, the method and its accuracy in words; a SIM without usage says
//! why it has no forecast. The Anomalies page lists what the pass found in words, opens a spike's
//! evidence, and a fleet manager dismisses it for a week with a comment: the row, the SIM page
//! and the API then say so. A viewer on a phone reads the same without the buttons that decide,
//! and nothing is wider than the screen. Screenshots under the target directory's `tmp/browser/`.

use std::time::Duration;

use chrono::{Datelike, NaiveDate, Utc};
use ioto_domain::Role;
use ioto_test_support::{Engines, TestApp, TEST_PASSWORD};
use serde_json::{json, Value};

use crate::browser::screenshot;
use crate::console::{click, go, open, overflows, ready, sign_in, text_of, until, DESKTOP, PHONE};
use crate::console_alerts::{shows, type_into};
use crate::forecasts::{history, usual, CROSSING, IDLE, MB, SPIKE};

/// A day as the console writes it ("14 December"; it adds the year only for another year's).
fn day_words(day: NaiveDate) -> String {
    day.format("%-d %B").to_string()
}

fn date(v: &Value) -> NaiveDate {
    NaiveDate::parse_from_str(v.as_str().unwrap(), "%Y-%m-%d").unwrap()
}

/// The forecast methods (`ForecastMethod`) as the console says them.
fn method_words(method: &str) -> &'static str {
    match method {
        "SEASONAL_NAIVE" => "repeats last week",
        "ETS" => "seasonal trend model",
        "DRIFT" => "trend",
        "NAIVE" => "yesterday’s level",
        "COHORT" => "like similar SIMs",
        other => panic!("a method the console has no words for: {other}"),
    }
}

fn kind_words(kind: &str) -> &'static str {
    match kind {
        "USAGE_SPIKE" => "Usage spike",
        "SILENCE" => "Silence",
        "SESSION_STORM" => "Session storm",
        "NEW_NETWORK" => "New network",
        "NEW_COUNTRY" => "New country",
        "IMEI_CHANGE" => "IMEI change",
        other => panic!("a kind the console has no words for: {other}"),
    }
}

fn severity_words(severity: &str) -> &'static str {
    match severity {
        "LOW" => "Low",
        "MEDIUM" => "Medium",
        "HIGH" => "High",
        other => panic!("a severity the console has no words for: {other}"),
    }
}

/// The buttons that decide about an anomaly: a viewer is offered none.
const DECIDE: &str = "[data-testid=anomaly-dismiss], [data-testid=anomaly-confirm], \
    [data-testid=anomaly-dismiss-form], [data-testid=anomaly-confirm-form]";

pub(crate) async fn count(c: &fantoccini::Client, css: &str) -> Value {
    c.execute(
        "return document.querySelectorAll(arguments[0]).length;",
        vec![json!(css)],
    )
    .await
    .unwrap()
}

#[tokio::test]
async fn forecasts_and_anomalies_are_drawn_and_decided_in_the_console() {
    let app = TestApp::spawn(Engines::Embedded).await;
    let f = &app.factory;
    let t = f.tenant("Forecasts in the console").await;
    let sims = f.sims(&t, None, 6).await;
    let admin = f.user(&t, Role::TenantAdmin, None).await;
    let viewer = f.user(&t, Role::Viewer, None).await;
    let token = app.login(admin.email.as_str(), TEST_PASSWORD).await;

    let today = Utc::now().date_naive();
    app.app_engines
        .usage
        .write_session_updates(&history(&sims, today))
        .await
        .unwrap();
    app.app_engines.usage.flush_pending().await.unwrap();
    // A quota 200 MB above what the SIM used this month before today.
    let used: u64 = (1..=60)
        .map(|back| today - chrono::Duration::days(back))
        .filter(|d| d.year() == today.year() && d.month() == today.month())
        .map(usual)
        .sum();
    let set = app
        .gql(
            Some(&token),
            "mutation($i: Iccid!, $l: BigInt!) { setSimQuota(iccid: $i, input: { limitBytes: $l,
                stages: [], action: NOTIFY }) { limitBytes } }",
            json!({"i": sims[CROSSING].iccid, "l": used + 200 * MB}),
        )
        .await;
    assert!(set["errors"].is_null(), "{set}");
    let pass = app.forecasts.pass(Utc::now()).await.unwrap();
    assert!(pass.failed.is_empty(), "{pass:?}");

    // What the API says of the SIM with the quota, to hold the page against.
    let body = app
        .gql(
            Some(&token),
            "query($i: Iccid!) { sim(iccid: $i) { forecast(days: 31) { method backtestWape
                quota { exhaustionDate periodEnd } } } }",
            json!({"i": sims[CROSSING].iccid}),
        )
        .await;
    assert!(body["errors"].is_null(), "{body}");
    let forecast = body["data"]["sim"]["forecast"].clone();
    let method = forecast["method"].as_str().unwrap().to_owned();

    let base = format!("http://{}", app.addr);
    let b = open(DESKTOP, None).await;
    let c = &b.c;
    sign_in(c, &base, admin.email.as_str(), TEST_PASSWORD).await;
    let nav = text_of(c, "[data-testid=nav]").await;
    assert!(nav.contains("Anomalies"), "{nav}");

    // ---- the SIM page: the forecast, its ranges, the quota read against it -------------------
    go(c, &base, &format!("/sims/{}", sims[CROSSING].iccid.as_str())).await;
    ready(c, "sim").await;
    let drawn = until(
        c,
        "the forecast charts drawn",
        "const f = document.querySelector('[data-testid=chart-sim-forecast] svg');
         const p = document.querySelector('[data-testid=chart-sim-period] svg');
         if (!f || !p) return null;
         const drawn = (svg, css) => Array.from(svg.querySelectorAll(css)).filter(e => (e.getAttribute('d') || '').length > 10).length;
         return { bands: drawn(f, 'path.band'), used: drawn(f, 'path.series-actual'), expected: drawn(f, 'path.series-expected'),
                  axes: Array.from(f.querySelectorAll('text.axis-label')).map(t => t.textContent),
                  periodBands: drawn(p, 'path.band'), periodUsed: drawn(p, 'path.series-actual'),
                  limit: Array.from(p.querySelectorAll('text.rule-label')).map(t => t.textContent) };",
        vec![],
        Duration::from_secs(30),
    )
    .await;
    assert_eq!(drawn["bands"], 2, "the 80 % and 95 % ranges shaded: {drawn}");
    assert_eq!(
        (&drawn["used"], &drawn["expected"]),
        (&json!(1), &json!(1)),
        "the usage and the forecast drawn: {drawn}"
    );
    assert_eq!(
        drawn["axes"],
        json!(["Day (UTC)", "Data per day"]),
        "both axes labelled: {drawn}"
    );
    assert_eq!(drawn["periodBands"], 1, "the period's 80 % range: {drawn}");
    if today.day() > 2 {
        // From the period's third day there is a line of what it used so far.
        assert_eq!(drawn["periodUsed"], 1, "the period's usage so far: {drawn}");
    }
    assert!(
        drawn["limit"][0]
            .as_str()
            .is_some_and(|l| l.starts_with("Quota ")),
        "the limit labelled: {drawn}"
    );

    // The sentence says what the API's forecast says, in words.
    let sentence = shows(
        c,
        "the quota read against the forecast",
        "[data-testid=sim-forecast-quota]",
        &["quota"],
    )
    .await;
    let quota = &forecast["quota"];
    if quota["exhaustionDate"].is_null() {
        let end = day_words(date(&quota["periodEnd"]));
        assert!(
            sentence.contains("lasts the period") && sentence.contains(&end),
            "the quota lasts to {end}: {sentence}"
        );
    } else {
        let out = day_words(date(&quota["exhaustionDate"]));
        assert!(
            sentence.contains("runs out") && sentence.contains(&out),
            "the quota runs out on {out}: {sentence}"
        );
    }
    for iso in [&quota["exhaustionDate"], &quota["periodEnd"]] {
        if let Some(iso) = iso.as_str() {
            assert!(!sentence.contains(iso), "dates in words, not ISO: {sentence}");
        }
    }
    let how = shows(
        c,
        "the method in words",
        "[data-testid=sim-forecast-method]",
        &[method_words(&method)],
    )
    .await;
    assert!(!how.contains(&method), "words, not the API's code: {how}");
    if !forecast["backtestWape"].is_null() {
        shows(
            c,
            "the accuracy in words",
            "[data-testid=sim-forecast-accuracy]",
            &["usually within", "% on past weeks"],
        )
        .await;
    }
    assert_eq!(overflows(c).await, Value::Null, "the SIM page fits 1280 pixels");
    c.execute(
        "document.querySelector('[data-testid=sim-forecast]').scrollIntoView();",
        vec![],
    )
    .await
    .unwrap();
    screenshot(c, "console-sim-forecast.png").await;

    // A SIM that never used anything has no forecast, and says why.
    go(c, &base, &format!("/sims/{}", sims[IDLE].iccid.as_str())).await;
    ready(c, "sim").await;
    shows(
        c,
        "no forecast, and why",
        "[data-testid=sim-forecast-none]",
        &["Not enough usage in the last 90 days to forecast"],
    )
    .await;
    shows(
        c,
        "no anomalies",
        "[data-testid=sim-anomalies-none]",
        &["Nothing unusual found"],
    )
    .await;

    // ---- the Anomalies page: what the pass found, in words -----------------------------------
    let body = app
        .gql(
            Some(&token),
            "{ anomalies(first: 50) { nodes { id kind severity iccid sentence status } } }",
            json!({}),
        )
        .await;
    assert!(body["errors"].is_null(), "{body}");
    let found = body["data"]["anomalies"]["nodes"].as_array().unwrap().clone();
    assert_eq!(found.len(), 3, "a spike, a silence and a new country: {found:?}");
    go(c, &base, "/anomalies").await;
    ready(c, "anomalies").await;
    for a in &found {
        let kind = a["kind"].as_str().unwrap();
        let row = shows(
            c,
            &format!("the {kind} in the list"),
            &format!(
                "[data-testid=anomaly-row][data-id=\"{}\"]",
                a["id"].as_str().unwrap()
            ),
            &[
                a["sentence"].as_str().unwrap(),
                kind_words(kind),
                severity_words(a["severity"].as_str().unwrap()),
                a["iccid"].as_str().unwrap(),
                "Open",
                "Yesterday",
                "Dismiss",
                "Confirm",
            ],
        )
        .await;
        assert!(!row.contains(kind), "words, not the API's code: {row}");
    }
    let spike = found
        .iter()
        .find(|a| a["kind"] == "USAGE_SPIKE")
        .expect("the spike");
    let id = spike["id"].as_str().unwrap().to_owned();
    assert_eq!(spike["iccid"], sims[SPIKE].iccid.as_str());
    let row = format!("[data-testid=anomaly-row][data-id=\"{id}\"]");

    // Its evidence: the days up to it, the usual range shaded, the day marked.
    click(c, &format!("{row} [data-testid=anomaly-evidence-toggle]")).await;
    let evidence = until(
        c,
        "the spike's evidence drawn",
        "const svg = document.querySelector('[data-testid=anomaly-evidence][data-id=\"' + arguments[0] + '\"] svg');
         return svg ? { band: svg.querySelectorAll('path.band').length, day: svg.querySelectorAll('circle.dot-highlight').length,
                        mark: svg.querySelectorAll('line.mark').length, axes: svg.querySelectorAll('text.axis-label').length } : null;",
        vec![json!(id)],
        Duration::from_secs(15),
    )
    .await;
    assert_eq!(
        evidence,
        json!({"band": 1, "day": 1, "mark": 1, "axes": 2}),
        "the range shaded, the day marked, the axes labelled"
    );

    // Dismissed for a week with a comment, in the browser.
    click(c, &format!("{row} [data-testid=anomaly-dismiss]")).await;
    type_into(
        c,
        &format!("{row} [data-testid=anomaly-comment]"),
        "A firmware roll-out, expected",
    )
    .await;
    click(
        c,
        &format!("{row} [data-testid=anomaly-until] option[value=WEEK]"),
    )
    .await;
    click(c, &format!("{row} [data-testid=anomaly-dismiss-submit]")).await;
    let week = today + chrono::Duration::days(7);
    let dismissed = shows(
        c,
        "the row dismissed",
        &format!("{row}[data-status=DISMISSED]"),
        &[
            "Dismissed",
            "Dismissed by",
            admin.email.as_str(),
            "ago",
            "A firmware roll-out, expected",
            &format!("Accepted up to {}", day_words(week)),
            "Confirm instead",
        ],
    )
    .await;
    assert!(
        !dismissed.contains(&admin.id.0.to_string()),
        "a person, not an id: {dismissed}"
    );
    shows(
        c,
        "the decision told",
        "[data-testid=anomalies-message]",
        &["Dismissed the usage spike of SIM", sims[SPIKE].iccid.as_str()],
    )
    .await;
    let api = app
        .gql(
            Some(&token),
            "query($id: ID!) { anomaly(id: $id) { status comment dismissedUntil } }",
            json!({"id": id}),
        )
        .await;
    assert_eq!(
        api["data"]["anomaly"],
        json!({"status": "DISMISSED", "comment": "A firmware roll-out, expected",
            "dismissedUntil": week.to_string()}),
        "{api}"
    );
    assert_eq!(overflows(c).await, Value::Null, "the list fits 1280 pixels");
    screenshot(c, "console-anomalies.png").await;

    // The SIM page says so too; the open list no longer has it, the dismissed one does.
    go(c, &base, &format!("/sims/{}", sims[SPIKE].iccid.as_str())).await;
    ready(c, "sim").await;
    let severity = format!("{} severity", severity_words(spike["severity"].as_str().unwrap()));
    shows(
        c,
        "the SIM's anomaly dismissed",
        "[data-testid=sim-anomalies-card]",
        &[
            "Usage spike",
            &severity,
            "Dismissed by",
            "A firmware roll-out, expected",
            "Confirm instead",
        ],
    )
    .await;
    go(c, &base, "/anomalies").await;
    ready(c, "anomalies").await;
    until(
        c,
        "the open anomalies without the dismissed one",
        "return document.querySelectorAll('[data-testid=anomaly-row]').length === 2
            && !document.querySelector('[data-testid=anomaly-row][data-id=\"' + arguments[0] + '\"]');",
        vec![json!(id)],
        Duration::from_secs(15),
    )
    .await;
    click(c, "[data-testid=anomalies-status] option[value=DISMISSED]").await;
    shows(
        c,
        "the dismissed anomaly listed",
        &format!("{row}[data-status=DISMISSED]"),
        &["Usage spike", "Dismissed by"],
    )
    .await;
    b.c.close().await.unwrap();

    // ---- a viewer on a phone: the same, nothing to decide with, nothing too wide -------------
    let phone = open(PHONE, None).await;
    let p = &phone.c;
    sign_in(p, &base, viewer.email.as_str(), TEST_PASSWORD).await;
    go(p, &base, "/anomalies?status=ALL").await;
    ready(p, "anomalies").await;
    shows(
        p,
        "the dismissed spike for a viewer",
        &row,
        &["Usage spike", "Dismissed by", "A firmware roll-out, expected"],
    )
    .await;
    assert_eq!(
        count(p, "[data-testid=anomaly-row]").await,
        3,
        "every anomaly listed"
    );
    assert_eq!(
        count(p, DECIDE).await,
        0,
        "a viewer is offered nothing to decide with"
    );
    assert_eq!(
        overflows(p).await,
        Value::Null,
        "the anomalies are wider than a 390-pixel phone"
    );
    screenshot(p, "console-anomalies-viewer.png").await;
    go(p, &base, &format!("/sims/{}", sims[SPIKE].iccid.as_str())).await;
    ready(p, "sim").await;
    shows(
        p,
        "the SIM's anomaly for a viewer",
        "[data-testid=sim-anomalies-card]",
        &["Usage spike", "Dismissed by"],
    )
    .await;
    until(
        p,
        "the SIM's forecast for a viewer",
        "return !!document.querySelector('[data-testid=chart-sim-forecast] svg path.band');",
        vec![],
        Duration::from_secs(30),
    )
    .await;
    assert_eq!(
        count(p, DECIDE).await,
        0,
        "a viewer is offered nothing to decide with"
    );
    assert_eq!(
        overflows(p).await,
        Value::Null,
        "the SIM page is wider than a 390-pixel phone"
    );
    phone.c.close().await.unwrap();
    app.stop().await;
}
