//! `switchyard`: the gateway binary. CLI parsing, config loading, wiring and signals;
//! everything else lives in the library crates.
#![forbid(unsafe_code)]

mod config;

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::{Parser, Subcommand};
use rust_decimal::Decimal;
use switchyard_server::{Gateway, GatewaySettings};

use crate::config::{Config, ProcessEnv};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "switchyard",
    version,
    about = "Switchyard: a self-hostable, OpenRouter-compatible LLM gateway"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the gateway.
    Serve {
        /// Config file (TOML). Without one: embedded defaults and providers from environment keys.
        #[arg(long, env = "SWITCHYARD_CONFIG")]
        config: Option<PathBuf>,
        /// Listen address, overriding `server.listen` (e.g. 127.0.0.1:8080, port 0 for any).
        #[arg(long)]
        listen: Option<std::net::SocketAddr>,
    },
    /// Validate the configuration and exit.
    Check {
        #[arg(long, env = "SWITCHYARD_CONFIG")]
        config: Option<PathBuf>,
    },
    /// List the model catalog: id, context length, prices, providers.
    Models {
        #[arg(long, env = "SWITCHYARD_CONFIG")]
        config: Option<PathBuf>,
    },
    /// Manage API keys in the configured store.
    Keys {
        #[command(subcommand)]
        action: KeysAction,
    },
}

#[derive(Subcommand)]
enum KeysAction {
    /// Create a key; prints the plaintext key alone on stdout (shown only this once).
    Create {
        #[arg(long)]
        name: String,
        /// Spend limit in USD.
        #[arg(long)]
        limit: Option<Decimal>,
        /// When the limit resets: daily, weekly or monthly.
        #[arg(long)]
        limit_reset: Option<String>,
        #[arg(long, env = "SWITCHYARD_CONFIG")]
        config: Option<PathBuf>,
    },
    /// List keys (hash, name, limit, usage, disabled) — never plaintext.
    List {
        #[arg(long, env = "SWITCHYARD_CONFIG")]
        config: Option<PathBuf>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Serve { config, listen } => serve(config, listen),
        Command::Check { config } => check(config),
        Command::Models { config } => models(config),
        Command::Keys { action } => keys(action),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(msg) => {
            for line in msg.lines() {
                eprintln!("error: {line}");
            }
            ExitCode::FAILURE
        }
    }
}

fn load(path: Option<PathBuf>) -> Result<Config, String> {
    config::load(path.as_deref(), &ProcessEnv).map_err(|e| e.to_string())
}

fn check(path: Option<PathBuf>) -> Result<(), String> {
    let c = load(path)?;
    let source = c
        .source
        .as_ref()
        .map_or("(defaults)".to_string(), |p| p.display().to_string());
    println!(
        "{source}: OK — {} provider(s), {} model(s), listening on {}",
        c.providers.len(),
        c.catalog.len(),
        c.listen
    );
    println!(
        "storage: {}{}",
        redact_url(&c.storage_url),
        c.redis_url
            .as_deref()
            .map_or(String::new(), |r| format!(", redis: {}", redact_url(r)))
    );
    for p in &c.providers {
        if !p.kind.has_adapter() {
            println!(
                "note: provider {} (kind {}) is accepted but this build has no adapter for its kind yet; it will not be routed to",
                p.slug,
                p.kind.as_str()
            );
        }
    }
    Ok(())
}

