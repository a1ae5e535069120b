//! Quotas set from a file: every row checked (cells, ICCIDs repeated, SIMs the caller manages in
//! the tenant) before anything is written; nothing written unless asked, and then only a file
//! without errors, or its good rows when the caller asks to skip the others.
//!
//! ```text
//! upload ─► size bound ─► read (CSV/XLSX, off the runtime) ─► check rows (domain)
//!   ─► look the ICCIDs up among the caller's SIMs of the tenant (10,000 at a time)
//!   ─► report ─► commit: quotas set, quotas removed (10,000 at a time)
//!   ─► evaluate the tenant's quotas / SIMs follow their defaults again
//! ```

use std::collections::HashMap;
use std::sync::Arc;

use chrono::Utc;
use ioto_domain::fleet::bulk::MAX_BULK_FILE_BYTES;
use ioto_domain::fleet::import::TableFormat;
use ioto_domain::identifiers::Iccid;
use ioto_domain::quota::{QuotaSource, SimQuota};
use ioto_domain::quota_import::{check_quota_table, QuotaChange, QuotaFile, QuotaRowError};
use ioto_domain::{Actor, Error, Permission, Result, SimId, TenantId};
use uuid::Uuid;

use super::QuotaService;

/// ICCIDs looked up, and quotas written or removed, at a time.
const IMPORT_CHUNK: usize = 10_000;
/// Row errors a report lists at most; [`QuotaImportReport::invalid`] counts every bad row.
pub const MAX_REPORTED_ERRORS: usize = 1_000;

/// A quota file to check and, perhaps, apply.
#[derive(Debug, Clone)]
pub struct QuotaImportRequest {
    /// Platform admins: the tenant whose SIMs the file names (default: the caller's).
    pub tenant: Option<TenantId>,
    pub format: TableFormat,
    /// The file as it arrived (a caller reading an upload stops past [`MAX_BULK_FILE_BYTES`]).
    pub bytes: Vec<u8>,
    /// `false`: check and report only, nothing is written.
    pub commit: bool,
    /// With `commit`: write the good rows even when others have errors.
    pub skip_invalid: bool,
}

/// What checking, and perhaps applying, a quota file found and did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct QuotaImportReport {
    /// Data rows in the file (blank lines not counted).
    pub rows: usize,
    /// Rows without errors.
    pub valid: usize,
    /// Rows with at least one error.
    pub invalid: usize,
    /// Quotas set (committed), or that committing would set.
    pub set: u64,
    /// Quotas removed by REMOVE rows (committed), or that committing would remove.
    pub removed: u64,
    /// REMOVE rows whose SIM has no quota of its own (nothing to remove).
    pub unchanged: u64,
    /// Whether the good rows were written.
    pub committed: bool,
    /// What is wrong with the bad rows, in file order: the first [`MAX_REPORTED_ERRORS`].
    pub errors: Vec<QuotaRowError>,
    /// What is wrong with the file as a whole (its header); when there is anything, no row was
    /// checked and nothing can be written.
    pub file_errors: Vec<String>,
}

impl QuotaImportReport {
    fn of(file: QuotaFile) -> Self {
        let mut errors = file.errors;
        errors.truncate(MAX_REPORTED_ERRORS);
        Self {
            rows: file.rows,
            valid: file.good.len(),
            invalid: file.invalid,
            errors,
            file_errors: file.file_errors,
            ..Self::default()
        }
    }
}

