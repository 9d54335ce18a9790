//! Configured providers at run time: where they are, how to authenticate, which kind of
//! API they speak, and one pooled HTTP client each.

use std::time::Duration;

use bytes::Bytes;
use futures::FutureExt;
use http_body_util::Full;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use switchyard_translate::{Endpoint, bedrock};

/// The API dialect a provider speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ProviderKind {
    /// Any OpenAI-compatible chat-completions API.
    OpenAi,
    Anthropic,
    Gemini,
    /// Gemini on Vertex AI: the same dialect, `Authorization: Bearer <OAuth access token>`,
    /// `base_url` = `https://{location}-aiplatform.googleapis.com/v1/projects/{project}/locations/{location}/publishers/google`.
    Vertex,
    Bedrock,
    Azure,
    Cohere,
}

impl ProviderKind {
    pub const ALL: &'static [(&'static str, ProviderKind)] = &[
        ("openai", ProviderKind::OpenAi),
        ("anthropic", ProviderKind::Anthropic),
        ("gemini", ProviderKind::Gemini),
        ("vertex", ProviderKind::Vertex),
        ("bedrock", ProviderKind::Bedrock),
        ("azure", ProviderKind::Azure),
        ("cohere", ProviderKind::Cohere),
    ];

    pub fn parse(s: &str) -> Option<ProviderKind> {
        Self::ALL.iter().find(|(n, _)| *n == s).map(|(_, k)| *k)
    }

    pub fn as_str(self) -> &'static str {
        Self::ALL
            .iter()
            .find(|(_, k)| *k == self)
            .map_or("unknown", |(n, _)| n)
    }

    /// Whether this build has an adapter for the kind. Providers of other kinds are
    /// accepted in config (so configs stay forward-compatible) but never routed to.
    pub fn has_adapter(self) -> bool {
        matches!(
            self,
            ProviderKind::OpenAi
                | ProviderKind::Anthropic
                | ProviderKind::Azure
                | ProviderKind::Gemini
                | ProviderKind::Vertex
                | ProviderKind::Cohere
                | ProviderKind::Bedrock
        )
    }

    /// Whether this kind serves an inference route (Anthropic: chat only).
    pub fn supports(self, endpoint: Endpoint) -> bool {
        match self {
            ProviderKind::Anthropic
            | ProviderKind::Gemini
            | ProviderKind::Vertex
            | ProviderKind::Cohere
            | ProviderKind::Bedrock => endpoint == Endpoint::Chat,
            _ => true,
        }
    }
}

/// Per-phase upstream timeouts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    pub connect: Duration,
    /// Until the response headers arrive.
    pub first_byte: Duration,
    /// Longest silence between two body chunks.
    pub idle: Duration,
    /// The whole exchange, body included.
    pub total: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            connect: Duration::from_secs(10),
            first_byte: Duration::from_secs(120),
            idle: Duration::from_secs(120),
            total: Duration::from_secs(600),
        }
    }
}

/// A provider as configured.
#[derive(Debug, Clone)]
pub struct ProviderConfig {
    /// The `[providers.<slug>]` name, referenced by catalog endpoints.
    pub slug: String,
    /// Display name reported as `provider` in responses (e.g. "OpenAI").
    pub name: String,
    pub kind: ProviderKind,
    /// Base URL without trailing slash, e.g. `https://api.openai.com/v1`.
    pub base_url: String,
    pub api_key: Option<String>,
    /// Extra headers sent with every upstream request.
    pub headers: Vec<(String, String)>,
    /// Request members never forwarded to this provider (e.g. `top_k` for OpenAI itself).
    pub drop_params: Vec<String>,
    /// Azure OpenAI `api-version` query parameter.
    pub api_version: Option<String>,
    /// AWS region (Bedrock).
    pub region: Option<String>,
    /// AWS credentials for SigV4 (Bedrock); without them `api_key` is sent as a Bedrock API
    /// key (`Authorization: Bearer`).
    pub aws_credentials: Option<switchyard_translate::bedrock::sigv4::Credentials>,
    pub timeouts: Timeouts,
}

/// AWS credentials (re-exported for configuration code).
pub type AwsCredentials = switchyard_translate::bedrock::sigv4::Credentials;

/// The display name OpenRouter uses for well-known provider slugs.
pub fn default_display_name(slug: &str) -> String {
    let known = match slug {
        "openai" => "OpenAI",
        "anthropic" => "Anthropic",
        "google" => "Google AI Studio",
        "vertex" => "Google",
        "bedrock" => "Amazon Bedrock",
        "azure" => "Azure",
        "mistral" => "Mistral",
        "deepseek" => "DeepSeek",
        "groq" => "Groq",
        "xai" => "xAI",
        "together" => "Together",
        "fireworks" => "Fireworks",
        "cohere" => "Cohere",
        "openrouter" => "OpenRouter",
        "ollama" => "Ollama",
        "vllm" => "vLLM",
        _ => "",
    };
    if known.is_empty() {
        let mut c = slug.chars();
        match c.next() {
            Some(f) => f.to_uppercase().collect::<String>() + c.as_str(),
            None => String::new(),
        }
    } else {
        known.to_string()
    }
}

