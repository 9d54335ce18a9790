//! The executor: runs one inference request through its routing plan.
//!
//! For each planned endpoint (in order) it encodes the upstream body, sends it with the
//! provider's timeouts, and either returns the translated response or — while nothing has
//! been sent to the client — fails over to the next endpoint on connect errors, timeouts,
//! 429 and 5xx. Once a stream has started, failures become a final error chunk.
//! Every generation that reached a provider is priced and recorded by [`accounting`].

use std::convert::Infallible;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::body::Body;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::Response;
use bytes::Bytes;
use futures::FutureExt;
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use switchyard_router::plan::{self, PlannedEndpoint};
use switchyard_router::sticky;
use switchyard_router::{
    ConversationKey, EndpointSignal, HealthRegistry, Pricing, ProviderPrefs, RequestFacts,
    RouteError,
};
use switchyard_translate::response::{
    ParsedResponse, ResponseError, ResponseMeta, StreamRewriter, encode_error_chunk,
    encode_usage_chunk,
};
use switchyard_translate::{Endpoint, RequestView, anthropic, bedrock, cohere, gemini};
use switchyard_wire::openai::MessageView;

use crate::accounting::{self, Generation, Outcome};
use crate::accounts::Reservation;
use crate::auth::Principal;
use crate::error::{ApiError, AttemptError, client_status_for_upstream, retryable_upstream_status};
use crate::metrics::{self, InFlight};
use crate::provider::{Provider, ProviderKind};
use crate::state::AppState;

/// Largest upstream JSON body we accept (a long completion with logprobs is a few MB).
const MAX_UPSTREAM_BODY: usize = 64 * 1024 * 1024;
/// How much of an upstream error body we keep for `metadata.raw`.
const MAX_ERROR_BODY: usize = 64 * 1024;
/// Longest a non-streaming response waits for its ledger record to commit.
const LEDGER_WAIT: Duration = Duration::from_secs(2);
/// SSE comment sent while the upstream is silent, as OpenRouter does.
const KEEPALIVE: &[u8] = b": OPENROUTER PROCESSING\n\n";

