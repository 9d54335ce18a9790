//! AWS event-stream binary framing (`application/vnd.amazon.eventstream`), incremental:
//! frames may be split across reads or several may arrive in one. Both CRCs are checked.
//!
//! Frame: total length (u32 BE) · headers length (u32 BE) · prelude CRC32 · headers ·
//! payload · message CRC32 (over everything before it).

/// Header value, as far as Bedrock uses them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HeaderValue {
    Bool(bool),
    Int(i64),
    Bytes(Vec<u8>),
    String(String),
    Timestamp(i64),
    Uuid([u8; 16]),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    pub headers: Vec<(String, HeaderValue)>,
    pub payload: Vec<u8>,
}

impl Frame {
    /// A string header (e.g. `:event-type`).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .and_then(|(_, v)| match v {
                HeaderValue::String(s) => Some(s.as_str()),
                _ => None,
            })
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    #[error("event-stream frame length {0} is invalid")]
    Length(u32),
    #[error("event-stream prelude checksum mismatch")]
    PreludeCrc,
    #[error("event-stream message checksum mismatch")]
    MessageCrc,
    #[error("event-stream header is malformed")]
    Header,
}

/// Largest frame accepted (botocore caps payloads at 24 MiB and headers at 128 KiB).
const MAX_FRAME: u32 = 24 * 1024 * 1024 + 128 * 1024 + 16;

fn crc_table() -> [u32; 256] {
    let mut table = [0u32; 256];
    for (i, slot) in table.iter_mut().enumerate() {
        let mut c = i as u32;
        for _ in 0..8 {
            c = if c & 1 != 0 {
                0xEDB8_8320 ^ (c >> 1)
            } else {
                c >> 1
            };
        }
        *slot = c;
    }
    table
}

/// CRC-32 (IEEE 802.3), as the event-stream format uses.
pub fn crc32(data: &[u8]) -> u32 {
    static TABLE: std::sync::OnceLock<[u32; 256]> = std::sync::OnceLock::new();
    let table = TABLE.get_or_init(crc_table);
    let mut c = 0xFFFF_FFFFu32;
    for &b in data {
        c = table[((c ^ u32::from(b)) & 0xFF) as usize] ^ (c >> 8);
    }
    c ^ 0xFFFF_FFFF
}

fn be32(b: &[u8]) -> u32 {
    u32::from_be_bytes([b[0], b[1], b[2], b[3]])
}

fn parse_headers(mut h: &[u8]) -> Result<Vec<(String, HeaderValue)>, FrameError> {
    let mut out = Vec::new();
    let take = |h: &mut &[u8], n: usize| -> Result<Vec<u8>, FrameError> {
        if h.len() < n {
            return Err(FrameError::Header);
        }
        let (a, b) = h.split_at(n);
        *h = b;
        Ok(a.to_vec())
    };
    while !h.is_empty() {
        let name_len = take(&mut h, 1)?[0] as usize;
        let name = String::from_utf8(take(&mut h, name_len)?).map_err(|_| FrameError::Header)?;
        let kind = take(&mut h, 1)?[0];
        let value = match kind {
            0 => HeaderValue::Bool(true),
            1 => HeaderValue::Bool(false),
            2 => HeaderValue::Int(i64::from(take(&mut h, 1)?[0] as i8)),
            3 => {
                let b = take(&mut h, 2)?;
                HeaderValue::Int(i64::from(i16::from_be_bytes([b[0], b[1]])))
            }
            4 => {
                let b = take(&mut h, 4)?;
                HeaderValue::Int(i64::from(i32::from_be_bytes([b[0], b[1], b[2], b[3]])))
            }
            5 | 8 => {
                let b = take(&mut h, 8)?;
                let mut a = [0u8; 8];
                a.copy_from_slice(&b);
                let n = i64::from_be_bytes(a);
                if kind == 5 {
                    HeaderValue::Int(n)
                } else {
                    HeaderValue::Timestamp(n)
                }
            }
            6 | 7 => {
                let l = take(&mut h, 2)?;
                let len = u16::from_be_bytes([l[0], l[1]]) as usize;
                let v = take(&mut h, len)?;
                if kind == 6 {
                    HeaderValue::Bytes(v)
                } else {
                    HeaderValue::String(String::from_utf8(v).map_err(|_| FrameError::Header)?)
                }
            }
            9 => {
                let b = take(&mut h, 16)?;
                let mut a = [0u8; 16];
                a.copy_from_slice(&b);
                HeaderValue::Uuid(a)
            }
            _ => return Err(FrameError::Header),
        };
        out.push((name, value));
    }
    Ok(out)
}

