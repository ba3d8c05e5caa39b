//! Submitting a salvage to FlexFactor: the next attempt's `SalvageSubmitted`.

use chrono::{DateTime, Utc};

use super::decision::Decision;
use crate::idempotency::IdempotencyKey;
use crate::ids::GatewayId;
use crate::order::error::OrderError;
use crate::order::event::{OrderEvent, SalvageRoute};
use crate::ports::SubmissionMode;

pub(super) fn submit(
    d: &mut Decision<'_>,
    route: SalvageRoute,
    flexfactor_gateway: GatewayId,
    mode: SubmissionMode,
    now: DateTime<Utc>,
) -> Result<(), OrderError> {
    let details = d.details()?;
    let attempt = d.state().salvage_attempts + 1;
    let e = OrderEvent::SalvageSubmitted {
        attempt,
        idempotency_key: IdempotencyKey::salvage(&details.order_id, attempt),
        amount: details.amount,
        route,
        flexfactor_gateway,
        mode,
        at: now,
    };
    d.emit(e);
    Ok(())
}