/// A fresh generation id: `gen-<unix seconds>-<20 alphanumerics>`, OpenRouter's shape.
///
/// The 20 characters are this process's random 8-character prefix and a 12-digit base-62
/// counter, so ids are unique across nodes and restarts and ascend within a node: the
/// ledger's primary-key index then grows at one end instead of dirtying a random page
/// per row (measured: about 10 KB of disk writes per generation with random ids on SQLite).
/// Ids need not be secret: a generation is visible only to the key that made it.
pub fn new_generation_id() -> String {
    use std::sync::OnceLock;
    use std::sync::atomic::{AtomicU64, Ordering};
    const DIGITS: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    static PREFIX: OnceLock<String> = OnceLock::new();
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let prefix = PREFIX.get_or_init(|| (0..8).map(|_| fastrand::alphanumeric()).collect());
    let mut n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let mut digits = [b'0'; 12];
    for d in digits.iter_mut().rev() {
        *d = DIGITS[(n % 62) as usize];
        n /= 62;
    }
    let mut id = String::with_capacity(36);
    id.push_str("gen-");
    id.push_str(&unix_now().to_string());
    id.push('-');
    id.push_str(prefix);
    id.extend(digits.iter().map(|&b| char::from(b)));
    id
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn route_error(e: RouteError) -> ApiError {
    match e {
        RouteError::UnknownModel(_) | RouteError::Filtered { .. } => {
            ApiError::NotFound(e.to_string())
        }
        RouteError::NoEndpoints { .. } => ApiError::NoProvider(e.to_string()),
        RouteError::InvalidPreferences(m) => ApiError::BadRequest(m),
    }
}

/// The request's `provider` object, with provider names (slugs or display names)
/// resolved to slugs; an unknown name is a 400 rather than a silent no-op.
fn routing_preferences(
    state: &AppState,
    view: &RequestView<'_>,
) -> Result<ProviderPrefs, ApiError> {
    let raw = match (&state.settings.default_provider, view.provider) {
        (None, None) => return Ok(ProviderPrefs::default()),
        (None, Some(r)) => std::borrow::Cow::Borrowed(r.get()),
        (Some(d), r) => std::borrow::Cow::Owned(
            switchyard_router::prefs::merge_json(d, r.map(|r| r.get()))
                .map_err(ApiError::BadRequest)?,
        ),
    };
    let mut prefs = ProviderPrefs::parse(&raw).map_err(ApiError::BadRequest)?;
    let resolve = |name: &str| -> Result<String, ApiError> {
        if state.providers.contains_key(name) {
            return Ok(name.to_string());
        }
        if let Some(p) = state.providers.values().find(|p| {
            p.config.name.eq_ignore_ascii_case(name) || p.config.slug.eq_ignore_ascii_case(name)
        }) {
            return Ok(p.config.slug.clone());
        }
        let known = state
            .catalog
            .models()
            .iter()
            .flat_map(|m| m.endpoints.iter())
            .any(|e| e.provider.eq_ignore_ascii_case(name));
        if known {
            Ok(name.to_ascii_lowercase())
        } else {
            Err(ApiError::BadRequest(format!(
                "Unknown provider {name:?} in `provider` (use a provider slug such as {:?})",
                state
                    .providers
                    .keys()
                    .next()
                    .map_or("openai", String::as_str)
            )))
        }
    };
    for list in [&mut prefs.order, &mut prefs.only, &mut prefs.ignore] {
        for name in list.iter_mut() {
            *name = resolve(name)?;
        }
    }
    Ok(prefs)
}

/// Why one attempt failed, and whether the next endpoint should be tried.
struct AttemptFailure {
    error: ApiError,
    retryable: bool,
}

/// Run the request; `gen_id` is already on the response headers.
pub async fn execute(
    state: &AppState,
    principal: Principal,
    endpoint: Endpoint,
    gen_id: &str,
    body: &[u8],
    session_header: Option<&str>,
) -> Result<Response, ApiError> {
    let started = Instant::now();
    let view =
        RequestView::parse(endpoint, body).map_err(|e| ApiError::BadRequest(e.to_string()))?;
    let mut requested: Vec<&str> = Vec::with_capacity(1 + view.models.len());
    requested.push(&view.model);
    requested.extend(view.models.iter().map(|m| m.as_ref()));
    let prefs = routing_preferences(state, &view)?;
    let facts = RequestFacts {
        params: view
            .body
            .members
            .iter()
            .map(|(k, _)| k.as_ref())
            .filter(|k| plan::PARAMETER_NAMES.contains(k))
            .collect(),
        images: view.images,
    };
    let mut rand = fastrand::f64;
    let now = Instant::now();
    let signal = |e: &switchyard_router::EndpointSpec| {
        let h = state.health.get(&e.provider, &e.model);
        EndpointSignal {
            admission: h.admission(now, &state.health.config),
            ttfb_ms: h.ttfb_ms,
            throughput_tps: h.throughput_tps,
        }
    };
    let plan = plan::plan(
        &state.catalog,
        &requested,
        &prefs,
        &facts,
        |e| state.endpoint_serves(e, view.endpoint),
        &signal,
        &mut rand,
    )
    .map_err(route_error)?;
    let mut plan = plan;

    // Sticky routing: a conversation that was served before goes back to that endpoint.
    let sticky_key = if prefs.order.is_empty() {
        conversation_key(&view, &principal, session_header)
    } else {
        None
    };
    if let Some(key) = &sticky_key
        && let Some((provider, model)) = state.sticky.get(key, Instant::now())
        && let Some(i) = plan
            .attempts
            .iter()
            .position(|a| a.endpoint.provider == provider && a.endpoint.model == model)
    {
        let a = plan.attempts.remove(i);
        plan.attempts.insert(0, a);
    }

    if let Some(a) = &state.accounts {
        a.check_credits()?;
    }
    // Budget: reserve the worst case of the plan before any upstream call.
    let reservation = match (&principal, &state.accounts) {
        (Principal::Key(key), Some(a)) => {
            a.admit(key).await?;
            Some(a.reserve(key, worst_case_cost(&view, &plan)).await?)
        }
        // Keys are authenticated by the accounts: one cannot exist without them.
        (Principal::Key(_), None) => {
            return Err(ApiError::Internal("an API key without accounts".into()));
        }
        (Principal::Admin, _) => None,
    };
    let ctx = AttemptCtx {
        state,
        principal: &principal,
        view: &view,
        gen_id,
        started,
        sticky_key: sticky_key.as_ref(),
        reservation: std::sync::Mutex::new(reservation),
    };
    let attempts = &plan.attempts;
    let mut previous: Vec<AttemptError> = Vec::new();
    let mut last: Option<ApiError> = None;
    let mut waited_retry_after = false;
    let mut i = 0;
    while i < attempts.len() {
        // Hedging: if the first endpoint has not answered within the delay, race the next.
        let hedge = state
            .settings
            .hedge_after
            .filter(|_| i + 1 < attempts.len());
        let (result, used) = match hedge {
            Some(delay) => run_hedged(&ctx, &attempts[i], &attempts[i + 1], delay).await,
            None => (
                run_attempt(&ctx, &attempts[i]).await.map_err(|f| vec![f]),
                1,
            ),
        };
        let failures = match result {
            Ok(resp) => return Ok(resp),
            Err(f) => f,
        };
        let mut retry_same = None;
        for f in failures {
            if !f.retryable {
                return Err(with_previous(f.error, previous));
            }
            // The last endpoint is rate limited with a short Retry-After: wait once and retry
            // it rather than fail (nothing has been sent to the client yet).
            if let ApiError::Upstream {
                status: 429,
                retry_after: Some(secs),
                ..
            } = f.error
                && i + used >= attempts.len()
                && !waited_retry_after
                && Duration::from_secs(secs) <= state.settings.max_retry_after
            {
                retry_same = Some(Duration::from_secs(secs));
            }
            if let Some(prev) = last.take() {
                previous.push(attempt_error(&prev));
            }
            last = Some(f.error);
        }
        if let Some(wait) = retry_same {
            waited_retry_after = true;
            tokio::time::sleep(wait).await;
            i = attempts.len() - 1;
            continue;
        }
        i += used;
    }
    Err(match last {
        Some(e) => with_previous(e, previous),
        None => ApiError::NoProvider(format!("No provider available for {}", view.model)),
    })
}

/// The most this request can cost on any endpoint of its plan: the prompt estimated
/// generously (2 bytes per token) and the full completion allowance.
fn worst_case_cost(
    view: &RequestView<'_>,
    plan: &switchyard_router::Plan<'_>,
) -> rust_decimal::Decimal {
    let prompt = (view.prompt_bytes as u64).div_ceil(2) + 16;
    plan.attempts
        .iter()
        .map(|a| {
            let completion = view
                .max_tokens
                .or(a.endpoint.max_completion_tokens)
                .or(a.model.max_completion_tokens)
                .unwrap_or(4096);
            a.endpoint
                .pricing
                .cost(&switchyard_router::TokenCounts {
                    prompt,
                    completion,
                    images: view.images,
                    ..Default::default()
                })
                .total()
        })
        .max()
        .unwrap_or_default()
}

/// What every attempt of one request shares.
struct AttemptCtx<'a> {
    state: &'a AppState,
    principal: &'a Principal,
    view: &'a RequestView<'a>,
    gen_id: &'a str,
    started: Instant,
    sticky_key: Option<&'a ConversationKey>,
    /// The budget reservation; the attempt that produces the generation takes it.
    reservation: std::sync::Mutex<Option<Reservation>>,
}

