//! OpenRouter's `provider` routing object, parsed and validated.

use rust_decimal::Decimal;
use serde::Deserialize;

use crate::pricing::Price;

/// `sort` field: how to order endpoints (disables load balancing).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SortBy {
    Price,
    Throughput,
    Latency,
}

/// Whether a sort applies within each model of a `models` list or across all of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Partition {
    #[default]
    Model,
    None,
}

/// Price ceilings: prompt/completion in USD per **million** tokens, image and request in USD.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MaxPrice {
    pub prompt: Option<Decimal>,
    pub completion: Option<Decimal>,
    pub image: Option<Decimal>,
    pub request: Option<Decimal>,
}

/// The `provider` object with OpenRouter's defaults.
#[derive(Debug, Clone, PartialEq)]
pub struct ProviderPrefs {
    pub order: Vec<String>,
    pub allow_fallbacks: bool,
    pub require_parameters: bool,
    pub data_collection_deny: bool,
    pub zdr: bool,
    pub only: Vec<String>,
    pub ignore: Vec<String>,
    pub quantizations: Vec<String>,
    pub sort: Option<SortBy>,
    pub partition: Partition,
    pub max_price: MaxPrice,
    /// Soft floor on throughput (tokens/s, p50): slower endpoints move to the end.
    pub preferred_min_throughput: Option<f64>,
    /// Soft ceiling on time to first token (seconds, p50): slower endpoints move to the end.
    pub preferred_max_latency: Option<f64>,
}

impl Default for ProviderPrefs {
    fn default() -> Self {
        ProviderPrefs {
            order: Vec::new(),
            allow_fallbacks: true,
            require_parameters: false,
            data_collection_deny: false,
            zdr: false,
            only: Vec::new(),
            ignore: Vec::new(),
            quantizations: Vec::new(),
            sort: None,
            partition: Partition::Model,
            max_price: MaxPrice::default(),
            preferred_min_throughput: None,
            preferred_max_latency: None,
        }
    }
}

#[derive(Deserialize)]
#[serde(untagged)]
enum SortRaw {
    Name(String),
    Obj {
        by: String,
        #[serde(default)]
        partition: Option<String>,
    },
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Number {
    Str(String),
    Num(serde_json::Number),
}

impl Number {
    fn decimal(&self, field: &str) -> Result<Decimal, String> {
        let s = match self {
            Number::Str(s) => s.clone(),
            Number::Num(n) => n.to_string(),
        };
        let d = Decimal::from_str_exact(s.trim())
            .or_else(|_| Decimal::from_scientific(s.trim()))
            .map_err(|_| format!("`provider.max_price.{field}` must be a number, got {s:?}"))?;
        if d.is_sign_negative() {
            return Err(format!("`provider.max_price.{field}` must not be negative"));
        }
        Ok(d)
    }
}

/// A number, or percentile cutoffs of which we honour `p50` (our live figures are moving
/// averages, the closest thing to a median we keep).
#[derive(Deserialize)]
#[serde(untagged)]
enum Cutoff {
    Num(f64),
    Percentiles {
        #[serde(default)]
        p50: Option<f64>,
    },
}

impl Cutoff {
    fn p50(&self) -> Option<f64> {
        match self {
            Cutoff::Num(n) => Some(*n),
            Cutoff::Percentiles { p50 } => *p50,
        }
    }
}

#[derive(Deserialize)]
struct MaxPriceRaw {
    #[serde(default)]
    prompt: Option<Number>,
    #[serde(default)]
    completion: Option<Number>,
    #[serde(default)]
    image: Option<Number>,
    #[serde(default)]
    request: Option<Number>,
    #[serde(default)]
    #[allow(dead_code)]
    audio: Option<Number>,
}

#[derive(Deserialize)]
struct Raw {
    #[serde(default)]
    order: Option<Vec<String>>,
    #[serde(default)]
    allow_fallbacks: Option<bool>,
    #[serde(default)]
    require_parameters: Option<bool>,
    #[serde(default)]
    data_collection: Option<String>,
    #[serde(default)]
    zdr: Option<bool>,
    #[serde(default)]
    only: Option<Vec<String>>,
    #[serde(default)]
    ignore: Option<Vec<String>>,
    #[serde(default)]
    quantizations: Option<Vec<String>>,
    #[serde(default)]
    sort: Option<SortRaw>,
    #[serde(default)]
    max_price: Option<MaxPriceRaw>,
    #[serde(default)]
    preferred_min_throughput: Option<Cutoff>,
    #[serde(default)]
    preferred_max_latency: Option<Cutoff>,
}

fn sort_by(s: &str) -> Result<Option<SortBy>, String> {
    match s {
        "price" => Ok(Some(SortBy::Price)),
        "throughput" => Ok(Some(SortBy::Throughput)),
        "latency" => Ok(Some(SortBy::Latency)),
        // Quality-first needs signals we do not collect; keep the default order.
        "exacto" => Ok(None),
        other => Err(format!(
            "`provider.sort` must be one of price, throughput, latency, exacto; got {other:?}"
        )),
    }
}

impl ProviderPrefs {
    /// Parse the raw `provider` member (unknown members are ignored, as OpenRouter does).
    pub fn parse(raw: &str) -> Result<ProviderPrefs, String> {
        let r: Raw = serde_json::from_str(raw).map_err(|e| format!("`provider`: {e}"))?;
        let mut p = ProviderPrefs {
            order: r.order.unwrap_or_default(),
            allow_fallbacks: r.allow_fallbacks.unwrap_or(true),
            require_parameters: r.require_parameters.unwrap_or(false),
            zdr: r.zdr.unwrap_or(false),
            only: r.only.unwrap_or_default(),
            ignore: r.ignore.unwrap_or_default(),
            preferred_min_throughput: r.preferred_min_throughput.and_then(|c| c.p50()),
            preferred_max_latency: r.preferred_max_latency.and_then(|c| c.p50()),
            quantizations: r
                .quantizations
                .unwrap_or_default()
                .into_iter()
                .map(|q| q.to_ascii_lowercase())
                .collect(),
            ..ProviderPrefs::default()
        };
        p.data_collection_deny = match r.data_collection.as_deref() {
            None | Some("allow") => false,
            Some("deny") => true,
            Some(other) => {
                return Err(format!(
                    "`provider.data_collection` must be \"allow\" or \"deny\", got {other:?}"
                ));
            }
        };
        match r.sort {
            None => {}
            Some(SortRaw::Name(s)) => p.sort = sort_by(&s)?,
            Some(SortRaw::Obj { by, partition }) => {
                p.sort = sort_by(&by)?;
                p.partition = match partition.as_deref() {
                    None | Some("model") => Partition::Model,
                    Some("none") => Partition::None,
                    Some(other) => {
                        return Err(format!(
                            "`provider.sort.partition` must be \"model\" or \"none\", got {other:?}"
                        ));
                    }
                };
            }
        }
        if let Some(m) = r.max_price {
            let million = Decimal::from(1_000_000);
            p.max_price = MaxPrice {
                prompt: m
                    .prompt
                    .map(|n| n.decimal("prompt"))
                    .transpose()?
                    .map(|d| d / million),
                completion: m
                    .completion
                    .map(|n| n.decimal("completion"))
                    .transpose()?
                    .map(|d| d / million),
                image: m.image.map(|n| n.decimal("image")).transpose()?,
                request: m.request.map(|n| n.decimal("request")).transpose()?,
            };
        }
        Ok(p)
    }

