//! Drives users through a Program: clock, timers, instances, caps, quiet hours, state store.
