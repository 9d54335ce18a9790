//! The shared (Redis) counters against the Redis on 127.0.0.1:6379
//! (`SWITCHYARD_TEST_REDIS_URL` overrides). Fails — never skips — when it is unreachable.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use switchyard_store::{RateMode, Reserved, Shared};

async fn shared() -> Shared {
    let url = std::env::var("SWITCHYARD_TEST_REDIS_URL")
        .unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
    let prefix = format!(
        "sy-test-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    );
    Shared::connect_with_prefix(&url, &prefix)
        .await
        .unwrap_or_else(|e| panic!("Redis at {url} is required: {e}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_reservations_take_exactly_the_limit() {
    let s = shared().await;
    let counter = s.budget_counter("k1", 0);
    let mut tasks = Vec::new();
    for _ in 0..100 {
        let (s, counter) = (s.clone(), counter.clone());
        tasks.push(tokio::spawn(async move {
            s.reserve(&counter, 7, 350, 0).await.unwrap()
        }));
    }
    let mut taken = 0;
    for t in tasks {
        if let Reserved::Taken(_) = t.await.unwrap() {
            taken += 1;
        }
    }
    assert_eq!(taken, 50, "350 / 7 reservations fit, no more");
    assert_eq!(
        s.reserve(&counter, 1, 350, 0).await.unwrap(),
        Reserved::Refused(350)
    );
    // Settle one for less than reserved, release another: room for exactly 3 + 7.
    assert_eq!(s.adjust(&counter, 3 - 7).await.unwrap(), Some(346));
    assert_eq!(s.adjust(&counter, -7).await.unwrap(), Some(339));
    assert_eq!(
        s.reserve(&counter, 11, 350, 0).await.unwrap(),
        Reserved::Taken(350)
    );
}

#[tokio::test]
async fn a_missing_counter_is_seeded_and_never_created_by_adjust() {
    let s = shared().await;
    let counter = s.budget_counter("k2", 1_700_000_000);
    // An adjustment of a counter that does not exist leaves it to be seeded.
    assert_eq!(s.adjust(&counter, -5).await.unwrap(), None);
    // Seeded with the ledger's spend (90), then 10 fits a limit of 100 and 1 more does not.
    assert_eq!(
        s.reserve(&counter, 10, 100, 90).await.unwrap(),
        Reserved::Taken(100)
    );
    // The seed is used only once: the counter is the truth from then on.
    assert_eq!(
        s.reserve(&counter, 1, 100, 0).await.unwrap(),
        Reserved::Refused(100)
    );
    // Large picodollar amounts (a $5,000 limit) stay exact.
    let big = s.budget_counter("k3", 0);
    let limit = 5_000_000_000_000_000i64;
    assert_eq!(
        s.reserve(&big, limit - 1, limit, 0).await.unwrap(),
        Reserved::Taken(limit - 1)
    );
    assert_eq!(
        s.reserve(&big, 2, limit, 0).await.unwrap(),
        Reserved::Refused(limit - 1)
    );
    assert_eq!(
        s.reserve(&big, 1, limit, 0).await.unwrap(),
        Reserved::Taken(limit)
    );
}

#[tokio::test]
async fn gcra_rate_limits() {
    let s = shared().await;
    // 3 requests per minute, a burst of a minute's worth: 3 pass, the 4th waits ~20 s.
    for _ in 0..3 {
        assert_eq!(s.rate("k", "rpm", 3, 1, RateMode::Take).await.unwrap(), 0);
    }
    let wait = s.rate("k", "rpm", 3, 1, RateMode::Take).await.unwrap();
    assert!(
        (1..=20_000_000).contains(&wait),
        "wait {wait} µs is at most one emission interval"
    );
    // Tokens: checked before, debited after; a debit beyond the budget puts it in debt.
    assert_eq!(
        s.rate("k", "tpm", 100, 1, RateMode::Check).await.unwrap(),
        0
    );
    assert_eq!(
        s.rate("k", "tpm", 100, 150, RateMode::Debit).await.unwrap(),
        0
    );
    assert!(s.rate("k", "tpm", 100, 1, RateMode::Check).await.unwrap() > 0);
}

#[tokio::test]
async fn key_changes_are_announced() {
    let s = shared().await;
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let follower = s.clone();
    tokio::spawn(async move {
        follower
            .follow_key_changes(move |h| {
                let _ = tx.send(h);
            })
            .await;
    });
    // The (re)subscription itself is announced as None: drop the whole cache.
    assert_eq!(rx.recv().await.unwrap(), None);
    s.announce_key_change("abc123").await.unwrap();
    let got = tokio::time::timeout(std::time::Duration::from_secs(5), rx.recv())
        .await
        .unwrap();
    assert_eq!(got.unwrap().as_deref(), Some("abc123"));
}
