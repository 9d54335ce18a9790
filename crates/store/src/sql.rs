//! The one SQL implementation of [`Store`], over sqlx's `Any` driver: the same statements
//! run on SQLite and PostgreSQL (numbered placeholders are rewritten per backend; booleans
//! and money are BIGINTs so both decode alike).

use sqlx::any::{AnyPoolOptions, AnyRow};
use sqlx::{AnyPool, Row};

use crate::{
    Decimal, GenerationRecord, KeyPatch, KeyRecord, KeyUsage, LimitReset, NewKey, Store,
    StoreError, StoreFuture, from_pico, generate_key, key_label, to_pico,
};

/// Versioned schema; each entry runs once, in order, recorded in `schema_migrations`.
const MIGRATIONS: &[(i64, &[&str])] = &[(
    1,
    &[
        "CREATE TABLE IF NOT EXISTS keys (
            hash TEXT PRIMARY KEY,
            name TEXT NOT NULL,
            label TEXT NOT NULL,
            limit_pico BIGINT,
            limit_reset TEXT,
            disabled BIGINT NOT NULL DEFAULT 0,
            created_at BIGINT NOT NULL,
            updated_at BIGINT,
            rate_limit_rpm BIGINT,
            rate_limit_tpm BIGINT
        )",
        "CREATE TABLE IF NOT EXISTS generations (
            id TEXT PRIMARY KEY,
            key_hash TEXT,
            model TEXT NOT NULL,
            provider_name TEXT NOT NULL,
            provider_slug TEXT NOT NULL,
            upstream_model TEXT NOT NULL,
            endpoint TEXT NOT NULL,
            streamed BIGINT NOT NULL,
            cancelled BIGINT NOT NULL,
            status BIGINT NOT NULL,
            finish_reason TEXT,
            native_finish_reason TEXT,
            tokens_prompt BIGINT NOT NULL,
            tokens_completion BIGINT NOT NULL,
            native_tokens_cached BIGINT NOT NULL,
            native_tokens_reasoning BIGINT NOT NULL,
            usage_estimated BIGINT NOT NULL,
            cost_pico BIGINT NOT NULL,
            latency_ms BIGINT NOT NULL,
            generation_time_ms BIGINT NOT NULL,
            created_at BIGINT NOT NULL
        )",
        "CREATE INDEX IF NOT EXISTS generations_key_time ON generations (key_hash, created_at)",
    ],
)];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Backend {
    Sqlite,
    Postgres,
}

/// SQLite or PostgreSQL through one code path.
#[derive(Debug, Clone)]
pub struct SqlStore {
    pool: AnyPool,
    backend: Backend,
    /// The ledger writer's own connection, kept across batches: on SQLite a connection's
    /// page cache is thrown away whenever another connection commits, so one writer
    /// connection keeps the B-tree pages it appends to in memory.
    writer: std::sync::Arc<tokio::sync::Mutex<Option<sqlx::pool::PoolConnection<sqlx::Any>>>>,
}

fn now_unix() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

impl SqlStore {
    /// Connect and migrate. SQLite files are created if missing and run in WAL mode with
    /// `synchronous=NORMAL`: a committed transaction survives a process crash (`kill -9`);
    /// only an OS crash or power loss can lose the last commits.
    pub async fn open(url: &str) -> Result<SqlStore, StoreError> {
        sqlx::any::install_default_drivers();
        let (backend, url) = if let Some(rest) = url.strip_prefix("sqlite:") {
            let path = rest.trim_start_matches("//");
            if path == ":memory:" || path.is_empty() {
                (Backend::Sqlite, "sqlite::memory:".to_string())
            } else {
                (Backend::Sqlite, format!("sqlite://{path}?mode=rwc"))
            }
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            (Backend::Postgres, url.to_string())
        } else {
            return Err(StoreError::Url(url.to_string()));
        };
        let max = match (backend, url.as_str()) {
            // One connection keeps an in-memory database alive and shared.
            (Backend::Sqlite, "sqlite::memory:") => 1,
            (Backend::Sqlite, _) => 4,
            (Backend::Postgres, _) => 16,
        };
        let pool = AnyPoolOptions::new()
            .max_connections(max)
            .after_connect(move |conn, _meta| {
                Box::pin(async move {
                    if backend == Backend::Sqlite {
                        sqlx::query("PRAGMA journal_mode=WAL")
                            .execute(&mut *conn)
                            .await?;
                        sqlx::query("PRAGMA synchronous=NORMAL")
                            .execute(&mut *conn)
                            .await?;
                        sqlx::query("PRAGMA busy_timeout=5000")
                            .execute(&mut *conn)
                            .await?;
                    }
                    Ok(())
                })
            })
            .connect(&url)
            .await?;
        let store = SqlStore {
            pool,
            backend,
            writer: Default::default(),
        };
        store.migrate().await?;
        Ok(store)
    }

