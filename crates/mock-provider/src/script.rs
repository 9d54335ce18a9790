//! Fault scripts: what the mock does with one request, and the directive syntax that lets a
//! request override the server's defaults.
//!
//! The effective script of a request is the server's defaults, then the keys of a top-level
//! `"mock": {…}` object in the request body, then every `[[mock key=value …]]` directive found
//! in the text of the request's last user turn (later directives win). The directive grammar
//! is shared by every dialect; only *where* the text is looked for is dialect-specific.

use serde_json::Value;
use std::fmt;

/// What the mock does with a request. `Default` is a healthy, instant answer.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Script {
    /// Answer with this HTTP status and the dialect's error body (`None` or 200: answer normally).
    pub status: Option<u16>,
    /// Delay before the response headers are sent.
    pub ttfb_ms: u64,
    /// Delay between two stream events (after the first).
    pub chunk_delay_ms: u64,
    /// Split the reply into exactly this many content pieces (default: one per word).
    pub chunks: Option<usize>,
    /// Stream: send this many content pieces, then drop the connection without finishing.
    /// Non-stream: send the headers and part of the body, then drop the connection.
    pub reset_after: Option<usize>,
    /// Non-stream: a truncated JSON body. Stream: an unparsable event after the first one.
    pub malformed: bool,
    /// Never answer (until the client goes away or the server shuts down).
    pub hang: bool,
    /// Send `retry-after: N` (seconds) with the error status.
    pub retry_after: Option<u64>,
    /// Leave usage out (no usage chunk even when `stream_options.include_usage` asks for it).
    pub no_usage: bool,
    /// Reported cached prompt tokens (capped at the prompt tokens).
    pub cached_tokens: u64,
    /// Reported reasoning tokens (added to the completion tokens).
    pub reasoning_tokens: u64,
    /// How many tool calls to make when the request offers tools (default 1).
    pub tool_calls: Option<usize>,
    /// The reply text (default "Hello from the mock provider.").
    pub reply: Option<String>,
}

/// Every key a directive may set, for error messages and documentation.
pub const DIRECTIVE_KEYS: &[&str] = &[
    "status",
    "ttfb_ms",
    "chunk_delay_ms",
    "chunks",
    "reset_after",
    "malformed",
    "hang",
    "retry_after",
    "no_usage",
    "cached_tokens",
    "reasoning_tokens",
    "tool_calls",
    "reply",
];

/// A directive that could not be understood; answered with a 400 by every dialect.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirectiveError(pub String);

impl fmt::Display for DirectiveError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for DirectiveError {}

