//! One SIM's simulated history as the sessions that carry it. Each simulated day becomes one
//! closed session per network the SIM was seen on that day (its bytes split three to one when
//! there are two), or a session storm's many short ones; on the real networks its own home
//! network stands for ([`super::networks`]) and in its real devices (the one it is in now for the
//! simulator's last). Pure: events and rows are made from the plan, nothing is sent from here.

use std::collections::BTreeSet;

use chrono::{DateTime, Days, Duration, NaiveDate, NaiveTime, Utc};
use ioto_domain::fleet::Imei;
use ioto_domain::identifiers::{Iccid, MccMnc};
use ioto_domain::usage::{Cdr, RadioAccessType, RequestType, SessionRollup};
use ioto_forecast::anomaly::{bytes_text, AnomalyKind};
use ioto_forecast::series::add_days;
use ioto_forecast::simulate::{DeviceProfile, InjectedAnomaly, SimulatedSim, SplitMix64};
use ioto_ingest::simulator::{device_imei, SimEvent};

use super::networks::{country_name, network_name, Catalogue, NetworkMap};

/// Most sessions of a session storm's day: the simulator's count up to this (a gateway's storm
/// would be thousands; the detector needs 50).
pub const MAX_STORM_SESSIONS: u32 = 500;
/// The ground truth's header (RFC 4180, CRLF line ends like every row).
pub const TRUTH_HEADER: &str = "iccid,kind,anomaly_kind,day,detail\r\n";

const DAY_SECONDS: u32 = 86_400;
/// A day's (first) session starts between 06:00 and 20:00 …
const FIRST_START: u32 = 6 * 3_600;
const START_SPAN: u32 = 14 * 3_600;
/// … and lasts 10 minutes to 2 hours.
const SHORTEST: u32 = 600;
const LENGTH_SPAN: u32 = 6_600;
/// The session on a day's second network starts half an hour after the first ends, for 15 minutes.
const SECOND_GAP: u32 = 1_800;
const SECOND_LENGTH: u32 = 900;
/// A storm's sessions last a minute each, spread over the day.
const STORM_LENGTH: u32 = 60;
/// Mixed into the seed of the stream that draws session times: not the simulator's own stream.
const TIMES_STREAM: u64 = 0x5E55_1045_71DE_0001;
/// The rating group of the simulated CDRs (as the session simulator's).
const RATING_GROUP: u32 = 10;

/// One planned day of a SIM.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PlannedDay {
    /// Bytes of the day, in and out together.
    pub bytes: u64,
    /// Sessions carrying them: none on a day without traffic, one per network the SIM was seen
    /// on (one or two), or a session storm's many.
    pub sessions: u32,
    /// The network of its (first) session: an index into [`PlannedSim::networks`].
    pub network: usize,
    /// The second network the SIM was seen on that day, if any.
    pub second_network: Option<usize>,
    /// The device it was in: an index into [`PlannedSim::imeis`].
    pub imei: usize,
    /// When its first session starts, in seconds after midnight (UTC), and for how long.
    start_second: u32,
    length_seconds: u32,
}

/// A labelled anomaly of the ground truth.
#[derive(Debug, Clone, PartialEq)]
pub struct TruthRow {
    pub iccid: Iccid,
    /// The simulated device kind.
    pub profile: DeviceProfile,
    pub kind: AnomalyKind,
    /// The labelled day (the detector's "today" when it finds it).
    pub day: NaiveDate,
    /// What happened, in words: the bytes, the sessions, the network or the device.
    pub detail: String,
}

impl TruthRow {
    /// The row as an RFC 4180 line: `iccid,kind,anomaly_kind,day,detail` and CRLF.
    pub fn csv_line(&self) -> String {
        format!(
            "{},{},{},{},{}\r\n",
            self.iccid,
            self.profile.as_str(),
            self.kind.as_str(),
            self.day,
            csv_field(&self.detail)
        )
    }
}

/// A field quoted when it holds a comma, a quote or a line break (quotes doubled).
pub fn csv_field(text: &str) -> String {
    if text.contains([',', '"', '\r', '\n']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text.to_owned()
    }
}

/// One closed session of a planned day.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedSession {
    pub id: String,
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    pub network: MccMnc,
    /// In and out together.
    pub bytes: u64,
    pub imei: Option<Imei>,
}

