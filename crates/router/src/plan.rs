//! The routing plan: for the requested model (and its `models` fallbacks), the ordered
//! list of endpoints to try, following OpenRouter's provider-routing semantics. Failover
//! walks this list; nothing here does IO (randomness is passed in).

use rust_decimal::Decimal;
use rust_decimal::prelude::ToPrimitive;

use crate::catalog::{Catalog, EndpointSpec, ModelSpec};
use crate::health::Admission;
use crate::prefs::{Partition, ProviderPrefs, SortBy, over};

/// Model variants accepted on any id. `:floor` sorts by price; `:nitro` by throughput
/// (catalog order until live throughput is measured); `:online`/`:exacto` are accepted.
const DYNAMIC_VARIANTS: &[&str] = &["nitro", "floor", "online", "exacto"];

/// One attempt: a model and the endpoint serving it.
#[derive(Debug, Clone, Copy)]
pub struct PlannedEndpoint<'c> {
    pub model: &'c ModelSpec,
    pub endpoint: &'c EndpointSpec,
}

#[derive(Debug, Clone, Default)]
pub struct Plan<'c> {
    pub attempts: Vec<PlannedEndpoint<'c>>,
}

#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum RouteError {
    #[error("{0} is not a valid model ID")]
    UnknownModel(String),
    /// The model exists but no configured provider serves it.
    #[error("No endpoints available for {model}: {reason}")]
    NoEndpoints { model: String, reason: String },
    /// Endpoints exist but the request's routing constraints excluded all of them.
    #[error(
        "No endpoints found for {model} that match your routing preferences (excluded by: {excluded_by})"
    )]
    Filtered { model: String, excluded_by: String },
    #[error("{0}")]
    InvalidPreferences(String),
}

/// Live signals about an endpoint, from the health registry.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EndpointSignal {
    pub admission: Admission,
    pub ttfb_ms: Option<f64>,
    pub throughput_tps: Option<f64>,
}

impl Default for EndpointSignal {
    fn default() -> Self {
        EndpointSignal {
            admission: Admission::Healthy,
            ttfb_ms: None,
            throughput_tps: None,
        }
    }
}

/// No live data: every endpoint healthy and unmeasured.
pub fn no_signals(_: &EndpointSpec) -> EndpointSignal {
    EndpointSignal::default()
}

/// What the request asks of an endpoint beyond the model id.
#[derive(Debug, Clone, Default)]
pub struct RequestFacts<'a> {
    /// OpenRouter parameter names present in the request (for `require_parameters`).
    pub params: Vec<&'a str>,
    pub images: u64,
}

/// Request members that are model parameters in OpenRouter's `supported_parameters` sense.
pub const PARAMETER_NAMES: &[&str] = &[
    "tools",
    "tool_choice",
    "max_tokens",
    "max_completion_tokens",
    "temperature",
    "top_p",
    "top_k",
    "stop",
    "response_format",
    "seed",
    "frequency_penalty",
    "presence_penalty",
    "repetition_penalty",
    "logit_bias",
    "logprobs",
    "top_logprobs",
    "min_p",
    "top_a",
    "reasoning",
    "include_reasoning",
    "parallel_tool_calls",
    "verbosity",
    "reasoning_effort",
    "web_search_options",
    "prediction",
];

/// Split `author/slug:variant` into the catalog id and the variant.
pub fn split_variant<'m>(catalog: &Catalog, requested: &'m str) -> (&'m str, Option<&'m str>) {
    if catalog.get(requested).is_some() {
        return (requested, None);
    }
    match requested.rsplit_once(':') {
        Some((base, variant)) if DYNAMIC_VARIANTS.contains(&variant) => (base, Some(variant)),
        _ => (requested, None),
    }
}

fn supports_all(model: &ModelSpec, e: &EndpointSpec, params: &[&str]) -> bool {
    let supported = e
        .supported_parameters
        .as_ref()
        .unwrap_or(&model.supported_parameters);
    params.iter().all(|p| {
        supported.iter().any(|s| s == p)
            // OpenRouter lists `max_tokens` for both spellings and `structured_outputs`
            // alongside `response_format`.
            || (*p == "max_completion_tokens" && supported.iter().any(|s| s == "max_tokens"))
    })
}

