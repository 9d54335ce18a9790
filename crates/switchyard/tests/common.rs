//! Test harness: start the real `switchyard` binary on port 0 against in-process mock
#![allow(clippy::unwrap_used, clippy::expect_used)]
//! providers (real HTTP servers on port 0), and helpers to talk to it.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub const ADMIN_KEY: &str = "sk-test-admin-key";

pub struct Gateway {
    child: Child,
    pub base: String,
    pub logs: Arc<Mutex<Vec<String>>>,
    config_path: PathBuf,
}

impl Gateway {
    /// Start `switchyard serve` with `config` (TOML). Panics with the logs if it fails.
    pub fn start(config: &str) -> Gateway {
        Self::start_with_env(config, &[])
    }

    pub fn start_with_env(config: &str, env: &[(&str, &str)]) -> Gateway {
        let config_path = std::env::temp_dir().join(format!(
            "switchyard-e2e-{}-{}.toml",
            std::process::id(),
            fastrand_u64()
        ));
        // Every gateway gets its own SQLite ledger unless the test names a store.
        let config = if config.contains("[storage]") {
            config.to_string()
        } else {
            let db = config_path.with_extension("db");
            format!("[storage]\nurl = \"sqlite://{}\"\n\n{config}", db.display())
        };
        std::fs::write(&config_path, config).unwrap();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_switchyard"));
        cmd.args(["serve", "--listen", "127.0.0.1:0", "--config"])
            .arg(&config_path)
            .env("SWITCHYARD_ADMIN_KEY", ADMIN_KEY)
            .env("SWITCHYARD_LOG", "info,switchyard_server=debug")
            .env_remove("SWITCHYARD_CONFIG")
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().unwrap();
        let stderr = child.stderr.take().unwrap();
        let logs = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        let logs2 = logs.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if let Some(i) = line.find("listening on http://") {
                    let addr: String = line[i + "listening on ".len()..]
                        .chars()
                        .take_while(|c| !c.is_whitespace() && *c != '\x1b')
                        .collect();
                    let _ = tx.send(addr);
                }
                logs2.lock().unwrap().push(line);
            }
        });
        let base = match rx.recv_timeout(Duration::from_secs(30)) {
            Ok(a) => a,
            Err(_) => {
                let _ = child.kill();
                panic!(
                    "gateway did not start; logs:\n{}",
                    logs.lock().unwrap().join("\n")
                );
            }
        };
        Gateway {
            child,
            base,
            logs,
            config_path,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Send SIGTERM and wait for the exit status.
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        for _ in 0..300 {
            if let Ok(Some(s)) = self.child.try_wait() {
                return s;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.child.kill();
        panic!("gateway did not exit after SIGTERM");
    }

    /// Reap a process that was killed from outside.
    pub fn terminate_nowait(&mut self) -> Option<std::process::ExitStatus> {
        self.child.wait().ok()
    }

    pub fn logs(&self) -> String {
        self.logs.lock().unwrap().join("\n")
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.config_path);
        for ext in ["db", "db-wal", "db-shm"] {
            let _ = std::fs::remove_file(self.config_path.with_extension(ext));
        }
    }
}

/// A name unique within this test process (the pid separates processes): a counter, so two
/// gateways started at the same instant never share a config or database file.
fn fastrand_u64() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    N.fetch_add(1, Ordering::Relaxed)
}

/// A config with one OpenAI-kind provider per (slug, base_url) and one model
/// `test/echo` served by each of them in order, plus `test/other` served by the last.
pub fn config(providers: &[(&str, &str)], extra: &str) -> String {
    let mut s = String::from("[server]\nkeepalive_seconds = 5\n\n");
    for (slug, url) in providers {
        s.push_str(&format!(
            "[providers.{slug}]\nkind = \"openai\"\nbase_url = \"{url}\"\napi_key = \"sk-upstream-{slug}\"\ntimeouts = {{ first_byte_ms = 2000, idle_ms = 2000 }}\n\n"
        ));
    }
    s.push_str(extra);
    s.push_str("\n[[models]]\nid = \"test/echo\"\nname = \"Test: Echo\"\ncontext_length = 8192\n");
    for (slug, _) in providers {
        s.push_str(&format!(
            "[[models.endpoints]]\nprovider = \"{slug}\"\nmodel = \"mock-echo-{slug}\"\npricing = {{ prompt = \"0.000001\", completion = \"0.000002\" }}\n"
        ));
    }
    if let Some((slug, _)) = providers.last() {
        s.push_str(&format!(
            "\n[[models]]\nid = \"test/other\"\nname = \"Test: Other\"\ncontext_length = 8192\n[[models.endpoints]]\nprovider = \"{slug}\"\nmodel = \"mock-other\"\npricing = {{ prompt = \"0.000003\", completion = \"0.000004\" }}\n"
        ));
    }
    s
}

pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}

pub fn chat_body(model: &str, text: &str, stream: bool) -> serde_json::Value {
    serde_json::json!({
        "model": model,
        "messages": [{"role": "user", "content": text}],
        "stream": stream,
    })
}

/// Parse an SSE body into (comments, data payloads).
pub fn parse_sse(body: &str) -> (Vec<String>, Vec<String>) {
    let mut comments = Vec::new();
    let mut datas = Vec::new();
    for event in body.split("\n\n") {
        for line in event.lines() {
            if let Some(c) = line.strip_prefix(':') {
                comments.push(c.trim().to_string());
            } else if let Some(d) = line.strip_prefix("data: ") {
                datas.push(d.to_string());
            }
        }
    }
    (comments, datas)
}

/// A PostgreSQL URL with a fresh schema (the server at 127.0.0.1:5432, or
/// `SWITCHYARD_TEST_PG_URL`); fails — never skips — when PostgreSQL is unreachable.
pub fn postgres_url() -> String {
    let base = std::env::var("SWITCHYARD_TEST_PG_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
    let schema = format!(
        "sy_e2e_{}_{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos()
    );
    let out = std::process::Command::new("psql")
        .args([
            base.as_str(),
            "-v",
            "ON_ERROR_STOP=1",
            "-c",
            &format!("CREATE SCHEMA {schema}"),
        ])
        .output()
        .expect("psql is required for the PostgreSQL tests");
    assert!(
        out.status.success(),
        "PostgreSQL at {base} is required: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let sep = if base.contains('?') { '&' } else { '?' };
    format!("{base}{sep}options=-c%20search_path%3D{schema}")
}

/// The Redis at 127.0.0.1:6379 (or `SWITCHYARD_TEST_REDIS_URL`); fails — never skips — when
/// it is unreachable.
pub fn redis_url() -> String {
    let url = std::env::var("SWITCHYARD_TEST_REDIS_URL")
        .unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
    let rest = url.trim_start_matches("redis://");
    let hostport = rest
        .rsplit('@')
        .next()
        .unwrap_or(rest)
        .split('/')
        .next()
        .unwrap_or(rest);
    let addr: std::net::SocketAddr = hostport
        .parse()
        .unwrap_or_else(|e| panic!("SWITCHYARD_TEST_REDIS_URL {url:?}: {e}"));
    std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(2))
        .unwrap_or_else(|e| panic!("Redis at {url} is required for the multi-node tests: {e}"));
    url
}

/// Create an API key through the management API; returns the plaintext and its `data`.
pub async fn create_key(gw: &Gateway, body: serde_json::Value) -> (String, serde_json::Value) {
    let r = client()
        .post(gw.url("/api/v1/keys"))
        .bearer_auth(ADMIN_KEY)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let v: serde_json::Value = r.json().await.unwrap();
    (v["key"].as_str().unwrap().to_string(), v["data"].clone())
}

/// Every generation id is in the ledger (asked of `nodes` in turn, with the key that made
/// it), and the key's recorded usage is exactly `spent`, the sum of what clients were told.
pub async fn assert_ledger_has(
    nodes: &[&Gateway],
    key: &str,
    hash: &str,
    ids: &[String],
    spent: rust_decimal::Decimal,
) {
    for (i, id) in ids.iter().enumerate() {
        let r = client()
            .get(nodes[i % nodes.len()].url(&format!("/api/v1/generation?id={id}")))
            .bearer_auth(key)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{id} missing from the ledger");
    }
    let k: serde_json::Value = client()
        .get(nodes[0].url(&format!("/api/v1/keys/{hash}")))
        .bearer_auth(ADMIN_KEY)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        k["data"]["usage"]
            .to_string()
            .parse::<rust_decimal::Decimal>()
            .unwrap(),
        spent
    );
}
