//! The billing ports `RateCardStore`, `RatingRunStore`, `InvoiceChargeStore` and `BillingFleet`,
//! on the transactional store's billing adapter (`SqlBilling`), on Postgres and SQLite.
//! (`RatingEngine`, the usage store's side, is held to hand-computed amounts on ClickHouse and on
//! the embedded store by `tests/it/rating.rs`.)

use super::open;
use std::sync::Arc;

use chrono::{DateTime, Duration, NaiveDate, TimeZone, Utc};
use ioto_domain::billing::adjustment::{DataDelta, FeeDelta, PeriodAdjustment};
use ioto_domain::billing::invoice::InvoiceCharge;
use ioto_domain::billing::money::{Cost, Currency, Price};
use ioto_domain::billing::rate_card::{
    BillingPeriod, RateCard, RateCardKind, RateCardTerms, RateCardVersion, TariffOverride, Zone, ZonePrice,
};
use ioto_domain::billing::rating::{BillableSim, RatingRun, RatingTotals, RunStatus};
use ioto_domain::fleet::{AuditAction, AuditStamp, EntityKind, NewAuditEntry, NewSim, SimState};
use ioto_domain::identifiers::{Iccid, Imsi, MccMnc};
use ioto_domain::ports::billing::{
    BillingFleet, ClosedPeriod, InvoiceChargeStore, RateCardStore, RatingRunStore, RunQuery,
};
use ioto_domain::ports::{Changeset, Fleet, Versioned};
use ioto_domain::{CustomerId, Error, Scope, SimId, TenantId};
use ioto_store::{SqlBilling, StoreLocation};
use ioto_test_support::{pg, temp_dir, Factory};
use serde_json::json;
use uuid::Uuid;

fn day(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).unwrap()
}

/// Whole seconds: both engines keep them exactly.
fn at(y: i32, m: u32, d: u32, h: u32, mi: u32, s: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(y, m, d, h, mi, s).unwrap()
}

fn price(s: &str) -> Price {
    Price::parse("price", s).unwrap()
}

fn cost(s: &str) -> Cost {
    Cost::parse("cost", s).unwrap()
}

/// Three zones, rounding, a tariff override; prices with all six decimals, and the largest price.
fn terms(from: NaiveDate, home: &str) -> RateCardTerms {
    let zone = |name: &str, networks: &[&str], countries: &[&str], per_mb: &str| Zone {
        name: name.into(),
        networks: networks.iter().map(|n| MccMnc::parse(n).unwrap()).collect(),
        countries: countries.iter().map(|c| (*c).to_owned()).collect(),
        price_per_mb: price(per_mb),
        is_default: name == "World",
    };
    let zone_prices = vec![ZonePrice {
        zone: "World".into(),
        price_per_mb: price("0.000007"),
    }];
    RateCardTerms {
        effective_from: from,
        rounding_increment_bytes: 1_024,
        access_fee: price("2.000001"),
        zones: vec![
            zone("Home", &["262-01", "262-02"], &[], home),
            zone("EU", &[], &["FR", "DE"], "0.000001"),
            zone("World", &[], &[], "999999999999.999999"),
        ],
        overrides: vec![TariffOverride {
            tariff_plan: "fleet-xl".into(),
            access_fee: Some(price("0.123456")),
            zone_prices,
        }],
    }
}

fn version(terms: RateCardTerms) -> RateCardVersion {
    let (created_at, created_by) = (at(2026, 1, 5, 8, 30, 0), "finance@example.com".into());
    RateCardVersion {
        id: Uuid::new_v4(),
        terms,
        created_at,
        created_by,
    }
}

fn card(tenant: TenantId, kind: RateCardKind, versions: Vec<RateCardVersion>) -> RateCard {
    RateCard {
        id: Uuid::new_v4(),
        tenant_id: tenant,
        kind,
        name: format!("{} – Zürich \"IoT\"", kind.as_str()),
        currency: Currency::parse("currency", "EUR").unwrap(),
        billing_period: BillingPeriod::Monthly,
        retired_from: None,
        created_at: at(2026, 1, 5, 8, 30, 0),
        versions,
    }
}

