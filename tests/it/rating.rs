//! Rating against real engines: a hand-computed fixture rates to the exact amounts on ClickHouse
//! and on the embedded store; a late CDR is picked up by the next run, which replaces the
//! previous one; rating the same CDRs twice gives the same result; the service rates a tenant's
//! current period from its rate card and audit trail.

use std::sync::Arc;

use chrono::{NaiveDate, TimeZone, Utc};
use ioto_analytics::{ClickHouseUsage, EmbeddedUsage};
use ioto_domain::billing::money::{Cost, Currency, Price};
use ioto_domain::billing::rate_card::{
    BillingPeriod, RateCard, RateCardKind, RateCardTerms, RateCardVersion, TariffOverride, Zone, ZonePrice,
};
use ioto_domain::billing::rating::{ActiveSimMonth, BillableSim, RatingJob};
use ioto_domain::identifiers::{Iccid, MccMnc};
use ioto_domain::ports::billing::{RatedDimension, RatedQuery};
use ioto_domain::ports::{CdrRecord, UsageStore};
use ioto_domain::{CustomerId, TenantId};
use ioto_test_support::{clickhouse, temp_dir};
use uuid::Uuid;

fn d(y: i32, m: u32, day: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, day).unwrap()
}

fn p(s: &str) -> Price {
    Price::parse("price", s).unwrap()
}

fn c(s: &str) -> Cost {
    Cost::parse("cost", s).unwrap()
}

fn zone(name: &str, networks: &[&str], countries: &[&str], price: &str, is_default: bool) -> Zone {
    Zone {
        name: name.into(),
        networks: networks.iter().map(|n| MccMnc::parse(n).unwrap()).collect(),
        countries: countries.iter().map(|c| (*c).to_owned()).collect(),
        price_per_mb: p(price),
        is_default,
    }
}

/// Three zones; the version of 2026-03-15 changes prices and rounding inside the quarter.
fn fixture_card(tenant: TenantId) -> RateCard {
    let v1 = RateCardTerms {
        effective_from: d(2026, 1, 2),
        rounding_increment_bytes: 1_024,
        access_fee: p("2.00"),
        zones: vec![
            zone("Home", &["262-01"], &[], "0.010", false),
            zone("EU", &[], &["DE", "FR"], "0.020", false),
            zone("World", &[], &[], "0.100", true),
        ],
        overrides: vec![TariffOverride {
            tariff_plan: "fleet-xl".into(),
            access_fee: Some(p("1.00")),
            zone_prices: vec![ZonePrice {
                zone: "World".into(),
                price_per_mb: p("0.050"),
            }],
        }],
    };
    let v2 = RateCardTerms {
        effective_from: d(2026, 3, 15),
        rounding_increment_bytes: 1_000,
        access_fee: p("2.50"),
        zones: vec![
            zone("Home", &["262-01"], &[], "0.012", false),
            zone("EU", &[], &["DE", "FR"], "0.020", false),
            zone("World", &[], &[], "0.080", true),
        ],
        overrides: vec![TariffOverride {
            tariff_plan: "fleet-xl".into(),
            access_fee: Some(p("1.25")),
            zone_prices: vec![],
        }],
    };
    let version = |terms| RateCardVersion {
        id: Uuid::new_v4(),
        terms,
        created_at: Utc::now(),
        created_by: "test".into(),
    };
    RateCard {
        id: Uuid::new_v4(),
        tenant_id: tenant,
        kind: RateCardKind::Retail,
        name: "Standard".into(),
        currency: Currency::parse("currency", "EUR").unwrap(),
        billing_period: BillingPeriod::Quarterly,
        retired_from: None,
        created_at: Utc::now(),
        versions: vec![version(v1), version(v2)],
    }
}

struct Fixture {
    tenant: TenantId,
    c1: CustomerId,
    a: Iccid,
    b: Iccid,
    c: Iccid,
}

fn iccid(n: u64) -> Iccid {
    Iccid::with_check_digit(&format!("8949{n:014}")).unwrap()
}

fn cdr(
    f: &Fixture,
    id: &str,
    sim: &Iccid,
    day: NaiveDate,
    net: &str,
    bytes_in: u64,
    bytes_out: u64,
) -> CdrRecord {
    let start = Utc.from_utc_datetime(&day.and_hms_opt(10, 0, 0).unwrap());
    CdrRecord {
        tenant_id: f.tenant,
        customer_id: (sim != &f.c).then_some(f.c1),
        cdr_id: id.into(),
        iccid: sim.clone(),
        start,
        end: start + chrono::Duration::minutes(5),
        mcc_mnc: MccMnc::parse(net).unwrap(),
        bytes_in,
        bytes_out,
        rating_group: 0,
    }
}

