//! `ioto demo`: a tenant with sub-customers, a user of every role and a fleet of SIMs and
//! devices, seeded once.

use std::sync::Arc;

use chrono::Utc;
use ioto_domain::directory::{Customer, NewCustomer, NewTenant, NewUser, Tenant, User};
use ioto_domain::fleet::{
    AuditAction, AuditStamp, Connectivity, Device, DeviceKind, DeviceState, Imei, LabelSuggestion, Labels,
    NewSim, SimState, SimType,
};
use ioto_domain::identifiers::{Email, Iccid, Imsi, MccMnc, Msisdn, Name, Slug};
use ioto_domain::password::hash_password;
use ioto_domain::ports::{Changeset, Directory, Fleet, Versioned};
use ioto_domain::{DeviceId, Role, Scope};

/// Every demo user signs in with this password.
pub const DEMO_PASSWORD: &str = "ioto-demo-password";
pub const DEMO_TENANT: &str = "demo";
pub const PLATFORM_TENANT: &str = "platform";
pub const DEMO_SIMS: usize = 3000;
pub const DEMO_DEVICES: usize = 1200;

/// What the demo holds: the demo tenant and one user per role.
pub struct Demo {
    pub tenant: Tenant,
    pub users: Vec<User>,
}

fn parse<T>(r: ioto_domain::Result<T>) -> anyhow::Result<T> {
    r.map_err(anyhow::Error::from)
}

/// The demo signs every user in with a published password, a platform admin among them: it
/// seeds only a directory that holds nothing else (a new database, or one it seeded itself), so
/// that `ioto demo` pointed at a real deployment's database does not open it to anyone.
async fn refuse_a_real_directory(dir: &Arc<dyn Directory>) -> anyhow::Result<()> {
    let others: Vec<String> = dir
        .list_tenants(Scope::Platform)
        .await?
        .into_iter()
        .filter(|t| t.slug.as_str() != PLATFORM_TENANT)
        .map(|t| t.slug.as_str().to_owned())
        .collect();
    let platform = dir
        .tenant_by_slug(Scope::Platform, &parse(Slug::parse(PLATFORM_TENANT))?)
        .await?;
    let admins = match &platform {
        Some(p) => dir
            .list_users(Scope::Platform, p.id, &ioto_domain::fleet::query::Page::first(1))
            .await?
            .len(),
        None => 0,
    };
    if !others.is_empty() || admins > 0 {
        anyhow::bail!(
            "ioto demo seeds users with a published password, a platform admin among them, and this \
             database already holds {} tenant(s) ({}) and {admins} platform user(s): it looks like a \
             real deployment. Run the demo on a database of its own (leave database.url unset for \
             the embedded store, or point it at an empty database).",
            others.len(),
            others.join(", ")
        );
    }
    Ok(())
}

