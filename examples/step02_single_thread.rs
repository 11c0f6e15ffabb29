//! Chapter 2, step 2: one client at a time.
//!
//! The seed 000 greet protocol (one read, one reply, close) on a single thread: the accept loop
//! itself talks to each client. While it waits for one client's message, the next client sits in
//! the kernel's listen queue, connected but unanswered. Chapter 2 of the book shows that wait.
//!
//! ```text
//! cargo run --example step02_single_thread -- [IP:PORT] [--max-clients N]
//! ```
//!
//! The address defaults to `127.0.0.1:0` (a free port; the first line says which) and must be a
//! loopback address: these step servers have no limits and are for trying things out locally.
//! With `--max-clients N` the server exits by itself after N clients.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};

use clap::Parser;
use many_clients::conn::greet;

/// A single-threaded greet server (book chapter 2).
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
/// Accepts clients one after another and serves each to the end before accepting the next.
/// `log` receives the per-client console lines (the example prints them; the tests collect them).
pub fn serve(listener: TcpListener, max_clients: Option<usize>, log: impl Fn(String)) {
    // Only this thread hands out ids, so a plain local variable is enough.
    let mut next_id = 0;
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
        // The whole conversation happens here, on the only thread. Until it returns, nobody else
        // is accepted, however long this client takes to send its message.
        if let Err(e) = handle_client(stream, next_id, &log) {
            eprintln!("warning: client {next_id}: {e}");
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
