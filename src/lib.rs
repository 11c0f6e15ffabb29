//! many-clients
pub mod sync;
pub mod counter;
pub mod limit;
pub mod shutdown;
pub mod registry;
