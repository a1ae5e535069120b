//! The dashboard's usage forecast card in a real browser, on the embedded engines: four weeks of
//! usage hour by hour (busy working hours, quiet nights and weekends) of SIMs the tenant holds and
//! SIMs of a sub-customer, today's completed hours included, a retail card, and a pass of the
//! forecast job. A tenant admin reads today's usage so far and where it is heading by midnight
//! in units, the next hours' chart with its ranges and a numbers table of exactly the hours the
//! API forecast, the method in words and the forecast cost of the period; the numbers open with
//! the keyboard. The sub-customer's user, on a phone, reads their sub-customer's forecast without
//! costs; a tenant without usage is told there is no forecast yet. Screenshots under the target
//! directory's `tmp/browser/`.

use std::time::Duration;

use chrono::{DateTime, Datelike, Timelike, Utc, Weekday};
use ioto_domain::fleet::Sim;
use ioto_domain::ports::{period_start, Granularity, SessionUpdate};
use ioto_domain::Role;
use ioto_test_support::{Engines, TestApp, TEST_PASSWORD};
use serde_json::{json, Value};

use crate::advice::retail_card;
use crate::browser::screenshot;
use crate::console::{click, go, open, overflows, ready, sign_in, until, DESKTOP, PHONE};
use crate::console_alerts::shows;
use crate::forecasts::session;

const MB: u64 = 1_000_000;
/// Days of hours written before today: the four weeks a pass reads for the hourly forecasts.
const HISTORY_DAYS: i64 = 28;
/// WebDriver's Enter key.
const ENTER: &str = "\u{e007}";

/// What the dashboard's forecast is read as, to hold the card against.
const FORECAST: &str = "{ dashboard { forecast(days: 7) { method days { bytes }
    projectedCost { currency costSoFar projected }
    hourly { method hours { at bytes } today { hoursSoFar soFarBytes bytes low80 high80 } } } } }";

/// The forecast card as drawn: its ranges and line, its axes, its numbers table's rows (hour,
/// expected bytes), today's sentence and amounts (the API's number and the text shown), the
/// hourly method, the week's total and the forecast cost; null until the chart is drawn.
const CARD: &str = "
    const card = document.querySelector('[data-testid=dash-forecast]');
    const svg = card && card.querySelector('[data-testid=chart-dash-hourly] svg');
    if (!svg) return null;
    const drawn = css => Array.from(svg.querySelectorAll(css)).filter(e => (e.getAttribute('d') || '').length > 10).length;
    const amount = css => { const e = card.querySelector(css); return e ? [e.dataset.value || null, e.textContent] : null; };
    const stat = css => { const e = card.querySelector(css); return e ? [e.dataset.value || null, e.querySelector('.stat-value').textContent] : null; };
    const today = card.querySelector('[data-testid=dash-forecast-today]');
    return {
      state: card.dataset.state,
      bands: drawn('path.band'),
      expected: drawn('path.series-expected'),
      axes: Array.from(svg.querySelectorAll('text.axis-label')).map(t => t.textContent),
      rows: Array.from(card.querySelectorAll('[data-testid=chart-dash-hourly] tbody tr')).map(r => [r.dataset.key, r.dataset.value]),
      today: today ? today.innerText : null,
      hoursSoFar: today ? today.dataset.hoursSoFar : null,
      soFar: amount('[data-testid=dash-today-sofar]'),
      total: amount('[data-testid=dash-today-expected]'),
      method: amount('[data-testid=dash-forecast-hourly-method] [data-value]'),
      days: stat('[data-testid=dash-forecast-days]'),
      projected: stat('[data-testid=dash-forecast-projected]'),
      costHidden: !!card.querySelector('[data-testid=dash-forecast-cost-hidden]'),
    };";

/// The hourly forecast methods (`HourlyForecastMethod`) as the console says them.
fn hourly_method_words(method: &str) -> &'static str {
    match method {
        "NAIVE" => "the last hour’s level",
        "SEASONAL_NAIVE_DAY" => "repeats yesterday hour by hour",
        "SEASONAL_NAIVE_WEEK" => "repeats last week hour by hour",
        "DRIFT" => "trend",
        "ETS_PROFILE" => "seasonal trend model with the day’s shape",
        other => panic!("an hourly method the console has no words for: {other}"),
    }
}

