//! placeholder

pub mod client;
pub mod stress;