/// Seeds the demo data unless the demo tenant exists; either way returns it. Refuses to seed a
/// database that holds other tenants or platform users.
pub async fn seed(dir: &Arc<dyn Directory>, fleet: &Arc<dyn Fleet>) -> anyhow::Result<Demo> {
    let scope = Scope::Platform;
    let demo_slug = parse(Slug::parse(DEMO_TENANT))?;
    if let Some(tenant) = dir.tenant_by_slug(scope, &demo_slug).await? {
        let platform = dir
            .tenant_by_slug(scope, &parse(Slug::parse(PLATFORM_TENANT))?)
            .await?;
        let mut users = dir
            .list_users(scope, tenant.id, &ioto_domain::fleet::query::Page::first(1000))
            .await?;
        if let Some(p) = platform {
            users.extend(
                dir.list_users(scope, p.id, &ioto_domain::fleet::query::Page::first(1000))
                    .await?,
            );
        }
        return Ok(Demo {
            tenant,
            users: one_per_role(users),
        });
    }

    refuse_a_real_directory(dir).await?;
    let hash = hash_password(DEMO_PASSWORD)?;
    let platform = match dir
        .tenant_by_slug(scope, &parse(Slug::parse(PLATFORM_TENANT))?)
        .await?
    {
        Some(t) => t,
        None => {
            dir.create_tenant(
                scope,
                NewTenant {
                    slug: parse(Slug::parse(PLATFORM_TENANT))?,
                    name: parse(Name::parse("Ioto Platform", "name"))?,
                },
            )
            .await?
        }
    };
    let tenant = dir
        .create_tenant(
            scope,
            NewTenant {
                slug: demo_slug,
                name: parse(Name::parse("Demo Fleet GmbH", "name"))?,
            },
        )
        .await?;
    let mut customers = Vec::new();
    for (name, ext) in [
        ("Acme Logistics", "C-1001"),
        ("Bravo Energy", "C-1002"),
        ("Cargo Rail", "C-1003"),
    ] {
        customers.push(
            dir.create_customer(
                scope,
                NewCustomer {
                    tenant_id: tenant.id,
                    name: parse(Name::parse(name, "name"))?,
                    external_ref: Some(ext.into()),
                },
            )
            .await?,
        );
    }
    let people = [
        (
            platform.id,
            None,
            "platform@ioto.local",
            "Pat Platform",
            Role::PlatformAdmin,
        ),
        (tenant.id, None, "admin@demo.ioto", "Ada Admin", Role::TenantAdmin),
        (
            tenant.id,
            None,
            "operator@demo.ioto",
            "Otto Operator",
            Role::Operator,
        ),
        (
            tenant.id,
            Some(customers[0].id),
            "customer@demo.ioto",
            "Cora Customer",
            Role::CustomerUser,
        ),
        (tenant.id, None, "viewer@demo.ioto", "Vic Viewer", Role::Viewer),
    ];
    let mut users = Vec::new();
    for (tenant_id, customer_id, email, name, role) in people {
        users.push(
            dir.create_user(
                scope,
                NewUser {
                    tenant_id,
                    customer_id,
                    email: parse(Email::parse(email))?,
                    display_name: parse(Name::parse(name, "displayName"))?,
                    role,
                    password_hash: hash.clone(),
                },
            )
            .await?,
        );
    }
    seed_fleet(fleet, &tenant, &customers).await?;
    Ok(Demo { tenant, users })
}

