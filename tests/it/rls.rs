//! Row-level security on Postgres, below the application: raw SQL on one pooled connection that
//! alternates between tenants sees only the current tenant's rows, and nothing once the
//! transaction ends.

use std::sync::Arc;

use ioto_domain::{Role, Scope};
use ioto_store::StoreLocation;
use ioto_test_support::{pg, Factory};
use sea_orm::{ConnectionTrait, DbBackend, Statement, TransactionTrait};

fn sql(s: &str) -> Statement {
    Statement::from_string(DbBackend::Postgres, s.to_owned())
}

async fn count(conn: &impl ConnectionTrait, table: &str) -> i64 {
    conn.query_one(sql(&format!("SELECT count(*) AS n FROM {table}")))
        .await
        .unwrap()
        .unwrap()
        .try_get::<i64>("", "n")
        .unwrap()
}

async fn names(conn: &impl ConnectionTrait) -> Vec<String> {
    conn.query_all(sql("SELECT name FROM customers ORDER BY name"))
        .await
        .unwrap()
        .iter()
        .map(|r| r.try_get::<String>("", "name").unwrap())
        .collect()
}

/// Imports `sims` through the store's import path in `scope`, as a test actor.
async fn import_sims(
    store: &ioto_store::SqlStore,
    scope: Scope,
    sims: &[&ioto_domain::fleet::sim::NewSim],
) -> ioto_domain::Result<Vec<ioto_domain::SimId>> {
    let stamp = ioto_domain::fleet::audit::AuditStamp {
        actor: "test".into(),
        actor_user_id: None,
        at: chrono::Utc::now(),
        note: None,
    };
    ioto_domain::ports::SimStore::insert_sims(
        &store.fleet(),
        scope,
        sims,
        ioto_domain::fleet::AuditAction::Imported,
        &stamp,
        None,
    )
    .await
}

