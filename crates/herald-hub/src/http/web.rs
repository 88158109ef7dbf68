//! The demo pages and herald.js, embedded in the binary: `herald serve` needs no files beside it.

use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};

/// One embedded file and the path it is served at.
pub(super) struct Asset {
    pub(super) path: &'static str,
    content_type: &'static str,
    body: &'static str,
}

const HTML: &str = "text/html; charset=utf-8";
const JS: &str = "text/javascript; charset=utf-8";
const CSS: &str = "text/css; charset=utf-8";

/// Every embedded file. `/` is the chat page.
pub(super) const ASSETS: &[Asset] = &[
    asset("/", HTML, include_str!("../../../../web/index.html")),
    asset(
        "/index.html",
        HTML,
        include_str!("../../../../web/index.html"),
    ),
    asset(
        "/plain.html",
        HTML,
        include_str!("../../../../web/plain.html"),
    ),
    asset(
        "/events.html",
        HTML,
        include_str!("../../../../web/events.html"),
    ),
    asset("/events.js", JS, include_str!("../../../../web/events.js")),
    asset("/chat.js", JS, include_str!("../../../../web/chat.js")),
    asset("/plain.js", JS, include_str!("../../../../web/plain.js")),
    asset("/chat.css", CSS, include_str!("../../../../web/chat.css")),
    asset("/herald.js", JS, include_str!("../../../../web/herald.js")),
    asset(
        "/herald.d.ts",
        JS,
        include_str!("../../../../web/herald.d.ts"),
    ),
];

/// The operator's page (`/admin`), served behind its credentials (`admin.rs`).
pub(super) const ADMIN_ASSETS: &[Asset] = &[
    asset("/admin", HTML, include_str!("../../../../web/admin.html")),
    asset(
        "/admin/admin.js",
        JS,
        include_str!("../../../../web/admin.js"),
    ),
    asset(
        "/admin/admin.css",
        CSS,
        include_str!("../../../../web/admin.css"),
    ),
];

const fn asset(path: &'static str, content_type: &'static str, body: &'static str) -> Asset {
    Asset {
        path,
        content_type,
        body,
    }
}

/// Whether `path` is taken by an embedded file (so no plain-mode route may claim it).
pub(super) fn is_asset(path: &str) -> bool {
    ASSETS.iter().chain(ADMIN_ASSETS).any(|a| a.path == path)
}

// The pages run only their own scripts and styles and talk only to this server: even a
// rendering bug cannot run a script smuggled into a chat message.
const PAGE_POLICY: &str = "default-src 'self'; connect-src 'self'; img-src 'self' data:; \
                           base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

pub(super) fn serve(asset: &'static Asset) -> Response {
    let mut response = (
        [
            (header::CONTENT_TYPE, asset.content_type),
            (header::CACHE_CONTROL, "no-cache"),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        ],
        asset.body,
    )
        .into_response();
    if asset.content_type == HTML {
        response.headers_mut().insert(
            header::CONTENT_SECURITY_POLICY,
            header::HeaderValue::from_static(PAGE_POLICY),
        );
    }
    response
}

pub(super) async fn not_found() -> Response {
    (StatusCode::NOT_FOUND, "not found\n").into_response()
}
