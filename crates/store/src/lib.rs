//! Keys and the generation ledger behind one [`Store`] trait, with two real backends through
//! the same SQL: SQLite (the embedded single-node default, WAL mode) and PostgreSQL (shared
//! by any number of gateway nodes).
//!
//! Money is exact: costs and limits are stored as integer **picodollars** (10⁻¹² USD) and
//! exposed as [`Decimal`] USD; every list price we know has at most 12 decimal places, and
//! anything finer is rounded half-up at 10⁻¹² (see [`to_pico`]).
//! Keys are stored only as the SHA-256 of the plaintext; the plaintext is shown once.
#![forbid(unsafe_code)]

mod shared;
mod sql;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

pub use rust_decimal::Decimal;
use sha2::{Digest, Sha256};

pub use shared::{RateMode, Reserved, Shared};
pub use sql::{SqlStore, window_starts};

/// Errors from the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("invalid storage url {0:?}: expected sqlite://PATH, sqlite::memory: or postgres://…")]
    Url(String),
    #[error("database error: {0}")]
    Db(#[from] sqlx::Error),
    #[error("redis error: {0}")]
    Redis(#[from] redis::RedisError),
    #[error("{0}")]
    Invalid(String),
}

pub type StoreFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, StoreError>> + Send + 'a>>;

/// How often a key's limit resets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LimitReset {
    Daily,
    Weekly,
    Monthly,
}

impl LimitReset {
    /// Start (unix seconds) of the window containing `now`: UTC day, ISO week from Monday,
    /// or calendar month.
    pub fn window_start(self, now: i64) -> i64 {
        let (day, week, month) = window_starts(now);
        match self {
            LimitReset::Daily => day,
            LimitReset::Weekly => week,
            LimitReset::Monthly => month,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            LimitReset::Daily => "daily",
            LimitReset::Weekly => "weekly",
            LimitReset::Monthly => "monthly",
        }
    }
    pub fn parse(s: &str) -> Option<LimitReset> {
        match s {
            "daily" => Some(LimitReset::Daily),
            "weekly" => Some(LimitReset::Weekly),
            "monthly" => Some(LimitReset::Monthly),
            _ => None,
        }
    }
}

/// An API key as stored (never the plaintext).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyRecord {
    /// Hex SHA-256 of the plaintext; the key's id in the API.
    pub hash: String,
    pub name: String,
    /// Display form: the first characters and the last three, e.g. `sk-sy-v1-3f2…a91`.
    pub label: String,
    /// USD; `None` = unlimited.
    pub limit: Option<Decimal>,
    pub limit_reset: Option<LimitReset>,
    pub disabled: bool,
    /// Unix seconds.
    pub created_at: i64,
    pub updated_at: Option<i64>,
    pub rate_limit_rpm: Option<u32>,
    pub rate_limit_tpm: Option<u64>,
}

/// Fields of a new key.
#[derive(Debug, Clone, Default)]
pub struct NewKey {
    pub name: String,
    pub limit: Option<Decimal>,
    pub limit_reset: Option<LimitReset>,
    pub rate_limit_rpm: Option<u32>,
    pub rate_limit_tpm: Option<u64>,
}

/// A partial update; `None` leaves a field as it is.
#[derive(Debug, Clone, Default)]
pub struct KeyPatch {
    pub name: Option<String>,
    pub limit: Option<Option<Decimal>>,
    pub limit_reset: Option<Option<LimitReset>>,
    pub disabled: Option<bool>,
    pub rate_limit_rpm: Option<Option<u32>>,
    pub rate_limit_tpm: Option<Option<u64>>,
}

/// One generation that reached a provider (OpenRouter's `/generation` fields).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GenerationRecord {
    pub id: String,
    pub key_hash: Option<String>,
    pub model: String,
    pub provider_name: String,
    pub provider_slug: String,
    pub upstream_model: String,
    pub endpoint: String,
    pub streamed: bool,
    pub cancelled: bool,
    pub status: u16,
    pub finish_reason: Option<String>,
    pub native_finish_reason: Option<String>,
    pub tokens_prompt: u64,
    pub tokens_completion: u64,
    pub native_tokens_cached: u64,
    pub native_tokens_reasoning: u64,
    pub usage_estimated: bool,
    /// USD.
    pub total_cost: Decimal,
    /// Time to first byte, ms.
    pub latency_ms: u64,
    /// Whole generation, ms.
    pub generation_time_ms: u64,
    /// Unix seconds.
    pub created_at: i64,
}

/// A key's spend over the standard windows (UTC day, ISO week from Monday, calendar month).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct KeyUsage {
    pub total: Decimal,
    pub daily: Decimal,
    pub weekly: Decimal,
    pub monthly: Decimal,
}

