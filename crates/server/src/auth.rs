//! Authentication: one layer that turns the caller's credential into a [`Principal`].
//!
//! Today the admin key (`server.admin_key` / `SWITCHYARD_ADMIN_KEY`) authorises
//! inference; API keys with budgets plug in as another [`Authenticator`].

use std::future::Future;
use std::pin::Pin;

use axum::extract::FromRequestParts;
use axum::http::HeaderMap;
use axum::http::request::Parts;
use std::sync::Arc;
use subtle::ConstantTimeEq;

use crate::accounts::{Accounts, KeyState};

use crate::error::ApiError;
use crate::state::AppState;

/// Who is calling.
#[derive(Debug, Clone)]
pub enum Principal {
    /// The admin (management) key.
    Admin,
    /// An API key, with its live budget state.
    Key(Arc<KeyState>),
}

impl PartialEq for Principal {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (Principal::Admin, Principal::Admin) => true,
            (Principal::Key(a), Principal::Key(b)) => Arc::ptr_eq(a, b),
            _ => false,
        }
    }
}

impl Principal {
    /// Label used in logs and metrics (never the secret).
    pub fn label(&self) -> &'static str {
        match self {
            Principal::Admin => "admin",
            Principal::Key(_) => "key",
        }
    }

    /// A stable identity (the key's hash; "admin").
    pub fn id(&self) -> String {
        match self {
            Principal::Admin => "admin".to_string(),
            Principal::Key(k) => k.hash(),
        }
    }

    /// The API key's hash, if an API key is calling.
    pub fn key_hash(&self) -> Option<String> {
        match self {
            Principal::Admin => None,
            Principal::Key(k) => Some(k.hash()),
        }
    }
}

pub type AuthFuture<'a> = Pin<Box<dyn Future<Output = Result<Principal, ApiError>> + Send + 'a>>;

/// Turns a bearer token into a principal.
pub trait Authenticator: Send + Sync + std::fmt::Debug {
    fn authenticate<'a>(&'a self, token: &'a str) -> AuthFuture<'a>;
}

/// Accepts only the configured admin key (compared in constant time).
#[derive(Debug)]
pub struct AdminKeyAuth {
    admin_key: Option<String>,
}

impl AdminKeyAuth {
    pub fn new(admin_key: Option<String>) -> Self {
        AdminKeyAuth { admin_key }
    }
}

impl Authenticator for AdminKeyAuth {
    fn authenticate<'a>(&'a self, token: &'a str) -> AuthFuture<'a> {
        let ok = self
            .admin_key
            .as_deref()
            .is_some_and(|k| bool::from(k.as_bytes().ct_eq(token.as_bytes())));
        Box::pin(async move {
            if ok {
                Ok(Principal::Admin)
            } else {
                Err(ApiError::Unauthorized("Invalid API key".into()))
            }
        })
    }
}

/// The admin key, or an API key from the store.
#[derive(Debug)]
pub struct KeyAuth {
    admin: AdminKeyAuth,
    accounts: Arc<Accounts>,
}

impl KeyAuth {
    pub fn new(admin_key: Option<String>, accounts: Arc<Accounts>) -> Self {
        KeyAuth {
            admin: AdminKeyAuth::new(admin_key),
            accounts,
        }
    }
}

impl Authenticator for KeyAuth {
    fn authenticate<'a>(&'a self, token: &'a str) -> AuthFuture<'a> {
        Box::pin(async move {
            if let Ok(p) = self.admin.authenticate(token).await {
                return Ok(p);
            }
            self.accounts.authenticate(token).await.map(Principal::Key)
        })
    }
}

/// The credential from `Authorization: Bearer …`, or `x-api-key` (Anthropic SDKs).
pub fn bearer_token(headers: &HeaderMap) -> Option<&str> {
    if let Some(v) = headers.get(axum::http::header::AUTHORIZATION) {
        let v = v.to_str().ok()?.trim();
        let (scheme, token) = v.split_once(' ')?;
        if scheme.eq_ignore_ascii_case("bearer") {
            let t = token.trim();
            return (!t.is_empty()).then_some(t);
        }
        return None;
    }
    headers
        .get("x-api-key")
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|t| !t.is_empty())
}

impl FromRequestParts<AppState> for Principal {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let token = bearer_token(&parts.headers)
            .ok_or_else(|| ApiError::Unauthorized("Missing Authentication header".into()))?;
        state.auth.authenticate(token).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn admin_key() {
        let a = AdminKeyAuth::new(Some("sk-admin".into()));
        assert_eq!(a.authenticate("sk-admin").await.unwrap(), Principal::Admin);
        assert!(a.authenticate("sk-admin2").await.is_err());
        assert!(AdminKeyAuth::new(None).authenticate("").await.is_err());
    }

    #[test]
    fn bearer_parsing() {
        let mut h = HeaderMap::new();
        h.insert("authorization", "Bearer abc ".parse().unwrap());
        assert_eq!(bearer_token(&h), Some("abc"));
        h.insert("authorization", "Basic abc".parse().unwrap());
        assert_eq!(bearer_token(&h), None);
        let mut h = HeaderMap::new();
        h.insert("x-api-key", "k".parse().unwrap());
        assert_eq!(bearer_token(&h), Some("k"));
    }
}
