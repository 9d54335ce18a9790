//! Configuration: the TOML file of the contract (§3), strict (unknown keys are errors),
//! with `env:NAME` / `file:PATH` secret references resolved in any string value, plus the
//! zero-config mode that enables providers from environment keys.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use switchyard_router::{Catalog, ModelSpec};
use switchyard_server::provider::{ProviderConfig, ProviderKind, Timeouts, default_display_name};

/// Where environment variables come from (a trait so tests never mutate the process env).
pub trait Env {
    fn var(&self, name: &str) -> Option<String>;
}

/// The real process environment.
pub struct ProcessEnv;

impl Env for ProcessEnv {
    fn var(&self, name: &str) -> Option<String> {
        std::env::var(name).ok().filter(|v| !v.is_empty())
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    #[serde(default)]
    pub server: ServerSection,
    #[serde(default)]
    pub storage: StorageSection,
    #[serde(default)]
    pub routing: RoutingSection,
    #[serde(default)]
    pub providers: BTreeMap<String, ProviderSection>,
    #[serde(default)]
    pub models: Vec<ModelSpec>,
}

/// Endpoint health and circuit breaking.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RoutingSection {
    /// Consecutive failures that open an endpoint's breaker.
    #[serde(default = "default_failures")]
    pub breaker_failures: u32,
    /// Seconds an open breaker keeps the endpoint behind healthy ones before a probe.
    #[serde(default = "default_cooldown")]
    pub breaker_cooldown_seconds: f64,
    /// Hedging: race the next endpoint after this many ms without an answer (off by default).
    #[serde(default)]
    pub hedge_after_ms: Option<u64>,
    /// Longest upstream `Retry-After` (seconds) waited for when no other endpoint is left.
    #[serde(default = "default_max_retry_after")]
    pub max_retry_after_seconds: u64,
    /// Default `provider` routing preferences (OpenRouter's object, e.g. `{ sort = "price" }`);
    /// a request's own `provider` members override these one by one.
    #[serde(default)]
    pub default_provider: Option<toml::Table>,
}

impl Default for RoutingSection {
    fn default() -> Self {
        RoutingSection {
            breaker_failures: default_failures(),
            breaker_cooldown_seconds: default_cooldown(),
            hedge_after_ms: None,
            max_retry_after_seconds: default_max_retry_after(),
            default_provider: None,
        }
    }
}

