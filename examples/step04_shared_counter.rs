//! Chapter 4, step 4: sharing a counter between the client threads.
//!
//! Two versions of step 3's server, each with a counter every client thread updates:
//!
//! * [`serve_seed_counter`] is seed 000 exactly: an `Arc<Mutex<u64>>` that each client thread
//!   increments to take its id, and nobody ever decrements;
//! * [`serve`] uses the crate's [`ClientGuard`]: the id is taken in the accept loop (so ids follow
//!   accept order), the guard moves into the client's thread, and dropping it — however the thread
//!   ends, panics included — counts the client gone. The counter also knows how many clients are
//!   connected now, the peak, and how many were served.
//!
//! Lines marked `// New!` changed since step 3 (`examples/step03_thread_per_client.rs`).
//!
//! ```text
//! cargo run --example step04_shared_counter -- [IP:PORT] [--max-clients N]
//!                                              [--counter seed|mutex|parking-lot|atomic]
//! ```
//!
//! The address defaults to `127.0.0.1:0` (a free port; the first line says which) and must be a
//! loopback address: these step servers have no limits and are for trying things out locally.
//! With `--max-clients N` the server accepts N clients, waits for their threads, prints the
//! counter and exits. `--counter` picks seed 000's counter or one of the crate's (chapter 5).

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, Mutex}; // New!
use std::thread::{self, JoinHandle};

use clap::{Parser, ValueEnum};
use many_clients::conn::greet;
use many_clients::counter::{ClientGuard, Counter, CounterKind}; // New!
use many_clients::sync::Std; // New!

/// A thread-per-client greet server with a shared client counter (book chapter 4).
#[derive(Parser)]
struct Args {
    /// Where to listen; port 0 picks a free port. Loopback addresses only.
    #[arg(default_value = "127.0.0.1:0")]
    addr: SocketAddr,
    /// Serve this many clients, then exit (default: run until stopped).
    #[arg(long)]
    max_clients: Option<usize>,
    /// Which counter: seed 000's `Arc<Mutex<u64>>`, or one of the crate's counters.
    #[arg(long, value_enum, default_value_t = CounterChoice::Mutex)]
    counter: CounterChoice,
}

/// The `--counter` choices.
#[derive(Clone, Copy, ValueEnum)]
enum CounterChoice {
    /// Seed 000's counter: `Arc<Mutex<u64>>`, incremented by each client thread.
    Seed,
    /// The crate's `LockedCounter` on `std::sync::Mutex`.
    Mutex,
    /// The crate's `LockedCounter` on `parking_lot::Mutex`.
    ParkingLot,
    /// The crate's lock-free `AtomicCounter`.
    Atomic,
}

fn main() -> io::Result<()> {
    let args = Args::parse();
    if !args.addr.ip().is_loopback() {
        let why = "the step servers listen on loopback addresses only";
        return Err(io::Error::new(io::ErrorKind::InvalidInput, why));
    }
    let listener = TcpListener::bind(args.addr)?;
    println!(
        "Server is listening on port {}...",
        listener.local_addr()?.port()
    );
    let log = |line| println!("{line}");
    let kind = match args.counter {
        CounterChoice::Seed => {
            let issued = serve_seed_counter(listener, args.max_clients, log);
            println!("Server stopped: {issued} ids handed out");
            return Ok(());
        }
        CounterChoice::Mutex => CounterKind::Mutex,
        CounterChoice::ParkingLot => CounterKind::ParkingLot,
        CounterChoice::Atomic => CounterKind::Atomic,
    };
    let counter = kind.build::<Std>(); // New!
    serve(listener, args.max_clients, counter.clone(), log);
    let stats = counter.stats(); // New!
    println!(
        "Server stopped: {} clients served, peak {} at once",
        stats.served, stats.peak
    );
    Ok(())
}

