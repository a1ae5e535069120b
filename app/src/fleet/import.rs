//! Inventory import: check a file, report every bad row, and create the good SIMs in bulk.

use std::sync::Arc;
use std::time::Instant;

use uuid::Uuid;

use super::FleetService;
use ioto_domain::fleet::audit::{parse_note, AuditStamp};
use ioto_domain::fleet::import::{
    mark_taken, seal_rows, CheckedFile, CheckedRow, ImportReport, ImportStages, ImportTarget, TableFormat,
};
use ioto_domain::fleet::sim::NewSim;
use ioto_domain::fleet::AuditAction;
use ioto_domain::{Actor, CustomerId, Error, Permission, Result, SimId, TenantId};

#[derive(Debug, Clone)]
pub struct ImportRequest {
    pub tenant_id: Option<TenantId>,
    /// Every imported SIM goes to this sub-customer (default: the tenant itself).
    pub customer_id: Option<CustomerId>,
    pub format: TableFormat,
    pub bytes: Vec<u8>,
    /// `false`: preview only, nothing is written.
    pub commit: bool,
    /// Commit the good rows even when others have errors.
    pub skip_invalid: bool,
    pub note: Option<String>,
}

impl FleetService {
    /// Checks the file; with `commit`, creates the SIMs (all or nothing) when no row has errors
    /// or `skip_invalid` is set. Each created SIM gets an `IMPORTED` audit entry.
    pub async fn import_sims(&self, actor: &Actor, req: ImportRequest) -> Result<ImportReport> {
        actor.require(Permission::ManageFleet, "import SIMs")?;
        let tenant = actor.target_tenant(req.tenant_id)?;
        self.customer_in(actor, tenant, req.customer_id).await?;
        let note = parse_note(req.note.as_deref())?;
        let target = ImportTarget {
            tenant_id: tenant,
            customer_id: req.customer_id,
        };
        // Reading and checking up to a million rows is CPU work: off the async runtime, a
        // bounded number of files at a time.
        let mut stages = ImportStages::default();
        let started = Instant::now();
        let (reader, bytes, format) = (Arc::clone(&self.reader), req.bytes, req.format);
        let (mut rows, mut errors, non_empty) = crate::lanes::FILES
            .run(move || read_and_check(reader.as_ref(), &bytes, format, target))
            .await??;
        stages.check = started.elapsed();
        let mut stamp = AuditStamp::new(actor, note);
        let id = Uuid::new_v4();
        stamp.note = Some(match stamp.note.take() {
            Some(n) => format!("import {id}: {n}"),
            None => format!("import {id}"),
        });
        // A clean file being committed goes straight to the insert: the unique constraints check
        // the inventory in the same statement. Only when they object is the inventory searched
        // row by row, to say which rows are taken.
        if req.commit && errors.is_empty() && !rows.is_empty() {
            let (returned, created) = self.create(actor, rows, &stamp, id, &mut stages).await?;
            match created {
                Ok(created) => {
                    return Ok(ImportReport {
                        rows: non_empty,
                        valid: returned.len(),
                        errors,
                        import_id: Some(id),
                        created: created.len() as u64,
                        stages,
                    })
                }
                Err(Error::Conflict(_)) => rows = returned,
                Err(e) => return Err(e),
            }
        }
        let started = Instant::now();
        let taken = self
            .store
            .taken_identifiers(
                &rows.iter().map(|r| r.sim.iccid.to_string()).collect::<Vec<_>>(),
                &rows.iter().map(|r| r.sim.imsi.to_string()).collect::<Vec<_>>(),
                &rows
                    .iter()
                    .filter_map(|r| r.sim.msisdn.as_ref().map(ToString::to_string))
                    .collect::<Vec<_>>(),
            )
            .await?;
        stages.inventory = started.elapsed();
        let rows = mark_taken(rows, &taken, &mut errors);
        let mut report = ImportReport {
            rows: non_empty,
            valid: rows.len(),
            errors,
            import_id: None,
            created: 0,
            stages,
        };
        if !req.commit || rows.is_empty() || (!report.errors.is_empty() && !req.skip_invalid) {
            return Ok(report);
        }
        let (_, created) = self.create(actor, rows, &stamp, id, &mut report.stages).await?;
        let created = created.map_err(|e| match e {
            Error::Conflict(m) => Error::Conflict(format!(
                "{m}; the inventory changed while importing and nothing was imported, \
                 preview the file again"
            )),
            other => other,
        })?;
        report.import_id = Some(id);
        report.created = created.len() as u64;
        Ok(report)
    }

    /// Seals the rows (in place, off the async runtime) and creates their SIMs (all or nothing),
    /// adding both steps' time to `stages`. The rows come back beside the insert's outcome, so a
    /// conflict can be explained row by row without having copied them.
    async fn create(
        &self,
        actor: &Actor,
        mut rows: Vec<CheckedRow>,
        stamp: &AuditStamp,
        id: Uuid,
        stages: &mut ImportStages,
    ) -> Result<(Vec<CheckedRow>, Result<Vec<SimId>>)> {
        let started = Instant::now();
        let cipher = Arc::clone(&self.cipher);
        let rows = crate::lanes::FILES
            .run(move || seal_rows(&mut rows, &cipher).map(|()| rows))
            .await??;
        stages.seal += started.elapsed();
        let started = Instant::now();
        let sims: Vec<&NewSim> = rows.iter().map(|r| &r.sim).collect();
        let created = self
            .store
            .insert_sims(actor.scope(), &sims, AuditAction::Imported, stamp, Some(id))
            .await;
        drop(sims);
        stages.write += started.elapsed();
        Ok((rows, created))
    }
}

/// Reads the uploaded file with `reader` and checks every row ([`check_rows`](ioto_domain::fleet::import::check_rows)): the CPU part of
/// an import before anything is sealed or written.
pub fn read_and_check(
    reader: &dyn ioto_domain::ports::TableReader,
    bytes: &[u8],
    format: TableFormat,
    target: ImportTarget,
) -> Result<CheckedFile> {
    read_and_check_on(reader, bytes, format, target, ioto_domain::parallel::cores())
}

/// [`read_and_check`] with the rows checked on at most `threads` threads.
pub fn read_and_check_on(
    reader: &dyn ioto_domain::ports::TableReader,
    bytes: &[u8],
    format: TableFormat,
    target: ImportTarget,
    threads: usize,
) -> Result<CheckedFile> {
    ioto_domain::fleet::import::check_rows_on(&reader.read(bytes, format)?, target, threads)
}
