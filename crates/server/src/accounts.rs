//! API keys, budgets and the usage ledger at run time.
//!
//! - Keys are looked up by the SHA-256 of the bearer token, cached in memory (invalidated by
//!   the management API on this node) — no database round trip on the hot path.
//! - Budgets by reservation: before the upstream call the worst-case cost is reserved against
//!   the key's limit (atomically, so concurrent requests can never overspend); the real cost
//!   is settled afterwards and the rest released — also when the request fails or is dropped.
//! - The ledger: one record per generation, written in batches by one writer task; a caller
//!   can wait until its record is committed (non-streaming responses do, so a generation id a
//!   client receives is durable).
//!
//! - Multi-node (`storage.redis_url`): reservations, rate limits, the credit counter and key
//!   changes go through Redis ([`Shared`]), so every node enforces one limit; the in-memory
//!   counters are then only this node's view.
//!
//! The store runs on a small background runtime of its own: the gateway's workers are
//! single-threaded runtimes, and database connections must not be tied to one of them.

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use rust_decimal::Decimal;
use switchyard_store::{
    GenerationRecord, KeyRecord, RateMode, Reserved, Shared, Store, StoreError, from_pico,
    hash_key, to_pico,
};
use tokio::runtime::Handle;
use tokio::sync::{mpsc, oneshot};

use crate::error::ApiError;

/// How long a cached key is trusted before it is re-read from the store: the bound on how
/// long a key disabled on another node keeps working here, and when a limit window rolls over.
const KEY_TTL: Duration = Duration::from_secs(30);

/// Largest batch the ledger writer commits at once.
const MAX_BATCH: usize = 512;

/// A key as the request path sees it: its record and its live spend.
#[derive(Debug)]
pub struct KeyState {
    pub record: RwLock<KeyRecord>,
    /// Committed spend in the current limit window, picodollars.
    pub spent: AtomicI64,
    /// Outstanding reservations, picodollars.
    pub reserved: AtomicI64,
    /// `spent + reserved` as one counter: the only value admission decisions read, so a
    /// reservation is checked and taken by one compare-and-swap (two counters read apart
    /// let a settle slip between the reads — an ABA overspend).
    pub used: AtomicI64,
    /// Start of the window `spent` covers (unix seconds; 0 = all time).
    pub window_start: i64,
    /// When the record was read from the store (monotonic).
    pub loaded_at: RwLock<std::time::Instant>,
    /// GCRA theoretical arrival times (µs since `epoch`) for requests and for tokens.
    pub rpm_tat: AtomicI64,
    pub tpm_tat: AtomicI64,
    pub epoch: std::time::Instant,
    /// A background re-read of this key is in flight (one at a time per key).
    refreshing: std::sync::atomic::AtomicBool,
}

/// A minute: the window of per-key request and token rate limits.
const MINUTE_US: i64 = 60_000_000;

impl KeyState {
    fn now_us(&self) -> i64 {
        self.epoch.elapsed().as_micros().min(i64::MAX as u128) as i64
    }

    /// GCRA admission against `per_minute` with a burst of one minute's worth: on success
    /// the theoretical arrival time moves by `weight` emission intervals; on refusal, the
    /// seconds until it would be admitted.
    fn gcra(tat: &AtomicI64, per_minute: u64, weight: u64, now: i64) -> Result<(), u64> {
        let interval = MINUTE_US / per_minute.max(1) as i64;
        let tolerance = MINUTE_US - interval;
        let mut current = tat.load(Ordering::Acquire);
        loop {
            let base = current.max(now);
            if base - now > tolerance {
                let wait_us = base - now - tolerance;
                return Err((wait_us as u64).div_ceil(1_000_000));
            }
            let next = base + interval.saturating_mul(weight.max(1) as i64);
            match tat.compare_exchange(current, next, Ordering::AcqRel, Ordering::Acquire) {
                Ok(_) => return Ok(()),
                Err(actual) => current = actual,
            }
        }
    }

