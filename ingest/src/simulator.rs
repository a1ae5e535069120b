//! The session simulator: data sessions of a set of SIMs over a time range, as the rollups a
//! mediation system would emit (cumulative counters, an update every few minutes, a TERMINATE at
//! the end) and one CDR per session carrying the same bytes. Deterministic for a given seed, so a
//! test can compute exactly what the pipeline must count.

use chrono::{DateTime, Duration, Utc};
use ioto_domain::identifiers::{Iccid, MccMnc};
use ioto_domain::usage::{Cdr, RadioAccessType, RequestType, SessionRollup};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// What to simulate.
#[derive(Debug, Clone)]
pub struct SessionPlan {
    pub iccids: Vec<Iccid>,
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    /// Bytes one session moves in all (in + out), drawn uniformly from this range.
    pub bytes_min: u64,
    pub bytes_max: u64,
    pub sessions_per_sim: u32,
    /// Time between two rollups of a session.
    pub update_every: Duration,
    pub networks: Vec<MccMnc>,
    pub seed: u64,
}

/// One simulated event, in the order a session emits them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SimEvent {
    Rollup(SessionRollup),
    Cdr(Cdr),
}

impl SessionPlan {
    /// Checks the plan, naming the bad option.
    pub fn check(&self) -> ioto_domain::Result<()> {
        use ioto_domain::Error;
        if self.iccids.is_empty() {
            return Err(Error::invalid("sims", "there are no SIMs to simulate"));
        }
        if self.to <= self.from {
            return Err(Error::invalid("to", "must be after --from"));
        }
        if self.bytes_max < self.bytes_min || self.bytes_max == 0 {
            return Err(Error::invalid(
                "bytes-max",
                "must be at least --bytes-min and above 0",
            ));
        }
        if self.update_every <= Duration::zero() {
            return Err(Error::invalid("update-every", "must be positive"));
        }
        if self.networks.is_empty() {
            return Err(Error::invalid("networks", "name at least one MCC-MNC"));
        }
        Ok(())
    }

    /// The events of the SIM at `index` (every session of it, each in emission order).
    pub fn events_of(&self, index: usize) -> Vec<SimEvent> {
        let Some(iccid) = self.iccids.get(index) else {
            return Vec::new();
        };
        let mut rng = StdRng::seed_from_u64(self.seed ^ (index as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15));
        let span = (self.to - self.from).num_seconds().max(1);
        let mut out = Vec::new();
        for n in 0..self.sessions_per_sim {
            let session_id = format!("{}-{}-{n}", iccid.as_str(), self.seed);
            // Sessions last 10 minutes to 4 hours, within the range.
            let length = rng.gen_range(600..=14_400).min(span);
            let start = self.from + Duration::seconds(rng.gen_range(0..=(span - length)));
            let end = start + Duration::seconds(length);
            let total = rng.gen_range(self.bytes_min..=self.bytes_max);
            let total_in = total * rng.gen_range(60..=95) / 100;
            let total_out = total - total_in;
            let network = self.networks[rng.gen_range(0..self.networks.len())].clone();
            let rat = RadioAccessType::ALL[rng.gen_range(0..RadioAccessType::ALL.len())];
            let ip = std::net::IpAddr::V4(std::net::Ipv4Addr::new(
                10,
                rng.gen(),
                rng.gen(),
                rng.gen_range(1..255),
            ));
            let steps = ((length / self.update_every.num_seconds().max(1)).max(1)) as u64;
            let first_rollup = out.len();
            for k in 1..=steps {
                let at = if k == steps {
                    end
                } else {
                    start + self.update_every * (k as i32)
                };
                out.push(SimEvent::Rollup(SessionRollup {
                    session_id: session_id.clone(),
                    iccid: iccid.clone(),
                    event_timestamp: at,
                    mcc_mnc: network.clone(),
                    radio_access_type: rat,
                    ip_address: Some(ip),
                    // Counters grow evenly to the session's totals at its last update.
                    total_bytes_in: total_in * k / steps,
                    total_bytes_out: total_out * k / steps,
                    request_type: if k == steps {
                        RequestType::Terminate
                    } else {
                        RequestType::Update
                    },
                    cell_id: Some(format!("{:x}", rng.gen_range(0x1000..0xffff))),
                    imei: device_imei(iccid),
                }));
            }
            // Mediation closes a partial CDR at midnight: one CDR per day the session used,
            // carrying the bytes the session view attributes to that day.
            let per_day = bytes_per_day(&out[first_rollup..]);
            for (day, (bytes_in, bytes_out)) in per_day {
                let midnight = day.and_time(chrono::NaiveTime::MIN).and_utc();
                out.push(SimEvent::Cdr(Cdr {
                    cdr_id: format!("cdr-{session_id}-{day}"),
                    iccid: iccid.clone(),
                    start: start.max(midnight),
                    end: end.min(midnight + Duration::days(1)).max(start.max(midnight)),
                    mcc_mnc: network.clone(),
                    bytes_in,
                    bytes_out,
                    rating_group: 10,
                }));
            }
        }
        out
    }

