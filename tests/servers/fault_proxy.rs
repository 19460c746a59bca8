//! Fault injection in front of a real server: a TCP proxy on loopback that
//! forwards to the upstream port and, once per armed fault, breaks the
//! connection that carries the next message body (an IMAP `FETCH` answer
//! holding `BODY[`): it drops the connection halfway through that answer,
//! replaces it with garbage, or stalls (forwards nothing more and never
//! closes). Later connections are forwarded untouched until another fault is
//! armed.

use std::collections::VecDeque;
use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// What to do to the next server answer carrying a message body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Forward half of the chunk, then close both sides.
    DropMidFetch,
    /// Send bytes that are not IMAP instead of the chunk, then keep forwarding.
    Garbage,
    /// Forward nothing more on this connection and keep it open.
    Stall,
}

pub struct FaultProxy {
    port: u16,
    armed: Arc<Mutex<VecDeque<Fault>>>,
    connections: Arc<AtomicU64>,
    injected: Arc<AtomicU64>,
}

/// The marker of an IMAP FETCH answer with a body section.
const BODY_MARKER: &[u8] = b"BODY[";

impl FaultProxy {
    /// Starts forwarding `127.0.0.1:<port>` to `127.0.0.1:<upstream_port>`.
    pub fn start(upstream_port: u16) -> FaultProxy {
        let listener = TcpListener::bind(("127.0.0.1", 0)).expect("bind the proxy");
        let port = listener.local_addr().expect("proxy address").port();
        let armed = Arc::new(Mutex::new(VecDeque::new()));
        let connections = Arc::new(AtomicU64::new(0));
        let injected = Arc::new(AtomicU64::new(0));
        let (armed_faults, connection_count, injected_count) =
            (armed.clone(), connections.clone(), injected.clone());
        std::thread::spawn(move || {
            for client in listener.incoming().flatten() {
                connection_count.fetch_add(1, Ordering::SeqCst);
                let Ok(server) = TcpStream::connect(("127.0.0.1", upstream_port)) else {
                    continue;
                };
                let (armed, injected) = (armed_faults.clone(), injected_count.clone());
                std::thread::spawn(move || forward_connection(client, server, armed, injected));
            }
        });
        FaultProxy {
            port,
            armed,
            connections,
            injected,
        }
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Queues a fault for the next answer carrying a message body.
    pub fn arm(&self, fault: Fault) {
        self.armed.lock().expect("armed lock").push_back(fault);
    }

    /// Faults armed and not yet injected.
    pub fn pending(&self) -> usize {
        self.armed.lock().expect("armed lock").len()
    }

    /// Connections accepted so far.
    pub fn connections(&self) -> u64 {
        self.connections.load(Ordering::SeqCst)
    }

    /// Faults injected so far.
    pub fn injected(&self) -> u64 {
        self.injected.load(Ordering::SeqCst)
    }
}

fn forward_connection(
    client: TcpStream,
    server: TcpStream,
    armed: Arc<Mutex<VecDeque<Fault>>>,
    injected: Arc<AtomicU64>,
) {
    let (Ok(mut client_reader), Ok(mut server_writer)) = (client.try_clone(), server.try_clone())
    else {
        return;
    };
    // Client to server: plain copy.
    std::thread::spawn(move || {
        let _ = std::io::copy(&mut client_reader, &mut server_writer);
        let _ = server_writer.shutdown(Shutdown::Write);
    });
    // Server to client: watch for a body answer.
    let mut server_reader = server;
    let mut client_writer = client;
    let mut buffer = vec![0u8; 16 * 1024];
    loop {
        let read = match server_reader.read(&mut buffer) {
            Ok(0) | Err(_) => break,
            Ok(read) => read,
        };
        let chunk = &buffer[..read];
        let carries_body = chunk
            .windows(BODY_MARKER.len())
            .any(|window| window == BODY_MARKER);
        let fault = if carries_body {
            armed.lock().expect("armed lock").pop_front()
        } else {
            None
        };
        match fault {
            None => {
                if client_writer.write_all(chunk).is_err() {
                    break;
                }
            }
            Some(Fault::DropMidFetch) => {
                injected.fetch_add(1, Ordering::SeqCst);
                let _ = client_writer.write_all(&chunk[..read / 2]);
                let _ = client_writer.shutdown(Shutdown::Both);
                let _ = server_reader.shutdown(Shutdown::Both);
                return;
            }
            Some(Fault::Garbage) => {
                injected.fetch_add(1, Ordering::SeqCst);
                let garbage = b"* 7 FETCH (UID \xff\xfe BODY[] {99999999999}\r\n)))\x00\x01 NOT IMAP AT ALL\r\n+ {\r\n";
                if client_writer.write_all(garbage).is_err() {
                    break;
                }
            }
            Some(Fault::Stall) => {
                injected.fetch_add(1, Ordering::SeqCst);
                // Hold both sockets open and send nothing; the client must
                // give up on its own. The thread ends when the client closes.
                let mut sink = [0u8; 1024];
                let _ = client_writer.set_read_timeout(Some(Duration::from_secs(600)));
                while matches!(client_writer.read(&mut sink), Ok(read) if read > 0) {}
                let _ = server_reader.shutdown(Shutdown::Both);
                return;
            }
        }
    }
    let _ = client_writer.shutdown(Shutdown::Both);
}