    /// Admit one request under the key's request and token limits (429 with Retry-After).
    pub fn admit(&self) -> Result<(), ApiError> {
        let rec = self.read();
        let now = self.now_us();
        if let Some(rpm) = rec.rate_limit_rpm {
            Self::gcra(&self.rpm_tat, u64::from(rpm), 1, now).map_err(|secs| {
                ApiError::RateLimited {
                    message: format!(
                        "Rate limit exceeded: this key allows {rpm} requests per minute"
                    ),
                    retry_after: secs,
                }
            })?;
        }
        if let Some(tpm) = rec.rate_limit_tpm {
            // Tokens are debited after the answer; admit while the bucket is not in debt.
            let interval = MINUTE_US / tpm.max(1) as i64;
            let tat = self.tpm_tat.load(Ordering::Acquire).max(now);
            if tat - now > MINUTE_US - interval {
                let secs = ((tat - now - (MINUTE_US - interval)) as u64).div_ceil(1_000_000);
                return Err(ApiError::RateLimited {
                    message: format!(
                        "Rate limit exceeded: this key allows {tpm} tokens per minute"
                    ),
                    retry_after: secs,
                });
            }
        }
        Ok(())
    }

    /// Debit the tokens a generation used from the key's token budget.
    pub fn debit_tokens(&self, tokens: u64) {
        if let Some(tpm) = self.read().rate_limit_tpm {
            let interval = MINUTE_US / tpm.max(1) as i64;
            let now = self.now_us();
            let mut current = self.tpm_tat.load(Ordering::Acquire);
            loop {
                let next = current.max(now) + interval.saturating_mul(tokens as i64);
                match self.tpm_tat.compare_exchange(
                    current,
                    next,
                    Ordering::AcqRel,
                    Ordering::Acquire,
                ) {
                    Ok(_) => break,
                    Err(actual) => current = actual,
                }
            }
        }
    }
}

impl KeyState {
    pub fn hash(&self) -> String {
        self.read().hash.clone()
    }

    pub fn read(&self) -> KeyRecord {
        self.record
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// Whether the cached record is recent enough to trust.
    fn fresh(&self) -> bool {
        self.loaded_at
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .elapsed()
            < KEY_TTL
    }

    /// Remaining budget in picodollars (None: unlimited).
    pub fn remaining_pico(&self) -> Option<i64> {
        let limit = self.read().limit?;
        let limit = to_pico(limit).unwrap_or(i64::MAX);
        Some(limit - self.used.load(Ordering::Acquire))
    }
}

/// A reservation against a key's limit; released on drop unless settled.
#[derive(Debug)]
pub struct Reservation {
    key: Arc<KeyState>,
    amount: i64,
    settled: bool,
    /// Where the reservation is also held when budgets are shared across nodes.
    shared: Option<SharedHold>,
}

/// A reservation's counter in Redis; settles and releases are sent from the store runtime
/// (fire-and-forget: a lost adjustment only over-reserves until the counter is re-seeded).
#[derive(Debug, Clone)]
struct SharedHold {
    shared: Shared,
    counter: String,
    rt: Handle,
}

impl SharedHold {
    fn adjust(&self, delta: i64) {
        if delta == 0 {
            return;
        }
        let (shared, counter) = (self.shared.clone(), self.counter.clone());
        self.rt.spawn(async move {
            if let Err(e) = shared.adjust(&counter, delta).await {
                tracing::warn!(error = %e, "shared budget adjustment lost; the counter over-reserves until it is re-seeded");
            }
        });
    }
}

impl Reservation {
    /// A reservation of `amount` whose admission (`used`) is already counted on `key`.
    fn held(key: &Arc<KeyState>, amount: i64, shared: Option<SharedHold>) -> Reservation {
        key.reserved.fetch_add(amount, Ordering::AcqRel);
        Reservation {
            key: key.clone(),
            amount,
            settled: false,
            shared,
        }
    }

    /// The key this reservation is held against.
    pub fn key(&self) -> &Arc<KeyState> {
        &self.key
    }

    /// Debit the tokens a generation used from the key's token rate limit (on every node
    /// when shared).
    pub fn debit_tokens(&self, tokens: u64) {
        let Some(tpm) = self.key.read().rate_limit_tpm else {
            return;
        };
        match &self.shared {
            Some(hold) => {
                let (shared, hash, rt) = (hold.shared.clone(), self.key.hash(), hold.rt.clone());
                rt.spawn(async move {
                    if let Err(e) = shared
                        .rate(&hash, "tpm", tpm, tokens, RateMode::Debit)
                        .await
                    {
                        tracing::warn!(error = %e, "shared token rate-limit debit lost");
                    }
                });
            }
            None => self.key.debit_tokens(tokens),
        }
    }

