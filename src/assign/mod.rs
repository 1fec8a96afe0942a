//! Assignments: app or profile → target → schedule, and the reconciler that turns them
//! into commands.

pub mod schedule;