/// One attempt against one endpoint, with health, stickiness and metrics bookkeeping.
async fn run_attempt(
    ctx: &AttemptCtx<'_>,
    attempt: &PlannedEndpoint<'_>,
) -> Result<Response, AttemptFailure> {
    let state = ctx.state;
    let (slug, upstream_model) = (&attempt.endpoint.provider, &attempt.endpoint.model);
    let Some(provider) = state.providers.get(slug) else {
        return Err(AttemptFailure {
            error: ApiError::NoProvider(format!("Provider {slug} is not configured")),
            retryable: true,
        });
    };
    state
        .health
        .on_attempt(slug, upstream_model, Instant::now());
    // If this future is dropped before the attempt finishes (the hedge's loser, or the
    // client went away), the attempt is still counted.
    let mut guard = AttemptGuard { slug, done: false };
    let result = try_endpoint(
        state,
        ctx.principal,
        ctx.view,
        attempt,
        provider,
        ctx.gen_id,
        ctx.started,
        &ctx.reservation,
    )
    .await;
    guard.done = true;
    match &result {
        Ok(_) => {
            metrics::record_attempt(slug, "ok");
            if let Some(key) = ctx.sticky_key {
                // Stickiness pays off where cached prompt reads are cheaper, or when the
                // client named the session (reasoning signatures, implicit caches).
                let cache_discount = attempt
                    .endpoint
                    .pricing
                    .input_cache_read
                    .is_some_and(|r| r < attempt.endpoint.pricing.prompt);
                if key.explicit || cache_discount {
                    state
                        .sticky
                        .record_success(key.clone(), slug, upstream_model, Instant::now());
                }
            }
        }
        Err(f) => {
            if let Some(key) = ctx.sticky_key {
                state.sticky.clear(key);
            }
            if f.retryable {
                state
                    .health
                    .on_failure(slug, upstream_model, Instant::now());
            } else {
                state.health.on_reachable(slug, upstream_model);
            }
            metrics::record_attempt(slug, f.error.kind());
            tracing::debug!(provider = %slug, error = %f.error, retryable = f.retryable, "upstream attempt failed");
        }
    }
    result
}

struct AttemptGuard<'a> {
    slug: &'a str,
    done: bool,
}

impl Drop for AttemptGuard<'_> {
    fn drop(&mut self) {
        if !self.done {
            metrics::record_attempt(self.slug, "cancelled");
        }
    }
}

/// Start `first`; if it has not answered after `delay`, start `second` too and take
/// whichever answers successfully first (the other is dropped: its request is cancelled
/// and, if it had reached the provider, recorded as cancelled). Returns the failures of
/// both when neither succeeds, and how many plan entries were used.
async fn run_hedged(
    ctx: &AttemptCtx<'_>,
    first: &PlannedEndpoint<'_>,
    second: &PlannedEndpoint<'_>,
    delay: Duration,
) -> (Result<Response, Vec<AttemptFailure>>, usize) {
    let a = run_attempt(ctx, first);
    tokio::pin!(a);
    let early = tokio::time::timeout(delay, &mut a).await;
    match early {
        Ok(Ok(resp)) => return (Ok(resp), 1),
        Ok(Err(f)) => return (Err(vec![f]), 1),
        Err(_) => {}
    }
    metrics::record_hedge();
    let b = run_attempt(ctx, second);
    tokio::pin!(b);
    tokio::select! {
        ra = &mut a => match ra {
            Ok(resp) => (Ok(resp), 2),
            Err(fa) => match b.await {
                Ok(resp) => (Ok(resp), 2),
                Err(fb) => (Err(vec![fa, fb]), 2),
            },
        },
        rb = &mut b => match rb {
            Ok(resp) => (Ok(resp), 2),
            Err(fb) => match a.await {
                Ok(resp) => (Ok(resp), 2),
                Err(fa) => (Err(vec![fa, fb]), 2),
            },
        },
    }
}

/// The conversation this request belongs to: `session_id`, the `x-session-id` header,
/// `prompt_cache_key`, or a hash of the first system message and the first other message.
fn conversation_key(
    view: &RequestView<'_>,
    principal: &Principal,
    session_header: Option<&str>,
) -> Option<ConversationKey> {
    let member = |k: &str| -> Option<String> {
        view.body
            .get(k)
            .and_then(|v| serde_json::from_str::<String>(v.get()).ok())
            .filter(|s| !s.is_empty())
    };
    let explicit = member("session_id")
        .or_else(|| session_header.map(str::to_string))
        .or_else(|| member("prompt_cache_key"));
    let (conversation, explicit) = match explicit {
        Some(s) => (sticky::conversation_id(&[&s]), true),
        None => {
            let messages: Vec<MessageView<'_>> =
                serde_json::from_str(view.body.get("messages")?.get()).ok()?;
            let system = messages
                .iter()
                .find(|m| m.role == "system" || m.role == "developer")
                .and_then(|m| m.content)
                .map_or("", |c| c.get());
            let first = messages
                .iter()
                .find(|m| m.role != "system" && m.role != "developer")
                .and_then(|m| m.content)
                .map_or("", |c| c.get());
            (sticky::conversation_id(&[system, first]), false)
        }
    };
    Some(ConversationKey {
        model: view.model.to_string(),
        principal: principal.id(),
        conversation,
        explicit,
    })
}