fn job(f: &Fixture, card: &RateCard) -> RatingJob {
    let sim = |iccid: &Iccid, customer: Option<CustomerId>, plan: Option<&str>| BillableSim {
        iccid: iccid.clone(),
        customer_id: customer,
        tariff_plan: plan.map(str::to_owned),
    };
    let active = |month, s: &BillableSim| ActiveSimMonth {
        month,
        sim: s.clone(),
    };
    let (a, b, c) = (
        sim(&f.a, Some(f.c1), None),
        sim(&f.b, Some(f.c1), Some("fleet-xl")),
        sim(&f.c, None, None),
    );
    RatingJob {
        run_id: Uuid::new_v4(),
        tenant_id: f.tenant,
        from: d(2026, 1, 1),
        to: d(2026, 4, 1),
        card: card.clone(),
        sims: vec![a.clone(), b.clone(), c.clone()],
        active: vec![
            active(d(2026, 1, 1), &a),
            active(d(2026, 2, 1), &a),
            active(d(2026, 3, 1), &a),
            active(d(2026, 2, 1), &b),
            active(d(2026, 3, 1), &b),
            active(d(2026, 3, 1), &c),
            // Outside the period: not charged.
            active(d(2026, 4, 1), &c),
        ],
    }
}

async fn sums(
    store: &Arc<dyn UsageStore>,
    f: &Fixture,
    runs: &[Uuid],
    by: RatedDimension,
) -> Vec<(String, Cost)> {
    store
        .rated_usage(&RatedQuery {
            tenant: f.tenant,
            runs: runs.to_vec(),
            customer: None,
            by,
        })
        .await
        .unwrap()
        .into_iter()
        .map(|(k, s)| (k, s.cost))
        .collect()
}

