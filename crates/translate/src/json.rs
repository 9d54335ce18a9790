//! Small JSON helpers for the passthrough fast path: read an object's top-level members
//! as borrowed raw values (one scan, no tree), and write JSON fragments by hand.

use std::borrow::Cow;
use std::fmt;

use serde::de::{Deserializer, MapAccess, Visitor};
use serde_json::value::RawValue;

/// The top-level members of a JSON object, in order, values left unparsed.
#[derive(Debug, Default)]
pub struct RawObject<'a> {
    pub members: Vec<(Cow<'a, str>, &'a RawValue)>,
}

impl<'a> RawObject<'a> {
    pub fn get(&self, key: &str) -> Option<&'a RawValue> {
        self.members
            .iter()
            .find(|(k, _)| k.as_ref() == key)
            .map(|(_, v)| *v)
    }
}

impl<'de: 'a, 'a> serde::Deserialize<'de> for RawObject<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for V<'a> {
            type Value = RawObject<'a>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<M: MapAccess<'de>>(self, mut map: M) -> Result<Self::Value, M::Error> {
                let mut members = Vec::with_capacity(map.size_hint().unwrap_or(8));
                while let Some(k) = map.next_key::<Cow<'de, str>>()? {
                    let v: &'de RawValue = map.next_value()?;
                    members.push((k, v));
                }
                Ok(RawObject { members })
            }
        }
        d.deserialize_map(V(std::marker::PhantomData))
    }
}

/// Append `s` as a JSON string literal.
pub fn push_str(out: &mut Vec<u8>, s: &str) {
    // Writing to a Vec cannot fail; serde_json only errors on IO or non-string keys.
    let _ = serde_json::to_writer(&mut *out, s);
}

/// Append `"key":` (key must not need escaping — all our keys are literals).
pub fn push_key(out: &mut Vec<u8>, key: &str) {
    out.push(b'"');
    out.extend_from_slice(key.as_bytes());
    out.extend_from_slice(b"\":");
}

/// Append a member separator if the object already has members.
pub fn comma(out: &mut Vec<u8>, first: &mut bool) {
    if *first {
        *first = false;
    } else {
        out.push(b',');
    }
}

/// Append an unsigned integer.
pub fn push_u64(out: &mut Vec<u8>, n: u64) {
    let mut buf = itoa_buf(n);
    out.append(&mut buf);
}

fn itoa_buf(n: u64) -> Vec<u8> {
    n.to_string().into_bytes()
}

/// True when the raw value is JSON `null`.
pub fn is_null(v: &RawValue) -> bool {
    v.get() == "null"
}

/// Split a `data:<media type>;base64,<data>` URL into (media type, base64 data).
pub fn parse_data_url(url: &str) -> Option<(&str, &str)> {
    let rest = url.strip_prefix("data:")?;
    let (meta, data) = rest.split_once(',')?;
    Some((meta.strip_suffix(";base64")?, data))
}
