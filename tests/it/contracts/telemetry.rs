//! The telemetry-source contract, on Mosquitto and on the in-process feed: what is published
//! after a group subscribed reaches it intact, each message reaches one subscriber of a group and
//! every group, acknowledging is possible for every message, and an unreachable broker is named
//! without its password.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use futures::stream::BoxStream;
use futures::StreamExt;
use ioto_domain::ports::{TelemetryMessage, TelemetrySource};
use ioto_domain::usage::telemetry_topic;
use ioto_domain::{DeviceId, Error};
use ioto_ingest::telemetry::{InProcessTelemetry, MqttConfig, MqttTelemetry};
use ioto_test_support::unique;

const MOSQUITTO: &str = "mqtt://127.0.0.1:1883";

/// Messages from `stream` until `n` arrived or nothing came for `quiet`.
async fn take(
    stream: &mut BoxStream<'static, TelemetryMessage>,
    n: usize,
    quiet: Duration,
) -> Vec<(String, Vec<u8>)> {
    let mut got = Vec::new();
    while got.len() < n {
        match tokio::time::timeout(quiet, stream.next()).await {
            Ok(Some(m)) => {
                got.push((m.topic.clone(), m.payload.clone()));
                m.ack().await;
            }
            Ok(None) | Err(_) => break,
        }
    }
    got
}

fn messages(n: usize) -> Vec<(String, Vec<u8>)> {
    let devices: Vec<DeviceId> = (0..3).map(|_| DeviceId(uuid::Uuid::new_v4())).collect();
    (0..n)
        .map(|i| {
            (
                telemetry_topic(devices[i % devices.len()]),
                format!("{{\"n\":{i},\"text\":\"é ✓\"}}").into_bytes(),
            )
        })
        .collect()
}

async fn contract(source: Arc<dyn TelemetrySource>) {
    source.ping().await.unwrap();
    // Subscribers first: a source keeps nothing for groups that did not subscribe yet.
    let group = unique("contract");
    let mut a = source.subscribe(&group).await.unwrap();
    let mut b = source.subscribe(&group).await.unwrap();
    let mut other = source.subscribe(&unique("other")).await.unwrap();
    // A broker needs a moment to register the subscriptions.
    tokio::time::sleep(Duration::from_millis(500)).await;

    let sent = messages(40);
    source.publish(&sent).await.unwrap();
    source.publish(&[]).await.unwrap();

    // Every group gets every message, intact.
    let mut all = take(&mut other, sent.len(), Duration::from_secs(10)).await;
    all.sort();
    let mut expected = sent.clone();
    expected.sort();
    assert_eq!(all, expected, "the other group receives every message once");

    // Within a group each message reaches one subscriber.
    let mut got = Vec::new();
    loop {
        let from_a = take(&mut a, 1, Duration::from_millis(300)).await;
        let from_b = take(&mut b, 1, Duration::from_millis(300)).await;
        if from_a.is_empty() && from_b.is_empty() {
            break;
        }
        got.extend(from_a);
        got.extend(from_b);
    }
    got.sort();
    assert_eq!(
        got, expected,
        "the two subscribers of a group share the messages, none twice"
    );
    let topics: BTreeSet<_> = got.iter().map(|(t, _)| t.clone()).collect();
    assert_eq!(topics.len(), 3);
}

#[tokio::test]
async fn in_process_feed() {
    contract(Arc::new(InProcessTelemetry::default())).await;
}

#[tokio::test]
async fn mosquitto() {
    contract(Arc::new(MqttTelemetry::new(
        MqttConfig::parse(MOSQUITTO).unwrap(),
    )))
    .await;
}

#[tokio::test]
async fn an_unreachable_broker_is_named_without_its_password() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let source =
        MqttTelemetry::new(MqttConfig::parse(&format!("mqtt://ioto:hunter2@127.0.0.1:{port}")).unwrap());
    let e = source.ping().await.unwrap_err();
    assert!(matches!(e, Error::Unavailable(_)), "{e:?}");
    let text = e.to_string();
    assert!(
        text.contains(&format!("127.0.0.1:{port}")) && !text.contains("hunter2"),
        "{text}"
    );
    assert!(source.publish(&messages(1)).await.is_err());
}