async fn hand_computed(store: Arc<dyn UsageStore>) {
    store.migrate().await.unwrap();
    let seed = u64::from(Uuid::new_v4().as_u128() as u32) * 10;
    let f = Fixture {
        tenant: TenantId(Uuid::new_v4()),
        c1: CustomerId(Uuid::new_v4()),
        a: iccid(seed),
        b: iccid(seed + 1),
        c: iccid(seed + 2),
    };
    let card = fixture_card(f.tenant);
    let id = |n: u32| format!("{seed}-{n}");
    store
        .write_cdrs(&[
            // Before the card's first version: counted, not priced.
            cdr(&f, &id(0), &f.a, d(2026, 1, 1), "262-01", 5_000, 0),
            // 1,000 B → 1,024 B at home, 0.010/MB: 0.00001024.
            cdr(&f, &id(1), &f.a, d(2026, 1, 31), "262-01", 1_000, 0),
            // 1,025 B → 2,048 B in Germany (EU by country), 0.020/MB: 0.00004096.
            cdr(&f, &id(2), &f.a, d(2026, 2, 1), "262-02", 500, 525),
            // 1,000,000 B → 1,000,448 B in the US (World), fleet-xl's 0.050/MB: 0.0500224.
            cdr(&f, &id(3), &f.b, d(2026, 2, 10), "310-410", 1_000_000, 0),
            // An empty record in France costs nothing.
            cdr(&f, &id(4), &f.b, d(2026, 3, 14), "208-01", 0, 0),
            // Version 2: 1,500,001 B → 1,501,000 B, World 0.080/MB (no zone override): 0.12008.
            cdr(&f, &id(5), &f.b, d(2026, 3, 15), "310-410", 1_500_001, 0),
            // Two records on one day round separately: 1,000 B → 1,000 B and 1 B → 1,000 B at
            // 0.012/MB: 0.000012 each.
            cdr(&f, &id(6), &f.c, d(2026, 3, 31), "262-01", 999, 1),
            cdr(&f, &id(7), &f.c, d(2026, 3, 31), "262-01", 1, 0),
            // Outside the quarter.
            cdr(&f, &id(8), &f.c, d(2025, 12, 31), "262-01", 1_000, 0),
            cdr(&f, &id(9), &f.a, d(2026, 4, 1), "262-01", 1_000, 0),
        ])
        .await
        .unwrap();

    let first = job(&f, &card);
    let totals = store.rate(&first).await.unwrap();
    assert_eq!(totals.records, 7);
    assert_eq!(totals.unpriced_records, 1);
    assert_eq!(totals.bytes, 2_503_027);
    assert_eq!(totals.rounded_bytes, 2_506_520);
    assert_eq!(totals.usage_cost, c("0.1701776"));
    // A: 3 months at 2.00; B (fleet-xl): 2 months at 1.00; C: March at 2.00 (the version in
    // force on the 1st); April is outside the quarter.
    assert_eq!(totals.access_fees, c("10.00"));
    assert_eq!(totals.access_fee_sims, 6);

    let runs = [first.run_id];
    assert_eq!(
        sums(&store, &f, &runs, RatedDimension::Sim).await,
        vec![
            (f.a.to_string(), c("0.0000512")),
            (f.b.to_string(), c("0.1701024")),
            (f.c.to_string(), c("0.000024")),
        ]
    );
    assert_eq!(
        sums(&store, &f, &runs, RatedDimension::Customer).await,
        vec![(String::new(), c("0.000024")), (f.c1.to_string(), c("0.1701536"))]
    );
    assert_eq!(
        sums(&store, &f, &runs, RatedDimension::Zone).await,
        vec![
            ("EU".into(), c("0.00004096")),
            ("Home".into(), c("0.00003424")),
            ("World".into(), c("0.1701024")),
        ]
    );
    assert_eq!(
        sums(&store, &f, &runs, RatedDimension::Month).await,
        vec![
            ("2026-01-01".into(), c("0.00001024")),
            ("2026-02-01".into(), c("0.05006336")),
            ("2026-03-01".into(), c("0.120104")),
        ]
    );
    assert_eq!(
        sums(&store, &f, &runs, RatedDimension::Tenant).await,
        vec![(f.tenant.to_string(), c("0.1701776"))]
    );
    // Every stored measure, not only cost: the priced records 1–7 (record 0 is unpriced and
    // not stored) hold 2,502,501 bytes in and 526 out.
    let per_sim: Vec<(String, u64, u64, u64, u64)> = store
        .rated_usage(&RatedQuery {
            tenant: f.tenant,
            runs: runs.to_vec(),
            customer: None,
            by: RatedDimension::Sim,
        })
        .await
        .unwrap()
        .into_iter()
        .map(|(k, s)| (k, s.records, s.bytes_in, s.bytes_out, s.rounded_bytes))
        .collect();
    assert_eq!(
        per_sim,
        vec![
            (f.a.to_string(), 2, 1_500, 525, 3_072),
            (f.b.to_string(), 3, 2_500_001, 0, 2_501_448),
            (f.c.to_string(), 2, 1_000, 1, 2_000),
        ],
        "records, bytes in, bytes out and rounded bytes per SIM as stored"
    );
    let days = store
        .rated_usage(&RatedQuery {
            tenant: f.tenant,
            runs: runs.to_vec(),
            customer: None,
            by: RatedDimension::Day,
        })
        .await
        .unwrap();
    let last = days.iter().find(|(k, _)| k == "2026-03-31").unwrap();
    assert_eq!(
        (last.1.records, last.1.rounded_bytes),
        (2, 2_000),
        "records round one by one"
    );
    let fees = store
        .rated_fees(&RatedQuery {
            tenant: f.tenant,
            runs: runs.to_vec(),
            customer: Some(f.c1),
            by: RatedDimension::Month,
        })
        .await
        .unwrap();
    let fees: Vec<(String, u64, Cost)> = fees.into_iter().map(|(k, s)| (k, s.charges, s.fees)).collect();
    assert_eq!(
        fees,
        vec![
            ("2026-01-01".into(), 1, c("2.00")),
            ("2026-02-01".into(), 2, c("3.00")),
            ("2026-03-01".into(), 2, c("3.00")),
        ],
        "sub-customer C1's fees by month"
    );

    // The same CDRs rated again: the same result.
    let again = job(&f, &card);
    assert_eq!(store.rate(&again).await.unwrap(), totals);
    assert_eq!(
        sums(&store, &f, &[again.run_id], RatedDimension::Sim).await,
        sums(&store, &f, &runs, RatedDimension::Sim).await
    );

    // A CDR arriving late for February is picked up by the next run; the replaced runs' rows
    // are removed.
    store
        .write_cdrs(&[cdr(&f, &id(10), &f.a, d(2026, 2, 20), "262-01", 10, 0)])
        .await
        .unwrap();
    let late = job(&f, &card);
    let after = store.rate(&late).await.unwrap();
    assert_eq!(after.records, 8);
    assert_eq!(after.usage_cost, c("0.17018784"));
    store
        .discard_runs(f.tenant, &[first.run_id, again.run_id])
        .await
        .unwrap();
    assert_eq!(
        sums(&store, &f, &[late.run_id], RatedDimension::Tenant).await,
        vec![(f.tenant.to_string(), c("0.17018784"))]
    );
}