    /// Replace the reservation by the real cost.
    pub fn settle(mut self, actual: Decimal) {
        let actual = to_pico(actual).unwrap_or(0);
        self.key.spent.fetch_add(actual, Ordering::AcqRel);
        self.key
            .used
            .fetch_add(actual.saturating_sub(self.amount), Ordering::AcqRel);
        self.key.reserved.fetch_sub(self.amount, Ordering::AcqRel);
        if let Some(hold) = &self.shared {
            hold.adjust(actual.saturating_sub(self.amount));
        }
        self.settled = true;
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        if !self.settled {
            self.key.used.fetch_sub(self.amount, Ordering::AcqRel);
            self.key.reserved.fetch_sub(self.amount, Ordering::AcqRel);
            if let Some(hold) = &self.shared {
                hold.adjust(-self.amount);
            }
        }
    }
}

fn limit_exceeded(amount: i64, used: i64, limit: i64) -> ApiError {
    ApiError::PaymentRequired(format!(
        "Key limit exceeded: this request may cost up to ${} and the key has ${} of its ${} limit left",
        from_pico(amount),
        from_pico((limit - used).max(0)),
        from_pico(limit)
    ))
}

/// Reserve `worst` USD on `key` in this node's memory, or 402 when it does not fit in the
/// remaining limit.
pub fn reserve(key: &Arc<KeyState>, worst: Decimal) -> Result<Reservation, ApiError> {
    let amount = to_pico(worst).unwrap_or(i64::MAX / 4);
    let limit = key.read().limit.map(|l| to_pico(l).unwrap_or(i64::MAX));
    if let Some(limit) = limit {
        // Compare-and-swap on the one combined counter, so concurrent requests cannot all
        // pass the same check.
        let mut current = key.used.load(Ordering::Acquire);
        loop {
            if current.saturating_add(amount) > limit {
                return Err(limit_exceeded(amount, current, limit));
            }
            match key.used.compare_exchange(
                current,
                current + amount,
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => break,
                Err(actual) => current = actual,
            }
        }
    } else {
        key.used.fetch_add(amount, Ordering::AcqRel);
    }
    Ok(Reservation::held(key, amount, None))
}

struct LedgerItem {
    record: GenerationRecord,
    ack: Option<oneshot::Sender<()>>,
}

/// Keys, budgets and the ledger, shared by every worker of a node.
#[derive(Debug)]
pub struct Accounts {
    store: Arc<dyn Store>,
    rt: Handle,
    keys: Arc<RwLock<HashMap<String, Arc<KeyState>>>>,
    /// Serialises loads of keys that are not cached, so a burst of first requests reads a
    /// key (and sums its spend) once, not once per request.
    cold_load: tokio::sync::Mutex<()>,
    ledger: mpsc::UnboundedSender<LedgerItem>,
    /// Account-wide credit pool (USD), from config; None: no pool.
    pub credits: Option<Decimal>,
    /// Spend of every generation so far (picodollars), for the credit pool.
    total_spent: Arc<AtomicI64>,
    /// Redis, when budgets, rate limits and key changes are shared across nodes.
    shared: Option<Shared>,
}

impl std::fmt::Debug for LedgerItem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LedgerItem")
            .field("id", &self.record.id)
            .finish()
    }
}

fn now_unix() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// A key's run-time state: its record and its spend in the current limit window from the
/// ledger. A reload (`previous`) keeps the rate limiters' state, so a reload does not hand
/// out a fresh burst.
async fn load_state(
    store: &Arc<dyn Store>,
    rec: KeyRecord,
    previous: Option<&KeyState>,
) -> Result<Arc<KeyState>, StoreError> {
    let window_start = window_start(&rec);
    let spent = to_pico(store.key_usage_since(&rec.hash, window_start).await?).unwrap_or(0);
    let (rpm_tat, tpm_tat, epoch) = match previous {
        Some(p) => (
            p.rpm_tat.load(Ordering::Acquire),
            p.tpm_tat.load(Ordering::Acquire),
            p.epoch,
        ),
        None => (0, 0, std::time::Instant::now()),
    };
    Ok(Arc::new(KeyState {
        record: RwLock::new(rec),
        spent: AtomicI64::new(spent),
        reserved: AtomicI64::new(0),
        used: AtomicI64::new(spent),
        window_start,
        loaded_at: RwLock::new(std::time::Instant::now()),
        rpm_tat: AtomicI64::new(rpm_tat),
        tpm_tat: AtomicI64::new(tpm_tat),
        epoch,
        refreshing: std::sync::atomic::AtomicBool::new(false),
    }))
}

