//! `ioto-bench fleet`: a fleet of `--sims` SIMs loaded through the import path (timed per
//! 100,000 rows), devices with SIMs bound two by two, then pages of SIMs with nested
//! sub-customer, device and labels measured over HTTP.

use std::fmt::Write as _;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use chrono::Utc;
use ioto_app::fleet::ImportRequest;
use ioto_domain::directory::{Customer, NewCustomer, NewTenant};
use ioto_domain::fleet::import::{ImportStages, TableFormat};
use ioto_domain::fleet::query::{Page, SimFilter};
use ioto_domain::fleet::{Connectivity, Device, DeviceKind, DeviceState, Imei, Labels};
use ioto_domain::identifiers::{luhn_check_digit, Name, Slug};
use ioto_domain::ports::{Changeset, Versioned};
use ioto_domain::{Actor, DeviceId, Role, Scope};
use serde_json::json;

use crate::common::{measure, post, Figures};
use ioto::config::Config;
use ioto::engines;
use ioto::server::App;

use crate::common::PASSWORD;
/// Rows per import file.
pub const IMPORT_ROWS: usize = 100_000;
const SITES: [&str; 5] = ["berlin", "hamburg", "munich", "vienna", "zurich"];

/// One timed import.
pub struct ImportFigure {
    pub rows: usize,
    pub total_before: usize,
    pub elapsed: Duration,
    /// Where the import's time went, as the service measured it.
    pub stages: ImportStages,
}

/// A CSV of `rows` new SIMs numbered from `from`, unique to this run through `run`; with
/// `secrets`, each also has a PIN and a PUK (sealed on import).
pub(crate) fn import_file(run: u32, from: usize, rows: usize, secrets: bool) -> String {
    let mut csv = String::with_capacity(rows * 110);
    csv.push_str("iccid,imsi,msisdn,type,tariff_plan,labels");
    csv.push_str(if secrets { ",pin,puk\n" } else { "\n" });
    for i in from..from + rows {
        let body = format!("8988{run:05}{i:09}");
        let check = luhn_check_digit(&body).unwrap_or('0');
        let _ = write!(
            csv,
            "{body}{check},9{run:05}{i:09},+88{run:05}{i:07},{},IoT {},site={};batch={}",
            ["prepaid", "postpaid", "data-only"][i % 3],
            ["Basic", "Pro", "Max"][i % 3],
            SITES[i % SITES.len()],
            i / IMPORT_ROWS
        );
        if secrets {
            let _ = write!(csv, ",{:04},{:08}", i % 10_000, i % 100_000_000);
        }
        csv.push('\n');
    }
    csv
}

