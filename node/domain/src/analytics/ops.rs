//! Commands of this area: one struct each, and the enum `Op::Analytics` holds.

use jiff::civil::Date;
use serde::{Deserialize, Serialize};

use crate::model::Outcome;
use crate::op::replies;

use super::PageView;

/// Page-view analytics: the daily salts and the batches of views.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AnalyticsOp {
    SetAnalyticsSalt(SetAnalyticsSalt),
    RecordPageViews(RecordPageViews),
}

/// The secret that keys visitor ids on UTC `day` (hex); the first proposal wins.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SetAnalyticsSalt {
    pub day: Date,
    pub salt: String,
}

/// A batch of page views from one node; detail older than `retention_months` is rolled up.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordPageViews {
    pub views: Vec<PageView>,
    pub retention_months: u16,
}

replies! {
    SetAnalyticsSalt: () { Outcome::Done => () }
    /// Page views counted, and those skipped (unknown tenant, too old, malformed).
    RecordPageViews: (u32, u32) {
        Outcome::PageViewsRecorded { recorded, skipped } => (recorded, skipped),
    }
}
