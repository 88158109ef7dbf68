//! The HTTP side: WebSocket upgrades, the backend API, health, metrics and the demo page.

mod admin;
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
        .route("/ws", websocket())
        .route("/sse", get(crate::transport::sse::stream))
        .route("/stream", get(crate::transport::stream::downstream))
        .route("/stream/{session}", post(crate::transport::stream::post))
        .route("/poll", get(crate::transport::poll::open))
        .route(
            "/poll/{session}",
            get(crate::transport::poll::poll).post(crate::transport::stream::post),
        );
    for asset in web::ASSETS {
        router = router.route(asset.path, get(move || async move { web::serve(asset) }));
    }
    if hub.config.admin.enabled {
        router = admin::routes(router);
    }
    if !hub.pusher.is_empty() {
        router = router
            .route("/app/{key}", get(crate::pusher::ws::upgrade))
            .route("/apps/{id}/events", post(crate::pusher::api::events))
            .route(
                "/apps/{id}/batch_events",
                post(crate::pusher::api::batch_events),
            )
            .route("/apps/{id}/channels", get(crate::pusher::api::channels))
            .route(
                "/apps/{id}/channels/{name}",
                get(crate::pusher::api::channel),
            )
            .route(
                "/apps/{id}/channels/{name}/users",
                get(crate::pusher::api::users),
            )
            .route(
                "/apps/{id}/users/{user}/terminate_connections",
                post(crate::pusher::api::terminate_connections),
            );
    }
    for route in &hub.config.plain.routes {
        if route.path != "/ws" && !web::is_asset(&route.path) {
            router = router.route(&route.path, websocket());
        }
    }
    // No route reads a body through axum's extractors: the API reads its own under a size
    // and a time bound (`api::authorized_body`), every other handler ignores it (hyper then
    // closes the connection rather than read it).
    router.fallback(web::not_found).with_state(hub)
}

/// A WebSocket route: `GET` for the HTTP/1.1 upgrade, `CONNECT` for HTTP/2's extended
/// CONNECT (RFC 8441 §4).
fn websocket() -> axum::routing::MethodRouter<Arc<Hub>> {
    axum::routing::on(
        axum::routing::MethodFilter::GET.or(axum::routing::MethodFilter::CONNECT),
        ws::upgrade,
    )
}