    /// Every event of every SIM, in order per SIM (SIM after SIM).
    ///
    /// Sessions of one SIM interleave in time in the real world; here each session is emitted
    /// whole, which keeps every session in order, as the ingest contract requires.
    pub fn events(&self) -> impl Iterator<Item = SimEvent> + '_ {
        (0..self.iccids.len()).flat_map(|i| self.events_of(i))
    }
}

/// One session in progress in the [`LiveSimulator`].
struct LiveSession {
    id: String,
    network: MccMnc,
    rat: RadioAccessType,
    ip: std::net::IpAddr,
    started: DateTime<Utc>,
    ends: DateTime<Utc>,
    bytes_in: u64,
    bytes_out: u64,
    /// Bytes per UTC day as counted (the day of each rollup), for the CDRs at the end.
    per_day: std::collections::BTreeMap<chrono::NaiveDate, (u64, u64)>,
}

/// Sessions happening now, for a live demo: on each tick every SIM without a session may start
/// one, sessions in progress report their counters, and ended ones emit TERMINATE and their CDRs
/// (one per day used). Events carry the tick's time.
pub struct LiveSimulator {
    rng: StdRng,
    sims: Vec<Iccid>,
    networks: Vec<MccMnc>,
    sessions: std::collections::HashMap<usize, LiveSession>,
    started: u64,
    seed: u64,
    /// Each SIM on its home network (`networks[index % len]`) rather than any.
    home: bool,
}

impl LiveSimulator {
    pub fn new(sims: Vec<Iccid>, networks: Vec<MccMnc>, seed: u64) -> Self {
        Self {
            rng: StdRng::seed_from_u64(seed),
            sims,
            networks,
            sessions: std::collections::HashMap::new(),
            started: 0,
            seed,
            home: false,
        }
    }

    /// Each SIM's sessions on its home network, `networks[index % networks.len()]` (SIMs that
    /// stay where they are, so a session elsewhere is news).
    #[must_use]
    pub fn staying_home(mut self) -> Self {
        self.home = true;
        self
    }

    /// Sessions in progress.
    pub fn open_sessions(&self) -> usize {
        self.sessions.len()
    }

