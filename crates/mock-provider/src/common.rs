//! Dialect-independent pieces: deterministic content, token estimates, sample values from JSON
//! Schemas, timed event bodies with scripted resets, and the request-body reader.

use axum::body::Body;
use bytes::Bytes;
use futures::StreamExt;
use serde_json::{Map, Value};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::script::Script;

/// The reply when no `reply` directive is given.
pub const DEFAULT_REPLY: &str = "Hello from the mock provider.";

/// A random id: `prefix` followed by `len` alphanumeric characters.
pub(crate) fn random_id(prefix: &str, len: usize) -> String {
    let mut id = String::with_capacity(prefix.len() + len);
    id.push_str(prefix);
    for _ in 0..len {
        id.push(fastrand::alphanumeric());
    }
    id
}

/// Seconds since the Unix epoch.
pub(crate) fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// The mock's token estimate for `chars` characters of prompt text: ceil(chars / 4), min 1.
pub fn estimate_tokens(chars: usize) -> u64 {
    (chars as u64).div_ceil(4).max(1)
}

/// Splits `reply` into content pieces whose concatenation is the delivered content.
///
/// Without `chunks`: one piece per word, each word keeping the whitespace that follows it.
/// With `chunks = N`: exactly N pieces of near-equal length in characters; when the reply has
/// fewer than N characters it is first repeated (joined by spaces) until it has at least N,
/// so a benchmark can ask for long streams with any reply. `N = 0` means no content.
pub fn split_reply(reply: &str, chunks: Option<usize>) -> Vec<String> {
    match chunks {
        None => split_words(reply),
        Some(0) => Vec::new(),
        Some(n) => split_even(reply, n.min(crate::script::MAX_CHUNKS)),
    }
}

fn split_words(reply: &str) -> Vec<String> {
    let mut pieces = Vec::new();
    let mut start = 0;
    let mut prev_ws = false;
    for (i, c) in reply.char_indices() {
        let ws = c.is_whitespace();
        if !ws && prev_ws && i > start && !reply[start..i].trim().is_empty() {
            pieces.push(reply[start..i].to_owned());
            start = i;
        }
        prev_ws = ws;
    }
    if start < reply.len() {
        pieces.push(reply[start..].to_owned());
    }
    pieces
}

fn split_even(reply: &str, n: usize) -> Vec<String> {
    let mut text = reply.to_owned();
    if reply.is_empty() {
        return vec![String::new(); n];
    }
    let mut len = text.chars().count();
    while len < n {
        text.push(' ');
        text.push_str(reply);
        len = text.chars().count();
    }
    let chars: Vec<char> = text.chars().collect();
    (0..n)
        .map(|i| chars[i * len / n..(i + 1) * len / n].iter().collect())
        .collect()
}

/// A sample value for one JSON-Schema property: string → "Paris", number/integer → 1,
/// boolean → true, an `enum` → its first value, anything else → null.
fn sample_leaf(schema: &Value) -> Value {
    if let Some(first) = schema
        .get("enum")
        .and_then(Value::as_array)
        .and_then(|e| e.first())
    {
        return first.clone();
    }
    let ty = match schema.get("type") {
        Some(Value::String(t)) => Some(t.as_str()),
        Some(Value::Array(types)) => types
            .iter()
            .filter_map(Value::as_str)
            .find(|t| *t != "null"),
        _ => None,
    };
    match ty {
        Some("string") => Value::String("Paris".to_owned()),
        Some("number" | "integer") => Value::from(1),
        Some("boolean") => Value::Bool(true),
        _ => Value::Null,
    }
}

/// A sample object for a JSON Schema: one sample value per entry of `properties` (`{}` when
/// there are none). Used for tool-call arguments and `json_schema` structured output.
pub fn sample_object(schema: Option<&Value>) -> Map<String, Value> {
    let mut out = Map::new();
    if let Some(props) = schema
        .and_then(|s| s.get("properties"))
        .and_then(Value::as_object)
    {
        for (name, prop) in props {
            out.insert(name.clone(), sample_leaf(prop));
        }
    }
    out
}

/// Serializes a JSON value to a string (infallible for `Value`).
pub(crate) fn to_json_string<T: serde::Serialize + ?Sized>(value: &T) -> String {
    serde_json::to_string(value).unwrap_or_else(|_| "null".to_owned())
}