fn attempt_error(e: &ApiError) -> AttemptError {
    let provider_name = match e {
        ApiError::Upstream { provider_name, .. } | ApiError::Timeout { provider_name, .. } => {
            provider_name.clone()
        }
        _ => String::new(),
    };
    AttemptError {
        provider_name,
        code: e.status(),
        message: e.public_message(),
    }
}

fn with_previous(mut e: ApiError, prev: Vec<AttemptError>) -> ApiError {
    if let ApiError::Upstream { previous, .. } | ApiError::Timeout { previous, .. } = &mut e {
        *previous = prev;
    }
    e
}

fn upstream_failure(
    provider: &Provider,
    status: u16,
    message: impl Into<String>,
    raw: Option<String>,
    retry_after: Option<u64>,
    retryable: bool,
) -> AttemptFailure {
    AttemptFailure {
        error: ApiError::Upstream {
            status,
            provider_name: provider.config.name.clone(),
            message: message.into(),
            raw,
            retry_after,
            previous: Vec::new(),
        },
        retryable,
    }
}

fn timeout_failure(provider: &Provider, what: &str) -> AttemptFailure {
    AttemptFailure {
        error: ApiError::Timeout {
            provider_name: provider.config.name.clone(),
            message: format!(
                "Operation timed out: {} did not {what} in time",
                provider.config.name
            ),
            previous: Vec::new(),
        },
        retryable: true,
    }
}

/// The message inside a provider's error body (`error.message`, `message`, or `error`).
fn upstream_error_message(raw: &str) -> Option<String> {
    let v: serde_json::Value = serde_json::from_str(raw).ok()?;
    let e = v.get("error").unwrap_or(&v);
    let m = e.get("message").or_else(|| e.get("error"))?;
    m.as_str()
        .map(str::to_string)
        .or_else(|| Some(m.to_string()))
}

