//! Prometheus metrics: request counts, latency histograms, tokens, cost and in-flight
//! requests, labelled by model and provider. Rendered by `GET /metrics`.
//!
//! A small purpose-built registry rather than a generic facade: the label sets are known
//! (model × provider, provider, endpoint × outcome), so each series is a set of atomics
//! found with one read-locked map lookup — no label allocation per request, and histograms
//! are fixed buckets (nothing accumulates between scrapes).

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, LazyLock, RwLock};
use std::time::Duration;

use rust_decimal::Decimal;
use switchyard_router::TokenCounts;

/// Bucket upper bounds in seconds: sub-millisecond (gateway overhead) to minutes.
const BUCKETS: [f64; 18] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
    60.0, 120.0, 300.0,
];

#[derive(Debug, Default)]
struct Histogram {
    buckets: [AtomicU64; BUCKETS.len()],
    count: AtomicU64,
    /// Sum in microseconds (integer, so it can be an atomic add).
    sum_us: AtomicU64,
}

impl Histogram {
    fn record(&self, d: Duration) {
        let secs = d.as_secs_f64();
        if let Some(i) = BUCKETS.iter().position(|b| secs <= *b) {
            self.buckets[i].fetch_add(1, Ordering::Relaxed);
        }
        self.count.fetch_add(1, Ordering::Relaxed);
        self.sum_us.fetch_add(
            d.as_micros().min(u128::from(u64::MAX)) as u64,
            Ordering::Relaxed,
        );
    }

    fn render(&self, out: &mut String, name: &str, labels: &str) {
        let mut cumulative = 0;
        for (i, b) in BUCKETS.iter().enumerate() {
            cumulative += self.buckets[i].load(Ordering::Relaxed);
            let _ = writeln!(out, "{name}_bucket{{{labels},le=\"{b}\"}} {cumulative}");
        }
        let count = self.count.load(Ordering::Relaxed);
        let _ = writeln!(out, "{name}_bucket{{{labels},le=\"+Inf\"}} {count}");
        let sum = self.sum_us.load(Ordering::Relaxed) as f64 / 1e6;
        let _ = writeln!(out, "{name}_sum{{{labels}}} {sum}");
        let _ = writeln!(out, "{name}_count{{{labels}}} {count}");
    }
}

/// Outcomes of a generation that reached a provider, as the `status` label.
const OUTCOMES: [&str; 3] = ["200", "499", "error"];
const ENDPOINTS: [&str; 3] = ["chat", "completions", "embeddings"];

fn endpoint_index(e: &str) -> usize {
    ENDPOINTS.iter().position(|x| *x == e).unwrap_or(0)
}

/// Series for one (model, provider).
#[derive(Debug, Default)]
struct ModelSeries {
    requests: [[AtomicU64; OUTCOMES.len()]; ENDPOINTS.len()],
    duration: Histogram,
    tokens: [AtomicU64; 4],
    /// Cost in units of 1e-12 USD (exact for every list price we know).
    cost_pico_usd: AtomicU64,
}

const TOKEN_KINDS: [&str; 4] = ["prompt", "completion", "cached", "reasoning"];

/// Series for one provider.
#[derive(Debug, Default)]
struct ProviderSeries {
    ttfb: Histogram,
    attempts: RwLock<HashMap<&'static str, AtomicU64>>,
}

#[derive(Debug, Default)]
struct Registry {
    /// model → provider → series (nested so lookups borrow and never allocate).
    models: RwLock<HashMap<String, HashMap<String, Arc<ModelSeries>>>>,
    providers: RwLock<HashMap<String, Arc<ProviderSeries>>>,
    /// Requests answered with an error before reaching a provider: (endpoint, kind).
    rejected: RwLock<HashMap<(&'static str, &'static str), AtomicU64>>,
    in_flight: AtomicI64,
    hedges: AtomicU64,
}

static REGISTRY: LazyLock<Registry> = LazyLock::new(Registry::default);