async fn card_in(billing: &SqlBilling, scope: Scope, id: Uuid) -> Option<RateCard> {
    billing.rate_card(scope, id).await.unwrap()
}

/// Cards read back whole, versions by date; a tenant sees its retail card only. Returns A's retail
/// and supplier cards and B's retail card.
async fn rate_cards(billing: &SqlBilling, a: TenantId, b: TenantId) -> (RateCard, RateCard, RateCard) {
    let (jan, feb, mar) = (day(2026, 1, 1), day(2026, 2, 1), day(2026, 3, 1));
    // Given newest first.
    let newest_first = vec![version(terms(mar, "0.012345")), version(terms(jan, "0.010000"))];
    let mut retail = card(a, RateCardKind::Retail, newest_first);
    billing.create_rate_card(&retail).await.unwrap();
    retail.versions.reverse();
    let read = card_in(billing, Scope::Platform, retail.id).await.unwrap();
    assert_eq!(read, retail, "a card reads back as stored, versions oldest first");
    let home = read.versions[1].terms.zones[0].price_per_mb.to_string();
    let world = read.versions[0].terms.zones[2].price_per_mb.micros();
    assert_eq!(
        (home.as_str(), world),
        ("0.012345", 999_999_999_999_999_999),
        "prices to the last digit"
    );
    let supplier = card(a, RateCardKind::Supplier, vec![version(terms(jan, "0.004"))]);
    billing.create_rate_card(&supplier).await.unwrap();
    let other = card(b, RateCardKind::Retail, vec![version(terms(feb, "0.02"))]);
    billing.create_rate_card(&other).await.unwrap();
    let second = card(a, RateCardKind::Retail, vec![]);
    let twice = billing.create_rate_card(&second).await.unwrap_err();
    assert!(
        matches!(twice, Error::Conflict(ref m) if m.contains("already has a RETAIL rate card")),
        "a second retail card for the tenant: {twice:?}"
    );

    // A version added later takes its place by date; one version per day.
    let added = version(terms(feb, "0.011"));
    billing.add_rate_card_version(&retail, &added).await.unwrap();
    retail.versions.insert(1, added);
    let read = card_in(billing, Scope::tenant(a), retail.id).await;
    assert_eq!(
        read,
        Some(retail.clone()),
        "the added version sits between the others"
    );
    let same_day = version(terms(feb, "0.5"));
    let err = billing
        .add_rate_card_version(&retail, &same_day)
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::Conflict(ref m) if m.contains("on that day")),
        "{err:?}"
    );

    let ids = |cards: Vec<RateCard>| cards.into_iter().map(|c| c.id).collect::<Vec<_>>();
    let mut every = ids(billing.rate_cards(Scope::Platform, None).await.unwrap());
    every.sort();
    let lists = (
        ids(billing.rate_cards(Scope::tenant(a), None).await.unwrap()),
        ids(billing.rate_cards(Scope::Platform, Some(a)).await.unwrap()),
        ids(billing.rate_cards(Scope::tenant(b), Some(a)).await.unwrap()),
        every,
    );
    let mut all = vec![retail.id, supplier.id, other.id];
    all.sort();
    assert_eq!(
        lists,
        (vec![retail.id], vec![retail.id, supplier.id], vec![], all),
        "a tenant sees its retail card only; the platform sees every card, a tenant's retail one first"
    );
    let hidden = (
        card_in(billing, Scope::tenant(a), supplier.id).await,
        card_in(billing, Scope::tenant(b), retail.id).await,
        card_in(billing, Scope::Platform, Uuid::new_v4()).await,
    );
    assert_eq!(
        hidden,
        (None, None, None),
        "its supplier card, another's card, no card: none for a tenant"
    );

    billing.retire_rate_card(&other, day(2026, 6, 1)).await.unwrap();
    let retired = card_in(billing, Scope::tenant(b), other.id).await.unwrap();
    assert_eq!(
        retired.retired_from,
        Some(day(2026, 6, 1)),
        "the retirement day is kept"
    );
    let prices = (
        retired.version_on(day(2026, 5, 31)).is_some(),
        retired.version_on(day(2026, 6, 1)).is_some(),
    );
    assert_eq!(
        prices,
        (true, false),
        "a retired card prices the day before, not the day it retires"
    );
    (retail, supplier, other)
}