/// A SIM's history to write: the simulated SIM's days on real networks and in real devices.
#[derive(Debug, Clone)]
pub struct PlannedSim {
    pub iccid: Iccid,
    pub profile: DeviceProfile,
    pub first_day: NaiveDate,
    pub days: Vec<PlannedDay>,
    /// The networks it uses, its home network first.
    pub networks: Vec<MccMnc>,
    /// The devices it was in, in the order it was first in them.
    pub imeis: Vec<Option<Imei>>,
    /// Its labelled anomalies.
    pub truth: Vec<TruthRow>,
    /// Each day's usual bytes (without noise or anomalies), as simulated.
    usual: Vec<f64>,
    seed: u64,
}

impl PlannedSim {
    /// The history of the SIM `iccid`, at home on `home`, that the simulated `sim` (with its
    /// `injected` anomalies) stands for, from `first_day`; `seed` names its sessions and draws
    /// their times.
    pub fn new(
        iccid: Iccid,
        home: &MccMnc,
        sim: &SimulatedSim,
        injected: &[InjectedAnomaly],
        first_day: NaiveDate,
        seed: u64,
        catalogue: &mut Catalogue,
    ) -> Self {
        let abroad: BTreeSet<NaiveDate> = injected
            .iter()
            .filter(|anomaly| anomaly.kind == AnomalyKind::NewCountry)
            .flat_map(|anomaly| {
                let days = anomaly.magnitude.max(1.0) as u64;
                (0..days).filter_map(move |k| anomaly.day.checked_add_days(Days::new(k)))
            })
            .collect();
        let mut map = NetworkMap::new(catalogue, home, &sim.networks, &abroad);
        let mut networks = vec![home.clone()];

        // Devices: the simulator's last is the one the SIM is in now, the IMEI its live sessions
        // report (`device_imei`); the earlier ones are the simulator's.
        let mut imei_texts: Vec<String> = Vec::new();
        for seen in &sim.imeis {
            if !imei_texts.contains(&seen.imei) {
                imei_texts.push(seen.imei.clone());
            }
        }
        let current = sim.imeis.last().map(|seen| seen.imei.clone());
        let mut imeis: Vec<Option<Imei>> = imei_texts
            .iter()
            .map(|text| {
                if current.as_ref() == Some(text) {
                    device_imei(&iccid)
                } else {
                    Imei::parse(text).ok()
                }
            })
            .collect();
        if imeis.is_empty() {
            imeis.push(device_imei(&iccid));
        }

        let mut rng = SplitMix64::for_stream(seed ^ TIMES_STREAM, sim.id as u64);
        let mut seen = sim.networks.iter().peekable();
        let mut sightings = sim.imeis.iter().peekable();
        let mut imei = 0;
        let mut days = Vec::with_capacity(sim.daily_bytes.len());
        for (index, (&simulated_bytes, &simulated_sessions)) in
            sim.daily_bytes.iter().zip(&sim.daily_sessions).enumerate()
        {
            let date = add_days(first_day, index);
            // Drawn every day, so that a day's times do not depend on the days before.
            let start_second = FIRST_START + rng.below(START_SPAN as usize) as u32;
            let length_seconds = SHORTEST + rng.below(LENGTH_SPAN as usize) as u32;
            let mut on: Vec<usize> = Vec::new();
            while let Some(network_day) = seen.next_if(|network_day| network_day.day <= date) {
                if network_day.day == date {
                    let real = map.real(network_day);
                    on.push(index_in(&mut networks, real));
                }
            }
            while let Some(sighting) = sightings.next_if(|sighting| sighting.at <= date) {
                imei = imei_texts
                    .iter()
                    .position(|text| *text == sighting.imei)
                    .unwrap_or(imei);
            }
            let bytes = if simulated_bytes.is_finite() && simulated_bytes > 0.0 {
                simulated_bytes.round() as u64
            } else {
                0
            };
            let storm = injected
                .iter()
                .any(|anomaly| anomaly.kind == AnomalyKind::SessionStorm && anomaly.day == date);
            let sessions = if storm {
                simulated_sessions.clamp(1, MAX_STORM_SESSIONS)
            } else if bytes == 0 && on.is_empty() {
                0
            } else {
                on.len().clamp(1, 2) as u32
            };
            days.push(PlannedDay {
                bytes,
                sessions,
                network: on.first().copied().unwrap_or(0),
                second_network: on.get(1).copied().filter(|_| !storm),
                imei,
                start_second,
                length_seconds,
            });
        }
        let mut plan = Self {
            iccid,
            profile: sim.profile,
            first_day,
            days,
            networks,
            imeis,
            truth: Vec::new(),
            usual: sim.usual_bytes.clone(),
            seed,
        };
        plan.truth = injected
            .iter()
            .map(|anomaly| TruthRow {
                iccid: plan.iccid.clone(),
                profile: plan.profile,
                kind: anomaly.kind,
                day: anomaly.day,
                detail: plan.detail(anomaly),
            })
            .collect();
        plan
    }