/// Start (unix seconds) of the limit window a key's spend counts in now (0: all time).
fn window_start(rec: &KeyRecord) -> i64 {
    rec.limit_reset.map_or(0, |r| r.window_start(now_unix()))
}

fn store_error(e: StoreError) -> ApiError {
    ApiError::Internal(format!("store: {e}"))
}

impl Accounts {
    /// Start the ledger writer on `rt` (and, with `shared`, the follower of key changes
    /// announced by other nodes); returns the accounts and the writer's handle (it ends
    /// once every sender is dropped and the queue is flushed).
    pub fn start(
        store: Arc<dyn Store>,
        rt: Handle,
        credits: Option<Decimal>,
        spent_so_far: Decimal,
        shared: Option<Shared>,
    ) -> (Arc<Accounts>, tokio::task::JoinHandle<()>) {
        let (tx, rx) = mpsc::unbounded_channel();
        let writer = rt.spawn(ledger_writer(store.clone(), rx));
        let accounts = Arc::new(Accounts {
            store,
            rt: rt.clone(),
            keys: Default::default(),
            cold_load: tokio::sync::Mutex::new(()),
            ledger: tx,
            credits,
            total_spent: Arc::new(AtomicI64::new(to_pico(spent_so_far).unwrap_or(0))),
            shared: shared.clone(),
        });
        if let Some(shared) = shared {
            // A weak handle: the follower must not keep the ledger sender (and so the
            // writer) alive past shutdown.
            let weak = Arc::downgrade(&accounts);
            rt.spawn(async move {
                shared
                    .follow_key_changes(move |hash| {
                        if let Some(a) = weak.upgrade() {
                            match hash {
                                Some(h) => a.invalidate(&h),
                                None => a.invalidate_all(),
                            }
                        }
                    })
                    .await;
            });
        }
        (accounts, writer)
    }

    /// Reserve the worst-case cost `worst` USD on `key`, or 402 when it does not fit in the
    /// remaining limit. Multi-node: atomically in Redis, against the spend of every node
    /// (503 when Redis cannot be reached: failing closed keeps the limit a guarantee).
    pub async fn reserve(
        &self,
        key: &Arc<KeyState>,
        worst: Decimal,
    ) -> Result<Reservation, ApiError> {
        let Some(shared) = &self.shared else {
            return reserve(key, worst);
        };
        let Some(limit) = key.read().limit else {
            // No limit: nothing to share, the local counters are enough.
            return reserve(key, worst);
        };
        let amount = to_pico(worst).unwrap_or(i64::MAX / 4);
        let limit = to_pico(limit).unwrap_or(i64::MAX);
        let counter = shared.budget_counter(&key.hash(), key.window_start);
        let seed = key.spent.load(Ordering::Acquire);
        let taken = {
            let (shared, counter) = (shared.clone(), counter.clone());
            self.on_store_rt(async move { shared.reserve(&counter, amount, limit, seed).await })
                .await?
        };
        match taken {
            Ok(Reserved::Taken(_)) => {
                key.used.fetch_add(amount, Ordering::AcqRel);
                let hold = SharedHold {
                    shared: shared.clone(),
                    counter,
                    rt: self.rt.clone(),
                };
                Ok(Reservation::held(key, amount, Some(hold)))
            }
            Ok(Reserved::Refused(used)) => Err(limit_exceeded(amount, used, limit)),
            Err(e) => {
                tracing::error!(error = %e, "shared budget store unreachable; refusing a limited key's request");
                Err(ApiError::Unavailable(
                    "The shared budget store (Redis) is unavailable; requests of keys with a spend limit are refused until it is back".into(),
                ))
            }
        }
    }

