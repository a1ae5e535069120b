//! The event decoders on hostile input (a bounded fuzz run in every test run): no byte string, and
//! no mutation of a valid event, makes them panic; whatever they accept is within the contract's
//! bounds (counters, times that a store can hold).

#![expect(clippy::unwrap_used, reason = "tests")]

use ioto_domain::usage::{Cdr, SessionRollup, TelemetryReading, MAX_COUNTER};
use proptest::prelude::*;

const ROLLUP: &str = r#"{"v": 1, "session_id": "s-1", "iccid": "89882280660000000015", "event_timestamp": "2026-11-22T10:05:00Z", "mcc_mnc": "262-01", "radio_access_type": "LTE", "ip_address": "10.20.0.7", "total_bytes_in": 1048576, "total_bytes_out": 65536, "request_type": "UPDATE", "cell_id": "0x1a2b"}"#;
const CDR: &str = r#"{"v": 1, "cdr_id": "c-1", "iccid": "89882280660000000015", "start": "2026-11-22T10:00:00Z", "end": "2026-11-22T11:00:00Z", "mcc_mnc": "262-01", "bytes_in": 10, "bytes_out": 20, "rating_group": 1}"#;
const READING: &str = r#"{"v": 1, "device_id": "0195c1d4-5b6e-7c3a-9f00-1a2b3c4d5e6f", "at": "2026-11-22T10:00:00Z", "temperature_c": 4.5, "humidity_pct": 40, "battery_pct": 88, "latitude": 52.5, "longitude": 13.4}"#;

/// `base` with up to a few bytes replaced, inserted or removed (where fuzzers find most bugs:
/// near-valid input that passes the first checks).
fn mutated(base: &'static str) -> impl Strategy<Value = Vec<u8>> {
    proptest::collection::vec((0usize..512, any::<u8>(), 0u8..3), 1..6).prop_map(move |edits| {
        let mut b = base.as_bytes().to_vec();
        for (pos, byte, op) in edits {
            let pos = pos % (b.len() + 1);
            match op {
                0 if pos < b.len() => b[pos] = byte,
                1 => b.insert(pos, byte),
                _ if pos < b.len() => {
                    b.remove(pos);
                }
                _ => {}
            }
        }
        b
    })
}

/// Valid JSON in the contract's shape with any values in its fields, multi-byte text included.
fn any_fields() -> impl Strategy<Value = Vec<u8>> {
    let value = prop_oneof![
        any::<u64>().prop_map(|n| serde_json::json!(n)),
        any::<i64>().prop_map(|n| serde_json::json!(n)),
        any::<f64>().prop_map(|f| serde_json::json!(f)),
        "\\PC{0,24}".prop_map(|s| serde_json::json!(s)),
        Just(serde_json::Value::Null),
    ];
    let fields = [
        "v",
        "session_id",
        "iccid",
        "event_timestamp",
        "mcc_mnc",
        "radio_access_type",
        "ip_address",
        "total_bytes_in",
        "total_bytes_out",
        "request_type",
        "cell_id",
        "imei",
        "cdr_id",
        "start",
        "end",
        "bytes_in",
        "bytes_out",
        "rating_group",
        "device_id",
        "at",
        "temperature_c",
    ];
    proptest::collection::vec(value, fields.len()).prop_map(move |values| {
        let map: serde_json::Map<String, serde_json::Value> =
            fields.iter().map(|f| (*f).to_owned()).zip(values).collect();
        serde_json::to_vec(&map).unwrap()
    })
}

fn check_all(bytes: &[u8]) -> Result<(), TestCaseError> {
    if let Ok(r) = SessionRollup::from_json(bytes) {
        prop_assert!(r.total_bytes_in <= MAX_COUNTER && r.total_bytes_out <= MAX_COUNTER);
    }
    if let Ok(c) = Cdr::from_json(bytes) {
        prop_assert!(c.bytes_in <= MAX_COUNTER && c.end >= c.start);
    }
    let _ = TelemetryReading::from_json(bytes);
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 3000, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
        check_all(&bytes)?;
    }

    #[test]
    fn mutated_rollups(bytes in mutated(ROLLUP)) {
        check_all(&bytes)?;
    }

    #[test]
    fn mutated_cdrs(bytes in mutated(CDR)) {
        check_all(&bytes)?;
    }

    #[test]
    fn mutated_readings(bytes in mutated(READING)) {
        check_all(&bytes)?;
    }

    #[test]
    fn any_values_in_the_contract_fields(bytes in any_fields()) {
        check_all(&bytes)?;
    }
}

#[test]
fn the_seeds_are_valid_events() {
    assert!(SessionRollup::from_json(ROLLUP.as_bytes()).is_ok());
    assert!(Cdr::from_json(CDR.as_bytes()).is_ok());
    assert!(
        TelemetryReading::from_json(READING.as_bytes()).is_ok(),
        "{:?}",
        TelemetryReading::from_json(READING.as_bytes())
    );
}
