//! Who is calling, known from the request's head before any byte of its body is read.
//!
//! Every route that takes a body names its caller with an extractor from here ahead of the body
//! extractor; axum runs extractors of the head first, so a request without a valid token is
//! answered (401) without its body being read, and an upload is charged to its caller's rate
//! limit before it is read.
//!
//! The client's address is the TCP peer, or, when the peer is one of `http.trusted_proxies`, the
//! right-most address in `X-Forwarded-For` that is not itself a trusted proxy (addresses to its
//! left were written by whoever sent the request and prove nothing).

use std::net::{IpAddr, SocketAddr};
use std::time::Instant;

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::Response;
use ioto_domain::{Actor, Error};

use crate::server::auth::{authenticate, bearer};
use crate::server::state::AppState;

/// An address block (`10.0.0.0/8`, `2001:db8::/32`, or one address).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    net: IpAddr,
    prefix: u8,
}

impl Cidr {
    pub fn parse(s: &str) -> Result<Self, String> {
        let (addr, prefix) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        };
        let net: IpAddr = addr
            .trim()
            .parse()
            .map_err(|_| format!("{s:?} is not an IP address or CIDR block (10.0.0.0/8, 2001:db8::/32)"))?;
        let max = if net.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => max,
            Some(p) => p
                .trim()
                .parse::<u8>()
                .ok()
                .filter(|p| *p <= max)
                .ok_or_else(|| format!("{s:?}: the prefix length must be 0 to {max}"))?,
        };
        Ok(Self { net, prefix })
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        match (self.net, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX.checked_shl(32 - u32::from(self.prefix)).unwrap_or(0);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX.checked_shl(128 - u32::from(self.prefix)).unwrap_or(0);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

/// Whether a request is a multipart upload (`multipart/…`, in any case, as parsers read it).
pub fn is_multipart(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.trim_start().to_ascii_lowercase().starts_with("multipart/"))
}

/// One `X-Forwarded-For` hop as an address: `192.0.2.1`, `192.0.2.1:443`, `2001:db8::1` or
/// `[2001:db8::1]:443`.
fn hop_address(hop: &str) -> Option<IpAddr> {
    let hop = hop.trim();
    if let Ok(ip) = hop.parse::<IpAddr>() {
        return Some(ip);
    }
    hop.parse::<SocketAddr>().ok().map(|a| a.ip())
}

/// The client's address: the peer, or what trusted proxies say they received it from. Hops are
/// read from the right, each added by the proxy before it: the first that is not a trusted
/// proxy is the client. A hop that is not an address stops the walk at the last trusted proxy
/// (what is to its left was written by the client and proves nothing).
pub fn client_address(peer: Option<SocketAddr>, headers: &HeaderMap, trusted: &[Cidr]) -> Option<IpAddr> {
    let peer = peer?.ip();
    let is_trusted = |ip: IpAddr| trusted.iter().any(|c| c.contains(ip));
    if !is_trusted(peer) {
        return Some(peer);
    }
    let hops: Vec<&str> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .collect();
    let mut client = peer;
    for hop in hops.into_iter().rev() {
        match hop_address(hop) {
            Some(ip) if is_trusted(ip) => client = ip,
            Some(ip) => return Some(ip),
            None => break,
        }
    }
    Some(client)
}

fn peer(parts: &Parts) -> Option<SocketAddr> {
    parts.extensions.get::<ConnectInfo<SocketAddr>>().map(|c| c.0)
}

/// The caller named by the request's bearer token, if it sends one.
async fn actor(parts: &Parts, st: &AppState, client: Option<IpAddr>) -> Result<Option<Actor>, Error> {
    let Some(value) = parts.headers.get(header::AUTHORIZATION) else {
        return Ok(None);
    };
    let token =
        value.to_str().ok().and_then(bearer).ok_or_else(|| {
            Error::Unauthenticated("the Authorization header must be 'Bearer <token>'".into())
        })?;
    authenticate(&st.jwt, &st.sessions, token, client).await.map(Some)
}

/// The caller of a GraphQL request over HTTP: anonymous, or named by a valid token; refused
/// before its body is read when the token is not valid, or when it uploads files without one.
pub struct GraphQlCaller {
    pub actor: Option<Actor>,
    pub client: Option<IpAddr>,
}

impl FromRequestParts<AppState> for GraphQlCaller {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, st: &AppState) -> Result<Self, Response> {
        let client = client_address(peer(parts), &parts.headers, &st.trusted_proxies);
        let actor = match actor(parts, st, client).await {
            Ok(a) => a,
            Err(e) => {
                st.metrics.record_graphql_error(e.code().as_str());
                return Err(crate::server::http::graphql_error_response(&e));
            }
        };
        if is_multipart(&parts.headers) {
            let Some(actor) = &actor else {
                st.metrics.record_graphql_error("UNAUTHENTICATED");
                return Err(crate::server::http::graphql_error_response(
                    &Error::Unauthenticated("uploads need 'Authorization: Bearer <token>'".into()),
                ));
            };
            charge_upload(parts, st, actor, client)
                .map_err(|over| over.answer(crate::server::http::graphql_error_response))?;
        }
        Ok(Self { actor, client })
    }
}