    /// The events of one tick at `now`.
    pub fn tick(&mut self, now: DateTime<Utc>) -> Vec<SimEvent> {
        let mut out = Vec::new();
        for index in 0..self.sims.len() {
            let iccid = self.sims[index].clone();
            if let Some(mut s) = self.sessions.remove(&index) {
                let added_in = self.rng.gen_range(2_000..400_000);
                let added_out = added_in / self.rng.gen_range(3..12);
                s.bytes_in += added_in;
                s.bytes_out += added_out;
                let day = s.per_day.entry(now.date_naive()).or_default();
                day.0 += added_in;
                day.1 += added_out;
                let ended = now >= s.ends;
                out.push(SimEvent::Rollup(self.rollup(&iccid, &s, now, ended)));
                if ended {
                    for (day, (bytes_in, bytes_out)) in &s.per_day {
                        let midnight = day.and_time(chrono::NaiveTime::MIN).and_utc();
                        let start = s.started.max(midnight);
                        out.push(SimEvent::Cdr(Cdr {
                            cdr_id: format!("cdr-{}-{day}", s.id),
                            iccid: iccid.clone(),
                            start,
                            end: now.min(midnight + Duration::days(1)).max(start),
                            mcc_mnc: s.network.clone(),
                            bytes_in: *bytes_in,
                            bytes_out: *bytes_out,
                            rating_group: 10,
                        }));
                    }
                } else {
                    self.sessions.insert(index, s);
                }
            } else if self.rng.gen_ratio(1, 4) && !self.networks.is_empty() {
                self.started += 1;
                let bytes_in = self.rng.gen_range(500..20_000);
                let bytes_out = bytes_in / 4;
                let s = LiveSession {
                    id: format!("live-{}-{}-{}", iccid.as_str(), self.seed, self.started),
                    network: if self.home {
                        self.networks[index % self.networks.len()].clone()
                    } else {
                        self.networks[self.rng.gen_range(0..self.networks.len())].clone()
                    },
                    rat: RadioAccessType::ALL[self.rng.gen_range(0..RadioAccessType::ALL.len())],
                    ip: std::net::IpAddr::V4(std::net::Ipv4Addr::new(
                        10,
                        self.rng.gen(),
                        self.rng.gen(),
                        self.rng.gen_range(1..255),
                    )),
                    started: now,
                    ends: now + Duration::seconds(self.rng.gen_range(60..1800)),
                    bytes_in,
                    bytes_out,
                    per_day: [(now.date_naive(), (bytes_in, bytes_out))].into_iter().collect(),
                };
                out.push(SimEvent::Rollup(self.rollup(&iccid, &s, now, false)));
                self.sessions.insert(index, s);
            }
        }
        out
    }

    fn rollup(&mut self, iccid: &Iccid, s: &LiveSession, at: DateTime<Utc>, ended: bool) -> SessionRollup {
        SessionRollup {
            session_id: s.id.clone(),
            iccid: iccid.clone(),
            event_timestamp: at,
            mcc_mnc: s.network.clone(),
            radio_access_type: s.rat,
            ip_address: Some(s.ip),
            total_bytes_in: s.bytes_in,
            total_bytes_out: s.bytes_out,
            request_type: if ended {
                RequestType::Terminate
            } else {
                RequestType::Update
            },
            cell_id: Some(format!("{:x}", self.rng.gen_range(0x1000..0xffff))),
            imei: device_imei(iccid),
        }
    }
}

/// The IMEI of the simulated device a SIM sits in: the same for the SIM every time (derived
/// from its ICCID), so a change of device is a change of IMEI.
pub fn device_imei(iccid: &Iccid) -> Option<ioto_domain::fleet::device::Imei> {
    imei_from(iccid.as_str())
}

/// An IMEI derived from `text` (TAC 35, then 12 digits of its FNV-1a hash, then the check digit).
fn imei_from(text: &str) -> Option<ioto_domain::fleet::device::Imei> {
    let body: u64 = text.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    ioto_domain::fleet::device::Imei::with_check_digit(&format!("35{:012}", body % 1_000_000_000_000)).ok()
}

/// Something out of the ordinary a SIM does, for demos and `ioto simulate incident`: what alert
/// rules and quotas are there to notice.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Incident {
    /// A session in a country the simulated fleet never visits ([`ROAMING_NETWORK`]).
    Roam,
    /// Short sessions one after another: [`FLAP_SESSIONS`] of them, each started and ended.
    Flap,
    /// A session from another device: it reports another IMEI than the SIM's sessions do.
    Swap,
    /// One session carrying this many bytes (in and out together) at once.
    Burst(u64),
}

