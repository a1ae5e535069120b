//! Cumulative session counters to usage deltas.
//!
//! A rollup carries the bytes of its session so far. The usage between two rollups of one session
//! is the difference of their counters, attributed to the hour (and so the day) of the later
//! rollup: an update at 00:05 reporting traffic since 23:55 counts on the new day. Redelivered or
//! stale rollups (not newer than what was counted, with counters not above it) add nothing, so
//! replaying a partition after a crash counts nothing twice.

use chrono::{DateTime, Utc};

use super::events::{Rejection, SessionRollup};
use crate::usage::{period_start, Granularity};

/// What has been counted of one session so far.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionProgress {
    pub session_id: String,
    /// Time of the session's first counted update.
    pub started_at: DateTime<Utc>,
    pub last_event: DateTime<Utc>,
    pub bytes_in: u64,
    pub bytes_out: u64,
}

/// Usage to add, attributed to `hour`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsageDelta {
    pub hour: DateTime<Utc>,
    pub bytes_in: u64,
    pub bytes_out: u64,
}

/// The result of one rollup against the progress counted before it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Count `delta`; the session's progress becomes `progress`.
    Count {
        delta: UsageDelta,
        progress: SessionProgress,
    },
    /// Already counted (a redelivery, or an older update arriving late).
    AlreadyCounted,
}

/// Applies `rollup` to the session's `previous` progress (none for a new session).
pub fn step(previous: Option<&SessionProgress>, rollup: &SessionRollup) -> Result<Step, Rejection> {
    let (base_in, base_out) = match previous {
        None => (0, 0),
        Some(p) => {
            let not_newer = rollup.event_timestamp <= p.last_event;
            let not_above = rollup.total_bytes_in <= p.bytes_in && rollup.total_bytes_out <= p.bytes_out;
            if not_newer && not_above {
                return Ok(Step::AlreadyCounted);
            }
            if rollup.total_bytes_in < p.bytes_in || rollup.total_bytes_out < p.bytes_out {
                return Err(Rejection::CountersWentBackwards {
                    session_id: rollup.session_id.clone(),
                    detail: format!(
                        "in {} → {}, out {} → {} at {}",
                        p.bytes_in,
                        rollup.total_bytes_in,
                        p.bytes_out,
                        rollup.total_bytes_out,
                        rollup.event_timestamp
                    ),
                });
            }
            (p.bytes_in, p.bytes_out)
        }
    };
    let last_event = previous.map_or(rollup.event_timestamp, |p| {
        p.last_event.max(rollup.event_timestamp)
    });
    Ok(Step::Count {
        delta: UsageDelta {
            hour: period_start(rollup.event_timestamp, Granularity::Hour),
            bytes_in: rollup.total_bytes_in - base_in,
            bytes_out: rollup.total_bytes_out - base_out,
        },
        progress: SessionProgress {
            session_id: rollup.session_id.clone(),
            started_at: previous.map_or(rollup.event_timestamp, |p| {
                p.started_at.min(rollup.event_timestamp)
            }),
            last_event,
            bytes_in: rollup.total_bytes_in,
            bytes_out: rollup.total_bytes_out,
        },
    })
}