/// The caller of a REST upload (`/imports/sims`, `/bulk-jobs`): a valid token is required, and
/// the upload is charged to the caller's rate limit, both before the body is read.
pub struct Uploader {
    pub actor: Actor,
}

impl FromRequestParts<AppState> for Uploader {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, st: &AppState) -> Result<Self, Response> {
        let client = client_address(peer(parts), &parts.headers, &st.trusted_proxies);
        let actor = actor(parts, st, client)
            .await
            .and_then(|a| {
                a.ok_or_else(|| Error::Unauthenticated("send 'Authorization: Bearer <token>'".into()))
            })
            .map_err(|e| crate::server::rest::rest_error(&e))?;
        charge_upload(parts, st, &actor, client)
            .map_err(|over| over.answer(crate::server::rest::rest_error))?;
        Ok(Self { actor })
    }
}

/// Points an upload costs per KiB: a full bulk file (21 MiB) costs about what a large query does.
const UPLOAD_KIB_PER_POINT: u64 = 16;

/// An upload refused by its caller's rate limit, and the seconds to wait.
struct OverLimit(Error, u64);

impl OverLimit {
    /// `response` (the route's own shape of the error) with `Retry-After`.
    fn answer(self, response: impl FnOnce(&Error) -> Response) -> Response {
        let mut r = response(&self.0);
        *r.status_mut() = StatusCode::TOO_MANY_REQUESTS;
        r.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(self.1));
        r
    }
}

/// Charges an upload to its caller's rate limit by its length (the route's largest body when it
/// does not say: hyper refuses a body longer than its `Content-Length`).
fn charge_upload(
    parts: &Parts,
    st: &AppState,
    actor: &Actor,
    client: Option<IpAddr>,
) -> Result<(), OverLimit> {
    let length = parts
        .headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
        .unwrap_or(st.upload_max_bytes);
    let cost = 1 + length.min(st.upload_max_bytes) / 1024 / UPLOAD_KIB_PER_POINT;
    match st.rate_limiter.charge(Some(actor), client, cost, Instant::now()) {
        Some(d) if !d.allowed => {
            let secs = d.retry_after.as_secs_f64().ceil().max(1.0) as u64;
            Err(OverLimit(
                Error::RateLimited(format!(
                    "this upload costs {cost} points and the {} limit has {} left; try again in {secs} s",
                    d.scope, d.remaining
                )),
                secs,
            ))
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn blocks() {
        let c = Cidr::parse("10.0.0.0/8").unwrap();
        assert!(c.contains(ip("10.2.3.4")) && !c.contains(ip("11.0.0.1")));
        assert!(
            c.contains(ip("::ffff:10.0.0.1")),
            "IPv4-mapped addresses match their IPv4 block"
        );
        assert!(Cidr::parse("127.0.0.1").unwrap().contains(ip("127.0.0.1")));
        assert!(Cidr::parse("0.0.0.0/0").unwrap().contains(ip("8.8.8.8")));
        assert!(Cidr::parse("2001:db8::/32").unwrap().contains(ip("2001:db8::1")));
        assert!(Cidr::parse("10.0.0.0/33").is_err());
        assert!(Cidr::parse("proxy.local").is_err());
    }

    #[test]
    fn forwarded_for_counts_only_from_trusted_proxies() {
        let trusted = [Cidr::parse("10.0.0.0/8").unwrap()];
        let mut h = HeaderMap::new();
        h.insert(
            "x-forwarded-for",
            HeaderValue::from_static("6.6.6.6, 203.0.113.9, 10.1.1.1"),
        );
        let from =
            |peer: &str, h: &HeaderMap| client_address(Some(SocketAddr::new(ip(peer), 1)), h, &trusted);
        assert_eq!(
            from("10.0.0.2", &h),
            Some(ip("203.0.113.9")),
            "the hop the proxies received it from"
        );
        assert_eq!(
            from("198.51.100.1", &h),
            Some(ip("198.51.100.1")),
            "an untrusted peer's header is ignored"
        );
        // What the client wrote to the left of the hop the proxy added cannot void it.
        h.insert("x-forwarded-for", HeaderValue::from_static("junk, 203.0.113.9"));
        assert_eq!(from("10.0.0.2", &h), Some(ip("203.0.113.9")));
        h.insert(
            "x-forwarded-for",
            HeaderValue::from_static("203.0.113.9:5123, [2001:db8::7]:443"),
        );
        assert_eq!(from("10.0.0.2", &h), Some(ip("2001:db8::7")), "hops with ports");
        h.insert(
            "x-forwarded-for",
            HeaderValue::from_static("203.0.113.9, junk, 10.1.1.1"),
        );
        assert_eq!(
            from("10.0.0.2", &h),
            Some(ip("10.1.1.1")),
            "a hop that is no address stops at the last proxy"
        );
        assert_eq!(from("10.0.0.2", &HeaderMap::new()), Some(ip("10.0.0.2")));
        let mut m = HeaderMap::new();
        m.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("Multipart/Form-Data; boundary=x"),
        );
        assert!(is_multipart(&m), "any case");
    }
}