#[tokio::test]
async fn rls_isolates_tenants_on_one_pooled_connection() {
    let url = pg::database().await;
    // A pool of exactly one connection: every transaction below reuses it.
    let store = ioto_store::connect(&StoreLocation::Postgres { url }, 1)
        .await
        .unwrap();
    let f = Factory::new(Arc::new(store.directory()), Arc::new(store.fleet()));
    let a = f.tenant("A").await;
    let b = f.tenant("B").await;
    f.customer(&a, "A1").await;
    f.customer(&b, "B1").await;
    let b_user = f.user(&b, Role::Viewer, None).await;
    f.user(&a, Role::Viewer, None).await;
    f.user(&a, Role::Operator, None).await;
    f.sims(&a, None, 2).await;
    let b_sims = f.sims(&b, None, 3).await;
    f.device(&a, None, "a-dev").await;
    f.device(&b, None, "b-dev-1").await;
    f.device(&b, None, "b-dev-2").await;
    for (t, key) in [(&a, "a-key"), (&b, "b-key"), (&b, "b-key-2")] {
        let s = ioto_domain::fleet::LabelSuggestion {
            key: key.into(),
            values: vec![],
            description: None,
        };
        ioto_domain::ports::LabelCatalogue::put_label_suggestion(&store.fleet(), Scope::Platform, t.id, s)
            .await
            .unwrap();
    }

    let pid = |conn: &sea_orm::DatabaseConnection| {
        let conn = conn.clone();
        async move {
            conn.query_one(sql("SELECT pg_backend_pid() AS pid"))
                .await
                .unwrap()
                .unwrap()
                .try_get::<i32>("", "pid")
                .unwrap()
        }
    };
    let first_pid = pid(store.connection()).await;

    for _ in 0..3 {
        for (tenant, own, other) in [(&a, "A1", &b), (&b, "B1", &a)] {
            let txn = store.begin(Scope::tenant(tenant.id)).await.unwrap();
            assert_eq!(
                names(&txn).await,
                vec![own.to_owned()],
                "no WHERE clause: only RLS filters"
            );
            let insert = txn
                .execute(sql(&format!(
                    "INSERT INTO customers (id, tenant_id, name, created_at) VALUES (gen_random_uuid(), '{}', 'implant', now())",
                    other.id
                )))
                .await
                .unwrap_err()
                .to_string();
            assert!(insert.contains("row-level security"), "{insert}");
            txn.rollback().await.unwrap();
        }
    }
    assert_eq!(
        pid(store.connection()).await,
        first_pid,
        "the same connection served every tenant"
    );

    // The fleet tables too: each tenant's own rows and nothing else, without any WHERE clause.
    for (tenant, expected) in [(&a, [2, 1, 2, 1]), (&b, [3, 2, 3, 2])] {
        let txn = store.begin(Scope::tenant(tenant.id)).await.unwrap();
        for (table, n) in ["sims", "devices", "audit_events", "label_suggestions"]
            .iter()
            .zip(expected)
        {
            assert_eq!(count(&txn, table).await, n, "{table} of {}", tenant.name);
        }
        txn.rollback().await.unwrap();
    }

    // Outside a scoped transaction the connection carries no tenant: nothing is visible.
    assert!(names(store.connection()).await.is_empty());
    for table in [
        "tenants",
        "users",
        "sims",
        "devices",
        "audit_events",
        "scheduled_transitions",
        "label_suggestions",
    ] {
        assert_eq!(
            count(store.connection(), table).await,
            0,
            "{table} visible without a tenant"
        );
    }
    let role = store
        .connection()
        .query_one(sql("SELECT current_user AS u"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        role.try_get::<String>("", "u").unwrap(),
        "ioto_app",
        "the server works as the non-owning role"
    );

    // The login lookup lifts the policy for its own query only.
    let txn = store.begin(Scope::tenant(a.id)).await.unwrap();
    let found = txn
        .query_all(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "SELECT id FROM ioto_login_lookup($1)",
            [b_user.email.as_str().into()],
        ))
        .await
        .unwrap();
    assert_eq!(found.len(), 1);
    assert_eq!(
        names(&txn).await,
        vec!["A1".to_owned()],
        "platform visibility did not leak out of the lookup"
    );
    // The identifier check of imports answers for every tenant, and leaks nothing either.
    let taken = txn
        .query_all(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "SELECT value FROM ioto_taken_identifiers($1, '', '')",
            [b_sims[0].iccid.as_str().into()],
        ))
        .await
        .unwrap();
    assert_eq!(taken.len(), 1);
    assert_eq!(count(&txn, "sims").await, 2, "only A's SIMs after the check");
    txn.commit().await.unwrap();

    // The app role cannot switch RLS off or read another tenant by setting nothing.
    let conn = store.connection();
    let off = conn.begin().await.unwrap();
    let err = off
        .execute(sql("ALTER TABLE customers NO FORCE ROW LEVEL SECURITY"))
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("must be owner"), "{err}");
}

/// Every table holding tenant rows is under row-level security, forced also for its owner: a new
/// table cannot be added without its policy.
#[tokio::test]
async fn every_tenant_table_has_forced_row_level_security() {
    let url = pg::database().await;
    let db = sea_orm::Database::connect(&url).await.unwrap();
    let rows = db
        .query_all(sql(
            "SELECT c.relname AS name, c.relrowsecurity AS enabled, c.relforcerowsecurity AS forced \
             FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
             WHERE n.nspname = 'public' AND c.relkind = 'r' AND EXISTS ( \
               SELECT 1 FROM information_schema.columns k \
               WHERE k.table_schema = 'public' AND k.table_name = c.relname AND k.column_name = 'tenant_id') \
             ORDER BY 1",
        ))
        .await
        .unwrap();
    let tables: Vec<(String, bool, bool)> = rows
        .iter()
        .map(|r| {
            (
                r.try_get("", "name").unwrap(),
                r.try_get("", "enabled").unwrap(),
                r.try_get("", "forced").unwrap(),
            )
        })
        .collect();
    for t in [
        "sims",
        "rate_cards",
        "rate_card_versions",
        "rating_runs",
        "closed_periods",
        "invoice_charges",
        "period_adjustments",
    ] {
        assert!(
            tables.iter().any(|(n, ..)| n == t),
            "{t} holds tenant rows: {tables:?}"
        );
    }
    let open: Vec<&String> = tables
        .iter()
        .filter(|(_, e, f)| !(*e && *f))
        .map(|(n, ..)| n)
        .collect();
    assert!(
        open.is_empty(),
        "tables with tenant rows but no forced RLS: {open:?}"
    );
}

