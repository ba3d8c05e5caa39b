//! The `proptest-state-machine` glue: the system under test is a [`World`], the reference is
//! [`Reference<F>`]; after every transition both the rule invariants and the agreement with the
//! model are checked ([`invariants::assert_all`]). `F` sets which transitions a test favours.

use std::marker::PhantomData;

use proptest_state_machine::{ReferenceStateMachine, StateMachineTest};

use super::invariants;
use super::reference::{Focus, RefState, Reference, Transition, Weights};
use super::world::World;

/// The state-machine test of focus `F`.
pub struct Harness<F>(PhantomData<F>);

impl<F: Focus> StateMachineTest for Harness<F> {
    type SystemUnderTest = World;
    type Reference = Reference<F>;

    fn init_test(ref_state: &<Self::Reference as ReferenceStateMachine>::State) -> World {
        let mut world = World::new(ref_state.gateways, ref_state.flexfactor);
        for t in &ref_state.seed {
            world.apply(t);
        }
        world.last = Ok(());
        world
    }

    fn apply(mut world: World, _ref_state: &RefState, transition: Transition) -> World {
        world.apply(&transition);
        world
    }

    fn check_invariants(world: &World, ref_state: &RefState) {
        invariants::assert_all(world, ref_state);
    }
}

/// Everything, evenly.
pub struct AllRules;
impl Focus for AllRules {
    fn weights() -> Weights {
        Weights {
            sale: 6,
            recurring_sales_in_ten: 5,
            approved_in_ten: 5,
            rebill_approved_in_ten: 4,
            gateways_soft_in_ten: 2,
            seed_subscriptions: 1,
            trial_completion: 3,
            rebill: 5,
            rerun: 4,
            deliver: 6,
            late_answer: 2,
            advance: 5,
            set_gateways: 3,
            set_flexfactor: 3,
            cancel: 1,
            advice_in_ten: 3,
            crm_declines: 1,
            restart: 1,
            direct_cascade_in_ten: 0,
        }
    }
}

/// New sales: cascades (C1-C5), reruns (R1-R5), their results (O1, O2, O6, O7, K1-K3).
pub struct NewSales;
impl Focus for NewSales {
    fn weights() -> Weights {
        Weights {
            sale: 8,
            recurring_sales_in_ten: 3,
            approved_in_ten: 3,
            rebill_approved_in_ten: 5,
            gateways_soft_in_ten: 0,
            seed_subscriptions: 0,
            trial_completion: 0,
            rebill: 0,
            rerun: 5,
            deliver: 6,
            late_answer: 2,
            advance: 2,
            set_gateways: 3,
            set_flexfactor: 3,
            cancel: 0,
            advice_in_ten: 2,
            crm_declines: 1,
            restart: 1,
            direct_cascade_in_ten: 0,
        }
    }
}

/// Subscriptions: rebills, recycle billing and its FlexFactor hand-over (Y1-Y4, D4, O4, O5, S8).
pub struct Recurring;
impl Focus for Recurring {
    fn weights() -> Weights {
        Weights {
            sale: 3,
            recurring_sales_in_ten: 9,
            approved_in_ten: 6,
            rebill_approved_in_ten: 2,
            gateways_soft_in_ten: 6,
            seed_subscriptions: 3,
            trial_completion: 1,
            rebill: 8,
            rerun: 1,
            deliver: 6,
            late_answer: 2,
            advance: 8,
            set_gateways: 4,
            set_flexfactor: 3,
            cancel: 1,
            advice_in_ten: 2,
            crm_declines: 1,
            restart: 1,
            direct_cascade_in_ten: 0,
        }
    }
}

/// Trial completions and their reruns (O3).
pub struct TrialCompletions;
impl Focus for TrialCompletions {
    fn weights() -> Weights {
        Weights {
            sale: 4,
            recurring_sales_in_ten: 9,
            approved_in_ten: 5,
            rebill_approved_in_ten: 5,
            gateways_soft_in_ten: 0,
            seed_subscriptions: 2,
            trial_completion: 6,
            rebill: 1,
            rerun: 6,
            deliver: 6,
            late_answer: 2,
            advance: 2,
            set_gateways: 2,
            set_flexfactor: 3,
            cancel: 1,
            advice_in_ten: 1,
            crm_declines: 0,
            restart: 1,
            direct_cascade_in_ten: 0,
        }
    }
}

/// Results: duplicates, resends, polls, late evaluate answers, expiry (O7, O8).
pub struct Deliveries;
impl Focus for Deliveries {
    fn weights() -> Weights {
        Weights {
            sale: 4,
            recurring_sales_in_ten: 5,
            approved_in_ten: 4,
            rebill_approved_in_ten: 3,
            gateways_soft_in_ten: 4,
            seed_subscriptions: 2,
            trial_completion: 2,
            rebill: 3,
            rerun: 4,
            deliver: 12,
            late_answer: 5,
            advance: 5,
            set_gateways: 1,
            set_flexfactor: 2,
            cancel: 0,
            advice_in_ten: 1,
            crm_declines: 0,
            restart: 1,
            direct_cascade_in_ten: 0,
        }
    }
}

/// The card-network rules (N1-N5, N7-N9): sales, rebills and reruns on a few shared cards,
/// declines that mostly carry network advice, batches of the CRM's own declines, clock moves and
/// restarts.
pub struct NetworkRules;
impl Focus for NetworkRules {
    fn weights() -> Weights {
        Weights {
            sale: 8,
            recurring_sales_in_ten: 5,
            approved_in_ten: 2,
            rebill_approved_in_ten: 2,
            gateways_soft_in_ten: 5,
            seed_subscriptions: 3,
            trial_completion: 1,
            rebill: 6,
            rerun: 5,
            deliver: 4,
            late_answer: 1,
            advance: 6,
            set_gateways: 4,
            set_flexfactor: 2,
            cancel: 1,
            advice_in_ten: 7,
            crm_declines: 6,
            restart: 2,
            direct_cascade_in_ten: 5,
        }
    }
}