/// Incremental frame decoder.
#[derive(Debug, Default)]
pub struct FrameDecoder {
    buf: Vec<u8>,
}

impl FrameDecoder {
    pub fn new() -> Self {
        Self::default()
    }

    /// Feed bytes; complete frames are appended to `out`.
    pub fn feed(&mut self, bytes: &[u8], out: &mut Vec<Frame>) -> Result<(), FrameError> {
        self.buf.extend_from_slice(bytes);
        loop {
            if self.buf.len() < 12 {
                return Ok(());
            }
            let total = be32(&self.buf[0..4]);
            let headers_len = be32(&self.buf[4..8]);
            if !(16..=MAX_FRAME).contains(&total) || headers_len > total - 16 {
                return Err(FrameError::Length(total));
            }
            if crc32(&self.buf[0..8]) != be32(&self.buf[8..12]) {
                return Err(FrameError::PreludeCrc);
            }
            let total = total as usize;
            if self.buf.len() < total {
                return Ok(());
            }
            if crc32(&self.buf[..total - 4]) != be32(&self.buf[total - 4..total]) {
                return Err(FrameError::MessageCrc);
            }
            let h_end = 12 + headers_len as usize;
            let headers = parse_headers(&self.buf[12..h_end])?;
            let payload = self.buf[h_end..total - 4].to_vec();
            self.buf.drain(..total);
            out.push(Frame { headers, payload });
        }
    }

    /// Bytes of an incomplete frame left at the end of the stream.
    pub fn pending(&self) -> usize {
        self.buf.len()
    }
}

/// Encode a frame with string headers (for tests and the mock provider).
pub fn encode_frame(headers: &[(&str, &str)], payload: &[u8]) -> Vec<u8> {
    let mut h = Vec::new();
    for (k, v) in headers {
        h.push(k.len() as u8);
        h.extend_from_slice(k.as_bytes());
        h.push(7);
        h.extend_from_slice(&(v.len() as u16).to_be_bytes());
        h.extend_from_slice(v.as_bytes());
    }
    let total = (16 + h.len() + payload.len()) as u32;
    let mut out = Vec::with_capacity(total as usize);
    out.extend_from_slice(&total.to_be_bytes());
    out.extend_from_slice(&(h.len() as u32).to_be_bytes());
    let prelude_crc = crc32(&out);
    out.extend_from_slice(&prelude_crc.to_be_bytes());
    out.extend_from_slice(&h);
    out.extend_from_slice(payload);
    let crc = crc32(&out);
    out.extend_from_slice(&crc.to_be_bytes());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc32_check_value() {
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
    }

    #[test]
    fn round_trip_split_anywhere() {
        let mut stream = encode_frame(
            &[(":event-type", "messageStart"), (":message-type", "event")],
            br#"{"role":"assistant"}"#,
        );
        stream.extend(encode_frame(
            &[(":event-type", "messageStop")],
            br#"{"stopReason":"end_turn"}"#,
        ));
        for size in [1, 2, 5, 13, 1000] {
            let mut d = FrameDecoder::new();
            let mut frames = Vec::new();
            for piece in stream.chunks(size) {
                d.feed(piece, &mut frames).unwrap();
            }
            assert_eq!(frames.len(), 2, "split {size}");
            assert_eq!(frames[0].header(":event-type"), Some("messageStart"));
            assert_eq!(frames[1].payload, br#"{"stopReason":"end_turn"}"#);
            assert_eq!(d.pending(), 0);
        }
    }

    #[test]
    fn corrupt_frames_are_errors() {
        let mut f = encode_frame(&[(":event-type", "x")], b"{}");
        let last = f.len() - 1;
        f[last] ^= 1;
        assert_eq!(
            FrameDecoder::new().feed(&f, &mut Vec::new()),
            Err(FrameError::MessageCrc)
        );
        let mut f = encode_frame(&[], b"{}");
        f[9] ^= 1;
        assert_eq!(
            FrameDecoder::new().feed(&f, &mut Vec::new()),
            Err(FrameError::PreludeCrc)
        );
    }

    proptest::proptest! {
        #[test]
        fn never_panics(data in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..256)) {
            let _ = FrameDecoder::new().feed(&data, &mut Vec::new());
        }
    }
}
