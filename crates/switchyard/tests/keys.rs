//! End-to-end: API keys, budgets and the ledger through the real binary (SQLite here; the
//! store's own suite covers PostgreSQL).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{
    ADMIN_KEY, Gateway, assert_ledger_has, chat_body, client, config, create_key, postgres_url,
};
use rust_decimal::Decimal;
use serde_json::{Value, json};
use switchyard_mock_provider::{MockConfig, spawn};

#[tokio::test]
async fn key_management_and_usage() {
    let m = spawn(MockConfig::default()).await.unwrap();
    let gw = Gateway::start(&config(&[("mock", &m.openai_base_url())], ""));
    let (key, data) = create_key(
        &gw,
        json!({"name": "ci", "limit": 1, "limit_reset": "monthly"}),
    )
    .await;
    assert!(key.starts_with("sk-sy-v1-"));
    let hash = data["hash"].as_str().unwrap().to_string();
    assert_eq!(data["limit"], 1);
    assert_eq!(data["limit_reset"], "monthly");
    assert_eq!(data["usage"], 0);
    assert!(!data.to_string().contains(&key), "plaintext only in `key`");

    // Inference with the new key; its generation is visible to it, not to another key.
    let r = client()
        .post(gw.url("/api/v1/chat/completions"))
        .bearer_auth(&key)
        .json(&chat_body("test/echo", "hello", false))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    let gen_id = v["id"].as_str().unwrap().to_string();
    let cost: Decimal = v["usage"]["cost"].to_string().parse().unwrap();
    let g: Value = client()
        .get(gw.url(&format!("/api/v1/generation?id={gen_id}")))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        g["data"]["id"], gen_id,
        "acknowledged generations are already in the ledger"
    );
    assert_eq!(g["data"]["model"], "test/echo");
    assert_eq!(g["data"]["provider_name"], "Mock");
    assert_eq!(g["data"]["streamed"], false);
    assert_eq!(
        g["data"]["total_cost"]
            .to_string()
            .parse::<Decimal>()
            .unwrap(),
        cost
    );
    let (other, _) = create_key(&gw, json!({"name": "other"})).await;
    let r = client()
        .get(gw.url(&format!("/api/v1/generation?id={gen_id}")))
        .bearer_auth(&other)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);

    // /key and /auth/key report usage.
    for path in ["/api/v1/key", "/api/v1/auth/key"] {
        let k: Value = client()
            .get(gw.url(path))
            .bearer_auth(&key)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(
            k["data"]["usage"].to_string().parse::<Decimal>().unwrap(),
            cost,
            "{k}"
        );
        assert_eq!(
            k["data"]["limit_remaining"]
                .to_string()
                .parse::<Decimal>()
                .unwrap(),
            Decimal::ONE - cost
        );
    }
    let c: Value = client()
        .get(gw.url("/api/v1/credits"))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(c["data"]["total_usage"].as_f64().unwrap() > 0.0);

    // Management needs the admin key.
    let r = client()
        .get(gw.url("/api/v1/keys"))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    let list: Value = client()
        .get(gw.url("/api/v1/keys"))
        .bearer_auth(ADMIN_KEY)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(list["data"].as_array().unwrap().len(), 2);

    // Disabling stops the key at once; re-enabling restores it; deleting removes it.
    let r = client()
        .patch(gw.url(&format!("/api/v1/keys/{hash}")))
        .bearer_auth(ADMIN_KEY)
        .json(&json!({"disabled": true}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = client()
        .post(gw.url("/api/v1/chat/completions"))
        .bearer_auth(&key)
        .json(&chat_body("test/echo", "x", false))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    client()
        .patch(gw.url(&format!("/api/v1/keys/{hash}")))
        .bearer_auth(ADMIN_KEY)
        .json(&json!({"disabled": false}))
        .send()
        .await
        .unwrap();
    let r = client()
        .post(gw.url("/api/v1/chat/completions"))
        .bearer_auth(&key)
        .json(&chat_body("test/echo", "x", false))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = client()
        .delete(gw.url(&format!("/api/v1/keys/{hash}")))
        .bearer_auth(ADMIN_KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(r.json::<Value>().await.unwrap(), json!({"deleted": true}));
    let r = client()
        .post(gw.url("/api/v1/chat/completions"))
        .bearer_auth(&key)
        .json(&chat_body("test/echo", "x", false))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let r = client()
        .get(gw.url(&format!("/api/v1/keys/{hash}")))
        .bearer_auth(ADMIN_KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    // Bad input is a clear 400.
    let r = client()
        .post(gw.url("/api/v1/keys"))
        .bearer_auth(ADMIN_KEY)
        .json(&json!({"limit": 5}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let r = client()
        .post(gw.url("/api/v1/keys"))
        .bearer_auth(ADMIN_KEY)
        .json(&json!({"name": "x", "limit_reset": "hourly"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
}

/// 200 simultaneous requests against a key whose limit covers about 50: spend never exceeds
/// the limit, and every completed request has its ledger row. On SQLite and PostgreSQL.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_requests_never_overspend() {
    concurrent_requests_never_overspend_on(None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_requests_never_overspend_postgres() {
    concurrent_requests_never_overspend_on(Some(postgres_url())).await;
}

async fn concurrent_requests_never_overspend_on(storage: Option<String>) {
    let m = spawn(MockConfig::default()).await.unwrap();
    let mut cfg = config(&[("mock", &m.openai_base_url())], "");
    if let Some(url) = &storage {
        cfg = format!("[storage]\nurl = \"{url}\"\n\n{cfg}");
    }
    let gw = Gateway::start(&cfg);
    // Worst case per request at max_tokens=10 and a short prompt: (16+ceil(bytes/2)) prompt
    // tokens at 1e-6 + 10 completion tokens at 2e-6 ≈ $0.000043; the real cost is lower.
    let body = json!({"model": "test/echo", "max_tokens": 10, "messages": [{"role": "user", "content": "hi"}]});
    let per_request_worst = Decimal::new(16 + 5, 6) + Decimal::new(20, 6);
    let limit = per_request_worst * Decimal::from(50);
    let (key, data) = create_key(
        &gw,
        json!({"name": "budget", "limit": limit.to_string().parse::<f64>().unwrap()}),
    )
    .await;
    let hash = data["hash"].as_str().unwrap().to_string();
    let mut tasks = Vec::new();
    for _ in 0..200 {
        let (url, key, body) = (
            gw.url("/api/v1/chat/completions"),
            key.clone(),
            body.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let r = client()
                .post(url)
                .bearer_auth(key)
                .json(&body)
                .send()
                .await
                .unwrap();
            let status = r.status().as_u16();
            let v: Value = r.json().await.unwrap();
            (status, v)
        }));
    }
    let mut ok_ids = Vec::new();
    let mut refused = 0;
    let mut spent = Decimal::ZERO;
    for t in tasks {
        let (status, v) = t.await.unwrap();
        match status {
            200 => {
                spent += v["usage"]["cost"].to_string().parse::<Decimal>().unwrap();
                ok_ids.push(v["id"].as_str().unwrap().to_string());
            }
            402 => {
                refused += 1;
                assert_eq!(v["error"]["code"], 402);
            }
            other => panic!("unexpected status {other}: {v}"),
        }
    }
    assert!(
        ok_ids.len() >= 50,
        "the limit covers at least 50 worst cases: {} passed",
        ok_ids.len()
    );
    assert!(refused > 0, "some requests must be refused");
    assert!(spent <= limit, "spent {spent} > limit {limit}");
    // Every completed request is in the ledger, and the key's usage matches the sum.
    assert_ledger_has(&[&gw], &key, &hash, &ok_ids, spent).await;
}

#[tokio::test]
async fn cli_keys_create_and_list() {
    let db = std::env::temp_dir().join(format!("switchyard-cli-{}.db", std::process::id()));
    let cfg = std::env::temp_dir().join(format!("switchyard-cli-{}.toml", std::process::id()));
    std::fs::write(
        &cfg,
        format!("[storage]\nurl = \"sqlite://{}\"\n", db.display()),
    )
    .unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_switchyard"))
        .args([
            "keys", "create", "--name", "cli-key", "--limit", "2.5", "--config",
        ])
        .arg(&cfg)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let key = String::from_utf8(out.stdout).unwrap().trim().to_string();
    assert!(key.starts_with("sk-sy-v1-") && !key.contains('\n'));
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_switchyard"))
        .args(["keys", "list", "--config"])
        .arg(&cfg)
        .output()
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("cli-key") && text.contains("2.5"), "{text}");
    assert!(!text.contains(&key), "never plaintext");
    let bad = std::process::Command::new(env!("CARGO_BIN_EXE_switchyard"))
        .args([
            "keys",
            "create",
            "--name",
            "x",
            "--limit-reset",
            "hourly",
            "--config",
        ])
        .arg(&cfg)
        .output()
        .unwrap();
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("--limit-reset"));
    for p in [
        db.clone(),
        cfg,
        db.with_extension("db-wal"),
        db.with_extension("db-shm"),
    ] {
        let _ = std::fs::remove_file(p);
    }
}

/// Load running, `kill -9` the gateway, restart it on the same database: every generation id
/// a client received is in the ledger.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn acknowledged_generations_survive_kill_9() {
    let m = spawn(MockConfig::default()).await.unwrap();
    let db = std::env::temp_dir().join(format!("switchyard-crash-{}.db", std::process::id()));
    let cfg = format!(
        "[storage]\nurl = \"sqlite://{}\"\n\n{}",
        db.display(),
        config(&[("mock", &m.openai_base_url())], "")
    );
    let mut gw = Gateway::start(&cfg);
    let url = gw.url("/api/v1/chat/completions");
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut tasks = Vec::new();
    for _ in 0..16 {
        let (url, stop) = (url.clone(), stop.clone());
        tasks.push(tokio::spawn(async move {
            let mut ids = Vec::new();
            let c = client();
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let Ok(r) = c
                    .post(&url)
                    .bearer_auth(ADMIN_KEY)
                    .json(&chat_body("test/echo", "hi", false))
                    .send()
                    .await
                else {
                    break;
                };
                let Ok(v) = r.json::<Value>().await else {
                    break;
                };
                if let Some(id) = v["id"].as_str() {
                    ids.push(id.to_string());
                }
            }
            ids
        }));
    }
    tokio::time::sleep(std::time::Duration::from_millis(800)).await;
    let status = std::process::Command::new("kill")
        .args(["-9", &gw.pid().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let mut received = Vec::new();
    for t in tasks {
        received.extend(t.await.unwrap());
    }
    assert!(received.len() > 20, "load ran: {}", received.len());
    let _ = gw.terminate_nowait();
    // Restart on the same database and look every id up.
    let gw2 = Gateway::start(&cfg);
    for id in &received {
        let r = client()
            .get(gw2.url(&format!("/api/v1/generation?id={id}")))
            .bearer_auth(ADMIN_KEY)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{id} was acknowledged but lost");
    }
    drop(gw2);
    for ext in ["db", "db-wal", "db-shm"] {
        let _ = std::fs::remove_file(db.with_extension(ext));
    }
}

#[tokio::test]
async fn credit_pool_is_enforced() {
    let m = spawn(MockConfig::default()).await.unwrap();
    // A pool smaller than one request's cost: the first request passes (nothing spent yet),
    // the next ones get 402.
    let cfg = config(&[("mock", &m.openai_base_url())], "")
        .replace("[server]\n", "[server]\ncredits = \"0.000001\"\n");
    let gw = Gateway::start(&cfg);
    let send = || {
        client()
            .post(gw.url("/api/v1/chat/completions"))
            .bearer_auth(ADMIN_KEY)
            .json(&chat_body("test/echo", "hello there", false))
            .send()
    };
    assert_eq!(send().await.unwrap().status(), 200);
    let r = send().await.unwrap();
    assert_eq!(r.status(), 402);
    let v: Value = r.json().await.unwrap();
    assert!(
        v["error"]["message"].as_str().unwrap().contains("credits"),
        "{v}"
    );
    let c: Value = client()
        .get(gw.url("/api/v1/credits"))
        .bearer_auth(ADMIN_KEY)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(c["data"]["total_credits"].as_f64(), Some(0.000001));
}

#[tokio::test]
async fn per_key_rate_limits() {
    let m = spawn(MockConfig::default()).await.unwrap();
    let gw = Gateway::start(&config(&[("mock", &m.openai_base_url())], ""));
    let (key, data) = create_key(
        &gw,
        json!({"name": "rl", "rate_limit": {"requests_per_minute": 3}}),
    )
    .await;
    assert_eq!(data["rate_limit"]["requests_per_minute"], 3);
    let send = |k: String| {
        client()
            .post(gw.url("/api/v1/chat/completions"))
            .bearer_auth(k)
            .json(&chat_body("test/echo", "hi", false))
            .send()
    };
    for _ in 0..3 {
        assert_eq!(send(key.clone()).await.unwrap().status(), 200);
    }
    let r = send(key.clone()).await.unwrap();
    assert_eq!(r.status(), 429);
    let retry: u64 = r.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&retry));
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error"]["code"], 429);
    // Tokens per minute: a budget smaller than one answer admits one request, then 429.
    let (tkey, tdata) = create_key(
        &gw,
        json!({"name": "tpm", "rate_limit": {"tokens_per_minute": 5}}),
    )
    .await;
    assert_eq!(send(tkey.clone()).await.unwrap().status(), 200);
    assert_eq!(send(tkey.clone()).await.unwrap().status(), 429);
    // Lifting the limit takes effect at once.
    let hash = tdata["hash"].as_str().unwrap();
    let r = client()
        .patch(gw.url(&format!("/api/v1/keys/{hash}")))
        .bearer_auth(ADMIN_KEY)
        .json(&json!({"rate_limit": {"tokens_per_minute": null}}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(send(tkey).await.unwrap().status(), 200);
    let r = client()
        .post(gw.url("/api/v1/keys"))
        .bearer_auth(ADMIN_KEY)
        .json(&json!({"name": "x", "rate_limit": {"requests_per_minute": -1}}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
}

#[tokio::test]
async fn finished_streams_are_in_the_ledger_before_done() {
    let m = spawn(MockConfig::default()).await.unwrap();
    let gw = Gateway::start(&config(&[("mock", &m.openai_base_url())], ""));
    let (key, _) = create_key(&gw, json!({"name": "s"})).await;
    for _ in 0..5 {
        let r = client()
            .post(gw.url("/api/v1/chat/completions"))
            .bearer_auth(&key)
            .json(&chat_body("test/echo", "hi", true))
            .send()
            .await
            .unwrap();
        let id = r.headers()["x-generation-id"].to_str().unwrap().to_string();
        let body = r.text().await.unwrap();
        assert!(body.trim_end().ends_with("data: [DONE]"));
        // No retry loop: by the time [DONE] arrived, the record was committed.
        let g = client()
            .get(gw.url(&format!("/api/v1/generation?id={id}")))
            .bearer_auth(&key)
            .send()
            .await
            .unwrap();
        assert_eq!(g.status(), 200, "{id}");
        let v: Value = g.json().await.unwrap();
        assert_eq!(v["data"]["streamed"], true);
        assert_eq!(v["data"]["finish_reason"], "stop");
    }
}
