//! The scratch state both aggregates decide with: each decided event counts at once, so later
//! decisions in the same command see it.
//!
//! The scratch state is built lazily. Until the first event is decided, [`Decision::state`] is
//! the aggregate itself (borrowed, not copied). After that, the first read of the state copies
//! the aggregate once and applies every event decided so far; later events are applied to that
//! copy as they are decided. A command that decides nothing, or never reads the state after its
//! first event (most commands), never copies the aggregate. What `state()` returns is always the
//! aggregate with every decided event applied in order, exactly as with an eager copy.

use std::cell::OnceCell;

use cqrs_es::Aggregate;

pub(crate) struct Decision<'a, A: Aggregate> {
    /// The aggregate's state before the command.
    base: &'a A,
    /// When set: `base` with every event of `events` applied, in order.
    scratch: OnceCell<A>,
    events: Vec<A::Event>,
}

impl<'a, A: Aggregate + Clone> Decision<'a, A> {
    /// Starts from the aggregate's state (borrowed; copied only if read after an event).
    pub fn from(state: &'a A) -> Self {
        Decision {
            base: state,
            scratch: OnceCell::new(),
            events: Vec::new(),
        }
    }

    /// The state with every event decided so far applied.
    pub fn state(&self) -> &A {
        if self.events.is_empty() {
            return self.base;
        }
        self.scratch.get_or_init(|| {
            let mut state = self.base.clone();
            for e in &self.events {
                state.apply(e.clone());
            }
            state
        })
    }

    /// Records a decided event (applied to the scratch state, if one was built already).
    pub fn emit(&mut self, e: A::Event) {
        if let Some(state) = self.scratch.get_mut() {
            state.apply(e.clone());
        }
        self.events.push(e);
    }

    /// The events decided, in order.
    pub fn into_events(self) -> Vec<A::Event> {
        self.events
    }
}

#[cfg(test)]
mod tests {
    use std::cell::Cell;

    use cqrs_es::event_sink::EventSink;
    use cqrs_es::{Aggregate, DomainEvent};
    use serde::{Deserialize, Serialize};

    use super::Decision;

    thread_local! {
        static CLONES: Cell<usize> = const { Cell::new(0) };
    }

    /// A log aggregate that counts its clones.
    #[derive(Debug, Default, PartialEq, Serialize, Deserialize)]
    struct Log {
        items: Vec<u32>,
    }

    impl Clone for Log {
        fn clone(&self) -> Self {
            CLONES.with(|c| c.set(c.get() + 1));
            Log {
                items: self.items.clone(),
            }
        }
    }

    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    struct Pushed(u32);

    impl DomainEvent for Pushed {
        fn event_type(&self) -> String {
            "pushed".to_string()
        }
        fn event_version(&self) -> String {
            "1".to_string()
        }
    }

    #[derive(Debug, thiserror::Error)]
    #[error("never")]
    struct Never;

    impl Aggregate for Log {
        const TYPE: &'static str = "log";
        type Command = ();
        type Event = Pushed;
        type Error = Never;
        type Services = ();

        async fn handle(
            &mut self,
            _command: (),
            _services: &(),
            _sink: &EventSink<Self>,
        ) -> Result<(), Never> {
            Ok(())
        }

        fn apply(&mut self, event: Pushed) {
            self.items.push(event.0);
        }
    }

    fn clones() -> usize {
        CLONES.with(|c| c.get())
    }

    #[test]
    fn no_copy_without_a_read_after_an_event() {
        let log = Log { items: vec![1, 2] };
        let before = clones();
        let mut d = Decision::from(&log);
        assert_eq!(d.state().items, vec![1, 2]);
        d.emit(Pushed(3));
        d.emit(Pushed(4));
        assert_eq!(d.into_events(), vec![Pushed(3), Pushed(4)]);
        assert_eq!(clones(), before);
    }

    #[test]
    fn a_read_after_an_event_sees_every_event_and_copies_once() {
        let log = Log { items: vec![1] };
        let before = clones();
        let mut d = Decision::from(&log);
        d.emit(Pushed(2));
        d.emit(Pushed(3));
        assert_eq!(d.state().items, vec![1, 2, 3]);
        d.emit(Pushed(4));
        assert_eq!(d.state().items, vec![1, 2, 3, 4]);
        assert_eq!(d.state().items, vec![1, 2, 3, 4]);
        assert_eq!(clones(), before + 1);
        assert_eq!(d.into_events(), vec![Pushed(2), Pushed(3), Pushed(4)]);
        // The aggregate itself is untouched.
        assert_eq!(log.items, vec![1]);
    }
}