    /// The SIM's home network.
    pub fn home(&self) -> &MccMnc {
        &self.networks[0]
    }

    /// The date of day `day` (0 is the first).
    pub fn date(&self, day: usize) -> NaiveDate {
        add_days(self.first_day, day)
    }

    /// The index of `date` among the planned days, if it is one.
    pub fn day_of(&self, date: NaiveDate) -> Option<usize> {
        let index = usize::try_from((date - self.first_day).num_days()).ok()?;
        (index < self.days.len()).then_some(index)
    }

    /// Day `day`'s usual bytes as simulated (its level, weekday and trend, without noise).
    pub fn usual(&self, day: usize) -> f64 {
        self.usual.get(day).copied().unwrap_or(0.0)
    }

    /// Makes day `day` carry `bytes` (an anomaly the caller labels), in one session at least.
    pub fn set_bytes(&mut self, day: usize, bytes: u64) {
        if let Some(planned) = self.days.get_mut(day) {
            planned.bytes = bytes;
            planned.sessions = planned.sessions.max(1);
        }
    }

    /// Puts the SIM on `network` on day `day`, instead of the networks it was on.
    pub fn put_on(&mut self, day: usize, network: MccMnc) {
        let index = index_in(&mut self.networks, network);
        if let Some(planned) = self.days.get_mut(day) {
            planned.network = index;
            planned.second_network = None;
            if planned.sessions <= 2 {
                planned.sessions = 1;
            }
        }
    }

    /// The closed sessions of day `day`, in the order they started.
    pub fn sessions(&self, day: usize) -> Vec<PlannedSession> {
        let Some(planned) = self.days.get(day) else {
            return Vec::new();
        };
        let date = self.date(day);
        let midnight = date.and_time(NaiveTime::MIN).and_utc();
        let imei = self.imeis.get(planned.imei).cloned().flatten();
        let session = |k: u32, from: u32, length: u32, network: usize, bytes: u64| PlannedSession {
            id: format!("history-{}-{}-{date}-{k}", self.seed, self.iccid),
            start: midnight + Duration::seconds(i64::from(from)),
            end: midnight + Duration::seconds(i64::from(from + length)),
            network: self.networks.get(network).unwrap_or_else(|| self.home()).clone(),
            bytes,
            imei: imei.clone(),
        };
        let (start, length) = (planned.start_second, planned.length_seconds);
        match (planned.sessions, planned.second_network) {
            (0, _) => Vec::new(),
            (1, _) => vec![session(0, start, length, planned.network, planned.bytes)],
            (2, Some(second)) => {
                let elsewhere = planned.bytes / 4;
                vec![
                    session(0, start, length, planned.network, planned.bytes - elsewhere),
                    session(1, start + length + SECOND_GAP, SECOND_LENGTH, second, elsewhere),
                ]
            }
            (n, _) => {
                // A storm: short sessions spread over the day, the bytes shared between them.
                let count = u64::from(n);
                let spread = u64::from(DAY_SECONDS - 2 * STORM_LENGTH);
                (0..n)
                    .map(|k| {
                        let share = planned.bytes / count + if k == 0 { planned.bytes % count } else { 0 };
                        let from = u32::try_from(u64::from(k) * spread / count).unwrap_or(0);
                        session(k, from, STORM_LENGTH, planned.network, share)
                    })
                    .collect()
            }
        }
    }

    /// Day `day`'s traffic until `until` (a time on that day): its bytes times the share of the
    /// day gone, in one session on its network ending at `until`. None in the day's first minute
    /// or on a day without traffic.
    pub fn day_so_far(&self, day: usize, until: DateTime<Utc>) -> Option<PlannedSession> {
        let planned = self.days.get(day)?;
        if planned.sessions == 0 {
            return None;
        }
        let date = self.date(day);
        let midnight = date.and_time(NaiveTime::MIN).and_utc();
        let gone = (until - midnight).num_seconds();
        if !(60..i64::from(DAY_SECONDS)).contains(&gone) {
            return None;
        }
        let bytes = (planned.bytes as f64 * gone as f64 / f64::from(DAY_SECONDS)).round() as u64;
        Some(PlannedSession {
            id: format!("history-{}-{}-{date}-so-far", self.seed, self.iccid),
            start: until - Duration::seconds(gone.min(1_800)),
            end: until,
            network: self
                .networks
                .get(planned.network)
                .unwrap_or_else(|| self.home())
                .clone(),
            bytes,
            imei: self.imeis.get(planned.imei).cloned().flatten(),
        })
    }