/// The storage of keys and the ledger.
pub trait Store: Send + Sync + std::fmt::Debug {
    /// `"sqlite"` or `"postgres"`.
    fn backend(&self) -> &'static str;
    /// Create a key; returns the record and the plaintext (shown once, never stored).
    fn create_key(&self, new: NewKey) -> StoreFuture<'_, (KeyRecord, String)>;
    fn get_key<'a>(&'a self, hash: &'a str) -> StoreFuture<'a, Option<KeyRecord>>;
    /// Newest first.
    fn list_keys(
        &self,
        offset: u64,
        limit: u64,
        include_disabled: bool,
    ) -> StoreFuture<'_, Vec<KeyRecord>>;
    fn update_key<'a>(
        &'a self,
        hash: &'a str,
        patch: KeyPatch,
    ) -> StoreFuture<'a, Option<KeyRecord>>;
    fn delete_key<'a>(&'a self, hash: &'a str) -> StoreFuture<'a, bool>;
    /// One transaction; records already present (same id) are left as they are.
    fn insert_generations<'a>(&'a self, records: &'a [GenerationRecord]) -> StoreFuture<'a, ()>;
    fn get_generation<'a>(&'a self, id: &'a str) -> StoreFuture<'a, Option<GenerationRecord>>;
    /// Spend of a key, relative to `now` (unix seconds).
    fn key_usage<'a>(&'a self, hash: &'a str, now: i64) -> StoreFuture<'a, KeyUsage>;
    /// Spend of a key since a time (unix seconds).
    fn key_usage_since<'a>(&'a self, hash: &'a str, since: i64) -> StoreFuture<'a, Decimal>;
    /// Spend of every generation (an account-wide credit pool).
    fn total_usage(&self) -> StoreFuture<'_, Decimal>;
}

/// Open (and migrate) the store at `url`: `sqlite://PATH`, `sqlite::memory:` or `postgres://…`.
pub async fn open(url: &str) -> Result<Arc<dyn Store>, StoreError> {
    Ok(Arc::new(SqlStore::open(url).await?))
}

const PICO: i64 = 1_000_000_000_000;

/// USD → picodollars, rounding half-up at 10⁻¹² (documented; exact for list prices).
pub fn to_pico(usd: Decimal) -> Result<i64, StoreError> {
    let scaled = (usd * Decimal::from(PICO))
        .round_dp_with_strategy(0, rust_decimal::RoundingStrategy::MidpointAwayFromZero);
    i64::try_from(scaled)
        .map_err(|_| StoreError::Invalid(format!("amount {usd} USD is out of range")))
}

/// Picodollars → USD.
pub fn from_pico(pico: i64) -> Decimal {
    (Decimal::from(pico) / Decimal::from(PICO)).normalize()
}

/// Hex SHA-256 of a plaintext key. Keys are 256-bit random, so a fast hash is right (no KDF).
pub fn hash_key(plaintext: &str) -> String {
    Sha256::digest(plaintext.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A new key: `sk-sy-v1-` followed by 64 hex characters (256 random bits), and its hash.
pub fn generate_key() -> (String, String) {
    let mut bytes = [0u8; 32];
    // fastrand is not a CSPRNG; mix in OS-seeded std hashing randomness per byte block.
    fill_random(&mut bytes);
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    let key = format!("sk-sy-v1-{hex}");
    let hash = hash_key(&key);
    (key, hash)
}

/// 256 bits from the OS (via `/dev/urandom`); falls back to hashing process-random state
/// only if that device is unavailable.
fn fill_random(out: &mut [u8; 32]) {
    use std::io::Read;
    if let Ok(mut f) = std::fs::File::open("/dev/urandom")
        && f.read_exact(out).is_ok()
    {
        return;
    }
    let mut h = Sha256::new();
    for _ in 0..8 {
        let s = std::collections::hash_map::RandomState::new();
        let v = std::hash::BuildHasher::hash_one(&s, fastrand::u64(..));
        h.update(v.to_le_bytes());
    }
    h.update(format!("{:?}", std::time::SystemTime::now()).as_bytes());
    out.copy_from_slice(&h.finalize());
}

/// The label shown for a key: its first 12 characters, "...", its last 3.
pub fn key_label(plaintext: &str) -> String {
    let n = plaintext.len();
    if n <= 15 {
        return plaintext.to_string();
    }
    format!("{}...{}", &plaintext[..12], &plaintext[n - 3..])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn money_round_trip() {
        let d: Decimal = "0.000000225".parse().unwrap();
        assert_eq!(to_pico(d).unwrap(), 225_000);
        assert_eq!(from_pico(225_000), d);
        let tiny: Decimal = "0.0000000000005".parse().unwrap();
        assert_eq!(to_pico(tiny).unwrap(), 1, "half-up at 1e-12");
    }

    #[test]
    fn limit_windows() {
        let now = 1_795_521_600; // Tuesday 2026-11-24 12:00 UTC
        assert_eq!(LimitReset::Daily.window_start(now), 1_795_478_400);
        assert_eq!(LimitReset::Weekly.window_start(now), 1_795_392_000);
        assert_eq!(LimitReset::Monthly.window_start(now), 1_793_491_200);
    }

    #[test]
    fn keys_are_random_and_hashed() {
        let (a, ha) = generate_key();
        let (b, hb) = generate_key();
        assert_ne!(a, b);
        assert!(a.starts_with("sk-sy-v1-") && a.len() == 9 + 64);
        assert_eq!(hash_key(&a), ha);
        assert_ne!(ha, hb);
        assert_eq!(key_label(&a).len(), 18);
    }
}