/// Prices below the application: a tenant's transaction sees its retail card only, never a
/// supplier card or another tenant's, and cannot write cards at all.
#[tokio::test]
async fn rls_keeps_supplier_cards_and_other_tenants_cards_out_of_sight() {
    use ioto_domain::billing::money::{Currency, Price};
    use ioto_domain::billing::rate_card::{
        BillingPeriod, RateCard, RateCardKind, RateCardTerms, RateCardVersion, Zone,
    };
    use ioto_domain::ports::billing::RateCardStore;

    let url = pg::database().await;
    let store = ioto_store::connect(&StoreLocation::Postgres { url }, 1)
        .await
        .unwrap();
    let f = Factory::new(Arc::new(store.directory()), Arc::new(store.fleet()));
    let a = f.tenant("A").await;
    let b = f.tenant("B").await;
    let billing = store.billing();
    let card = |tenant: ioto_domain::TenantId, kind| RateCard {
        id: uuid::Uuid::new_v4(),
        tenant_id: tenant,
        kind,
        name: "card".into(),
        currency: Currency::parse("currency", "EUR").unwrap(),
        billing_period: BillingPeriod::Monthly,
        retired_from: None,
        created_at: chrono::Utc::now(),
        versions: vec![RateCardVersion {
            id: uuid::Uuid::new_v4(),
            terms: RateCardTerms {
                effective_from: chrono::NaiveDate::from_ymd_opt(2026, 1, 1).unwrap(),
                rounding_increment_bytes: 0,
                access_fee: Price::ZERO,
                zones: vec![Zone {
                    name: "World".into(),
                    networks: vec![],
                    countries: vec![],
                    price_per_mb: Price::parse("p", "0.1").unwrap(),
                    is_default: true,
                }],
                overrides: vec![],
            },
            created_at: chrono::Utc::now(),
            created_by: "test".into(),
        }],
    };
    for t in [a.id, b.id] {
        for kind in [RateCardKind::Retail, RateCardKind::Supplier] {
            billing.create_rate_card(&card(t, kind)).await.unwrap();
        }
    }
    let txn = store.begin(Scope::tenant(a.id)).await.unwrap();
    let rows = txn
        .query_all(sql("SELECT tenant_id::text AS t, kind FROM rate_cards"))
        .await
        .unwrap();
    let seen: Vec<(String, String)> = rows
        .iter()
        .map(|r| (r.try_get("", "t").unwrap(), r.try_get("", "kind").unwrap()))
        .collect();
    assert_eq!(seen, vec![(a.id.to_string(), "RETAIL".to_owned())]);
    assert_eq!(count(&txn, "rate_card_versions").await, 1);
    let write = txn
        .execute(sql(&format!(
            "UPDATE rate_cards SET name = 'cheaper' WHERE tenant_id = '{}'",
            a.id
        )))
        .await
        .unwrap_err();
    assert!(write.to_string().contains("row-level security"), "{write}");
    txn.rollback().await.unwrap();
}