fn default_failures() -> u32 {
    3
}
fn default_cooldown() -> f64 {
    30.0
}
fn default_max_retry_after() -> u64 {
    5
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerSection {
    #[serde(default = "default_listen")]
    pub listen: String,
    #[serde(default)]
    pub admin_key: Option<String>,
    /// Largest accepted request body in bytes.
    #[serde(default = "default_max_body")]
    pub max_body_bytes: usize,
    /// `"public"` (default) or `"admin"` (requires the admin key).
    #[serde(default = "default_metrics")]
    pub metrics: String,
    /// Seconds of upstream silence after which an SSE keep-alive comment is sent.
    #[serde(default = "default_keepalive")]
    pub keepalive_seconds: f64,
    /// Seconds in-flight requests get to finish after SIGINT/SIGTERM.
    #[serde(default = "default_grace")]
    pub shutdown_grace_seconds: u64,
    /// Worker threads (each with its own runtime and listener); default: one per core.
    #[serde(default)]
    pub workers: Option<usize>,
    /// Account-wide credit pool in USD (decimal string); inference answers 402 once the
    /// ledger's total spend reaches it. Unset: no pool.
    #[serde(default)]
    pub credits: Option<switchyard_router::pricing::Price>,
}

impl Default for ServerSection {
    fn default() -> Self {
        ServerSection {
            listen: default_listen(),
            admin_key: None,
            max_body_bytes: default_max_body(),
            metrics: default_metrics(),
            keepalive_seconds: default_keepalive(),
            shutdown_grace_seconds: default_grace(),
            workers: None,
            credits: None,
        }
    }
}

fn default_listen() -> String {
    "127.0.0.1:8080".into()
}
fn default_max_body() -> usize {
    16 * 1024 * 1024
}
fn default_metrics() -> String {
    "public".into()
}
fn default_keepalive() -> f64 {
    5.0
}
fn default_grace() -> u64 {
    30
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StorageSection {
    #[serde(default = "default_storage")]
    pub url: String,
    #[serde(default)]
    pub redis_url: Option<String>,
    /// Keys and the usage ledger (default on). Off: a pure proxy authorised by the admin key,
    /// with nothing written — for benchmarks and stateless edge deployments.
    #[serde(default = "default_true")]
    pub ledger: bool,
}

fn default_true() -> bool {
    true
}

impl Default for StorageSection {
    fn default() -> Self {
        StorageSection {
            url: default_storage(),
            redis_url: None,
            ledger: true,
        }
    }
}

fn default_storage() -> String {
    "sqlite://switchyard.db".into()
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProviderSection {
    pub kind: String,
    #[serde(default)]
    pub base_url: Option<String>,
    #[serde(default)]
    pub api_key: Option<String>,
    /// Display name (defaults to a well-known name for the slug).
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// Request members never forwarded to this provider.
    #[serde(default)]
    pub drop_params: Vec<String>,
    /// Azure OpenAI `api-version` (default 2024-10-21).
    #[serde(default)]
    pub api_version: Option<String>,
    /// AWS region (Bedrock), e.g. "us-east-1".
    #[serde(default)]
    pub region: Option<String>,
    /// AWS credentials for SigV4 (Bedrock). Without them, `api_key` is a Bedrock API key.
    #[serde(default)]
    pub access_key_id: Option<String>,
    #[serde(default)]
    pub secret_access_key: Option<String>,
    #[serde(default)]
    pub session_token: Option<String>,
    #[serde(default)]
    pub timeouts: TimeoutSection,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TimeoutSection {
    pub connect_ms: Option<u64>,
    pub first_byte_ms: Option<u64>,
    pub idle_ms: Option<u64>,
    pub total_ms: Option<u64>,
}

/// The configuration after validation, ready to build a gateway from.
#[derive(Debug)]
pub struct Config {
    pub source: Option<PathBuf>,
    pub listen: SocketAddr,
    pub admin_key: Option<String>,
    pub max_body_bytes: usize,
    pub metrics_public: bool,
    pub keepalive: Duration,
    pub shutdown_grace: Duration,
    pub workers: usize,
    pub health: switchyard_router::HealthConfig,
    pub hedge_after: Option<Duration>,
    pub max_retry_after: Duration,
    /// `routing.default_provider` as JSON, validated.
    pub default_provider: Option<String>,
    pub storage_url: String,
    pub credits: Option<rust_decimal::Decimal>,
    pub ledger: bool,
    pub redis_url: Option<String>,
    pub providers: Vec<ProviderConfig>,
    pub catalog: Catalog,
}

/// Every problem found, one per line: `file: key: what is wrong`.
#[derive(Debug)]
pub struct ConfigErrors(pub Vec<String>);

impl std::fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

/// Default base URL, environment variable names and kind for providers that zero-config
/// mode (no config file) enables when their key is set.
pub const ENV_PROVIDERS: &[(&str, &str, &str, &str)] = &[
    // (slug, kind, key variable, default base URL); `<PREFIX>_BASE_URL` overrides the URL.
    (
        "openai",
        "openai",
        "OPENAI_API_KEY",
        "https://api.openai.com/v1",
    ),
    (
        "anthropic",
        "anthropic",
        "ANTHROPIC_API_KEY",
        "https://api.anthropic.com",
    ),
    (
        "google",
        "gemini",
        "GEMINI_API_KEY",
        "https://generativelanguage.googleapis.com/v1beta",
    ),
    (
        "deepseek",
        "openai",
        "DEEPSEEK_API_KEY",
        "https://api.deepseek.com",
    ),
    (
        "groq",
        "openai",
        "GROQ_API_KEY",
        "https://api.groq.com/openai/v1",
    ),
    (
        "mistral",
        "openai",
        "MISTRAL_API_KEY",
        "https://api.mistral.ai/v1",
    ),
    ("xai", "openai", "XAI_API_KEY", "https://api.x.ai/v1"),
    (
        "together",
        "openai",
        "TOGETHER_API_KEY",
        "https://api.together.xyz/v1",
    ),
    (
        "fireworks",
        "openai",
        "FIREWORKS_API_KEY",
        "https://api.fireworks.ai/inference/v1",
    ),
    (
        "cohere",
        "cohere",
        "COHERE_API_KEY",
        "https://api.cohere.com",
    ),
    (
        "openrouter",
        "openai",
        "OPENROUTER_API_KEY",
        "https://openrouter.ai/api/v1",
    ),
];

/// Resolve `env:` / `file:` references in every string of the TOML tree.
fn resolve_secrets(
    v: &mut toml::Value,
    path: &mut Vec<String>,
    env: &dyn Env,
    base_dir: &Path,
    errors: &mut Vec<String>,
    file_label: &str,
) {
    match v {
        toml::Value::String(s) => {
            if let Some(name) = s.strip_prefix("env:") {
                match env.var(name) {
                    Some(val) => *s = val,
                    None => errors.push(format!(
                        "{file_label}: {}: environment variable {name} is not set",
                        path.join(".")
                    )),
                }
            } else if let Some(p) = s.strip_prefix("file:") {
                let full = base_dir.join(p);
                match std::fs::read_to_string(&full) {
                    Ok(content) => *s = content.trim_end_matches(['\n', '\r']).to_string(),
                    Err(e) => errors.push(format!(
                        "{file_label}: {}: cannot read secret file {}: {e}",
                        path.join("."),
                        full.display()
                    )),
                }
            }
        }
        toml::Value::Array(items) => {
            for (i, item) in items.iter_mut().enumerate() {
                path.push(i.to_string());
                resolve_secrets(item, path, env, base_dir, errors, file_label);
                path.pop();
            }
        }
        toml::Value::Table(t) => {
            for (k, item) in t.iter_mut() {
                path.push(k.clone());
                resolve_secrets(item, path, env, base_dir, errors, file_label);
                path.pop();
            }
        }
        _ => {}
    }
}

/// Load the config file at `path` (or zero-config defaults when None) and validate it.
pub fn load(path: Option<&Path>, env: &dyn Env) -> Result<Config, ConfigErrors> {
    let (file, label, base_dir) = match path {
        None => (
            FileConfig::default(),
            "(defaults)".to_string(),
            PathBuf::from("."),
        ),
        Some(p) => {
            let label = p.display().to_string();
            let text = std::fs::read_to_string(p).map_err(|e| {
                ConfigErrors(vec![format!("{label}: cannot read config file: {e}")])
            })?;
            let mut value: toml::Value = toml::from_str(&text).map_err(|e| {
                ConfigErrors(vec![format!("{label}: {}", e.to_string().trim_end())])
            })?;
            let mut errors = Vec::new();
            let base_dir = p.parent().map(Path::to_path_buf).unwrap_or_default();
            resolve_secrets(
                &mut value,
                &mut Vec::new(),
                env,
                &base_dir,
                &mut errors,
                &label,
            );
            // Deserialize even when secrets failed, so structural problems are reported too.
            let file: FileConfig = match value.try_into() {
                Ok(f) => f,
                Err(e) => {
                    errors.push(format!("{label}: {}", e.to_string().trim_end()));
                    return Err(ConfigErrors(errors));
                }
            };
            if !errors.is_empty() {
                return Err(ConfigErrors(errors));
            }
            (file, label, base_dir)
        }
    };
    let _ = base_dir;
    validate(file, path.is_none(), &label, path, env)
}

fn validate(
    file: FileConfig,
    zero_config: bool,
    label: &str,
    source: Option<&Path>,
    env: &dyn Env,
) -> Result<Config, ConfigErrors> {
    let mut errors = Vec::new();
    let listen = match file.server.listen.parse::<SocketAddr>() {
        Ok(a) => Some(a),
        Err(_) => {
            errors.push(format!(
                "{label}: server.listen: {:?} is not an address like \"127.0.0.1:8080\"",
                file.server.listen
            ));
            None
        }
    };
    let metrics_public = match file.server.metrics.as_str() {
        "public" => true,
        "admin" => false,
        other => {
            errors.push(format!(
                "{label}: server.metrics: must be \"public\" or \"admin\", got {other:?}"
            ));
            true
        }
    };
    if file.server.max_body_bytes < 1024 {
        errors.push(format!(
            "{label}: server.max_body_bytes: must be at least 1024, got {}",
            file.server.max_body_bytes
        ));
    }
    if !(file.server.keepalive_seconds > 0.0 && file.server.keepalive_seconds <= 300.0) {
        errors.push(format!(
            "{label}: server.keepalive_seconds: must be between 0 and 300, got {}",
            file.server.keepalive_seconds
        ));
    }
    let workers = match file.server.workers {
        Some(0) => {
            errors.push(format!("{label}: server.workers: must be at least 1"));
            1
        }
        Some(n) => n,
        None => std::thread::available_parallelism().map_or(2, |n| n.get()),
    };
    if file.routing.breaker_failures == 0 {
        errors.push(format!(
            "{label}: routing.breaker_failures: must be at least 1"
        ));
    }
    let cooldown = file.routing.breaker_cooldown_seconds;
    if !(cooldown > 0.0 && cooldown <= 3600.0) {
        errors.push(format!(
            "{label}: routing.breaker_cooldown_seconds: must be between 0 and 3600, got {cooldown}"
        ));
    }
    let default_provider = match &file.routing.default_provider {
        None => None,
        Some(t) => match serde_json::to_string(t) {
            Ok(json) => match switchyard_router::ProviderPrefs::parse(&json) {
                Ok(_) => Some(json),
                Err(e) => {
                    errors.push(format!("{label}: routing.default_provider: {e}"));
                    None
                }
            },
            Err(e) => {
                errors.push(format!("{label}: routing.default_provider: {e}"));
                None
            }
        },
    };
    if file.routing.hedge_after_ms == Some(0) {
        errors.push(format!(
            "{label}: routing.hedge_after_ms: must be greater than 0"
        ));
    }
    let health = switchyard_router::HealthConfig {
        failure_threshold: file.routing.breaker_failures.max(1),
        cooldown: Duration::from_secs_f64(cooldown.clamp(0.001, 3600.0)),
        ..Default::default()
    };
    let storage = &file.storage.url;
    if !(storage.starts_with("sqlite:")
        || storage.starts_with("postgres://")
        || storage.starts_with("postgresql://"))
    {
        errors.push(format!(
            "{label}: storage.url: must start with sqlite:// or postgres://, got {storage:?}"
        ));
    }
    if let Some(r) = &file.storage.redis_url
        && !(r.starts_with("redis://") || r.starts_with("rediss://"))
    {
        {
            errors.push(format!(
                "{label}: storage.redis_url: must start with redis:// or rediss://"
            ));
        }
    }
    let admin_key = file
        .server
        .admin_key
        .clone()
        .filter(|k| !k.is_empty())
        .or_else(|| env.var("SWITCHYARD_ADMIN_KEY"));
    if let Some(k) = &admin_key
        && k.len() < 8
    {
        {
            errors.push(format!(
                "{label}: server.admin_key: must be at least 8 characters"
            ));
        }
    }

    let mut sections = file.providers;
    if zero_config {
        for (slug, kind, key_var, default_url) in ENV_PROVIDERS {
            if let Some(key) = env.var(key_var) {
                let prefix = key_var.trim_end_matches("_API_KEY");
                let base_url = env
                    .var(&format!("{prefix}_BASE_URL"))
                    .unwrap_or_else(|| default_url.to_string());
                sections.insert(
                    slug.to_string(),
                    ProviderSection {
                        kind: kind.to_string(),
                        base_url: Some(base_url),
                        api_key: Some(key),
                        name: None,
                        headers: BTreeMap::new(),
                        drop_params: Vec::new(),
                        api_version: None,
                        region: None,
                        access_key_id: None,
                        secret_access_key: None,
                        session_token: None,
                        timeouts: TimeoutSection::default(),
                    },
                );
            }
        }
    }
    if zero_config
        && let (Some(id), Some(secret)) = (
            env.var("AWS_ACCESS_KEY_ID"),
            env.var("AWS_SECRET_ACCESS_KEY"),
        )
    {
        let region = env
            .var("AWS_REGION")
            .or_else(|| env.var("AWS_DEFAULT_REGION"))
            .unwrap_or_else(|| "us-east-1".to_string());
        sections.insert(
            "bedrock".to_string(),
            ProviderSection {
                kind: "bedrock".to_string(),
                base_url: env.var("BEDROCK_BASE_URL"),
                api_key: None,
                name: None,
                headers: BTreeMap::new(),
                drop_params: Vec::new(),
                api_version: None,
                region: Some(region),
                access_key_id: Some(id),
                secret_access_key: Some(secret),
                session_token: env.var("AWS_SESSION_TOKEN"),
                timeouts: TimeoutSection::default(),
            },
        );
    }
    let mut providers = Vec::new();
    for (slug, p) in sections {
        let at = |k: &str| format!("{label}: providers.{slug}.{k}");
        if slug.is_empty()
            || !slug
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            errors.push(format!(
                "{label}: providers.{slug}: the slug may contain only letters, digits, '-' and '_'"
            ));
        }
        let Some(kind) = ProviderKind::parse(&p.kind) else {
            let kinds: Vec<&str> = ProviderKind::ALL.iter().map(|(n, _)| *n).collect();
            errors.push(format!(
                "{}: unknown kind {:?} (expected one of: {})",
                at("kind"),
                p.kind,
                kinds.join(", ")
            ));
            continue;
        };
        let aws_credentials = match (&p.access_key_id, &p.secret_access_key) {
            (Some(id), Some(secret)) => Some(switchyard_translate_creds(
                id,
                secret,
                p.session_token.clone(),
            )),
            (None, None) => None,
            _ => {
                errors.push(format!(
                    "{}: access_key_id and secret_access_key go together",
                    at("access_key_id")
                ));
                None
            }
        };
        if kind == ProviderKind::Bedrock {
            if p.region.is_none() {
                errors.push(format!(
                    "{}: required for bedrock providers (e.g. \"us-east-1\")",
                    at("region")
                ));
            }
            if aws_credentials.is_none() && p.api_key.is_none() {
                errors.push(format!(
                    "{}: bedrock needs access_key_id + secret_access_key, or api_key (a Bedrock API key)",
                    at("api_key")
                ));
            }
        }
        let base_url = match (&p.base_url, kind) {
            (Some(u), _) => u.trim_end_matches('/').to_string(),
            (None, ProviderKind::Bedrock) => format!(
                "https://bedrock-runtime.{}.amazonaws.com",
                p.region.as_deref().unwrap_or("us-east-1")
            ),
            (None, _) => {
                let default = ENV_PROVIDERS
                    .iter()
                    .find(|(s, k, _, _)| *s == slug || (*k == p.kind && *s == p.kind))
                    .map(|(_, _, _, u)| u.to_string());
                match default {
                    Some(u) => u,
                    None => {
                        errors.push(format!("{}: required for this provider", at("base_url")));
                        continue;
                    }
                }
            }
        };
        if !(base_url.starts_with("http://") || base_url.starts_with("https://")) {
            errors.push(format!(
                "{}: must start with http:// or https://, got {base_url:?}",
                at("base_url")
            ));
        } else if base_url.parse::<axum_uri::Uri>().is_err() {
            errors.push(format!(
                "{}: {base_url:?} is not a valid URL",
                at("base_url")
            ));
        }
        let d = Timeouts::default();
        let ms = |v: Option<u64>, def: Duration, key: &str, errors: &mut Vec<String>| match v {
            Some(0) => {
                errors.push(format!(
                    "{}: must be greater than 0",
                    at(&format!("timeouts.{key}"))
                ));
                def
            }
            Some(n) => Duration::from_millis(n),
            None => def,
        };
        let timeouts = Timeouts {
            connect: ms(p.timeouts.connect_ms, d.connect, "connect_ms", &mut errors),
            first_byte: ms(
                p.timeouts.first_byte_ms,
                d.first_byte,
                "first_byte_ms",
                &mut errors,
            ),
            idle: ms(p.timeouts.idle_ms, d.idle, "idle_ms", &mut errors),
            total: ms(p.timeouts.total_ms, d.total, "total_ms", &mut errors),
        };
        for k in p.headers.keys() {
            if k.eq_ignore_ascii_case("authorization") && p.api_key.is_some() {
                errors.push(format!(
                    "{}: sets Authorization although api_key is set",
                    at("headers")
                ));
            }
        }
        providers.push(ProviderConfig {
            name: p.name.unwrap_or_else(|| default_display_name(&slug)),
            slug,
            kind,
            base_url,
            api_key: p.api_key,
            headers: p.headers.into_iter().collect(),
            drop_params: p.drop_params,
            api_version: p.api_version,
            region: p.region,
            aws_credentials,
            timeouts,
        });
    }

    let mut catalog = match Catalog::builtin() {
        Ok(c) => c,
        Err(e) => {
            errors.push(e.to_string());
            Catalog::default()
        }
    };
    for (i, m) in file.models.into_iter().enumerate() {
        let id = m.id.clone();
        for (j, e) in m.endpoints.iter().enumerate() {
            if !providers.iter().any(|p| p.slug == e.provider) {
                errors.push(format!(
                    "{label}: models[{i}] ({id}): endpoints[{j}].provider {:?} is not a configured provider",
                    e.provider
                ));
            }
        }
        if let Err(e) = catalog.upsert(m) {
            errors.push(format!("{label}: models[{i}]: {e}"));
        }
    }

    if !errors.is_empty() {
        return Err(ConfigErrors(errors));
    }
    let Some(listen) = listen else {
        return Err(ConfigErrors(vec![format!(
            "{label}: server.listen is invalid"
        )]));
    };
    Ok(Config {
        source: source.map(Path::to_path_buf),
        listen,
        admin_key,
        max_body_bytes: file.server.max_body_bytes,
        metrics_public,
        keepalive: Duration::from_secs_f64(file.server.keepalive_seconds),
        shutdown_grace: Duration::from_secs(file.server.shutdown_grace_seconds),
        workers,
        health,
        hedge_after: file.routing.hedge_after_ms.map(Duration::from_millis),
        default_provider,
        max_retry_after: Duration::from_secs(file.routing.max_retry_after_seconds),
        storage_url: file.storage.url,
        credits: file.server.credits.map(|p| p.0),
        ledger: file.storage.ledger,
        redis_url: file.storage.redis_url,
        providers,
        catalog,
    })
}

fn switchyard_translate_creds(
    id: &str,
    secret: &str,
    session_token: Option<String>,
) -> switchyard_server::provider::AwsCredentials {
    switchyard_server::provider::AwsCredentials {
        access_key_id: id.to_string(),
        secret_access_key: secret.to_string(),
        session_token,
    }
}

mod axum_uri {
    pub use http::Uri;
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;
    use std::io::Write;

    struct MapEnv(HashMap<&'static str, &'static str>);
    impl Env for MapEnv {
        fn var(&self, name: &str) -> Option<String> {
            self.0.get(name).map(|s| s.to_string())
        }
    }

    fn write(text: &str) -> tempfile_lite::TempFile {
        let f = tempfile_lite::TempFile::new("toml");
        let mut h = std::fs::File::create(&f.path).unwrap();
        h.write_all(text.as_bytes()).unwrap();
        f
    }

    mod tempfile_lite {
        pub struct TempFile {
            pub path: std::path::PathBuf,
        }
        impl TempFile {
            pub fn new(ext: &str) -> Self {
                let path = std::env::temp_dir().join(format!(
                    "switchyard-test-{}-{}.{ext}",
                    std::process::id(),
                    fastrand_like()
                ));
                TempFile { path }
            }
        }
        impl Drop for TempFile {
            fn drop(&mut self) {
                let _ = std::fs::remove_file(&self.path);
            }
        }
        fn fastrand_like() -> u128 {
            use std::sync::atomic::{AtomicU64, Ordering};
            static N: AtomicU64 = AtomicU64::new(0);
            let t = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or(0);
            t + u128::from(N.fetch_add(1, Ordering::Relaxed))
        }
    }

    const CONTRACT_EXAMPLE: &str = r#"
[server]
listen = "127.0.0.1:8080"
admin_key = "env:SWITCHYARD_ADMIN_KEY"

[storage]
url = "sqlite://switchyard.db"

[providers.openai]
kind = "openai"
base_url = "https://api.openai.com/v1"
api_key = "env:OPENAI_API_KEY"

[providers.anthropic]
kind = "anthropic"
base_url = "https://api.anthropic.com"
api_key = "env:ANTHROPIC_API_KEY"

[providers.google]
kind = "gemini"
base_url = "https://generativelanguage.googleapis.com/v1beta"
api_key = "env:GEMINI_API_KEY"

[[models]]
id = "openai/gpt-4o-mini"
name = "OpenAI: GPT-4o-mini"
context_length = 128000

[[models.endpoints]]
provider = "openai"
model = "gpt-4o-mini"
pricing = { prompt = "0.00000015", completion = "0.0000006", input_cache_read = "0.000000075" }
"#;

    fn env_all() -> MapEnv {
        MapEnv(HashMap::from([
            ("SWITCHYARD_ADMIN_KEY", "sk-admin-123"),
            ("OPENAI_API_KEY", "sk-o"),
            ("ANTHROPIC_API_KEY", "sk-a"),
            ("GEMINI_API_KEY", "g"),
        ]))
    }

    #[test]
    fn contract_example_is_valid() {
        let f = write(CONTRACT_EXAMPLE);
        let c = load(Some(&f.path), &env_all()).unwrap();
        assert_eq!(c.admin_key.as_deref(), Some("sk-admin-123"));
        assert_eq!(c.providers.len(), 3);
        let openai = c.providers.iter().find(|p| p.slug == "openai").unwrap();
        assert_eq!(openai.api_key.as_deref(), Some("sk-o"));
        assert_eq!(openai.name, "OpenAI");
        assert_eq!(
            c.catalog.get("openai/gpt-4o-mini").unwrap().context_length,
            128000
        );
    }

    #[test]
    fn reports_every_problem_with_its_key() {
        let f = write(
            r#"
[server]
listen = "nope"
metrics = "sometimes"
[providers.x]
kind = "carrier-pigeon"
[providers.y]
kind = "openai"
base_url = "ftp://x"
api_key = "env:MISSING_KEY"
"#,
        );
        let e = load(Some(&f.path), &MapEnv(HashMap::new())).unwrap_err();
        let text = e.to_string();
        assert!(
            text.contains("providers.y.api_key: environment variable MISSING_KEY is not set"),
            "{text}"
        );
        // Secret errors are reported before semantic validation; fix them and re-check.
        let f2 = write(
            &std::fs::read_to_string(&f.path)
                .unwrap()
                .replace("env:MISSING_KEY", "k"),
        );
        let text = load(Some(&f2.path), &MapEnv(HashMap::new()))
            .unwrap_err()
            .to_string();
        assert!(text.contains("server.listen"), "{text}");
        assert!(text.contains("server.metrics"), "{text}");
        assert!(
            text.contains("providers.x.kind: unknown kind \"carrier-pigeon\""),
            "{text}"
        );
        assert!(
            text.contains("providers.y.base_url: must start with http"),
            "{text}"
        );
        assert_eq!(text.lines().count(), 4, "{text}");
    }

    #[test]
    fn unknown_keys_are_errors() {
        let f = write("[server]\nlisten = \"127.0.0.1:1\"\nadmin_kee = \"x\"\n");
        let text = load(Some(&f.path), &MapEnv(HashMap::new()))
            .unwrap_err()
            .to_string();
        assert!(text.contains("admin_kee"), "{text}");
    }

    #[test]
    fn file_secrets_and_model_provider_check() {
        let secret = tempfile_lite::TempFile::new("key");
        std::fs::write(&secret.path, "sk-from-file\n").unwrap();
        let f = write(&format!(
            r#"
[providers.local]
kind = "openai"
base_url = "http://127.0.0.1:9/v1"
api_key = "file:{}"
[[models]]
id = "me/model"
name = "Mine"
context_length = 10
[[models.endpoints]]
provider = "elsewhere"
model = "m"
pricing = {{ prompt = "0", completion = "0" }}
"#,
            secret.path.display()
        ));
        let text = load(Some(&f.path), &MapEnv(HashMap::new()))
            .unwrap_err()
            .to_string();
        assert!(
            text.contains("\"elsewhere\" is not a configured provider"),
            "{text}"
        );
        let ok = write(&format!(
            "[providers.local]\nkind = \"openai\"\nbase_url = \"http://127.0.0.1:9/v1\"\napi_key = \"file:{}\"\n",
            secret.path.display()
        ));
        let c = load(Some(&ok.path), &MapEnv(HashMap::new())).unwrap();
        assert_eq!(c.providers[0].api_key.as_deref(), Some("sk-from-file"));
    }

    #[test]
    fn zero_config_from_environment() {
        let env = MapEnv(HashMap::from([
            ("OPENAI_API_KEY", "sk-o"),
            ("OPENAI_BASE_URL", "http://127.0.0.1:1234/v1/"),
            ("GROQ_API_KEY", "gsk"),
        ]));
        let c = load(None, &env).unwrap();
        let slugs: Vec<_> = c.providers.iter().map(|p| p.slug.as_str()).collect();
        assert_eq!(slugs, ["groq", "openai"]);
        let aws = MapEnv(HashMap::from([
            ("AWS_ACCESS_KEY_ID", "AKID"),
            ("AWS_SECRET_ACCESS_KEY", "secret"),
            ("AWS_REGION", "eu-west-1"),
        ]));
        let c2 = load(None, &aws).unwrap();
        assert_eq!(c2.providers[0].slug, "bedrock");
        assert_eq!(
            c2.providers[0].base_url,
            "https://bedrock-runtime.eu-west-1.amazonaws.com"
        );
        let o = &c.providers[1];
        assert_eq!(o.base_url, "http://127.0.0.1:1234/v1");
        assert_eq!(c.listen.to_string(), "127.0.0.1:8080");
        assert!(c.admin_key.is_none());
    }
}
