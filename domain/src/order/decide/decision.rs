//! The scratch state the Order decides with (`crate::decision::Decision` over `Order`).

use crate::order::error::OrderError;
use crate::order::event::OrderDetails;
use crate::order::state::Order;

pub(super) type Decision<'a> = crate::decision::Decision<'a, Order>;

impl Decision<'_> {
    pub(super) fn details(&self) -> Result<&OrderDetails, OrderError> {
        self.state().details.as_deref().ok_or(OrderError::NotPlaced)
    }
}