    /// Statements are written with `$1` placeholders; SQLite takes `?1`.
    fn q(&self, sql: &str) -> String {
        match self.backend {
            Backend::Postgres => sql.to_string(),
            Backend::Sqlite => sql.replace('$', "?"),
        }
    }

    /// Apply pending migrations on one connection. On PostgreSQL an advisory lock makes
    /// nodes that start together migrate one after the other.
    async fn migrate(&self) -> Result<(), StoreError> {
        let mut conn = self.pool.acquire().await?;
        if self.backend == Backend::Postgres {
            sqlx::query("SELECT pg_advisory_lock(7347)")
                .execute(&mut *conn)
                .await?;
        }
        let result = self.migrate_on(&mut conn).await;
        if self.backend == Backend::Postgres {
            sqlx::query("SELECT pg_advisory_unlock(7347)")
                .execute(&mut *conn)
                .await?;
        }
        result
    }

    async fn migrate_on(&self, conn: &mut sqlx::AnyConnection) -> Result<(), StoreError> {
        sqlx::query("CREATE TABLE IF NOT EXISTS schema_migrations (version BIGINT PRIMARY KEY, applied_at BIGINT NOT NULL)")
            .execute(&mut *conn)
            .await?;
        for (version, statements) in MIGRATIONS {
            let done: Option<AnyRow> =
                sqlx::query(&self.q("SELECT version FROM schema_migrations WHERE version = $1"))
                    .bind(*version)
                    .fetch_optional(&mut *conn)
                    .await?;
            if done.is_some() {
                continue;
            }
            for s in *statements {
                sqlx::query(s).execute(&mut *conn).await?;
            }
            sqlx::query(&self.q("INSERT INTO schema_migrations (version, applied_at) VALUES ($1, $2) ON CONFLICT (version) DO NOTHING"))
                .bind(*version)
                .bind(now_unix())
                .execute(&mut *conn)
                .await?;
        }
        Ok(())
    }
}

const KEY_COLUMNS: &str = "hash, name, label, limit_pico, limit_reset, disabled, created_at, updated_at, rate_limit_rpm, rate_limit_tpm";

fn key_from_row(r: &AnyRow) -> Result<KeyRecord, StoreError> {
    let reset: Option<String> = r.try_get("limit_reset")?;
    Ok(KeyRecord {
        hash: r.try_get("hash")?,
        name: r.try_get("name")?,
        label: r.try_get("label")?,
        limit: r.try_get::<Option<i64>, _>("limit_pico")?.map(from_pico),
        limit_reset: reset.as_deref().and_then(LimitReset::parse),
        disabled: r.try_get::<i64, _>("disabled")? != 0,
        created_at: r.try_get("created_at")?,
        updated_at: r.try_get("updated_at")?,
        rate_limit_rpm: r
            .try_get::<Option<i64>, _>("rate_limit_rpm")?
            .map(|v| v as u32),
        rate_limit_tpm: r
            .try_get::<Option<i64>, _>("rate_limit_tpm")?
            .map(|v| v as u64),
    })
}

const GEN_COLUMNS: &str = "id, key_hash, model, provider_name, provider_slug, upstream_model, endpoint, streamed, cancelled, status, finish_reason, native_finish_reason, tokens_prompt, tokens_completion, native_tokens_cached, native_tokens_reasoning, usage_estimated, cost_pico, latency_ms, generation_time_ms, created_at";

