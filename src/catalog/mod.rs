//! The catalog: apps and configuration profiles (uploaded or from templates).

pub mod profiles;
