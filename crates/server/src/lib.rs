//! The Switchyard HTTP server.
//!
//! A request's way through this crate:
//! 1. [`app`] routes it (`/api/v1/...` and the `/v1/...` aliases);
//! 2. [`auth`] authenticates it (the `Principal` extractor);
//! 3. [`handlers::inference`] reads the body within the size limit;
//! 4. [`executor`] validates it, asks the router for a plan, calls the provider
//!    ([`provider`]), translates the response (switchyard-translate) and fails over
//!    while nothing has been sent;
//! 5. [`accounting`] prices the usage and records the generation; [`metrics`] exports it.
//!
//! Errors are [`error::ApiError`], mapped to HTTP in one place.
#![forbid(unsafe_code)]

pub mod accounting;
pub mod accounts;
pub mod auth;
pub mod error;
pub mod executor;
pub mod handlers;
pub mod metrics;
pub mod provider;
pub mod state;

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use axum::routing::{get, post};
use tokio::net::TcpListener;

pub use state::{AppState, Gateway, GatewaySettings, NodeShared};

/// The router with every route of the contract.
pub fn app(state: AppState) -> Router {
    use handlers::{catalog, inference, ops};
    let inference_routes = Router::new()
        .route("/chat/completions", post(inference::chat))
        .route("/completions", post(inference::completions))
        .route("/embeddings", post(inference::embeddings))
        .route("/messages", post(inference::messages))
        .route("/models", get(catalog::list_models));
    use handlers::account;
    let api = inference_routes
        .clone()
        .route("/keys", get(account::list_keys).post(account::create_key))
        .route(
            "/keys/{hash}",
            get(account::get_key)
                .patch(account::update_key)
                .delete(account::delete_key),
        )
        .route("/key", get(account::current_key))
        .route("/auth/key", get(account::current_key))
        .route("/credits", get(account::credits))
        .route("/generation", get(account::generation))
        .route(
            "/models/{author}/{slug}/endpoints",
            get(catalog::model_endpoints),
        )
        .route("/providers", get(catalog::list_providers));
    Router::new()
        .nest("/api/v1", api)
        .nest("/v1", inference_routes)
        .route("/health", get(ops::health))
        .route("/metrics", get(ops::metrics))
        .fallback(ops::not_found)
        .method_not_allowed_fallback(ops::method_not_allowed)
        .with_state(state)
}

/// Serve until `shutdown` resolves, then stop accepting and give in-flight requests and
/// streams up to `grace` to finish.
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
    grace: Duration,
) -> std::io::Result<()> {
    use axum::serve::ListenerExt;
    let listener = listener.tap_io(|tcp| {
        let _ = tcp.set_nodelay(true);
    });
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let server = axum::serve(listener, app(state)).with_graceful_shutdown(async move {
        shutdown.await;
        let _ = tx.send(());
    });
    let server = server.into_future();
    tokio::pin!(server);
    tokio::select! {
        r = &mut server => r,
        _ = async {
            let _ = rx.await;
            tokio::time::sleep(grace).await;
        } => {
            tracing::warn!("grace period over; closing remaining connections");
            Ok(())
        }
    }
}

/// Run the gateway on `workers` threads, each with its own single-threaded runtime and
/// upstream connection pools, all accepting on one listening socket (duplicated per
/// worker) — the nginx worker model: a connection never changes thread, so there are no
/// cross-thread wake-ups on the hot path.
///
/// One socket rather than `SO_REUSEPORT` sockets on purpose: with `SO_REUSEPORT` a second
/// gateway started by mistake on the same port (or handed the same ephemeral port) would
/// silently take half the connections; with one socket it fails with "address in use".
///
/// `make_state` builds one worker's state (its own HTTP clients). `on_bound` is called once
/// with the bound address (useful with port 0). Returns when `shutdown` is cancelled and
/// every worker has drained (each bounded by `grace`).
pub fn serve_workers(
    addr: SocketAddr,
    workers: usize,
    make_state: impl Fn() -> Result<AppState, String> + Send + Sync + 'static,
    shutdown: tokio_util::sync::CancellationToken,
    grace: Duration,
    on_bound: impl FnOnce(SocketAddr),
) -> Result<(), String> {
    let make_state = std::sync::Arc::new(make_state);
    let workers = workers.max(1);
    let listener =
        std::net::TcpListener::bind(addr).map_err(|e| format!("cannot listen on {addr}: {e}"))?;
    listener
        .set_nonblocking(true)
        .map_err(|e| format!("cannot listen on {addr}: {e}"))?;
    let bound_addr = listener
        .local_addr()
        .map_err(|e| format!("cannot read the listening address: {e}"))?;
    let mut handles = Vec::with_capacity(workers);
    let mut bound = bound_addr;
    for i in 0..workers {
        let (tx, rx) = std::sync::mpsc::channel::<Result<SocketAddr, String>>();
        let make_state = make_state.clone();
        let worker_shutdown = shutdown.clone();
        let worker_socket = listener.try_clone();
        let handle = std::thread::Builder::new()
            .name(format!("switchyard-worker-{i}"))
            .spawn(move || {
                let rt = match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(rt) => rt,
                    Err(e) => {
                        let _ = tx.send(Err(format!("worker {i}: cannot start runtime: {e}")));
                        return;
                    }
                };
                rt.block_on(async move {
                    let state = match make_state() {
                        Ok(s) => s,
                        Err(e) => {
                            let _ = tx.send(Err(e));
                            return;
                        }
                    };
                    let listener = match worker_socket.and_then(TcpListener::from_std) {
                        Ok(l) => l,
                        Err(e) => {
                            let _ = tx.send(Err(format!("cannot listen on {bound}: {e}")));
                            return;
                        }
                    };
                    let local = listener.local_addr().unwrap_or(bound);
                    let _ = tx.send(Ok(local));
                    if let Err(e) =
                        serve(listener, state, worker_shutdown.cancelled_owned(), grace).await
                    {
                        tracing::error!(worker = i, error = %e, "worker stopped with an error");
                    }
                });
            })
            .map_err(|e| format!("cannot start worker thread: {e}"))?;
        match rx.recv() {
            Ok(Ok(local)) => bound = local, // later workers share the (possibly ephemeral) port
            Ok(Err(e)) => {
                shutdown.cancel();
                return Err(e);
            }
            Err(_) => {
                shutdown.cancel();
                return Err(format!("worker {i} failed to start"));
            }
        }
        handles.push(handle);
    }
    on_bound(bound);
    for h in handles {
        let _ = h.join();
    }
    Ok(())
}