fn gen_from_row(r: &AnyRow) -> Result<GenerationRecord, StoreError> {
    let n = |c: &str| -> Result<u64, StoreError> { Ok(r.try_get::<i64, _>(c)?.max(0) as u64) };
    Ok(GenerationRecord {
        id: r.try_get("id")?,
        key_hash: r.try_get("key_hash")?,
        model: r.try_get("model")?,
        provider_name: r.try_get("provider_name")?,
        provider_slug: r.try_get("provider_slug")?,
        upstream_model: r.try_get("upstream_model")?,
        endpoint: r.try_get("endpoint")?,
        streamed: r.try_get::<i64, _>("streamed")? != 0,
        cancelled: r.try_get::<i64, _>("cancelled")? != 0,
        status: n("status")? as u16,
        finish_reason: r.try_get("finish_reason")?,
        native_finish_reason: r.try_get("native_finish_reason")?,
        tokens_prompt: n("tokens_prompt")?,
        tokens_completion: n("tokens_completion")?,
        native_tokens_cached: n("native_tokens_cached")?,
        native_tokens_reasoning: n("native_tokens_reasoning")?,
        usage_estimated: r.try_get::<i64, _>("usage_estimated")? != 0,
        total_cost: from_pico(r.try_get("cost_pico")?),
        latency_ms: n("latency_ms")?,
        generation_time_ms: n("generation_time_ms")?,
        created_at: r.try_get("created_at")?,
    })
}

/// Start of the UTC day, ISO week (Monday) and calendar month containing `now`.
pub fn window_starts(now: i64) -> (i64, i64, i64) {
    let day = now.div_euclid(86_400);
    let day_start = day * 86_400;
    // 1970-01-01 was a Thursday: Monday-based weekday = (day + 3) mod 7.
    let week_start = (day - (day + 3).rem_euclid(7)) * 86_400;
    // Civil date of `day` (Howard Hinnant's algorithm), then day 1 of that month.
    let z = day + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let month_start = (day - (d - 1)) * 86_400;
    (day_start, week_start, month_start)
}