/// A fleet: SIMs in every state and type, devices of every kind, most SIMs in devices, labels,
/// a label catalogue, spread over the sub-customers and the tenant itself.
async fn seed_fleet(fleet: &Arc<dyn Fleet>, tenant: &Tenant, customers: &[Customer]) -> anyhow::Result<()> {
    let scope = Scope::Platform;
    let owner = |i: usize| customers.get(i % (customers.len() + 1)).map(|c| c.id);
    let sites = ["berlin", "hamburg", "munich", "vienna", "zurich"];
    let stamp = AuditStamp {
        actor: "demo-seeder".into(),
        actor_user_id: None,
        at: Utc::now(),
        note: Some("demo data".into()),
    };
    let now = Utc::now();
    let mut devices = Vec::with_capacity(DEMO_DEVICES);
    for i in 0..DEMO_DEVICES {
        let kind = DeviceKind::ALL[i % DeviceKind::ALL.len()];
        let mut labels = Labels::new();
        parse(labels.set("site", sites[i % sites.len()]))?;
        parse(labels.set("fleet", if i % 3 == 0 { "cold-chain" } else { "standard" }))?;
        devices.push(Device {
            id: DeviceId::ordered(),
            tenant_id: tenant.id,
            customer_id: owner(i),
            imei: parse(Imei::with_check_digit(&format!("35209900{i:06}")))?,
            name: format!("{} {:04}", kind.as_str().to_ascii_lowercase(), i),
            kind,
            connectivity: if i % 4 == 0 {
                vec![Connectivity::Cellular, Connectivity::Wifi]
            } else {
                vec![Connectivity::Cellular]
            },
            state: match i % 10 {
                0 => DeviceState::Registered,
                8 => DeviceState::Maintenance,
                9 if i % 20 == 9 => DeviceState::Retired,
                _ => DeviceState::InService,
            },
            labels,
            last_activity_at: None,
            version: 1,
            created_at: now,
            updated_at: now,
        });
    }
    fleet
        .apply(
            scope,
            Changeset {
                devices: devices
                    .iter()
                    .map(|d| Versioned {
                        expected_version: None,
                        row: d.clone(),
                    })
                    .collect(),
                ..Changeset::default()
            },
        )
        .await?;
    let mut sims = Vec::with_capacity(DEMO_SIMS);
    for i in 0..DEMO_SIMS {
        // SIM i sits in device i / 2 (two SIMs per device) for the first 2 × devices SIMs, so its
        // owner must match the device's.
        let customer = if i < 2 * DEMO_DEVICES {
            owner(i / 2)
        } else {
            owner(i)
        };
        let mut labels = Labels::new();
        parse(labels.set("site", sites[(i / 2) % sites.len()]))?;
        if i % 7 == 0 {
            parse(labels.set("priority", "high"))?;
        }
        let mut sim = NewSim::basic(
            tenant.id,
            parse(Iccid::with_check_digit(&format!("8988228066{i:08}")))?,
            parse(Imsi::parse(&format!("90128{i:010}")))?,
        );
        sim.customer_id = customer;
        sim.msisdn = Some(parse(Msisdn::parse(&format!("+882360{i:07}")))?);
        sim.sim_type = SimType::ALL[i % 3];
        sim.tariff_plan = Some(["IoT Basic 10MB", "IoT Pro 1GB", "IoT Unlimited"][i % 3].to_owned());
        sim.labels = labels;
        sim.state = match i % 20 {
            0..=2 => SimState::Inventory,
            3 | 4 => SimState::Suspended,
            5 => SimState::LostStolen,
            6 => SimState::Terminated,
            _ => SimState::Active,
        };
        sims.push(sim);
    }
    let ids = fleet
        .insert_sims(
            scope,
            &sims.iter().collect::<Vec<_>>(),
            AuditAction::Imported,
            &stamp,
            None,
        )
        .await?;
    // Bind the first SIMs two by two into the devices (not the terminated ones or retired
    // devices); SIMs in service have been seen on a network lately (until usage flows in).
    let networks = ["262-01", "262-02", "234-15", "310-260", "208-01"];
    let mut writes = Vec::new();
    for sim in fleet.sims_by_id(scope, &ids).await? {
        let Some(pos) = ids.iter().position(|id| *id == sim.id) else {
            continue;
        };
        let mut row = sim.clone();
        if let Some(device) = devices.get(pos / 2).filter(|_| pos < 2 * DEMO_DEVICES) {
            if sim.state != SimState::Terminated && device.state != DeviceState::Retired {
                row.device_id = Some(device.id);
            }
        }
        if matches!(sim.state, SimState::Active | SimState::Suspended) {
            row.last_network = Some(parse(MccMnc::parse(networks[pos % networks.len()]))?);
            // Seen within the last two hours: at the start only the SIMs the demo lets go quiet
            // are offline for its "Gone quiet" rule (3 hours); the others, carrying no traffic
            // in the demo, go quiet as the hours pass.
            row.last_activity_at = Some(now - chrono::Duration::minutes((pos % 120) as i64));
        }
        if row != sim {
            writes.push(Versioned {
                expected_version: Some(sim.version),
                row,
            });
        }
    }
    fleet
        .apply(
            scope,
            Changeset {
                sims: writes,
                ..Changeset::default()
            },
        )
        .await?;
    for (key, values, description) in [
        (
            "site",
            vec!["berlin", "hamburg", "munich", "vienna", "zurich"],
            "Where the device is installed",
        ),
        ("fleet", vec!["cold-chain", "standard"], "Operational fleet"),
        ("priority", vec!["high", "normal"], "Support priority"),
    ] {
        fleet
            .put_label_suggestion(
                scope,
                tenant.id,
                LabelSuggestion {
                    key: key.into(),
                    values: values.into_iter().map(String::from).collect(),
                    description: Some(description.into()),
                },
            )
            .await?;
    }
    Ok(())
}

/// The first user of each role, in role order.
fn one_per_role(users: Vec<User>) -> Vec<User> {
    Role::ALL
        .iter()
        .filter_map(|r| users.iter().find(|u| u.role == *r).cloned())
        .collect()
}

/// How often the demo's simulators report.
pub const DEMO_TICK: std::time::Duration = std::time::Duration::from_secs(10);

