//! What one feed event maps to.

use chrono::{DateTime, Utc};

use crate::trace::TraceEntry;

/// The trace entry an event maps to, at its time; `None` for an event the domain derives.
pub(super) type Line = Option<(DateTime<Utc>, TraceEntry)>;