impl Store for SqlStore {
    fn backend(&self) -> &'static str {
        match self.backend {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        }
    }

    fn create_key(&self, new: NewKey) -> StoreFuture<'_, (KeyRecord, String)> {
        Box::pin(async move {
            if new.name.trim().is_empty() {
                return Err(StoreError::Invalid("name must not be empty".into()));
            }
            if new.limit.is_some_and(|l| l.is_sign_negative()) {
                return Err(StoreError::Invalid("limit must not be negative".into()));
            }
            let (plaintext, hash) = generate_key();
            let rec = KeyRecord {
                hash,
                name: new.name,
                label: key_label(&plaintext),
                limit: new.limit,
                limit_reset: new.limit_reset,
                disabled: false,
                created_at: now_unix(),
                updated_at: None,
                rate_limit_rpm: new.rate_limit_rpm,
                rate_limit_tpm: new.rate_limit_tpm,
            };
            sqlx::query(&self.q(&format!(
                "INSERT INTO keys ({KEY_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)"
            )))
            .bind(&rec.hash)
            .bind(&rec.name)
            .bind(&rec.label)
            .bind(rec.limit.map(to_pico).transpose()?)
            .bind(rec.limit_reset.map(|r| r.as_str().to_string()))
            .bind(0i64)
            .bind(rec.created_at)
            .bind(None::<i64>)
            .bind(rec.rate_limit_rpm.map(i64::from))
            .bind(rec.rate_limit_tpm.map(|v| v as i64))
            .execute(&self.pool)
            .await?;
            Ok((rec, plaintext))
        })
    }

    fn get_key<'a>(&'a self, hash: &'a str) -> StoreFuture<'a, Option<KeyRecord>> {
        Box::pin(async move {
            let row =
                sqlx::query(&self.q(&format!("SELECT {KEY_COLUMNS} FROM keys WHERE hash = $1")))
                    .bind(hash)
                    .fetch_optional(&self.pool)
                    .await?;
            row.as_ref().map(key_from_row).transpose()
        })
    }

    fn list_keys(
        &self,
        offset: u64,
        limit: u64,
        include_disabled: bool,
    ) -> StoreFuture<'_, Vec<KeyRecord>> {
        Box::pin(async move {
            let filter = if include_disabled {
                ""
            } else {
                "WHERE disabled = 0"
            };
            let rows = sqlx::query(&self.q(&format!(
                "SELECT {KEY_COLUMNS} FROM keys {filter} ORDER BY created_at DESC, hash LIMIT $1 OFFSET $2"
            )))
            .bind(limit.min(i64::MAX as u64) as i64)
            .bind(offset.min(i64::MAX as u64) as i64)
            .fetch_all(&self.pool)
            .await?;
            rows.iter().map(key_from_row).collect()
        })
    }

    fn update_key<'a>(
        &'a self,
        hash: &'a str,
        patch: KeyPatch,
    ) -> StoreFuture<'a, Option<KeyRecord>> {
        Box::pin(async move {
            let Some(mut rec) = self.get_key(hash).await? else {
                return Ok(None);
            };
            if let Some(n) = patch.name {
                if n.trim().is_empty() {
                    return Err(StoreError::Invalid("name must not be empty".into()));
                }
                rec.name = n;
            }
            if let Some(l) = patch.limit {
                if l.is_some_and(|l| l.is_sign_negative()) {
                    return Err(StoreError::Invalid("limit must not be negative".into()));
                }
                rec.limit = l;
            }
            if let Some(r) = patch.limit_reset {
                rec.limit_reset = r;
            }
            if let Some(d) = patch.disabled {
                rec.disabled = d;
            }
            if let Some(r) = patch.rate_limit_rpm {
                rec.rate_limit_rpm = r;
            }
            if let Some(t) = patch.rate_limit_tpm {
                rec.rate_limit_tpm = t;
            }
            rec.updated_at = Some(now_unix());
            sqlx::query(&self.q("UPDATE keys SET name = $1, limit_pico = $2, limit_reset = $3, disabled = $4, updated_at = $5, rate_limit_rpm = $7, rate_limit_tpm = $8 WHERE hash = $6"))
                .bind(&rec.name)
                .bind(rec.limit.map(to_pico).transpose()?)
                .bind(rec.limit_reset.map(|r| r.as_str().to_string()))
                .bind(i64::from(rec.disabled))
                .bind(rec.updated_at)
                .bind(hash)
                .bind(rec.rate_limit_rpm.map(i64::from))
                .bind(rec.rate_limit_tpm.map(|v| v.min(i64::MAX as u64) as i64))
                .execute(&self.pool)
                .await?;
            Ok(Some(rec))
        })
    }

    fn delete_key<'a>(&'a self, hash: &'a str) -> StoreFuture<'a, bool> {
        Box::pin(async move {
            let r = sqlx::query(&self.q("DELETE FROM keys WHERE hash = $1"))
                .bind(hash)
                .execute(&self.pool)
                .await?;
            Ok(r.rows_affected() > 0)
        })
    }

    fn insert_generations<'a>(&'a self, records: &'a [GenerationRecord]) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            if records.is_empty() {
                return Ok(());
            }
            let mut writer = self.writer.lock().await;
            let conn = match writer.as_mut() {
                Some(conn) => conn,
                None => writer.insert(self.pool.acquire().await?),
            };
            let result: Result<(), StoreError> = async {
                if records.len() <= ROWS_PER_STATEMENT {
                    // One statement is atomic on its own: one round trip to the database
                    // instead of three (BEGIN, INSERT, COMMIT).
                    let sql = insert_sql(self.backend, records.len());
                    insert_query(&sql, records)?.execute(&mut **conn).await?;
                    return Ok(());
                }
                let mut tx = sqlx::Connection::begin(&mut **conn).await?;
                for chunk in records.chunks(ROWS_PER_STATEMENT) {
                    let sql = insert_sql(self.backend, chunk.len());
                    insert_query(&sql, chunk)?.execute(&mut *tx).await?;
                }
                tx.commit().await?;
                Ok(())
            }
            .await;
            if result.is_err() {
                // Start the next batch on a fresh connection.
                *writer = None;
            }
            result
        })
    }

    fn get_generation<'a>(&'a self, id: &'a str) -> StoreFuture<'a, Option<GenerationRecord>> {
        Box::pin(async move {
            let row = sqlx::query(&self.q(&format!(
                "SELECT {GEN_COLUMNS} FROM generations WHERE id = $1"
            )))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
            row.as_ref().map(gen_from_row).transpose()
        })
    }

    fn key_usage<'a>(&'a self, hash: &'a str, now: i64) -> StoreFuture<'a, KeyUsage> {
        Box::pin(async move {
            let (day, week, month) = window_starts(now);
            let row = sqlx::query(&self.q(
                "SELECT CAST(COALESCE(SUM(cost_pico), 0) AS BIGINT) AS total,
                        CAST(COALESCE(SUM(CASE WHEN created_at >= $2 THEN cost_pico ELSE 0 END), 0) AS BIGINT) AS daily,
                        CAST(COALESCE(SUM(CASE WHEN created_at >= $3 THEN cost_pico ELSE 0 END), 0) AS BIGINT) AS weekly,
                        CAST(COALESCE(SUM(CASE WHEN created_at >= $4 THEN cost_pico ELSE 0 END), 0) AS BIGINT) AS monthly
                 FROM generations WHERE key_hash = $1",
            ))
            .bind(hash)
            .bind(day)
            .bind(week)
            .bind(month)
            .fetch_one(&self.pool)
            .await?;
            let get =
                |c: &str| -> Result<Decimal, StoreError> { Ok(from_pico(sum_column(&row, c)?)) };
            Ok(KeyUsage {
                total: get("total")?,
                daily: get("daily")?,
                weekly: get("weekly")?,
                monthly: get("monthly")?,
            })
        })
    }

    fn key_usage_since<'a>(&'a self, hash: &'a str, since: i64) -> StoreFuture<'a, Decimal> {
        Box::pin(async move {
            let row = sqlx::query(&self.q("SELECT CAST(COALESCE(SUM(cost_pico), 0) AS BIGINT) AS total FROM generations WHERE key_hash = $1 AND created_at >= $2"))
                .bind(hash)
                .bind(since)
                .fetch_one(&self.pool)
                .await?;
            Ok(from_pico(sum_column(&row, "total")?))
        })
    }

    fn total_usage(&self) -> StoreFuture<'_, Decimal> {
        Box::pin(async move {
            let row = sqlx::query(
                "SELECT CAST(COALESCE(SUM(cost_pico), 0) AS BIGINT) AS total FROM generations",
            )
            .fetch_one(&self.pool)
            .await?;
            Ok(from_pico(sum_column(&row, "total")?))
        })
    }
}