/// Loads the fleet and measures imports and list pages.
pub async fn fleet(
    config: &Config,
    sims: usize,
    requests: usize,
    concurrency: usize,
    runs: usize,
) -> anyhow::Result<(Vec<ImportFigure>, Vec<Vec<Figures>>)> {
    engines::migrate(config).await?;
    let app = App::build(config).await?;
    println!("{}", app.engines.versions().await?);
    let dir = Arc::clone(&app.engines.directory);
    let store = Arc::clone(&app.engines.fleet);
    let run = (uuid::Uuid::new_v4().as_u128() % 100_000) as u32;
    let tenant = dir
        .create_tenant(
            Scope::Platform,
            NewTenant {
                slug: Slug::parse(&format!("bench-fleet-{run}"))?,
                name: Name::parse("Bench Fleet", "name")?,
            },
        )
        .await?;
    let mut customers: Vec<Customer> = Vec::new();
    for name in ["Acme", "Bravo", "Cargo"] {
        customers.push(
            dir.create_customer(
                Scope::Platform,
                NewCustomer {
                    tenant_id: tenant.id,
                    name: Name::parse(name, "name")?,
                    external_ref: None,
                },
            )
            .await?,
        );
    }
    let email = format!("bench-fleet-{run}@example.com");
    let user = crate::common::operator(dir.as_ref(), tenant.id, &email).await?;
    let actor = Actor {
        user_id: Some(user.id),
        subject: user.id.to_string(),
        tenant_id: tenant.id,
        role: Role::Operator,
        customer_id: None,
        issued_at: None,
        api_key: None,
        session_id: None,
    };

    // Imports of 100,000 rows each, through the same path as the API (parse, check every row,
    // check the inventory, seal, insert with an audit entry per SIM).
    let mut imports = Vec::new();
    let mut loaded = 0;
    while loaded < sims {
        let rows = IMPORT_ROWS.min(sims - loaded);
        let file = import_file(run, loaded, rows, false);
        let customer = customers
            .get((loaded / IMPORT_ROWS) % (customers.len() + 1))
            .map(|c| c.id);
        let start = Instant::now();
        let report = app
            .fleet
            .import_sims(
                &actor,
                ImportRequest {
                    tenant_id: None,
                    customer_id: customer,
                    format: TableFormat::Csv,
                    bytes: file.into_bytes(),
                    commit: true,
                    skip_invalid: false,
                    note: Some("bench".into()),
                },
            )
            .await?;
        let elapsed = start.elapsed();
        if report.created as usize != rows {
            anyhow::bail!(
                "import created {} of {rows} SIMs: {:?}",
                report.created,
                report.errors.first()
            );
        }
        imports.push(ImportFigure {
            rows,
            total_before: loaded,
            elapsed,
            stages: report.stages,
        });
        eprintln!(
            "imported {} SIMs in {:.2} s",
            loaded + rows,
            elapsed.as_secs_f64()
        );
        loaded += rows;
    }

    // Devices for the first import's SIMs (two per device), of the same customer.
    let first_customer = customers.first().map(|c| c.id);
    let devices_n = (sims.min(IMPORT_ROWS) / 2).min(20_000);
    let now = Utc::now();
    let devices: Vec<Device> = (0..devices_n)
        .map(|i| {
            Ok(Device {
                id: DeviceId::ordered(),
                tenant_id: tenant.id,
                customer_id: first_customer,
                imei: Imei::with_check_digit(&format!("35{run:05}{i:07}"))?,
                name: format!("tracker {i:05}"),
                kind: DeviceKind::Tracker,
                connectivity: vec![Connectivity::Cellular],
                state: DeviceState::InService,
                labels: Labels::parse([("site", SITES[i % SITES.len()])])?,
                last_activity_at: None,
                version: 1,
                created_at: now,
                updated_at: now,
            })
        })
        .collect::<anyhow::Result<_>>()?;
    for chunk in devices.chunks(2000) {
        let rows = chunk
            .iter()
            .map(|d| Versioned {
                expected_version: None,
                row: d.clone(),
            })
            .collect();
        store
            .apply(
                Scope::Platform,
                Changeset {
                    devices: rows,
                    ..Changeset::default()
                },
            )
            .await?;
    }
    let first_sims = store
        .list_sims(
            Scope::Platform,
            tenant.id,
            &SimFilter::default(),
            &Page::first((2 * devices_n) as u64),
        )
        .await?;
    for (chunk_no, chunk) in first_sims.chunks(2000).enumerate() {
        let rows = chunk
            .iter()
            .enumerate()
            .map(|(j, s)| {
                let mut row = s.clone();
                row.device_id = Some(devices[(chunk_no * 2000 + j) / 2].id);
                Versioned {
                    expected_version: Some(s.version),
                    row,
                }
            })
            .collect();
        store
            .apply(
                Scope::Platform,
                Changeset {
                    sims: rows,
                    ..Changeset::default()
                },
            )
            .await?;
    }
    ioto_store::analyze(&engines::store_location(config)).await?;

    let listener = App::bind(config).await?;
    let addr = listener.local_addr()?;
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(app.serve(listener, async move {
        let _ = stop_rx.await;
    }));
    let url = format!("http://{addr}/graphql");
    let login = json!({ "query": "mutation($e: String!, $p: String!) { login(email: $e, password: $p) { token } }", "variables": { "e": email, "p": PASSWORD } });
    let token = post(&reqwest::Client::new(), &url, None, &login).await?["data"]["login"]["token"]
        .as_str()
        .context("no token")?
        .to_owned();
    let fields = "iccid state msisdn labels { key value } customer { name } device { name imei state }";
    let nested = format!("nodes {{ {fields} }}");
    let first_page = json!({ "query": format!("{{ sims(first: 50) {{ {nested} }} }}") });
    let filtered = json!({ "query": format!("{{ sims(first: 50, filter: {{ labels: [{{ key: \"site\", value: \"vienna\" }}], states: [INVENTORY] }}) {{ {nested} }} }}") });
    let middle = format!("8988{run:05}{:09}", sims / 2);
    let cursor = ioto_domain::fleet::query::Cursor {
        k: middle,
        id: uuid::Uuid::nil(),
    }
    .encode();
    let deep = json!({ "query": format!("query($a: String) {{ sims(first: 50, after: $a) {{ {nested} }} }}"), "variables": { "a": cursor } });
    // One SIM in a device, with the same nested fields (a console's SIM page).
    let one = first_sims.first().map(|s| {
        json!({ "query": format!("query($i: Iccid!) {{ sim(iccid: $i) {{ {fields} }} }}"), "variables": { "i": s.iccid.to_string() } })
    });
    let mut all = Vec::with_capacity(runs);
    for _ in 0..runs {
        let mut out = Vec::new();
        out.push(
            measure(
                "50 SIMs + nested, 1 client",
                &url,
                Some(&token),
                first_page.clone(),
                requests,
                1,
            )
            .await?,
        );
        if let Some(one) = &one {
            out.push(
                measure(
                    "1 SIM + nested, 1 client",
                    &url,
                    Some(&token),
                    one.clone(),
                    requests,
                    1,
                )
                .await?,
            );
        }
        out.push(
            measure(
                "50 SIMs + nested",
                &url,
                Some(&token),
                first_page.clone(),
                requests,
                concurrency,
            )
            .await?,
        );
        out.push(
            measure(
                "50 SIMs by label+state + nested",
                &url,
                Some(&token),
                filtered.clone(),
                requests,
                concurrency,
            )
            .await?,
        );
        out.push(
            measure(
                "50 SIMs mid-fleet (cursor) + nested",
                &url,
                Some(&token),
                deep.clone(),
                requests,
                concurrency,
            )
            .await?,
        );
        all.push(out);
    }
    let _ = stop_tx.send(());
    server.await??;
    Ok((imports, all))
}