#[allow(clippy::too_many_arguments)]
async fn try_endpoint(
    state: &AppState,
    principal: &Principal,
    view: &RequestView<'_>,
    attempt: &PlannedEndpoint<'_>,
    provider: &Provider,
    gen_id: &str,
    started: Instant,
    reservation: &std::sync::Mutex<Option<Reservation>>,
) -> Result<Response, AttemptFailure> {
    let timeouts = provider.config.timeouts;
    let deadline = Instant::now() + timeouts.total;
    let kind = provider.config.kind;
    if !kind.supports(view.endpoint) {
        return Err(AttemptFailure {
            error: ApiError::BadRequest(format!(
                "{} does not serve /{} requests for {}",
                provider.config.name,
                view.endpoint.as_str(),
                attempt.model.id
            )),
            retryable: false,
        });
    }
    // Exhaustive on purpose: a new provider kind must decide how it is encoded.
    let bad_request = |e: switchyard_translate::RequestError| AttemptFailure {
        error: ApiError::BadRequest(e.to_string()),
        retryable: false,
    };
    let default_max = attempt
        .endpoint
        .max_completion_tokens
        .or(attempt.model.max_completion_tokens)
        .unwrap_or(4096);
    let upstream_body = match kind {
        ProviderKind::OpenAi | ProviderKind::Azure => {
            view.encode_openai(&attempt.endpoint.model, &provider.config.drop_params)
        }
        ProviderKind::Anthropic => {
            anthropic::encode_request(view, &attempt.endpoint.model, default_max)
                .map_err(bad_request)?
        }
        ProviderKind::Bedrock => bedrock::encode_request(view, default_max).map_err(bad_request)?,
        ProviderKind::Cohere => {
            cohere::encode_request(view, &attempt.endpoint.model).map_err(bad_request)?
        }
        ProviderKind::Gemini | ProviderKind::Vertex => {
            gemini::encode_request(view).map_err(bad_request)?
        }
    };
    let req = provider
        .request(
            view.endpoint,
            &attempt.endpoint.model,
            view.stream,
            Bytes::from(upstream_body),
        )
        .map_err(|e| AttemptFailure {
            error: ApiError::Internal(e),
            retryable: false,
        })?;
    let sent = Instant::now();
    let resp = match tokio::time::timeout(timeouts.first_byte, provider.client.request(req)).await {
        Err(_) => return Err(timeout_failure(provider, "respond")),
        Ok(Err(e)) => {
            return Err(upstream_failure(
                provider,
                502,
                format!("Could not reach provider {}: {e}", provider.config.name),
                None,
                None,
                true,
            ));
        }
        Ok(Ok(r)) => r,
    };
    let first_byte = sent.elapsed();
    metrics::record_ttfb(&provider.config.slug, first_byte);
    let status = resp.status().as_u16();
    if !(200..300).contains(&status) {
        let retry_after = resp
            .headers()
            .get(header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|s| s.trim().parse::<u64>().ok());
        let raw = read_limited(resp.into_body(), MAX_ERROR_BODY, deadline)
            .await
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .ok();
        let message = raw.as_deref().and_then(upstream_error_message).map_or_else(
            || format!("Provider returned error (HTTP {status})"),
            |m| format!("Provider returned error: {m}"),
        );
        return Err(upstream_failure(
            provider,
            client_status_for_upstream(status),
            message,
            raw,
            retry_after,
            retryable_upstream_status(status),
        ));
    }

    let generation = Generation {
        id: gen_id.to_string(),
        model: attempt.model.id.clone(),
        provider_slug: provider.config.slug.clone(),
        provider_name: provider.config.name.clone(),
        upstream_model: attempt.endpoint.model.clone(),
        endpoint: view.endpoint,
        streamed: view.stream,
        started,
        first_byte: Some(first_byte),
        priced: accounting::Priced::default(),
        finish_reason: None,
        native_finish_reason: None,
        outcome: Outcome::Completed,
        principal: principal.label(),
        key_hash: principal.key_hash(),
        reservation: reservation
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take(),
        accounts: state.accounts.clone(),
    };

    if view.stream {
        return Ok(stream_response(
            state,
            resp.into_body(),
            DialectDecoder::for_kind(kind),
            generation,
            attempt.endpoint.pricing.clone(),
            accounting::RequestSize {
                prompt_bytes: view.prompt_bytes,
                images: view.images,
            },
            deadline,
            timeouts.idle,
        ));
    }

    // Non-streaming: if the client goes away while we wait, the generation is still
    // recorded (as cancelled) by the guard.
    let mut guard = CancelGuard(Some(generation));
    let body = match read_limited(resp.into_body(), MAX_UPSTREAM_BODY, deadline).await {
        Ok(b) => b,
        Err(ReadError::Timeout) => return Err(timeout_failure(provider, "finish its response")),
        Err(ReadError::TooLarge) => {
            return Err(upstream_failure(
                provider,
                502,
                "Provider response too large",
                None,
                None,
                true,
            ));
        }
        Err(ReadError::Body(e)) => {
            return Err(upstream_failure(
                provider,
                502,
                format!("Provider connection failed while reading the response: {e}"),
                None,
                None,
                true,
            ));
        }
    };
    // Other dialects are first decoded into an OpenAI body; the rest is common.
    let decoded = match kind {
        ProviderKind::Anthropic => Some(anthropic::decode_response(&body)),
        ProviderKind::Gemini | ProviderKind::Vertex => Some(gemini::decode_response(&body)),
        ProviderKind::Cohere => Some(cohere::decode_response(&body)),
        ProviderKind::Bedrock => Some(bedrock::decode_response(&body)),
        ProviderKind::OpenAi | ProviderKind::Azure => None,
    };
    let body = match decoded {
        Some(decoded) => match decoded {
            Ok(b) => Bytes::from(b),
            Err(e) => {
                return Err(upstream_failure(
                    provider,
                    502,
                    format!("Provider returned an invalid response: {e}"),
                    Some(
                        String::from_utf8_lossy(&body[..body.len().min(MAX_ERROR_BODY)])
                            .into_owned(),
                    ),
                    None,
                    true,
                ));
            }
        },
        None => body,
    };
    let parsed = match ParsedResponse::parse(view.endpoint, &body) {
        Ok(p) => p,
        Err(ResponseError::Upstream(raw)) => {
            let message = upstream_error_message(&raw).map_or_else(
                || "Provider returned error".to_string(),
                |m| format!("Provider returned error: {m}"),
            );
            return Err(upstream_failure(
                provider,
                502,
                message,
                Some(raw),
                None,
                true,
            ));
        }
        Err(e) => {
            return Err(upstream_failure(
                provider,
                502,
                format!("Provider returned an invalid response: {e}"),
                Some(String::from_utf8_lossy(&body[..body.len().min(MAX_ERROR_BODY)]).into_owned()),
                None,
                true,
            ));
        }
    };
    let priced = accounting::price(
        &attempt.endpoint.pricing,
        parsed.usage.as_ref(),
        accounting::RequestSize {
            prompt_bytes: view.prompt_bytes,
            images: view.images,
        },
        parsed.output_bytes,
    );
    let usage = if view.endpoint == Endpoint::Embeddings {
        accounting::embeddings_usage_json(&priced)
    } else {
        accounting::usage_json(&priced)
    };
    let meta = ResponseMeta {
        endpoint: view.endpoint,
        gen_id,
        model: &attempt.model.id,
        provider: &provider.config.name,
        created: unix_now(),
    };
    let out = parsed.encode(&meta, &usage);
    state.health.on_success(
        &attempt.endpoint.provider,
        &attempt.endpoint.model,
        first_byte,
        tokens_per_second(priced.tokens.completion, started.elapsed(), first_byte),
    );
    if let Some(mut g) = guard.0.take() {
        g.priced = priced;
        g.finish_reason = parsed.finish.reason.map(str::to_string);
        g.native_finish_reason = parsed.finish.native.clone();
        let rec = accounting::finish(&mut g);
        // The client gets the generation id only once its record is committed.
        if let Some(a) = &g.accounts {
            a.record_durable(rec, LEDGER_WAIT).await;
        }
    }
    let mut resp = Response::new(Body::from(out));
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    Ok(resp)
}

/// Output tokens per second after the first byte (None when too short to measure).
fn tokens_per_second(tokens: u64, total: Duration, first_byte: Duration) -> Option<f64> {
    let secs = total.saturating_sub(first_byte).as_secs_f64();
    (tokens > 0 && secs > 0.001).then(|| tokens as f64 / secs)
}