    /// Admit one request under the key's request and token rate limits (429 with
    /// Retry-After). Multi-node: against every node's requests, through Redis; if Redis
    /// cannot be reached this node's own limiter decides (rate limits fail open, budgets
    /// fail closed).
    pub async fn admit(&self, key: &Arc<KeyState>) -> Result<(), ApiError> {
        let rec = key.read();
        let (Some(shared), true) = (
            &self.shared,
            rec.rate_limit_rpm.is_some() || rec.rate_limit_tpm.is_some(),
        ) else {
            return key.admit();
        };
        let (shared, hash) = (shared.clone(), rec.hash.clone());
        let (rpm, tpm) = (rec.rate_limit_rpm, rec.rate_limit_tpm);
        let waits = self
            .on_store_rt(async move {
                let mut out = (0, 0);
                if let Some(rpm) = rpm {
                    out.0 = shared
                        .rate(&hash, "rpm", u64::from(rpm), 1, RateMode::Take)
                        .await?;
                }
                if let Some(tpm) = tpm
                    && out.0 == 0
                {
                    out.1 = shared.rate(&hash, "tpm", tpm, 1, RateMode::Check).await?;
                }
                Ok::<_, StoreError>(out)
            })
            .await?;
        let secs = |us: u64| us.div_ceil(1_000_000).max(1);
        match waits {
            Ok((0, 0)) => Ok(()),
            Ok((rpm_wait, 0)) => Err(ApiError::RateLimited {
                message: format!(
                    "Rate limit exceeded: this key allows {} requests per minute",
                    rpm.unwrap_or(0)
                ),
                retry_after: secs(rpm_wait),
            }),
            Ok((_, tpm_wait)) => Err(ApiError::RateLimited {
                message: format!(
                    "Rate limit exceeded: this key allows {} tokens per minute",
                    tpm.unwrap_or(0)
                ),
                retry_after: secs(tpm_wait),
            }),
            Err(e) => {
                tracing::warn!(error = %e, "shared rate limiter unreachable; this node's limiter decides");
                key.admit()
            }
        }
    }