/// Sums are cast to BIGINT in SQL (PostgreSQL's SUM(bigint) is NUMERIC otherwise).
fn sum_column(row: &AnyRow, col: &str) -> Result<i64, StoreError> {
    Ok(row.try_get::<i64, _>(col)?)
}

/// Multi-row inserts: one round trip per ROWS_PER_STATEMENT records instead of one per
/// record (21 parameters a row stays far below both backends' limits).
const ROWS_PER_STATEMENT: usize = 100;
const GEN_COLS: usize = 21;

/// `INSERT … VALUES (…),(…) ON CONFLICT (id) DO NOTHING` for `rows` ledger records.
fn insert_sql(backend: Backend, rows: usize) -> String {
    let mut sql = format!("INSERT INTO generations ({GEN_COLUMNS}) VALUES ");
    for r in 0..rows {
        if r > 0 {
            sql.push(',');
        }
        sql.push('(');
        for c in 0..GEN_COLS {
            if c > 0 {
                sql.push(',');
            }
            match backend {
                Backend::Postgres => sql.push_str(&format!("${}", r * GEN_COLS + c + 1)),
                // Anonymous placeholders: SQLite resolves a numbered one (`?17`) by a linear
                // scan, so binding 2,100 of them is quadratic.
                Backend::Sqlite => sql.push('?'),
            }
        }
        sql.push(')');
    }
    sql.push_str(" ON CONFLICT (id) DO NOTHING");
    sql
}

/// The insert of [`insert_sql`] with `records` bound, column by column.
fn insert_query<'q>(
    sql: &'q str,
    records: &'q [GenerationRecord],
) -> Result<sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>>, StoreError> {
    let n = |v: u64| v.min(i64::MAX as u64) as i64;
    let mut q = sqlx::query(sql);
    for g in records {
        q = q
            .bind(&g.id)
            .bind(&g.key_hash)
            .bind(&g.model)
            .bind(&g.provider_name)
            .bind(&g.provider_slug)
            .bind(&g.upstream_model)
            .bind(&g.endpoint)
            .bind(i64::from(g.streamed))
            .bind(i64::from(g.cancelled))
            .bind(i64::from(g.status))
            .bind(&g.finish_reason)
            .bind(&g.native_finish_reason)
            .bind(n(g.tokens_prompt))
            .bind(n(g.tokens_completion))
            .bind(n(g.native_tokens_cached))
            .bind(n(g.native_tokens_reasoning))
            .bind(i64::from(g.usage_estimated))
            .bind(to_pico(g.total_cost)?)
            .bind(n(g.latency_ms))
            .bind(n(g.generation_time_ms))
            .bind(g.created_at);
    }
    Ok(q)
}

#[cfg(test)]
mod tests {
    use super::window_starts;

    #[test]
    fn windows() {
        // 2026-11-24T12:00:00Z is a Tuesday.
        let now = 1_795_521_600;
        let (d, w, m) = window_starts(now);
        assert_eq!(d, 1_795_478_400); // 2026-11-24T00:00Z
        assert_eq!(w, 1_795_392_000); // Monday 2026-11-23T00:00Z
        assert_eq!(m, 1_793_491_200); // 2026-11-01T00:00Z
    }
}