/// Records a generation as cancelled if the request future is dropped before it ends.
struct CancelGuard(Option<Generation>);

impl Drop for CancelGuard {
    fn drop(&mut self) {
        if let Some(mut g) = self.0.take() {
            g.outcome = Outcome::Cancelled;
            accounting::record(&mut g);
        }
    }
}

enum ReadError {
    Timeout,
    TooLarge,
    Body(String),
}

async fn read_limited(body: Incoming, limit: usize, deadline: Instant) -> Result<Bytes, ReadError> {
    let remaining = deadline.saturating_duration_since(Instant::now());
    match tokio::time::timeout(remaining, Limited::new(body, limit).collect()).await {
        Err(_) => Err(ReadError::Timeout),
        Ok(Ok(c)) => Ok(c.to_bytes()),
        Ok(Err(e)) => {
            if e.downcast_ref::<http_body_util::LengthLimitError>()
                .is_some()
            {
                Err(ReadError::TooLarge)
            } else {
                Err(ReadError::Body(e.to_string()))
            }
        }
    }
}

// === streaming ===

struct StreamState {
    body: Incoming,
    /// A completed generation's ledger record, committed before the final bytes
    /// (`[DONE]`) go out, so a stream the client saw finish is durable.
    pending_record: Option<(
        std::sync::Arc<crate::accounts::Accounts>,
        switchyard_store::GenerationRecord,
    )>,
    /// For non-OpenAI dialects: turns the provider's stream into OpenAI chunks first.
    dialect: Option<DialectDecoder>,
    health: std::sync::Arc<HealthRegistry>,
    rewriter: StreamRewriter,
    generation: Option<Generation>,
    pricing: Pricing,
    request_size: accounting::RequestSize,
    keepalive: Duration,
    idle: Duration,
    deadline: Instant,
    last_activity: Instant,
    phase: Phase,
    _in_flight: InFlight,
}

#[derive(PartialEq, Eq)]
enum Phase {
    Streaming,
    /// Our last bytes are out; read the upstream's end so its connection can be reused.
    Draining,
    Done,
}

