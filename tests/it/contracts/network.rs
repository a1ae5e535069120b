//! The `NetworkAdapter` port contract, on the simulated HLR (`ioto_network::SimulatedHlr`), the
//! only adapter there is.

use std::sync::Arc;
use std::time::{Duration, Instant};

use ioto_domain::identifiers::{Iccid, Imsi};
use ioto_domain::ports::network::{
    NetworkAction, NetworkAdapter, NetworkFailure, NetworkReceipt, NetworkRequest,
};
use ioto_domain::{Error, TenantId};
use ioto_network::{HlrProfile, SimulatedHlr};
use uuid::Uuid;

/// How the network under test is to answer every request (each adapter maps this onto its own
/// settings).
#[derive(Debug, Clone, Copy)]
enum Answers {
    Confirm,
    Refuse,
    Busy,
}

/// An adapter under test, and how many transactions it says it has executed.
struct Subject {
    network: Arc<dyn NetworkAdapter>,
    executed: Box<dyn Fn() -> u64 + Send + Sync>,
}

/// A request of SIM `n` (a fresh id each time).
fn request(tenant: TenantId, n: u64, action: NetworkAction) -> NetworkRequest {
    NetworkRequest {
        id: Uuid::new_v4(),
        tenant_id: tenant,
        iccid: Iccid::with_check_digit(&format!("894400000000{n:07}")).unwrap(),
        imsi: Imsi::parse(&format!("2341500{n:08}")).unwrap(),
        action,
    }
}

/// Confirmed requests carry a receipt; a request id seen again gets the first answer and is not
/// executed twice (whatever else the request says); a refusal is an answer too; a transient
/// failure did nothing, so a retry is a new attempt.
async fn contract(open: impl Fn(Answers) -> Subject) {
    let tenant = TenantId::new();
    let confirming = open(Answers::Confirm);
    let (network, executed) = (&confirming.network, &confirming.executed);
    let first = request(tenant, 1, NetworkAction::Activate);
    let receipt = network.send(&first).await.unwrap();
    assert!(
        !receipt.reference.is_empty(),
        "a confirmation names the network's reference"
    );
    assert_eq!(executed(), 1, "one request, one transaction");
    assert_eq!(
        network.send(&first).await,
        Ok(receipt.clone()),
        "the same request again: the same receipt"
    );
    let other_sim = NetworkRequest {
        iccid: Iccid::with_check_digit("8944000000000000099").unwrap(),
        action: NetworkAction::Terminate,
        ..first.clone()
    };
    assert_eq!(
        network.send(&other_sim).await,
        Ok(receipt.clone()),
        "the id is the key: a reused id is answered as the first time, not acted on"
    );
    assert_eq!(executed(), 1, "a repeated request id is not executed twice");

    // Two sends of one new request at once: one transaction, one answer.
    let racing = request(tenant, 2, NetworkAction::Suspend);
    let (one, two) = tokio::join!(network.send(&racing), network.send(&racing));
    assert_eq!(one, two, "concurrent repeats get the same answer");
    assert_eq!(executed(), 2, "and the transaction is executed once");

    // Every action on the same SIM, each a request of its own: each executed, each its own
    // reference (the network keeps answers per request, not a state per SIM).
    let mut references = vec![receipt.reference.clone()];
    for action in NetworkAction::ALL {
        let r = request(tenant, 1, action);
        let receipt: NetworkReceipt = network.send(&r).await.unwrap();
        references.push(receipt.reference);
    }
    let all = NetworkAction::ALL.len();
    assert_eq!(executed(), 2 + all as u64, "each request of the SIM executed");
    references.sort();
    references.dedup();
    assert_eq!(
        references.len(),
        1 + NetworkAction::ALL.len(),
        "one reference per transaction"
    );

    // A refusal is final: the same answer again, executed once.
    let refusing = open(Answers::Refuse);
    let refused = request(tenant, 3, NetworkAction::Activate);
    let answer = refusing.network.send(&refused).await;
    assert!(
        matches!(answer, Err(NetworkFailure::Permanent(ref why)) if !why.is_empty()),
        "{answer:?}"
    );
    assert_eq!(
        refusing.network.send(&refused).await,
        answer,
        "a refusal is answered again as it was"
    );
    assert_eq!((refusing.executed)(), 1, "a refused request is not sent twice");

    // A transient failure did nothing: not counted, not remembered.
    let busy = open(Answers::Busy);
    let retried = request(tenant, 4, NetworkAction::Suspend);
    for attempt in 1..=3 {
        let answer = busy.network.send(&retried).await;
        assert!(
            matches!(answer, Err(NetworkFailure::Transient(_))),
            "attempt {attempt}: {answer:?}"
        );
    }
    assert_eq!((busy.executed)(), 0, "failed attempts executed nothing");
}

const LATENCY_MS: f64 = 5.0;

/// A simulated HLR answering as asked: a fixed latency (median and 99th percentile alike), a
/// fixed seed, failure rates of 0 or 1.
fn simulated(answers: Answers) -> (Arc<SimulatedHlr>, Subject) {
    let (transient, permanent) = match answers {
        Answers::Confirm => (0.0, 0.0),
        Answers::Refuse => (0.0, 1.0),
        Answers::Busy => (1.0, 0.0),
    };
    let hlr = Arc::new(
        SimulatedHlr::new(HlrProfile {
            latency_median_ms: LATENCY_MS,
            latency_p99_ms: LATENCY_MS,
            transient_failure_rate: transient,
            permanent_failure_rate: permanent,
            seed: Some(7),
            ..HlrProfile::default()
        })
        .unwrap(),
    );
    let counted = Arc::clone(&hlr);
    let subject = Subject {
        network: hlr.clone(),
        executed: Box::new(move || counted.executed()),
    };
    (hlr, subject)
}

