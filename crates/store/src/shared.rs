//! State shared by every gateway node through Redis (`storage.redis_url`): budget
//! reservations, per-key rate limits, the account-wide credit counter, and key-cache
//! invalidation. Without Redis each node keeps these in memory (single-node mode).
//!
//! Every read-check-write is one Lua script, so it is atomic across nodes:
//! - a budget counter per key and limit window holds `spent + outstanding reservations`
//!   in picodollars; [`Shared::reserve`] takes an amount only while the result stays within
//!   the limit, settles and releases add a (possibly negative) delta. A counter that is
//!   missing (first use, Redis restarted, idle past its TTL) is seeded from the ledger's
//!   spend, which the caller passes in.
//! - rate limits are GCRA with Redis' own clock (`TIME`), so node clocks do not matter.
//!
//! Amounts go through Lua numbers (doubles): exact up to 2⁵³ picodollars (about $9,007 of
//! spend per key and window); above that the comparison may be off by a picodollar or two.

use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{AsyncCommands, Script};

use crate::StoreError;

/// How long an idle counter lives before it is re-seeded from the ledger.
const COUNTER_TTL_SECS: u64 = 2 * 24 * 3600;

/// The channel on which key changes (PATCH, DELETE) are announced to every node.
const INVALIDATE_CHANNEL: &str = "switchyard:keys:invalidate";

/// Reserve `ARGV[1]` against limit `ARGV[2]`; seed a missing counter with `ARGV[3]`.
/// Returns `{1, used_after}` when taken, `{0, used}` when it does not fit.
const RESERVE: &str = r"
local used = redis.call('GET', KEYS[1])
if used then
  used = tonumber(used)
else
  used = tonumber(ARGV[3])
  redis.call('SET', KEYS[1], ARGV[3], 'EX', ARGV[4])
end
local amount = tonumber(ARGV[1])
if used + amount > tonumber(ARGV[2]) then
  return {0, used}
end
local after = redis.call('INCRBY', KEYS[1], ARGV[1])
redis.call('EXPIRE', KEYS[1], ARGV[4])
return {1, after}
";

/// Add `ARGV[1]` (may be negative) to an existing counter; a missing one is left missing
/// (it will be seeded from the ledger, which already has the settled cost).
const ADJUST: &str = r"
if redis.call('EXISTS', KEYS[1]) == 1 then
  local v = redis.call('INCRBY', KEYS[1], ARGV[1])
  redis.call('EXPIRE', KEYS[1], ARGV[2])
  return v
end
return false
";

/// GCRA on a theoretical-arrival-time key, in µs of Redis' clock.
/// ARGV: interval_us, tolerance_us, weight, mode ('take' | 'check' | 'debit').
/// Returns 0 when admitted, otherwise the µs until it would be.
const GCRA: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval = tonumber(ARGV[1])
local tolerance = tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
if tat < now then tat = now end
if ARGV[4] ~= 'debit' and tat - now > tolerance then
  return tat - now - tolerance
end
if ARGV[4] ~= 'check' then
  local new = tat + interval * tonumber(ARGV[3])
  redis.call('SET', KEYS[1], string.format('%d', new), 'PX', math.floor((new - now) / 1000) + 1000)
end
return 0
";

/// A connection to the shared Redis, cheap to clone (one multiplexed, auto-reconnecting
/// connection underneath).
#[derive(Clone)]
pub struct Shared {
    client: redis::Client,
    conn: ConnectionManager,
    reserve: std::sync::Arc<Script>,
    adjust: std::sync::Arc<Script>,
    gcra: std::sync::Arc<Script>,
    prefix: String,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The URL may carry a password: never print it.
        f.debug_struct("Shared")
            .field("prefix", &self.prefix)
            .finish()
    }
}

/// The outcome of a reservation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reserved {
    /// Taken; the counter now holds this much.
    Taken(i64),
    /// Does not fit; the counter holds this much.
    Refused(i64),
}

impl Shared {
    /// Connect (and check the connection with a PING). Commands time out after 2 s so a
    /// stuck Redis fails requests clearly instead of hanging them.
    pub async fn connect(url: &str) -> Result<Shared, StoreError> {
        Self::connect_with_prefix(url, "switchyard").await
    }