fn keys(action: KeysAction) -> Result<(), String> {
    let config = match &action {
        KeysAction::Create { config, .. } | KeysAction::List { config } => config.clone(),
    };
    let c = load(config)?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the async runtime: {e}"))?;
    rt.block_on(async move {
        let store = switchyard_store::open(&c.storage_url)
            .await
            .map_err(|e| format!("storage {}: {e}", redact_url(&c.storage_url)))?;
        match action {
            KeysAction::Create {
                name,
                limit,
                limit_reset,
                ..
            } => {
                let limit_reset = match limit_reset.as_deref() {
                    None => None,
                    Some(r) => Some(switchyard_store::LimitReset::parse(r).ok_or_else(|| {
                        format!("--limit-reset must be daily, weekly or monthly, got {r:?}")
                    })?),
                };
                if limit.is_some_and(|l| l.is_sign_negative()) {
                    return Err("--limit must not be negative".to_string());
                }
                let (_, plaintext) = store
                    .create_key(switchyard_store::NewKey {
                        name,
                        limit,
                        limit_reset,
                        ..Default::default()
                    })
                    .await
                    .map_err(|e| e.to_string())?;
                println!("{plaintext}");
            }
            KeysAction::List { .. } => {
                let now = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_secs() as i64);
                println!(
                    "{:<64}  {:<24} {:>12} {:>14}  DISABLED",
                    "HASH", "NAME", "LIMIT $", "USAGE $"
                );
                let mut offset = 0;
                loop {
                    let page = store
                        .list_keys(offset, 100, true)
                        .await
                        .map_err(|e| e.to_string())?;
                    if page.is_empty() {
                        break;
                    }
                    offset += page.len() as u64;
                    for k in page {
                        let usage = store
                            .key_usage(&k.hash, now)
                            .await
                            .map_err(|e| e.to_string())?;
                        println!(
                            "{:<64}  {:<24} {:>12} {:>14}  {}",
                            k.hash,
                            k.name,
                            k.limit
                                .map_or("-".to_string(), |l| l.normalize().to_string()),
                            usage.total.normalize().to_string(),
                            if k.disabled { "yes" } else { "no" }
                        );
                    }
                }
            }
        }
        Ok(())
    })
}

fn per_million(d: Decimal) -> String {
    (d * Decimal::from(1_000_000)).normalize().to_string()
}

fn models(path: Option<PathBuf>) -> Result<(), String> {
    let c = load(path)?;
    println!(
        "{:<48} {:>9} {:>12} {:>12}  PROVIDERS",
        "ID", "CONTEXT", "PROMPT $/M", "COMPL. $/M"
    );
    for m in c.catalog.models() {
        let first = m.endpoints.first();
        let providers: Vec<String> = m
            .endpoints
            .iter()
            .map(|e| {
                let configured = c.providers.iter().any(|p| p.slug == e.provider);
                format!("{}{}", e.provider, if configured { "*" } else { "" })
            })
            .collect();
        println!(
            "{:<48} {:>9} {:>12} {:>12}  {}",
            m.id,
            m.context_length,
            first.map_or("-".into(), |e| per_million(e.pricing.prompt.0)),
            first.map_or("-".into(), |e| per_million(e.pricing.completion.0)),
            providers.join(",")
        );
    }
    println!("(* = provider configured)");
    Ok(())
}