#[tokio::test]
async fn hand_computed_fixture_rates_exactly_on_clickhouse() {
    let config = clickhouse::database().await;
    let store: Arc<dyn UsageStore> = Arc::new(ClickHouseUsage::connect(config.clone()).await.unwrap());
    hand_computed(store).await;
    ClickHouseUsage::drop_database(&config).await.unwrap();
}

/// When ClickHouse refuses the rated rows (here: `rated_usage` is not there), the run fails
/// with an error naming the table and ClickHouse's reason, and nothing of it becomes readable
/// once the table is back.
#[tokio::test]
async fn a_refused_insert_of_rated_rows_fails_the_run_naming_the_table_on_clickhouse() {
    let config = clickhouse::database().await;
    let store: Arc<dyn UsageStore> = Arc::new(ClickHouseUsage::connect(config.clone()).await.unwrap());
    store.migrate().await.unwrap();
    let f = Fixture {
        tenant: TenantId(Uuid::new_v4()),
        c1: CustomerId(Uuid::new_v4()),
        a: iccid(1),
        b: iccid(2),
        c: iccid(3),
    };
    store
        .write_cdrs(&[cdr(&f, "x-1", &f.a, d(2026, 2, 1), "262-01", 1_000, 0)])
        .await
        .unwrap();
    clickhouse::sql(&config, "RENAME TABLE rated_usage TO rated_usage_away").await;

    let run = job(&f, &fixture_card(f.tenant));
    let err = store.rate(&run).await.unwrap_err().to_string();
    assert!(err.contains("insert into rated_usage"), "{err}");
    assert!(
        err.contains("doesn't exist"),
        "ClickHouse's reason is passed on: {err}"
    );
    clickhouse::sql(&config, "RENAME TABLE rated_usage_away TO rated_usage").await;
    assert!(sums(&store, &f, &[run.run_id], RatedDimension::Tenant)
        .await
        .is_empty());
    ClickHouseUsage::drop_database(&config).await.unwrap();
}

#[tokio::test]
async fn hand_computed_fixture_rates_exactly_on_the_embedded_store() {
    let store: Arc<dyn UsageStore> = Arc::new(
        EmbeddedUsage::open(&temp_dir().join("usage.sqlite"))
            .await
            .unwrap(),
    );
    hand_computed(store).await;
}

pub(super) fn actor(
    tenant: TenantId,
    role: ioto_domain::Role,
    customer: Option<CustomerId>,
) -> ioto_domain::Actor {
    ioto_domain::Actor {
        user_id: None,
        subject: format!("{role}@test"),
        tenant_id: tenant,
        role,
        customer_id: customer,
        issued_at: None,
        api_key: None,
        session_id: None,
    }
}

fn charge<'a>(
    tenant: TenantId,
    day: NaiveDate,
    description: &'a str,
    quantity: u64,
    price: &str,
) -> ioto_app::billing::NewCharge<'a> {
    ioto_app::billing::NewCharge {
        tenant,
        day,
        description,
        quantity,
        unit_price: p(price),
        credit: false,
    }
}

/// The billing service over a transactional store and a usage store, as the server wires it.
pub(super) fn billing_service(
    store: &ioto_store::SqlStore,
    usage: Arc<dyn UsageStore>,
    fleet: Arc<dyn ioto_domain::ports::Fleet>,
) -> ioto_app::billing::BillingService {
    let billing = Arc::new(store.billing());
    ioto_app::billing::BillingService::new(
        billing.clone(),
        billing.clone(),
        usage,
        billing.clone(),
        billing,
        fleet,
    )
}

/// A tenant with SIMs and a monthly retail card of 0.5 per MB from `from` with access fee `fee`,
/// on a migrated transactional store and usage store, and the service that rates it.
pub(super) struct RetailFixture {
    pub service: ioto_app::billing::BillingService,
    pub tenant: ioto_domain::directory::Tenant,
    pub sims: Vec<ioto_domain::fleet::Sim>,
    pub admin: ioto_domain::Actor,
    pub card: RateCard,
}

pub(super) async fn retail_fixture(
    loc: &ioto_store::StoreLocation,
    usage: Arc<dyn UsageStore>,
    name: &str,
    sims: usize,
    from: NaiveDate,
    fee: &str,
) -> RetailFixture {
    ioto_store::migrate(loc).await.unwrap();
    let store = ioto_store::connect(loc, 4).await.unwrap();
    let fleet: Arc<dyn ioto_domain::ports::Fleet> = Arc::new(store.fleet());
    let factory = ioto_test_support::factory::Factory::new(Arc::new(store.directory()), fleet.clone());
    let tenant = factory.tenant(name).await;
    let sims = factory.sims(&tenant, None, sims).await;
    usage.migrate().await.unwrap();
    let service = billing_service(&store, usage, fleet);
    let admin = actor(tenant.id, ioto_domain::Role::PlatformAdmin, None);
    let card = service
        .create_rate_card(
            &admin,
            ioto_app::billing::NewRateCard {
                tenant_id: tenant.id,
                kind: RateCardKind::Retail,
                name: "Retail".into(),
                currency: Currency::parse("currency", "EUR").unwrap(),
                billing_period: BillingPeriod::Monthly,
                versions: vec![flat_terms(from, "0.5", fee)],
            },
        )
        .await
        .unwrap();
    RetailFixture {
        service,
        tenant,
        sims,
        admin,
        card,
    }
}