    /// Like [`Shared::connect`] with the key prefix set (tests use one of their own).
    pub async fn connect_with_prefix(url: &str, prefix: &str) -> Result<Shared, StoreError> {
        let client =
            redis::Client::open(url).map_err(|e| StoreError::Invalid(format!("redis url: {e}")))?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(Duration::from_secs(2)))
            .set_response_timeout(Some(Duration::from_secs(2)))
            .set_number_of_retries(2)
            .set_max_delay(Duration::from_millis(500));
        let mut conn = ConnectionManager::new_with_config(client.clone(), config).await?;
        let _: String = redis::cmd("PING").query_async(&mut conn).await?;
        Ok(Shared {
            client,
            conn,
            reserve: std::sync::Arc::new(Script::new(RESERVE)),
            adjust: std::sync::Arc::new(Script::new(ADJUST)),
            gcra: std::sync::Arc::new(Script::new(GCRA)),
            prefix: prefix.to_string(),
        })
    }

    /// The budget counter of a key (by hash) for the limit window starting at `window_start`.
    pub fn budget_counter(&self, key_hash: &str, window_start: i64) -> String {
        format!("{}:budget:{key_hash}:{window_start}", self.prefix)
    }

    fn rate_key(&self, key_hash: &str, what: &str) -> String {
        format!("{}:rate:{key_hash}:{what}", self.prefix)
    }

    /// Take `amount` picodollars on `counter` if the result stays within `limit`.
    pub async fn reserve(
        &self,
        counter: &str,
        amount: i64,
        limit: i64,
        seed: i64,
    ) -> Result<Reserved, StoreError> {
        let mut conn = self.conn.clone();
        let (ok, used): (i64, i64) = self
            .reserve
            .key(counter)
            .arg(amount)
            .arg(limit)
            .arg(seed)
            .arg(COUNTER_TTL_SECS)
            .invoke_async(&mut conn)
            .await?;
        Ok(if ok == 1 {
            Reserved::Taken(used)
        } else {
            Reserved::Refused(used)
        })
    }

    /// Add `delta` picodollars to a counter (settle: real cost minus reservation; release:
    /// minus the reservation). Returns the new value, or None when the counter is missing.
    pub async fn adjust(&self, counter: &str, delta: i64) -> Result<Option<i64>, StoreError> {
        let mut conn = self.conn.clone();
        Ok(self
            .adjust
            .key(counter)
            .arg(delta)
            .arg(COUNTER_TTL_SECS)
            .invoke_async(&mut conn)
            .await?)
    }

    /// Add to a plain counter, seeding it first when missing (the account-wide spend).
    pub async fn add_seeded(&self, name: &str, delta: i64, seed: i64) -> Result<i64, StoreError> {
        let key = format!("{}:{name}", self.prefix);
        let mut conn = self.conn.clone();
        let _: bool = conn.set_nx(&key, seed).await?;
        Ok(conn.incr(&key, delta).await?)
    }

    /// GCRA admission for `key_hash`'s `what` limit (`"rpm"`, `"tpm"`): `per_minute` with a
    /// burst of a minute's worth. `Ok(0)` admitted, `Ok(µs)` the wait until it would be.
    pub async fn rate(
        &self,
        key_hash: &str,
        what: &str,
        per_minute: u64,
        weight: u64,
        mode: RateMode,
    ) -> Result<u64, StoreError> {
        const MINUTE_US: i64 = 60_000_000;
        let interval = MINUTE_US / per_minute.max(1) as i64;
        let mut conn = self.conn.clone();
        let wait: i64 = self
            .gcra
            .key(self.rate_key(key_hash, what))
            .arg(interval)
            .arg(MINUTE_US - interval)
            .arg(weight.max(1))
            .arg(mode.as_str())
            .invoke_async(&mut conn)
            .await?;
        Ok(wait.max(0) as u64)
    }

    /// Tell every node that a key changed (it drops the key from its cache).
    pub async fn announce_key_change(&self, key_hash: &str) -> Result<(), StoreError> {
        let mut conn = self.conn.clone();
        let _: i64 = conn.publish(INVALIDATE_CHANNEL, key_hash).await?;
        Ok(())
    }

    /// Follow key-change announcements for ever: `on_change(Some(hash))` for each, and
    /// `on_change(None)` whenever the subscription (re)starts, since announcements may have
    /// been missed while it was down (the caller then drops its whole cache).
    pub async fn follow_key_changes(&self, on_change: impl Fn(Option<String>) + Send) {
        use futures::StreamExt;
        let mut backoff = Duration::from_millis(100);
        loop {
            match self.client.get_async_pubsub().await {
                Ok(mut pubsub) => match pubsub.subscribe(INVALIDATE_CHANNEL).await {
                    Ok(()) => {
                        backoff = Duration::from_millis(100);
                        on_change(None);
                        let mut messages = pubsub.on_message();
                        while let Some(msg) = messages.next().await {
                            if let Ok(hash) = msg.get_payload::<String>() {
                                on_change(Some(hash));
                            }
                        }
                        tracing::warn!("redis key-change subscription ended; resubscribing");
                    }
                    Err(e) => tracing::warn!(error = %e, "redis subscribe failed"),
                },
                Err(e) => tracing::warn!(error = %e, "redis pubsub connection failed"),
            }
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(Duration::from_secs(5));
        }
    }
}

/// What a rate-limit call does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RateMode {
    /// Admit and take `weight` (requests per minute).
    Take,
    /// Admit only if the bucket is not in debt; take nothing (tokens, before the answer).
    Check,
    /// Take `weight` unconditionally (tokens, after the answer).
    Debit,
}

impl RateMode {
    fn as_str(self) -> &'static str {
        match self {
            RateMode::Take => "take",
            RateMode::Check => "check",
            RateMode::Debit => "debit",
        }
    }
}