    /// 402 once the account-wide credit pool is used up.
    pub fn check_credits(&self) -> Result<(), ApiError> {
        match self.credits {
            Some(c)
                if self.total_spent.load(Ordering::Acquire) >= to_pico(c).unwrap_or(i64::MAX) =>
            {
                Err(ApiError::PaymentRequired(format!(
                    "Insufficient credits: the account's ${} of credits are used up",
                    c.normalize()
                )))
            }
            _ => Ok(()),
        }
    }

    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// Run a future on the store runtime (where the database pool and the Redis connection
    /// live) and wait for it from any worker.
    async fn on_store_rt<T: Send + 'static>(
        &self,
        f: impl std::future::Future<Output = T> + Send + 'static,
    ) -> Result<T, ApiError> {
        self.rt
            .spawn(f)
            .await
            .map_err(|e| ApiError::Internal(format!("store task: {e}")))
    }

    /// Run a store operation on the store's runtime.
    pub async fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce(
            Arc<dyn Store>,
        ) -> std::pin::Pin<
            Box<dyn std::future::Future<Output = Result<T, StoreError>> + Send>,
        > + Send
        + 'static,
    ) -> Result<T, ApiError> {
        let store = self.store.clone();
        self.on_store_rt(async move { f(store).await })
            .await?
            .map_err(store_error)
    }

    /// The key for a bearer token, from the cache or the store. Disabled keys are refused.
    pub async fn authenticate(&self, token: &str) -> Result<Arc<KeyState>, ApiError> {
        let hash = hash_key(token);
        let key = match self.cached(&hash) {
            Some(k) if k.fresh() => k,
            // Stale: serve from the cache and re-read in the background (once per key), so
            // the database is never on the request path of a known key.
            Some(k) => {
                self.revalidate(hash, k.clone());
                k
            }
            None => {
                let _one_at_a_time = self.cold_load.lock().await;
                match self.cached(&hash) {
                    Some(k) => k, // loaded by the request we waited for
                    None => {
                        let h = hash.clone();
                        let loaded = self
                            .run(move |s| {
                                Box::pin(async move {
                                    match s.get_key(&h).await? {
                                        Some(rec) => load_state(&s, rec, None).await.map(Some),
                                        None => Ok(None),
                                    }
                                })
                            })
                            .await?;
                        let Some(state) = loaded else {
                            return Err(ApiError::Unauthorized("Invalid API key".into()));
                        };
                        self.keys
                            .write()
                            .unwrap_or_else(std::sync::PoisonError::into_inner)
                            .insert(hash, state.clone());
                        state
                    }
                }
            }
        };
        if key.read().disabled {
            return Err(ApiError::Unauthorized("This API key is disabled".into()));
        }
        Ok(key)
    }

    fn cached(&self, hash: &str) -> Option<Arc<KeyState>> {
        self.keys
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(hash)
            .cloned()
    }

    /// Re-read a stale key on the store runtime, unless a re-read is already running: a
    /// deleted key leaves the cache; a key with reservations in flight is refreshed in place
    /// (its live counters stay); an idle one, or one whose limit window rolled over, is
    /// reloaded with its spend from the ledger (catching other nodes' spend).
    fn revalidate(&self, hash: String, k: Arc<KeyState>) {
        if k.refreshing
            .compare_exchange(false, true, Ordering::AcqRel, Ordering::Acquire)
            .is_err()
        {
            return;
        }
        let (store, keys) = (self.store.clone(), self.keys.clone());
        self.rt.spawn(async move {
            let result: Result<(), StoreError> = async {
                match store.get_key(&hash).await? {
                    None => {
                        keys.write()
                            .unwrap_or_else(std::sync::PoisonError::into_inner)
                            .remove(&hash);
                    }
                    Some(rec)
                        if k.reserved.load(Ordering::Acquire) == 0
                            || window_start(&rec) != k.window_start =>
                    {
                        let state = load_state(&store, rec, Some(&k)).await?;
                        keys.write()
                            .unwrap_or_else(std::sync::PoisonError::into_inner)
                            .insert(hash, state);
                    }
                    Some(rec) => {
                        *k.record
                            .write()
                            .unwrap_or_else(std::sync::PoisonError::into_inner) = rec;
                        *k.loaded_at
                            .write()
                            .unwrap_or_else(std::sync::PoisonError::into_inner) =
                            std::time::Instant::now();
                    }
                }
                Ok(())
            }
            .await;
            if let Err(e) = result {
                tracing::warn!(error = %e, "could not re-read a cached key; serving the cached copy");
            }
            k.refreshing.store(false, Ordering::Release);
        });
    }

    /// Forget a cached key so the next request reloads it.
    pub fn invalidate(&self, hash: &str) {
        self.keys
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(hash);
    }

    fn invalidate_all(&self) {
        self.keys
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clear();
    }

    /// A key was changed (PATCH) or deleted: it stops being served from the cache at once
    /// on this node, and — multi-node — on every node subscribed to the announcement.
    pub async fn key_changed(&self, hash: &str) {
        self.invalidate(hash);
        if let Some(shared) = &self.shared {
            let (shared, h) = (shared.clone(), hash.to_string());
            let sent = self
                .on_store_rt(async move { shared.announce_key_change(&h).await })
                .await;
            if !matches!(sent, Ok(Ok(()))) {
                tracing::warn!(
                    "could not announce a key change through redis; other nodes notice it within their cache TTL"
                );
            }
        }
    }

    fn count(&self, record: &GenerationRecord) {
        let cost = to_pico(record.total_cost).unwrap_or(0);
        let before = self.total_spent.fetch_add(cost, Ordering::AcqRel);
        if let (Some(shared), Some(_)) = (&self.shared, self.credits)
            && cost != 0
        {
            // The credit pool is account-wide: add to the shared total and take every
            // node's spend back from it.
            let shared = shared.clone();
            let me = self.total_spent.clone();
            self.rt.spawn(async move {
                match shared.add_seeded("credits:spent", cost, before).await {
                    Ok(total) => {
                        me.fetch_max(total, Ordering::AcqRel);
                    }
                    Err(e) => tracing::warn!(error = %e, "shared credit counter not updated"),
                }
            });
        }
    }

    /// Queue a record; it is committed by the writer shortly after.
    pub fn record(&self, record: GenerationRecord) {
        self.count(&record);
        if self.ledger.send(LedgerItem { record, ack: None }).is_err() {
            tracing::error!("ledger writer is gone; a generation record was not queued");
        }
    }

    /// Queue a record and wait until it is committed (bounded, so a stuck database delays
    /// responses by at most `timeout`).
    pub async fn record_durable(&self, record: GenerationRecord, timeout: Duration) {
        self.count(&record);
        let (tx, rx) = oneshot::channel();
        if self
            .ledger
            .send(LedgerItem {
                record,
                ack: Some(tx),
            })
            .is_err()
        {
            tracing::error!("ledger writer is gone; a generation record was not queued");
            return;
        }
        if tokio::time::timeout(timeout, rx).await.is_err() {
            tracing::warn!("ledger commit is slow; answering before it completes");
        }
    }
}

