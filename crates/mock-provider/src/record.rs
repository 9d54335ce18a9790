//! Request recording: a bounded ring of what the mock received, cheap on the hot path
//! (a header-map clone and a refcounted body; strings and JSON are made only when read).

use bytes::Bytes;
use http::{HeaderMap, Method, Uri};
use std::collections::VecDeque;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

/// One request as the mock received it.
#[derive(Debug, Clone)]
pub struct RecordedRequest {
    /// `GET`, `POST`, …
    pub method: String,
    /// The path without the query, e.g. `/v1/chat/completions`.
    pub path: String,
    /// The raw query string, if any.
    pub query: Option<String>,
    /// Every header in arrival order, names lowercase (values decoded lossily as UTF-8).
    pub headers: Vec<(String, String)>,
    /// The body parsed as JSON, or `Value::Null` when it is empty or not JSON.
    pub body: serde_json::Value,
    /// The body bytes exactly as received.
    pub raw_body: Bytes,
}

impl RecordedRequest {
    /// The first value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The body as UTF-8 text, if it is.
    pub fn body_text(&self) -> Option<&str> {
        std::str::from_utf8(&self.raw_body).ok()
    }
}

struct Entry {
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
}

impl Entry {
    fn to_recorded(&self) -> RecordedRequest {
        RecordedRequest {
            method: self.method.as_str().to_owned(),
            path: self.uri.path().to_owned(),
            query: self.uri.query().map(str::to_owned),
            headers: self
                .headers
                .iter()
                .map(|(k, v)| {
                    (
                        k.as_str().to_owned(),
                        String::from_utf8_lossy(v.as_bytes()).into_owned(),
                    )
                })
                .collect(),
            body: serde_json::from_slice(&self.body).unwrap_or(serde_json::Value::Null),
            raw_body: self.body.clone(),
        }
    }
}

/// The recorder shared by every connection of one mock server.
pub(crate) struct Recorder {
    enabled: bool,
    limit: usize,
    count: AtomicUsize,
    entries: Mutex<VecDeque<Entry>>,
}

impl Recorder {
    pub(crate) fn new(enabled: bool, limit: usize) -> Self {
        Recorder {
            enabled: enabled && limit > 0,
            limit,
            count: AtomicUsize::new(0),
            entries: Mutex::new(VecDeque::new()),
        }
    }

    /// Whether bodies and headers are kept (the count is always kept).
    pub(crate) fn enabled(&self) -> bool {
        self.enabled
    }

    /// Counts a request without keeping it.
    pub(crate) fn count(&self) {
        self.count.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts and keeps a request, dropping the oldest beyond the limit.
    pub(crate) fn record(&self, method: &Method, uri: &Uri, headers: &HeaderMap, body: &Bytes) {
        self.count();
        let entry = Entry {
            method: method.clone(),
            uri: uri.clone(),
            headers: headers.clone(),
            body: body.clone(),
        };
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        if entries.len() >= self.limit {
            entries.pop_front();
        }
        entries.push_back(entry);
    }

    pub(crate) fn total(&self) -> usize {
        self.count.load(Ordering::Relaxed)
    }

    pub(crate) fn snapshot(&self) -> Vec<RecordedRequest> {
        let entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        entries.iter().map(Entry::to_recorded).collect()
    }

    pub(crate) fn clear(&self) {
        self.entries
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_last_n_and_counts_all() {
        let r = Recorder::new(true, 2);
        let headers = HeaderMap::new();
        for i in 0..5 {
            let uri: Uri = format!("/v1/x?i={i}").parse().unwrap();
            r.record(
                &Method::POST,
                &uri,
                &headers,
                &Bytes::from_static(b"{\"a\":1}"),
            );
        }
        assert_eq!(r.total(), 5);
        let snap = r.snapshot();
        assert_eq!(snap.len(), 2);
        assert_eq!(snap[0].query.as_deref(), Some("i=3"));
        assert_eq!(snap[1].path, "/v1/x");
        assert_eq!(snap[1].body["a"], 1);
    }

    #[test]
    fn disabled_recorder_only_counts() {
        let r = Recorder::new(false, 10);
        assert!(!r.enabled());
        r.count();
        assert_eq!(r.total(), 1);
        assert!(r.snapshot().is_empty());
    }
}
