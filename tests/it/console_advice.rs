//! The fleet page's quota and plan advice in a real browser, on the embedded engines, over the
//! advice tests' story (`advice::history`: 90 days of a heavy SIM on the base prices, a SIM under
//! a quota below its month, a sub-customer's SIM with a runaway day and no quota, alone in its
//! pool) with one more SIM under a quota too small, the retail card whose plan `heavy` is cheaper
//! for heavy users, and a pass of the forecast job. A tenant administrator sees the advice with
//! the highest saving first — the SIM's ICCID, what to do in words, the sentence, the change
//! (plans and limits in words and bytes) and the saving with its currency —, reads the rest with
//! "Show more", and follows a SIM's link to its page. A sub-customer's user, on a phone, sees
//! only its own SIM's advice, without amounts, and nothing wider than the screen. Screenshots
//! under the target directory's `tmp/browser/`.

use std::time::Duration;

use chrono::{DateTime, Utc};
use fantoccini::Client;
use ioto_domain::Role;
use ioto_test_support::{Engines, TestApp, TEST_PASSWORD};
use serde_json::{json, Value};

use crate::advice::{
    history, pass_day, pool_of_100_mb, quota_of_100_mb, retail_card, session, CAPPED, HEAVY, MB,
};
use crate::browser::screenshot;
use crate::console::{click, go, open, overflows, ready, sign_in, text_of, until, DESKTOP, PHONE};
use crate::console_alerts::shows;
use crate::console_forecasts::count;

/// One more SIM of 10 MB a day under a 100 MB quota, so the advice fills more than a page.
const ALSO_CAPPED: usize = 2;

/// The advice rows on the page, top to bottom, by id.
async fn row_ids(c: &Client) -> Vec<String> {
    let v = c
        .execute(
            "return Array.from(document.querySelectorAll('[data-testid=advice-row]')).map(r => r.dataset.id);",
            vec![],
        )
        .await
        .unwrap();
    serde_json::from_value(v).unwrap()
}

fn row(id: &Value) -> String {
    format!("[data-testid=advice-row][data-id=\"{}\"]", id.as_str().unwrap())
}

