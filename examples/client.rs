//! The seeds' `client.py`, for both protocols.
//!
//! ```text
//! cargo run --example client                                  # greet, "Hello, Server!"
//! cargo run --example client -- --mode echo --message a --message b
//! ```
//!
//! Prints `Server replied: {reply}` for every reply. Exit code 0 when every reply came, 2 when the
//! server answered with an `error: ` line, 1 (with one line on stderr) when it could not connect,
//! timed out, or the server closed without replying. See `PROTOCOL.md`, section "Command line".

use std::process::ExitCode;
use std::time::Duration;

use clap::{CommandFactory, Parser, error::ErrorKind};
use many_clients::client::{
    self, ClientError, DEFAULT_MESSAGE, EchoClient, Mode, is_error_line, parse_secs,
};

#[derive(Parser)]
#[command(
    name = "client",
    about = "Talk to a greet or echo server and print its replies"
)]
struct Cli {
    /// Server address [default: 127.0.0.1:65434 in greet mode, 127.0.0.1:5000 in echo mode]
    #[arg(long, value_name = "HOST:PORT")]
    addr: Option<String>,
    /// Protocol: greet (one message, one reply) or echo (one reply line per line)
    #[arg(long, value_name = "greet|echo", default_value = "greet")]
    mode: Mode,
    /// Message to send; repeat it in echo mode for several lines [default: "Hello, Server!"]
    #[arg(long = "message", value_name = "TEXT")]
    messages: Vec<String>,
    /// Seconds to wait for the connection and for each reply (fractions allowed)
    #[arg(long, value_name = "SECS", default_value = "10", value_parser = parse_secs)]
    timeout: Duration,
}

fn main() -> ExitCode {
    let mut cli = Cli::parse();
    if cli.mode == Mode::Greet && cli.messages.len() > 1 {
        // `exit` prints the usage and leaves with clap's usage-error code.
        Cli::command()
            .error(
                ErrorKind::TooManyValues,
                "greet mode sends one message: give --message at most once",
            )
            .exit();
    }
    if cli.messages.is_empty() {
        cli.messages.push(DEFAULT_MESSAGE.to_owned());
    }
    match talk(&cli) {
        Ok(false) => ExitCode::SUCCESS,
        Ok(true) => ExitCode::from(2),
        Err(e) => {
            eprintln!("client: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Sends the messages and prints the replies; `Ok(true)` if any reply was an `error: ` line.
fn talk(cli: &Cli) -> Result<bool, ClientError> {
    let addr = client::resolve(cli.addr.as_deref().unwrap_or(cli.mode.default_addr()))?;
    match cli.mode {
        Mode::Greet => {
            let reply = client::greet(addr, &cli.messages[0], cli.timeout)?;
            println!("Server replied: {reply}");
            Ok(is_error_line(&reply))
        }
        Mode::Echo => {
            let mut conn = EchoClient::connect(addr, cli.timeout)?;
            let mut saw_error = false;
            for message in &cli.messages {
                // One line out, then wait for its reply: the seed's server answers per read, so
                // sending ahead could merge two lines into one reply.
                match conn.exchange(message) {
                    Ok(reply) => {
                        println!("Server replied: {reply}");
                        saw_error |= is_error_line(&reply);
                    }
                    // After an error line most servers close; finding the connection gone is the
                    // answer to "is it still open?", not a new failure.
                    Err(e) if saw_error && e.is_closed() => break,
                    Err(e) => return Err(e),
                }
            }
            Ok(saw_error)
        }
    }
}