// ANCHOR: seed_counter
/// Step 4, seed version: seed 000's `client_counter` and `counter_lock`, which Rust puts together
/// as one `Mutex<u64>`, shared by every client thread through an `Arc`. Returns the last id.
pub fn serve_seed_counter(
    listener: TcpListener,
    max_clients: Option<usize>,
    log: impl Fn(String) + Clone + Send + 'static,
) -> u64 {
    let client_counter = Arc::new(Mutex::new(0u64)); // New!
    let mut accepted = 0; // New!
    let mut handles: Vec<JoinHandle<()>> = Vec::new();
    for stream in listener.incoming().take(max_clients.unwrap_or(usize::MAX)) {
        let stream = match stream {
            Ok(stream) => stream,
            Err(e) => {
                eprintln!("warning: accept failed: {e}");
                continue;
            }
        };
        accepted += 1; // New!
        let counter = Arc::clone(&client_counter); // New!
        let log = log.clone();
        let spawned = thread::Builder::new()
            // New! The id is not known yet: the thread takes it. So the thread is named after
            // the accept, and accept order and id order may differ.
            .name(format!("accepted-{accepted}"))
            .spawn(move || {
                // New! The seed's `with counter_lock: client_counter += 1; client_id = ...`.
                // `lock()` fails only if another thread panicked while holding this lock; this
                // critical section cannot panic, so neither can the `unwrap`.
                let id = {
                    let mut count = counter.lock().unwrap();
                    *count += 1;
                    *count
                }; // `count`, the guard, is dropped here: the lock was held for two lines.
                if let Err(e) = handle_client(stream, id, &log) {
                    eprintln!("warning: client {id}: {e}");
                }
            });
        match spawned {
            Ok(handle) => handles.push(handle),
            Err(e) => eprintln!("warning: no thread for a client: {e}"), // New!
        }
        handles.retain(|handle| !handle.is_finished());
    }
    for handle in handles {
        if handle.join().is_err() {
            eprintln!("warning: a client thread panicked");
        }
    }
    *client_counter.lock().unwrap() // New!
}
// ANCHOR_END: seed_counter

// ANCHOR: serve
/// Step 4, the crate's version: a [`ClientGuard`] per client, taken in the accept loop and moved
/// into the client's thread. `counter` can be any [`Counter`]; read it after `serve` returns.
pub fn serve(
    listener: TcpListener,
    max_clients: Option<usize>,
    counter: Arc<dyn Counter>, // New!
    log: impl Fn(String) + Clone + Send + 'static,
) {
    let mut handles: Vec<JoinHandle<()>> = Vec::new();
    for stream in listener.incoming().take(max_clients.unwrap_or(usize::MAX)) {
        let stream = match stream {
            Ok(stream) => stream,
            Err(e) => {
                eprintln!("warning: accept failed: {e}");
                continue;
            }
        };
        // New! The id is taken here, in accept order, and the client counts as connected from
        // this moment until `guard` is dropped.
        let guard = ClientGuard::new(counter.clone());
        let id = guard.id(); // New!
        let log = log.clone();
        let spawned = thread::Builder::new()
            .name(format!("client-{id}"))
            .spawn(move || {
                if let Err(e) = handle_client(stream, id, &log) {
                    eprintln!("warning: client {id}: {e}");
                }
                // New! The thread owns the guard; dropping it counts the client gone. Had
                // `handle_client` panicked, unwinding would have dropped it all the same.
                drop(guard);
            });
        match spawned {
            Ok(handle) => handles.push(handle),
            // New! The closure was dropped unrun, and `guard` with it: the client counts as gone.
            Err(e) => eprintln!("warning: no thread for client {id}: {e}"),
        }
        handles.retain(|handle| !handle.is_finished());
    }
    for handle in handles {
        if handle.join().is_err() {
            eprintln!("warning: a client thread panicked");
        }
    }
}
// ANCHOR_END: serve

// ANCHOR: handle_client
/// One conversation, as seed 000 has it: one read is the message, one write is the reply, then
/// close.
fn handle_client(mut stream: TcpStream, id: u64, log: &impl Fn(String)) -> io::Result<()> {
    log(format!(
        "Client {id} connected from {}",
        stream.peer_addr()?
    ));
    // The seed's `recv(1024)`: whatever the first read returns is the message. Chapter 7 shows
    // why that is not how to frame messages, and why greet mode keeps it anyway.
    let mut buf = [0; greet::MESSAGE_LIMIT];
    let n = stream.read(&mut buf)?;
    // A client that closes without sending (`n == 0`) gets no reply.
    if n > 0 {
        let message = greet::message(&buf[..n]); // one trailing `\n` or `\r\n` removed
        log(format!("Client {id} says: {}", greet::printable(message)));
        stream.write_all(&greet::reply(id))?;
    }
    drop(stream); // closes the socket: the seed's `client_socket.close()`
    log(format!("Client {id} disconnected."));
    Ok(())
}
// ANCHOR_END: handle_client