/// The update to write for a rollup that counted `delta`, leaving its session at `progress`.
pub fn counted_update(
    tenant_id: crate::TenantId,
    customer_id: Option<crate::CustomerId>,
    rollup: &SessionRollup,
    delta: &UsageDelta,
    progress: &SessionProgress,
) -> crate::usage::SessionUpdate {
    use super::events::RequestType;
    crate::usage::SessionUpdate {
        tenant_id,
        customer_id,
        iccid: rollup.iccid.clone(),
        session_id: rollup.session_id.clone(),
        started_at: progress.started_at,
        event_time: rollup.event_timestamp,
        hour: delta.hour,
        mcc_mnc: rollup.mcc_mnc.clone(),
        rat: rollup.radio_access_type,
        ip_address: rollup.ip_address,
        cell_id: rollup.cell_id.clone(),
        terminated: rollup.request_type == RequestType::Terminate,
        total_in: progress.bytes_in,
        total_out: progress.bytes_out,
        delta_in: delta.bytes_in,
        delta_out: delta.bytes_out,
        imei: rollup.imei.as_ref().map(|i| i.as_str().to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identifiers::{Iccid, MccMnc};
    use crate::usage::events::RequestType;
    use crate::usage::rat::RadioAccessType;

    fn at(t: &str, bytes_in: u64, bytes_out: u64) -> SessionRollup {
        SessionRollup {
            session_id: "s".into(),
            iccid: Iccid::with_check_digit("894900000000000001").unwrap(),
            event_timestamp: DateTime::parse_from_rfc3339(t).unwrap().with_timezone(&Utc),
            mcc_mnc: MccMnc::parse("262-01").unwrap(),
            radio_access_type: RadioAccessType::Lte,
            ip_address: None,
            total_bytes_in: bytes_in,
            total_bytes_out: bytes_out,
            request_type: RequestType::Update,
            cell_id: None,
            imei: None,
        }
    }

    fn count(prev: Option<&SessionProgress>, r: &SessionRollup) -> (UsageDelta, SessionProgress) {
        match step(prev, r).unwrap() {
            Step::Count { delta, progress } => (delta, progress),
            Step::AlreadyCounted => panic!("expected a count"),
        }
    }

    #[test]
    fn a_session_across_midnight_counts_on_both_days() {
        let (d1, p1) = count(None, &at("2026-11-21T23:50:00Z", 100, 10));
        assert_eq!(
            (d1.bytes_in, d1.hour.to_rfc3339().as_str()),
            (100, "2026-11-21T23:00:00+00:00")
        );
        let (d2, p2) = count(Some(&p1), &at("2026-11-22T00:10:00Z", 150, 30));
        assert_eq!((d2.bytes_in, d2.bytes_out), (50, 20));
        assert_eq!(d2.hour.to_rfc3339(), "2026-11-22T00:00:00+00:00");
        // The two deltas add up to the session's total.
        assert_eq!(d1.bytes_in + d2.bytes_in, p2.bytes_in);
    }

    #[test]
    fn redelivery_counts_nothing_and_backwards_counters_are_rejected() {
        let (_, p1) = count(None, &at("2026-11-22T10:00:00Z", 100, 10));
        let (_, p2) = count(Some(&p1), &at("2026-11-22T10:05:00Z", 120, 12));
        assert_eq!(
            step(Some(&p2), &at("2026-11-22T10:05:00Z", 120, 12)).unwrap(),
            Step::AlreadyCounted
        );
        assert_eq!(
            step(Some(&p2), &at("2026-11-22T10:00:00Z", 100, 10)).unwrap(),
            Step::AlreadyCounted
        );
        let err = step(Some(&p2), &at("2026-11-22T10:10:00Z", 90, 12)).unwrap_err();
        assert_eq!(err.code(), "COUNTERS_WENT_BACKWARDS");
        // A keep-alive (same counters, later) counts zero and moves the clock.
        let (d, p3) = count(Some(&p2), &at("2026-11-22T10:20:00Z", 120, 12));
        assert_eq!((d.bytes_in, d.bytes_out), (0, 0));
        assert_eq!(p3.last_event.to_rfc3339(), "2026-11-22T10:20:00+00:00");
    }

    #[test]
    fn any_replay_of_a_prefix_adds_up_to_the_total() {
        // Deliver 1..=n rollups, replaying every earlier one after each: the sum stays exact.
        let rollups: Vec<_> = (1..=20u64)
            .map(|i| at(&format!("2026-11-22T10:{:02}:00Z", i), i * 1000, i * 10))
            .collect();
        let mut progress: Option<SessionProgress> = None;
        let mut total = 0;
        for (i, r) in rollups.iter().enumerate() {
            for replay in rollups[..=i].iter().chain(std::iter::once(r)) {
                if let Step::Count { delta, progress: p } = step(progress.as_ref(), replay).unwrap() {
                    total += delta.bytes_in;
                    progress = Some(p);
                }
            }
        }
        assert_eq!(total, 20_000);
    }

    proptest::proptest! {
        /// Whatever order and however often a session's rollups arrive (with increasing
        /// counters and times), the counted deltas add up to the session's last totals, and no
        /// delta is negative.
        #[test]
        fn deltas_add_up_to_the_totals_under_any_redelivery(
            increments in proptest::collection::vec((0u64..1_000_000, 0u64..1_000_000), 1..30),
            order in proptest::collection::vec(0usize..1000, 0..120),
        ) {
            let mut totals = (0u64, 0u64);
            let rollups: Vec<_> = increments
                .iter()
                .enumerate()
                .map(|(i, (a, b))| {
                    totals = (totals.0 + a, totals.1 + b);
                    let t = chrono::DateTime::from_timestamp(1_790_000_000 + 300 * i as i64, 0).unwrap();
                    at(&t.to_rfc3339(), totals.0, totals.1)
                })
                .collect();
            // Arbitrary redeliveries first, then every rollup in order (the last one included).
            let deliveries = order.iter().map(|i| &rollups[i % rollups.len()]).chain(rollups.iter());
            let mut progress: Option<SessionProgress> = None;
            let (mut sum_in, mut sum_out) = (0u64, 0u64);
            for r in deliveries {
                match step(progress.as_ref(), r) {
                    Ok(Step::Count { delta, progress: p }) => {
                        sum_in += delta.bytes_in;
                        sum_out += delta.bytes_out;
                        progress = Some(p);
                    }
                    Ok(Step::AlreadyCounted) => {}
                    // An older rollup after a newer one with higher counters is refused, never counted.
                    Err(e) => proptest::prop_assert_eq!(e.code(), "COUNTERS_WENT_BACKWARDS"),
                }
            }
            proptest::prop_assert_eq!((sum_in, sum_out), totals);
        }
    }
}
