//! The broker address, from `mqtt.url`, parsed by the `url` crate.

use ioto_domain::{Error, Result};

/// Where the MQTT broker is and how to sign in to it.
#[derive(Clone, PartialEq, Eq)]
pub struct MqttConfig {
    pub host: String,
    pub port: u16,
    /// User name and password from the URL's user information.
    pub credentials: Option<(String, String)>,
}

impl std::fmt::Debug for MqttConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.display())
    }
}

impl MqttConfig {
    /// `mqtt://[user[:password]@]host[:port]` (also `tcp://`); the port defaults to 1883.
    /// `mqtts://` (TLS) is refused with a message saying so, rather than connecting in clear text.
    pub fn parse(url: &str) -> Result<Self> {
        let bad = |why: String| Error::invalid("mqtt.url", why);
        let parsed =
            url::Url::parse(url).map_err(|e| bad(format!("not a URL ({e}); expected mqtt://host:1883")))?;
        match parsed.scheme() {
            "mqtt" | "tcp" => {}
            "mqtts" | "ssl" => {
                return Err(bad(
                    "TLS to the broker (mqtts://) is not supported yet; use mqtt:// inside a trusted network or a TLS-terminating proxy"
                        .into(),
                ))
            }
            other => return Err(bad(format!("scheme '{other}' is not mqtt://"))),
        }
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
            port: parsed.port().unwrap_or(1883),
            credentials,
        })
    }

    /// `mqtt://user:***@host:port`, for logs and `/readyz`.
    pub fn display(&self) -> String {
        match &self.credentials {
            Some((user, _)) => format!("mqtt://{user}:***@{}:{}", self.host, self.port),
            None => format!("mqtt://{}:{}", self.host, self.port),
        }
    }

    pub(crate) fn options(&self, client_id: String) -> rumqttc::MqttOptions {
        let mut o = rumqttc::MqttOptions::new(client_id, self.host.clone(), self.port);
        if let Some((user, password)) = &self.credentials {
            o.set_credentials(user.clone(), password.clone());
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
    }

    #[test]
    fn what_cannot_work_is_refused_with_the_reason() {
        for (url, says) in [
            ("mqtts://broker:8883", "TLS"),
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
