//! placeholder

pub mod conn;
