//! `switchyard-mock`: the mock provider as a standalone server (for the load benchmark).

use clap::Parser;
use std::io::Write;
use std::net::SocketAddr;
use std::process::ExitCode;
use switchyard_mock_provider::{MockConfig, Script, spawn_on};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// A mock LLM provider speaking OpenAI's Chat Completions dialect, with scripted faults.
#[derive(Debug, Parser)]
#[command(name = "switchyard-mock", version)]
struct Args {
    /// Address to listen on (port 0 picks a free port; the readiness line shows it).
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: SocketAddr,
    /// Require this API key (default: any non-empty Bearer key).
    #[arg(long)]
    api_key: Option<String>,
    /// Delay before response headers, in milliseconds.
    #[arg(long, default_value_t = 0)]
    ttfb_ms: u64,
    /// Delay between stream events, in milliseconds.
    #[arg(long, default_value_t = 0)]
    chunk_delay_ms: u64,
    /// Split every reply into exactly this many content pieces.
    #[arg(long)]
    chunks: Option<usize>,
    /// Answer every request with this HTTP status and an OpenAI error body.
    #[arg(long, value_parser = clap::value_parser!(u16).range(200..=599))]
    status: Option<u16>,
    /// Drop the connection after this many streamed content pieces.
    #[arg(long)]
    reset_after: Option<usize>,
    /// Send malformed bodies / events.
    #[arg(long)]
    malformed: bool,
    /// Never answer.
    #[arg(long)]
    hang: bool,
    /// Send `retry-after: N` with error statuses.
    #[arg(long)]
    retry_after: Option<u64>,
    /// Leave usage out of responses.
    #[arg(long)]
    no_usage: bool,
    /// Reply text.
    #[arg(long)]
    reply: Option<String>,
    /// Number of tool calls when the request offers tools.
    #[arg(long)]
    tool_calls: Option<usize>,
    /// Reported cached prompt tokens.
    #[arg(long, default_value_t = 0)]
    cached_tokens: u64,
    /// Reported reasoning tokens.
    #[arg(long, default_value_t = 0)]
    reasoning_tokens: u64,
    /// Do not keep received requests (for benchmarks).
    #[arg(long)]
    no_record: bool,
    /// Worker threads (default: one per core).
    #[arg(long)]
    threads: Option<usize>,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let mut runtime = tokio::runtime::Builder::new_multi_thread();
    runtime.enable_all();
    if let Some(n) = args.threads.filter(|n| *n > 0) {
        runtime.worker_threads(n);
    }
    let runtime = match runtime.build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("switchyard-mock: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(run(args))
}

async fn run(args: Args) -> ExitCode {
    let config = MockConfig {
        api_key: args.api_key,
        defaults: Script {
            status: args.status,
            ttfb_ms: args.ttfb_ms,
            chunk_delay_ms: args.chunk_delay_ms,
            chunks: args.chunks,
            reset_after: args.reset_after,
            malformed: args.malformed,
            hang: args.hang,
            retry_after: args.retry_after,
            no_usage: args.no_usage,
            cached_tokens: args.cached_tokens,
            reasoning_tokens: args.reasoning_tokens,
            tool_calls: args.tool_calls,
            reply: args.reply,
        },
        record: !args.no_record,
        ..MockConfig::default()
    };
    let handle = match spawn_on(args.listen, config).await {
        Ok(h) => h,
        Err(e) => {
            eprintln!("switchyard-mock: cannot listen on {}: {e}", args.listen);
            return ExitCode::FAILURE;
        }
    };
    {
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "switchyard-mock listening on {}", handle.base_url());
        let _ = out.flush();
    }
    if let Err(e) = shutdown_signal().await {
        eprintln!("switchyard-mock: cannot wait for signals: {e}");
    }
    handle.shutdown().await;
    ExitCode::SUCCESS
}

#[cfg(unix)]
async fn shutdown_signal() -> std::io::Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
    Ok(())
}

#[cfg(not(unix))]
async fn shutdown_signal() -> std::io::Result<()> {
    tokio::signal::ctrl_c().await
}
