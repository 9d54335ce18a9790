//! The model catalog, pricing and cost maths, and the routing plan for a request.
//! Pure: no IO (the built-in catalog is compiled in with `include_str!`).
//!
//! - [`catalog`] — models and their per-provider endpoints, the built-in data file merged
//!   with config overrides.
//! - [`pricing`] — exact decimal prices and the cost of a usage report.
//! - [`plan`] — which endpoints to try, in which order, for a requested model.
#![forbid(unsafe_code)]

pub mod catalog;
pub mod health;
pub mod plan;
pub mod prefs;
pub mod pricing;
pub mod sticky;

pub use catalog::{Catalog, CatalogError, EndpointSpec, ModelSpec};
pub use health::{Admission, HealthConfig, HealthRegistry};
pub use plan::{EndpointSignal, Plan, PlannedEndpoint, RequestFacts, RouteError};
pub use prefs::ProviderPrefs;
pub use pricing::{Cost, Pricing, TokenCounts};
pub use sticky::{ConversationKey, StickyTable};