/// The tick at which the demo's incidents happen (their SIMs' history and IMEIs are stored by
/// then), and the index of the first live SIM they happen to (the history's anomalies are on
/// other SIMs: `demo_history::DEMO_SPIKE_SIM` and `DEMO_ROAMING_SIM`).
const DEMO_INCIDENT_TICK: u32 = 3;
const DEMO_INCIDENT_SIMS: usize = 10;
/// SIMs with simulated data sessions (history and live).
pub const DEMO_SESSION_SIMS: usize = 300;
/// Devices reporting telemetry.
pub const DEMO_TELEMETRY_DEVICES: usize = 200;
/// The networks the live SIMs are at home on, in their history as live: SIM `i` (by index among
/// them) on `DEMO_NETWORKS[i % 6]`, so that a session elsewhere is news.
pub const DEMO_NETWORKS: [&str; 6] = ["262-01", "262-02", "262-03", "234-15", "208-01", "310-260"];

/// Keeps the demo alive: 90 days of usage history for the live SIMs once (straight into the usage
/// store, `demo_history`) and a forecast pass over it, then live sessions and device readings every
/// [`DEMO_TICK`] through the real pipeline (the bus and the ingest worker, MQTT or the in-process
/// telemetry feed). Returns what the history holds, when it was written now.
pub async fn animate(
    config: &crate::config::Config,
    engines: &crate::engines::Engines,
    pipeline: &crate::server::pipeline::Pipeline,
    forecasts: &ioto_app::ForecastService,
    tenant: &Tenant,
) -> anyhow::Result<Option<crate::tooling::demo_history::DemoHistory>> {
    use ioto_ingest::simulator::{Incident, LiveSimulator, SessionPlan};
    use ioto_ingest::worker::IngestTopics;

    let all = fleet_page(engines, tenant, DEMO_SESSION_SIMS + DEMO_QUIET_SIMS).await?;
    let quiet: Vec<Iccid> = all.iter().skip(DEMO_SESSION_SIMS).cloned().collect();
    let sims: Vec<Iccid> = all.into_iter().take(DEMO_SESSION_SIMS).collect();
    seed_alerts(engines, tenant, &sims).await?;
    // The quiet SIMs were last seen six hours ago (their sessions below, four to six hours ago,
    // are then news to the store).
    let scope = Scope::tenant(tenant.id);
    let six_hours_ago = Utc::now() - chrono::Duration::hours(6);
    let writes: Vec<Versioned<ioto_domain::fleet::Sim>> = engines
        .fleet
        .sims_by_iccid(scope, &quiet)
        .await?
        .into_iter()
        .filter(|s| s.last_activity_at.is_some_and(|at| at > six_hours_ago))
        .map(|s| {
            let mut row = s.clone();
            row.last_activity_at = Some(six_hours_ago);
            Versioned {
                expected_version: Some(s.version),
                row,
            }
        })
        .collect();
    if !writes.is_empty() {
        engines
            .fleet
            .apply(
                scope,
                Changeset {
                    sims: writes,
                    ..Changeset::default()
                },
            )
            .await?;
    }
    let networks: Vec<MccMnc> = DEMO_NETWORKS
        .iter()
        .filter_map(|c| MccMnc::parse(c).ok())
        .collect();
    let topics = IngestTopics::with_prefix(&config.kafka.topic_prefix);
    topics
        .ensure(engines.bus.as_ref(), config.ingest.partitions)
        .await?;
    // Three months of each SIM's usage on its home network (`networks[index % len]`), as its live
    // sessions are: a session elsewhere is news (the incidents below). Then a forecast pass, so
    // that forecasts and the history's anomalies show at once: the scheduled first pass (30 s
    // after the start) may come before the history is written, and the next one is an hour later.
    let history = match crate::tooling::demo_history::write(engines, tenant, &sims, &networks).await {
        Ok(history) => history,
        Err(e) => {
            tracing::warn!(error = %e, "demo usage history not written");
            None
        }
    };
    if history.is_some() && config.fleet.forecast_minutes > 0 {
        let forecasts = forecasts.clone();
        tokio::spawn(async move {
            match forecasts.pass(Utc::now()).await {
                Ok(p) => tracing::info!(
                    sims = p.sims,
                    forecasts = p.forecasts,
                    anomalies = p.anomalies_new,
                    "demo forecast pass over its history"
                ),
                Err(e) => {
                    tracing::warn!(error = %e, "demo forecast pass failed; the scheduled pass runs next")
                }
            }
        });
    }
    let now = Utc::now();
    let seed = u64::try_from(now.timestamp()).unwrap_or(1);
    // A few SIMs last seen hours ago, and not since: the offline rule finds them.
    let gone_quiet = Arc::new(SessionPlan {
        iccids: quiet,
        from: now - chrono::Duration::hours(6),
        to: now - chrono::Duration::hours(4),
        bytes_min: 50_000,
        bytes_max: 500_000,
        sessions_per_sim: 1,
        update_every: chrono::Duration::minutes(15),
        networks: networks[..1].to_vec(),
        seed: seed + 100,
    });
    let bus = Arc::clone(&engines.bus);
    let t = topics.clone();
    // Within a minute of the start, three SIMs do what the alert rules are there for: one roams
    // abroad, one turns up in another device, one starts a dozen sessions in a row.
    let incidents: Vec<(Iccid, MccMnc, Incident)> = [Incident::Roam, Incident::Swap, Incident::Flap]
        .into_iter()
        .enumerate()
        .filter_map(|(k, incident)| {
            let index = DEMO_INCIDENT_SIMS + k;
            let sim = sims.get(index)?.clone();
            Some((sim, networks[index % networks.len()].clone(), incident))
        })
        .collect();
    let mut live = LiveSimulator::new(sims, networks, seed).staying_home();
    tokio::spawn(async move {
        if let Err(e) = crate::tooling::simulate::publish(&bus, &t, gone_quiet, 0, false).await {
            tracing::warn!(error = %e, "demo sessions of the quiet SIMs not published");
        }
        let mut ticks = 0u32;
        loop {
            ticks += 1;
            let mut events = live.tick(Utc::now());
            if ticks == DEMO_INCIDENT_TICK {
                for (sim, home, incident) in &incidents {
                    events.extend(incident.events(sim, home, Utc::now(), u64::from(ticks)));
                }
            }
            for event in events {
                let sent = match event {
                    ioto_ingest::simulator::SimEvent::Rollup(r) => {
                        bus.publish(&t.sessions, &r.session_id, r.to_json().to_string().as_bytes())
                            .await
                    }
                    ioto_ingest::simulator::SimEvent::Cdr(c) => {
                        bus.publish(&t.cdrs, c.iccid.as_str(), c.to_json().to_string().as_bytes())
                            .await
                    }
                };
                if let Err(e) = sent {
                    tracing::warn!(error = %e, "demo session event not published");
                }
            }
            tokio::time::sleep(DEMO_TICK).await;
        }
    });

    // Telemetry: to the source the platform subscribes to (the MQTT broker or the in-process feed).
    if pipeline.telemetry.is_none() && engines.telemetry.info().engine == "in-process" {
        tracing::info!("device telemetry ingest is off; the demo simulates no readings");
        return Ok(history);
    }
    let (directory, fleet, source) = (
        Arc::clone(&engines.directory),
        Arc::clone(&engines.fleet),
        Arc::clone(&engines.telemetry),
    );
    let opts = crate::tooling::simulate::DeviceOptions {
        tenant: DEMO_TENANT.into(),
        devices: DEMO_TELEMETRY_DEVICES,
        interval: DEMO_TICK,
        count: None,
        seed: 5,
        progress: false,
    };
    tokio::spawn(async move {
        if let Err(e) = crate::tooling::simulate::devices(&directory, &fleet, &source, &opts).await {
            tracing::warn!(error = %e, "demo device simulator stopped");
        }
    });
    Ok(history)
}