fn run(card: &RateCard, period: NaiveDate, started: DateTime<Utc>) -> RatingRun {
    RatingRun {
        id: Uuid::new_v4(),
        tenant_id: card.tenant_id,
        card_id: card.id,
        kind: card.kind,
        period_start: period,
        period_end: BillingPeriod::Monthly.period_of(period).1,
        status: RunStatus::Running,
        started_at: started,
        finished_at: None,
        totals: RatingTotals::default(),
        error: None,
        requested_by: "scheduler".into(),
    }
}

fn totals(usage: &str) -> RatingTotals {
    RatingTotals {
        records: 7,
        bytes: 2_503_027,
        rounded_bytes: 2_506_520,
        usage_cost: cost(usage),
        access_fees: cost("123456789012.999999999999"),
        access_fee_sims: 6,
        unpriced_records: 1,
    }
}

/// Completes a run two minutes after it started; the id of the run it replaced.
async fn complete(billing: &SqlBilling, run: &RatingRun, usage: &str) -> Option<Uuid> {
    let done = run.started_at + Duration::minutes(2);
    billing.complete_run(run.id, &totals(usage), done).await.unwrap()
}

/// The ids of the runs `query` lists in `scope`, in order.
async fn listed(billing: &SqlBilling, scope: Scope, query: &RunQuery) -> Vec<Uuid> {
    let runs = billing.runs(scope, query).await.unwrap();
    runs.into_iter().map(|r| r.id).collect()
}

