//! The browser pages: the GraphiQL playground (`/playground`, files in `playground/`) and the
//! console (`/console`, files in `web/console/`). Their files are embedded in the binary; the
//! vendored libraries are in `web/vendor/`, listed with their versions and licenses in
//! `web/vendor/README.md`. `http.web_dir` serves them from a checkout instead, for working on the
//! pages without rebuilding.

use std::path::Path;

use axum::body::Body;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};

use crate::server::state::AppState;

/// One embedded file: its path in the checkout, its content type and its bytes.
struct Asset {
    path: &'static str,
    content_type: &'static str,
    body: &'static [u8],
}

const JS: &str = "text/javascript; charset=utf-8";
const CSS: &str = "text/css; charset=utf-8";
const HTML: &str = "text/html; charset=utf-8";
const GRAPHQL: &str = "application/graphql; charset=utf-8";

macro_rules! asset {
    ($path:literal, $type:expr) => {
        Asset {
            path: $path,
            content_type: $type,
            body: include_bytes!(concat!("../../", $path)),
        }
    };
}

const PLAYGROUND: &[Asset] = &[
    asset!("playground/index.html", HTML),
    asset!("playground/playground.js", JS),
    asset!("playground/playground.css", CSS),
    asset!("playground/operations.graphql", GRAPHQL),
    asset!("web/vendor/graphiql.min.js", JS),
    asset!("web/vendor/graphiql.min.css", CSS),
    asset!("web/vendor/react.production.min.js", JS),
    asset!("web/vendor/react-dom.production.min.js", JS),
    asset!("web/vendor/graphql-ws.min.js", JS),
];

const CONSOLE: &[Asset] = &[
    asset!("web/console/index.html", HTML),
    asset!("web/console/console.css", CSS),
    asset!("web/console/app.js", JS),
    asset!("web/console/api.js", JS),
    asset!("web/console/ui.js", JS),
    asset!("web/console/charts.js", JS),
    asset!("web/console/dashboard.js", JS),
    asset!("web/console/fleet.js", JS),
    asset!("web/console/sim.js", JS),
    asset!("web/console/analytics.js", JS),
    asset!("web/console/bulk.js", JS),
    asset!("web/console/exports.js", JS),
    asset!("web/console/api-keys.js", JS),
    asset!("web/console/account.js", JS),
    asset!("web/console/alerts.js", JS),
    asset!("web/console/alert-parts.js", JS),
    asset!("web/console/alert-rules.js", JS),
    asset!("web/console/alert-rule-form.js", JS),
    asset!("web/console/sim-alerts.js", JS),
    asset!("web/console/sim-forecast.js", JS),
    asset!("web/console/forecast-words.js", JS),
    asset!("web/console/anomalies.js", JS),
    asset!("web/console/anomaly-parts.js", JS),
    asset!("web/console/advice-parts.js", JS),
    asset!("web/vendor/d3.min.js", JS),
    asset!("web/vendor/graphql-ws.min.js", JS),
];

/// Only this server's own scripts, styles and connections (WebSocket included); GraphiQL's
/// editors set inline styles, its icons are data URLs.
const PLAYGROUND_CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; \
     img-src 'self' data:; font-src 'self' data:; connect-src 'self' ws: wss:; frame-ancestors 'none'; \
     base-uri 'none'; form-action 'none'";

/// The console: no inline script or style at all, nothing from another origin (`'self'` covers
/// the same host's WebSocket), no frames, no plugins.
const CONSOLE_CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
     connect-src 'self'; font-src 'self'; manifest-src 'self'; frame-ancestors 'none'; base-uri 'none'; \
     form-action 'self'; object-src 'none'";

/// What a page (or an asset of it) needs to be served.
struct Page {
    name: &'static str,
    /// Its assets are served at `/{name}/assets/{file}`, from these directories of the checkout.
    dirs: &'static [&'static str],
    assets: &'static [Asset],
    csp: &'static str,
    disabled: &'static str,
}

const PLAYGROUND_PAGE: Page = Page {
    name: "playground",
    dirs: &["playground", "web/vendor"],
    assets: PLAYGROUND,
    csp: PLAYGROUND_CSP,
    disabled: "the playground is disabled (graphql.playground = false)",
};

const CONSOLE_PAGE: Page = Page {
    name: "console",
    dirs: &["web/console", "web/vendor"],
    assets: CONSOLE,
    csp: CONSOLE_CSP,
    disabled: "the console is disabled (http.console = false)",
};

