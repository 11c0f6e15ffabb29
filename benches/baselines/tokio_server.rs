//! The async baseline: the same two protocols on tokio's multi-threaded runtime (one worker per
//! core), a task per connection. As lean as the bare server: no limit, timeouts or drain.

use chrono::Local;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::runtime::Runtime;

/// A running tokio server; dropping it stops the runtime and every task on it.
pub struct TokioServer {
    pub addr: SocketAddr,
    runtime: Option<Runtime>,
}

impl Drop for TokioServer {
    fn drop(&mut self) {
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_background();
        }
    }
}

pub fn start(echo: bool) -> io::Result<TokioServer> {
    start_with(echo, false)
}

/// The same, and with `graceful_close` a greet connection closes as PROTOCOL.md says ours must:
/// shut down writing, then read the client's input away until its end or for at most 1 s.
/// Not the baseline: `benches/server_cpu.py` uses it to price that close on tokio too.
pub fn start_with(echo: bool, graceful_close: bool) -> io::Result<TokioServer> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let listener = runtime.block_on(TcpListener::bind("127.0.0.1:0"))?;
    let addr = listener.local_addr()?;
    let next_id = Arc::new(AtomicU64::new(0));
    runtime.spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let id = next_id.fetch_add(1, Ordering::Relaxed) + 1;
            tokio::spawn(async move {
                let _ = stream.set_nodelay(true);
                if echo {
                    echo_lines(stream).await
                } else {
                    greet(stream, id, graceful_close).await
                }
            });
        }
    });
    Ok(TokioServer {
        addr,
        runtime: Some(runtime),
    })
}

async fn greet(mut stream: TcpStream, id: u64, graceful_close: bool) {
    let mut buf = [0; 1024];
    if let Ok(1..) = stream.read(&mut buf).await {
        let reply = format!("Hello Client {id}, server received your message!");
        if stream.write_all(reply.as_bytes()).await.is_ok() && graceful_close {
            let _ = stream.shutdown().await;
            let drain = async { while let Ok(1..) = stream.read(&mut buf).await {} };
            let _ = tokio::time::timeout(Duration::from_secs(1), drain).await;
        }
    }
}

async fn echo_lines(mut stream: TcpStream) {
    let (read, mut out) = stream.split();
    let (mut lines, mut line) = (BufReader::new(read), String::new());
    while let Ok(1..) = lines.read_line(&mut line).await {
        let now = Local::now().format("%Y-%m-%d %H:%M:%S%.6f");
        let reply = format!("[{now}] Server got '{}'\n", line.trim());
        line.clear();
        if out.write_all(reply.as_bytes()).await.is_err() {
            break;
        }
    }
}