/// Appends `s` to `out` as a JSON string literal (with quotes).
pub(crate) fn push_json_str(out: &mut Vec<u8>, s: &str) {
    // Writing into a Vec cannot fail and a &str always serializes.
    let _ = serde_json::to_writer(&mut *out, s);
}

/// Waits out the scripted time to first byte, and hangs forever if scripted to.
pub(crate) async fn before_headers(script: &Script) {
    if script.ttfb_ms > 0 {
        tokio::time::sleep(Duration::from_millis(script.ttfb_ms)).await;
    }
    if script.hang {
        std::future::pending::<()>().await;
    }
}

fn reset_error() -> std::io::Error {
    std::io::Error::new(
        std::io::ErrorKind::ConnectionReset,
        "mock provider: scripted connection reset",
    )
}

/// How a timed event body ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum End {
    /// After the last event, the body ends normally.
    Complete,
    /// After the last event, the body fails so the server drops the connection mid-response.
    Reset,
}

/// A streaming body: each event is its own frame and its own socket write, with `delay`
/// between events (a bare yield when zero, so frames are flushed separately), optionally
/// ending in an abrupt connection reset.
pub(crate) fn event_body(events: Vec<Bytes>, delay: Duration, end: End) -> Body {
    let events = futures::stream::iter(
        events
            .into_iter()
            .map(Some)
            .chain((end == End::Reset).then_some(None)),
    );
    let stream = events.enumerate().then(move |(i, ev)| async move {
        if i > 0 {
            if delay.is_zero() {
                tokio::task::yield_now().await;
            } else {
                tokio::time::sleep(delay).await;
            }
        }
        ev.ok_or_else(reset_error)
    });
    Body::from_stream(stream)
}

/// A body that sends the first half of `full` and then resets the connection.
pub(crate) fn partial_body(full: &[u8]) -> Body {
    let half = Bytes::copy_from_slice(&full[..full.len() / 2]);
    event_body(vec![half], Duration::ZERO, End::Reset)
}

/// Reads a request body up to `limit` bytes; `Err(true)` when it is too large,
/// `Err(false)` when the client failed to send it.
pub(crate) async fn read_body(body: Body, limit: usize) -> Result<Bytes, bool> {
    match axum::body::to_bytes(body, limit).await {
        Ok(b) => Ok(b),
        Err(e) => {
            let too_large = std::error::Error::source(&e)
                .is_some_and(|s| s.is::<http_body_util::LengthLimitError>());
            Err(too_large)
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn word_split_keeps_text() {
        let pieces = split_reply(DEFAULT_REPLY, None);
        assert_eq!(
            pieces,
            vec!["Hello ", "from ", "the ", "mock ", "provider."]
        );
        assert_eq!(split_reply("  a  b ", None), vec!["  a  ", "b "]);
        assert!(split_reply("", None).is_empty());
        assert_eq!(split_reply("one", None), vec!["one"]);
    }

    #[test]
    fn even_split_has_exact_count() {
        let pieces = split_reply("abcdefg", Some(3));
        assert_eq!(pieces.len(), 3);
        assert_eq!(pieces.concat(), "abcdefg");
        let pieces = split_reply("héllo", Some(5));
        assert_eq!(pieces, vec!["h", "é", "l", "l", "o"]);
        let pieces = split_reply("ab", Some(7));
        assert_eq!(pieces.len(), 7);
        assert_eq!(pieces.concat(), "ab ab ab");
        assert!(split_reply("ab", Some(0)).is_empty());
        assert_eq!(split_reply("", Some(2)), vec!["", ""]);
    }

    #[test]
    fn token_estimate() {
        assert_eq!(estimate_tokens(0), 1);
        assert_eq!(estimate_tokens(4), 1);
        assert_eq!(estimate_tokens(5), 2);
    }

    #[test]
    fn samples_from_schema() {
        let schema = json!({"type":"object","properties":{
            "city":{"type":"string"}, "n":{"type":"integer"}, "x":{"type":"number"},
            "ok":{"type":"boolean"}, "o":{"type":"object"}, "u":{"type":["string","null"]},
            "e":{"type":"string","enum":["celsius","fahrenheit"]}}});
        let v = Value::Object(sample_object(Some(&schema)));
        assert_eq!(
            v,
            json!({"city":"Paris","n":1,"x":1,"ok":true,"o":null,"u":"Paris","e":"celsius"})
        );
        assert!(sample_object(None).is_empty());
        assert!(sample_object(Some(&json!({"type":"object"}))).is_empty());
    }
}