/// Bulk job rows name an existing job of the caller's tenant (on Postgres checked once per
/// statement, migration 0010, instead of by a per-row foreign key): a row naming no job, or
/// another tenant's job, is refused; a row never moves to another job; deleting a job deletes
/// its rows.
#[tokio::test]
async fn bulk_job_rows_belong_to_a_job_of_the_callers_tenant() {
    let url = pg::database().await;
    let store = ioto_store::connect(&StoreLocation::Postgres { url }, 2)
        .await
        .unwrap();
    let f = Factory::new(Arc::new(store.directory()), Arc::new(store.fleet()));
    let (a, b) = (f.tenant("A").await, f.tenant("B").await);
    let (job_a, job_b, no_job) = (uuid::Uuid::new_v4(), uuid::Uuid::new_v4(), uuid::Uuid::new_v4());
    let txn = store.begin(Scope::Platform).await.unwrap();
    for (job, tenant) in [(job_a, a.id), (job_b, b.id)] {
        txn.execute(sql(&format!(
            "INSERT INTO bulk_jobs (id, tenant_id, source, status, total_rows, valid_rows, invalid_rows, \
             already_in_state, created_by, created_by_role, created_at) \
             VALUES ('{job}', '{tenant}', 'API', 'AWAITING_CONFIRMATION', 3, 3, 0, 0, 'test', 'TENANT_ADMIN', now())"
        )))
        .await
        .unwrap();
    }
    txn.commit().await.unwrap();
    let rows = |job: uuid::Uuid, from: i64, to: i64| {
        sql(&format!(
            "INSERT INTO bulk_job_rows (job_id, position, tenant_id, line, iccid, outcome, request_id) \
             SELECT '{job}', g, '{}', g, '8988', 'PENDING', gen_random_uuid() FROM generate_series({from}, {to}) g",
            a.id
        ))
    };

    let txn = store.begin(Scope::tenant(a.id)).await.unwrap();
    txn.execute(rows(job_a, 1, 3)).await.unwrap();
    txn.commit().await.unwrap();
    for job in [no_job, job_b] {
        let txn = store.begin(Scope::tenant(a.id)).await.unwrap();
        let err = txn.execute(rows(job, 10, 11)).await.unwrap_err().to_string();
        assert!(err.contains(&format!("job {job} does not exist")), "{err}");
        txn.rollback().await.unwrap();
    }

    let txn = store.begin(Scope::Platform).await.unwrap();
    let err = txn
        .execute(sql(&format!(
            "UPDATE bulk_job_rows SET job_id = '{job_b}' WHERE job_id = '{job_a}'"
        )))
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("cannot move to another job"), "{err}");
    txn.rollback().await.unwrap();

    let txn = store.begin(Scope::Platform).await.unwrap();
    assert_eq!(count(&txn, "bulk_job_rows").await, 3);
    txn.execute(sql(&format!("DELETE FROM bulk_jobs WHERE id = '{job_a}'")))
        .await
        .unwrap();
    assert_eq!(
        count(&txn, "bulk_job_rows").await,
        0,
        "the job's rows went with it"
    );
    txn.commit().await.unwrap();
}

