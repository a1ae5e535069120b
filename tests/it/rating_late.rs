//! The scheduler's pass against real stores: CDRs arriving late for an ended period that is not
//! closed are rated into it; unchanged and closed periods get no new run.

use std::sync::Arc;

use chrono::NaiveDate;
use ioto_analytics::{ClickHouseUsage, EmbeddedUsage};
use ioto_app::billing::Requester;
use ioto_domain::billing::money::Cost;
use ioto_domain::billing::rate_card::RateCardKind;
use ioto_domain::billing::rating::{RatingRun, RunStatus};
use ioto_domain::ports::billing::RatedDimension;
use ioto_domain::ports::UsageStore;
use ioto_store::StoreLocation;
use ioto_test_support::{clickhouse, temp_dir};

use super::rate_cards_api::home_cdr;
use super::rating::{retail_fixture, RetailFixture};

fn d(y: i32, m: u32, day: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, day).unwrap()
}

fn cost(s: &str) -> Cost {
    Cost::parse("cost", s).unwrap()
}

async fn late_cdrs_of_an_ended_period(loc: StoreLocation, usage: Arc<dyn UsageStore>) {
    let RetailFixture {
        service,
        tenant,
        mut sims,
        admin,
        card,
    } = retail_fixture(&loc, usage.clone(), "Late", 1, d(2025, 1, 1), "0").await;
    let sim = sims.remove(0);
    let cdr = |n: u32, day: NaiveDate, bytes: u64| home_cdr(tenant.id, &sim, n, day, bytes);
    let (feb, mar, may) = (d(2025, 2, 1), d(2025, 3, 1), d(2025, 5, 1));

    // February and March rated on demand, 1 MB each.
    usage
        .write_cdrs(&[
            cdr(1, d(2025, 2, 10), 1_000_000),
            cdr(2, d(2025, 3, 10), 1_000_000),
        ])
        .await
        .unwrap();
    for day in [feb, mar] {
        service
            .rate_period(Requester::User(&admin), tenant.id, day)
            .await
            .unwrap();
    }
    let runs_of = |runs: &[RatingRun], period: NaiveDate| -> Vec<RatingRun> {
        runs.iter()
            .filter(|r| r.period_start == period)
            .cloned()
            .collect()
    };
    let all_runs = || async { service.runs(&admin, Some(tenant.id), 500).await.unwrap() };
    let before = all_runs().await;
    let feb_run = runs_of(&before, feb).remove(0);

    // 2 MB of March arrive in May: the scheduler's pass rates March again (and May, today's
    // period); February, April (no CDRs, never rated) and January are left alone.
    usage
        .write_cdrs(&[cdr(3, d(2025, 3, 20), 2_000_000)])
        .await
        .unwrap();
    let today = d(2025, 5, 15);
    let pass = service.rate_open_periods(today).await.unwrap();
    let mut periods: Vec<NaiveDate> = pass.iter().map(|r| r.period_start).collect();
    periods.sort_unstable();
    assert_eq!(periods, [mar, may], "{pass:#?}");
    let march = runs_of(&pass, mar).remove(0);
    assert_eq!(march.requested_by, "scheduler");
    assert_eq!(march.totals.records, 2, "the late CDR is in March's run");
    assert_eq!(march.totals.usage_cost, cost("1.50"), "3 MB at 0.5");
    let rated = service
        .rated_usage(
            &admin,
            Some(tenant.id),
            RateCardKind::Retail,
            d(2025, 3, 31),
            RatedDimension::Tenant,
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(rated.run.id, march.id, "March's current run is the new one");
    assert_eq!(rated.usage.len(), 1);
    assert_eq!(rated.usage[0].1.records, 2);
    assert_eq!(rated.usage[0].1.cost, cost("1.50"));
    let after = all_runs().await;
    assert_eq!(
        runs_of(&after, feb),
        std::slice::from_ref(&feb_run),
        "February is unchanged"
    );
    assert!(runs_of(&after, d(2025, 4, 1)).is_empty(), "April has no CDRs");

    // Nothing new: the next pass rates only today's period.
    let again = service.rate_open_periods(today).await.unwrap();
    let periods: Vec<NaiveDate> = again.iter().map(|r| r.period_start).collect();
    assert_eq!(periods, [may], "{again:#?}");
    let after_again = all_runs().await;
    assert_eq!(runs_of(&after_again, mar).len(), 2, "no new run of March");
    assert_eq!(runs_of(&after_again, feb).len(), 1);

    // A closed period is not rated again by the pass (its late usage is an adjustment).
    service.close_period(&admin, card.id, feb).await.unwrap();
    usage
        .write_cdrs(&[cdr(4, d(2025, 2, 20), 1_000_000)])
        .await
        .unwrap();
    let closed_pass = service.rate_open_periods(today).await.unwrap();
    let periods: Vec<NaiveDate> = closed_pass.iter().map(|r| r.period_start).collect();
    assert_eq!(periods, [may], "{closed_pass:#?}");
    let feb_runs = runs_of(&all_runs().await, feb);
    assert_eq!(feb_runs.len(), 1);
    assert_eq!(feb_runs[0].id, feb_run.id);
    assert_eq!(feb_runs[0].status, RunStatus::Current);
}

#[tokio::test]
async fn late_cdrs_of_an_ended_open_period_are_rated_by_the_scheduler_on_postgres() {
    let url = ioto_test_support::pg::database().await;
    let usage: Arc<dyn UsageStore> = Arc::new(
        EmbeddedUsage::open(&temp_dir().join("usage.sqlite"))
            .await
            .unwrap(),
    );
    late_cdrs_of_an_ended_period(StoreLocation::Postgres { url }, usage).await;
}

#[tokio::test]
async fn late_cdrs_of_an_ended_open_period_are_rated_by_the_scheduler_on_sqlite() {
    let usage: Arc<dyn UsageStore> = Arc::new(
        EmbeddedUsage::open(&temp_dir().join("usage.sqlite"))
            .await
            .unwrap(),
    );
    late_cdrs_of_an_ended_period(
        StoreLocation::Sqlite {
            path: temp_dir().join("billing.sqlite"),
        },
        usage,
    )
    .await;
}

#[tokio::test]
async fn late_cdrs_of_an_ended_open_period_are_rated_by_the_scheduler_on_clickhouse() {
    let url = ioto_test_support::pg::database().await;
    let config = clickhouse::database().await;
    let usage: Arc<dyn UsageStore> = Arc::new(ClickHouseUsage::connect(config.clone()).await.unwrap());
    late_cdrs_of_an_ended_period(StoreLocation::Postgres { url }, usage).await;
    ClickHouseUsage::drop_database(&config).await.unwrap();
}