/// Runs started, completed (replacing the current one) and failed, listed by the query; closed
/// periods; adjustments, booked into open periods only.
async fn rating_runs(billing: &SqlBilling, retail: &RateCard, supplier: &RateCard, other: &RateCard) {
    let (feb, mar, apr) = (day(2026, 2, 1), day(2026, 3, 1), day(2026, 4, 1));
    let t = |h: u32, mi: u32| at(2026, 4, 1, h, mi, 0);
    let a = retail.tenant_id;
    let query = |tenant, from, to, current_only, limit| RunQuery {
        tenant,
        from,
        to,
        current_only,
        limit,
    };
    let q = query(Some(a), None, None, false, 10);
    let r1 = run(retail, mar, t(1, 0));
    billing.start_run(&r1).await.unwrap();
    let started = billing.runs(Scope::Platform, &q).await.unwrap();
    assert_eq!(
        started,
        vec![r1.clone()],
        "a started run is RUNNING, without totals"
    );
    let (r2, r3, r0) = (
        run(retail, mar, t(1, 10)),
        run(retail, mar, t(1, 20)),
        run(retail, feb, t(0, 0)),
    );
    let (s1, o1) = (run(supplier, mar, t(1, 30)), run(other, mar, t(1, 40)));
    for r in [&r2, &r3, &r0, &s1, &o1] {
        billing.start_run(r).await.unwrap();
    }
    let replaced = (
        complete(billing, &r1, "0.1701776").await,
        complete(billing, &r2, "0.170187840001").await,
        complete(billing, &r0, "1.5").await,
        complete(billing, &s1, "1.5").await,
        complete(billing, &o1, "1.5").await,
    );
    assert_eq!(
        replaced,
        (None, Some(r1.id), None, None, None),
        "a rerun replaces the current run of its card and period, and no other"
    );
    billing
        .fail_run(r3.id, "the usage store is down", t(1, 21))
        .await
        .unwrap();
    let missing = billing.complete_run(Uuid::new_v4(), &totals("1"), t(2, 0)).await;
    assert!(matches!(missing, Err(Error::NotFound { .. })), "{missing:?}");

    let all = billing.runs(Scope::Platform, &q).await.unwrap();
    let statuses: Vec<_> = all.iter().map(|r| (r.id, r.status)).collect();
    use RunStatus::{Current, Failed, Superseded};
    assert_eq!(
        statuses,
        vec![
            (s1.id, Current),
            (r3.id, Failed),
            (r2.id, Current),
            (r1.id, Superseded),
            (r0.id, Current)
        ],
        "newest period first, then newest start first"
    );
    let completed = RatingRun {
        status: Current,
        finished_at: Some(t(1, 12)),
        totals: totals("0.170187840001"),
        ..r2.clone()
    };
    let error = Some("the usage store is down".to_owned());
    let failed = RatingRun {
        status: Failed,
        finished_at: Some(t(1, 21)),
        error,
        ..r3.clone()
    };
    assert_eq!(
        (&all[2], &all[1]),
        (&completed, &failed),
        "exact totals; a failure's reason"
    );
    let current = query(Some(a), None, None, true, 10);
    let march = query(Some(a), Some(mar), Some(apr), false, 10);
    let before_march = query(Some(a), None, Some(mar), false, 10);
    let (first_two, anyone) = (
        query(Some(a), None, None, false, 2),
        query(None, None, None, true, 10),
    );
    let since_march = query(None, Some(mar), None, true, 10);
    let lists = (
        listed(billing, Scope::Platform, &current).await,
        listed(billing, Scope::Platform, &march).await,
        listed(billing, Scope::Platform, &before_march).await,
        listed(billing, Scope::Platform, &first_two).await,
    );
    let want = (
        vec![s1.id, r2.id, r0.id],
        vec![s1.id, r3.id, r2.id, r1.id],
        vec![r0.id],
        vec![s1.id, r3.id],
    );
    assert_eq!(
        lists, want,
        "the current run of each card and period; periods starting in [from, to); the first `limit`"
    );
    let scoped = (
        listed(billing, Scope::tenant(a), &anyone).await,
        listed(billing, Scope::Platform, &since_march).await,
        listed(billing, Scope::tenant(other.tenant_id), &q).await,
    );
    assert_eq!(
        scoped,
        (vec![r2.id, r0.id], vec![o1.id, s1.id, r2.id], vec![]),
        "a tenant sees its retail runs only; the platform sees every tenant's"
    );

    // Closed periods: once each; a tenant sees its retail ones.
    let closed = |card: &RateCard, period: NaiveDate, run: Uuid| ClosedPeriod {
        card_id: card.id,
        tenant_id: card.tenant_id,
        period_start: period,
        run_id: run,
        closed_at: at(2026, 4, 5, 9, 0, 0),
        closed_by: "finance@example.com".into(),
    };
    let (feb_closed, supplier_closed) = (closed(retail, feb, r0.id), closed(supplier, mar, s1.id));
    billing.close_period(&feb_closed).await.unwrap();
    let again = billing.close_period(&feb_closed).await.unwrap_err();
    assert!(
        matches!(again, Error::Conflict(ref m) if m.contains("closed already")),
        "{again:?}"
    );
    billing.close_period(&supplier_closed).await.unwrap();
    let periods = (
        billing.closed_periods(Scope::Platform, a).await.unwrap(),
        billing.closed_periods(Scope::tenant(a), a).await.unwrap(),
        billing
            .closed_periods(Scope::tenant(other.tenant_id), a)
            .await
            .unwrap(),
    );
    let want = (
        vec![feb_closed.clone(), supplier_closed],
        vec![feb_closed],
        vec![],
    );
    assert_eq!(
        periods, want,
        "oldest period first; a tenant sees its retail ones only"
    );

    // Adjustments: one per card, period and adjusted period (the last stored); none into a
    // closed period.
    let adjustment = |card: &RateCard, booked: NaiveDate, of: NaiveDate, basis: u64, delta: &str| {
        let data = DataDelta {
            zone: "Home".into(),
            unit_price: price("0.012345"),
            rounded_bytes: -1_024,
            cost: cost(delta),
        };
        PeriodAdjustment {
            card_id: card.id,
            tenant_id: card.tenant_id,
            kind: card.kind,
            period_start: booked,
            adjusted_period_start: of,
            adjusted_period_end: BillingPeriod::Monthly.period_of(of).1,
            basis_records: basis,
            data: vec![data],
            fees: vec![FeeDelta {
                fee: price("2.000001"),
                charges: -1,
                total: cost("-2.000001"),
            }],
            computed_at: at(2026, 4, 1, 3, 0, 0),
        }
    };
    let replaced = adjustment(retail, mar, feb, 9, "-0.000012641280");
    let supplier_adj = adjustment(supplier, apr, mar, 3, "0.000000000001");
    for adj in [&adjustment(retail, mar, feb, 8, "1"), &replaced, &supplier_adj] {
        billing.put_adjustment(adj).await.unwrap();
    }
    let booked = (
        billing.adjustments(Scope::Platform, a).await.unwrap(),
        billing.adjustments(Scope::tenant(a), a).await.unwrap(),
    );
    assert_eq!(
        booked,
        (vec![replaced.clone(), supplier_adj], vec![replaced]),
        "the adjustment stored last replaces the one before; oldest booking first; a tenant's: retail"
    );
    let into_closed = adjustment(retail, feb, day(2026, 1, 1), 1, "0.000000000001");
    let err = billing.put_adjustment(&into_closed).await.unwrap_err();
    assert!(
        matches!(err, Error::Conflict(ref m) if m.contains("is closed")),
        "{err:?}"
    );
}