/// The ACTIVE SIMs of the demo tenant that get simulated sessions.
/// SIMs whose history ends hours ago (the offline rule's).
pub const DEMO_QUIET_SIMS: usize = 5;
/// SIMs of the live set with a small data quota, crossed as soon as their history is counted.
pub const DEMO_QUOTA_SIMS: usize = 3;

/// The demo's alert rules, and small quotas on a few live SIMs, unless the tenant has rules
/// already: within a minute of starting, quotas are crossed, SIMs found quiet, and the alerts
/// show in the console.
async fn seed_alerts(
    engines: &crate::engines::Engines,
    tenant: &Tenant,
    live: &[Iccid],
) -> anyhow::Result<()> {
    use ioto_domain::alert::{
        AlertRule, AlertTarget, Channels, Condition, Metric, Pacing, RuleSpec, Severity,
    };
    use ioto_domain::quota::{QuotaAction, QuotaRule, QuotaSource, SimQuota};
    let scope = Scope::tenant(tenant.id);
    if !engines.alerts.alert_rules(scope, tenant.id).await?.is_empty() {
        return Ok(());
    }
    let now = Utc::now();
    let rule =
        |name: &str, severity: Severity, metric: Metric, threshold: Option<u64>, state: Option<SimState>| {
            AlertRule {
                id: uuid::Uuid::new_v4(),
                tenant_id: tenant.id,
                spec: RuleSpec {
                    name: name.to_owned(),
                    description: None,
                    enabled: true,
                    severity,
                    target: AlertTarget::AllSims,
                    condition: Condition {
                        metric,
                        threshold,
                        clear_threshold: None,
                        state,
                        telemetry: None,
                        anomaly: None,
                    },
                    channels: Channels::default(),
                    pacing: Pacing {
                        group_wait_seconds: 10,
                        group_interval_seconds: 60,
                        ..Pacing::default()
                    },
                },
                created_by: "demo".into(),
                created_at: now,
                updated_at: now,
                version: 1,
            }
        };
    for r in [
        rule("Gone quiet", Severity::Major, Metric::OfflineHours, Some(3), None),
        rule(
            "Quota nearly used",
            Severity::Warning,
            Metric::QuotaStage,
            Some(80),
            None,
        ),
        rule(
            "Heavy day",
            Severity::Minor,
            Metric::DataInDay,
            Some(50_000_000),
            None,
        ),
        rule(
            "Roaming to a new country",
            Severity::Info,
            Metric::NewCountry,
            None,
            None,
        ),
        rule(
            "Moved to another device",
            Severity::Critical,
            Metric::ImeiChanged,
            None,
            None,
        ),
        rule(
            "Busy SIM",
            Severity::Warning,
            Metric::SessionsInHour,
            Some(10),
            None,
        ),
        rule(
            "Reported lost or stolen",
            Severity::Critical,
            Metric::StateChanged,
            None,
            Some(SimState::LostStolen),
        ),
    ] {
        engines
            .alerts
            .insert_alert_rule(scope, &r, ioto_domain::alert::MAX_RULES_PER_TENANT)
            .await?;
    }
    let sims = engines
        .fleet
        .sims_by_iccid(scope, &live[..live.len().min(DEMO_QUOTA_SIMS)])
        .await?;
    for sim in sims {
        let quota = SimQuota {
            id: uuid::Uuid::new_v4(),
            tenant_id: tenant.id,
            sim_id: sim.id,
            rule: QuotaRule {
                limit_bytes: 5_000_000,
                stages: vec![50, 80],
                action: QuotaAction::Notify,
                resume_next_period: false,
            },
            source: QuotaSource::Sim,
            set_by: "demo".into(),
            created_at: now,
            updated_at: now,
        };
        engines.quotas.put_sim_quota(scope, &quota).await?;
    }
    seed_pool(engines, tenant, live).await
}