pub(super) fn flat_terms(from: NaiveDate, price: &str, fee: &str) -> RateCardTerms {
    RateCardTerms {
        effective_from: from,
        rounding_increment_bytes: 0,
        access_fee: p(fee),
        zones: vec![zone("World", &[], &[], price, true)],
        overrides: vec![],
    }
}

/// The whole service on a transactional store: cards by role, a run over the current month from
/// the audit trail (SIMs active now owe this month's fee), a second run replacing the first.
async fn service_rates_the_current_period(loc: ioto_store::StoreLocation) {
    use ioto_app::billing::{NewRateCard, Requester};
    use ioto_domain::Role;

    ioto_store::migrate(&loc).await.unwrap();
    let store = ioto_store::connect(&loc, 4).await.unwrap();
    let fleet: Arc<dyn ioto_domain::ports::Fleet> = Arc::new(store.fleet());
    let factory = ioto_test_support::factory::Factory::new(Arc::new(store.directory()), fleet.clone());
    let tenant = factory.tenant("Rated").await;
    let customer = factory.customer(&tenant, "Acme").await;
    let sims = factory.sims(&tenant, Some(customer.id), 3).await;
    let usage: Arc<dyn UsageStore> = Arc::new(
        EmbeddedUsage::open(&temp_dir().join("usage.sqlite"))
            .await
            .unwrap(),
    );
    usage.migrate().await.unwrap();
    let service = billing_service(&store, usage.clone(), fleet.clone());

    let today = Utc::now().date_naive();
    let month = BillingPeriod::Monthly.period_of(today).0;
    let admin = actor(tenant.id, Role::PlatformAdmin, None);
    let new_card = |kind, price: &str| NewRateCard {
        tenant_id: tenant.id,
        kind,
        name: format!("{kind:?}"),
        currency: Currency::parse("currency", "EUR").unwrap(),
        billing_period: BillingPeriod::Monthly,
        versions: vec![flat_terms(month, price, "1.00")],
    };
    let retail = service
        .create_rate_card(&admin, new_card(RateCardKind::Retail, "0.5"))
        .await
        .unwrap();
    service
        .create_rate_card(&admin, new_card(RateCardKind::Supplier, "0.2"))
        .await
        .unwrap();
    let twice = service
        .create_rate_card(&admin, new_card(RateCardKind::Retail, "0.5"))
        .await
        .unwrap_err();
    assert!(matches!(twice, ioto_domain::Error::Conflict(_)), "{twice:?}");

    // Who sees which card.
    let viewer = actor(tenant.id, Role::Viewer, None);
    let kinds = |cards: Vec<RateCard>| cards.into_iter().map(|c| c.kind).collect::<Vec<_>>();
    assert_eq!(
        kinds(service.rate_cards(&viewer, None).await.unwrap()),
        [RateCardKind::Retail]
    );
    assert_eq!(
        kinds(service.rate_cards(&admin, Some(tenant.id)).await.unwrap()).len(),
        2
    );
    let refused = service
        .create_rate_card(&viewer, new_card(RateCardKind::Retail, "0.1"))
        .await
        .unwrap_err();
    assert!(matches!(refused, ioto_domain::Error::Forbidden(_)));
    let cust = actor(tenant.id, Role::CustomerUser, Some(customer.id));
    assert!(matches!(
        service.rate_cards(&cust, None).await.unwrap_err(),
        ioto_domain::Error::Forbidden(_)
    ));
    // A version for a day already past is refused; today is fine.
    let past = service
        .add_version(
            &admin,
            retail.id,
            flat_terms(today.pred_opt().unwrap(), "0.4", "1.00"),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(past, ioto_domain::Error::InvalidInput { ref field, .. } if field == "effectiveFrom"),
        "{past:?}"
    );

    // Two MB today on each of two SIMs.
    let cdrs: Vec<CdrRecord> = sims[..2]
        .iter()
        .enumerate()
        .map(|(i, s)| CdrRecord {
            tenant_id: tenant.id,
            customer_id: Some(customer.id),
            cdr_id: format!("{}-{i}", tenant.id),
            iccid: s.iccid.clone(),
            start: ioto_test_support::earlier_today(10),
            end: Utc::now(),
            mcc_mnc: MccMnc::parse("262-01").unwrap(),
            bytes_in: 1_500_000,
            bytes_out: 500_000,
            rating_group: 0,
        })
        .collect();
    usage.write_cdrs(&cdrs).await.unwrap();

    let first = service
        .rate_period(Requester::User(&admin), tenant.id, today)
        .await
        .unwrap();
    assert_eq!(first.len(), 2, "both cards rated");
    let retail_run = first.iter().find(|r| r.kind == RateCardKind::Retail).unwrap();
    assert_eq!(retail_run.totals.usage_cost, c("2.00"), "4 MB at 0.5");
    assert_eq!(
        retail_run.totals.access_fees,
        c("3.00"),
        "three SIMs active this month"
    );
    let supplier_run = first.iter().find(|r| r.kind == RateCardKind::Supplier).unwrap();
    assert_eq!(supplier_run.totals.usage_cost, c("0.80"));

    let second = service
        .rate_period(Requester::Scheduler, tenant.id, today)
        .await
        .unwrap();
    let runs = service.runs(&admin, Some(tenant.id), 10).await.unwrap();
    let status = |id: Uuid| runs.iter().find(|r| r.id == id).unwrap().status;
    use ioto_domain::billing::rating::RunStatus;
    assert_eq!(status(retail_run.id), RunStatus::Superseded);
    for r in &second {
        assert_eq!(status(r.id), RunStatus::Current);
        assert_eq!(r.requested_by, "scheduler");
    }
    let viewer_runs = service.runs(&viewer, None, 10).await.unwrap();
    assert!(viewer_runs.iter().all(|r| r.kind == RateCardKind::Retail) && viewer_runs.len() == 2);

    // The tenant's invoice data: data by zone and price, access fees, a charge entered by the
    // platform; lines rounded to cents, the total their sum.
    service
        .add_charge(&admin, charge(tenant.id, today, "SIM cards", 3, "2.505"))
        .await
        .unwrap();
    let refused = service
        .add_charge(&viewer, charge(tenant.id, today, "x", 1, "1"))
        .await
        .unwrap_err();
    assert!(matches!(refused, ioto_domain::Error::Forbidden(_)));
    let invoice = service
        .tenant_invoice(&admin, tenant.id, today)
        .await
        .unwrap()
        .unwrap();
    let lines: Vec<(&str, String, String, String)> = invoice
        .lines
        .iter()
        .map(|l| {
            (
                l.item_code.as_str(),
                l.quantity.to_string(),
                l.unit_price.to_string(),
                l.amount.to_string_with(2),
            )
        })
        .collect();
    assert_eq!(
        lines,
        vec![
            ("DATA-WORLD", "4.00".into(), "0.500000".into(), "2.00".into()),
            ("ACCESS-FEE", "3.00".into(), "1.000000".into(), "3.00".into()),
            // 3 × 2.505 = 7.515 → 7.52 (half away from zero, once, on the line).
            ("OTHER", "3.00".into(), "2.505000".into(), "7.52".into()),
        ]
    );
    assert_eq!(invoice.total.to_string_with(2), "12.52");
    assert!(!invoice.is_final);

    // Closing the month makes it final: it is not rated again.
    service.close_period(&admin, retail.id, month).await.unwrap();
    assert!(
        service
            .tenant_invoice(&admin, tenant.id, today)
            .await
            .unwrap()
            .unwrap()
            .is_final
    );
    let late = service
        .add_charge(&admin, charge(tenant.id, today, "late", 1, "1"))
        .await
        .unwrap_err();
    assert!(matches!(late, ioto_domain::Error::Conflict(_)), "{late:?}");
    let third = service
        .rate_period(Requester::Scheduler, tenant.id, today)
        .await
        .unwrap();
    assert_eq!(third.len(), 1, "only the supplier card's period is still open");

    // A CDR arriving after the close is charged in the next period as an adjustment line; the
    // closed invoice is never rewritten, and rating again books it once.
    let late_cdr = |n: u32, bytes: u64| CdrRecord {
        tenant_id: tenant.id,
        customer_id: Some(customer.id),
        cdr_id: format!("{}-late-{n}", tenant.id),
        iccid: sims[2].iccid.clone(),
        start: ioto_test_support::earlier_today(5),
        end: Utc::now(),
        mcc_mnc: MccMnc::parse("262-01").unwrap(),
        bytes_in: bytes,
        bytes_out: 0,
        rating_group: 0,
    };
    usage.write_cdrs(&[late_cdr(1, 1_000_000)]).await.unwrap();
    let next = month + chrono::Months::new(1);
    let invoice_lines_of = |i: &ioto_domain::billing::invoice::TenantInvoice| {
        i.lines
            .iter()
            .map(|l| {
                (
                    l.item_code.clone(),
                    l.quantity.to_string(),
                    l.amount.to_string_with(2),
                    l.adjusts_period_start,
                )
            })
            .collect::<Vec<_>>()
    };
    for _ in 0..2 {
        service
            .rate_period(Requester::User(&admin), tenant.id, next)
            .await
            .unwrap();
        let following = service
            .tenant_invoice(&admin, tenant.id, next)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            invoice_lines_of(&following),
            vec![(
                "ADJ-DATA-WORLD".to_owned(),
                "1.00".into(),
                "0.50".into(),
                Some(month)
            )],
            "1 MB late at 0.5, booked once however often the next period is rated"
        );
        assert_eq!(following.lines[0].kind.as_str(), "ADJUSTMENT");
        assert_eq!(following.total.to_string_with(2), "0.50");
    }
    let closed = service
        .tenant_invoice(&admin, tenant.id, today)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        closed.total.to_string_with(2),
        "12.52",
        "the closed invoice is unchanged"
    );
    assert!(closed.is_final);

    // Once the next period is closed too, its adjustment is final; later CDRs of the first
    // month go to the period after, without counting the first one again.
    service.close_period(&admin, retail.id, next).await.unwrap();
    usage.write_cdrs(&[late_cdr(2, 2_000_000)]).await.unwrap();
    let after_next = next + chrono::Months::new(1);
    service
        .rate_period(Requester::Scheduler, tenant.id, after_next)
        .await
        .unwrap();
    let third_invoice = service
        .tenant_invoice(&admin, tenant.id, after_next)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        invoice_lines_of(&third_invoice),
        vec![(
            "ADJ-DATA-WORLD".to_owned(),
            "2.00".into(),
            "1.00".into(),
            Some(month)
        )]
    );
    let final_next = service
        .tenant_invoice(&admin, tenant.id, next)
        .await
        .unwrap()
        .unwrap();
    assert!(final_next.is_final);
    assert_eq!(final_next.total.to_string_with(2), "0.50");
}

