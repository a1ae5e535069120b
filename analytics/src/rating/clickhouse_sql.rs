//! The same rating as one ClickHouse statement, for `ioto-bench rating` to compare against the
//! Polars engine (time and result). Cards with one version and no tariff overrides only: the
//! statement looks zones up with `transform` over the version's networks.

use ioto_domain::billing::rating::RatingJob;
use ioto_domain::{Error, Result};
use uuid::Uuid;

use crate::clickhouse::ClickHouseUsage;

impl ClickHouseUsage {
    /// Rates `job`'s CDRs with SQL into `rated_usage` under `run`.
    pub async fn rate_in_sql(&self, job: &RatingJob, run: Uuid) -> Result<()> {
        let [version] = job.card.versions.as_slice() else {
            return Err(Error::invalid(
                "card",
                "the SQL rating takes cards of one version",
            ));
        };
        let terms = &version.terms;
        if !terms.overrides.is_empty() || terms.zones.iter().any(|z| !z.countries.is_empty()) {
            return Err(Error::invalid(
                "card",
                "the SQL rating takes zones of networks, without overrides",
            ));
        }
        let default = terms
            .zones
            .iter()
            .position(|z| z.is_default)
            .ok_or_else(|| Error::invalid("card", "no default zone"))?;
        let (mut nets, mut names, mut prices) = (Vec::new(), Vec::new(), Vec::new());
        for z in &terms.zones {
            for n in &z.networks {
                nets.push(format!("'{n}'"));
                names.push(format!("'{}'", z.name.replace('\'', "")));
                prices.push(z.price_per_mb.micros().to_string());
            }
        }
        let inc = terms.rounding_increment_bytes.max(1);
        let (nets, names, prices) = (nets.join(","), names.join(","), prices.join(","));
        let default_name = terms.zones[default].name.replace('\'', "");
        let default_price = terms.zones[default].price_per_mb.micros();
        let rounded = format!("intDiv(bytes_in + bytes_out + {inc} - 1, {inc}) * {inc}");
        let idx = format!("indexOf([{nets}], mcc_mnc)");
        let sql = format!(
            "INSERT INTO rated_usage SELECT toUUID(?) AS run_id, toUUID(tenant_id), ? AS kind, \
               toUUID(if(customer_id = '', '00000000-0000-0000-0000-000000000000', customer_id)), iccid, day, mcc_mnc, \
               if({idx} = 0, '{default_name}', arrayElement([{names}], {idx})) AS zone, '' AS tariff_plan, \
               count() AS records, sum(bytes_in), sum(bytes_out), sum({rounded}) AS rounded_bytes, \
               sum(toDecimal128({rounded}, 0) \
                   * toDecimal128(if({idx} = 0, {default_price}, arrayElement([{prices}], {idx})), 0) \
                   * toDecimal128('0.000000000001', 12)) AS cost \
             FROM cdrs WHERE tenant_id = ? AND day >= toDate(?) AND day < toDate(?) \
             GROUP BY tenant_id, customer_id, iccid, day, mcc_mnc, zone"
        );
        self.client
            .query(&sql)
            .bind(run.to_string())
            .bind(job.card.kind.as_str())
            .bind(job.tenant_id.to_string())
            .bind(job.from.to_string())
            .bind(job.to.to_string())
            .execute()
            .await
            .map_err(|e| self.err(e))
    }

    /// Waits until this database has no unfinished mutations (the `ALTER … DELETE` that removes
    /// a replaced run's rows runs in the background), so a bench's next run starts on a settled
    /// store; polls every 100 ms.
    pub async fn settle_mutations(&self) -> Result<()> {
        self.settle_mutations_where(|_| true, None).await.map(|_| ())
    }
}