/// One parsed value before it is applied to a key.
enum Raw<'a> {
    /// From text directives (`key=value`, or a bare `key` meaning true).
    Text(&'a str),
    /// From the JSON `mock` object.
    Json(&'a Value),
}

impl Script {
    /// Applies the JSON `mock` object of a request body (same keys as the text directive;
    /// numbers, numeric strings, booleans; `null` clears an optional key).
    pub fn apply_json(&mut self, mock: &Value) -> Result<(), DirectiveError> {
        let Value::Object(map) = mock else {
            return Err(DirectiveError(
                "Invalid 'mock': expected an object of mock directives.".to_owned(),
            ));
        };
        for (key, value) in map {
            self.set(key, Raw::Json(value))?;
        }
        Ok(())
    }

    /// Applies every `[[mock …]]` directive found in `text`, in order.
    pub fn apply_text(&mut self, text: &str) -> Result<(), DirectiveError> {
        let mut rest = text;
        while let Some(start) = rest.find("[[mock") {
            let after = &rest[start + "[[mock".len()..];
            // `[[mockery]]` is not a directive: the keyword must end here.
            if !(after.starts_with("]]") || after.starts_with(char::is_whitespace)) {
                rest = after;
                continue;
            }
            let Some(end) = after.find("]]") else {
                return Err(DirectiveError(
                    "Unterminated mock directive: expected `]]` after `[[mock`.".to_owned(),
                ));
            };
            for token in after[..end].split_whitespace() {
                let (key, value) = match token.split_once('=') {
                    Some((k, v)) => (k, v),
                    None => (token, "1"),
                };
                self.set(key, Raw::Text(value))?;
            }
            rest = &after[end + 2..];
        }
        Ok(())
    }

    fn set(&mut self, key: &str, raw: Raw<'_>) -> Result<(), DirectiveError> {
        match key {
            "status" => {
                self.status = opt_num(key, &raw)?;
                if let Some(s) = self.status
                    && !(200..=599).contains(&s)
                {
                    return Err(DirectiveError(format!(
                        "Invalid mock directive status={s}: expected 200..=599."
                    )));
                }
            }
            "ttfb_ms" => self.ttfb_ms = num(key, &raw)?,
            "chunk_delay_ms" => self.chunk_delay_ms = num(key, &raw)?,
            "chunks" => self.chunks = capped(key, opt_num(key, &raw)?, MAX_CHUNKS)?,
            "reset_after" => self.reset_after = opt_num(key, &raw)?,
            "malformed" => self.malformed = boolean(key, &raw)?,
            "hang" => self.hang = boolean(key, &raw)?,
            "retry_after" => self.retry_after = opt_num(key, &raw)?,
            "no_usage" => self.no_usage = boolean(key, &raw)?,
            "cached_tokens" => self.cached_tokens = num(key, &raw)?,
            "reasoning_tokens" => self.reasoning_tokens = num(key, &raw)?,
            "tool_calls" => self.tool_calls = capped(key, opt_num(key, &raw)?, MAX_TOOL_CALLS)?,
            "reply" => {
                self.reply = match raw {
                    Raw::Text("none") => None,
                    Raw::Text(t) => Some(t.replace('_', " ")),
                    Raw::Json(Value::Null) => None,
                    Raw::Json(Value::String(s)) => Some(s.clone()),
                    Raw::Json(_) => return Err(bad_value(key, "a string")),
                }
            }
            _ => {
                return Err(DirectiveError(format!(
                    "Unknown mock directive key '{key}'. Known keys: {}.",
                    DIRECTIVE_KEYS.join(", ")
                )));
            }
        }
        Ok(())
    }
}

/// Largest `chunks` a directive may ask for (a bound on the memory one request can take).
pub const MAX_CHUNKS: usize = 100_000;
/// Largest `tool_calls` a directive may ask for.
pub const MAX_TOOL_CALLS: usize = 1_000;

fn capped(key: &str, value: Option<usize>, max: usize) -> Result<Option<usize>, DirectiveError> {
    match value {
        Some(n) if n > max => Err(DirectiveError(format!(
            "Invalid mock directive {key}={n}: at most {max}."
        ))),
        other => Ok(other),
    }
}

fn bad_value(key: &str, expected: &str) -> DirectiveError {
    DirectiveError(format!(
        "Invalid value for mock directive '{key}': expected {expected}."
    ))
}

fn num<T: TryFrom<u64>>(key: &str, raw: &Raw<'_>) -> Result<T, DirectiveError> {
    let n = match raw {
        Raw::Text(t) => t.parse::<u64>().ok(),
        Raw::Json(Value::Number(n)) => n.as_u64(),
        Raw::Json(Value::String(s)) => s.parse::<u64>().ok(),
        Raw::Json(_) => None,
    };
    n.and_then(|n| T::try_from(n).ok())
        .ok_or_else(|| bad_value(key, "a non-negative integer"))
}

fn opt_num<T: TryFrom<u64>>(key: &str, raw: &Raw<'_>) -> Result<Option<T>, DirectiveError> {
    match raw {
        Raw::Text("none") | Raw::Json(Value::Null) => Ok(None),
        _ => num(key, raw).map(Some),
    }
}

fn boolean(key: &str, raw: &Raw<'_>) -> Result<bool, DirectiveError> {
    match raw {
        Raw::Text("1" | "true" | "yes" | "on") | Raw::Json(Value::Bool(true)) => Ok(true),
        Raw::Text("0" | "false" | "no" | "off") | Raw::Json(Value::Bool(false) | Value::Null) => {
            Ok(false)
        }
        Raw::Json(Value::Number(n)) if n.as_u64() == Some(1) => Ok(true),
        Raw::Json(Value::Number(n)) if n.as_u64() == Some(0) => Ok(false),
        _ => Err(bad_value(key, "a boolean (1/0/true/false)")),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn parses_every_key_from_text() {
        let mut s = Script::default();
        s.apply_text(
            "hi [[mock status=500 ttfb_ms=100 chunk_delay_ms=5 chunks=3 reset_after=2 malformed=1 \
             hang=1 retry_after=3 no_usage=1 cached_tokens=10 reasoning_tokens=5 tool_calls=2 \
             reply=Hello_world]] there",
        )
        .unwrap();
        assert_eq!(
            s,
            Script {
                status: Some(500),
                ttfb_ms: 100,
                chunk_delay_ms: 5,
                chunks: Some(3),
                reset_after: Some(2),
                malformed: true,
                hang: true,
                retry_after: Some(3),
                no_usage: true,
                cached_tokens: 10,
                reasoning_tokens: 5,
                tool_calls: Some(2),
                reply: Some("Hello world".into()),
            }
        );
    }

    #[test]
    fn text_without_directive_changes_nothing() {
        let mut s = Script::default();
        s.apply_text("plain [[mockery]] text [[other]]").unwrap();
        assert_eq!(s, Script::default());
    }

    #[test]
    fn bare_keys_are_true_and_later_directives_win() {
        let mut s = Script {
            status: Some(500),
            ..Script::default()
        };
        s.apply_text("[[mock hang]] and [[mock status=none malformed=true]] [[mock hang=0]]")
            .unwrap();
        assert_eq!(
            s,
            Script {
                malformed: true,
                ..Script::default()
            }
        );
    }

    #[test]
    fn empty_directive_is_fine() {
        let mut s = Script::default();
        s.apply_text("[[mock]]").unwrap();
        assert_eq!(s, Script::default());
    }

    #[test]
    fn unknown_key_is_an_error() {
        let err = Script::default()
            .apply_text("[[mock stauts=500]]")
            .unwrap_err();
        assert!(
            err.0.contains("Unknown mock directive key 'stauts'"),
            "{err}"
        );
        let err = Script::default()
            .apply_json(&json!({"bogus": 1}))
            .unwrap_err();
        assert!(err.0.contains("'bogus'"), "{err}");
    }

    #[test]
    fn bad_values_are_errors() {
        for text in [
            "[[mock status=abc]]",
            "[[mock status=99]]",
            "[[mock status=600]]",
            "[[mock ttfb_ms=-1]]",
            "[[mock malformed=maybe]]",
            "[[mock chunks=1",
            "[[mock chunks=100001]]",
            "[[mock tool_calls=5000]]",
        ] {
            assert!(Script::default().apply_text(text).is_err(), "{text}");
        }
        for value in [
            json!({"status": "x"}),
            json!({"ttfb_ms": 1.5}),
            json!({"reply": 3}),
            json!({"hang": "maybe"}),
            json!([1]),
        ] {
            assert!(Script::default().apply_json(&value).is_err(), "{value}");
        }
    }

    #[test]
    fn json_object_sets_keys() {
        let mut s = Script {
            status: Some(503),
            ..Script::default()
        };
        s.apply_json(&json!({
            "status": null, "ttfb_ms": "20", "malformed": true, "hang": 0,
            "reply": "with_underscores kept", "tool_calls": 3, "retry_after": 7
        }))
        .unwrap();
        assert_eq!(
            s,
            Script {
                ttfb_ms: 20,
                malformed: true,
                reply: Some("with_underscores kept".into()),
                tool_calls: Some(3),
                retry_after: Some(7),
                ..Script::default()
            }
        );
    }
}