/// A file's bytes: from `http.web_dir` when set, else embedded. Only files of the page's table
/// are served either way, so the directory cannot serve anything else.
fn body(dir: Option<&Path>, asset: &Asset) -> Result<Body, String> {
    match dir {
        None => Ok(Body::from(asset.body)),
        Some(dir) => std::fs::read(dir.join(asset.path))
            .map(Body::from)
            .map_err(|e| format!("http.web_dir: cannot read {}: {e}", asset.path)),
    }
}

/// What a request asks for: the page itself, or one of its assets (never the page's HTML).
#[derive(Clone, Copy)]
enum Wanted<'a> {
    Page,
    Asset(&'a str),
}

fn serve(page: &Page, enabled: bool, dir: Option<&Path>, wanted: Wanted<'_>) -> Response {
    if !enabled {
        return (StatusCode::NOT_FOUND, page.disabled).into_response();
    }
    let file = match wanted {
        Wanted::Page => "index.html",
        Wanted::Asset(f) => f,
    };
    let found = page
        .dirs
        .iter()
        .map(|d| format!("{d}/{file}"))
        .find_map(|w| page.assets.iter().find(|a| a.path == w))
        .filter(|a| matches!(wanted, Wanted::Page) || a.content_type != HTML);
    let Some(asset) = found else {
        return (
            StatusCode::NOT_FOUND,
            format!("no such {} asset: {file}", page.name),
        )
            .into_response();
    };
    let body = match body(dir, asset) {
        Ok(b) => b,
        Err(e) => return (StatusCode::INTERNAL_SERVER_ERROR, e).into_response(),
    };
    // Pages are not cached (they name the assets); assets are pinned by the build: a day is safe
    // and a new binary may change them. Files read from `web_dir` are never cached.
    let cache = if dir.is_some() || asset.content_type == HTML {
        "no-cache"
    } else {
        "public, max-age=86400"
    };
    (
        [
            (header::CONTENT_TYPE, asset.content_type),
            (header::CONTENT_SECURITY_POLICY, page.csp),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            (header::REFERRER_POLICY, "no-referrer"),
            (header::X_FRAME_OPTIONS, "DENY"),
            (header::CACHE_CONTROL, cache),
        ],
        body,
    )
        .into_response()
}

fn web_dir(st: &AppState) -> Option<&Path> {
    st.web_dir.as_deref()
}

pub async fn playground(State(st): State<AppState>) -> Response {
    serve(&PLAYGROUND_PAGE, st.playground, web_dir(&st), Wanted::Page)
}

pub async fn playground_asset(
    State(st): State<AppState>,
    axum::extract::Path(file): axum::extract::Path<String>,
) -> Response {
    serve(
        &PLAYGROUND_PAGE,
        st.playground,
        web_dir(&st),
        Wanted::Asset(&file),
    )
}

pub async fn playground_operations(State(st): State<AppState>) -> Response {
    serve(
        &PLAYGROUND_PAGE,
        st.playground,
        web_dir(&st),
        Wanted::Asset("operations.graphql"),
    )
}

pub async fn console(State(st): State<AppState>) -> Response {
    serve(&CONSOLE_PAGE, st.console, web_dir(&st), Wanted::Page)
}

pub async fn console_asset(
    State(st): State<AppState>,
    axum::extract::Path(file): axum::extract::Path<String>,
) -> Response {
    serve(&CONSOLE_PAGE, st.console, web_dir(&st), Wanted::Asset(&file))
}

/// Every embedded file of the console and its size, for the shipped-size report.
pub fn console_assets() -> impl Iterator<Item = (&'static str, &'static str, usize)> {
    CONSOLE.iter().map(|a| (a.path, a.content_type, a.body.len()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_console_script_is_listed_and_nothing_else_is_served() {
        // Each module the console imports must be in the table, or the page breaks only in a browser.
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("web/console");
        for entry in std::fs::read_dir(&dir).unwrap() {
            let name = entry.unwrap().file_name().into_string().unwrap();
            assert!(
                CONSOLE.iter().any(|a| a.path == format!("web/console/{name}")),
                "web/console/{name} is not embedded: add it to CONSOLE in src/server/web.rs"
            );
        }
        for bad in [
            "../Cargo.toml",
            "..%2FCargo.toml",
            "vendor/d3.min.js",
            "README.md",
            "index.html",
        ] {
            let r = serve(&CONSOLE_PAGE, true, None, Wanted::Asset(bad));
            assert_eq!(r.status(), StatusCode::NOT_FOUND, "{bad}");
        }
    }
}
