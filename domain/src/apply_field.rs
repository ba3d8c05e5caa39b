//! How an aggregate's `apply` body takes a field of the event it applies, so that one body
//! serves both `apply` (the event owned) and `apply_ref` (the event borrowed): see
//! `apply_order_event!` and `apply_subscription_event!`.

/// A field of an owned event, as the state keeps it: moved.
macro_rules! moved {
    ($field:expr) => {
        $field
    };
}

/// A field of a borrowed event, as the state keeps it: copied.
macro_rules! copied {
    ($field:expr) => {
        $field.clone()
    };
}
