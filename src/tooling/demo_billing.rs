//! The demo's billing: a retail and a supplier rate card for the demo tenant (seeded once) and
//! ratings of the open period soon after the simulated history is counted, so costs are on
//! screen within the first minute.

use std::time::Duration;

use chrono::{Months, Utc};
use ioto_app::billing::{BillingService, NewRateCard};
use ioto_domain::billing::money::{Currency, Price};
use ioto_domain::billing::rate_card::{
    BillingPeriod, RateCardKind, RateCardTerms, TariffOverride, Zone, ZonePrice,
};
use ioto_domain::directory::Tenant;
use ioto_domain::identifiers::MccMnc;
use ioto_domain::{Actor, Role};

/// How often the demo rates its open period (the configured interval is usually an hour).
const DEMO_RATING_EVERY: Duration = Duration::from_secs(30);
/// How often it rates until a rating finds usage: the simulated history is counted within
/// seconds of the start, and its cost should be on screen as soon as it is.
const DEMO_FIRST_RATING_EVERY: Duration = Duration::from_secs(3);

fn parse<T>(r: ioto_domain::Result<T>) -> anyhow::Result<T> {
    r.map_err(|e| anyhow::anyhow!("{e}"))
}

fn zone(
    name: &str,
    networks: &[&str],
    countries: &[&str],
    price: &str,
    is_default: bool,
) -> anyhow::Result<Zone> {
    Ok(Zone {
        name: name.into(),
        networks: networks
            .iter()
            .map(|n| parse(MccMnc::parse(n)))
            .collect::<anyhow::Result<_>>()?,
        countries: countries.iter().map(|c| (*c).to_owned()).collect(),
        price_per_mb: parse(Price::parse("pricePerMb", price))?,
        is_default,
    })
}

/// Prices from the first day of last month: home networks, Europe, the rest of the world.
fn terms(home: &str, europe: &str, world: &str, fee: &str) -> anyhow::Result<RateCardTerms> {
    let this_month = BillingPeriod::Monthly.period_of(Utc::now().date_naive()).0;
    Ok(RateCardTerms {
        effective_from: this_month - Months::new(1),
        rounding_increment_bytes: 1_024,
        access_fee: parse(Price::parse("accessFee", fee))?,
        zones: vec![
            zone("Home", &["262-01", "262-02", "262-03"], &[], home, false)?,
            zone(
                "Europe",
                &[],
                &["FR", "GB", "NL", "AT", "CH", "IT", "ES"],
                europe,
                false,
            )?,
            zone("World", &[], &[], world, true)?,
        ],
        overrides: vec![TariffOverride {
            tariff_plan: "IoT Unlimited".into(),
            access_fee: Some(parse(Price::parse("accessFee", "4.90"))?),
            zone_prices: vec![ZonePrice {
                zone: "Home".into(),
                price_per_mb: parse(Price::parse("pricePerMb", "0.002"))?,
            }],
        }],
    })
}

/// Creates the demo tenant's cards unless it has them.
pub async fn seed(billing: &BillingService, tenant: &Tenant) -> anyhow::Result<()> {
    let admin = Actor {
        user_id: None,
        subject: "demo".into(),
        tenant_id: tenant.id,
        role: Role::PlatformAdmin,
        customer_id: None,
        issued_at: None,
        api_key: None,
        session_id: None,
    };
    if !billing.rate_cards(&admin, Some(tenant.id)).await?.is_empty() {
        return Ok(());
    }
    let eur = parse(Currency::parse("currency", "EUR"))?;
    for (kind, name, t) in [
        (
            RateCardKind::Retail,
            "Demo retail",
            terms("0.010", "0.025", "0.120", "1.50")?,
        ),
        (
            RateCardKind::Supplier,
            "Wholesale (demo)",
            terms("0.004", "0.012", "0.060", "0.40")?,
        ),
    ] {
        billing
            .create_rate_card(
                &admin,
                NewRateCard {
                    tenant_id: tenant.id,
                    kind,
                    name: name.into(),
                    currency: eur,
                    billing_period: BillingPeriod::Monthly,
                    versions: vec![t],
                },
            )
            .await?;
    }
    Ok(())
}

/// Rates the demo's open periods every [`DEMO_FIRST_RATING_EVERY`] until a rating finds usage,
/// then every [`DEMO_RATING_EVERY`].
pub fn rate_regularly(billing: BillingService) {
    tokio::spawn(async move {
        let mut every = DEMO_FIRST_RATING_EVERY;
        loop {
            tokio::time::sleep(every).await;
            match billing.rate_open_periods(Utc::now().date_naive()).await {
                Ok(runs) if runs.iter().any(|r| r.totals.records > 0) => every = DEMO_RATING_EVERY,
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "demo rating failed"),
            }
        }
    });
}
