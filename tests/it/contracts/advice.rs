//! The `AdviceStore` port contract, on Postgres and SQLite: advice reads back as written, one per
//! subject and kind (a later pass's replaces it, keeping its id), the stale removed; lists by
//! saving (none and nothing last) with every filter; another tenant sees none, a sub-customer
//! its own SIMs' only (never a pool's); pages by cursor cover every advice once; a cursor that
//! is none is refused naming `after`.

use super::open;
use std::collections::HashSet;
use std::sync::Arc;

use chrono::{DateTime, Duration, SubsecRound, Utc};
use ioto_domain::advice::{Advice, AdviceAction, AdviceFilter, AdviceKind, AdviceSubject};
use ioto_domain::billing::money::{Cost, Currency};
use ioto_domain::fleet::query::Cursor;
use ioto_domain::fleet::Sim;
use ioto_domain::forecast::Unwritten;
use ioto_domain::ports::advice::AdviceStore;
use ioto_domain::{CustomerId, Error, Scope, SimId, TenantId};
use ioto_store::{SqlFleet, StoreLocation};
use ioto_test_support::{pg, temp_dir, Factory};
use uuid::Uuid;

/// Now, in whole seconds: a time written is read back equal on both engines.
fn now() -> DateTime<Utc> {
    Utc::now().trunc_subsecs(0)
}

fn cost(s: &str) -> Cost {
    Cost::parse("cost", s).unwrap()
}

fn eur() -> Currency {
    Currency::parse("currency", "EUR").unwrap()
}

/// An advice of `action` about `subject` with `saving` (and the card's currency with one).
fn advice(
    tenant: TenantId,
    subject: AdviceSubject,
    sim: Option<&Sim>,
    customer: Option<CustomerId>,
    action: AdviceAction,
    saving: Option<&str>,
    at: DateTime<Utc>,
) -> Advice {
    let day = at.date_naive();
    let plan = action == AdviceAction::SwitchPlan;
    Advice {
        id: Uuid::new_v4(),
        tenant_id: tenant,
        subject,
        iccid: sim.map(|s| s.iccid.clone()),
        customer_id: customer,
        kind: action.kind(),
        action,
        current_plan: Some("fleet-s".into()),
        recommended_plan: plan.then(|| "fleet-xl".into()),
        current_limit_bytes: (!plan && action != AdviceAction::Set).then_some(100_000_000),
        recommended_limit_bytes: (!plan).then_some(250_000_000),
        current_cost: plan.then(|| cost("31.1")),
        recommended_cost: plan.then(|| cost("12.4")),
        saving: saving.map(cost),
        currency: saving.map(|_| eur()),
        sentence: format!("{} with 12.40 EUR", action.as_str()),
        plain_sentence: action.as_str().to_owned(),
        window_from: day - Duration::days(90),
        window_to: day - Duration::days(1),
        computed_at: at,
    }
}

fn ids(list: &[Advice]) -> Vec<Uuid> {
    list.iter().map(|a| a.id).collect()
}

fn sorted(mut v: Vec<Uuid>) -> Vec<Uuid> {
    v.sort();
    v
}

/// The ids of the tenant's advice `filter` admits, sorted.
async fn found(fleet: &SqlFleet, tenant: TenantId, filter: AdviceFilter) -> Vec<Uuid> {
    let list = fleet
        .advice(Scope::tenant(tenant), tenant, &filter, None, 100)
        .await
        .unwrap();
    sorted(ids(&list))
}