pub type HttpClient = Client<hyper_rustls::HttpsConnector<HttpConnector>, Full<Bytes>>;

/// How many idle keep-alive connections to keep per upstream host. High enough that a
/// burst of concurrent requests never has to open fresh connections on the next burst.
const MAX_IDLE_PER_HOST: usize = 1024;

/// A pooled HTTP/1.1 + HTTP/2 (ALPN) client with TCP_NODELAY and a connect timeout.
pub fn build_client(connect_timeout: Duration) -> Result<HttpClient, String> {
    let mut http = HttpConnector::new();
    http.enforce_http(false);
    http.set_nodelay(true);
    http.set_connect_timeout(Some(connect_timeout));
    http.set_keepalive(Some(Duration::from_secs(60)));
    let https = hyper_rustls::HttpsConnectorBuilder::new()
        .with_webpki_roots()
        .https_or_http()
        .enable_http1()
        .enable_http2()
        .wrap_connector(http);
    Ok(Client::builder(TokioExecutor::new())
        .pool_idle_timeout(Duration::from_secs(90))
        .pool_max_idle_per_host(MAX_IDLE_PER_HOST)
        .build(https))
}

/// The Azure OpenAI GA api-version used when a provider does not set `api_version` (recent
/// enough for `stream_options`, `json_schema` and `max_completion_tokens`).
pub const AZURE_API_VERSION: &str = "2024-10-21";

/// A provider ready to serve: its config, its connection pool, and what every request
/// to it shares (precomputed URIs and headers).
#[derive(Debug, Clone)]
pub struct Provider {
    pub config: ProviderConfig,
    pub client: HttpClient,
    uris: [http::Uri; 3],
    auth: Option<(http::HeaderName, http::HeaderValue)>,
    extra_headers: Vec<(http::HeaderName, http::HeaderValue)>,
}

impl Provider {
    pub fn new(config: ProviderConfig) -> Result<Provider, String> {
        let client = build_client(config.timeouts.connect)?;
        let base = config.base_url.trim_end_matches('/');
        let uri = |path: &str| -> Result<http::Uri, String> {
            format!("{base}{path}")
                .parse::<http::Uri>()
                .map_err(|e| format!("provider {}: invalid base_url {base:?}: {e}", config.slug))
        };
        // Upstream paths by kind (CONTRACT §3); Anthropic serves chat only.
        let uris = match config.kind {
            ProviderKind::Anthropic => {
                let messages = uri("/v1/messages")?;
                [messages.clone(), messages.clone(), messages]
            }
            ProviderKind::Cohere => {
                let chat = uri("/v2/chat")?;
                [chat.clone(), chat.clone(), chat]
            }
            _ => [
                uri(Endpoint::Chat.openai_path())?,
                uri(Endpoint::Completions.openai_path())?,
                uri(Endpoint::Embeddings.openai_path())?,
            ],
        };
        let (auth_header, auth_value) = match config.kind {
            ProviderKind::Anthropic => (
                http::HeaderName::from_static("x-api-key"),
                config.api_key.clone().unwrap_or_default(),
            ),
            ProviderKind::Azure => (
                http::HeaderName::from_static("api-key"),
                config.api_key.clone().unwrap_or_default(),
            ),
            ProviderKind::Gemini => (
                http::HeaderName::from_static("x-goog-api-key"),
                config.api_key.clone().unwrap_or_default(),
            ),
            _ => (
                http::header::AUTHORIZATION,
                config
                    .api_key
                    .as_ref()
                    .map(|k| format!("Bearer {k}"))
                    .unwrap_or_default(),
            ),
        };
        let auth = match &config.api_key {
            Some(k) if !k.is_empty() => {
                let mut v = http::HeaderValue::from_str(&auth_value).map_err(|_| {
                    format!(
                        "provider {}: api_key contains characters not allowed in a header",
                        config.slug
                    )
                })?;
                v.set_sensitive(true);
                Some((auth_header, v))
            }
            _ => None,
        };
        let mut extra_headers = Vec::new();
        if config.kind == ProviderKind::Anthropic {
            extra_headers.push((
                http::HeaderName::from_static("anthropic-version"),
                http::HeaderValue::from_static(switchyard_translate::anthropic::API_VERSION),
            ));
        }
        for (k, v) in &config.headers {
            let name = http::HeaderName::from_bytes(k.as_bytes())
                .map_err(|_| format!("provider {}: invalid header name {k:?}", config.slug))?;
            let value = http::HeaderValue::from_str(v)
                .map_err(|_| format!("provider {}: invalid value for header {k:?}", config.slug))?;
            extra_headers.push((name, value));
        }
        Ok(Provider {
            config,
            client,
            uris,
            auth,
            extra_headers,
        })
    }