/// A Mosquitto of this test's own with a TLS listener, its certificate issued by a CA made here.
struct TlsBroker {
    child: std::process::Child,
    port: u16,
    ca_pem: Vec<u8>,
}

impl Drop for TlsBroker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn openssl(dir: &std::path::Path, args: &[&str]) {
    let out = std::process::Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("openssl runs (Debian's openssl package)");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

async fn tls_broker() -> TlsBroker {
    let dir = ioto_test_support::temp_dir();
    std::fs::create_dir_all(&dir).unwrap();
    openssl(
        &dir,
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "ca.key",
            "-out",
            "ca.pem",
            "-days",
            "1",
            "-subj",
            "/CN=ioto test CA",
        ],
    );
    openssl(
        &dir,
        &[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "server.key",
            "-out",
            "server.csr",
            "-subj",
            "/CN=localhost",
        ],
    );
    std::fs::write(dir.join("san.ext"), "subjectAltName=DNS:localhost,IP:127.0.0.1\n").unwrap();
    openssl(
        &dir,
        &[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            "server.pem",
            "-days",
            "1",
            "-extfile",
            "san.ext",
        ],
    );
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let conf = format!(
        "listener {port} 127.0.0.1\nallow_anonymous true\ncafile {d}/ca.pem\ncertfile {d}/server.pem\nkeyfile {d}/server.key\n",
        d = dir.display()
    );
    std::fs::write(dir.join("mosquitto.conf"), conf).unwrap();
    // Started as root, mosquitto drops to its own user, which must be able to read the files.
    use std::os::unix::fs::PermissionsExt as _;
    for f in ["", "ca.pem", "server.pem", "server.key", "mosquitto.conf"] {
        let mode = if f.is_empty() { 0o755 } else { 0o644 };
        std::fs::set_permissions(dir.join(f), std::fs::Permissions::from_mode(mode)).unwrap();
    }
    let child = std::process::Command::new("/usr/sbin/mosquitto")
        .arg("-c")
        .arg(dir.join("mosquitto.conf"))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("mosquitto runs (Debian's mosquitto package)");
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            std::time::Instant::now() < deadline,
            "mosquitto listens on {port}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    TlsBroker {
        child,
        port,
        ca_pem: std::fs::read(dir.join("ca.pem")).unwrap(),
    }
}

#[tokio::test]
async fn mosquitto_over_tls() {
    let broker = tls_broker().await;
    let url = format!("mqtts://localhost:{}", broker.port);
    contract(Arc::new(MqttTelemetry::new(
        MqttConfig::parse(&url)
            .unwrap()
            .with_ca_pem(broker.ca_pem.clone()),
    )))
    .await;

    // A certificate that does not chain to the configured CA: refused, never clear text.
    let stranger = tls_broker().await;
    let e = MqttTelemetry::new(
        MqttConfig::parse(&url)
            .unwrap()
            .with_ca_pem(stranger.ca_pem.clone()),
    )
    .ping()
    .await
    .unwrap_err();
    assert!(matches!(e, Error::Unavailable(_)), "{e:?}");
    // And through the server's configuration: mqtt.ca_file is read, a file without a
    // certificate is refused naming the key.
    let dir = ioto_test_support::temp_dir();
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("ca.pem"), &broker.ca_pem).unwrap();
    std::fs::write(dir.join("empty.pem"), "nothing here").unwrap();
    let config = ioto::engines::mqtt_config(&url, Some(&dir.join("ca.pem"))).unwrap();
    MqttTelemetry::new(config).ping().await.unwrap();
    let e = ioto::engines::mqtt_config(&url, Some(&dir.join("empty.pem"))).unwrap_err();
    assert!(e.to_string().starts_with("mqtt.ca_file: "), "{e}");
}