/// A SIM names an existing tenant and, if any, a sub-customer of that tenant (on Postgres checked
/// once per statement, migration 0011, instead of by per-row foreign keys): an insert naming no
/// tenant, or a sub-customer that is not the tenant's, is refused as a foreign key violation (the
/// store's conflict), as is assigning a SIM to such a sub-customer, moving it to another tenant,
/// or deleting or rekeying a tenant or sub-customer that SIMs still name; a sub-customer's user
/// writes and assigns within its own sub-customer; deleting a tenant deletes all its SIMs, also
/// from a session whose settings hide some of them.
#[tokio::test]
async fn sims_name_an_existing_tenant_and_sub_customer_of_it() {
    let url = pg::database().await;
    let store = ioto_store::connect(&StoreLocation::Postgres { url: url.clone() }, 2)
        .await
        .unwrap();
    let f = Factory::new(Arc::new(store.directory()), Arc::new(store.fleet()));
    let (a, b) = (f.tenant("A").await, f.tenant("B").await);
    let (a1, b1) = (f.customer(&a, "A1").await, f.customer(&b, "B1").await);
    let no_tenant = uuid::Uuid::new_v4();
    let insert = |tenant: uuid::Uuid, customer: Option<uuid::Uuid>, from: i64| {
        let customer = customer.map_or("NULL".to_owned(), |c| format!("'{c}'"));
        sql(&format!(
            "INSERT INTO sims (id, tenant_id, customer_id, iccid, imsi, state) \
             SELECT gen_random_uuid(), '{tenant}', {customer}, '8988' || g, '9' || g, 'INVENTORY' \
             FROM generate_series({from}, {from} + 2) g"
        ))
    };
    let a1_scope = Scope::Tenant {
        tenant_id: a.id,
        customer_id: Some(a1.id),
    };

    let txn = store.begin(Scope::tenant(a.id)).await.unwrap();
    txn.execute(insert(a.id.0, None, 100)).await.unwrap();
    txn.commit().await.unwrap();
    // The sub-customer's own user: inserts into it, and takes over one of the tenant's SIMs.
    let txn = store.begin(a1_scope).await.unwrap();
    txn.execute(insert(a.id.0, Some(a1.id.0), 200)).await.unwrap();
    txn.commit().await.unwrap();
    let txn = store.begin(Scope::tenant(a.id)).await.unwrap();
    txn.execute(sql(&format!(
        "UPDATE sims SET customer_id = '{}', state = 'ACTIVE' WHERE iccid = '8988100'",
        a1.id
    )))
    .await
    .unwrap();
    txn.commit().await.unwrap();

    let refused = [
        (
            Scope::Platform,
            insert(no_tenant, None, 300),
            format!("tenant {no_tenant} does not exist"),
        ),
        (
            Scope::tenant(a.id),
            insert(a.id.0, Some(b1.id.0), 400),
            format!("sub-customer {} of tenant {} does not exist", b1.id, a.id),
        ),
        (
            Scope::Platform,
            sql(&format!(
                "UPDATE sims SET customer_id = '{}' WHERE tenant_id = '{}' AND customer_id IS NULL",
                b1.id, a.id
            )),
            format!("sub-customer {} of tenant {} does not exist", b1.id, a.id),
        ),
        (
            Scope::Platform,
            sql(&format!(
                "UPDATE sims SET tenant_id = '{}' WHERE tenant_id = '{}'",
                b.id, a.id
            )),
            "a SIM cannot move to another tenant".to_owned(),
        ),
        (
            Scope::Platform,
            sql(&format!("DELETE FROM customers WHERE id = '{}'", a1.id)),
            format!("sub-customer {} is still named by SIMs", a1.id),
        ),
        (
            Scope::Platform,
            sql(&format!(
                "UPDATE customers SET id = gen_random_uuid() WHERE id = '{}'",
                a1.id
            )),
            format!("\"customers\": {} is still named by SIMs", a1.id),
        ),
        (
            Scope::Platform,
            sql(&format!(
                "UPDATE customers SET tenant_id = '{}' WHERE id = '{}'",
                b.id, a1.id
            )),
            format!("\"customers\": {} is still named by SIMs", a1.id),
        ),
        (
            Scope::Platform,
            sql(&format!(
                "UPDATE tenants SET id = gen_random_uuid() WHERE id = '{}'",
                a.id
            )),
            format!("\"tenants\": {} is still named by SIMs", a.id),
        ),
    ];
    for (scope, statement, expected) in refused {
        let txn = store.begin(scope).await.unwrap();
        let err = txn.execute(statement).await.unwrap_err();
        assert!(err.to_string().contains(&expected), "{err}");
        assert!(
            matches!(
                err.sql_err(),
                Some(sea_orm::SqlErr::ForeignKeyConstraintViolation(_))
            ),
            "refused as a foreign key violation: {err}"
        );
        txn.rollback().await.unwrap();
    }

    // Tenants are deleted by the platform's operators, not by the server. An operator's session
    // under the policies (the server's role, granted DELETE in this test's database only) whose
    // settings show only sub-customer A1's SIMs: the tenant's other SIMs go too.
    let owner = sea_orm::Database::connect(url.as_str()).await.unwrap();
    let all_of_a = format!("SELECT count(*) AS n FROM sims WHERE tenant_id = '{}'", a.id);
    let n = |row: Option<sea_orm::QueryResult>| row.unwrap().try_get::<i64>("", "n").unwrap();
    let txn = store.begin(Scope::Platform).await.unwrap();
    assert_eq!(n(txn.query_one(sql(&all_of_a)).await.unwrap()), 6);
    txn.commit().await.unwrap();
    let txn = owner.begin().await.unwrap();
    for setting in [
        "GRANT DELETE ON tenants TO ioto_app".to_owned(),
        "SET LOCAL ROLE ioto_app".to_owned(),
        format!("SELECT set_config('app.tenant_id', '{}', true)", a.id),
        format!("SELECT set_config('app.customer_id', '{}', true)", a1.id),
    ] {
        txn.execute(sql(&setting)).await.unwrap();
    }
    assert_eq!(
        n(txn.query_one(sql(&all_of_a)).await.unwrap()),
        4,
        "the session sees A1's SIMs only"
    );
    txn.execute(sql(&format!("DELETE FROM tenants WHERE id = '{}'", a.id)))
        .await
        .unwrap();
    txn.commit().await.unwrap();
    let txn = store.begin(Scope::Platform).await.unwrap();
    assert_eq!(
        n(txn.query_one(sql(&all_of_a)).await.unwrap()),
        0,
        "every SIM of the tenant went with it"
    );
    assert_eq!(count(&txn, "tenants").await, 1, "B stays");
    txn.commit().await.unwrap();
}

