//! End-to-end multi-node: two real gateway processes on one PostgreSQL and one Redis
//! (`storage.url = "postgres://…"`, `storage.redis_url`) enforce one budget, one rate limit
//! and see key changes at once. Both services must be running (CI starts them): these
//! tests fail, never skip, without them.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::{Duration, Instant};

use common::{
    ADMIN_KEY, Gateway, assert_ledger_has, chat_body, client, config, postgres_url, redis_url,
};
use rust_decimal::Decimal;
use serde_json::{Value, json};
use switchyard_mock_provider::{MockConfig, spawn};

/// Two nodes sharing one PostgreSQL schema and the Redis.
fn two_nodes(mock_base: &str) -> (Gateway, Gateway) {
    let cfg = format!(
        "[storage]\nurl = \"{}\"\nredis_url = \"{}\"\n\n{}",
        postgres_url(),
        redis_url(),
        config(&[("mock", mock_base)], "")
    );
    let a = Gateway::start(&cfg);
    let b = Gateway::start(&cfg);
    assert!(
        a.logs().contains("shared state ready (redis)"),
        "node a did not connect to redis:\n{}",
        a.logs()
    );
    (a, b)
}

async fn create_key(gw: &Gateway, body: Value) -> (String, String) {
    let (key, data) = common::create_key(gw, body).await;
    (key, data["hash"].as_str().unwrap().to_string())
}

async fn chat(gw: &Gateway, key: &str) -> (u16, Value) {
    let r = client()
        .post(gw.url("/api/v1/chat/completions"))
        .bearer_auth(key)
        .json(&json!({"model": "test/echo", "max_tokens": 10, "messages": [{"role": "user", "content": "hi"}]}))
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap())
}

/// 240 requests, 8 at a time on each of two nodes, against a key whose limit covers 40
/// worst cases (about 150 real answers). Each node's half (120 answers) fits within the
/// limit on its own, so per-node budgets would let all 240 through — about 1.6x the
/// limit; only a shared budget stops the spend at the limit.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_nodes_never_overspend_one_key() {
    let m = spawn(MockConfig::default()).await.unwrap();
    let (a, b) = two_nodes(&m.openai_base_url());
    // Worst case as in keys.rs: (16 + 5) prompt tokens at 1e-6 + 10 completion at 2e-6.
    let per_request_worst = Decimal::new(16 + 5, 6) + Decimal::new(20, 6);
    let limit = per_request_worst * Decimal::from(40);
    let (key, hash) = create_key(
        &a,
        json!({"name": "shared-budget", "limit": limit.to_string().parse::<f64>().unwrap()}),
    )
    .await;
    let mut tasks = Vec::new();
    for node in [a.base.clone(), b.base.clone()] {
        for _ in 0..8 {
            let (url, key) = (format!("{node}/api/v1/chat/completions"), key.clone());
            tasks.push(tokio::spawn(async move {
                let mut out = Vec::new();
                for _ in 0..15 {
                    let r = client()
                        .post(&url)
                        .bearer_auth(&key)
                        .json(&json!({"model": "test/echo", "max_tokens": 10, "messages": [{"role": "user", "content": "hi"}]}))
                        .send()
                        .await
                        .unwrap();
                    let status = r.status().as_u16();
                    out.push((status, r.json::<Value>().await.unwrap()));
                }
                out
            }));
        }
    }
    let (mut ok_ids, mut refused, mut spent) = (Vec::new(), 0, Decimal::ZERO);
    for result in futures::future::join_all(tasks).await {
        for outcome in result.unwrap() {
            match outcome {
                (200, v) => {
                    spent += v["usage"]["cost"].to_string().parse::<Decimal>().unwrap();
                    ok_ids.push(v["id"].as_str().unwrap().to_string());
                }
                (402, v) => {
                    refused += 1;
                    assert_eq!(v["error"]["code"], 402);
                }
                (other, v) => panic!("unexpected status {other}: {v}"),
            }
        }
    }
    assert!(
        ok_ids.len() >= 40,
        "the limit covers 40 worst cases: {} passed",
        ok_ids.len()
    );
    assert!(
        refused > 0,
        "the demand is 1.6x the limit: some must be refused"
    );
    eprintln!(
        "ok={} refused={refused} spent={spent} limit={limit}",
        ok_ids.len()
    );
    assert!(spent <= limit, "spent {spent} > limit {limit}");
    // Every completed request is in the shared ledger (asked of both nodes), and the key's
    // recorded usage is the sum of the costs the clients were told.
    assert_ledger_has(&[&a, &b], &key, &hash, &ok_ids, spent).await;
}

/// A key disabled (or deleted) through one node stops working on the other at once — not
/// after the other node's 30 s cache TTL.
#[tokio::test]
async fn key_changes_reach_every_node() {
    let m = spawn(MockConfig::default()).await.unwrap();
    let (a, b) = two_nodes(&m.openai_base_url());
    let (key, hash) = create_key(&a, json!({"name": "to-disable"})).await;
    assert_eq!(chat(&b, &key).await.0, 200, "node b caches the key");
    let r = client()
        .patch(a.url(&format!("/api/v1/keys/{hash}")))
        .bearer_auth(ADMIN_KEY)
        .json(&json!({"disabled": true}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    // Pub/sub delivery is asynchronous: allow it a moment, far below the cache TTL.
    let deadline = Instant::now() + Duration::from_secs(3);
    loop {
        let (status, v) = chat(&b, &key).await;
        if status == 401 {
            assert_eq!(v["error"]["code"], 401);
            break;
        }
        assert_eq!(status, 200);
        assert!(
            Instant::now() < deadline,
            "node b still serves a key disabled on node a"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // The other way round: a key created and cached on a, deleted through b.
    let (key2, hash2) = create_key(&b, json!({"name": "to-delete"})).await;
    assert_eq!(chat(&a, &key2).await.0, 200);
    let r = client()
        .delete(b.url(&format!("/api/v1/keys/{hash2}")))
        .bearer_auth(ADMIN_KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let deadline = Instant::now() + Duration::from_secs(3);
    while chat(&a, &key2).await.0 != 401 {
        assert!(
            Instant::now() < deadline,
            "node a still serves a deleted key"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A key's requests-per-minute limit counts the requests of every node.
#[tokio::test]
async fn rate_limits_count_every_node() {
    let m = spawn(MockConfig::default()).await.unwrap();
    let (a, b) = two_nodes(&m.openai_base_url());
    let (key, _) = create_key(
        &a,
        json!({"name": "shared-rl", "rate_limit": {"requests_per_minute": 4}}),
    )
    .await;
    let send = |gw: &Gateway| {
        client()
            .post(gw.url("/api/v1/chat/completions"))
            .bearer_auth(&key)
            .json(&chat_body("test/echo", "hi", false))
            .send()
    };
    for gw in [&a, &b, &a, &b] {
        assert_eq!(send(gw).await.unwrap().status(), 200);
    }
    for gw in [&a, &b] {
        let r = send(gw).await.unwrap();
        assert_eq!(
            r.status(),
            429,
            "the fifth request within a minute, on any node"
        );
        assert!(r.headers().contains_key("retry-after"));
    }
}
