//! Prices are exact decimals (USD per token, per request, per image) and so is every
//! cost derived from them: no floating point touches money.

use std::str::FromStr;

use rust_decimal::Decimal;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A price in USD, parsed from a decimal string such as `"0.0000025"`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Price(pub Decimal);

impl<'de> Deserialize<'de> for Price {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Str(String),
            Int(i64),
            Float(f64),
        }
        let s = match Raw::deserialize(d)? {
            Raw::Str(s) => s,
            Raw::Int(i) => i.to_string(),
            Raw::Float(f) => {
                return Err(serde::de::Error::custom(format!(
                    "price {f} must be a decimal string such as \"0.0000025\" (floats lose precision)"
                )));
            }
        };
        let v = Decimal::from_str_exact(s.trim()).map_err(|_| {
            serde::de::Error::custom(format!(
                "price {s:?} is not a decimal number (expected e.g. \"0.0000025\")"
            ))
        })?;
        if v.is_sign_negative() {
            return Err(serde::de::Error::custom(format!(
                "price {s:?} must not be negative"
            )));
        }
        Ok(Price(v))
    }
}

impl Serialize for Price {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0.normalize().to_string())
    }
}

impl FromStr for Price {
    type Err = rust_decimal::Error;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Decimal::from_str_exact(s).map(Price)
    }
}

/// An endpoint's prices, OpenRouter's keys. Missing keys cost nothing, except the cache
/// and reasoning prices, which fall back to the prompt/completion price.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Pricing {
    pub prompt: Price,
    pub completion: Price,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request: Option<Price>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<Price>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input_cache_read: Option<Price>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input_cache_write: Option<Price>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub internal_reasoning: Option<Price>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub web_search: Option<Price>,
}

/// Token counts in OpenAI's convention: `prompt` includes cached reads and cache writes,
/// `completion` includes reasoning.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TokenCounts {
    pub prompt: u64,
    pub completion: u64,
    pub cached_read: u64,
    pub cache_write: u64,
    pub reasoning: u64,
    pub images: u64,
}

/// The cost of one generation, split as OpenRouter's `cost_details` reports it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Cost {
    pub prompt: Decimal,
    pub completion: Decimal,
    /// Per-request and per-image fees.
    pub fixed: Decimal,
}

impl Cost {
    pub fn total(&self) -> Decimal {
        self.prompt + self.completion + self.fixed
    }
}

/// Render a decimal as a JSON-number-compatible string, trailing zeros removed.
pub fn decimal_string(d: Decimal) -> String {
    d.normalize().to_string()
}

impl Pricing {
    /// The exact cost of `t` at these prices.
    pub fn cost(&self, t: &TokenCounts) -> Cost {
        let n = Decimal::from;
        let cached = t.cached_read.min(t.prompt);
        let writes = t.cache_write.min(t.prompt - cached);
        let plain_prompt = t.prompt - cached - writes;
        let reasoning = t.reasoning.min(t.completion);
        let plain_completion = t.completion - reasoning;
        let prompt = n(plain_prompt) * self.prompt.0
            + n(cached) * self.input_cache_read.unwrap_or(self.prompt).0
            + n(writes) * self.input_cache_write.unwrap_or(self.prompt).0;
        let completion = n(plain_completion) * self.completion.0
            + n(reasoning) * self.internal_reasoning.unwrap_or(self.completion).0;
        let fixed = self.request.map_or(Decimal::ZERO, |p| p.0)
            + n(t.images) * self.image.map_or(Decimal::ZERO, |p| p.0);
        Cost {
            prompt,
            completion,
            fixed,
        }
    }

    /// Price used to rank endpoints: prompt + completion per token.
    pub fn blended(&self) -> Decimal {
        self.prompt.0 + self.completion.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Price {
        s.parse().unwrap()
    }

    #[test]
    fn cost_is_exact() {
        let pricing = Pricing {
            prompt: p("0.00000015"),
            completion: p("0.0000006"),
            input_cache_read: Some(p("0.000000075")),
            ..Default::default()
        };
        let c = pricing.cost(&TokenCounts {
            prompt: 1000,
            completion: 500,
            cached_read: 400,
            ..Default::default()
        });
        // 600*0.00000015 + 400*0.000000075 = 0.00009 + 0.00003 = 0.00012
        assert_eq!(decimal_string(c.prompt), "0.00012");
        assert_eq!(decimal_string(c.completion), "0.0003");
        assert_eq!(decimal_string(c.total()), "0.00042");
    }

    #[test]
    fn reasoning_cache_write_and_fees() {
        let pricing = Pricing {
            prompt: p("0.000003"),
            completion: p("0.000015"),
            input_cache_write: Some(p("0.00000375")),
            internal_reasoning: Some(p("0.00001")),
            request: Some(p("0.001")),
            image: Some(p("0.002")),
            ..Default::default()
        };
        let c = pricing.cost(&TokenCounts {
            prompt: 100,
            completion: 10,
            cache_write: 50,
            reasoning: 4,
            images: 2,
            ..Default::default()
        });
        assert_eq!(decimal_string(c.prompt), "0.0003375"); // 50*3e-6 + 50*3.75e-6
        assert_eq!(decimal_string(c.completion), "0.00013"); // 6*15e-6 + 4*1e-5
        assert_eq!(decimal_string(c.fixed), "0.005");
    }

    #[test]
    fn inconsistent_counts_never_underflow() {
        let pricing = Pricing::default();
        let c = pricing.cost(&TokenCounts {
            prompt: 1,
            cached_read: 5,
            cache_write: 5,
            completion: 0,
            reasoning: 3,
            images: 0,
        });
        assert_eq!(c.total(), Decimal::ZERO);
    }

    #[test]
    fn parse_rejects_floats_and_negatives() {
        let ok: Pricing = toml::from_str("prompt = \"0.000001\"\ncompletion = \"2\"").unwrap();
        assert_eq!(ok.completion, p("2"));
        let e = toml::from_str::<Pricing>("prompt = 0.000001\ncompletion = \"2\"").unwrap_err();
        assert!(e.to_string().contains("decimal string"), "{e}");
        let e = toml::from_str::<Pricing>("prompt = \"-1\"\ncompletion = \"2\"").unwrap_err();
        assert!(e.to_string().contains("negative"), "{e}");
        let e = toml::from_str::<Pricing>("prompt = \"abc\"\ncompletion = \"2\"").unwrap_err();
        assert!(e.to_string().contains("not a decimal"), "{e}");
    }
}
