//! The baseline to beat: the smallest honest thread-per-connection server for both protocols.
//! No limit, no timeouts, no shutdown drain, no logging, no registry: a thread per accepted
//! connection with the default (2 MiB, mostly untouched) stack, one read for greet, a buffered
//! line loop for echo. About thirty lines, which is the point.

use chrono::Local;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread;

pub fn start(echo: bool) -> io::Result<SocketAddr> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?;
    let next_id = Arc::new(AtomicU64::new(0));
    // The accept thread lives as long as the process: the bench process is short.
    thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let id = next_id.fetch_add(1, Ordering::Relaxed) + 1;
            thread::spawn(move || {
                if echo {
                    echo_lines(stream)
                } else {
                    greet(stream, id)
                }
            });
        }
    });
    Ok(addr)
}

fn greet(mut stream: TcpStream, id: u64) {
    let mut buf = [0; 1024];
    if let Ok(1..) = stream.read(&mut buf) {
        let reply = format!("Hello Client {id}, server received your message!");
        let _ = stream.write_all(reply.as_bytes());
    }
}

fn echo_lines(stream: TcpStream) {
    let _ = stream.set_nodelay(true);
    let (Ok(mut out), mut line) = (stream.try_clone(), String::new()) else {
        return;
    };
    let mut lines = BufReader::new(stream);
    while let Ok(1..) = lines.read_line(&mut line) {
        let now = Local::now().format("%Y-%m-%d %H:%M:%S%.6f");
        let reply = format!("[{now}] Server got '{}'\n", line.trim());
        line.clear();
        if out.write_all(reply.as_bytes()).is_err() {
            break;
        }
    }
}