impl StreamState {
    fn meta(&self) -> Option<ResponseMeta<'_>> {
        self.generation.as_ref().map(|g| ResponseMeta {
            endpoint: g.endpoint,
            gen_id: &g.id,
            model: &g.model,
            provider: &g.provider_name,
            created: unix_now(),
        })
    }

    /// Append the usage chunk and `[DONE]`, and record the generation.
    fn complete(&mut self, out: &mut Vec<u8>) {
        let priced = accounting::price(
            &self.pricing,
            self.rewriter.usage.as_ref(),
            self.request_size,
            self.rewriter.output_bytes,
        );
        if let Some(meta) = self.meta() {
            out.extend_from_slice(&encode_usage_chunk(&meta, &accounting::usage_json(&priced)));
        }
        out.extend_from_slice(b"data: [DONE]\n\n");
        self.finish_generation(priced, Outcome::Completed);
        self.phase = Phase::Draining;
    }

    /// Append an error chunk and record the generation as failed; the stream then ends.
    fn fail(&mut self, out: &mut Vec<u8>, code: u16, message: &str, raw: Option<&str>) {
        let priced = accounting::price(
            &self.pricing,
            self.rewriter.usage.as_ref(),
            self.request_size,
            self.rewriter.output_bytes,
        );
        if let Some(meta) = self.meta() {
            let mut metadata = serde_json::json!({
                "provider_name": meta.provider,
                "error_type": if code == 408 { "timeout" } else { "provider_unavailable" },
            });
            if let Some(r) = raw {
                metadata["raw"] = serde_json::json!(r);
            }
            let m = serde_json::to_vec(&metadata).unwrap_or_default();
            out.extend_from_slice(&encode_error_chunk(&meta, code, message, Some(&m)));
        }
        self.finish_generation(priced, Outcome::Failed(code));
        self.phase = Phase::Done;
    }

    fn finish_generation(&mut self, priced: accounting::Priced, outcome: Outcome) {
        if let Some(g) = &self.generation {
            let ttfb = g.first_byte.unwrap_or_default();
            match outcome {
                Outcome::Completed => self.health.on_success(
                    &g.provider_slug,
                    &g.upstream_model,
                    ttfb,
                    tokens_per_second(priced.tokens.completion, g.started.elapsed(), ttfb),
                ),
                Outcome::Failed(_) => {
                    self.health
                        .on_failure(&g.provider_slug, &g.upstream_model, Instant::now())
                }
                Outcome::Cancelled => {}
            }
        }
        if let Some(mut g) = self.generation.take() {
            g.priced = priced;
            g.outcome = outcome;
            g.finish_reason = self.rewriter.finish.reason.map(str::to_string);
            g.native_finish_reason = self.rewriter.finish.native.clone();
            if outcome == Outcome::Completed {
                let rec = accounting::finish(&mut g);
                if let Some(a) = g.accounts.clone() {
                    self.pending_record = Some((a, rec));
                }
            } else {
                accounting::record(&mut g);
            }
        }
    }

    fn handle_rewrite_error(&mut self, out: &mut Vec<u8>, e: ResponseError) {
        match e {
            ResponseError::Upstream(raw) => {
                let msg = upstream_error_message(&raw)
                    .unwrap_or_else(|| "Provider returned error".into());
                self.fail(out, 502, &msg, Some(&raw));
            }
            other => self.fail(
                out,
                502,
                &format!("Provider sent an invalid stream: {other}"),
                None,
            ),
        }
    }

    /// The next bytes for the client, or None when the stream is over.
    /// The next bytes for the client; a completed generation's record is committed before
    /// the bytes that end the stream are handed out.
    async fn next_chunk(&mut self) -> Option<Bytes> {
        let chunk = self.next_chunk_inner().await;
        if let Some((accounts, rec)) = self.pending_record.take() {
            accounts.record_durable(rec, LEDGER_WAIT).await;
        }
        chunk
    }

    async fn next_chunk_inner(&mut self) -> Option<Bytes> {
        let mut out = Vec::new();
        loop {
            match self.phase {
                Phase::Done => return None,
                Phase::Draining => {
                    // Bounded: a well-behaved upstream ends right after [DONE].
                    let _ = tokio::time::timeout(Duration::from_secs(1), async {
                        while let Some(Ok(_)) = self.body.frame().await {}
                    })
                    .await;
                    self.phase = Phase::Done;
                    return None;
                }
                Phase::Streaming => {}
            }
            let now = Instant::now();
            let idle_deadline = self.last_activity + self.idle;
            let hard = idle_deadline.min(self.deadline);
            let wait = self.keepalive.min(hard.saturating_duration_since(now));
            let item = match tokio::time::timeout(wait, self.body.frame()).await {
                Err(_) => {
                    if Instant::now() >= hard {
                        let msg = "Operation timed out: the provider stopped sending data";
                        self.fail(&mut out, 408, msg, None);
                        return Some(Bytes::from(out));
                    }
                    return Some(Bytes::from_static(KEEPALIVE));
                }
                Ok(item) => item,
            };
            self.last_activity = Instant::now();
            let mut ended = self.handle_item(item, &mut out);
            // Coalesce what the upstream has already delivered into one write to the client.
            // The client connection decodes one chunk each time it is polled, so after each
            // frame yield once to let it decode the next from what it has already read; stop
            // at the first yield that brings nothing (never waiting for the network). Without
            // this a burst of N events costs N writes to the client.
            let mut yielded = 0u8;
            while !ended && self.phase == Phase::Streaming {
                match self.body.frame().now_or_never() {
                    Some(item) => {
                        ended = self.handle_item(item, &mut out);
                        yielded = 0;
                    }
                    None if yielded >= 3 => break,
                    None => {
                        tokio::task::yield_now().await;
                        yielded += 1;
                    }
                }
            }
            if self.phase == Phase::Draining {
                // Our last bytes are ready: if the upstream's end is already here too, take
                // it now (the same few yields, never waiting), so the client gets the last
                // chunk and the end of the body in one write.
                for _ in 0..3 {
                    match self.body.frame().now_or_never() {
                        Some(Some(Ok(_))) => continue,
                        Some(_) => {
                            self.phase = Phase::Done;
                            break;
                        }
                        None => tokio::task::yield_now().await,
                    }
                }
            }
            if !out.is_empty() {
                return Some(Bytes::from(out));
            }
        }
    }

    /// Process one upstream body item; true when the stream is over.
    fn handle_item(
        &mut self,
        item: Option<Result<hyper::body::Frame<Bytes>, hyper::Error>>,
        out: &mut Vec<u8>,
    ) -> bool {
        match item {
            None => {
                if let Some(d) = &mut self.dialect {
                    let mut buf = Vec::new();
                    let fed = d
                        .finish(&mut buf)
                        .map_err(|e| format!("Provider sent an invalid stream: {e}"));
                    if let Err(msg) = fed.and_then(|()| {
                        self.rewriter
                            .feed(&buf, out)
                            .map_err(|e| format!("Provider sent an invalid stream: {e}"))
                    }) {
                        self.fail(out, 502, &msg, None);
                        return true;
                    }
                }
                if let Err(e) = self.rewriter.finish(out) {
                    self.handle_rewrite_error(out, e);
                } else if self.rewriter.done || self.rewriter.finish.reason.is_some() {
                    self.complete(out);
                    self.phase = Phase::Done;
                } else {
                    self.fail(
                        out,
                        502,
                        "Provider closed the stream before it finished",
                        None,
                    );
                }
                true
            }
            Some(Err(e)) => {
                let msg = format!("Provider connection failed mid-stream: {e}");
                self.fail(out, 502, &msg, None);
                true
            }
            Some(Ok(frame)) => {
                let Ok(data) = frame.into_data() else {
                    return false; // trailers
                };
                let translated;
                let data: &[u8] = match &mut self.dialect {
                    Some(d) => {
                        let mut buf = Vec::with_capacity(data.len() + 128);
                        if let Err(e) = d.feed(&data, &mut buf) {
                            let msg = format!("Provider sent an invalid stream: {e}");
                            self.fail(out, 502, &msg, None);
                            return true;
                        }
                        translated = buf;
                        &translated
                    }
                    None => &data,
                };
                if let Err(e) = self.rewriter.feed(data, out) {
                    self.handle_rewrite_error(out, e);
                    return true;
                }
                if self.rewriter.done {
                    self.complete(out);
                    return true;
                }
                false
            }
        }
    }
}

