//! One test suite, run against both backends: SQLite (a temp file) and the PostgreSQL on
//! 127.0.0.1:5432 (`SWITCHYARD_TEST_PG_URL` overrides). PostgreSQL tests fail — never skip —
//! when the server is unreachable.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use switchyard_store::{
    Decimal, GenerationRecord, KeyPatch, LimitReset, NewKey, SqlStore, Store, hash_key,
};

fn pg_url() -> String {
    std::env::var("SWITCHYARD_TEST_PG_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}

/// Unique per process (pid) and call (counter); the time only separates reruns.
fn unique() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!("{}_{}_{nanos}", std::process::id(), fastrand_u64())
}

fn fastrand_u64() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    N.fetch_add(1, Ordering::Relaxed)
}

async fn sqlite() -> Arc<dyn Store> {
    let path = std::env::temp_dir().join(format!("switchyard-store-{}.db", unique()));
    Arc::new(
        SqlStore::open(&format!("sqlite://{}", path.display()))
            .await
            .unwrap(),
    )
}

/// A fresh schema per test so runs never see each other's rows.
async fn postgres() -> Arc<dyn Store> {
    let base = pg_url();
    let schema = format!("sy_test_{}", unique());
    // Create the schema with a plain connection, then point the store's search_path at it.
    {
        use sqlx::Connection;
        let mut c = sqlx::PgConnection::connect(&base)
            .await
            .unwrap_or_else(|e| panic!("PostgreSQL at {base} is required for these tests: {e}"));
        sqlx::query(&format!("CREATE SCHEMA {schema}"))
            .execute(&mut c)
            .await
            .unwrap();
    }
    let sep = if base.contains('?') { '&' } else { '?' };
    let url = format!("{base}{sep}options=-c%20search_path%3D{schema}");
    Arc::new(SqlStore::open(&url).await.unwrap())
}

fn record(id: &str, key: Option<&str>, cost: &str, created_at: i64) -> GenerationRecord {
    GenerationRecord {
        id: id.into(),
        key_hash: key.map(str::to_string),
        model: "openai/gpt-4o-mini".into(),
        provider_name: "OpenAI".into(),
        provider_slug: "openai".into(),
        upstream_model: "gpt-4o-mini".into(),
        endpoint: "chat".into(),
        streamed: true,
        cancelled: false,
        status: 200,
        finish_reason: Some("stop".into()),
        native_finish_reason: Some("end_turn".into()),
        tokens_prompt: 10,
        tokens_completion: 3,
        native_tokens_cached: 2,
        native_tokens_reasoning: 1,
        usage_estimated: false,
        total_cost: cost.parse().unwrap(),
        latency_ms: 120,
        generation_time_ms: 900,
        created_at,
    }
}