#[tokio::test]
async fn the_fleet_page_lists_quota_and_plan_advice_by_saving() {
    let app = TestApp::spawn(Engines::Embedded).await;
    let f = &app.factory;
    let t = f.tenant("Advice in the console").await;
    let customer = f.customer(&t, "Runaways").await;
    let sims = f.sims(&t, None, 3).await;
    let runaway = f.sims(&t, Some(customer.id), 1).await.remove(0);
    let admin = f.user(&t, Role::TenantAdmin, None).await;
    let customer_user = f.user(&t, Role::CustomerUser, Some(customer.id)).await;
    let platform = f.user(&t, Role::PlatformAdmin, None).await;
    let token = app.login(admin.email.as_str(), TEST_PASSWORD).await;
    let customer_token = app.login(customer_user.email.as_str(), TEST_PASSWORD).await;
    let platform_token = app.login(platform.email.as_str(), TEST_PASSWORD).await;

    retail_card(&app, &platform_token, &t.id.to_string()).await;

    let day = pass_day();
    let mut updates = history(&sims, &runaway, day);
    for back in 1..=90 {
        let d = day - chrono::Duration::days(back);
        updates.push(session(&sims[ALSO_CAPPED], d, 10 * MB, &format!("d{back}")));
    }
    app.app_engines
        .usage
        .write_session_updates(&updates)
        .await
        .unwrap();
    app.app_engines.usage.flush_pending().await.unwrap();
    for sim in [&sims[CAPPED], &sims[ALSO_CAPPED]] {
        quota_of_100_mb(&app, &token, sim.iccid.as_str()).await;
    }
    let pool_id = pool_of_100_mb(&app, &token, "Runaway pool", &customer.id.to_string()).await;

    let now: DateTime<Utc> = day.and_hms_opt(10, 0, 0).unwrap().and_utc();
    let pass = app.forecasts.pass(now).await.unwrap();
    assert!(pass.failed.is_empty(), "{pass:?}");
    assert_eq!(pass.advice, 6, "{pass:?}");

    // What the API lists, to hold the page against: the heavy SIM's plan first, the runaway's
    // limit next, then the advice saving nothing.
    let body = app
        .gql(
            Some(&token),
            "{ advice(first: 50) { nodes { id action iccid poolId saving sentence } } }",
            json!({}),
        )
        .await;
    assert!(body["errors"].is_null(), "{body}");
    let all = body["data"]["advice"]["nodes"].as_array().unwrap().clone();
    assert_eq!(all.len(), 6, "{body}");
    let ids: Vec<String> = all.iter().map(|a| a["id"].as_str().unwrap().to_owned()).collect();
    let (switch, set) = (&all[0], &all[1]);
    assert_eq!(
        (&switch["action"], &switch["iccid"], &switch["saving"]),
        (&json!("SWITCH_PLAN"), &json!(sims[HEAVY].iccid), &json!("108.00")),
        "{body}"
    );
    assert_eq!(
        (&set["action"], &set["iccid"], &set["saving"]),
        (&json!("SET"), &json!(runaway.iccid), &json!("18.52")),
        "{body}"
    );

    // ---- a tenant administrator: the top five, by saving, in words -------------------------
    let base = format!("http://{}", app.addr);
    let b = open(DESKTOP, None).await;
    let c = &b.c;
    sign_in(c, &base, admin.email.as_str(), TEST_PASSWORD).await;
    go(c, &base, "/sims").await;
    ready(c, "sims").await;
    shows(
        c,
        "the advice card listed",
        "[data-testid=fleet-advice][data-state=list]",
        &[
            "Quota and plan advice",
            "the highest saving first",
            "Show more advice",
        ],
    )
    .await;
    assert_eq!(
        row_ids(c).await,
        ids[..5].to_vec(),
        "the first five, in the API's order"
    );
    let first = shows(
        c,
        "the plan advice with its saving",
        &row(&switch["id"]),
        &[
            sims[HEAVY].iccid.as_str(),
            "Switch the tariff plan",
            switch["sentence"].as_str().unwrap(),
            "Base prices → plan heavy",
            "€184.00 → €76.00",
            "€108.00",
        ],
    )
    .await;
    assert!(
        !first.contains("SWITCH_PLAN"),
        "words, not the API's code: {first}"
    );
    shows(
        c,
        "the limit advice with its saving",
        &row(&set["id"]),
        &[
            runaway.iccid.as_str(),
            "Runaways",
            "Set a data limit",
            set["sentence"].as_str().unwrap(),
            "No limit → 250 MB",
            "€18.52",
        ],
    )
    .await;
    assert_eq!(
        text_of(c, &format!("{} [data-testid=advice-saving]", row(&switch["id"]))).await,
        "€108.00"
    );
    assert_eq!(overflows(c).await, Value::Null, "the SIMs page fits 1280 pixels");
    screenshot(c, "console-fleet-advice.png").await;

    // "Show more" reads the rest under the rows shown; the first new SIM row takes the focus.
    click(c, "[data-testid=fleet-advice-more]").await;
    until(
        c,
        "the sixth advice listed",
        "return document.querySelectorAll('[data-testid=advice-row]').length === 6;",
        vec![],
        Duration::from_secs(15),
    )
    .await;
    assert_eq!(row_ids(c).await, ids, "every advice, in the API's order");
    shows(
        c,
        "the end of the advice",
        "[data-testid=fleet-advice-end]",
        &["All 6 shown"],
    )
    .await;
    if !all[5]["iccid"].is_null() {
        let focused = c
            .execute(
                "const r = document.activeElement && document.activeElement.closest('[data-testid=advice-row]');
                 return r ? r.dataset.id : null;",
                vec![],
            )
            .await
            .unwrap();
        assert_eq!(focused, json!(ids[5]), "the new row has the focus");
    }
    let raise = all
        .iter()
        .find(|a| a["iccid"] == json!(sims[CAPPED].iccid))
        .expect("the capped SIM's advice");
    shows(
        c,
        "the raise, saving nothing",
        &row(&raise["id"]),
        &[
            "Raise the data limit",
            "100 MB → 500 MB",
            "None",
            "it avoids interruptions",
        ],
    )
    .await;
    shows(
        c,
        "the pool's advice",
        &format!("[data-testid=advice-row][data-pool=\"{pool_id}\"]"),
        &["Pool", "Runaway pool", "Raise the data limit", "100 MB → 250 MB"],
    )
    .await;

    // The SIM's link opens its page.
    click(c, &format!("{} [data-testid=advice-sim]", row(&switch["id"]))).await;
    ready(c, "sim").await;
    shows(
        c,
        "the advised SIM's page",
        "[data-testid=sim-iccid]",
        &[sims[HEAVY].iccid.as_str()],
    )
    .await;
    assert!(c
        .current_url()
        .await
        .unwrap()
        .as_str()
        .ends_with(&format!("#/sims/{}", sims[HEAVY].iccid.as_str())));
    b.c.close().await.unwrap();

    // ---- a sub-customer's user on a phone: its own SIM's advice, without amounts -----------
    let theirs = app
        .gql(
            Some(&customer_token),
            "{ advice(first: 50) { nodes { id sentence saving } } }",
            json!({}),
        )
        .await;
    assert!(theirs["errors"].is_null(), "{theirs}");
    let own = theirs["data"]["advice"]["nodes"][0].clone();
    assert!(own["saving"].is_null(), "{theirs}");
    let phone = open(PHONE, None).await;
    let p = &phone.c;
    sign_in(p, &base, customer_user.email.as_str(), TEST_PASSWORD).await;
    go(p, &base, "/sims").await;
    ready(p, "sims").await;
    let seen = shows(
        p,
        "the sub-customer's advice",
        "[data-testid=fleet-advice][data-state=list]",
        &[
            runaway.iccid.as_str(),
            "Set a data limit",
            own["sentence"].as_str().unwrap(),
            "No limit → 250 MB",
            "Amounts are not shown",
            "That is all the advice",
        ],
    )
    .await;
    assert!(
        !seen.contains('€') && !seen.contains("EUR") && !seen.contains("Saving"),
        "no amounts for those who may not see costs: {seen}"
    );
    assert_eq!(
        count(p, "[data-testid=advice-row]").await,
        1,
        "its own SIM's only"
    );
    assert_eq!(count(p, "[data-testid=advice-pool]").await, 0, "no pool's advice");
    assert_eq!(
        overflows(p).await,
        Value::Null,
        "the advice is wider than a 390-pixel phone"
    );
    screenshot(p, "console-fleet-advice-customer.png").await;
    phone.c.close().await.unwrap();
    app.stop().await;
}