    /// The session's bytes in and out: cameras send most of theirs, the others receive.
    fn split(&self, bytes: u64) -> (u64, u64) {
        match self.profile {
            DeviceProfile::Camera => (bytes / 5, bytes - bytes / 5),
            _ => (bytes - bytes / 5, bytes / 5),
        }
    }

    /// The session's one rollup, as mediation reports a session closed at once: a TERMINATE at its
    /// end with its totals (contract version 2, with the device's IMEI).
    pub fn rollup(&self, session: &PlannedSession) -> SessionRollup {
        let (bytes_in, bytes_out) = self.split(session.bytes);
        SessionRollup {
            session_id: session.id.clone(),
            iccid: self.iccid.clone(),
            event_timestamp: session.end,
            mcc_mnc: session.network.clone(),
            radio_access_type: radio(self.profile),
            ip_address: None,
            total_bytes_in: bytes_in,
            total_bytes_out: bytes_out,
            request_type: RequestType::Terminate,
            cell_id: None,
            imei: session.imei.clone(),
        }
    }

    /// The session's CDR, carrying the same bytes.
    pub fn cdr(&self, session: &PlannedSession) -> Cdr {
        let (bytes_in, bytes_out) = self.split(session.bytes);
        Cdr {
            cdr_id: format!("cdr-{}", session.id),
            iccid: self.iccid.clone(),
            start: session.start,
            end: session.end,
            mcc_mnc: session.network.clone(),
            bytes_in,
            bytes_out,
            rating_group: RATING_GROUP,
        }
    }

    /// Day `day`'s events: each session's rollup, then its CDR.
    pub fn events(&self, day: usize) -> Vec<SimEvent> {
        self.sessions(day)
            .iter()
            .flat_map(|session| {
                [
                    SimEvent::Rollup(self.rollup(session)),
                    SimEvent::Cdr(self.cdr(session)),
                ]
            })
            .collect()
    }

    /// What an injected anomaly did, in words.
    fn detail(&self, anomaly: &InjectedAnomaly) -> String {
        let index = self.day_of(anomaly.day);
        let planned = index.and_then(|index| self.days.get(index));
        let network = planned
            .and_then(|planned| self.networks.get(planned.network))
            .unwrap_or_else(|| self.home());
        let days = anomaly.magnitude.max(1.0) as u64;
        match anomaly.kind {
            AnomalyKind::UsageSpike => format!(
                "{} on the day: {:.2} × its usual {}",
                bytes_text(planned.map_or(0.0, |planned| planned.bytes as f64)),
                anomaly.magnitude,
                bytes_text(index.map_or(0.0, |index| self.usual(index)))
            ),
            AnomalyKind::Silence => format!("no traffic for {days} days"),
            AnomalyKind::SessionStorm => format!(
                "{} sessions: {:.2} × its usual",
                planned.map_or(0, |planned| planned.sessions),
                anomaly.magnitude
            ),
            AnomalyKind::NewCountry => {
                format!("{days} days on {network} in {}", country_name(network))
            }
            AnomalyKind::NewNetwork => {
                format!("{days} days on {network} ({})", network_name(network))
            }
            AnomalyKind::ImeiChange => format!(
                "into the device with IMEI {}",
                planned
                    .and_then(|planned| self.imeis.get(planned.imei).cloned().flatten())
                    .map_or_else(|| "unknown".to_owned(), |imei| imei.to_string())
            ),
        }
    }
}

/// The radio a device kind uses: meters NB-IoT, trackers LTE-M, cameras and gateways LTE.
fn radio(profile: DeviceProfile) -> RadioAccessType {
    match profile {
        DeviceProfile::Meter => RadioAccessType::NbIot,
        DeviceProfile::Tracker => RadioAccessType::LteM,
        DeviceProfile::Camera | DeviceProfile::Gateway => RadioAccessType::Lte,
    }
}

/// The index of `network` in `networks`, added at the end when it is not there.
fn index_in(networks: &mut Vec<MccMnc>, network: MccMnc) -> usize {
    match networks.iter().position(|known| *known == network) {
        Some(index) => index,
        None => {
            networks.push(network);
            networks.len() - 1
        }
    }
}
