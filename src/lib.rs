//! many-clients
pub mod client;
pub mod conn;
pub mod counter;
pub mod limit;
pub mod registry;
pub mod server;
pub mod shutdown;
pub mod stress;
pub mod sync;
pub mod timeline;