/// Check each filter; the first that rejects the endpoint names the reason.
fn excluded_by(
    prefs: &ProviderPrefs,
    facts: &RequestFacts<'_>,
    model: &ModelSpec,
    e: &EndpointSpec,
) -> Option<&'static str> {
    if !prefs.only.is_empty() && !prefs.only.contains(&e.provider) {
        return Some("allowed_providers");
    }
    if prefs.ignore.contains(&e.provider) {
        return Some("ignored_providers");
    }
    if !prefs.quantizations.is_empty() {
        let q = e
            .quantization
            .as_deref()
            .unwrap_or("unknown")
            .to_ascii_lowercase();
        if !prefs.quantizations.contains(&q) {
            return Some("quantization");
        }
    }
    if prefs.data_collection_deny && e.data_collection.as_deref() == Some("allow") {
        return Some("data_policy:training");
    }
    if prefs.zdr && e.zdr != Some(true) {
        return Some("data_policy:zdr");
    }
    let mp = &prefs.max_price;
    if over(Some(e.pricing.prompt), mp.prompt)
        || over(Some(e.pricing.completion), mp.completion)
        || over(e.pricing.request, mp.request)
        || (facts.images > 0 && over(e.pricing.image, mp.image))
    {
        return Some("max_price");
    }
    if prefs.require_parameters && !supports_all(model, e, &facts.params) {
        return Some("require_parameters");
    }
    None
}

/// Weighted random order without replacement, weight = 1 / price² (OpenRouter's default
/// load balancing). Free endpoints come first (their weight is unbounded).
fn inverse_square_order<'c>(
    mut items: Vec<PlannedEndpoint<'c>>,
    rand: &mut dyn FnMut() -> f64,
) -> Vec<PlannedEndpoint<'c>> {
    let mut out = Vec::with_capacity(items.len());
    let (mut free, paid): (Vec<_>, Vec<_>) = items
        .drain(..)
        .partition(|a| a.endpoint.pricing.blended() == Decimal::ZERO);
    while !free.is_empty() {
        let i = ((rand() * free.len() as f64) as usize).min(free.len() - 1);
        out.push(free.swap_remove(i));
    }
    // Weights are computed once; sampling without replacement then works on floats.
    let mut weighted: Vec<(f64, PlannedEndpoint<'c>)> = paid
        .into_iter()
        .map(|a| {
            let p = a.endpoint.pricing.blended().to_f64().unwrap_or(f64::MAX);
            (1.0 / (p * p), a)
        })
        .collect();
    while weighted.len() > 1 {
        let total: f64 = weighted.iter().map(|(w, _)| w).sum();
        let mut x = rand() * total;
        let mut pick = weighted.len() - 1;
        for (i, (w, _)) in weighted.iter().enumerate() {
            if x < *w {
                pick = i;
                break;
            }
            x -= w;
        }
        out.push(weighted.remove(pick).1);
    }
    out.extend(weighted.into_iter().map(|(_, a)| a));
    out
}

