//! Shared gateway state: configuration snapshot, providers, catalog, authenticator.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use switchyard_router::{Catalog, EndpointSpec, HealthRegistry, StickyTable};

use crate::auth::Authenticator;
use crate::provider::{Provider, ProviderConfig};

/// Gateway settings that are not per provider.
#[derive(Debug, Clone)]
pub struct GatewaySettings {
    /// Largest accepted request body.
    pub max_body_bytes: usize,
    /// `/metrics` without authentication.
    pub metrics_public: bool,
    /// Silence on a stream after which an SSE keep-alive comment is sent.
    pub keepalive_interval: Duration,
    /// Hedging: after this long without an answer, race the next endpoint (None: off).
    pub hedge_after: Option<Duration>,
    /// Longest `Retry-After` honoured by waiting when no other endpoint is left.
    pub max_retry_after: Duration,
    /// Default `provider` preferences (JSON) under each request's own.
    pub default_provider: Option<String>,
}

impl Default for GatewaySettings {
    fn default() -> Self {
        GatewaySettings {
            max_body_bytes: 16 * 1024 * 1024,
            metrics_public: true,
            keepalive_interval: Duration::from_secs(5),
            hedge_after: None,
            max_retry_after: Duration::from_secs(5),
            default_provider: None,
        }
    }
}

#[derive(Debug)]
pub struct Gateway {
    pub settings: GatewaySettings,
    pub catalog: Catalog,
    pub providers: HashMap<String, Provider>,
    pub auth: Arc<dyn Authenticator>,
    /// Endpoint health, shared by every worker of the node.
    pub health: Arc<HealthRegistry>,
    /// Conversation → endpoint bindings for prompt caching, shared by every worker.
    pub sticky: Arc<StickyTable>,
    /// Keys, budgets and the ledger (None: no store, admin key only).
    pub accounts: Option<Arc<crate::accounts::Accounts>>,
}

/// State shared by all workers of a node (each worker has its own `Gateway` and pools).
#[derive(Debug, Clone, Default)]
pub struct NodeShared {
    pub health: Arc<HealthRegistry>,
    pub sticky: Arc<StickyTable>,
    pub accounts: Option<Arc<crate::accounts::Accounts>>,
}

pub type AppState = Arc<Gateway>;

impl Gateway {
    pub fn new(
        settings: GatewaySettings,
        catalog: Catalog,
        providers: Vec<ProviderConfig>,
        auth: Arc<dyn Authenticator>,
        shared: NodeShared,
    ) -> Result<Gateway, String> {
        let mut map = HashMap::new();
        for p in providers {
            map.insert(p.slug.clone(), Provider::new(p)?);
        }
        Ok(Gateway {
            settings,
            catalog,
            providers: map,
            auth,
            health: shared.health,
            sticky: shared.sticky,
            accounts: shared.accounts,
        })
    }

    /// Whether a catalog endpoint can be routed to: its provider is configured and this
    /// build has an adapter for the provider's kind.
    pub fn endpoint_available(&self, e: &EndpointSpec) -> bool {
        self.providers
            .get(&e.provider)
            .is_some_and(|p| p.config.kind.has_adapter())
    }

    /// Available, and its provider's API serves this route (Anthropic: chat only).
    pub fn endpoint_serves(
        &self,
        e: &EndpointSpec,
        endpoint: switchyard_translate::Endpoint,
    ) -> bool {
        self.providers
            .get(&e.provider)
            .is_some_and(|p| p.config.kind.has_adapter() && p.config.kind.supports(endpoint))
    }
}
