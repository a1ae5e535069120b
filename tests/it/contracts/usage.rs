use chrono::NaiveDate;
use ioto_analytics::{ClickHouseUsage, EmbeddedUsage};
use ioto_domain::ports::{UsageRecord, UsageStore};
use ioto_domain::{CustomerId, Error, TenantId};
use ioto_test_support::{clickhouse, temp_dir};

fn day(d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 11, d).unwrap()
}

fn rec(tenant: TenantId, iccid: &str, network: &str, d: u32, up: u64, down: u64) -> UsageRecord {
    UsageRecord {
        tenant_id: tenant,
        customer_id: Some(CustomerId::new()),
        iccid: iccid.into(),
        network: network.into(),
        day: day(d),
        bytes_up: up,
        bytes_down: down,
    }
}

async fn contract(store: &dyn UsageStore) {
    let first = store.migrate().await.unwrap();
    assert_eq!(first, vec![1, 2], "a fresh store applies every migration");
    assert!(
        store.migrate().await.unwrap().is_empty(),
        "migrating twice applies nothing"
    );
    assert!(!store.server_version().await.unwrap().is_empty());
    store.ping().await.unwrap();

    let a = TenantId::new();
    let b = TenantId::new();
    let mut batch = vec![
        rec(a, "8901", "262-01", 20, 100, 1000),
        rec(a, "8902", "262-01", 20, 50, 500),
        rec(a, "8901", "262-02", 21, 7, 70),
        rec(b, "8999", "262-01", 20, 1, 1),
    ];
    // Same SIM, network and day twice: the bytes add up.
    let mut again = batch[0].clone();
    again.customer_id = batch[0].customer_id;
    batch.push(again);
    store.insert_usage(&batch).await.unwrap();

    let got = store.daily_usage(a, day(19), day(21)).await.unwrap();
    let summary: Vec<_> = got
        .iter()
        .map(|u| (u.day, u.network.as_str(), u.bytes_up, u.bytes_down, u.sims))
        .collect();
    assert_eq!(
        summary,
        vec![(day(20), "262-01", 250, 2500, 2), (day(21), "262-02", 7, 70, 1)]
    );
    assert_eq!(
        store.daily_usage(a, day(21), day(21)).await.unwrap().len(),
        1,
        "range is inclusive and bounded"
    );
    assert_eq!(
        store.daily_usage(b, day(1), day(30)).await.unwrap().len(),
        1,
        "tenants do not mix"
    );

    // A bad row fails the batch, naming it, and nothing of the batch is stored.
    let bad = vec![
        rec(b, "8998", "262-01", 22, 5, 5),
        UsageRecord {
            day: NaiveDate::from_ymd_opt(1960, 1, 1).unwrap(),
            ..rec(b, "8998", "262-01", 22, 5, 5)
        },
    ];
    let err = store.insert_usage(&bad).await.unwrap_err();
    assert!(
        matches!(err, Error::InvalidInput { ref field, .. } if field == "records[1].day"),
        "{err:?}"
    );
    assert!(
        store.daily_usage(b, day(22), day(22)).await.unwrap().is_empty(),
        "partial write"
    );
}

#[tokio::test]
async fn usage_contract_on_embedded() {
    let store = EmbeddedUsage::open(&temp_dir().join("usage.sqlite"))
        .await
        .unwrap();
    contract(&store).await;
}

#[tokio::test]
async fn usage_contract_on_clickhouse() {
    let config = clickhouse::database().await;
    let store = ClickHouseUsage::connect(config.clone()).await.unwrap();
    contract(&store).await;
    ClickHouseUsage::drop_database(&config).await.unwrap();
}