/// Charges per tenant and period, oldest first, amounts exact.
async fn invoice_charges(billing: &SqlBilling, a: TenantId, b: TenantId) {
    let mar = day(2026, 3, 1);
    let charge =
        |tenant: TenantId, period: NaiveDate, text: &str, n: u64, unit: &str, credit: bool, d: u32| {
            InvoiceCharge {
                id: Uuid::new_v4(),
                tenant_id: tenant,
                period_start: period,
                description: text.into(),
                quantity: n,
                unit_price: price(unit),
                credit,
                created_at: at(2026, 3, d, 10, 0, 0),
                created_by: "finance@example.com".into(),
            }
        };
    let set_up = charge(a, mar, "Set-up fee", 3, "49.99", false, 1);
    let cards = charge(a, mar, "SIM cards (batch of 500)", 500, "0.123456", false, 3);
    let credit = charge(
        a,
        mar,
        "Credit – outage on 12 März",
        1,
        "999999999999.999999",
        true,
        5,
    );
    let theirs = charge(b, mar, "Set-up fee", 1, "10", false, 2);
    // Entered out of order, with another tenant's and another period's in between.
    let april = charge(a, day(2026, 4, 1), "Set-up fee", 1, "10", false, 4);
    for c in [&cards, &credit, &theirs, &april, &set_up] {
        billing.add_charge(c).await.unwrap();
    }
    let got = billing.charges(a, mar).await.unwrap();
    let amounts: Vec<Cost> = got.iter().map(InvoiceCharge::amount).collect();
    assert_eq!(
        got,
        vec![set_up, cards, credit],
        "the period's charges, oldest first, as entered"
    );
    assert_eq!(
        amounts,
        vec![cost("149.97"), cost("61.728"), cost("-999999999999.999999")],
        "amounts to the last digit"
    );
    let others = (
        billing.charges(b, mar).await.unwrap(),
        billing.charges(a, day(2026, 2, 1)).await.unwrap(),
    );
    assert_eq!(
        others,
        (vec![theirs], vec![]),
        "another tenant's; another period's"
    );
    let huge = charge(a, mar, "Too many", u64::MAX, "1", false, 6);
    let err = billing.add_charge(&huge).await.unwrap_err();
    assert!(
        matches!(err, Error::InvalidInput { ref field, .. } if field == "quantity"),
        "{err:?}"
    );
}

