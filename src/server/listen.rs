//! The accept loop: HTTP/1.1 connections served by hyper with bounds a plain `axum::serve`
//! does not set.
//!
//! - **A connection cap** (`http.max_connections`): each connection holds a permit for as long
//!   as its socket is open, WebSockets included (the permit travels with the socket into the
//!   upgrade). At the cap, new connections wait in the kernel's backlog until one closes.
//! - **A share per client** (`http.max_connections_per_client`): one address (trusted proxies
//!   aside) may hold at most this many of them; one more is closed at once, so that a single
//!   client cannot take every connection.
//! - **A header read timeout** (`http.header_read_timeout_seconds`): a client that opens a
//!   connection and sends its request head slowly, or not at all, is disconnected.
//! - Graceful shutdown: on the signal, connections finish the request in flight and close;
//!   [`serve`] returns once they have, or the grace period is over. Upgraded connections
//!   (WebSockets) are the application's: their subscriptions complete on the same signal.

use std::collections::HashMap;
use std::convert::Infallible;
use std::future::Future;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::extract::ConnectInfo;
use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tower::ServiceExt;

/// The bounds of the accept loop.
#[derive(Debug, Clone)]
pub struct Bounds {
    pub max_connections: usize,
    pub max_per_client: usize,
    /// Peers without a share of their own (`http.trusted_proxies`: all their clients come
    /// through them).
    pub shared_peers: Arc<[crate::server::caller::Cidr]>,
    pub header_read_timeout: Duration,
}

/// Connections open per client address.
#[derive(Clone, Default)]
struct PerClient(Arc<std::sync::Mutex<HashMap<IpAddr, usize>>>);

impl PerClient {
    fn open(&self) -> std::sync::MutexGuard<'_, HashMap<IpAddr, usize>> {
        self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// A slot for one more connection of `ip`, or `None` when it holds `most` already.
    fn take(&self, ip: IpAddr, most: usize) -> Option<ClientSlot> {
        let mut open = self.open();
        let n = open.entry(ip).or_default();
        if *n >= most {
            return None;
        }
        *n += 1;
        Some(ClientSlot {
            clients: self.clone(),
            ip,
        })
    }
}

/// One connection of a client, given back when the socket closes.
struct ClientSlot {
    clients: PerClient,
    ip: IpAddr,
}

impl Drop for ClientSlot {
    fn drop(&mut self) {
        let mut open = self.clients.open();
        if let Some(n) = open.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                open.remove(&self.ip);
            }
        }
    }
}

/// A socket holding its connection permit, and its client's slot, until it is closed.
struct Counted {
    stream: TcpStream,
    _permit: OwnedSemaphorePermit,
    _client: Option<ClientSlot>,
}

impl AsyncRead for Counted {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for Counted {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }
}

/// Serves `router` on `listener` until `signal` resolves, then lets connections finish for up
/// to `grace`. Handlers see the peer as `ConnectInfo<SocketAddr>`, as with axum's own server.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    bounds: Bounds,
    signal: impl Future<Output = ()> + Send + 'static,
    grace: Duration,
) -> anyhow::Result<()> {
    let permits = Arc::new(Semaphore::new(bounds.max_connections));
    let (closing_tx, closing_rx) = tokio::sync::watch::channel(false);
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(bounds.header_read_timeout);
    let mut signal = std::pin::pin!(signal);
    let mut connections = tokio::task::JoinSet::new();
    let clients = PerClient::default();
    loop {
        // Forget connections that are done.
        while connections.try_join_next().is_some() {}
        let permit = tokio::select! {
            p = Arc::clone(&permits).acquire_owned() => p?,
            () = &mut signal => break,
        };
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                // Out of file descriptors and the like: wait a moment rather than spin.
                Err(e) => {
                    tracing::warn!(error = %e, "accepting a connection");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut signal => break,
        };
        let ip = match peer.ip() {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
            v4 => v4,
        };
        let client = if bounds.shared_peers.iter().any(|c| c.contains(ip)) {
            None
        } else {
            match clients.take(ip, bounds.max_per_client) {
                Some(slot) => Some(slot),
                // Its share is taken: closed at once (the permit goes back with it).
                None => {
                    tracing::debug!(%peer, "a client holds its share of connections; closing one more");
                    continue;
                }
            }
        };
        let _ = stream.set_nodelay(true);
        let io = TokioIo::new(Counted {
            stream,
            _permit: permit,
            _client: client,
        });
        let router = router.clone();
        let service = hyper::service::service_fn(move |mut req: hyper::Request<hyper::body::Incoming>| {
            req.extensions_mut().insert(ConnectInfo(peer));
            let router = router.clone();
            async move {
                Ok::<_, Infallible>(
                    router
                        .oneshot(req.map(axum::body::Body::new))
                        .await
                        .unwrap_or_else(|e| match e {}),
                )
            }
        });
        let conn = builder.serve_connection(io, service).with_upgrades();
        let mut closing = closing_rx.clone();
        connections.spawn(async move {
            let mut conn = std::pin::pin!(conn);
            tokio::select! {
                result = conn.as_mut() => {
                    if let Err(e) = result {
                        tracing::debug!(error = %e, %peer, "connection ended");
                    }
                    return;
                }
                _ = closing.wait_for(|c| *c) => conn.as_mut().graceful_shutdown(),
            }
            if let Err(e) = conn.await {
                tracing::debug!(error = %e, %peer, "connection ended");
            }
        });
    }
    drop(listener);
    let _ = closing_tx.send(true);
    let drained = async { while connections.join_next().await.is_some() {} };
    if tokio::time::timeout(grace, drained).await.is_err() {
        tracing::warn!(
            seconds = grace.as_secs(),
            "connections still open after the grace period; stopping"
        );
    }
    Ok(())
}