/// Imports stage their SIMs in a temporary table (`COPY` may not write into a table under
/// row-level security): a database whose `PUBLIC` lost `TEMPORARY` refuses an import until
/// migration 13 grants it to the server's role, and the staging transaction moves the rows as
/// that role in the caller's scope, which is what the policy reads.
#[tokio::test]
async fn imports_stage_in_a_temporary_table_as_the_server_role_in_the_callers_scope() {
    let url = pg::database().await;
    let location = StoreLocation::Postgres { url: url.clone() };
    let (_, name) = url.rsplit_once('/').unwrap();
    // As the connecting (owning) user; test databases are copies of a migrated template, whose
    // grants on the database itself do not come along.
    let owner = sea_orm::Database::connect(&url).await.unwrap();
    owner
        .execute(sql(&format!("REVOKE TEMPORARY ON DATABASE {name} FROM PUBLIC")))
        .await
        .unwrap();
    let store = ioto_store::connect(&location, 1).await.unwrap();
    let f = Factory::new(Arc::new(store.directory()), Arc::new(store.fleet()));
    let a = f.tenant("A").await;
    let a1 = f.customer(&a, "A1").await;
    let a1_scope = Scope::Tenant {
        tenant_id: a.id,
        customer_id: Some(a1.id),
    };
    let mut new = ioto_domain::fleet::sim::NewSim::basic(
        a.id,
        ioto_domain::identifiers::Iccid::with_check_digit("898800000000000001").unwrap(),
        ioto_domain::identifiers::Imsi::parse("900000000000001").unwrap(),
    );
    new.customer_id = Some(a1.id);
    let refused = import_sims(&store, a1_scope, &[&new]).await.unwrap_err();
    assert!(
        format!("{refused:?}").contains("permission denied to create temporary tables"),
        "{refused:?}"
    );

    owner
        .execute(sql(
            "DELETE FROM seaql_migrations WHERE version = 'm0013_import_staging'",
        ))
        .await
        .unwrap();
    ioto_store::migrate(&location).await.unwrap();
    // Each statement inserting into `sims` records the role and scope it ran with.
    owner
        .execute_unprepared(
            "CREATE TABLE import_scopes (tenant text, customer text, platform text, role text); \
             GRANT INSERT ON import_scopes TO ioto_app; \
             CREATE FUNCTION record_import_scope() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN \
               INSERT INTO import_scopes VALUES (current_setting('app.tenant_id', true), \
                 current_setting('app.customer_id', true), current_setting('app.platform', true), \
                 current_user); \
               RETURN NULL; \
             END $$; \
             CREATE TRIGGER record_import_scope AFTER INSERT ON sims FOR EACH STATEMENT \
               EXECUTE FUNCTION record_import_scope()",
        )
        .await
        .unwrap();
    // A new pool: a backend checks the privilege when it first creates a temporary table.
    let store = ioto_store::connect(&location, 1).await.unwrap();
    let ids = import_sims(&store, a1_scope, &[&new]).await.unwrap();
    assert_eq!(ids.len(), 1);
    let recorded: Vec<(String, String, String, String)> = owner
        .query_all(sql("SELECT tenant, customer, platform, role FROM import_scopes"))
        .await
        .unwrap()
        .iter()
        .map(|r| {
            let get = |c: &str| r.try_get::<String>("", c).unwrap();
            (get("tenant"), get("customer"), get("platform"), get("role"))
        })
        .collect();
    assert_eq!(
        recorded,
        vec![(
            a.id.to_string(),
            a1.id.to_string(),
            String::new(),
            "ioto_app".to_owned()
        )],
        "one statement moved the SIMs, as ioto_app in the sub-customer's scope"
    );
    let txn = store.begin(a1_scope).await.unwrap();
    assert_eq!(
        count(&txn, "sims").await,
        1,
        "the sub-customer sees its imported SIM"
    );
    txn.commit().await.unwrap();
}