/// Sessions a flapping SIM starts and ends.
pub const FLAP_SESSIONS: u32 = 12;
/// Where a roaming SIM shows up: NTT Docomo, Japan.
pub const ROAMING_NETWORK: &str = "440-10";

impl Incident {
    /// The incident's events for `iccid` at `now`, on its `home` network unless it roams; `tag`
    /// keeps the session ids of two incidents of one SIM apart. Every session ends with its
    /// TERMINATE and CDR, as the other simulated sessions do.
    pub fn events(self, iccid: &Iccid, home: &MccMnc, now: DateTime<Utc>, tag: u64) -> Vec<SimEvent> {
        let session = |n: u32, network: MccMnc, bytes: u64, imei, at: DateTime<Utc>| {
            let id = format!("incident-{}-{tag}-{n}", iccid.as_str());
            let (bytes_in, bytes_out) = (bytes - bytes / 5, bytes / 5);
            let rollup = |total_in, total_out, request_type| {
                SimEvent::Rollup(SessionRollup {
                    session_id: id.clone(),
                    iccid: iccid.clone(),
                    event_timestamp: at,
                    mcc_mnc: network.clone(),
                    radio_access_type: RadioAccessType::Lte,
                    ip_address: None,
                    total_bytes_in: total_in,
                    total_bytes_out: total_out,
                    request_type,
                    cell_id: None,
                    imei: Clone::clone(&imei),
                })
            };
            vec![
                rollup(bytes_in / 2, bytes_out / 2, RequestType::Update),
                rollup(bytes_in, bytes_out, RequestType::Terminate),
                SimEvent::Cdr(Cdr {
                    cdr_id: format!("cdr-{id}"),
                    iccid: iccid.clone(),
                    start: at,
                    end: at,
                    mcc_mnc: network.clone(),
                    bytes_in,
                    bytes_out,
                    rating_group: 10,
                }),
            ]
        };
        let own = device_imei(iccid);
        match self {
            Self::Roam => {
                let abroad = MccMnc::parse(ROAMING_NETWORK).unwrap_or_else(|_| home.clone());
                session(0, abroad, 80_000, own, now)
            }
            Self::Flap => (0..FLAP_SESSIONS)
                .flat_map(|n| {
                    session(
                        n,
                        home.clone(),
                        2_000,
                        own.clone(),
                        now + Duration::seconds(i64::from(n)),
                    )
                })
                .collect(),
            Self::Swap => session(
                0,
                home.clone(),
                20_000,
                imei_from(&format!("{}-swapped", iccid.as_str())),
                now,
            ),
            Self::Burst(bytes) => session(0, home.clone(), bytes.max(2), own, now),
        }
    }
}

/// Bytes of one session's rollups per UTC day, as the counting rules attribute them.
fn bytes_per_day(events: &[SimEvent]) -> std::collections::BTreeMap<chrono::NaiveDate, (u64, u64)> {
    let mut progress = None;
    let mut days = std::collections::BTreeMap::new();
    for e in events {
        let SimEvent::Rollup(r) = e else { continue };
        if let Ok(ioto_domain::usage::Step::Count {
            delta,
            progress: next,
        }) = ioto_domain::usage::step(progress.as_ref(), r)
        {
            let d: &mut (u64, u64) = days.entry(delta.hour.date_naive()).or_default();
            d.0 += delta.bytes_in;
            d.1 += delta.bytes_out;
            progress = Some(next);
        }
    }
    days
}