/// Live SIMs labelled `pool=demo`, sharing a quota pool they pass within a minute of starting.
pub const DEMO_POOL_SIMS: usize = 10;

/// A quota pool of 100 MB shared by [`DEMO_POOL_SIMS`] live SIMs (after the quota SIMs), which
/// their traffic passes within a minute: the pool's stages and its limit are told, its SIMs keep
/// their service.
async fn seed_pool(engines: &crate::engines::Engines, tenant: &Tenant, live: &[Iccid]) -> anyhow::Result<()> {
    use ioto_domain::fleet::query::LabelFilter;
    use ioto_domain::quota::{QuotaAction, QuotaRule};
    use ioto_domain::quota_pool::{PoolMembers, QuotaPool, MAX_POOLS_PER_TENANT};
    let scope = Scope::tenant(tenant.id);
    let members = live
        .iter()
        .skip(DEMO_QUOTA_SIMS)
        .take(DEMO_POOL_SIMS)
        .cloned()
        .collect::<Vec<_>>();
    let mut writes = Vec::new();
    for s in engines.fleet.sims_by_iccid(scope, &members).await? {
        let mut row = s.clone();
        row.labels.set("pool", "demo")?;
        writes.push(Versioned {
            expected_version: Some(s.version),
            row,
        });
    }
    engines
        .fleet
        .apply(
            scope,
            Changeset {
                sims: writes,
                ..Changeset::default()
            },
        )
        .await?;
    let now = Utc::now();
    let pool = QuotaPool {
        id: uuid::Uuid::new_v4(),
        tenant_id: tenant.id,
        name: "Demo pool".into(),
        members: PoolMembers::Labels(vec![LabelFilter {
            key: "pool".into(),
            value: Some("demo".into()),
        }]),
        rule: QuotaRule {
            limit_bytes: 100_000_000,
            stages: vec![50, 80],
            action: QuotaAction::Notify,
            resume_next_period: false,
        },
        set_by: "demo".into(),
        created_at: now,
        updated_at: now,
    };
    engines
        .quota_pools
        .insert_pool(scope, &pool, MAX_POOLS_PER_TENANT)
        .await?;
    Ok(())
}

