//! Ports: what the domain needs from the outside world, as traits. Adapters implement them
//! (HTTP in production, statistical models in the simulator, fakes in tests).

mod charge;
mod flexfactor;
mod gateway_answer;

pub use crate::clock::{Clock, ManualClock, SystemClock};
pub use charge::{Charge, ChargeError, ChargePurpose, ChargeRequest};
pub use flexfactor::{
    EvaluateAnswer, FlexFactor, FlexFactorError, FlexFactorOrderStatus, RefundAnswer,
    SalvageRequest, SubmissionMode, SubscriptionInfo,
};
pub use gateway_answer::GatewayAnswer;
