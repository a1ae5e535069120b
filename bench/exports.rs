//! `ioto-bench exports`: the file writers of export jobs, per format — rows per second and peak
//! memory writing `--rows` rows of 10 columns (text, integers, money, a timestamp, a date, a
//! boolean) in batches as a job hands them over. The rows are generated in memory first per
//! batch; generating them alone is measured too, so the writer's share is known.

use std::time::Instant;

use ioto_domain::export::{ColumnType, ExportBatch, ExportColumn, ExportFormat, ExportKind, ExportMeta};
use ioto_domain::TenantId;

use crate::common::{median_spread, peak_rss_mb};

/// Rows per batch (what a source hands over at once).
const BATCH: usize = 8192;

fn columns() -> Vec<ExportColumn> {
    use ColumnType::*;
    vec![
        ExportColumn::new("iccid", Text),
        ExportColumn::new("customer_name", Text),
        ExportColumn::new("mcc_mnc", Text),
        ExportColumn::new("day", Date),
        ExportColumn::new("first_seen_at", Timestamp),
        ExportColumn::new("records", Int),
        ExportColumn::new("bytes_in", Int),
        ExportColumn::new("bytes_out", Int),
        ExportColumn::new(
            "cost",
            Money {
                scale: 12,
                currency: Some("EUR".into()),
            },
        ),
        ExportColumn::new("roaming", Bool),
    ]
}

/// Rows `from..from + n` of the synthetic export (deterministic).
fn batch(columns: &[ExportColumn], from: usize, n: usize) -> ExportBatch {
    let mut b = ExportBatch::new(columns, n);
    let day0 = chrono::NaiveDate::from_ymd_opt(2026, 11, 1).unwrap_or_default();
    let t0 = 1_793_000_000_000_000_i64;
    for i in from..from + n {
        let sim = i % 100_000;
        b.push_text(0, Some(format!("894902000{sim:010}")));
        b.push_text(1, Some(format!("Customer {}", sim % 250)));
        b.push_text(2, Some(format!("262-0{}", i % 4 + 1)));
        b.push_date(3, day0.checked_add_days(chrono::Days::new((i % 30) as u64)));
        if let ioto_domain::export::ColumnValues::Timestamp(c) = &mut b.columns[4] {
            c.push(Some(t0 + (i as i64) * 1_000_003));
        }
        b.push_int(5, Some((i % 17) as i64 + 1));
        b.push_int(6, Some(((i * 7919) % 50_000_000) as i64));
        b.push_int(7, Some(((i * 104_729) % 5_000_000) as i64));
        b.push_decimal(8, Some(((i as i128) * 1_234_567_891) % 100_000_000_000_000));
        b.push_bool(9, Some(i % 5 == 0));
    }
    b
}

/// Resets the high-water mark to the current resident size (Linux `clear_refs` 5).
fn reset_peak() -> bool {
    std::fs::write("/proc/self/clear_refs", "5").is_ok()
}

struct Run {
    seconds: f64,
    bytes: u64,
    peak_mb: f64,
}

fn write_once(format: ExportFormat, rows: usize, dir: &std::path::Path) -> anyhow::Result<Run> {
    let columns = columns();
    let meta = ExportMeta {
        kind: ExportKind::UsageAnalytics,
        filter: "{\"bench\":true}".into(),
        tenant_id: TenantId::new(),
        created_at: chrono::Utc::now(),
    };
    let path = dir.join(format!("bench.{}", format.extension()));
    let reset = reset_peak();
    let start = Instant::now();
    let mut w = ioto_exports::open_writer(
        format,
        &columns,
        &meta,
        &path,
        &ioto_exports::WriterOptions::default(),
    )
    .map_err(|e| anyhow::anyhow!("{e}"))?;
    let mut done = 0;
    while done < rows {
        let n = BATCH.min(rows - done);
        w.write(&batch(&columns, done, n))
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        done += n;
    }
    let bytes = w.finish().map_err(|e| anyhow::anyhow!("{e}"))?;
    let seconds = start.elapsed().as_secs_f64();
    let peak_mb = if reset { peak_rss_mb() } else { f64::NAN };
    let _ = std::fs::remove_file(&path);
    Ok(Run {
        seconds,
        bytes,
        peak_mb,
    })
}

/// Measures every format (or `only`), `runs` times each; prints a table and returns it.
pub fn exports(rows: usize, runs: usize, only: Option<ExportFormat>) -> anyhow::Result<String> {
    let dir = std::env::temp_dir().join(format!("ioto-bench-exports-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir)?;
    let mut out = String::new();
    // (The machine is printed by the bench command first.)
    out.push_str(&format!(
        "exports: {rows} rows × 10 columns, batches of {BATCH}, {runs} runs per format (median, min–max)\n"
    ));
    // Generating the rows alone: the part of each figure that is not the writer's.
    let columns = columns();
    let mut gen = Vec::new();
    for _ in 0..runs {
        let start = Instant::now();
        let mut done = 0;
        while done < rows {
            let n = BATCH.min(rows - done);
            std::hint::black_box(batch(&columns, done, n));
            done += n;
        }
        gen.push(start.elapsed().as_secs_f64());
    }
    let (g, gmin, gmax) = median_spread(&gen);
    out.push_str(&format!(
        "generating the rows alone: {g:.2} s ({gmin:.2}–{gmax:.2}), {:.0} rows/s\n",
        rows as f64 / g
    ));
    out.push_str("| format | rows/s | rows/s without generating | seconds | file MB | peak RSS MB |\n|---|---:|---:|---:|---:|---:|\n");
    for format in ExportFormat::ALL {
        if only.is_some_and(|o| o != format) {
            continue;
        }
        let mut results = Vec::new();
        for _ in 0..runs {
            results.push(write_once(format, rows, &dir)?);
        }
        let secs: Vec<f64> = results.iter().map(|r| r.seconds).collect();
        let rate: Vec<f64> = secs.iter().map(|s| rows as f64 / s).collect();
        let net: Vec<f64> = secs.iter().map(|s| rows as f64 / (s - g).max(1e-9)).collect();
        let peak: Vec<f64> = results.iter().map(|r| r.peak_mb).collect();
        let (r, rmin, rmax) = median_spread(&rate);
        let (n, nmin, nmax) = median_spread(&net);
        let (s, smin, smax) = median_spread(&secs);
        let (p, pmin, pmax) = median_spread(&peak);
        let mb = results.first().map_or(0.0, |r| r.bytes as f64 / 1_048_576.0);
        out.push_str(&format!(
            "| {format} | {r:.0} ({rmin:.0}–{rmax:.0}) | {n:.0} ({nmin:.0}–{nmax:.0}) | {s:.2} ({smin:.2}–{smax:.2}) | {mb:.1} | {p:.0} ({pmin:.0}–{pmax:.0}) |\n"
        ));
    }
    let _ = std::fs::remove_dir_all(&dir);
    Ok(out)
}