impl QuotaService {
    /// Checks a quota file (one rule per row: see [`ioto_domain::quota_import`]) and reports
    /// every bad row; with `commit`, sets and removes the rows' quotas when no row has errors or
    /// `skip_invalid` is set. Quotas set override the SIMs' defaults and are measured against
    /// what the SIMs used this period at once; SIMs whose quota was removed follow their
    /// defaults again.
    pub async fn import_sim_quotas(
        &self,
        actor: &Actor,
        req: QuotaImportRequest,
    ) -> Result<QuotaImportReport> {
        actor.require(Permission::ManageFleet, "set quotas")?;
        let tenant = actor.target_tenant(req.tenant)?;
        if req.bytes.is_empty() {
            return Err(Error::invalid("file", "is empty"));
        }
        if req.bytes.len() > MAX_BULK_FILE_BYTES {
            return Err(Error::invalid(
                "file",
                format!(
                    "is too large: a quota file may be at most {} MB ({MAX_BULK_FILE_BYTES} bytes); split it",
                    MAX_BULK_FILE_BYTES / 1_048_576
                ),
            ));
        }
        // Reading and checking up to 100,000 rows is CPU work: off the async runtime, in the lane
        // imports and bulk files share.
        let (reader, bytes, format) = (Arc::clone(self.fleet.reader()), req.bytes, req.format);
        let mut file = crate::lanes::FILES
            .run(move || {
                reader
                    .read(&bytes, format)
                    .and_then(|table| check_quota_table(&table))
            })
            .await??;
        if !file.file_errors.is_empty() {
            if req.commit {
                return Err(Error::invalid("file", file.file_errors.join("; ")));
            }
            return Ok(QuotaImportReport::of(file));
        }

        // Only SIMs the caller manages in the tenant: any other ICCID is told as one that does
        // not exist, so a file cannot probe for SIMs elsewhere.
        let scope = actor.scope();
        let iccids: Vec<Iccid> = file.good.iter().map(|r| r.iccid.clone()).collect();
        let mut sims: HashMap<Iccid, SimId> = HashMap::with_capacity(iccids.len());
        for chunk in iccids.chunks(IMPORT_CHUNK) {
            for s in self.fleet.store().sims_by_iccid(scope, chunk).await? {
                if s.tenant_id == tenant && scope.admits(s.tenant_id, s.customer_id) {
                    sims.insert(s.iccid, s.id);
                }
            }
        }
        file.mark_unknown(|iccid| sims.contains_key(iccid));

        if req.commit && file.invalid > 0 && !req.skip_invalid {
            let rows = if file.invalid == 1 {
                "1 row has errors".to_owned()
            } else {
                format!("{} rows have errors", file.invalid)
            };
            return Err(Error::invalid(
                "file",
                format!("{rows}; fix them or ask to skip them (skipInvalid): nothing was written"),
            ));
        }

        let now = Utc::now();
        let mut quotas = Vec::new();
        let mut removals: Vec<(Iccid, SimId)> = Vec::new();
        for row in &file.good {
            let Some(&sim_id) = sims.get(&row.iccid) else {
                continue;
            };
            match &row.change {
                QuotaChange::Set(rule) => quotas.push(SimQuota {
                    id: Uuid::new_v4(),
                    tenant_id: tenant,
                    sim_id,
                    rule: rule.clone(),
                    source: QuotaSource::Sim,
                    set_by: actor.subject.clone(),
                    created_at: now,
                    updated_at: now,
                }),
                QuotaChange::Remove => removals.push((row.iccid.clone(), sim_id)),
            }
        }

        if !req.commit {
            // What committing would do: every rule set, and the quotas of their own that the
            // REMOVE rows' SIMs have.
            let mut own = 0;
            let remove_iccids: Vec<Iccid> = removals.iter().map(|(i, _)| i.clone()).collect();
            for chunk in remove_iccids.chunks(IMPORT_CHUNK) {
                own += self
                    .store
                    .quotas_of(chunk)
                    .await?
                    .iter()
                    .filter(|t| t.quota.tenant_id == tenant && t.quota.source == QuotaSource::Sim)
                    .count() as u64;
            }
            let mut report = QuotaImportReport::of(file);
            report.set = quotas.len() as u64;
            report.removed = own;
            report.unchanged = (removals.len() as u64).saturating_sub(own);
            return Ok(report);
        }

        let mut set = 0;
        for chunk in quotas.chunks(IMPORT_CHUNK) {
            set += self.store.put_sim_quotas(scope, chunk).await?;
        }
        let mut removed = 0;
        let ids: Vec<SimId> = removals.iter().map(|(_, id)| *id).collect();
        for chunk in ids.chunks(IMPORT_CHUNK) {
            removed += self.store.delete_sim_quotas(scope, chunk).await?;
        }
        // As when quotas are set by filter: the new limits apply to what the SIMs used already,
        // and SIMs without a quota of their own any more follow their defaults.
        if set > 0 {
            self.evaluate_tenant(tenant, now).await?;
        }
        if removed > 0 {
            self.follow_defaults(tenant, Utc::now()).await?;
        }
        let mut report = QuotaImportReport::of(file);
        report.set = set;
        report.removed = removed;
        report.unchanged = (ids.len() as u64).saturating_sub(removed);
        report.committed = true;
        Ok(report)
    }
}