async fn keys_lifecycle(s: Arc<dyn Store>) {
    let (k, plaintext) = s
        .create_key(NewKey {
            name: "ci".into(),
            limit: Some("1.5".parse().unwrap()),
            limit_reset: Some(LimitReset::Daily),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(k.hash, hash_key(&plaintext));
    assert!(k.label.starts_with("sk-sy-v1-") && k.label.contains("..."));
    let got = s.get_key(&k.hash).await.unwrap().unwrap();
    assert_eq!(got, k);
    assert_eq!(got.limit, Some("1.5".parse().unwrap()));
    let (k2, _) = s
        .create_key(NewKey {
            name: "other".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(s.list_keys(0, 10, true).await.unwrap().len(), 2);
    let u = s
        .update_key(
            &k.hash,
            KeyPatch {
                disabled: Some(true),
                limit: Some(None),
                name: Some("renamed".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap()
        .unwrap();
    assert!(u.disabled && u.limit.is_none() && u.name == "renamed" && u.updated_at.is_some());
    assert_eq!(s.list_keys(0, 10, false).await.unwrap().len(), 1);
    assert!(s.delete_key(&k2.hash).await.unwrap());
    assert!(!s.delete_key(&k2.hash).await.unwrap());
    assert!(s.get_key(&k2.hash).await.unwrap().is_none());
    assert!(
        s.update_key("nope", KeyPatch::default())
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        s.create_key(NewKey {
            name: " ".into(),
            ..Default::default()
        })
        .await
        .is_err()
    );
}

async fn ledger_round_trip(s: Arc<dyn Store>) {
    let now = 1_795_521_600; // a Tuesday noon UTC
    let g = record("gen-1", Some("k1"), "0.000000225", now);
    s.insert_generations(&[g.clone(), record("gen-2", None, "0.5", now)])
        .await
        .unwrap();
    // Idempotent: re-inserting the same id changes nothing.
    let mut changed = g.clone();
    changed.total_cost = "9".parse().unwrap();
    s.insert_generations(&[changed]).await.unwrap();
    assert_eq!(s.get_generation("gen-1").await.unwrap().unwrap(), g);
    assert!(s.get_generation("gen-x").await.unwrap().is_none());
    // Windows: today, 3 days ago (this week? no: Monday is yesterday), 8 days, 40 days.
    s.insert_generations(&[
        record("gen-d", Some("k2"), "1", now - 3600),
        record("gen-w", Some("k2"), "2", now - 86_400),
        record("gen-8", Some("k2"), "4", now - 8 * 86_400),
        record("gen-40", Some("k2"), "8", now - 40 * 86_400),
    ])
    .await
    .unwrap();
    let u = s.key_usage("k2", now).await.unwrap();
    assert_eq!(u.total, Decimal::from(15));
    assert_eq!(u.daily, Decimal::from(1));
    assert_eq!(u.weekly, Decimal::from(3));
    assert_eq!(
        u.monthly,
        Decimal::from(7),
        "Nov 16 is in the month, Oct 15 is not"
    );
    assert_eq!(
        s.key_usage_since("k2", now - 2 * 86_400).await.unwrap(),
        Decimal::from(3)
    );
    assert_eq!(
        s.total_usage().await.unwrap(),
        "15.500000225".parse::<Decimal>().unwrap()
    );
}

async fn concurrent_batches(s: Arc<dyn Store>) {
    let mut tasks = Vec::new();
    for t in 0..8 {
        let s = s.clone();
        tasks.push(tokio::spawn(async move {
            for b in 0..5 {
                let batch: Vec<_> = (0..20)
                    .map(|i| record(&format!("c-{t}-{b}-{i}"), Some("conc"), "0.001", 1))
                    .collect();
                s.insert_generations(&batch).await.unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    assert_eq!(
        s.key_usage_since("conc", 0).await.unwrap(),
        "0.8".parse::<Decimal>().unwrap(),
        "800 rows × 0.001"
    );
}

/// A batch larger than one statement (250 rows: three statements in one transaction),
/// with ids that were already stored among them: those are skipped, the rest all land.
async fn large_batches(s: Arc<dyn Store>) {
    let u = unique();
    let first: Vec<_> = (0..10)
        .map(|i| record(&format!("l-{u}-{i}"), Some(&u), "0.001", 1))
        .collect();
    s.insert_generations(&first).await.unwrap();
    let batch: Vec<_> = (0..250)
        .map(|i| record(&format!("l-{u}-{i}"), Some(&u), "0.001", 1))
        .collect();
    s.insert_generations(&batch).await.unwrap();
    assert_eq!(
        s.key_usage_since(&u, 0).await.unwrap(),
        "0.25".parse::<Decimal>().unwrap(),
        "250 distinct rows × 0.001"
    );
    assert!(
        s.get_generation(&format!("l-{u}-249"))
            .await
            .unwrap()
            .is_some()
    );
}

macro_rules! suite {
    ($backend:ident) => {
        mod $backend {
            use super::*;
            #[tokio::test]
            async fn keys() {
                keys_lifecycle(super::$backend().await).await;
            }
            #[tokio::test]
            async fn ledger() {
                ledger_round_trip(super::$backend().await).await;
            }
            #[tokio::test]
            async fn large_batch() {
                large_batches(super::$backend().await).await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn concurrency() {
                concurrent_batches(super::$backend().await).await;
            }
        }
    };
}

suite!(sqlite);
suite!(postgres);

#[tokio::test]
async fn migrations_are_idempotent_and_sqlite_persists() {
    let path = std::env::temp_dir().join(format!("switchyard-store-reopen-{}.db", unique()));
    let url = format!("sqlite://{}", path.display());
    let s = SqlStore::open(&url).await.unwrap();
    s.insert_generations(&[record("persist", None, "1", 1)])
        .await
        .unwrap();
    drop(s);
    let s = SqlStore::open(&url).await.unwrap();
    assert!(s.get_generation("persist").await.unwrap().is_some());
    assert!(SqlStore::open("mysql://x").await.is_err());
}

#[tokio::test]
async fn plaintext_is_never_stored() {
    let path = std::env::temp_dir().join(format!("switchyard-store-secret-{}.db", unique()));
    let s = SqlStore::open(&format!("sqlite://{}", path.display()))
        .await
        .unwrap();
    let (_, plaintext) = s
        .create_key(NewKey {
            name: "x".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    drop(s);
    let bytes = std::fs::read(&path).unwrap_or_default();
    let wal = std::fs::read(path.with_extension("db-wal")).unwrap_or_default();
    let secret = &plaintext.as_bytes()[9..];
    for b in [bytes, wal] {
        assert!(
            !b.windows(secret.len()).any(|w| w == secret),
            "plaintext key found on disk"
        );
    }
}
