//! Chapter 3, step 3: a thread per client — seed 000's design in Rust.
//!
//! The accept loop hands each connection to a new, named thread and goes straight back to
//! accepting, so a slow client no longer holds up the others. The loop keeps every thread's
//! `JoinHandle`, and before returning it joins the threads still running: a conversation already
//! started is finished, not cut off when `main` returns. Lines marked `// New!` changed since step
//! 2 (`examples/step02_single_thread.rs`).
//!
//! ```text
//! cargo run --example step03_thread_per_client -- [IP:PORT] [--max-clients N]
//! ```
//!
//! The address defaults to `127.0.0.1:0` (a free port; the first line says which) and must be a
//! loopback address: these step servers have no limits and are for trying things out locally.
//! With `--max-clients N` the server accepts N clients, waits for their threads, and exits.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::thread::{self, JoinHandle}; // New!

use clap::Parser;
use many_clients::conn::greet;

/// A thread-per-client greet server (book chapter 3).
#[derive(Parser)]
struct Args {
    /// Where to listen; port 0 picks a free port. Loopback addresses only.
    #[arg(default_value = "127.0.0.1:0")]
    addr: SocketAddr,
    /// Serve this many clients, then exit (default: run until stopped).
    #[arg(long)]
    max_clients: Option<usize>,
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
    serve(listener, args.max_clients, |line| println!("{line}"));
    Ok(())
}

// ANCHOR: serve
/// Accepts clients and gives each one its own thread; returns once `max_clients` clients have been
/// accepted *and* their threads have finished. `log` receives the per-client console lines.
pub fn serve(
    listener: TcpListener,
    max_clients: Option<usize>,
    log: impl Fn(String) + Clone + Send + 'static, // New!
) {
    // Still only this thread hands out ids: each id is taken here and *moved* into its client's
    // thread, so it needs no lock. (The seed takes it inside the thread; see chapter 4.)
    let mut next_id = 0;
    let mut handles: Vec<JoinHandle<()>> = Vec::new(); // New!
    for stream in listener.incoming().take(max_clients.unwrap_or(usize::MAX)) {
        let stream = match stream {
            Ok(stream) => stream,
            // A failed accept (the client gave up, or we are out of file descriptors) concerns
            // one connection, not the server.
            Err(e) => {
                eprintln!("warning: accept failed: {e}");
                continue;
            }
        };
        next_id += 1;
        let id = next_id; // New!
        let log = log.clone(); // New!
        // New! The conversation moves to a thread of its own, named after the client: the name
        // shows up in panic messages and debuggers. `move` hands `stream`, `id` and `log` over to
        // the thread, and the loop goes straight back to `accept`.
        let spawned = thread::Builder::new()
            .name(format!("client-{id}"))
            .spawn(move || {
                if let Err(e) = handle_client(stream, id, &log) {
                    eprintln!("warning: client {id}: {e}");
                }
            });
        match spawned {
            Ok(handle) => handles.push(handle), // New!
            // No thread, no conversation: the closure, and the `stream` inside it, were dropped,
            // which closes the connection.
            Err(e) => eprintln!("warning: no thread for client {id}: {e}"), // New!
        }
        // Let go of the handles of threads that are done, so the list stays about as long as
        // the number of clients being served.
        handles.retain(|handle| !handle.is_finished()); // New!
    }
    // New! Wait for the conversations still running. Without this, returning from `main` would
    // end the process and cut them off mid-reply, like the daemon threads of seed 001.
    for handle in handles {
        if handle.join().is_err() {
            // The panic message, with the thread's name, was already printed by the panic hook.
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