async fn fleet_page(
    engines: &crate::engines::Engines,
    tenant: &Tenant,
    n: usize,
) -> anyhow::Result<Vec<Iccid>> {
    use ioto_domain::fleet::query::{Page, SimFilter};
    let filter = SimFilter {
        states: vec![SimState::Active],
        ..SimFilter::default()
    };
    Ok(engines
        .fleet
        .list_sims(Scope::Platform, tenant.id, &filter, &Page::first(n as u64))
        .await?
        .into_iter()
        .map(|s| s.iccid)
        .collect())
}

/// SIMs the demo's example bulk job activates.
pub const DEMO_BULK_SIMS: usize = 60;

/// An example bulk job in the demo's history, once per data directory: the tenant admin
/// activates the first SIMs still in inventory from a file, through the simulated HLR.
pub async fn example_bulk_job(fleet: &ioto_app::FleetService, demo: &Demo) -> anyhow::Result<()> {
    let Some(admin) = demo.users.iter().find(|u| u.role == Role::TenantAdmin) else {
        return Ok(());
    };
    let actor = ioto_domain::Actor {
        user_id: Some(admin.id),
        subject: admin.email.to_string(),
        tenant_id: demo.tenant.id,
        role: admin.role,
        customer_id: None,
        issued_at: None,
        api_key: None,
        session_id: None,
    };
    let existing = fleet
        .bulk_jobs(
            &actor,
            None,
            &ioto_domain::ports::BulkJobQuery {
                limit: 1,
                ..Default::default()
            },
        )
        .await?;
    if !existing.is_empty() {
        return Ok(());
    }
    // SIM i of the seed is in inventory when i % 20 is 0, 1 or 2.
    let mut csv = String::from("ICCID;Action\n");
    for i in (0..DEMO_SIMS).filter(|i| i % 20 <= 2).take(DEMO_BULK_SIMS) {
        let iccid = parse(Iccid::with_check_digit(&format!("8988228066{i:08}")))?;
        csv.push_str(&format!("{iccid};ACTIVATE\n"));
    }
    let submitted = fleet
        .submit_bulk_file(
            &actor,
            ioto_app::fleet::BulkFile {
                tenant_id: None,
                file_name: Some("acme-rollout-activation.csv".into()),
                format: ioto_domain::fleet::import::TableFormat::Csv,
                bytes: csv.into_bytes(),
                action: None,
                note: Some("Example job: activate the SIMs of the Acme roll-out".into()),
            },
        )
        .await?;
    fleet.confirm_bulk_job(&actor, submitted.job.id).await?;
    Ok(())
}
