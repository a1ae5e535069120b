//! The broker address, from `mqtt.url`, parsed by the `url` crate.

use ioto_domain::{Error, Result};

/// Where the MQTT broker is and how to sign in to it.
#[derive(Clone, PartialEq, Eq)]
pub struct MqttConfig {
    pub host: String,
    pub port: u16,
    /// User name and password from the URL's user information.
    pub credentials: Option<(String, String)>,
    /// `mqtts://`: TLS to the broker, verified against these CA certificates (PEM).
    pub tls: Option<Tls>,
}

/// TLS to the broker: the certificates (PEM) the broker's certificate must chain to.
#[derive(Clone, PartialEq, Eq)]
pub struct Tls {
    pub ca_pem: Vec<u8>,
}

impl std::fmt::Debug for Tls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Tls({} bytes of CA certificates)", self.ca_pem.len())
    }
}

impl std::fmt::Debug for MqttConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.display())
    }
}

impl MqttConfig {
    /// `mqtt://[user[:password]@]host[:port]` (also `tcp://`; the port defaults to 1883) or
    /// `mqtts://…` (also `ssl://`; TLS, port 8883), whose CA certificates are given with
    /// [`MqttConfig::with_ca_pem`] (a TLS URL without them is refused by [`MqttConfig::options`]'s
    /// callers, never connected in clear text).
    pub fn parse(url: &str) -> Result<Self> {
        let bad = |why: String| Error::invalid("mqtt.url", why);
        let parsed =
            url::Url::parse(url).map_err(|e| bad(format!("not a URL ({e}); expected mqtt://host:1883")))?;
        let tls = match parsed.scheme() {
            "mqtt" | "tcp" => false,
            "mqtts" | "ssl" => true,
            other => return Err(bad(format!("scheme '{other}' is not mqtt:// or mqtts://"))),
        };
        let host = parsed
            .host_str()
            .filter(|h| !h.is_empty())
            .ok_or_else(|| bad("has no host".into()))?
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned();
        if parsed.path() != "" && parsed.path() != "/" {
            return Err(bad(format!(
                "path '{}' is not used by MQTT; remove it",
                parsed.path()
            )));
        }
        let user = percent_decode(parsed.username());
        let credentials = match (user.is_empty(), parsed.password()) {
            (true, None) => None,
            (true, Some(_)) => return Err(bad("has a password but no user name".into())),
            (false, p) => Some((user, p.map(percent_decode).unwrap_or_default())),
        };
        Ok(Self {
            host,
            port: parsed.port().unwrap_or(if tls { 8883 } else { 1883 }),
            credentials,
            tls: tls.then(|| Tls { ca_pem: Vec::new() }),
        })
    }

    /// Whether the URL asked for TLS.
    pub fn wants_tls(&self) -> bool {
        self.tls.is_some()
    }

    /// The CA certificates (PEM) a TLS broker's certificate must chain to.
    #[must_use]
    pub fn with_ca_pem(mut self, ca_pem: Vec<u8>) -> Self {
        if self.tls.is_some() {
            self.tls = Some(Tls { ca_pem });
        }
        self
    }

    /// `mqtt://user:***@host:port` (or `mqtts://…`), for logs and `/readyz`.
    pub fn display(&self) -> String {
        let scheme = if self.tls.is_some() { "mqtts" } else { "mqtt" };
        match &self.credentials {
            Some((user, _)) => format!("{scheme}://{user}:***@{}:{}", self.host, self.port),
            None => format!("{scheme}://{}:{}", self.host, self.port),
        }
    }

    pub(crate) fn options(&self, client_id: String) -> rumqttc::MqttOptions {
        let mut o = rumqttc::MqttOptions::new(client_id, self.host.clone(), self.port);
        if let Some((user, password)) = &self.credentials {
            o.set_credentials(user.clone(), password.clone());
        }
        if let Some(tls) = &self.tls {
            o.set_transport(rumqttc::Transport::tls_with_config(
                rumqttc::TlsConfiguration::Simple {
                    ca: tls.ca_pem.clone(),
                    alpn: None,
                    client_auth: None,
                },
            ));
        }
        o
    }
}

fn percent_decode(s: &str) -> String {
    url::form_urlencoded::parse(format!("x={s}").as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_else(|| s.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_with_and_without_credentials() {
        let c = MqttConfig::parse("mqtt://broker.internal").unwrap();
        assert_eq!(
            (c.host.as_str(), c.port, c.credentials),
            ("broker.internal", 1883, None)
        );
        let c = MqttConfig::parse("mqtt://ioto:s%40cret@10.0.0.5:8883/").unwrap();
        assert_eq!(c.port, 8883);
        assert_eq!(c.credentials, Some(("ioto".into(), "s@cret".into())));
        assert_eq!(c.display(), "mqtt://ioto:***@10.0.0.5:8883");
        assert!(!format!("{c:?}").contains("cret"));
        let c = MqttConfig::parse("tcp://[::1]:1884").unwrap();
        assert_eq!((c.host.as_str(), c.port), ("::1", 1884));
        let c = MqttConfig::parse("mqtts://ioto:pw@broker").unwrap();
        assert_eq!((c.port, c.wants_tls()), (8883, true));
        assert_eq!(c.display(), "mqtts://ioto:***@broker:8883");
    }

    #[test]
    fn what_cannot_work_is_refused_with_the_reason() {
        for (url, says) in [
            ("http://broker", "not mqtt://"),
            ("mqtt://:pw@broker", "no user name"),
            ("mqtt://broker/topic", "path"),
            ("broker:1883", "not mqtt://"),
            ("mqtt://broker:99999", "not a URL"),
        ] {
            let e = MqttConfig::parse(url).unwrap_err().to_string();
            assert!(e.starts_with("mqtt.url: ") && e.contains(says), "{url}: {e}");
        }
    }
}
