//! Roomraft operations: Prometheus metrics, rate limiting and usage analytics.

pub mod analytics;
pub mod limits;
pub mod metrics;

pub use analytics::AnalyticsConfig;
pub use limits::{Limiter, LimitsConfig, Refusal};
pub use metrics::{Metrics, RaftMetrics};
