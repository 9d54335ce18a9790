//! Incremental SSE decoding (WHATWG "event stream" interpretation, reduced to what LLM
//! providers send): `data:` lines are joined with `\n`, `event:` names are kept, comment
//! lines (`:` prefix) are reported so keep-alives can be observed, and an event is
//! dispatched on a blank line. Input may be split at any byte, including inside a
//! `\r\n` pair or a UTF-8 sequence.

use bytes::{Buf, BytesMut};

/// One decoded SSE event.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SseEvent {
    /// The `event:` field, if any.
    pub event: Option<String>,
    /// The `data:` lines joined with `\n` (raw bytes; JSON is UTF-8 anyway).
    pub data: Vec<u8>,
}

/// Upper bound for one buffered line; an upstream that never sends a newline must not
/// make us buffer without limit.
pub const MAX_LINE_BYTES: usize = 16 * 1024 * 1024;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SseError {
    #[error("SSE line longer than {MAX_LINE_BYTES} bytes")]
    LineTooLong,
}

#[derive(Debug, Default)]
pub struct SseDecoder {
    buf: BytesMut,
    /// A `\r` ended the previous line; skip a `\n` that follows it.
    pending_cr: bool,
    event: Option<String>,
    data: Vec<u8>,
    has_data: bool,
}

impl SseDecoder {
    pub fn new() -> Self {
        Self::default()
    }

    /// Feed bytes; complete events are appended to `out`.
    pub fn feed(&mut self, chunk: &[u8], out: &mut Vec<SseEvent>) -> Result<(), SseError> {
        self.buf.extend_from_slice(chunk);
        loop {
            if self.pending_cr && !self.buf.is_empty() {
                if self.buf[0] == b'\n' {
                    self.buf.advance(1);
                }
                self.pending_cr = false;
            }
            let Some(pos) = memchr::memchr2(b'\n', b'\r', &self.buf) else {
                if self.buf.len() > MAX_LINE_BYTES {
                    return Err(SseError::LineTooLong);
                }
                return Ok(());
            };
            let line = self.buf.split_to(pos);
            let terminator = self.buf[0];
            self.buf.advance(1);
            if terminator == b'\r' {
                self.pending_cr = true;
            }
            self.process_line(&line, out);
        }
    }

    /// The stream ended: a final event without its blank line is dispatched too (some
    /// upstreams close right after the last `data:` line).
    pub fn finish(&mut self, out: &mut Vec<SseEvent>) {
        if !self.buf.is_empty() {
            let line = std::mem::take(&mut self.buf);
            self.process_line(&line, out);
        }
        self.dispatch(out);
    }

    fn process_line(&mut self, line: &[u8], out: &mut Vec<SseEvent>) {
        if line.is_empty() {
            self.dispatch(out);
            return;
        }
        if line[0] == b':' {
            return; // comment / keep-alive
        }
        let (field, value) = match memchr::memchr(b':', line) {
            Some(i) => {
                let v = &line[i + 1..];
                (&line[..i], v.strip_prefix(b" ").unwrap_or(v))
            }
            None => (line, &b""[..]),
        };
        match field {
            b"data" => {
                if self.has_data {
                    self.data.push(b'\n');
                }
                self.data.extend_from_slice(value);
                self.has_data = true;
            }
            b"event" => self.event = Some(String::from_utf8_lossy(value).into_owned()),
            _ => {} // id, retry and unknown fields are not used by LLM streams
        }
    }

    fn dispatch(&mut self, out: &mut Vec<SseEvent>) {
        if self.has_data {
            out.push(SseEvent {
                event: self.event.take(),
                data: std::mem::take(&mut self.data),
            });
        }
        self.event = None;
        self.has_data = false;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn decode_all(chunks: &[&[u8]]) -> Vec<SseEvent> {
        let mut d = SseDecoder::new();
        let mut out = Vec::new();
        for c in chunks {
            d.feed(c, &mut out).unwrap();
        }
        d.finish(&mut out);
        out
    }

    #[test]
    fn basic_events_and_comments() {
        let ev = decode_all(&[b": OPENROUTER PROCESSING\n\ndata: {\"a\":1}\n\nevent: ping\ndata: x\ndata: y\n\ndata: [DONE]\n\n"]);
        assert_eq!(ev.len(), 3);
        assert_eq!(ev[0].data, b"{\"a\":1}");
        assert_eq!(ev[1].event.as_deref(), Some("ping"));
        assert_eq!(ev[1].data, b"x\ny");
        assert_eq!(ev[2].data, b"[DONE]");
    }

    #[test]
    fn crlf_and_cr_line_endings() {
        let ev = decode_all(&[b"data: a\r\n\r\ndata: b\r\rdata:c\n\n"]);
        let datas: Vec<_> = ev.iter().map(|e| e.data.clone()).collect();
        assert_eq!(datas, vec![b"a".to_vec(), b"b".to_vec(), b"c".to_vec()]);
    }

    #[test]
    fn trailing_event_without_blank_line() {
        let ev = decode_all(&[b"data: last"]);
        assert_eq!(ev.len(), 1);
        assert_eq!(ev[0].data, b"last");
    }

    proptest! {
        /// Splitting the input anywhere yields the same events as feeding it whole.
        #[test]
        fn split_anywhere(cuts in proptest::collection::vec(0usize..200, 0..12)) {
            let input: &[u8] = b"data: {\"id\":\"x\",\"t\":\"h\\u00e9llo\"}\r\n\r\n: keepalive\n\nevent: e\ndata: 1\ndata: 2\n\ndata: [DONE]\n\n";
            let whole = decode_all(&[input]);
            let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c % (input.len() + 1)).collect();
            cuts.sort_unstable();
            let mut pieces = Vec::new();
            let mut last = 0;
            for c in cuts { pieces.push(&input[last..c]); last = c; }
            pieces.push(&input[last..]);
            prop_assert_eq!(decode_all(&pieces), whole);
        }

        /// Arbitrary bytes never panic.
        #[test]
        fn never_panics(data in proptest::collection::vec(any::<u8>(), 0..512)) {
            let mut d = SseDecoder::new();
            let mut out = Vec::new();
            let _ = d.feed(&data, &mut out);
            d.finish(&mut out);
        }
    }
}