    /// An upstream POST for `endpoint` with `body`, in the provider's own dialect.
    /// `upstream_model` is the provider's model name (Azure: the deployment, in the path).
    pub fn request(
        &self,
        endpoint: Endpoint,
        upstream_model: &str,
        stream: bool,
        body: Bytes,
    ) -> Result<http::Request<Full<Bytes>>, String> {
        let uri = match (self.config.kind, endpoint) {
            (ProviderKind::Azure, _) => {
                let base = self.config.base_url.trim_end_matches('/');
                let version = self
                    .config
                    .api_version
                    .as_deref()
                    .unwrap_or(AZURE_API_VERSION);
                format!(
                    "{base}/openai/deployments/{upstream_model}{}?api-version={version}",
                    endpoint.openai_path()
                )
                .parse::<http::Uri>()
                .map_err(|e| format!("invalid Azure deployment URL for {upstream_model:?}: {e}"))?
            }
            (ProviderKind::Gemini | ProviderKind::Vertex, _) => {
                let base = self.config.base_url.trim_end_matches('/');
                let method = if stream {
                    "streamGenerateContent?alt=sse"
                } else {
                    "generateContent"
                };
                format!("{base}/models/{upstream_model}:{method}")
                    .parse::<http::Uri>()
                    .map_err(|e| format!("invalid Gemini URL for {upstream_model:?}: {e}"))?
            }
            (ProviderKind::Bedrock, _) => {
                let base = self.config.base_url.trim_end_matches('/');
                let action = if stream {
                    "converse-stream"
                } else {
                    "converse"
                };
                let model = bedrock::sigv4::uri_encode(upstream_model);
                format!("{base}/model/{model}/{action}")
                    .parse::<http::Uri>()
                    .map_err(|e| format!("invalid Bedrock URL for {upstream_model:?}: {e}"))?
            }
            (_, Endpoint::Chat) => self.uris[0].clone(),
            (_, Endpoint::Completions) => self.uris[1].clone(),
            (_, Endpoint::Embeddings) => self.uris[2].clone(),
        };
        let mut req = http::Request::new(Full::new(body));
        *req.method_mut() = http::Method::POST;
        *req.uri_mut() = uri;
        let h = req.headers_mut();
        h.insert(
            http::header::CONTENT_TYPE,
            http::HeaderValue::from_static("application/json"),
        );
        h.insert(
            http::header::ACCEPT,
            http::HeaderValue::from_static(if stream {
                "text/event-stream"
            } else {
                "application/json"
            }),
        );
        if let Some((name, value)) = &self.auth {
            h.insert(name.clone(), value.clone());
        }
        for (k, v) in &self.extra_headers {
            h.insert(k.clone(), v.clone());
        }
        if let (ProviderKind::Bedrock, Some(creds)) =
            (self.config.kind, &self.config.aws_credentials)
        {
            self.sign_bedrock(&mut req, creds)?;
        }
        Ok(req)
    }

    /// SigV4-sign a Bedrock request. The model id is already percent-encoded in the path;
    /// SigV4's canonical URI encodes each segment again (Bedrock is not S3).
    fn sign_bedrock(
        &self,
        req: &mut http::Request<Full<Bytes>>,
        creds: &bedrock::sigv4::Credentials,
    ) -> Result<(), String> {
        use http_body_util::BodyExt;
        let uri = req.uri().clone();
        let host = match (uri.host(), uri.port_u16()) {
            (Some(h), Some(p)) => format!("{h}:{p}"),
            (Some(h), None) => h.to_string(),
            (None, _) => return Err("Bedrock URL has no host".into()),
        };
        let canonical_path: String = uri
            .path()
            .split('/')
            .map(bedrock::sigv4::uri_encode)
            .collect::<Vec<_>>()
            .join("/");
        // A Full body is already in memory: frame() is ready immediately.
        let body = req
            .body()
            .clone()
            .frame()
            .now_or_never()
            .flatten()
            .and_then(|f| f.ok())
            .and_then(|f| f.into_data().ok())
            .unwrap_or_default();
        let region = self.config.region.as_deref().unwrap_or("us-east-1");
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let signed = bedrock::sigv4::sign(
            "POST",
            &canonical_path,
            "",
            &[("host", &host), ("content-type", "application/json")],
            &body,
            creds,
            region,
            "bedrock",
            now,
        );
        for (k, v) in signed {
            let name = http::HeaderName::from_bytes(k.as_bytes()).map_err(|e| e.to_string())?;
            let mut value = http::HeaderValue::from_str(&v).map_err(|e| e.to_string())?;
            value.set_sensitive(k == "authorization" || k == "x-amz-security-token");
            req.headers_mut().insert(name, value);
        }
        Ok(())
    }
}
