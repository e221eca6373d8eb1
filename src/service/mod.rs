//! The live service (`journey serve`, SERVICE.md): partitions of customers,
//! each with a durable journal, a runtime and an outbox, behind the Segment
//! HTTP API. Drives [`crate::runtime`], never reimplements it.
//!
//! - [`partitions`]: which partition a customer belongs to (also used by
//!   `journey simulate --threads`).
//! - [`threads`]: `journey simulate --threads N`, the partitions on N
//!   threads, their actions merged back into one runtime's order.

pub mod partitions;
pub mod threads;
