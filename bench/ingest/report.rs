//! What the ingest bench prints: one run's figures, and several runs side by side.

use super::{rate, IngestFigures};

use std::time::Duration;

use ioto_domain::ports::EngineWork;

/// The figures of several runs side by side: median and spread (min–max) of each.
pub fn print_summary(runs: &[IngestFigures]) {
    use crate::common::median_spread;
    type Figure = (&'static str, fn(&IngestFigures) -> f64);
    let figures: [Figure; 7] = [
        ("ingest, events/s", |f| rate(f.events_in_steady as f64, f.steady)),
        ("broker read alone, events/s", |f| {
            rate(f.events as f64, f.read_only)
        }),
        ("bare insert, rows/s", |f| rate(f.raw_rows as f64, f.raw_insert)),
        ("event → live view p50, ms", |f| pct_of(&f.latencies, 0.5)),
        ("event → live view p99, ms", |f| pct_of(&f.latencies, 0.99)),
        ("event → live view max, ms", |f| pct_of(&f.latencies, 1.0)),
        ("probes not seen within 30 s", |f| f.lost_probes as f64),
    ];
    println!();
    println!(
        "summary of {} runs (each on its own topics, SIMs and data dir):",
        runs.len()
    );
    println!("| figure | median | spread (min–max) | each run |");
    println!("|---|---:|---:|---|");
    let row = |name: &str, values: &[f64]| {
        let (median, min, max) = median_spread(values);
        println!(
            "| {name} | {median:.0} | {min:.0}–{max:.0} | {} |",
            values
                .iter()
                .map(|v| format!("{v:.0}"))
                .collect::<Vec<_>>()
                .join(", ")
        );
    };
    for (name, get) in figures {
        let values: Vec<f64> = runs.iter().map(get).collect();
        row(name, &values);
    }
    // What the usage engine did beside the worker under the live load (ClickHouse).
    type Work = (&'static str, fn(&EngineWork, Duration) -> f64);
    let work: [Work; 3] = [
        ("live load: engine parts written per s", |w, t| {
            w.parts_written as f64 / t.as_secs_f64().max(1e-9)
        }),
        ("live load: merge threads, ms per s", |w, t| {
            w.merge_time.as_secs_f64() * 1000.0 / t.as_secs_f64().max(1e-9)
        }),
        ("live load: rows merged per 10 rows inserted", |w, _| {
            merge_amplification(w) * 10.0
        }),
    ];
    if runs.iter().all(|f| f.live_work.is_some()) {
        for (name, get) in work {
            let values: Vec<f64> = runs
                .iter()
                .filter_map(|f| f.live_work.as_ref().map(|w| get(w, f.live_time)))
                .collect();
            row(name, &values);
        }
    }
    // Each stage's p99 under the live load, run by run: the stage that moves is named.
    let stages: Vec<Vec<ioto_ingest::stages::StageSummary>> =
        runs.iter().map(|f| f.live_stages.summary()).collect();
    for (i, first) in stages.first().into_iter().flatten().enumerate() {
        let values: Vec<f64> = stages
            .iter()
            .map(|s| {
                s.get(i)
                    .and_then(|s| s.p99)
                    .map_or(f64::NAN, |d| d.as_secs_f64() * 1000.0)
            })
            .collect();
        row(
            &format!("stage `{}` p99 (bucket bound), ms", first.stage),
            &values,
        );
    }
}

/// Rows the engine's merges rewrote per row its inserts wrote.
fn merge_amplification(w: &EngineWork) -> f64 {
    w.merged_rows as f64 / (w.rows_written as f64).max(1.0)
}

/// The `p`-quantile of `v` in milliseconds (nearest rank).
fn pct_of(v: &[Duration], p: f64) -> f64 {
    let mut l = v.to_vec();
    l.sort();
    l.get(
        ((l.len() as f64 * p).ceil() as usize)
            .saturating_sub(1)
            .min(l.len().saturating_sub(1)),
    )
    .map_or(f64::NAN, |d| d.as_secs_f64() * 1000.0)
}

pub fn print(f: &IngestFigures) {
    println!(
        "engines: {}",
        f.engines
            .iter()
            .map(|(p, e)| format!("{p}={e}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    println!(
        "backlog: {} session rollups of {} SIMs, produced in {:.1} s ({:.0}/s)",
        f.events,
        f.sims,
        f.produce.as_secs_f64(),
        rate(f.events as f64, f.produce)
    );
    println!(
        "broker read alone (consumer, no counting): {:.0} events/s",
        rate(f.events as f64, f.read_only)
    );
    let pipeline = rate(f.events_in_steady as f64, f.steady);
    let raw = rate(f.raw_rows as f64, f.raw_insert);
    println!(
        "ingest (broker → worker → usage store, committed): {:.0} events/s over {:.1} s (first batch after {:.1} s)",
        pipeline,
        f.steady.as_secs_f64(),
        f.join.as_secs_f64()
    );
    if f.steady < Duration::from_secs(1) {
        println!(
            "  (the backlog was counted in under a second: too small for a steady figure; use --events 100000 or more)"
        );
    }
    println!(
        "bare insert of the same rows: {:.0} rows/s ({} rows in {:.1} s); pipeline / bare insert = {:.2}",
        raw,
        f.raw_rows,
        f.raw_insert.as_secs_f64(),
        pipeline / raw.max(1e-9)
    );
    let pct = |p: f64| pct_of(&f.latencies, p);
    let l = &f.latencies;
    println!(
        "event → live session visible, under {} events/s: p50 {:.0} ms, p95 {:.0} ms, p99 {:.0} ms, max {:.0} ms ({} probes, {} not seen within 30 s)",
        f.live_rate,
        pct(0.5),
        pct(0.95),
        pct(0.99),
        pct(1.0),
        l.len(),
        f.lost_probes
    );
    println!(
        "  of which the broker acknowledging the publish: p50 {:.0} ms, p99 {:.0} ms",
        pct_of(&f.publish_latencies, 0.5),
        pct_of(&f.publish_latencies, 0.99)
    );
    println!(
        "  new sessions during the live load: {} known new by the worker's filter of stored sessions, {} looked up in the usage store",
        f.live_known_new, f.live_looked_up
    );
    if let Some(w) = &f.live_work {
        let secs = f.live_time.as_secs_f64().max(1e-9);
        println!(
            "  the usage engine's own work during the live load ({:.1} s; server-wide counters): {} inserts ({:.1}/s) wrote {} parts ({:.0}/s) of {} rows; background merges rewrote {} rows ({:.1}× the rows inserted) in {:.1} s of merge threads ({:.2} per second of the live load); statement threads {:.1} s of CPU",
            secs,
            w.inserts,
            w.inserts as f64 / secs,
            w.parts_written,
            w.parts_written as f64 / secs,
            w.rows_written,
            w.merged_rows,
            merge_amplification(w),
            w.merge_time.as_secs_f64(),
            w.merge_time.as_secs_f64() / secs,
            w.statement_cpu.as_secs_f64()
        );
    }
    println!("  the worker's stages during the live load (bucket bounds, at most √2 above the true value):");
    println!("  | stage | per | observations | p50 ms | p95 ms | p99 ms |");
    println!("  |---|---|---:|---:|---:|---:|");
    let ms = |d: Option<Duration>| d.map_or("–".to_owned(), |d| format!("{:.1}", d.as_secs_f64() * 1000.0));
    for s in f.live_stages.summary() {
        let per = if matches!(s.stage, "in_broker" | "visible" | "counted") {
            "event"
        } else {
            "batch"
        };
        println!(
            "  | {} | {per} | {} | {} | {} | {} |",
            s.stage,
            s.observations,
            ms(s.p50),
            ms(s.p95),
            ms(s.p99)
        );
    }
}
