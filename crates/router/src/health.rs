//! Live endpoint health: EWMA of time to first byte and of throughput, a recent error
//! rate, and a circuit breaker (closed → open for a cooldown after consecutive failures →
//! half-open with one probe → closed on success). Pure state machines: the caller passes
//! the current time, so behaviour is deterministic in tests.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Breaker and smoothing settings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct HealthConfig {
    /// Consecutive failures that open the breaker.
    pub failure_threshold: u32,
    /// How long an open breaker keeps the endpoint at the back of the plan (OpenRouter
    /// skips providers with outages in the last 30 s).
    pub cooldown: Duration,
    /// Weight of a new sample in the moving averages.
    pub alpha: f64,
}

impl Default for HealthConfig {
    fn default() -> Self {
        HealthConfig {
            failure_threshold: 3,
            cooldown: Duration::from_secs(30),
            alpha: 0.2,
        }
    }
}

/// Breaker state of one endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Breaker {
    Closed,
    /// Failing: tried only after healthy endpoints, until the instant.
    Open {
        until: Instant,
    },
    /// Cooldown over: the next request is a probe; others wait behind healthy endpoints.
    /// A probe whose outcome never arrives (client went away) expires after a cooldown.
    HalfOpen {
        probe_started: Option<Instant>,
    },
}

/// What routing should do with an endpoint now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    Healthy,
    /// Half-open and no probe in flight: this request may be the probe.
    Probe,
    /// Open (or a probe is already in flight): use only as a last resort.
    Degraded,
}

/// Health figures of one endpoint (for metrics and the endpoints listing).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EndpointHealth {
    pub breaker: Breaker,
    pub consecutive_failures: u32,
    /// EWMA of time to first byte, milliseconds.
    pub ttfb_ms: Option<f64>,
    /// EWMA of output tokens per second after the first byte.
    pub throughput_tps: Option<f64>,
    /// EWMA of failures (1) and successes (0): a recent error rate in [0, 1].
    pub error_rate: f64,
    pub successes: u64,
    pub failures: u64,
}

impl Default for EndpointHealth {
    fn default() -> Self {
        EndpointHealth {
            breaker: Breaker::Closed,
            consecutive_failures: 0,
            ttfb_ms: None,
            throughput_tps: None,
            error_rate: 0.0,
            successes: 0,
            failures: 0,
        }
    }
}

fn ewma(old: Option<f64>, sample: f64, alpha: f64) -> f64 {
    match old {
        Some(o) => o + alpha * (sample - o),
        None => sample,
    }
}

impl EndpointHealth {
    pub fn admission(&self, now: Instant, cfg: &HealthConfig) -> Admission {
        match self.breaker {
            Breaker::Closed => Admission::Healthy,
            Breaker::Open { until } if now >= until => Admission::Probe,
            Breaker::Open { .. } => Admission::Degraded,
            Breaker::HalfOpen {
                probe_started: Some(t),
            } if now.saturating_duration_since(t) < cfg.cooldown => Admission::Degraded,
            Breaker::HalfOpen { .. } => Admission::Probe,
        }
    }

    /// A request is about to be sent; returns true if it is the half-open probe.
    pub fn on_attempt(&mut self, now: Instant, cfg: &HealthConfig) -> bool {
        match self.admission(now, cfg) {
            Admission::Probe => {
                self.breaker = Breaker::HalfOpen {
                    probe_started: Some(now),
                };
                true
            }
            _ => false,
        }
    }

    /// The endpoint answered (even if it rejected the request): it is reachable.
    pub fn on_reachable(&mut self) {
        self.breaker = Breaker::Closed;
        self.consecutive_failures = 0;
    }

    pub fn on_success(&mut self, cfg: &HealthConfig, ttfb: Duration, tokens_per_sec: Option<f64>) {
        self.breaker = Breaker::Closed;
        self.consecutive_failures = 0;
        self.successes += 1;
        self.error_rate = ewma(Some(self.error_rate), 0.0, cfg.alpha);
        self.ttfb_ms = Some(ewma(self.ttfb_ms, ttfb.as_secs_f64() * 1000.0, cfg.alpha));
        if let Some(t) = tokens_per_sec.filter(|t| t.is_finite() && *t > 0.0) {
            self.throughput_tps = Some(ewma(self.throughput_tps, t, cfg.alpha));
        }
    }

    pub fn on_failure(&mut self, cfg: &HealthConfig, now: Instant) {
        self.failures += 1;
        self.consecutive_failures += 1;
        self.error_rate = ewma(Some(self.error_rate), 1.0, cfg.alpha);
        let probe_failed = matches!(self.breaker, Breaker::HalfOpen { .. })
            || matches!(self.breaker, Breaker::Open { until } if now >= until);
        if probe_failed || self.consecutive_failures >= cfg.failure_threshold {
            self.breaker = Breaker::Open {
                until: now + cfg.cooldown,
            };
        }
    }
}

/// Health of every endpoint, keyed by (provider slug, provider model), shared by all
/// workers of a node.
#[derive(Debug, Default)]
pub struct HealthRegistry {
    pub config: HealthConfig,
    /// provider → provider model → health (nested so lookups borrow).
    map: Mutex<HashMap<String, HashMap<String, EndpointHealth>>>,
}