    /// Every provider name the request mentions (to check that each one exists).
    pub fn named_providers(&self) -> impl Iterator<Item = &str> {
        self.order
            .iter()
            .chain(self.only.iter())
            .chain(self.ignore.iter())
            .map(String::as_str)
    }
}

/// Merge a request's `provider` object over a default one (request members win).
pub fn merge_json(default: &str, request: Option<&str>) -> Result<String, String> {
    let Some(request) = request else {
        return Ok(default.to_string());
    };
    let mut base: serde_json::Map<String, serde_json::Value> =
        serde_json::from_str(default).map_err(|e| format!("default provider preferences: {e}"))?;
    let over: serde_json::Map<String, serde_json::Value> =
        serde_json::from_str(request).map_err(|e| format!("`provider`: {e}"))?;
    base.extend(over);
    serde_json::to_string(&base).map_err(|e| e.to_string())
}

/// Whether `price` exceeds `ceiling` (per token).
pub(crate) fn over(price: Option<Price>, ceiling: Option<Decimal>) -> bool {
    matches!((price, ceiling), (Some(p), Some(c)) if p.0 > c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_fields() {
        let p = ProviderPrefs::parse("{}").unwrap();
        assert_eq!(p, ProviderPrefs::default());
        let p = ProviderPrefs::parse(
            r#"{"order":["groq","Together"],"allow_fallbacks":false,"only":["groq"],"ignore":["x"],
                "sort":{"by":"price","partition":"none"},"max_price":{"prompt":1,"completion":"2.5"},
                "data_collection":"deny","zdr":true,"quantizations":["FP8"],"unknown":1}"#,
        )
        .unwrap();
        assert_eq!(p.order, ["groq", "Together"]);
        assert!(!p.allow_fallbacks);
        assert_eq!(p.sort, Some(SortBy::Price));
        assert_eq!(p.partition, Partition::None);
        assert_eq!(p.max_price.prompt, Some("0.000001".parse().unwrap()));
        assert_eq!(p.max_price.completion, Some("0.0000025".parse().unwrap()));
        assert!(p.data_collection_deny && p.zdr);
        assert_eq!(p.quantizations, ["fp8"]);
        assert_eq!(p.named_providers().count(), 4);
    }

    #[test]
    fn soft_preferences_and_merge() {
        let p = ProviderPrefs::parse(
            r#"{"preferred_min_throughput":50,"preferred_max_latency":{"p50":1.5,"p90":3}}"#,
        )
        .unwrap();
        assert_eq!(p.preferred_min_throughput, Some(50.0));
        assert_eq!(p.preferred_max_latency, Some(1.5));
        let m = merge_json(
            r#"{"sort":"price","ignore":["a"]}"#,
            Some(r#"{"ignore":["b"]}"#),
        )
        .unwrap();
        let p = ProviderPrefs::parse(&m).unwrap();
        assert_eq!(p.sort, Some(SortBy::Price));
        assert_eq!(p.ignore, ["b"]);
    }

    #[test]
    fn clear_errors() {
        assert!(
            ProviderPrefs::parse(r#"{"sort":"cheapest"}"#)
                .unwrap_err()
                .contains("provider.sort")
        );
        assert!(
            ProviderPrefs::parse(r#"{"data_collection":"maybe"}"#)
                .unwrap_err()
                .contains("data_collection")
        );
        assert!(
            ProviderPrefs::parse(r#"{"max_price":{"prompt":"abc"}}"#)
                .unwrap_err()
                .contains("max_price.prompt")
        );
        assert!(ProviderPrefs::parse(r#"{"order":"groq"}"#).is_err());
    }
}