fn stamp(when: DateTime<Utc>) -> AuditStamp {
    AuditStamp {
        actor: "contract".into(),
        actor_user_id: None,
        at: when,
        note: None,
    }
}

/// Creates SIMs at `when`, each with its audit entry, as an import does.
async fn insert(fleet: &dyn Fleet, sims: &[&NewSim], when: DateTime<Utc>) -> Vec<SimId> {
    let action = AuditAction::Created;
    fleet
        .insert_sims(Scope::Platform, sims, action, &stamp(when), None)
        .await
        .unwrap()
}

/// An audit entry of the SIM at `when`; with `state`, the SIM moves there too (as the fleet service
/// moves it), without, it records a label change.
async fn record(fleet: &dyn Fleet, id: SimId, when: DateTime<Utc>, state: Option<SimState>) {
    let before = fleet.sims_by_id(Scope::Platform, &[id]).await.unwrap().remove(0);
    let (action, old_value, new_value) = match state {
        Some(s) => (
            AuditAction::StateChanged,
            json!({ "state": before.state.as_str() }),
            json!({ "state": s.as_str() }),
        ),
        None => (
            AuditAction::LabelsChanged,
            json!({ "labels": {} }),
            json!({ "labels": { "a": "b" } }),
        ),
    };
    let entry = NewAuditEntry {
        tenant_id: before.tenant_id,
        customer_id: before.customer_id,
        entity_kind: EntityKind::Sim,
        entity_id: before.id.0,
        entity_ref: before.iccid.to_string(),
        action,
        stamp: stamp(when),
        old_value,
        new_value,
    };
    let mut after = before.clone();
    after.state = state.unwrap_or(before.state);
    let sims = vec![Versioned {
        expected_version: Some(before.version),
        row: after,
    }];
    let audit = vec![entry];
    let changes = Changeset {
        sims,
        audit,
        ..Changeset::default()
    };
    fleet.apply(Scope::Platform, changes).await.unwrap();
}