/// One measure of an import.
type Stage = fn(&ImportFigure) -> Duration;

pub fn print_imports(imports: &[ImportFigure]) {
    use crate::common::median_spread;
    println!(
        "{:<34} {:>12} {:>10} {:>12} {:>8} {:>8} {:>8} {:>8}",
        "import (CSV, commit)", "SIMs before", "seconds", "rows/s", "check", "invent.", "seal", "write"
    );
    for i in imports {
        println!(
            "{:<34} {:>12} {:>10.2} {:>12.0} {:>8.2} {:>8.2} {:>8.2} {:>8.2}",
            format!("{} rows", i.rows),
            i.total_before,
            i.elapsed.as_secs_f64(),
            i.rows as f64 / i.elapsed.as_secs_f64(),
            i.stages.check.as_secs_f64(),
            i.stages.inventory.as_secs_f64(),
            i.stages.seal.as_secs_f64(),
            i.stages.write.as_secs_f64(),
        );
    }
    let figure = |f: Stage| median_spread(&imports.iter().map(|i| f(i).as_secs_f64()).collect::<Vec<_>>());
    let (median, min, max) = figure(|i| i.elapsed);
    println!(
        "imports: median {median:.2} s ({min:.2}–{max:.2}) over {} imports",
        imports.len()
    );
    let stages: [(&str, Stage); 4] = [
        ("reading and checking the file", |i| i.stages.check),
        ("searching the inventory (only after a conflict)", |i| {
            i.stages.inventory
        }),
        ("sealing PINs and PUKs", |i| i.stages.seal),
        ("the store's insert and commit", |i| i.stages.write),
    ];
    for (name, f) in stages {
        let (median, min, max) = figure(f);
        println!("  {name}: median {median:.2} s ({min:.2}–{max:.2})");
    }
}