fn read<T>(l: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    l.read().unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn write<T>(l: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    l.write().unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn model_series(model: &str, provider: &str) -> Arc<ModelSeries> {
    if let Some(s) = read(&REGISTRY.models)
        .get(model)
        .and_then(|m| m.get(provider))
    {
        return s.clone();
    }
    write(&REGISTRY.models)
        .entry(model.to_string())
        .or_default()
        .entry(provider.to_string())
        .or_default()
        .clone()
}

fn provider_series(provider: &str) -> Arc<ProviderSeries> {
    if let Some(s) = read(&REGISTRY.providers).get(provider) {
        return s.clone();
    }
    write(&REGISTRY.providers)
        .entry(provider.to_string())
        .or_default()
        .clone()
}

fn bump<K: std::hash::Hash + Eq>(map: &RwLock<HashMap<K, AtomicU64>>, key: K) {
    if let Some(c) = read(map).get(&key) {
        c.fetch_add(1, Ordering::Relaxed);
        return;
    }
    write(map)
        .entry(key)
        .or_default()
        .fetch_add(1, Ordering::Relaxed);
}

/// Decrements the in-flight gauge when dropped (also on client disconnect).
#[derive(Debug)]
pub struct InFlight;

impl InFlight {
    pub fn start() -> InFlight {
        REGISTRY.in_flight.fetch_add(1, Ordering::Relaxed);
        InFlight
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        REGISTRY.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

pub fn record_attempt(provider: &str, outcome: &'static str) {
    bump(&provider_series(provider).attempts, outcome);
}

/// A hedged second attempt was started.
pub fn record_hedge() {
    REGISTRY.hedges.fetch_add(1, Ordering::Relaxed);
}

pub fn record_ttfb(provider: &str, d: Duration) {
    provider_series(provider).ttfb.record(d);
}

/// A finished generation: its outcome, latency, tokens and cost.
pub fn record_generation(
    model: &str,
    provider: &str,
    endpoint: &'static str,
    outcome: &'static str,
    d: Duration,
    t: &TokenCounts,
    cost: Decimal,
) {
    let s = model_series(model, provider);
    let o = OUTCOMES.iter().position(|x| *x == outcome).unwrap_or(2);
    s.requests[endpoint_index(endpoint)][o].fetch_add(1, Ordering::Relaxed);
    s.duration.record(d);
    for (i, n) in [t.prompt, t.completion, t.cached_read, t.reasoning]
        .into_iter()
        .enumerate()
    {
        if n > 0 {
            s.tokens[i].fetch_add(n, Ordering::Relaxed);
        }
    }
    let pico = (cost * Decimal::from(1_000_000_000_000u64)).trunc();
    if let Ok(p) = u64::try_from(pico) {
        s.cost_pico_usd.fetch_add(p, Ordering::Relaxed);
    }
}

/// A request that failed before reaching (or being answered by) any provider.
pub fn record_rejected(endpoint: &'static str, kind: &'static str) {
    bump(&REGISTRY.rejected, (endpoint, kind));
}

/// Escape a label value per the Prometheus text format.
fn label(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// The Prometheus text exposition of every series.
pub fn render() -> String {
    let mut out = String::with_capacity(4096);
    let r = &*REGISTRY;
    let mut models: Vec<_> = read(&r.models)
        .iter()
        .flat_map(|(m, by_provider)| {
            by_provider
                .iter()
                .map(|(p, s)| ((m.clone(), p.clone()), s.clone()))
        })
        .collect();
    models.sort_by(|a, b| a.0.cmp(&b.0));
    let mut providers: Vec<_> = read(&r.providers)
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    providers.sort_by(|a, b| a.0.cmp(&b.0));

    out.push_str("# HELP switchyard_requests_total Inference requests by model, provider, endpoint and status (200 completed, 499 client went away, error failed mid-way; rejected requests have empty model and provider and the error kind as status).\n# TYPE switchyard_requests_total counter\n");
    for ((m, p), s) in &models {
        for (e, endpoint) in ENDPOINTS.iter().enumerate() {
            for (o, outcome) in OUTCOMES.iter().enumerate() {
                let n = s.requests[e][o].load(Ordering::Relaxed);
                if n > 0 {
                    let _ = writeln!(
                        out,
                        "switchyard_requests_total{{model=\"{}\",provider=\"{}\",endpoint=\"{endpoint}\",status=\"{outcome}\"}} {n}",
                        label(m),
                        label(p)
                    );
                }
            }
        }
    }
    let mut rejected: Vec<_> = read(&r.rejected)
        .iter()
        .map(|(k, v)| (*k, v.load(Ordering::Relaxed)))
        .collect();
    rejected.sort();
    for ((endpoint, kind), n) in rejected {
        let _ = writeln!(
            out,
            "switchyard_requests_total{{model=\"\",provider=\"\",endpoint=\"{endpoint}\",status=\"{kind}\"}} {n}"
        );
    }

    out.push_str("# HELP switchyard_request_duration_seconds Latency of generations until the last byte.\n# TYPE switchyard_request_duration_seconds histogram\n");
    for ((m, p), s) in &models {
        let labels = format!("model=\"{}\",provider=\"{}\"", label(m), label(p));
        s.duration
            .render(&mut out, "switchyard_request_duration_seconds", &labels);
    }

    out.push_str("# HELP switchyard_tokens_total Tokens by model, provider and type.\n# TYPE switchyard_tokens_total counter\n");
    for ((m, p), s) in &models {
        for (i, kind) in TOKEN_KINDS.iter().enumerate() {
            let _ = writeln!(
                out,
                "switchyard_tokens_total{{model=\"{}\",provider=\"{}\",type=\"{kind}\"}} {}",
                label(m),
                label(p),
                s.tokens[i].load(Ordering::Relaxed)
            );
        }
    }

    out.push_str("# HELP switchyard_cost_usd_total Cost in USD by model and provider.\n# TYPE switchyard_cost_usd_total counter\n");
    for ((m, p), s) in &models {
        let usd = Decimal::from(s.cost_pico_usd.load(Ordering::Relaxed))
            / Decimal::from(1_000_000_000_000u64);
        let _ = writeln!(
            out,
            "switchyard_cost_usd_total{{model=\"{}\",provider=\"{}\"}} {}",
            label(m),
            label(p),
            usd.normalize()
        );
    }

    out.push_str("# HELP switchyard_upstream_first_byte_seconds Time until a provider's response headers.\n# TYPE switchyard_upstream_first_byte_seconds histogram\n");
    for (p, s) in &providers {
        let labels = format!("provider=\"{}\"", label(p));
        s.ttfb
            .render(&mut out, "switchyard_upstream_first_byte_seconds", &labels);
    }

    out.push_str("# HELP switchyard_upstream_attempts_total Upstream attempts by provider and outcome.\n# TYPE switchyard_upstream_attempts_total counter\n");
    for (p, s) in &providers {
        let mut attempts: Vec<_> = read(&s.attempts)
            .iter()
            .map(|(k, v)| (*k, v.load(Ordering::Relaxed)))
            .collect();
        attempts.sort();
        for (outcome, n) in attempts {
            let _ = writeln!(
                out,
                "switchyard_upstream_attempts_total{{provider=\"{}\",outcome=\"{outcome}\"}} {n}",
                label(p)
            );
        }
    }

    out.push_str("# HELP switchyard_hedged_requests_total Second attempts started by hedging.\n# TYPE switchyard_hedged_requests_total counter\n");
    let _ = writeln!(
        out,
        "switchyard_hedged_requests_total {}",
        r.hedges.load(Ordering::Relaxed)
    );
    out.push_str("# HELP switchyard_in_flight_requests Inference requests in progress.\n# TYPE switchyard_in_flight_requests gauge\n");
    let _ = writeln!(
        out,
        "switchyard_in_flight_requests {}",
        r.in_flight.load(Ordering::Relaxed)
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_buckets_are_cumulative() {
        let h = Histogram::default();
        h.record(Duration::from_micros(300));
        h.record(Duration::from_millis(3));
        h.record(Duration::from_secs(1000));
        let mut out = String::new();
        h.render(&mut out, "x", "a=\"b\"");
        assert!(out.contains("x_bucket{a=\"b\",le=\"0.0005\"} 1\n"));
        assert!(out.contains("x_bucket{a=\"b\",le=\"0.005\"} 2\n"));
        assert!(out.contains("x_bucket{a=\"b\",le=\"300\"} 2\n"));
        assert!(out.contains("x_bucket{a=\"b\",le=\"+Inf\"} 3\n"));
        assert!(out.contains("x_count{a=\"b\"} 3\n"));
    }

    #[test]
    fn generation_series_render() {
        let t = TokenCounts {
            prompt: 10,
            completion: 5,
            ..Default::default()
        };
        record_generation(
            "m/x\"q",
            "p",
            "chat",
            "200",
            Duration::from_millis(2),
            &t,
            "0.0000125".parse().unwrap(),
        );
        let text = render();
        assert!(text.contains("switchyard_requests_total{model=\"m/x\\\"q\",provider=\"p\",endpoint=\"chat\",status=\"200\"} 1"), "{text}");
        assert!(
            text.contains("switchyard_cost_usd_total{model=\"m/x\\\"q\",provider=\"p\"} 0.0000125"),
            "{text}"
        );
        assert!(text.contains(
            "switchyard_tokens_total{model=\"m/x\\\"q\",provider=\"p\",type=\"prompt\"} 10"
        ));
    }
}