/// What SIM `sim` uses in the hour from `at`: busy in working hours on working days, a little
/// at night and a quarter of it at the weekend, and up to 2.5 MB more of its own so that no two
/// days are alike (the forecasts' ranges come from how the days differ).
fn usage_in(at: DateTime<Utc>, sim: usize) -> u64 {
    let h = at.hour();
    let per_hour: u64 = match h {
        7..=18 => 20,
        19..=22 => 8,
        _ => 2,
    };
    let weekend = matches!(at.weekday(), Weekday::Sat | Weekday::Sun);
    let base = if weekend { per_hour * MB / 4 } else { per_hour * MB };
    let sim = u64::try_from(sim).unwrap();
    let wobble = (u64::from(at.ordinal()) * 7 + u64::from(h) * 13 + sim * 5) % 6;
    base + wobble * MB / 2
}

/// A closed session in every hour of the [`HISTORY_DAYS`] days before `now`'s day and in each of
/// today's completed hours, for every SIM.
fn hourly_history(sims: &[Sim], now: DateTime<Utc>) -> Vec<SessionUpdate> {
    let this_hour = period_start(now, Granularity::Hour);
    let mut at = period_start(now, Granularity::Day) - chrono::Duration::days(HISTORY_DAYS);
    let mut updates = Vec::new();
    while at < this_hour {
        for (i, sim) in sims.iter().enumerate() {
            let id = format!("h{}", at.format("%Y%m%d%H"));
            updates.push(session(
                sim,
                at + chrono::Duration::minutes(20),
                "262-01",
                usage_in(at, i),
                &id,
            ));
        }
        at += chrono::Duration::hours(1);
    }
    updates
}

/// The dashboard's forecast as the caller of `token` reads it.
async fn dashboard_forecast(app: &TestApp, token: &str) -> Value {
    let body = app.gql(Some(token), FORECAST, json!({})).await;
    assert!(body["errors"].is_null(), "{body}");
    body["data"]["dashboard"]["forecast"].clone()
}

/// A BigInt as the API answers it (a JSON number, or a string of digits).
fn big(v: &Value) -> u64 {
    v.as_u64()
        .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
        .unwrap_or_else(|| panic!("not a byte count: {v}"))
}

fn hour(v: &Value) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(v.as_str().unwrap())
        .unwrap_or_else(|e| panic!("not an instant: {v}: {e}"))
        .with_timezone(&Utc)
}