#[cfg(test)]
mod tests {
    #[test]
    fn incidents_are_what_the_rules_look_for_and_read_back_under_the_contract() {
        use ioto_domain::usage::SessionRollup;
        let iccid = Iccid::with_check_digit("898822806600000001").unwrap();
        let home = MccMnc::parse("262-01").unwrap();
        let now = Utc::now();
        let rollups = |i: Incident| -> Vec<SessionRollup> {
            i.events(&iccid, &home, now, 7)
                .into_iter()
                .filter_map(|e| match e {
                    SimEvent::Rollup(r) => {
                        Some(SessionRollup::from_json(r.to_json().to_string().as_bytes()).unwrap())
                    }
                    SimEvent::Cdr(_) => None,
                })
                .collect()
        };
        let roam = rollups(Incident::Roam);
        assert!(roam.iter().all(|r| r.mcc_mnc.to_string() == ROAMING_NETWORK));
        let own = device_imei(&iccid).unwrap();
        assert_eq!(roam[0].imei.as_ref(), Some(&own));
        let swap = rollups(Incident::Swap);
        assert!(swap
            .iter()
            .all(|r| r.imei.is_some() && r.imei.as_ref() != Some(&own) && r.mcc_mnc == home));
        let flap = rollups(Incident::Flap);
        let ended = flap
            .iter()
            .filter(|r| r.request_type == RequestType::Terminate)
            .count();
        assert_eq!(
            ended, FLAP_SESSIONS as usize,
            "each flapping session starts and ends"
        );
        let burst = rollups(Incident::Burst(100_000_000));
        let last = burst.last().unwrap();
        assert_eq!(last.total_bytes_in + last.total_bytes_out, 100_000_000);
        // Two incidents of one SIM are different sessions.
        let again = Incident::Roam.events(&iccid, &home, now, 8);
        match (&Incident::Roam.events(&iccid, &home, now, 7)[0], &again[0]) {
            (SimEvent::Rollup(a), SimEvent::Rollup(b)) => assert_ne!(a.session_id, b.session_id),
            _ => panic!("a rollup first"),
        }
    }

    use std::collections::HashMap;

    use ioto_domain::usage::{step, SessionProgress, Step};

    use super::*;

    fn plan(from: &str, to: &str) -> SessionPlan {
        SessionPlan {
            iccids: (0..20)
                .map(|i| Iccid::with_check_digit(&format!("8949000000{i:08}")).unwrap())
                .collect(),
            from: DateTime::parse_from_rfc3339(from).unwrap().with_timezone(&Utc),
            to: DateTime::parse_from_rfc3339(to).unwrap().with_timezone(&Utc),
            bytes_min: 1_000,
            bytes_max: 5_000_000,
            sessions_per_sim: 3,
            update_every: Duration::minutes(5),
            networks: vec![MccMnc::parse("262-01").unwrap(), MccMnc::parse("234-15").unwrap()],
            seed: 7,
        }
    }

    #[test]
    fn rollups_and_cdrs_tell_the_same_story() {
        let p = plan("2026-11-21T20:00:00Z", "2026-11-22T04:00:00Z");
        p.check().unwrap();
        let mut progress: HashMap<String, SessionProgress> = HashMap::new();
        let mut counted: HashMap<String, (u64, u64)> = HashMap::new();
        let mut per_day: HashMap<chrono::NaiveDate, u64> = HashMap::new();
        let mut cdrs = 0;
        let mut billed: HashMap<String, (u64, u64)> = HashMap::new();
        for e in p.events() {
            match e {
                SimEvent::Rollup(r) => {
                    // Every rollup is valid on the wire.
                    let wire = SessionRollup::from_json(r.to_json().to_string().as_bytes()).unwrap();
                    assert_eq!(wire, r);
                    if let Step::Count {
                        delta,
                        progress: next,
                    } = step(progress.get(&r.session_id), &r).unwrap()
                    {
                        let c = counted.entry(r.session_id.clone()).or_default();
                        c.0 += delta.bytes_in;
                        c.1 += delta.bytes_out;
                        *per_day.entry(delta.hour.date_naive()).or_default() += delta.bytes_in;
                        progress.insert(r.session_id.clone(), next);
                    }
                }
                SimEvent::Cdr(c) => {
                    cdrs += 1;
                    // `cdr-{session}-{YYYY-MM-DD}`: the day is the day its period starts.
                    let day = c.start.date_naive().to_string();
                    let session = c
                        .cdr_id
                        .strip_prefix("cdr-")
                        .unwrap()
                        .strip_suffix(&format!("-{day}"))
                        .unwrap();
                    let b = billed.entry(session.to_owned()).or_default();
                    b.0 += c.bytes_in;
                    b.1 += c.bytes_out;
                    assert!(c.start <= c.end && c.start >= p.from && c.end <= p.to);
                    assert!(
                        c.end - c.start <= Duration::days(1),
                        "a CDR covers at most one day"
                    );
                }
            }
        }
        assert_eq!(
            billed, counted,
            "the CDRs of each session bill exactly what its rollups count"
        );
        assert!(cdrs > 60, "sessions across midnight have a CDR per day ({cdrs})");
        assert_eq!(per_day.len(), 2, "sessions across midnight count on both days");
    }

