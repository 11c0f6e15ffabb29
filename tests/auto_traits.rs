//! Compile-time checks of the auto traits the design relies on: shared state
//! is `Send + Sync` (it lives in an `Arc` touched by every connection
//! thread), guards are `Send` (each moves into its connection's thread).
//! The opposite — a lock guard must *not* be `Send` — is a `compile_fail`
//! doc-test in `src/sync/monitor.rs` (checked by `tests/book.rs`). If one of these stops compiling, a type
//! changed in a way that breaks the server's threading.

use many_clients::counter::{
    AtomicCounter, ClientGuard, Counter, LockedCounter, ParkingLotCounter,
};
use many_clients::limit::{Limit, Permit};
use many_clients::registry::{Registration, Roster};
use many_clients::server::{ServerHandle, pipe::PipeStream};
use many_clients::shutdown::{Live, Shutdown};
use many_clients::sync::{Monitor, ParkingLot, Std};
use std::net::TcpStream;

const fn shared<T: Send + Sync + ?Sized>() {}
const fn sendable<T: Send>() {}

const _: () = {
    shared::<LockedCounter<Std>>();
    shared::<ParkingLotCounter>();
    shared::<AtomicCounter<Std>>();
    shared::<dyn Counter>();
    shared::<Limit<Std>>();
    shared::<Limit<ParkingLot>>();
    shared::<Shutdown<Std>>();
    shared::<Roster<TcpStream, Std>>();
    shared::<Monitor<u64, Std>>();
    sendable::<ClientGuard>();
    sendable::<Permit<Limit<Std>>>();
    sendable::<Live<Shutdown<Std>>>();
    sendable::<Registration<TcpStream>>();
    sendable::<PipeStream<Std>>();
    sendable::<ServerHandle>();
};

#[test]
fn auto_traits_hold() {
    // The checks above run at compile time; this test exists so the file
    // shows up in the test report.
}