impl HealthRegistry {
    pub fn new(config: HealthConfig) -> Arc<HealthRegistry> {
        Arc::new(HealthRegistry {
            config,
            map: Mutex::new(HashMap::new()),
        })
    }

    fn with<R>(&self, provider: &str, model: &str, f: impl FnOnce(&mut EndpointHealth) -> R) -> R {
        let mut map = self
            .map
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(h) = map.get_mut(provider).and_then(|m| m.get_mut(model)) {
            return f(h);
        }
        f(map
            .entry(provider.to_string())
            .or_default()
            .entry(model.to_string())
            .or_default())
    }

    pub fn get(&self, provider: &str, model: &str) -> EndpointHealth {
        let map = self
            .map
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        map.get(provider)
            .and_then(|m| m.get(model))
            .copied()
            .unwrap_or_default()
    }

    pub fn admission(&self, provider: &str, model: &str, now: Instant) -> Admission {
        let map = self
            .map
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        map.get(provider)
            .and_then(|m| m.get(model))
            .map_or(Admission::Healthy, |h| h.admission(now, &self.config))
    }

    pub fn on_attempt(&self, provider: &str, model: &str, now: Instant) -> bool {
        let cfg = self.config;
        self.with(provider, model, |h| h.on_attempt(now, &cfg))
    }

    pub fn on_reachable(&self, provider: &str, model: &str) {
        self.with(provider, model, EndpointHealth::on_reachable);
    }

    pub fn on_success(&self, provider: &str, model: &str, ttfb: Duration, tps: Option<f64>) {
        let cfg = self.config;
        self.with(provider, model, |h| h.on_success(&cfg, ttfb, tps));
    }

    pub fn on_failure(&self, provider: &str, model: &str, now: Instant) {
        let cfg = self.config;
        self.with(provider, model, |h| h.on_failure(&cfg, now));
    }

    /// Snapshot of every endpoint's health.
    pub fn snapshot(&self) -> Vec<((String, String), EndpointHealth)> {
        let map = self
            .map
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut v: Vec<_> = map
            .iter()
            .flat_map(|(p, m)| m.iter().map(|(k, h)| ((p.clone(), k.clone()), *h)))
            .collect();
        v.sort_by(|a, b| a.0.cmp(&b.0));
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn breaker_opens_cools_down_probes_and_recovers() {
        let cfg = HealthConfig::default();
        let t0 = Instant::now();
        let mut h = EndpointHealth::default();
        for _ in 0..2 {
            h.on_failure(&cfg, t0);
        }
        assert_eq!(h.admission(t0, &cfg), Admission::Healthy, "below threshold");
        h.on_failure(&cfg, t0);
        assert_eq!(h.admission(t0, &cfg), Admission::Degraded);
        assert_eq!(
            h.admission(t0 + Duration::from_secs(29), &cfg),
            Admission::Degraded
        );
        let after = t0 + Duration::from_secs(31);
        assert_eq!(h.admission(after, &cfg), Admission::Probe);
        assert!(
            h.on_attempt(after, &cfg),
            "first request after cooldown is the probe"
        );
        assert_eq!(
            h.admission(after, &cfg),
            Admission::Degraded,
            "one probe at a time"
        );
        assert!(!h.on_attempt(after, &cfg));
        // Probe fails: open again for a full cooldown.
        h.on_failure(&cfg, after);
        assert_eq!(
            h.admission(after + Duration::from_secs(29), &cfg),
            Admission::Degraded
        );
        let later = after + Duration::from_secs(31);
        assert!(h.on_attempt(later, &cfg));
        h.on_success(&cfg, Duration::from_millis(100), Some(50.0));
        assert_eq!(h.admission(later, &cfg), Admission::Healthy);
        assert_eq!(h.consecutive_failures, 0);
    }

    #[test]
    fn abandoned_probe_expires() {
        let cfg = HealthConfig::default();
        let t0 = Instant::now();
        let mut h = EndpointHealth::default();
        for _ in 0..3 {
            h.on_failure(&cfg, t0);
        }
        let t1 = t0 + Duration::from_secs(31);
        assert!(h.on_attempt(t1, &cfg));
        // No outcome ever arrives; after another cooldown a new probe is allowed.
        assert_eq!(
            h.admission(t1 + Duration::from_secs(10), &cfg),
            Admission::Degraded
        );
        assert_eq!(
            h.admission(t1 + Duration::from_secs(31), &cfg),
            Admission::Probe
        );
    }

    #[test]
    fn moving_averages() {
        let cfg = HealthConfig::default();
        let mut h = EndpointHealth::default();
        h.on_success(&cfg, Duration::from_millis(100), Some(100.0));
        assert_eq!(h.ttfb_ms, Some(100.0));
        h.on_success(&cfg, Duration::from_millis(200), Some(0.0));
        assert!((h.ttfb_ms.unwrap() - 120.0).abs() < 1e-9);
        assert_eq!(
            h.throughput_tps,
            Some(100.0),
            "non-positive throughput samples ignored"
        );
        h.on_failure(&cfg, Instant::now());
        assert!((h.error_rate - 0.2).abs() < 1e-9);
    }
}
