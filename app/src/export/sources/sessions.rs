//! A SIM's session history: its session updates newest first.

use super::*;

use async_trait::async_trait;

use crate::export::ExportService;
use ioto_domain::export::{ColumnType, ExportBatch, ExportColumn};
use ioto_domain::fleet::sim::Sim;
use ioto_domain::ports::export::ExportSource;
use ioto_domain::ports::HistoryQuery;
use ioto_domain::{Actor, Error, Iccid, Result};

pub(super) fn session_columns() -> Vec<ExportColumn> {
    use ColumnType::*;
    vec![
        col("iccid", Text),
        col("session_id", Text),
        col("at", Timestamp),
        col("mcc_mnc", Text),
        col("radio_access_type", Text),
        col("ip_address", Text),
        col("cell_id", Text),
        col("bytes_in", Int),
        col("bytes_out", Int),
        col("session_bytes_in", Int),
        col("session_bytes_out", Int),
        col("session_started_at", Timestamp),
        col("ended", Bool),
    ]
}

pub(super) struct Sessions {
    pub(super) columns: Vec<ExportColumn>,
    pub(super) svc: ExportService,
    pub(super) actor: Actor,
    pub(super) iccid: Iccid,
    pub(super) query: HistoryQuery,
    pub(super) sim: Option<Sim>,
    pub(super) pages: Keyset<(chrono::DateTime<chrono::Utc>, String)>,
}

impl Sessions {
    async fn sim(&mut self) -> Result<Sim> {
        if let Some(s) = &self.sim {
            return Ok(s.clone());
        }
        let sim = self
            .svc
            .fleet
            .sim(&self.actor, &self.iccid)
            .await?
            .ok_or_else(|| Error::not_found("SIM", &self.iccid))?;
        self.sim = Some(sim.clone());
        Ok(sim)
    }
}

#[async_trait]
impl ExportSource for Sessions {
    fn columns(&self) -> &[ExportColumn] {
        &self.columns
    }

    async fn expected_rows(&mut self) -> Result<Option<u64>> {
        let sim = self.sim().await?;
        let probe = HistoryQuery {
            limit: 1,
            before: None,
            ..self.query.clone()
        };
        self.svc.usage.session_history(&self.actor, &sim, &probe).await?;
        Ok(None)
    }

    async fn next_batch(&mut self) -> Result<Option<ExportBatch>> {
        let sim = self.sim().await?;
        let (svc, actor, query, sim) = (&self.svc, &self.actor, &self.query, &sim);
        let read = |before: Option<(chrono::DateTime<chrono::Utc>, String)>| async move {
            let query = HistoryQuery {
                before: before.or_else(|| query.before.clone()),
                limit: BATCH_ROWS,
                ..query.clone()
            };
            svc.usage.session_history(actor, sim, &query).await
        };
        // A customer user's page may hold fewer rows than asked (updates from before the SIM
        // was theirs are left out): only an empty page ends the history (`Keyset::until_empty`).
        let Some(rows) = self
            .pages
            .next(read, |u| (u.event_time, u.session_id.clone()))
            .await?
        else {
            return Ok(None);
        };
        let mut b = ExportBatch::new(&self.columns, rows.len());
        for u in &rows {
            b.push_text(0, text(&u.iccid));
            b.push_text(1, Some(u.session_id.clone()));
            b.push_timestamp(2, Some(u.event_time));
            b.push_text(3, text(&u.mcc_mnc));
            b.push_text(4, text(u.rat.name()));
            b.push_text(5, u.ip_address.map(|ip| ip.to_string()));
            b.push_text(6, u.cell_id.clone());
            b.push_int(7, int(u.delta_in));
            b.push_int(8, int(u.delta_out));
            b.push_int(9, int(u.total_in));
            b.push_int(10, int(u.total_out));
            b.push_timestamp(11, Some(u.started_at));
            b.push_bool(12, Some(u.terminated));
        }
        Ok(Some(b))
    }
}