/// An import whose caller goes away at any point (a client gone, a shutdown), its `COPY`
/// included, writes all of its SIMs or none, and its connection does not go back to the pool:
/// sqlx does not read the replies due after an abandoned `COPY`, and a connection back in the pool
/// with them would answer the next statements with earlier ones' results.
#[tokio::test]
async fn an_import_dropped_at_any_point_writes_all_or_nothing_and_leaves_the_pool_sound() {
    use ioto_domain::fleet::sim::NewSim;
    use ioto_domain::identifiers::{Iccid, Imsi};
    const SIMS: i64 = 50_000;
    let url = pg::database().await;
    // One connection: every statement after an import runs where the import ran, or on the
    // connection that replaced it.
    let store = ioto_store::connect(&StoreLocation::Postgres { url: url.clone() }, 1)
        .await
        .unwrap();
    // As the owning user, past row-level security: counts and the server's own view of backends.
    let owner = sea_orm::Database::connect(&url).await.unwrap();
    let f = Factory::new(Arc::new(store.directory()), Arc::new(store.fleet()));
    let a = f.tenant("A").await;
    let scope = Scope::tenant(a.id);
    // Built before an import is timed: only the import itself may be dropped.
    let batch = |round: u32| -> Vec<NewSim> {
        (0..SIMS)
            .map(|n| {
                NewSim::basic(
                    a.id,
                    Iccid::with_check_digit(&format!("8988{round:02}{n:012}")).unwrap(),
                    Imsi::parse(&format!("90{round:02}{n:011}")).unwrap(),
                )
            })
            .collect()
    };
    // The server process behind the pool's one connection, asked through the store: a stale
    // reply would answer this with another statement's result, or fail it.
    let backend = || async {
        let txn = store.begin(scope).await.unwrap();
        let pid = txn
            .query_one(sql("SELECT pg_backend_pid() AS pid"))
            .await
            .unwrap()
            .unwrap()
            .try_get::<i32>("", "pid")
            .unwrap();
        txn.commit().await.unwrap();
        pid
    };
    let stored = || async {
        let row =
            owner
                .query_one(sql("SELECT (SELECT count(*) FROM sims) AS sims, \
                 (SELECT count(*) FROM audit_events WHERE action = 'IMPORTED') AS audited"))
                .await
                .unwrap()
                .unwrap();
        let get = |c: &str| row.try_get::<i64>("", c).unwrap();
        (get("sims"), get("audited"))
    };
    // The time of a whole import: the faster of two.
    let mut whole = std::time::Duration::MAX;
    for round in 0..2 {
        let sims = batch(round);
        let sims: Vec<&NewSim> = sims.iter().collect();
        let started = std::time::Instant::now();
        import_sims(&store, scope, &sims).await.unwrap();
        whole = whole.min(started.elapsed());
    }
    let mut expected = 2 * SIMS;
    let mut dropped = 0;
    // Dropped from the start to past the time a whole import took: before, during and after
    // its `COPY`.
    for round in 2..=13 {
        let after = whole * (round - 2) / 10;
        let sims = batch(round);
        let sims: Vec<&NewSim> = sims.iter().collect();
        let before = backend().await;
        let finished = match tokio::time::timeout(after, import_sims(&store, scope, &sims)).await {
            Ok(done) => {
                done.unwrap();
                true
            }
            Err(_) => false,
        };
        let now = backend().await;
        if finished {
            expected += SIMS;
            assert_eq!(
                now, before,
                "round {round}: a finished import's connection was closed instead of going back to the pool"
            );
        } else {
            dropped += 1;
            if after > std::time::Duration::ZERO {
                assert_ne!(
                    now, before,
                    "round {round}: dropped after {after:?}, the import's connection went back to the pool"
                );
            }
            // Until the abandoned server process has ended, its transaction may still commit.
            // (Dropped at once, before it had a connection, an import abandoned none.)
            while now != before
                && owner
                    .query_one(sql(&format!(
                        "SELECT 1 AS n FROM pg_stat_activity WHERE pid = {before}"
                    )))
                    .await
                    .unwrap()
                    .is_some()
            {
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            }
        }
        let (sims, audited) = stored().await;
        // Dropped while its commit was under way, an import may have landed whole.
        assert!(
            sims == expected || (!finished && sims == expected + SIMS),
            "round {round} (dropped after {after:?}: {}): {sims} SIMs stored, {expected} expected",
            !finished
        );
        expected = sims;
        assert_eq!(audited, sims, "round {round}: one audit entry per stored SIM");
    }
    assert!(dropped >= 3, "only {dropped} of 12 imports were dropped");
}
