//! The HTTP side: WebSocket upgrades, the backend API, health, metrics and the demo page.

pub(crate) mod api;
pub(crate) mod head;
mod users_api;
mod web;
pub(crate) mod ws;

use crate::hub::Hub;
use axum::Router;
use axum::routing::{get, post};
use std::sync::Arc;

/// Every route the hub serves.
pub(crate) fn router(hub: Arc<Hub>) -> Router {
    let mut router = Router::new()
        .route("/healthz", get(api::healthz))
        .route("/metrics", get(api::metrics))
        .route("/api/publish", post(api::publish))
        .route("/api/broadcast", post(api::broadcast))
        .route("/api/history/{channel}", get(api::history))
        .route("/api/presence/{channel}", get(api::presence))
        .route(
            "/api/presence_counts/{channel}",
            get(users_api::presence_counts),
        )
        .route("/api/subscribe", post(users_api::subscribe))
        .route("/api/unsubscribe", post(users_api::unsubscribe))
        .route("/api/disconnect", post(users_api::disconnect))
        .route("/api/channels", get(users_api::channels))
        .route("/api/info", get(users_api::info))
        .route("/ws", get(ws::upgrade))
        .route("/sse", get(crate::transport::sse::stream))
        .route("/stream", get(crate::transport::stream::downstream))
        .route("/stream/{session}", post(crate::transport::stream::post));
    for asset in web::ASSETS {
        router = router.route(asset.path, get(move || async move { web::serve(asset) }));
    }
    for route in &hub.config.plain.routes {
        if route.path != "/ws" && !web::is_asset(&route.path) {
            router = router.route(&route.path, get(ws::upgrade));
        }
    }
    // No route reads a body through axum's extractors: the API reads its own under a size
    // and a time bound (`api::authorized_body`), every other handler ignores it (hyper then
    // closes the connection rather than read it).
    router.fallback(web::not_found).with_state(hub)
}