async fn contract(store: ioto_store::SqlStore) {
    let fleet = store.fleet();
    let f = Factory::new(Arc::new(store.directory()), Arc::new(store.fleet()));
    let (a, b) = (f.tenant("Advice A").await, f.tenant("Advice B").await);
    let customer = f.customer(&a, "Fleet A").await;
    let theirs = f.sims(&a, Some(customer.id), 1).await.remove(0);
    let loose = f.sims(&a, None, 1).await.remove(0);
    let foreign = f.sims(&b, None, 1).await.remove(0);
    let (a_scope, b_scope) = (Scope::tenant(a.id), Scope::tenant(b.id));
    let customer_scope = Scope::Tenant {
        tenant_id: a.id,
        customer_id: Some(customer.id),
    };
    let t = now();
    let pool = Uuid::new_v4();

    // Their SIM: a cheaper plan and a limit to raise; the loose SIM: a limit to set; the
    // sub-customer's pool: a limit to lower, without a card (no saving).
    let theirs_subject = AdviceSubject::Sim(theirs.id);
    let switch = advice(
        a.id,
        theirs_subject,
        Some(&theirs),
        Some(customer.id),
        AdviceAction::SwitchPlan,
        Some("18.7"),
        t,
    );
    let raise = advice(
        a.id,
        theirs_subject,
        Some(&theirs),
        Some(customer.id),
        AdviceAction::Raise,
        Some("0"),
        t,
    );
    let set = advice(
        a.id,
        AdviceSubject::Sim(loose.id),
        Some(&loose),
        None,
        AdviceAction::Set,
        Some("5.5"),
        t,
    );
    let lower = advice(
        a.id,
        AdviceSubject::Pool(pool),
        None,
        Some(customer.id),
        AdviceAction::Lower,
        None,
        t,
    );
    let elsewhere = advice(
        b.id,
        AdviceSubject::Sim(foreign.id),
        Some(&foreign),
        None,
        AdviceAction::Set,
        Some("99"),
        t,
    );
    fleet
        .put_advice(&[
            switch.clone(),
            raise.clone(),
            set.clone(),
            lower.clone(),
            elsewhere.clone(),
        ])
        .await
        .unwrap();

    // Read back whole, by saving: 18.7, 5.5, then the raise (nothing saved) and the lower (no
    // saving) by id.
    let everything = AdviceFilter::default();
    let listed = fleet.advice(a_scope, a.id, &everything, None, 100).await.unwrap();
    assert_eq!(listed.len(), 4, "{listed:?}");
    assert_eq!(listed[0], switch, "an advice reads back otherwise");
    assert_eq!(listed[1], set);
    let mut last = vec![raise.id, lower.id];
    last.sort();
    assert_eq!(ids(&listed[2..]), last, "none and nothing saved come last, by id");
    assert_eq!(
        listed
            .iter()
            .find(|x| x.id == lower.id)
            .map(|x| (x.saving, x.currency)),
        Some((None, None))
    );

    // Another tenant sees none of them; a sub-customer its own SIM's, not its pool's.
    assert!(fleet
        .advice(b_scope, a.id, &everything, None, 100)
        .await
        .unwrap()
        .is_empty());
    assert_eq!(
        ids(&fleet.advice(b_scope, b.id, &everything, None, 100).await.unwrap()),
        [elsewhere.id]
    );
    assert_eq!(
        ids(&fleet
            .advice(customer_scope, a.id, &everything, None, 100)
            .await
            .unwrap()),
        [switch.id, raise.id]
    );

    // Filters: kinds, actions, sub-customer, ICCID, subject, least saving.
    let of = |filter: AdviceFilter| found(&fleet, a.id, filter);
    assert_eq!(
        of(AdviceFilter {
            kinds: vec![AdviceKind::Plan],
            ..AdviceFilter::default()
        })
        .await,
        [switch.id]
    );
    assert_eq!(
        of(AdviceFilter {
            actions: vec![AdviceAction::Raise, AdviceAction::Lower],
            ..AdviceFilter::default()
        })
        .await,
        sorted(vec![raise.id, lower.id])
    );
    assert_eq!(
        of(AdviceFilter {
            customer: Some(customer.id),
            ..AdviceFilter::default()
        })
        .await,
        sorted(vec![switch.id, raise.id, lower.id]),
        "a tenant's own users see the sub-customer's pool too"
    );
    assert_eq!(
        of(AdviceFilter {
            iccid: Some(loose.iccid.clone()),
            ..AdviceFilter::default()
        })
        .await,
        [set.id]
    );
    assert_eq!(
        of(AdviceFilter {
            subject: Some(AdviceSubject::Pool(pool)),
            ..AdviceFilter::default()
        })
        .await,
        [lower.id]
    );
    assert_eq!(
        of(AdviceFilter {
            min_saving: Some(cost("5.5")),
            ..AdviceFilter::default()
        })
        .await,
        sorted(vec![switch.id, set.id])
    );
    assert_eq!(
        of(AdviceFilter {
            min_saving: Some(Cost::ZERO),
            ..AdviceFilter::default()
        })
        .await,
        sorted(vec![switch.id, raise.id, set.id]),
        "advice without a saving is left out"
    );

    // The next pass replaces a subject's advice of a kind (keeping its id) and removes what it
    // did not advise again.
    let later = t + Duration::seconds(10);
    let cheaper = Advice {
        id: Uuid::new_v4(),
        saving: Some(cost("20.25")),
        recommended_plan: Some("fleet-m".into()),
        computed_at: later,
        ..switch.clone()
    };
    fleet.put_advice(std::slice::from_ref(&cheaper)).await.unwrap();
    let plan_of_theirs = AdviceFilter {
        subject: Some(theirs_subject),
        kinds: vec![AdviceKind::Plan],
        ..AdviceFilter::default()
    };
    let replaced = fleet
        .advice(a_scope, a.id, &plan_of_theirs, None, 100)
        .await
        .unwrap();
    assert_eq!(
        replaced,
        [Advice {
            id: switch.id,
            ..cheaper.clone()
        }],
        "an upsert does not replace the subject's advice of its kind"
    );
    // A pass that computed one SIM again removes that SIM's advice it did not give again (the
    // raise), and leaves the other SIMs', the pool's and — named or not — another tenant's.
    assert_eq!(
        fleet
            .delete_sims_advice_before(a.id, &[theirs.id, foreign.id], later)
            .await
            .unwrap(),
        1,
        "the raise only"
    );
    assert_eq!(
        sorted(ids(&fleet
            .advice(a_scope, a.id, &everything, None, 100)
            .await
            .unwrap())),
        sorted(vec![switch.id, set.id, lower.id])
    );
    assert_eq!(
        fleet
            .delete_advice_before(a.id, later, Unwritten::Groups)
            .await
            .unwrap(),
        1,
        "the pool's"
    );
    assert_eq!(
        fleet
            .delete_advice_before(a.id, later, Unwritten::All)
            .await
            .unwrap(),
        1,
        "the loose SIM's"
    );
    assert_eq!(
        ids(&fleet.advice(a_scope, a.id, &everything, None, 100).await.unwrap()),
        [switch.id]
    );
    assert_eq!(
        fleet
            .advice(b_scope, b.id, &everything, None, 100)
            .await
            .unwrap()
            .len(),
        1,
        "another tenant's advice stays"
    );

    // Pages by cursor: saving (highest first), then id; every one once.
    let many: Vec<Advice> = (0..12)
        .map(|i| {
            let saving = ["3", "3", "0", "1.5"][i % 4];
            advice(
                a.id,
                AdviceSubject::Sim(SimId(Uuid::new_v4())),
                None,
                None,
                AdviceAction::Set,
                (i % 6 != 5).then_some(saving),
                later,
            )
        })
        .collect();
    fleet.put_advice(&many).await.unwrap();
    let total = many.len() + 1;
    let mut seen: Vec<Advice> = Vec::new();
    let mut after: Option<Cursor> = None;
    loop {
        let page = fleet
            .advice(a_scope, a.id, &everything, after.as_ref(), 5)
            .await
            .unwrap();
        if page.is_empty() {
            break;
        }
        after = page.last().map(Advice::cursor);
        seen.extend(page);
    }
    let distinct: HashSet<Uuid> = seen.iter().map(|x| x.id).collect();
    assert_eq!(
        (seen.len(), distinct.len()),
        (total, total),
        "pages repeat or miss advice"
    );
    assert!(
        seen.windows(2).all(|w| {
            let (x, y) = (w[0].saving_rank(), w[1].saving_rank());
            x > y || (x == y && w[0].id < w[1].id)
        }),
        "pages out of order"
    );
    let garbage = Cursor {
        k: "yesterday".into(),
        id: Uuid::nil(),
    };
    assert!(matches!(
        fleet.advice(a_scope, a.id, &everything, Some(&garbage), 5).await,
        Err(Error::InvalidInput { field, .. }) if field == "after"
    ));
}

#[tokio::test]
async fn advice_contract_on_sqlite() {
    contract(
        open(StoreLocation::Sqlite {
            path: temp_dir().join("advice.sqlite"),
        })
        .await,
    )
    .await;
}

#[tokio::test]
async fn advice_contract_on_postgres() {
    contract(
        open(StoreLocation::Postgres {
            url: pg::database().await,
        })
        .await,
    )
    .await;
}