/// Billable SIMs and the SIMs active in a month, from SIMs created and changed through the fleet
/// adapter (the audit trail decides).
async fn billing_fleet(billing: &SqlBilling, fleet: &dyn Fleet, f: &Factory) {
    let (a, b) = (f.tenant("Billed").await, f.tenant("Elsewhere").await);
    let acme = f.customer(&a, "Acme").await;
    let base = Uuid::new_v4().as_u128() % 1_000_000_000_000;
    let sim =
        |tenant: TenantId, n: u128, customer: Option<CustomerId>, state: SimState, plan: Option<&str>| {
            let iccid = Iccid::with_check_digit(&format!("8977{:014}", base * 100 + n)).unwrap();
            let mut s = NewSim::basic(
                tenant,
                iccid,
                Imsi::parse(&format!("{:015}", base * 100 + n)).unwrap(),
            );
            s.customer_id = customer;
            s.state = state;
            s.tariff_plan = plan.map(str::to_owned);
            s
        };
    let s1 = sim(a.id, 1, Some(acme.id), SimState::Active, Some("fleet-xl"));
    let s2 = sim(a.id, 2, None, SimState::Inventory, None);
    let s3 = sim(a.id, 3, None, SimState::Active, Some("iot-s"));
    let b1 = sim(b.id, 4, None, SimState::Active, None);
    let march = insert(fleet, &[&s1, &s2], at(2025, 3, 10, 12, 0, 0)).await;
    insert(fleet, &[&b1], at(2025, 3, 10, 12, 0, 0)).await;
    let april = insert(fleet, &[&s3], at(2025, 4, 20, 8, 0, 0)).await;
    let (active, suspended, ended) = (SimState::Active, SimState::Suspended, SimState::Terminated);
    record(fleet, march[1], at(2025, 4, 1, 0, 0, 0), Some(active)).await;
    record(fleet, march[0], at(2025, 5, 15, 10, 0, 0), Some(suspended)).await;
    record(fleet, april[0], at(2025, 5, 31, 23, 59, 59), Some(ended)).await;
    record(fleet, march[0], at(2025, 5, 20, 0, 0, 0), None).await;

    let billable = |s: &NewSim| BillableSim {
        iccid: s.iccid.clone(),
        customer_id: s.customer_id,
        tariff_plan: s.tariff_plan.clone(),
    };
    let sorted = |mut v: Vec<BillableSim>| {
        v.sort_by(|x, y| x.iccid.cmp(&y.iccid));
        v
    };
    let sims = (
        sorted(billing.billable_sims(a.id).await.unwrap()),
        billing.billable_sims(b.id).await.unwrap(),
        billing.billable_sims(TenantId::new()).await.unwrap(),
    );
    assert_eq!(
        sims,
        (
            vec![billable(&s1), billable(&s2), billable(&s3)],
            vec![billable(&b1)],
            vec![]
        ),
        "every SIM of the tenant, whatever its state, with its sub-customer and tariff plan"
    );
    // March: s1 was created active in it (s2 became active at April's first instant). April: s1
    // active as it began, s2 made active at its first instant, s3 created active. May: all three
    // active as it began, though s1 was suspended and s3 terminated in it. June, July: s2 only (a
    // label change of s1 after its suspension says nothing about its state).
    let months: [(NaiveDate, Vec<&NewSim>); 6] = [
        (day(2025, 2, 1), vec![]),
        (day(2025, 3, 1), vec![&s1]),
        (day(2025, 4, 1), vec![&s1, &s2, &s3]),
        (day(2025, 5, 1), vec![&s1, &s2, &s3]),
        (day(2025, 6, 1), vec![&s2]),
        (day(2025, 7, 1), vec![&s2]),
    ];
    for (month, want) in months {
        let got = billing.active_sims(a.id, month).await.unwrap();
        assert!(got.iter().all(|m| m.month == month), "{month}: {got:?}");
        let got = sorted(got.into_iter().map(|m| m.sim).collect());
        let want: Vec<BillableSim> = want.into_iter().map(billable).collect();
        assert_eq!(got, want, "the SIMs owing an access fee for {month}");
    }
    let theirs = billing.active_sims(b.id, day(2025, 3, 1)).await.unwrap();
    let theirs: Vec<BillableSim> = theirs.into_iter().map(|m| m.sim).collect();
    assert_eq!(
        theirs,
        vec![billable(&b1)],
        "another tenant's active SIMs are its own"
    );
}

async fn contract(store: ioto_store::SqlStore) {
    let fleet: Arc<dyn Fleet> = Arc::new(store.fleet());
    let f = Factory::new(Arc::new(store.directory()), fleet.clone());
    let billing = store.billing();
    let (a, b) = (f.tenant("Billing A").await, f.tenant("Billing B").await);
    let (retail, supplier, other) = rate_cards(&billing, a.id, b.id).await;
    rating_runs(&billing, &retail, &supplier, &other).await;
    invoice_charges(&billing, a.id, b.id).await;
    billing_fleet(&billing, fleet.as_ref(), &f).await;
}

#[tokio::test]
async fn billing_contract_on_sqlite() {
    let path = temp_dir().join("billing.sqlite");
    contract(open(StoreLocation::Sqlite { path }).await).await;
}

#[tokio::test]
async fn billing_contract_on_postgres() {
    let url = pg::database().await;
    contract(open(StoreLocation::Postgres { url }).await).await;
}