/// The numbers table's rows as (hour, expected bytes).
fn numbers(card: &Value) -> Vec<(DateTime<Utc>, u64)> {
    card["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (hour(&r[0]), big(&r[1])))
        .collect()
}

/// The API's hours as (hour, expected bytes).
fn api_hours(hours: &[Value]) -> Vec<(DateTime<Utc>, u64)> {
    hours.iter().map(|h| (hour(&h["at"]), big(&h["bytes"]))).collect()
}

/// Whether `shown` ("1.20 GB", "830 MB", "0 B") is `bytes` in the console's decimal units, to
/// the digits shown.
fn is_bytes(shown: &str, bytes: u64) -> bool {
    let Some((number, unit)) = shown.trim().split_once(' ') else {
        return false;
    };
    let Some(power) = ["B", "kB", "MB", "GB", "TB", "PB"]
        .iter()
        .position(|u| *u == unit)
    else {
        return false;
    };
    let Ok(n) = number.parse::<f64>() else {
        return false;
    };
    let decimals = number.split_once('.').map_or(0, |(_, d)| d.len());
    let value = bytes as f64 / 1000f64.powi(i32::try_from(power).unwrap());
    let half_digit = 0.5 / 10f64.powi(i32::try_from(decimals).unwrap());
    value < 1000.0 && (power == 0 || value >= 1.0) && (n - value).abs() <= half_digit + 1e-9
}

/// The amount `shown` ([the API's number, the text]) is `bytes`, in units.
fn assert_amount(shown: &Value, bytes: u64, what: &str) {
    assert_eq!(
        shown[0].as_str(),
        Some(bytes.to_string().as_str()),
        "{what}: the API's number ({shown})"
    );
    let text = shown[1].as_str().unwrap_or_default();
    assert!(
        is_bytes(text, bytes),
        "{what}: {text:?} is not {bytes} bytes in units"
    );
}

#[tokio::test]
async fn the_dashboard_shows_todays_forecast_and_the_next_hours() {
    let app = TestApp::spawn(Engines::Embedded).await;
    let f = &app.factory;
    let t = f.tenant("Forecast on the dashboard").await;
    let harbour = f.customer(&t, "Harbour").await;
    let mut sims = f.sims(&t, None, 3).await;
    sims.extend(f.sims(&t, Some(harbour.id), 2).await);
    let admin = f.user(&t, Role::TenantAdmin, None).await;
    let harbour_user = f.user(&t, Role::CustomerUser, Some(harbour.id)).await;
    let platform = f.user(&t, Role::PlatformAdmin, None).await;
    let token = app.login(admin.email.as_str(), TEST_PASSWORD).await;
    let harbour_token = app.login(harbour_user.email.as_str(), TEST_PASSWORD).await;
    let platform_token = app.login(platform.email.as_str(), TEST_PASSWORD).await;
    // A tenant without usage: the pass runs over it too and makes no forecast.
    let empty = f.tenant("No forecast yet").await;
    f.sims(&empty, None, 2).await;
    let newcomer = f.user(&empty, Role::TenantAdmin, None).await;
    let newcomer_token = app.login(newcomer.email.as_str(), TEST_PASSWORD).await;

    retail_card(&app, &platform_token, &t.id.to_string()).await;
    let now = Utc::now();
    let history = hourly_history(&sims, now);
    for part in history.chunks(1_000) {
        app.app_engines.usage.write_session_updates(part).await.unwrap();
    }
    app.app_engines.usage.flush_pending().await.unwrap();
    let pass = app.forecasts.pass(now).await.unwrap();
    assert!(pass.failed.is_empty(), "{pass:?}");

    // What the API says, to hold the card against.
    let forecast = dashboard_forecast(&app, &token).await;
    let hourly = &forecast["hourly"];
    let hours = hourly["hours"]
        .as_array()
        .unwrap_or_else(|| panic!("four weeks of hours are forecast hour by hour: {forecast}"))
        .clone();
    assert!(!hours.is_empty() && hours.len() <= 48, "{forecast}");
    let today = &hourly["today"];
    assert!(today.is_object(), "four weeks of hours project today: {forecast}");
    let projected = &forecast["projectedCost"];
    assert!(
        projected.is_object(),
        "a retail card prices the forecast: {forecast}"
    );
    let week: u64 = forecast["days"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| big(&d["bytes"]))
        .sum();
    assert!(
        dashboard_forecast(&app, &newcomer_token).await.is_null(),
        "a tenant without usage has no forecast"
    );

    // ---- a tenant admin: today, the next hours, the week, the period's cost -------------------
    let base = format!("http://{}", app.addr);
    let b = open(DESKTOP, None).await;
    let c = &b.c;
    sign_in(c, &base, admin.email.as_str(), TEST_PASSWORD).await;
    go(c, &base, "/dashboard").await;
    ready(c, "dashboard").await;
    let card = until(
        c,
        "the forecast card drawn",
        CARD,
        vec![],
        Duration::from_secs(30),
    )
    .await;
    assert_eq!(card["state"], "hourly", "{card}");
    assert_eq!(card["bands"], 2, "the 80 % and 95 % ranges shaded: {card}");
    assert_eq!(card["expected"], 1, "the expected hours drawn: {card}");
    assert_eq!(
        card["axes"],
        json!(["Hour (UTC)", "Data per hour"]),
        "both axes labelled: {card}"
    );
    assert_eq!(
        numbers(&card),
        api_hours(&hours),
        "the numbers table holds every hour the API forecast, as it forecast it"
    );

    let sentence = card["today"].as_str().unwrap_or_default();
    for words in ["Today (UTC): ", " so far, about ", " by midnight (80 %: "] {
        assert!(sentence.contains(words), "{words:?} in {sentence:?}");
    }
    assert_eq!(
        card["hoursSoFar"].as_str(),
        Some(today["hoursSoFar"].to_string().as_str()),
        "the hours of today read: {card}"
    );
    assert_amount(&card["soFar"], big(&today["soFarBytes"]), "today so far");
    let total = big(&today["bytes"]);
    assert_amount(&card["total"], total, "today by midnight");
    let range = (big(&today["low80"]), big(&today["high80"]));
    assert!(range.0 <= total && total <= range.1, "{today}");

    let method = hourly["method"].as_str().unwrap();
    assert_eq!(card["method"][0], method, "{card}");
    let how = card["method"][1].as_str().unwrap_or_default();
    assert!(
        how.contains(hourly_method_words(method)) && !how.contains(method),
        "the method in words, not the API's code: {how}"
    );

    assert_eq!(
        card["days"][0].as_str(),
        Some(week.to_string().as_str()),
        "the next 7 days' total: {card}"
    );
    let days_text = card["days"][1].as_str().unwrap_or_default();
    assert!(
        is_bytes(days_text.trim_start_matches("about "), week),
        "the week in units: {days_text:?}"
    );
    assert_eq!(
        card["projected"][0], projected["projected"],
        "the forecast cost as the API has it: {card}"
    );
    let cost = card["projected"][1].as_str().unwrap_or_default();
    assert!(
        cost.starts_with('€') && cost.rsplit_once('.').is_some_and(|(_, cents)| cents.len() == 2),
        "in euros, rounded to cents: {cost:?}"
    );
    assert_eq!(card["costHidden"], false, "{card}");
    assert_eq!(overflows(c).await, Value::Null, "the dashboard fits 1280 pixels");
    c.execute(
        "document.querySelector('[data-testid=dash-forecast]').scrollIntoView();",
        vec![],
    )
    .await
    .unwrap();
    screenshot(c, "console-dashboard-forecast.png").await;

    // The hours' numbers open with the keyboard.
    c.execute(
        "document.querySelector('[data-testid=chart-dash-hourly] details.numbers summary').focus();",
        vec![],
    )
    .await
    .unwrap();
    c.active_element().await.unwrap().send_keys(ENTER).await.unwrap();
    until(
        c,
        "the hours' numbers opened with the keyboard",
        "return document.querySelector('[data-testid=chart-dash-hourly] details.numbers').open;",
        vec![],
        Duration::from_secs(5),
    )
    .await;

    // ---- a tenant without usage: no forecast yet, in words -----------------------------------
    click(c, "[data-testid=logout]").await;
    sign_in(c, &base, newcomer.email.as_str(), TEST_PASSWORD).await;
    go(c, &base, "/dashboard").await;
    ready(c, "dashboard").await;
    shows(
        c,
        "no forecast yet, in words",
        "[data-testid=dash-forecast]",
        &["No forecast yet: the forecast pass runs hourly and needs usage history"],
    )
    .await;
    let charts = c
        .execute(
            "return document.querySelectorAll('[data-testid=chart-dash-hourly]').length;",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(charts, 0, "no chart without a forecast");
    b.c.close().await.unwrap();

    // ---- the sub-customer's user on a phone: their sub-customer's forecast, no costs ----------
    let theirs = dashboard_forecast(&app, &harbour_token).await;
    let their_today = &theirs["hourly"]["today"];
    assert!(
        their_today.is_object(),
        "the sub-customer's hours project its today: {theirs}"
    );
    let their_hours = theirs["hourly"]["hours"].as_array().unwrap().clone();
    assert_ne!(
        big(&their_today["bytes"]),
        total,
        "the sub-customer's day, not the tenant's"
    );
    assert!(
        theirs["projectedCost"].is_null(),
        "costs are not shared with the sub-customer: {theirs}"
    );
    let phone = open(PHONE, None).await;
    let p = &phone.c;
    sign_in(p, &base, harbour_user.email.as_str(), TEST_PASSWORD).await;
    go(p, &base, "/dashboard").await;
    ready(p, "dashboard").await;
    let card = until(
        p,
        "the sub-customer's forecast card drawn",
        CARD,
        vec![],
        Duration::from_secs(30),
    )
    .await;
    assert_amount(
        &card["total"],
        big(&their_today["bytes"]),
        "their day by midnight",
    );
    assert_amount(
        &card["soFar"],
        big(&their_today["soFarBytes"]),
        "their day so far",
    );
    assert_eq!(
        numbers(&card),
        api_hours(&their_hours),
        "the sub-customer's hours, as the API forecast them"
    );
    assert_eq!(card["costHidden"], true, "costs said to be hidden: {card}");
    assert!(card["projected"].is_null(), "no cost shown: {card}");
    assert_eq!(
        overflows(p).await,
        Value::Null,
        "the dashboard is wider than a 390-pixel phone"
    );
    p.execute(
        "document.querySelector('[data-testid=dash-forecast]').scrollIntoView();",
        vec![],
    )
    .await
    .unwrap();
    screenshot(p, "console-dashboard-forecast-phone.png").await;
    phone.c.close().await.unwrap();
    app.stop().await;
}
