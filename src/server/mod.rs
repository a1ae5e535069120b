//! The server: configuration → engines → services → schema → router, and serving with graceful
//! shutdown. Its parts are the modules below.

pub mod auth;
pub mod bulk;
pub mod caller;
pub mod exports;
pub mod http;
pub mod imports;
pub mod listen;
pub mod metrics;
pub mod notify;
pub mod pipeline;
pub mod realtime;
pub mod rest;
pub mod scheduler;
pub mod session;
pub mod state;
pub mod web;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use axum::Router;
use ioto_app::{DirectoryService, FleetService};
use ioto_domain::fleet::SecretCipher;
use ioto_resolvers::Services;
use tokio::net::TcpListener;
use tokio::sync::watch;

use self::state::AppState;
use crate::config::Config;
use crate::engines::{self, Engines};
use crate::server::auth::{hs256_secret, Jwt, JwtIssuer};
use crate::server::metrics::Metrics;
use crate::server::pipeline::Pipeline;
use crate::server::realtime::BusRealtime;
use crate::server::session::SessionCheck;

/// A built server, ready to serve.
pub struct App {
    pub router: Router,
    pub engines: Engines,
    pub jwt: Arc<Jwt>,
    pub directory: DirectoryService,
    pub fleet: FleetService,
    pub billing: ioto_app::billing::BillingService,
    pub analytics: ioto_app::AnalyticsService,
    /// Forecasts and anomalies (the pass runs on the schedule of `fleet.forecast_minutes`; tools
    /// and tests run it at will).
    pub forecasts: ioto_app::ForecastService,
    /// The ingest pipeline running in this process (empty when `ingest.enabled` is off).
    pub pipeline: Pipeline,
    /// Realtime events of every instance (what subscriptions follow).
    pub realtime: Arc<BusRealtime>,
    shutdown: watch::Sender<bool>,
    grace: Duration,
    bounds: listen::Bounds,
}

/// The JWT configuration, with the HS256 secret taken from config or the data directory.
pub async fn jwt(config: &Config) -> anyhow::Result<Jwt> {
    let secret = if config.auth.algorithm == crate::config::JwtAlgorithm::HS256 {
        Some(hs256_secret(config.auth.jwt_secret.as_ref(), &config.data_dir)?)
    } else {
        None
    };
    Jwt::from_config(&config.auth, secret.as_ref()).await
}

/// The key sealing SIM secrets: configured, or generated once into the data directory.
pub fn fleet_cipher(config: &Config) -> anyhow::Result<SecretCipher> {
    let key = match &config.fleet.secret_key {
        Some(k) => k.expose().to_owned(),
        None => crate::server::auth::data_dir_secret(
            &config.data_dir,
            "fleet-secret-key",
            SecretCipher::generate_key,
        )?,
    };
    SecretCipher::from_base64(&key).map_err(|e| anyhow::anyhow!("{e}"))
}

/// Where finished export files are kept.
pub fn export_dir(config: &Config) -> std::path::PathBuf {
    config
        .exports
        .dir
        .clone()
        .unwrap_or_else(|| config.data_dir.join("exports"))
}

/// Where finished export files go: the S3 bucket when one is configured, else the directory.
pub fn export_storage(config: &Config) -> anyhow::Result<Arc<dyn ioto_domain::ports::export::ExportStorage>> {
    let s3 = &config.exports.s3;
    Ok(match &s3.bucket {
        Some(bucket) => Arc::new(
            ioto_exports::S3Storage::new(&ioto_exports::S3Settings {
                endpoint: s3.endpoint.clone(),
                bucket: bucket.clone(),
                region: s3.region.clone(),
                prefix: s3.prefix.clone(),
                access_key_id: s3.access_key_id.clone(),
                secret_access_key: s3
                    .secret_access_key
                    .as_ref()
                    .map(|k| k.expose().to_owned())
                    .unwrap_or_default(),
                path_style: s3.path_style,
            })
            .map_err(|e| anyhow::anyhow!("{e}"))?,
        ),
        None => {
            Arc::new(ioto_exports::LocalStorage::new(export_dir(config)).map_err(|e| anyhow::anyhow!("{e}"))?)
        }
    })
}

/// The download-link signer: the configured key, or one generated once into the data directory.
pub fn export_link_signer(config: &Config) -> anyhow::Result<crate::server::exports::LinkSigner> {
    let key = match &config.exports.link_key {
        Some(k) => k.expose().to_owned(),
        None => crate::server::auth::data_dir_secret(
            &config.data_dir,
            "export-link-key",
            crate::server::auth::random_hex_key,
        )?,
    };
    Ok(crate::server::exports::LinkSigner::new(&key))
}

impl App {
    pub async fn build(config: &Config) -> anyhow::Result<Self> {
        let engines = engines::connect(config).await?;
        Self::with_engines(config, engines).await
    }

