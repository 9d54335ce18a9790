//! Accounting: turn what the upstream reported into priced usage, and record each
//! finished generation. This is the one place a generation's outcome is recorded (metrics
//! and the log today; the usage ledger hooks in here).

use std::time::{Duration, Instant};

use rust_decimal::Decimal;
use switchyard_router::pricing::decimal_string;
use switchyard_router::{Cost, Pricing, TokenCounts};
use switchyard_translate::Endpoint;
use switchyard_translate::response::decimal_json;
use switchyard_wire::openai::{
    CompletionTokensDetails, CostDetails, EmbeddingsUsage, PromptTokensDetails, UpstreamUsage,
    Usage,
};

use crate::metrics;

/// Bytes per token for estimates when a provider reports no usage (a common average for
/// English text with BPE tokenizers).
const BYTES_PER_TOKEN: usize = 4;

/// Priced usage of one generation.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Priced {
    pub tokens: TokenCounts,
    pub cost: Cost,
    /// Counts were estimated because the upstream reported none.
    pub estimated: bool,
}

/// What the request itself contributes to the bill beyond reported tokens.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RequestSize {
    /// Prompt text bytes (for estimates when the provider reports no usage).
    pub prompt_bytes: usize,
    /// Image inputs (per-image prices).
    pub images: u64,
}

/// Price the upstream's usage report, or an estimate from byte counts when it sent none.
pub fn price(
    pricing: &Pricing,
    reported: Option<&UpstreamUsage>,
    request: RequestSize,
    output_bytes: usize,
) -> Priced {
    let (tokens, estimated) = match reported {
        Some(u) => {
            let p = u.prompt_tokens_details.unwrap_or_default();
            let c = u.completion_tokens_details.unwrap_or_default();
            (
                TokenCounts {
                    prompt: u.prompt_tokens,
                    completion: u.completion_tokens,
                    cached_read: p.cached_tokens,
                    cache_write: p.cache_write_tokens,
                    reasoning: c.reasoning_tokens,
                    images: request.images,
                },
                false,
            )
        }
        None => (
            TokenCounts {
                prompt: request.prompt_bytes.div_ceil(BYTES_PER_TOKEN).max(1) as u64,
                completion: output_bytes.div_ceil(BYTES_PER_TOKEN) as u64,
                images: request.images,
                ..TokenCounts::default()
            },
            true,
        ),
    };
    Priced {
        tokens,
        cost: pricing.cost(&tokens),
        estimated,
    }
}

fn money(d: Decimal) -> Box<serde_json::value::RawValue> {
    decimal_json(&decimal_string(d))
}

/// The OpenRouter `usage` object for chat and legacy completions.
pub fn usage_json(p: &Priced) -> Vec<u8> {
    let t = &p.tokens;
    let usage = Usage {
        prompt_tokens: t.prompt,
        completion_tokens: t.completion,
        total_tokens: t.prompt + t.completion,
        prompt_tokens_details: PromptTokensDetails {
            cached_tokens: t.cached_read,
            cache_write_tokens: t.cache_write,
            audio_tokens: 0,
        },
        completion_tokens_details: CompletionTokensDetails {
            reasoning_tokens: t.reasoning,
            ..Default::default()
        },
        cost: money(p.cost.total()),
        is_byok: false,
        cost_details: CostDetails {
            upstream_inference_cost: money(p.cost.total()),
            upstream_inference_prompt_cost: money(p.cost.prompt + p.cost.fixed),
            upstream_inference_completions_cost: money(p.cost.completion),
        },
    };
    serde_json::to_vec(&usage).unwrap_or_default()
}

/// The `usage` object for embeddings.
pub fn embeddings_usage_json(p: &Priced) -> Vec<u8> {
    let usage = EmbeddingsUsage {
        prompt_tokens: p.tokens.prompt,
        total_tokens: p.tokens.prompt,
        cost: money(p.cost.total()),
    };
    serde_json::to_vec(&usage).unwrap_or_default()
}

/// How a generation ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Completed,
    /// The client went away before the end.
    Cancelled,
    /// The upstream failed after the response had started (mid-stream).
    Failed(u16),
}

impl Outcome {
    pub fn status_label(self) -> &'static str {
        match self {
            Outcome::Completed => "200",
            Outcome::Cancelled => "499",
            Outcome::Failed(_) => "error",
        }
    }
}

/// One generation that reached a provider.
#[derive(Debug)]
pub struct Generation {
    pub id: String,
    pub model: String,
    pub provider_slug: String,
    pub provider_name: String,
    pub upstream_model: String,
    pub endpoint: Endpoint,
    pub streamed: bool,
    pub started: Instant,
    pub first_byte: Option<Duration>,
    pub priced: Priced,
    pub finish_reason: Option<String>,
    pub native_finish_reason: Option<String>,
    pub outcome: Outcome,
    pub principal: &'static str,
    /// The API key that made the request (None: the admin key).
    pub key_hash: Option<String>,
    /// The budget reservation to settle with the real cost.
    pub reservation: Option<crate::accounts::Reservation>,
    /// Where the ledger record goes (None: no store configured).
    pub accounts: Option<std::sync::Arc<crate::accounts::Accounts>>,
}

fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// Close a generation: settle its reservation, record metrics and a log line, and build
/// its ledger record (the caller writes it: [`record`] queues it, non-streaming responses
/// wait for the commit).
pub fn finish(g: &mut Generation) -> switchyard_store::GenerationRecord {
    if let Some(r) = g.reservation.take() {
        r.debit_tokens(g.priced.tokens.prompt + g.priced.tokens.completion);
        r.settle(g.priced.cost.total());
    }
    log(g);
    let t = &g.priced.tokens;
    let elapsed = g.started.elapsed();
    switchyard_store::GenerationRecord {
        id: g.id.clone(),
        key_hash: g.key_hash.clone(),
        model: g.model.clone(),
        provider_name: g.provider_name.clone(),
        provider_slug: g.provider_slug.clone(),
        upstream_model: g.upstream_model.clone(),
        endpoint: g.endpoint.as_str().to_string(),
        streamed: g.streamed,
        cancelled: g.outcome == Outcome::Cancelled,
        status: match g.outcome {
            Outcome::Completed => 200,
            Outcome::Cancelled => 499,
            Outcome::Failed(code) => code,
        },
        finish_reason: g.finish_reason.clone(),
        native_finish_reason: g.native_finish_reason.clone(),
        tokens_prompt: t.prompt,
        tokens_completion: t.completion,
        native_tokens_cached: t.cached_read,
        native_tokens_reasoning: t.reasoning,
        usage_estimated: g.priced.estimated,
        total_cost: g.priced.cost.total(),
        latency_ms: g.first_byte.map_or(0, |d| d.as_millis() as u64),
        generation_time_ms: elapsed.as_millis() as u64,
        created_at: unix_now(),
    }
}

/// Close a generation and queue its ledger record.
pub fn record(g: &mut Generation) {
    let rec = finish(g);
    if let Some(a) = &g.accounts {
        a.record(rec);
    }
}

/// Metrics and a log line for a finished generation.
fn log(g: &Generation) {
    let elapsed = g.started.elapsed();
    let t = &g.priced.tokens;
    metrics::record_generation(
        &g.model,
        &g.provider_slug,
        g.endpoint.as_str(),
        g.outcome.status_label(),
        elapsed,
        t,
        g.priced.cost.total(),
    );
    tracing::debug!(
        id = %g.id,
        model = %g.model,
        provider = %g.provider_slug,
        upstream_model = %g.upstream_model,
        endpoint = g.endpoint.as_str(),
        streamed = g.streamed,
        prompt_tokens = t.prompt,
        completion_tokens = t.completion,
        cost = %g.priced.cost.total(),
        estimated = g.priced.estimated,
        finish_reason = ?g.finish_reason,
        native_finish_reason = ?g.native_finish_reason,
        outcome = ?g.outcome,
        principal = g.principal,
        latency_ms = elapsed.as_millis() as u64,
        first_byte_ms = g.first_byte.map(|d| d.as_millis() as u64),
        "generation"
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    #[test]
    fn usage_json_has_every_field_strict_clients_need() {
        let pricing = Pricing {
            prompt: "0.000001".parse().unwrap(),
            completion: "0.000002".parse().unwrap(),
            ..Default::default()
        };
        let reported = UpstreamUsage {
            prompt_tokens: 10,
            completion_tokens: 5,
            ..Default::default()
        };
        let p = price(&pricing, Some(&reported), RequestSize::default(), 0);
        let v: Value = serde_json::from_slice(&usage_json(&p)).unwrap();
        assert_eq!(v["total_tokens"], 15);
        assert_eq!(v["prompt_tokens_details"]["cached_tokens"], 0);
        assert_eq!(v["completion_tokens_details"]["reasoning_tokens"], 0);
        assert_eq!(v["cost"].to_string(), "0.00002");
        assert_eq!(
            v["cost_details"]["upstream_inference_prompt_cost"].to_string(),
            "0.00001"
        );
        assert_eq!(
            v["cost_details"]["upstream_inference_completions_cost"].to_string(),
            "0.00001"
        );
        assert_eq!(v["is_byok"], false);
    }

    #[test]
    fn estimates_without_report() {
        let p = price(
            &Pricing::default(),
            None,
            RequestSize {
                prompt_bytes: 40,
                images: 0,
            },
            9,
        );
        assert!(p.estimated);
        assert_eq!((p.tokens.prompt, p.tokens.completion), (10, 3));
    }
}