/// Sort by price, or by measured throughput (highest first) / latency (lowest first);
/// unmeasured endpoints keep their relative order after measured ones.
fn sort_endpoints(
    v: &mut [PlannedEndpoint<'_>],
    by: SortBy,
    signal: &dyn Fn(&EndpointSpec) -> EndpointSignal,
) {
    match by {
        SortBy::Price => v.sort_by_key(|a| a.endpoint.pricing.blended()),
        SortBy::Throughput => v.sort_by(|a, b| {
            let (x, y) = (
                signal(a.endpoint).throughput_tps,
                signal(b.endpoint).throughput_tps,
            );
            match (x, y) {
                (Some(x), Some(y)) => y.total_cmp(&x),
                (Some(_), None) => std::cmp::Ordering::Less,
                (None, Some(_)) => std::cmp::Ordering::Greater,
                (None, None) => std::cmp::Ordering::Equal,
            }
        }),
        SortBy::Latency => v.sort_by(|a, b| {
            let (x, y) = (signal(a.endpoint).ttfb_ms, signal(b.endpoint).ttfb_ms);
            match (x, y) {
                (Some(x), Some(y)) => x.total_cmp(&y),
                (Some(_), None) => std::cmp::Ordering::Less,
                (None, Some(_)) => std::cmp::Ordering::Greater,
                (None, None) => std::cmp::Ordering::Equal,
            }
        }),
    }
}

/// Soft preferences: endpoints measured below `preferred_min_throughput` or above
/// `preferred_max_latency` move behind the others (unmeasured endpoints are not penalised).
fn apply_soft_preferences(
    v: &mut Vec<PlannedEndpoint<'_>>,
    prefs: &ProviderPrefs,
    signal: &dyn Fn(&EndpointSpec) -> EndpointSignal,
) {
    if prefs.preferred_min_throughput.is_none() && prefs.preferred_max_latency.is_none() {
        return;
    }
    let (meets, misses): (Vec<_>, Vec<_>) = v.drain(..).partition(|a| {
        let s = signal(a.endpoint);
        let slow = matches!((prefs.preferred_min_throughput, s.throughput_tps), (Some(min), Some(t)) if t < min);
        let late = matches!((prefs.preferred_max_latency, s.ttfb_ms), (Some(max), Some(ms)) if ms > max * 1000.0);
        !(slow || late)
    });
    v.extend(meets);
    v.extend(misses);
}

/// Endpoints with recent outages go last (stable), as in OpenRouter's default routing.
/// An endpoint whose cooldown is over goes first once: that request is its half-open
/// probe (if it fails, failover still reaches the healthy ones before any byte is sent).
fn demote_degraded(
    v: &mut Vec<PlannedEndpoint<'_>>,
    signal: &dyn Fn(&EndpointSpec) -> EndpointSignal,
) {
    let mut probe = Vec::new();
    let mut ok = Vec::new();
    let mut degraded = Vec::new();
    for a in v.drain(..) {
        match signal(a.endpoint).admission {
            Admission::Probe => probe.push(a),
            Admission::Healthy => ok.push(a),
            Admission::Degraded => degraded.push(a),
        }
    }
    v.extend(probe);
    v.extend(ok);
    v.extend(degraded);
}

/// Build the plan for `requested` followed by `fallbacks` (OpenRouter's `models`).
/// `available` says whether an endpoint's provider is configured and usable; `rand`
/// returns uniform numbers in [0, 1) for load balancing.
pub fn plan<'c>(
    catalog: &'c Catalog,
    requested: &[&str],
    prefs: &ProviderPrefs,
    facts: &RequestFacts<'_>,
    available: impl Fn(&EndpointSpec) -> bool,
    signal: &dyn Fn(&EndpointSpec) -> EndpointSignal,
    rand: &mut dyn FnMut() -> f64,
) -> Result<Plan<'c>, RouteError> {
    let mut plan = Plan::default();
    let mut first_error = None;
    let mut seen = Vec::with_capacity(requested.len());
    for &id in requested {
        if seen.contains(&id) {
            continue;
        }
        seen.push(id);
        let (base, variant) = split_variant(catalog, id);
        let Some(model) = catalog.get(base) else {
            first_error.get_or_insert(RouteError::UnknownModel(id.to_string()));
            continue;
        };
        let configured: Vec<&EndpointSpec> =
            model.endpoints.iter().filter(|e| available(e)).collect();
        if configured.is_empty() {
            first_error.get_or_insert(RouteError::NoEndpoints {
                model: id.to_string(),
                reason: format!(
                    "none of its providers ({}) is configured",
                    model
                        .endpoints
                        .iter()
                        .map(|e| e.provider.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            });
            continue;
        }
        let mut reasons: Vec<&'static str> = Vec::new();
        let candidates: Vec<PlannedEndpoint<'c>> = configured
            .into_iter()
            .filter(|e| match excluded_by(prefs, facts, model, e) {
                Some(r) => {
                    if !reasons.contains(&r) {
                        reasons.push(r);
                    }
                    false
                }
                None => true,
            })
            .map(|endpoint| PlannedEndpoint { model, endpoint })
            .collect();
        if candidates.is_empty() {
            first_error.get_or_insert(RouteError::Filtered {
                model: id.to_string(),
                excluded_by: reasons.join(", "),
            });
            continue;
        }
        let sort = prefs.sort.or(match variant {
            Some("floor") => Some(SortBy::Price),
            Some("nitro") => Some(SortBy::Throughput),
            _ => None,
        });
        let mut ordered = if !prefs.order.is_empty() {
            let mut first: Vec<PlannedEndpoint<'c>> = Vec::new();
            for name in &prefs.order {
                first.extend(candidates.iter().filter(|a| a.endpoint.provider == *name));
            }
            if prefs.allow_fallbacks {
                let rest: Vec<_> = candidates
                    .iter()
                    .filter(|a| !prefs.order.contains(&a.endpoint.provider))
                    .copied()
                    .collect();
                first.extend(inverse_square_order(rest, rand));
            }
            first
        } else if let Some(by) = sort {
            let mut v = candidates;
            sort_endpoints(&mut v, by, signal);
            v
        } else {
            inverse_square_order(candidates, rand)
        };
        if ordered.is_empty() {
            first_error.get_or_insert(RouteError::Filtered {
                model: id.to_string(),
                excluded_by: "provider.order with allow_fallbacks: false".into(),
            });
            continue;
        }
        if prefs.order.is_empty() {
            apply_soft_preferences(&mut ordered, prefs, signal);
            demote_degraded(&mut ordered, signal);
        }
        if !prefs.allow_fallbacks && prefs.order.is_empty() {
            ordered.truncate(1);
        }
        plan.attempts.extend(ordered);
    }
    if prefs.partition == Partition::None
        && let Some(by) = prefs.sort
    {
        sort_endpoints(&mut plan.attempts, by, signal);
        demote_degraded(&mut plan.attempts, signal);
    }
    if plan.attempts.is_empty() {
        return Err(first_error.unwrap_or(RouteError::UnknownModel(String::new())));
    }
    Ok(plan)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::ModelSpec;

    fn catalog() -> Catalog {
        let m: Vec<ModelSpec> = vec![
            toml::from_str(
                r#"
id = "meta/llama"
name = "Llama"
context_length = 1000
supported_parameters = ["tools", "max_tokens", "temperature"]
[[endpoints]]
provider = "expensive"
model = "llama-e"
pricing = { prompt = "0.000003", completion = "0.000003" }
[[endpoints]]
provider = "cheap"
model = "llama-c"
quantization = "fp8"
data_collection = "allow"
pricing = { prompt = "0.000001", completion = "0.000001" }
[[endpoints]]
provider = "mid"
model = "llama-m"
zdr = true
supported_parameters = ["max_tokens"]
pricing = { prompt = "0.000002", completion = "0.000002" }
[[endpoints]]
provider = "absent"
model = "llama-a"
pricing = { prompt = "0", completion = "0" }
"#,
            )
            .unwrap(),
            toml::from_str(
                r#"
id = "openai/gpt"
name = "GPT"
context_length = 1000
[[endpoints]]
provider = "absent"
model = "gpt"
pricing = { prompt = "0", completion = "0" }
"#,
            )
            .unwrap(),
        ];
        Catalog::from_models(m).unwrap()
    }

    fn providers(p: &[PlannedEndpoint<'_>]) -> Vec<String> {
        p.iter().map(|a| a.endpoint.provider.clone()).collect()
    }

    fn avail(e: &EndpointSpec) -> bool {
        e.provider != "absent"
    }

    fn run(models: &[&str], prefs: &str) -> Result<Vec<String>, RouteError> {
        let c = catalog();
        let prefs = ProviderPrefs::parse(prefs).unwrap();
        let facts = RequestFacts {
            params: vec!["tools", "max_tokens"],
            images: 0,
        };
        let mut r = fastrand_like(7);
        plan(&c, models, &prefs, &facts, avail, &no_signals, &mut r).map(|p| providers(&p.attempts))
    }

    fn fastrand_like(seed: u64) -> impl FnMut() -> f64 {
        let mut s = seed;
        move || {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            (s >> 11) as f64 / (1u64 << 53) as f64
        }
    }

    #[test]
    fn sort_order_only_ignore() {
        assert_eq!(
            run(&["meta/llama"], r#"{"sort":"price"}"#).unwrap(),
            ["cheap", "mid", "expensive"]
        );
        assert_eq!(
            run(&["meta/llama:floor"], "{}").unwrap(),
            ["cheap", "mid", "expensive"]
        );
        let o = run(&["meta/llama"], r#"{"order":["mid","expensive"]}"#).unwrap();
        assert_eq!(o, ["mid", "expensive", "cheap"]);
        let o = run(
            &["meta/llama"],
            r#"{"order":["mid"],"allow_fallbacks":false}"#,
        )
        .unwrap();
        assert_eq!(o, ["mid"]);
        assert_eq!(
            run(&["meta/llama"], r#"{"only":["cheap"]}"#).unwrap(),
            ["cheap"]
        );
        let o = run(&["meta/llama"], r#"{"ignore":["cheap"],"sort":"price"}"#).unwrap();
        assert_eq!(o, ["mid", "expensive"]);
        assert_eq!(
            run(&["meta/llama"], r#"{"allow_fallbacks":false}"#)
                .unwrap()
                .len(),
            1
        );
    }

    #[test]
    fn filters() {
        // max_price is per million tokens: 1.5 $/M keeps only the 1 $/M endpoint.
        assert_eq!(
            run(&["meta/llama"], r#"{"max_price":{"prompt":1.5}}"#).unwrap(),
            ["cheap"]
        );
        assert_eq!(
            run(&["meta/llama"], r#"{"quantizations":["fp8"]}"#).unwrap(),
            ["cheap"]
        );
        assert_eq!(run(&["meta/llama"], r#"{"zdr":true}"#).unwrap(), ["mid"]);
        let o = run(
            &["meta/llama"],
            r#"{"data_collection":"deny","sort":"price"}"#,
        )
        .unwrap();
        assert_eq!(o, ["mid", "expensive"]);
        // `mid` does not list `tools`.
        let o = run(
            &["meta/llama"],
            r#"{"require_parameters":true,"sort":"price"}"#,
        )
        .unwrap();
        assert_eq!(o, ["cheap", "expensive"]);
        let e = run(&["meta/llama"], r#"{"max_price":{"prompt":0.1}}"#).unwrap_err();
        assert!(
            matches!(e, RouteError::Filtered { ref excluded_by, .. } if excluded_by == "max_price"),
            "{e}"
        );
    }

    #[test]
    fn errors_and_fallbacks() {
        assert_eq!(
            run(&["nope/x"], "{}").unwrap_err(),
            RouteError::UnknownModel("nope/x".into())
        );
        assert!(matches!(
            run(&["openai/gpt"], "{}").unwrap_err(),
            RouteError::NoEndpoints { .. }
        ));
        assert!(run(&["meta/llama:bogus"], "{}").is_err());
        let o = run(
            &["nope/x", "openai/gpt", "meta/llama"],
            r#"{"sort":"price"}"#,
        )
        .unwrap();
        assert_eq!(o, ["cheap", "mid", "expensive"]);
    }

    #[test]
    fn inverse_square_split_matches_expected_proportions() {
        // Blended prices 2, 4, 6 ($/M ×2): weights 1/4, 1/16, 1/36 → shares 0.735, 0.184, 0.082.
        let c = catalog();
        let prefs = ProviderPrefs::default();
        let facts = RequestFacts::default();
        let mut r = fastrand_like(42);
        let mut counts = std::collections::HashMap::new();
        let n = 20_000;
        for _ in 0..n {
            let p = plan(
                &c,
                &["meta/llama"],
                &prefs,
                &facts,
                avail,
                &no_signals,
                &mut r,
            )
            .unwrap();
            *counts
                .entry(p.attempts[0].endpoint.provider.clone())
                .or_insert(0) += 1;
            assert_eq!(p.attempts.len(), 3, "the rest stay as fallbacks");
        }
        let share = |k: &str| f64::from(counts[k]) / f64::from(n);
        let w = [1.0 / 4.0, 1.0 / 16.0, 1.0 / 36.0];
        let total: f64 = w.iter().sum();
        assert!((share("cheap") - w[0] / total).abs() < 0.02, "{counts:?}");
        assert!((share("mid") - w[1] / total).abs() < 0.02, "{counts:?}");
        assert!(
            (share("expensive") - w[2] / total).abs() < 0.02,
            "{counts:?}"
        );
    }
}

#[cfg(test)]
mod health_tests {
    use super::*;

    #[test]
    fn degraded_endpoints_go_last_and_live_sorts_use_signals() {
        let c: Catalog = Catalog::from_models(vec![
            toml::from_str(
                r#"
id = "a/m"
name = "M"
context_length = 1
[[endpoints]]
provider = "p1"
model = "m1"
pricing = { prompt = "0.000001", completion = "0.000001" }
[[endpoints]]
provider = "p2"
model = "m2"
pricing = { prompt = "0.000002", completion = "0.000002" }
[[endpoints]]
provider = "p3"
model = "m3"
pricing = { prompt = "0.000003", completion = "0.000003" }
"#,
            )
            .unwrap(),
        ])
        .unwrap();
        let signal = |e: &EndpointSpec| match e.provider.as_str() {
            "p1" => EndpointSignal {
                admission: Admission::Degraded,
                ttfb_ms: Some(10.0),
                throughput_tps: Some(500.0),
            },
            "p2" => EndpointSignal {
                admission: Admission::Healthy,
                ttfb_ms: Some(300.0),
                throughput_tps: Some(20.0),
            },
            _ => EndpointSignal {
                admission: Admission::Healthy,
                ttfb_ms: Some(100.0),
                throughput_tps: Some(80.0),
            },
        };
        let mut r = || 0.0;
        let run = |prefs: &str, r: &mut dyn FnMut() -> f64| {
            let prefs = ProviderPrefs::parse(prefs).unwrap();
            plan(
                &c,
                &["a/m"],
                &prefs,
                &RequestFacts::default(),
                |_| true,
                &signal,
                r,
            )
            .unwrap()
            .attempts
            .iter()
            .map(|a| a.endpoint.provider.clone())
            .collect::<Vec<_>>()
        };
        // Default: p1 is cheapest (would win the draw) but is degraded → last.
        assert_eq!(run("{}", &mut r).last().map(String::as_str), Some("p1"));
        assert_eq!(run(r#"{"sort":"price"}"#, &mut r), ["p2", "p3", "p1"]);
        assert_eq!(run(r#"{"sort":"throughput"}"#, &mut r), ["p3", "p2", "p1"]);
        assert_eq!(run(r#"{"sort":"latency"}"#, &mut r), ["p3", "p2", "p1"]);
        // Soft preferences move slow endpoints back without removing them.
        assert_eq!(
            run(r#"{"sort":"price","preferred_min_throughput":50}"#, &mut r),
            ["p3", "p2", "p1"]
        );
        assert_eq!(
            run(r#"{"sort":"price","preferred_max_latency":0.2}"#, &mut r),
            ["p3", "p2", "p1"]
        );
        // An explicit order is respected as given.
        assert_eq!(
            run(r#"{"order":["p1","p2"],"allow_fallbacks":false}"#, &mut r),
            ["p1", "p2"]
        );
    }
}
