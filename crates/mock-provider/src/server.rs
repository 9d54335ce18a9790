//! The HTTP server: configuration, the router shared by every dialect, request recording,
//! the accept loop (TCP_NODELAY, bounded graceful shutdown) and the handle tests hold.

use arc_swap::ArcSwap;
use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::get;
use http::{Method, Uri};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder;
use hyper_util::service::TowerToHyperService;
use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::common::read_body;
use crate::openai;
use crate::record::{RecordedRequest, Recorder};
use crate::script::Script;

/// How a mock server behaves.
#[derive(Debug, Clone)]
pub struct MockConfig {
    /// When set, requests must present exactly this key (`Authorization: Bearer …`); when
    /// unset any non-empty key is accepted (a missing key is still a 401, as upstream).
    pub api_key: Option<String>,
    /// The script of every request that does not override it (changeable at runtime with
    /// [`MockHandle::set_defaults`]).
    pub defaults: Script,
    /// Keep received requests for [`MockHandle::requests`] (turn off for benchmarks; the
    /// count is always kept).
    pub record: bool,
    /// How many recent requests to keep.
    pub record_limit: usize,
    /// Largest accepted request body; larger ones get a 413.
    pub max_body_bytes: usize,
    /// On shutdown, how long in-flight responses may take before connections are cut.
    pub shutdown_grace: Duration,
    /// Model ids listed by `GET /v1/models`.
    pub models: Vec<String>,
}

impl Default for MockConfig {
    fn default() -> Self {
        MockConfig {
            api_key: None,
            defaults: Script::default(),
            record: true,
            record_limit: 10_000,
            max_body_bytes: 32 * 1024 * 1024,
            shutdown_grace: Duration::from_secs(1),
            models: [
                "gpt-4o-mini",
                "gpt-4o",
                "gpt-4.1",
                "o3-mini",
                "gpt-3.5-turbo-instruct",
                "text-embedding-3-small",
            ]
            .into_iter()
            .map(str::to_owned)
            .collect(),
        }
    }
}

/// State shared by every connection of one server.
pub(crate) struct Shared {
    pub api_key: Option<String>,
    pub defaults: ArcSwap<Script>,
    pub recorder: Recorder,
    pub max_body_bytes: usize,
    pub models: Vec<String>,
}

pub(crate) type App = Arc<Shared>;

/// A running mock server. Dropping it stops the server in the background;
/// [`MockHandle::shutdown`] stops it and waits.
pub struct MockHandle {
    addr: SocketAddr,
    shared: App,
    stop: CancellationToken,
    task: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for MockHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MockHandle")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

impl MockHandle {
    /// The bound address (with the real port when bound to port 0).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://IP:PORT`.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// `http://IP:PORT/v1`, the base URL an OpenAI client or provider config wants.
    pub fn openai_base_url(&self) -> String {
        format!("http://{}/v1", self.addr)
    }

    /// Every kept request, oldest first (the last `record_limit` ones).
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.shared.recorder.snapshot()
    }

    /// The most recent kept request.
    pub fn last_request(&self) -> Option<RecordedRequest> {
        self.shared.recorder.snapshot().pop()
    }

    /// How many requests arrived in total (also when recording is off).
    pub fn request_count(&self) -> usize {
        self.shared.recorder.total()
    }

    /// Forgets the kept requests (the total count keeps counting).
    pub fn clear_requests(&self) {
        self.shared.recorder.clear();
    }

    /// Replaces the default script for all following requests.
    pub fn set_defaults(&self, script: Script) {
        self.shared.defaults.store(Arc::new(script));
    }

    /// The current default script.
    pub fn defaults(&self) -> Script {
        (**self.shared.defaults.load()).clone()
    }

    /// Stops accepting, lets in-flight responses finish within the configured grace period,
    /// cuts the rest, and returns when every connection is closed.
    pub async fn shutdown(mut self) {
        self.stop.cancel();
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for MockHandle {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

/// Starts a mock server on `127.0.0.1:0` (a free port).
pub async fn spawn(config: MockConfig) -> io::Result<MockHandle> {
    spawn_on(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)), config).await
}

/// Starts a mock server on `addr`. It accepts connections once this returns.
pub async fn spawn_on(addr: SocketAddr, config: MockConfig) -> io::Result<MockHandle> {
    let listener = TcpListener::bind(addr).await?;
    let addr = listener.local_addr()?;
    let grace = config.shutdown_grace;
    let shared: App = Arc::new(Shared {
        api_key: config.api_key,
        defaults: ArcSwap::from_pointee(config.defaults),
        recorder: Recorder::new(config.record, config.record_limit),
        max_body_bytes: config.max_body_bytes,
        models: config.models,
    });
    let stop = CancellationToken::new();
    let task = tokio::spawn(serve(listener, router(shared.clone()), stop.clone(), grace));
    Ok(MockHandle {
        addr,
        shared,
        stop,
        task: Some(task),
    })
}

/// Every dialect's routes, `/health`, the 404 fallback, and recording around all of them.
fn router(app: App) -> Router {
    Router::new()
        .merge(openai::routes())
        .merge(crate::native::routes())
        .route("/health", get(|| async { "ok" }))
        .fallback(fallback)
        .method_not_allowed_fallback(fallback)
        .layer(middleware::from_fn_with_state(app.clone(), record))
        .with_state(app)
}

async fn fallback(method: Method, uri: Uri) -> Response {
    openai::not_found(method.as_str(), uri.path())
}

/// Records the request (buffering its body) unless recording is off, then passes it on.
async fn record(State(app): State<App>, req: Request, next: Next) -> Response {
    if !app.recorder.enabled() {
        app.recorder.count();
        return next.run(req).await;
    }
    let (parts, body) = req.into_parts();
    match read_body(body, app.max_body_bytes).await {
        Ok(bytes) => {
            app.recorder
                .record(&parts.method, &parts.uri, &parts.headers, &bytes);
            next.run(Request::from_parts(parts, Body::from(bytes)))
                .await
        }
        Err(too_large) => {
            app.recorder.record(
                &parts.method,
                &parts.uri,
                &parts.headers,
                &bytes::Bytes::new(),
            );
            if too_large {
                openai::ApiError::too_large(app.max_body_bytes).into_response()
            } else {
                openai::ApiError::bad_json().into_response()
            }
        }
    }
}

/// The accept loop: one task per connection, all tracked so shutdown can wait for them.
async fn serve(listener: TcpListener, router: Router, stop: CancellationToken, grace: Duration) {
    let tracker = TaskTracker::new();
    loop {
        let stream = tokio::select! {
            biased;
            () = stop.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(_) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                }
            },
        };
        let _ = stream.set_nodelay(true);
        let service = TowerToHyperService::new(router.clone());
        let stop = stop.clone();
        tracker.spawn(async move {
            let builder = Builder::new(TokioExecutor::new());
            let conn = builder.serve_connection(TokioIo::new(stream), service);
            let mut conn = std::pin::pin!(conn);
            tokio::select! {
                _ = conn.as_mut() => {}
                () = stop.cancelled() => {
                    conn.as_mut().graceful_shutdown();
                    let _ = tokio::time::timeout(grace, conn.as_mut()).await;
                }
            }
        });
    }
    drop(listener);
    tracker.close();
    tracker.wait().await;
}