    pub async fn with_engines(config: &Config, engines: Engines) -> anyhow::Result<Self> {
        let jwt = Arc::new(jwt(config).await?);
        let (shutdown, shutdown_rx) = watch::channel(false);
        let realtime = BusRealtime::start(
            Arc::clone(&engines.bus),
            &engines.topic_prefix,
            shutdown_rx.clone(),
        )
        .await?;
        let pipeline = if config.ingest.enabled {
            crate::server::pipeline::start(config, &engines, Arc::clone(&realtime), shutdown_rx).await?
        } else {
            Pipeline::default()
        };
        let cipher = Arc::new(fleet_cipher(config)?);
        let directory = DirectoryService::new(Arc::clone(&engines.directory))
            .with_key_checks_every(Duration::from_secs(config.auth.session_check_seconds))
            .with_session_policy(ioto_app::SessionPolicy {
                lifetime: chrono::Duration::days(config.auth.session_days as i64),
                idle: chrono::Duration::hours(config.auth.session_idle_hours as i64),
            })
            .with_secret_cipher(Arc::clone(&cipher));
        let fleet = FleetService::new(
            Arc::clone(&engines.fleet),
            Arc::clone(&engines.bulk_jobs),
            Arc::clone(&engines.notifications),
            cipher,
            Arc::new(ioto_imports::TableFiles),
            realtime.clone(),
            engines.network.clone(),
        )
        .with_network_slots(config.network.max_in_flight)
        .with_network_patience(std::time::Duration::from_secs(
            config.bulk.network_patience_seconds,
        ))
        .with_webhook_policy(crate::server::notify::address_policy(&config.notifications));
        crate::server::bulk::spawn(fleet.clone(), config.bulk.clone(), shutdown.subscribe());
        crate::server::notify::spawn(
            fleet.clone(),
            config.notifications.clone(),
            &config.smtp,
            shutdown.subscribe(),
        )?;
        if config.fleet.scheduler_interval_seconds > 0 {
            crate::server::scheduler::spawn(
                fleet.clone(),
                Duration::from_secs(config.fleet.scheduler_interval_seconds),
                shutdown.subscribe(),
            );
        }
        if config.fleet.counter_compaction_seconds > 0 {
            crate::server::scheduler::spawn_counter_compaction(
                Arc::clone(&engines.analytics),
                Duration::from_secs(config.fleet.counter_compaction_seconds),
                shutdown.subscribe(),
            );
        }
        let quotas = ioto_app::QuotaService::new(
            Arc::clone(&engines.quotas),
            fleet.clone(),
            engines.usage.clone(),
            ioto_app::QuotaEvaluator::new(
                Arc::clone(&engines.quotas),
                engines.usage.clone(),
                realtime.clone(),
                Some(fleet.delivery_wakeup()),
            ),
        )
        .with_pools(
            Arc::clone(&engines.quota_pools),
            realtime.clone(),
            Some(fleet.delivery_wakeup()),
        );
        let forecasts = ioto_app::ForecastService::new(
            engines.forecast_ports(realtime.clone(), Some(fleet.delivery_wakeup())),
            fleet.clone(),
        );
        if config.fleet.forecast_minutes > 0 {
            crate::server::scheduler::spawn_forecasts(
                forecasts.clone(),
                Duration::from_secs(config.fleet.forecast_minutes * 60),
                shutdown.subscribe(),
            );
        }
        let billing = engines.billing_service();
        let alerts = ioto_app::AlertService::new(
            Arc::clone(&engines.alerts),
            fleet.clone(),
            ioto_app::AlertEvaluator::new(
                Arc::clone(&engines.alerts),
                Arc::clone(&engines.fleet),
                engines.usage.clone(),
                realtime.clone(),
                Some(fleet.delivery_wakeup()),
            )
            .with_billing(billing.clone()),
        );
        if config.fleet.alert_tick_seconds > 0 {
            crate::server::scheduler::spawn_alerts(
                alerts.evaluator().clone(),
                ioto_resolvers::Realtime::fleet_events(realtime.as_ref()),
                Duration::from_secs(config.fleet.alert_tick_seconds),
                shutdown.subscribe(),
            );
        }
        if config.fleet.quota_sweep_seconds > 0 {
            crate::server::scheduler::spawn_quotas(
                quotas.clone(),
                ioto_resolvers::Realtime::fleet_events(realtime.as_ref()),
                Duration::from_secs(config.fleet.quota_sweep_seconds),
                shutdown.subscribe(),
            );
        }
        if config.rating.interval_minutes > 0 {
            crate::server::scheduler::spawn_rating(
                billing.clone(),
                Duration::from_secs(config.rating.interval_minutes * 60),
                shutdown.subscribe(),
            );
        }
        // Reads of the API count as store queries of the request they serve.
        let metered = Arc::new(ioto_app::usage::MeteredUsage(engines.usage.clone()));
        let analytics = ioto_app::AnalyticsService::new(
            metered.clone(),
            engines.analytics.clone(),
            engines.fleet.clone(),
            billing.clone(),
        );
        let usage = ioto_app::UsageService::new(metered.clone(), metered);
        let export_storage = export_storage(config)?;
        tracing::info!(location = %export_storage.location(), "export files");
        let export_links = Arc::new(export_link_signer(config)?);
        let exports = ioto_app::ExportService::new(
            Arc::clone(&engines.export_jobs),
            realtime.clone(),
            fleet.clone(),
            usage.clone(),
            billing.clone(),
            analytics.clone(),
            ioto_app::export::ExportSettings {
                retention: Duration::from_secs(config.exports.retention_seconds),
            },
        );
        crate::server::exports::spawn(
            exports.clone(),
            Arc::clone(&export_storage),
            config.exports.clone(),
            config.data_dir.join("exports-scratch"),
            shutdown.subscribe(),
        );
        let rate_limiter = Arc::new(ioto_resolvers::rate_limit::RateLimiter::new(
            config.rate_limit.limits(),
        ));
        let services = Services {
            exports: exports.clone(),
            export_links: export_links.clone(),
            analytics: analytics.clone(),
            billing: billing.clone(),
            directory: directory.clone(),
            fleet: fleet.clone(),
            quotas,
            alerts,
            forecasts: forecasts.clone(),
            usage,
            tokens: Arc::new(JwtIssuer {
                jwt: Arc::clone(&jwt),
                access_ttl: Duration::from_secs(config.auth.access_token_minutes * 60),
            }),
            realtime: realtime.clone(),
            rate_limiter: Arc::clone(&rate_limiter),
            subscription_recheck: Duration::from_secs(config.auth.session_check_seconds.max(1)),
            provision_wait: ioto_app::fleet::ProvisionWait {
                limit: config.bulk.provision_wait_limit,
                timeout: Duration::from_secs(config.bulk.provision_wait_seconds),
                lease: Duration::from_secs(config.bulk.lease_seconds),
            },
        };
        let schema = ioto_schema::build(
            services,
            ioto_schema::Limits {
                max_depth: config.graphql.max_depth,
                max_complexity: config.graphql.max_complexity,
                introspection: config.graphql.introspection,
                max_concurrent_root_fields: config.graphql.max_concurrent_root_fields,
            },
        );
        let state = AppState {
            schema,
            jwt: Arc::clone(&jwt),
            engines: engines.clone(),
            metrics: Arc::new(Metrics::new(pipeline.clone(), Arc::clone(&engines.fleet))),
            sessions: Arc::new(SessionCheck::new(
                directory.clone(),
                Duration::from_secs(config.auth.session_check_seconds),
            )),
            playground: config.graphql.playground,
            console: config.http.console,
            web_dir: config.http.web_dir.clone(),
            fleet: fleet.clone(),
            pipeline: pipeline.clone(),
            exports,
            export_storage,
            export_links,
            rate_limiter,
            trusted_proxies: config.http.trusted_proxy_blocks()?.into(),
            upload_max_bytes: config.fleet.import_max_bytes as u64,
            ws: state::WsBounds {
                init_timeout: Duration::from_secs(config.graphql.ws_init_timeout_seconds),
                max_subscriptions: config.graphql.max_subscriptions_per_connection,
                max_message_bytes: config.graphql.body_limit_bytes,
            },
        };
        Ok(Self {
            router: http::router(state, config),
            engines,
            jwt,
            directory,
            fleet,
            billing,
            analytics,
            forecasts,
            pipeline,
            realtime,
            shutdown,
            grace: Duration::from_secs(config.http.shutdown_grace_seconds),
            bounds: listen::Bounds {
                max_connections: config.http.max_connections,
                max_per_client: config.http.max_connections_per_client,
                shared_peers: config.http.trusted_proxy_blocks()?.into(),
                header_read_timeout: Duration::from_secs(config.http.header_read_timeout_seconds),
            },
        })
    }

    pub async fn bind(config: &Config) -> anyhow::Result<TcpListener> {
        let addr: SocketAddr = config.listen_addr()?;
        TcpListener::bind(addr)
            .await
            .with_context(|| format!("binding {addr} (is another server running there?)"))
    }

    /// Serves until `signal` resolves; then completes subscriptions, lets in-flight requests finish
    /// (up to the grace period) and returns.
    pub async fn serve(
        self,
        listener: TcpListener,
        signal: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let shutdown = self.shutdown.clone();
        let graceful = async move {
            signal.await;
            tracing::info!("shutting down: completing subscriptions, finishing in-flight requests");
            let _ = shutdown.send(true);
        };
        listen::serve(listener, self.router, self.bounds, graceful, self.grace).await
    }
}

/// Resolves on SIGTERM or Ctrl-C.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
}