/// The batching writer: commit what is queued (up to MAX_BATCH per transaction), retry on
/// errors with backoff (records are never dropped), acknowledge after commit.
async fn ledger_writer(store: Arc<dyn Store>, mut rx: mpsc::UnboundedReceiver<LedgerItem>) {
    let mut records: Vec<GenerationRecord> = Vec::with_capacity(MAX_BATCH);
    let mut acks: Vec<oneshot::Sender<()>> = Vec::with_capacity(MAX_BATCH);
    fn take(
        item: LedgerItem,
        records: &mut Vec<GenerationRecord>,
        acks: &mut Vec<oneshot::Sender<()>>,
    ) {
        records.push(item.record);
        if let Some(ack) = item.ack {
            acks.push(ack);
        }
    }
    while let Some(first) = rx.recv().await {
        take(first, &mut records, &mut acks);
        while records.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(item) => take(item, &mut records, &mut acks),
                Err(_) => break,
            }
        }
        let mut backoff = Duration::from_millis(50);
        loop {
            match store.insert_generations(&records).await {
                Ok(()) => break,
                Err(e) => {
                    tracing::error!(error = %e, records = records.len(), "ledger write failed; retrying");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                }
            }
        }
        records.clear();
        for ack in acks.drain(..) {
            let _ = ack.send(());
        }
    }
    tracing::info!("ledger flushed");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(limit: &str) -> Arc<KeyState> {
        Arc::new(KeyState {
            record: RwLock::new(KeyRecord {
                hash: "h".into(),
                name: "n".into(),
                label: "l".into(),
                limit: Some(limit.parse().unwrap()),
                limit_reset: None,
                disabled: false,
                created_at: 0,
                updated_at: None,
                rate_limit_rpm: None,
                rate_limit_tpm: None,
            }),
            spent: AtomicI64::new(0),
            reserved: AtomicI64::new(0),
            used: AtomicI64::new(0),
            window_start: 0,
            loaded_at: RwLock::new(std::time::Instant::now()),
            rpm_tat: AtomicI64::new(0),
            tpm_tat: AtomicI64::new(0),
            epoch: std::time::Instant::now(),
            refreshing: std::sync::atomic::AtomicBool::new(false),
        })
    }

    #[test]
    fn request_rate_limit_gcra() {
        let k = key("100");
        k.record.write().unwrap().rate_limit_rpm = Some(3);
        for _ in 0..3 {
            k.admit().unwrap();
        }
        match k.admit() {
            Err(ApiError::RateLimited { retry_after, .. }) => {
                assert!((1..=20).contains(&retry_after))
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn token_rate_limit_debits_after_the_answer() {
        let k = key("100");
        k.record.write().unwrap().rate_limit_tpm = Some(100);
        k.admit().unwrap();
        k.debit_tokens(150); // more than a minute's worth
        assert!(matches!(k.admit(), Err(ApiError::RateLimited { .. })));
    }

    #[test]
    fn reservations_never_overspend() {
        let k = key("1");
        let a = reserve(&k, "0.6".parse().unwrap()).unwrap();
        assert!(
            reserve(&k, "0.6".parse().unwrap()).is_err(),
            "would exceed the limit"
        );
        a.settle("0.1".parse().unwrap());
        let b = reserve(&k, "0.6".parse().unwrap()).unwrap();
        drop(b); // released
        assert_eq!(
            k.remaining_pico(),
            Some(to_pico("0.9".parse().unwrap()).unwrap())
        );
    }

    #[test]
    fn concurrent_reservations_respect_the_limit() {
        let k = key("50");
        let ok = std::sync::atomic::AtomicUsize::new(0);
        std::thread::scope(|s| {
            for _ in 0..8 {
                s.spawn(|| {
                    for _ in 0..25 {
                        if let Ok(r) = reserve(&k, Decimal::ONE) {
                            ok.fetch_add(1, Ordering::Relaxed);
                            r.settle(Decimal::ONE);
                        }
                    }
                });
            }
        });
        assert_eq!(ok.load(Ordering::Relaxed), 50);
        assert_eq!(
            k.spent.load(Ordering::Relaxed),
            to_pico(Decimal::from(50)).unwrap()
        );
    }
}