fn serve(path: Option<PathBuf>, listen: Option<std::net::SocketAddr>) -> Result<(), String> {
    init_tracing();
    let c = load(path)?;
    let addr = listen.unwrap_or(c.listen);
    if c.admin_key.is_none() {
        tracing::warn!(
            "no admin key set (server.admin_key or SWITCHYARD_ADMIN_KEY): every inference request will get 401"
        );
    }
    for p in &c.providers {
        if !p.kind.has_adapter() {
            tracing::warn!(provider = %p.slug, kind = p.kind.as_str(), "no adapter for this provider kind in this build; it will not be routed to");
        }
    }
    let settings = GatewaySettings {
        max_body_bytes: c.max_body_bytes,
        metrics_public: c.metrics_public,
        keepalive_interval: c.keepalive,
        hedge_after: c.hedge_after,
        max_retry_after: c.max_retry_after,
        default_provider: c.default_provider.clone(),
    };
    // The store and the ledger writer live on a small runtime of their own (the workers
    // are single-threaded runtimes; database connections must not depend on one of them).
    let store_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("switchyard-store")
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the store runtime: {e}"))?;
    let (accounts, ledger_writer, auth): (_, _, Arc<dyn switchyard_server::auth::Authenticator>) =
        if c.ledger {
            let store = store_rt
                .block_on(switchyard_store::open(&c.storage_url))
                .map_err(|e| format!("storage {}: {e}", redact_url(&c.storage_url)))?;
            let spent = store_rt
                .block_on(store.total_usage())
                .map_err(|e| format!("storage {}: {e}", redact_url(&c.storage_url)))?;
            tracing::info!(backend = store.backend(), "storage ready");
            // Multi-node: budgets, rate limits and key changes shared through Redis. A
            // configured Redis that cannot be reached is a start-up error, not a silent
            // fall-back to per-node limits.
            let shared = match &c.redis_url {
                Some(url) => {
                    let shared = store_rt
                        .block_on(switchyard_store::Shared::connect(url))
                        .map_err(|e| format!("storage.redis_url: {e}"))?;
                    tracing::info!(
                        "shared state ready (redis): budgets, rate limits and key changes are shared across nodes"
                    );
                    Some(shared)
                }
                None => None,
            };
            let (accounts, writer) = switchyard_server::accounts::Accounts::start(
                store,
                store_rt.handle().clone(),
                c.credits,
                spent,
                shared,
            );
            let auth = Arc::new(switchyard_server::auth::KeyAuth::new(
                c.admin_key.clone(),
                accounts.clone(),
            ));
            (Some(accounts), Some(writer), auth)
        } else {
            tracing::warn!(
                "storage.ledger = false: no API keys, no usage ledger; the admin key authorises inference"
            );
            (
                None,
                None,
                Arc::new(switchyard_server::auth::AdminKeyAuth::new(
                    c.admin_key.clone(),
                )),
            )
        };
    let (catalog, providers) = (c.catalog, c.providers);
    let (n_providers, n_models) = (providers.len(), catalog.len());
    let shared = switchyard_server::NodeShared {
        health: switchyard_router::HealthRegistry::new(c.health),
        sticky: Default::default(),
        accounts,
    };
    let make_state = move || {
        Gateway::new(
            settings.clone(),
            catalog.clone(),
            providers.clone(),
            auth.clone(),
            shared.clone(),
        )
        .map(Arc::new)
    };

    // Signals are watched on the main thread; workers drain when the token is cancelled.
    let shutdown = tokio_util::sync::CancellationToken::new();
    let signal_rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the signal runtime: {e}"))?;
    let token = shutdown.clone();
    let signals = std::thread::Builder::new()
        .name("switchyard-signals".into())
        .spawn(move || {
            signal_rt.block_on(async {
                tokio::select! {
                    () = shutdown_signal() => token.cancel(),
                    () = token.cancelled() => {},
                }
            })
        })
        .map_err(|e| format!("cannot start the signal thread: {e}"))?;
    let result = switchyard_server::serve_workers(
        addr,
        c.workers,
        make_state,
        shutdown.clone(),
        c.shutdown_grace,
        |local| {
            tracing::info!(
                providers = n_providers,
                models = n_models,
                workers = c.workers,
                "switchyard listening on http://{local}"
            );
        },
    );
    shutdown.cancel();
    let _ = signals.join();
    // Every worker has stopped and dropped its senders: flush the ledger, then exit.
    if let Some(writer) = ledger_writer {
        match store_rt
            .block_on(async { tokio::time::timeout(Duration::from_secs(30), writer).await })
        {
            Ok(_) => tracing::info!("ledger flushed"),
            Err(_) => tracing::error!("ledger did not flush within 30 s"),
        }
    }
    result?;
    tracing::info!("shut down cleanly");
    Ok(())
}

/// A connection URL for display: any password in it (`scheme://user:secret@host`) is
/// replaced by `***`, so `check` output and error messages never show database secrets.
fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    match rest[..authority_end].rfind('@') {
        Some(at) => match rest[..at].split_once(':') {
            Some((user, _password)) => format!("{scheme}://{user}:***{}", &rest[at..]),
            None => url.to_string(),
        },
        None => url.to_string(),
    }
}

fn init_tracing() {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_env("SWITCHYARD_LOG")
        .or_else(|_| EnvFilter::try_from_default_env())
        .unwrap_or_else(|_| EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
    tracing::info!("shutdown signal received; finishing in-flight requests");
}

#[cfg(test)]
mod tests {
    use super::redact_url;

    #[test]
    fn urls_are_shown_without_passwords() {
        assert_eq!(
            redact_url("postgres://sy:s3cret@db:5432/x?sslmode=require"),
            "postgres://sy:***@db:5432/x?sslmode=require"
        );
        assert_eq!(
            redact_url("redis://:pw@cache:6379/0"),
            "redis://:***@cache:6379/0"
        );
        assert_eq!(redact_url("postgres://sy@db/x"), "postgres://sy@db/x");
        assert_eq!(
            redact_url("sqlite://switchyard.db"),
            "sqlite://switchyard.db"
        );
        assert_eq!(redact_url("sqlite::memory:"), "sqlite::memory:");
    }
}