#[tokio::test]
async fn network_contract_on_the_simulated_hlr() {
    contract(|answers| simulated(answers).1).await;

    // What the simulated HLR says exactly: its reference, latency and reasons.
    let tenant = TenantId::new();
    let (hlr, _) = simulated(Answers::Confirm);
    let info = hlr.info();
    let location = "in process (2000 TPS, latency median 5 ms, p99 5 ms)";
    assert_eq!(
        (info.engine, info.location.as_str()),
        ("simulated-hlr", location),
        "what start-up logs"
    );
    let r = request(tenant, 5, NetworkAction::Resume);
    let receipt = hlr.send(&r).await.unwrap();
    let want = NetworkReceipt {
        reference: format!("hlr-{}", r.id.simple()),
        latency: Duration::from_secs_f64(LATENCY_MS / 1e3),
    };
    assert_eq!(
        receipt, want,
        "the reference names the request; the latency is the configured one"
    );
    let (refusing, _) = simulated(Answers::Refuse);
    let r = request(tenant, 6, NetworkAction::ReportLostStolen);
    let why = format!("subscriber {} is not provisioned for REPORT_LOST_STOLEN", r.imsi);
    let refusal = Err(NetworkFailure::Permanent(why));
    assert_eq!(
        refusing.send(&r).await,
        refusal,
        "a refusal names the subscriber and the action"
    );
    let (busy, _) = simulated(Answers::Busy);
    let busy_now = NetworkFailure::Transient("the HLR is busy; try again".into());
    let r = request(tenant, 7, NetworkAction::Activate);
    assert_eq!(busy.send(&r).await, Err(busy_now), "a busy HLR says so");

    // While its down file exists it answers nothing (a transient failure) and executes nothing;
    // the same request succeeds once it is back.
    let down = ioto_test_support::temp_dir().join("hlr-down");
    let hlr = SimulatedHlr::new(HlrProfile {
        latency_median_ms: 0.0,
        latency_p99_ms: 1.0,
        down_file: Some(down.clone()),
        ..HlrProfile::default()
    })
    .unwrap();
    std::fs::write(&down, b"").unwrap();
    let r = request(tenant, 8, NetworkAction::Suspend);
    let silent = NetworkFailure::Transient("the HLR did not answer".into());
    assert_eq!(hlr.send(&r).await, Err(silent), "a down HLR gives no answer");
    assert_eq!(hlr.executed(), 0, "nothing executed while down");
    std::fs::remove_file(&down).unwrap();
    assert!(
        hlr.send(&r).await.is_ok(),
        "the retried request succeeds once it is back"
    );
    assert_eq!(hlr.executed(), 1, "executed once it was back");

    // The same seed and requests give the same answers; failures follow the rates.
    let mixed = || {
        SimulatedHlr::new(HlrProfile {
            tps: 1_000_000,
            latency_median_ms: 0.0,
            latency_p99_ms: 0.0,
            transient_failure_rate: 0.3,
            permanent_failure_rate: 0.3,
            seed: Some(42),
            down_file: None,
        })
        .unwrap()
    };
    let requests: Vec<_> = (0..60)
        .map(|n| request(tenant, 100 + n, NetworkAction::Activate))
        .collect();
    let (one, two) = (mixed(), mixed());
    let (mut first, mut second) = (Vec::new(), Vec::new());
    for r in &requests {
        first.push(one.send(r).await);
        second.push(two.send(r).await);
    }
    assert_eq!(first, second, "seeded: the same answers in the same order");
    let kinds =
        |p: fn(&Result<NetworkReceipt, NetworkFailure>) -> bool| first.iter().filter(|a| p(a)).count();
    let permanent = kinds(|a| matches!(a, Err(NetworkFailure::Permanent(_))));
    let transient = kinds(|a| matches!(a, Err(NetworkFailure::Transient(_))));
    assert!(
        permanent > 0 && transient > 0 && permanent + transient < 60,
        "30 % refused, 30 % busy, the rest confirmed, roughly: {first:?}"
    );
    assert_eq!(
        one.executed(),
        60 - transient as u64,
        "every answer but the transient ones executed"
    );

    // Capacity: 11 transactions at 100 per second take 100 ms at least.
    let paced = SimulatedHlr::new(HlrProfile {
        tps: 100,
        latency_median_ms: 0.0,
        latency_p99_ms: 0.0,
        ..HlrProfile::default()
    })
    .unwrap();
    let started = Instant::now();
    for n in 0..11 {
        paced
            .send(&request(tenant, 200 + n, NetworkAction::LocationUpdate))
            .await
            .unwrap();
    }
    assert!(
        started.elapsed() >= Duration::from_millis(100),
        "11 transactions at 100 per second took {:?}",
        started.elapsed()
    );

    // A profile it cannot honour is refused, naming the setting.
    let both = HlrProfile {
        transient_failure_rate: 0.6,
        permanent_failure_rate: 0.6,
        ..HlrProfile::default()
    };
    let err = SimulatedHlr::new(both).err().unwrap();
    let field = "network.simulated.permanent_failure_rate";
    assert!(
        matches!(err, Error::InvalidInput { field: ref f, .. } if f == field),
        "failure rates adding up to more than 1: {err:?}"
    );
}