    #[test]
    fn live_sessions_start_report_end_and_bill_what_they_counted() {
        let sims: Vec<Iccid> = (0..40)
            .map(|i| Iccid::with_check_digit(&format!("8949000000{i:08}")).unwrap())
            .collect();
        let mut live = LiveSimulator::new(sims, vec![MccMnc::parse("262-01").unwrap()], 3);
        let start = DateTime::parse_from_rfc3339("2026-11-21T23:30:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let mut progress: HashMap<String, SessionProgress> = HashMap::new();
        let mut counted: HashMap<(String, chrono::NaiveDate), u64> = HashMap::new();
        let mut billed: HashMap<(String, chrono::NaiveDate), u64> = HashMap::new();
        let mut ended = 0;
        // Two hours of ticks every 10 s, across midnight.
        for k in 0..720 {
            for e in live.tick(start + Duration::seconds(10 * k)) {
                match e {
                    SimEvent::Rollup(r) => {
                        let Step::Count { delta, progress: p } =
                            step(progress.get(&r.session_id), &r).unwrap()
                        else {
                            panic!("every live rollup counts");
                        };
                        *counted
                            .entry((r.session_id.clone(), delta.hour.date_naive()))
                            .or_default() += delta.bytes_in;
                        ended += usize::from(r.request_type == RequestType::Terminate);
                        progress.insert(r.session_id.clone(), p);
                    }
                    SimEvent::Cdr(c) => {
                        let day = c.start.date_naive();
                        let session = c
                            .cdr_id
                            .strip_prefix("cdr-")
                            .unwrap()
                            .strip_suffix(&format!("-{day}"))
                            .unwrap();
                        *billed.entry((session.to_owned(), day)).or_default() += c.bytes_in;
                    }
                }
            }
        }
        assert!(ended > 20, "sessions end ({ended})");
        assert!(live.open_sessions() > 0, "and others are still running");
        assert!(
            billed.keys().any(|(_, d)| d.to_string() == "2026-11-22")
                && billed.keys().any(|(_, d)| d.to_string() == "2026-11-21")
        );
        for (key, bytes) in &billed {
            assert_eq!(
                counted.get(key),
                Some(bytes),
                "{key:?}: the CDR bills what the session counted that day"
            );
        }
    }

    #[test]
    fn the_same_seed_gives_the_same_events() {
        let p = plan("2026-11-22T00:00:00Z", "2026-11-22T12:00:00Z");
        assert_eq!(p.events_of(3), p.events_of(3));
        let mut other = p.clone();
        other.seed = 8;
        assert_ne!(p.events_of(3), other.events_of(3));
        let mut bad = p.clone();
        bad.to = bad.from;
        assert!(bad.check().unwrap_err().to_string().contains("--from"));
    }
}
