//! Sticky routing for prompt caching: the same conversation keeps going to the provider
//! that served it, so provider-side prompt caches (and reasoning signatures) keep working.
//! Entries expire a while after the last success and are dropped when that provider fails.

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// OpenRouter keeps a conversation on its provider for 10 minutes after the last success.
pub const STICKY_TTL: Duration = Duration::from_secs(600);

/// Bound on remembered conversations; the oldest half is evicted when it is reached.
const MAX_ENTRIES: usize = 100_000;

/// The conversation a request belongs to: `session_id`, `x-session-id`, `prompt_cache_key`,
/// or a hash of the first system message and the first other message.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ConversationKey {
    pub model: String,
    /// Who is calling (so two API keys never share stickiness).
    pub principal: String,
    pub conversation: u64,
    /// The client named the session explicitly (stickiness applies even before a cache hit).
    pub explicit: bool,
}

/// Hash an explicit session identifier or the opening messages into a conversation id.
pub fn conversation_id(parts: &[&str]) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    for p in parts {
        p.hash(&mut h);
    }
    h.finish()
}

#[derive(Debug, Clone)]
struct Entry {
    provider: String,
    upstream_model: String,
    expires: Instant,
}

/// Conversation → endpoint, shared by the workers of a node.
#[derive(Debug, Default)]
pub struct StickyTable {
    map: Mutex<HashMap<ConversationKey, Entry>>,
}

impl StickyTable {
    /// The endpoint (provider slug, provider model) this conversation sticks to, if any.
    pub fn get(&self, key: &ConversationKey, now: Instant) -> Option<(String, String)> {
        let map = self
            .map
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        map.get(key)
            .filter(|e| e.expires > now)
            .map(|e| (e.provider.clone(), e.upstream_model.clone()))
    }

    /// A request of this conversation succeeded on (provider, model).
    pub fn record_success(&self, key: ConversationKey, provider: &str, model: &str, now: Instant) {
        let mut map = self
            .map
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if map.len() >= MAX_ENTRIES {
            map.retain(|_, e| e.expires > now);
            if map.len() >= MAX_ENTRIES {
                let mut by_age: Vec<_> = map.iter().map(|(k, e)| (e.expires, k.clone())).collect();
                by_age.sort_by_key(|(t, _)| *t);
                for (_, k) in by_age.into_iter().take(MAX_ENTRIES / 2) {
                    map.remove(&k);
                }
            }
        }
        map.insert(
            key,
            Entry {
                provider: provider.to_string(),
                upstream_model: model.to_string(),
                expires: now + STICKY_TTL,
            },
        );
    }

    /// The sticky provider failed: forget the binding.
    pub fn clear(&self, key: &ConversationKey) {
        let mut map = self
            .map
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        map.remove(key);
    }

    pub fn len(&self) -> usize {
        self.map
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(c: u64) -> ConversationKey {
        ConversationKey {
            model: "m".into(),
            principal: "p".into(),
            conversation: c,
            explicit: false,
        }
    }

    #[test]
    fn sticks_expires_and_clears() {
        let t = StickyTable::default();
        let now = Instant::now();
        assert_eq!(t.get(&key(1), now), None);
        t.record_success(key(1), "groq", "llama", now);
        assert_eq!(
            t.get(&key(1), now + Duration::from_secs(599)),
            Some(("groq".into(), "llama".into()))
        );
        assert_eq!(t.get(&key(1), now + Duration::from_secs(601)), None);
        assert_eq!(t.get(&key(2), now), None);
        t.clear(&key(1));
        assert_eq!(t.get(&key(1), now), None);
    }

    #[test]
    fn conversation_ids_differ_by_content() {
        assert_eq!(
            conversation_id(&["sys", "hi"]),
            conversation_id(&["sys", "hi"])
        );
        assert_ne!(
            conversation_id(&["sys", "hi"]),
            conversation_id(&["sys", "hello"])
        );
        assert_ne!(conversation_id(&["ab", "c"]), conversation_id(&["a", "bc"]));
    }
}