#[tokio::test]
async fn service_rates_the_current_period_on_postgres() {
    let url = ioto_test_support::pg::database().await;
    service_rates_the_current_period(ioto_store::StoreLocation::Postgres { url }).await;
}

#[tokio::test]
async fn service_rates_the_current_period_on_sqlite() {
    service_rates_the_current_period(ioto_store::StoreLocation::Sqlite {
        path: temp_dir().join("billing.sqlite"),
    })
    .await;
}

/// Random CDRs (seeded; the seed is printed) rated with the fixture card: the costs summed by
/// SIM, by sub-customer, by network, by zone, by day and for the tenant are all the same exact
/// amount, equal to the run's total and to the exact amounts of the invoice's data lines.
async fn random_cdrs_reconcile(store: Arc<dyn UsageStore>, count: usize) {
    use ioto_domain::billing::invoice::invoice_lines;
    use rand::{Rng, SeedableRng};

    store.migrate().await.unwrap();
    let seed: u64 = rand::random();
    println!("random CDRs: seed {seed}");
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let tenant = TenantId(Uuid::new_v4());
    let customers: Vec<Option<CustomerId>> = vec![
        None,
        Some(CustomerId(Uuid::new_v4())),
        Some(CustomerId(Uuid::new_v4())),
        Some(CustomerId(Uuid::new_v4())),
    ];
    let base = u64::from(Uuid::new_v4().as_u128() as u32) * 1_000;
    let sims: Vec<(Iccid, Option<CustomerId>, Option<String>)> = (0..500)
        .map(|i| {
            (
                iccid(base + i),
                customers[(i % 4) as usize],
                (i % 7 == 0).then(|| "fleet-xl".to_owned()),
            )
        })
        .collect();
    let networks = ["262-01", "262-02", "208-01", "310-260", "234-15", "440-10"];
    let card = fixture_card(tenant);
    let mut written = 0;
    while written < count {
        let n = (count - written).min(100_000);
        let batch: Vec<CdrRecord> = (0..n)
            .map(|k| {
                let (sim, customer, _) = &sims[rng.gen_range(0..sims.len())];
                let day = d(2026, 1, 2) + chrono::Duration::days(rng.gen_range(0..89));
                let start = Utc.from_utc_datetime(&day.and_hms_opt(rng.gen_range(0..24), 0, 0).unwrap());
                CdrRecord {
                    tenant_id: tenant,
                    customer_id: *customer,
                    cdr_id: format!("{base}-{}", written + k),
                    iccid: sim.clone(),
                    start,
                    end: start + chrono::Duration::minutes(5),
                    mcc_mnc: MccMnc::parse(networks[rng.gen_range(0..networks.len())]).unwrap(),
                    bytes_in: rng.gen_range(0..50_000_000),
                    bytes_out: rng.gen_range(0..5_000_000),
                    rating_group: 0,
                }
            })
            .collect();
        store.write_cdrs(&batch).await.unwrap();
        written += n;
    }
    let run = Uuid::new_v4();
    let job = RatingJob {
        run_id: run,
        tenant_id: tenant,
        from: d(2026, 1, 1),
        to: d(2026, 4, 1),
        card: card.clone(),
        sims: sims
            .iter()
            .map(|(i, c, p)| BillableSim {
                iccid: i.clone(),
                customer_id: *c,
                tariff_plan: p.clone(),
            })
            .collect(),
        active: vec![],
    };
    let totals = store.rate(&job).await.unwrap();
    assert_eq!(totals.records, count as u64, "seed {seed}");
    let total_of = |rows: Vec<(String, ioto_domain::ports::billing::RatedSums)>| -> (Cost, u64, usize) {
        let keys = rows.len();
        let (cost, records) = rows
            .into_iter()
            .fold((Cost::ZERO, 0), |(c, r), (_, s)| (c + s.cost, r + s.records));
        (cost, records, keys)
    };
    let mut levels = Vec::new();
    for by in [
        RatedDimension::Tenant,
        RatedDimension::Sim,
        RatedDimension::Customer,
        RatedDimension::Network,
        RatedDimension::Zone,
        RatedDimension::Day,
        RatedDimension::Month,
        RatedDimension::TariffPlan,
    ] {
        let rows = store
            .rated_usage(&RatedQuery {
                tenant,
                runs: vec![run],
                customer: None,
                by,
            })
            .await
            .unwrap();
        let (cost, records, keys) = total_of(rows);
        assert_eq!(records, count as u64, "{by:?}, seed {seed}");
        assert!(keys > 0);
        levels.push((by, cost));
    }
    for (by, cost) in &levels {
        assert_eq!(
            *cost, totals.usage_cost,
            "{by:?} sums to the run's total, seed {seed}"
        );
    }
    assert_eq!(
        levels
            .iter()
            .find(|(b, _)| *b == RatedDimension::Sim)
            .map(|(_, c)| *c),
        Some(totals.usage_cost)
    );
    // Each sub-customer's own rows sum to its line of the by-customer answer.
    for c in customers.iter().flatten() {
        let (own, _, _) = total_of(
            store
                .rated_usage(&RatedQuery {
                    tenant,
                    runs: vec![run],
                    customer: Some(*c),
                    by: RatedDimension::Sim,
                })
                .await
                .unwrap(),
        );
        let listed = store
            .rated_usage(&RatedQuery {
                tenant,
                runs: vec![run],
                customer: None,
                by: RatedDimension::Customer,
            })
            .await
            .unwrap()
            .into_iter()
            .find(|(k, _)| *k == c.to_string())
            .map(|(_, s)| s.cost);
        assert_eq!(Some(own), listed, "seed {seed}");
    }
    let priced = store.priced_usage(tenant, run).await.unwrap();
    let lines = invoice_lines(&card, &priced, &[], &[], &[]).unwrap();
    let exact: Cost = lines.iter().map(|l| l.exact_amount).sum();
    assert_eq!(exact, totals.usage_cost, "invoice data lines, seed {seed}");
    let rounded: Cost = lines.iter().map(|l| l.amount).sum();
    let half_cent = Cost::parse("c", "0.005").unwrap().units();
    assert!(
        (rounded.units() - exact.units()).abs() <= half_cent * lines.len() as i128,
        "each line rounds once, half-up to the cent"
    );
}

#[tokio::test]
async fn a_million_random_cdrs_reconcile_at_every_level_on_clickhouse() {
    let config = clickhouse::database().await;
    let store: Arc<dyn UsageStore> = Arc::new(ClickHouseUsage::connect(config.clone()).await.unwrap());
    random_cdrs_reconcile(store, 1_000_000).await;
    ClickHouseUsage::drop_database(&config).await.unwrap();
}

#[tokio::test]
async fn random_cdrs_reconcile_at_every_level_on_the_embedded_store() {
    let store: Arc<dyn UsageStore> = Arc::new(
        EmbeddedUsage::open(&temp_dir().join("usage.sqlite"))
            .await
            .unwrap(),
    );
    random_cdrs_reconcile(store, 100_000).await;
}