impl Drop for StreamState {
    fn drop(&mut self) {
        // A completed record not yet handed to the ledger is never lost.
        if let Some((accounts, rec)) = self.pending_record.take() {
            accounts.record(rec);
        }
        // The client went away mid-stream: bill what was delivered.
        if self.generation.is_some() {
            let priced = accounting::price(
                &self.pricing,
                self.rewriter.usage.as_ref(),
                self.request_size,
                self.rewriter.output_bytes,
            );
            self.finish_generation(priced, Outcome::Cancelled);
        }
    }
}

/// Incremental decoders of providers' native streams into OpenAI chunks.
enum DialectDecoder {
    Anthropic(anthropic::StreamDecoder),
    Gemini(gemini::StreamDecoder),
    Cohere(cohere::StreamDecoder),
    Bedrock(bedrock::StreamDecoder),
}

impl DialectDecoder {
    fn for_kind(kind: ProviderKind) -> Option<DialectDecoder> {
        match kind {
            ProviderKind::Anthropic => {
                Some(DialectDecoder::Anthropic(anthropic::StreamDecoder::new()))
            }
            ProviderKind::Gemini | ProviderKind::Vertex => {
                Some(DialectDecoder::Gemini(gemini::StreamDecoder::new()))
            }
            ProviderKind::Cohere => Some(DialectDecoder::Cohere(cohere::StreamDecoder::new())),
            ProviderKind::Bedrock => Some(DialectDecoder::Bedrock(bedrock::StreamDecoder::new())),
            ProviderKind::OpenAi | ProviderKind::Azure => None,
        }
    }

    fn feed(&mut self, bytes: &[u8], out: &mut Vec<u8>) -> Result<(), String> {
        match self {
            DialectDecoder::Anthropic(d) => d.feed(bytes, out),
            DialectDecoder::Gemini(d) => d.feed(bytes, out),
            DialectDecoder::Cohere(d) => d.feed(bytes, out),
            DialectDecoder::Bedrock(d) => d.feed(bytes, out),
        }
    }

    fn finish(&mut self, out: &mut Vec<u8>) -> Result<(), String> {
        match self {
            DialectDecoder::Anthropic(d) => d.finish(out),
            DialectDecoder::Gemini(d) => d.finish(out),
            DialectDecoder::Cohere(d) => d.finish(out),
            DialectDecoder::Bedrock(d) => d.finish(out),
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn stream_response(
    state: &AppState,
    body: Incoming,
    dialect: Option<DialectDecoder>,
    generation: Generation,
    pricing: Pricing,
    request_size: accounting::RequestSize,
    deadline: Instant,
    idle: Duration,
) -> Response {
    let meta = ResponseMeta {
        endpoint: generation.endpoint,
        gen_id: &generation.id,
        model: &generation.model,
        provider: &generation.provider_name,
        created: unix_now(),
    };
    let rewriter = StreamRewriter::new(&meta);
    let st = StreamState {
        body,
        pending_record: None,
        dialect,
        health: state.health.clone(),
        rewriter,
        generation: Some(generation),
        pricing,
        request_size,
        keepalive: state.settings.keepalive_interval,
        idle,
        deadline,
        last_activity: Instant::now(),
        phase: Phase::Streaming,
        _in_flight: InFlight::start(),
    };
    let stream = futures::stream::unfold(st, |mut st| async move {
        st.next_chunk().await.map(|b| (Ok::<_, Infallible>(b), st))
    });
    let mut resp = Response::new(Body::from_stream(stream));
    *resp.status_mut() = StatusCode::OK;
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    h.insert("x-accel-buffering", HeaderValue::from_static("no"));
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(body: &str, header: Option<&str>) -> ConversationKey {
        let v = RequestView::parse(Endpoint::Chat, body.as_bytes()).unwrap();
        conversation_key(&v, &Principal::Admin, header).unwrap()
    }

    #[test]
    fn generation_ids_are_unique_ascending_and_openrouter_shaped() {
        let ids: Vec<String> = (0..200).map(|_| new_generation_id()).collect();
        for w in ids.windows(2) {
            assert!(w[0] < w[1], "{} !< {}", w[0], w[1]);
        }
        let parts: Vec<&str> = ids[0].splitn(3, '-').collect();
        assert_eq!(parts[0], "gen");
        assert!(parts[1].parse::<u64>().is_ok());
        assert_eq!(parts[2].len(), 20);
        assert!(parts[2].chars().all(|c| c.is_ascii_alphanumeric()));
    }

    #[test]
    fn conversation_keys() {
        let a = key(
            r#"{"model":"m","messages":[{"role":"system","content":"S"},{"role":"user","content":"first"}]}"#,
            None,
        );
        let later = key(
            r#"{"model":"m","messages":[{"role":"system","content":"S"},{"role":"user","content":"first"},{"role":"assistant","content":"x"},{"role":"user","content":"second"}]}"#,
            None,
        );
        assert_eq!(a, later, "later turns of a conversation share its key");
        assert!(!a.explicit);
        let other = key(
            r#"{"model":"m","messages":[{"role":"system","content":"S"},{"role":"user","content":"another"}]}"#,
            None,
        );
        assert_ne!(a, other);
        let s1 = key(
            r#"{"model":"m","session_id":"abc","messages":[{"role":"user","content":"x"}]}"#,
            None,
        );
        let s2 = key(
            r#"{"model":"m","messages":[{"role":"user","content":"y"}]}"#,
            Some("abc"),
        );
        let s3 = key(
            r#"{"model":"m","prompt_cache_key":"abc","messages":[{"role":"user","content":"z"}]}"#,
            None,
        );
        assert!(s1.explicit);
        assert_eq!(s1, s2);
        assert_eq!(s2, s3);
    }
}
