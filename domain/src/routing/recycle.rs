//! Y1-Y4, S6: the recycle plan of a soft-declined rebill.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::ids::GatewayId;
use crate::setup::RecycleProfile;

/// The FlexFactor slots of a recycle profile (S6).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum RecycleSlot {
    #[serde(rename = "4-6")]
    Attempts4To6,
    #[serde(rename = "7-9")]
    Attempts7To9,
    #[serde(rename = "final")]
    Final,
}

impl RecycleSlot {
    /// The slot of re-attempt `number` (1-based) out of `total`, if FlexFactor may take it.
    pub fn of(number: usize, total: usize) -> Option<RecycleSlot> {
        match number {
            4..=6 => Some(RecycleSlot::Attempts4To6),
            7..=9 => Some(RecycleSlot::Attempts7To9),
            n if n == total && n > 0 => Some(RecycleSlot::Final),
            _ => None,
        }
    }

    pub fn as_str(&self) -> &'static str {
        match self {
            RecycleSlot::Attempts4To6 => "4-6",
            RecycleSlot::Attempts7To9 => "7-9",
            RecycleSlot::Final => "final",
        }
    }
}

/// Where a re-attempt runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum RecycleTarget {
    /// Y2: the subscription's billing gateway.
    BillingGateway,
    /// Y3: handed to FlexFactor once.
    #[serde(rename = "flexfactor")]
    FlexFactor {
        gateway: GatewayId,
        slot: RecycleSlot,
    },
}

/// One planned re-attempt.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlannedAttempt {
    /// 1-based re-attempt number.
    pub number: u32,
    pub wait_days: i64,
    pub target: RecycleTarget,
}

/// The re-attempts a soft-declined rebill will get. It ends at the first FlexFactor attempt
/// (Y3: FlexFactor retries on its own; later slots are not used).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecyclePlan {
    pub attempts: Vec<PlannedAttempt>,
}

impl RecyclePlan {
    pub fn attempt(&self, number: u32) -> Option<&PlannedAttempt> {
        self.attempts.iter().find(|a| a.number == number)
    }

    /// Y1: when re-attempt `number` is due, given when the previous attempt happened.
    pub fn due_at(&self, number: u32, previous: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.attempt(number)
            .map(|a| crate::clock::days_after(previous, a.wait_days))
    }

    /// The FlexFactor hand-over, if the plan reaches one.
    pub fn handover(&self) -> Option<&PlannedAttempt> {
        self.attempts
            .iter()
            .find(|a| matches!(a.target, RecycleTarget::FlexFactor { .. }))
    }

    pub fn is_empty(&self) -> bool {
        self.attempts.is_empty()
    }
}

/// Builds the plan of a profile; `None` profile gives the empty plan (Y4 at once).
/// An attempt marked `flexfactor` without a FlexFactor gateway, or on a position S6 forbids, runs
/// on the billing gateway (the setup validation refuses such a profile anyway).
pub fn recycle_plan(profile: Option<&RecycleProfile>) -> RecyclePlan {
    let Some(profile) = profile else {
        return RecyclePlan {
            attempts: Vec::new(),
        };
    };
    let total = profile.attempts.len();
    let mut attempts = Vec::new();
    for (i, a) in profile.attempts.iter().enumerate() {
        let number = i + 1;
        let ff = match (
            &profile.flexfactor_gateway,
            a.flexfactor,
            RecycleSlot::of(number, total),
        ) {
            (Some(g), true, Some(slot)) => Some(RecycleTarget::FlexFactor {
                gateway: g.clone(),
                slot,
            }),
            _ => None,
        };
        let is_ff = ff.is_some();
        attempts.push(PlannedAttempt {
            number: number as u32,
            wait_days: a.wait_days.max(0),
            target: ff.unwrap_or(RecycleTarget::BillingGateway),
        });
        if is_ff {
            break;
        }
    }
    RecyclePlan { attempts }
}
