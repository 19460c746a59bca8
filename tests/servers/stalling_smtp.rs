//! Fault injection, not a stand-in for a mail server: an SMTP listener that,
//! while stalling, stops answering at a chosen moment of DATA. It keeps every
//! DATA payload it received completely (terminated by the lone dot), in order.
//! It offers AUTH PLAIN and takes any credentials.

use std::io::{BufRead, BufReader, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Where the listener stops answering while it stalls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stall {
    /// After the whole message (the lone dot) arrived: the moment between
    /// "the server has the mail" and "supportd marked the row sent".
    AfterData,
    /// After the first line of the message: it stops reading and never
    /// answers, so the mail is never complete at the server.
    MidData,
}

pub struct StallingSmtp {
    port: u16,
    stalling: Arc<AtomicBool>,
    received: Arc<Mutex<Vec<Vec<u8>>>>,
    data_commands: Arc<Mutex<u64>>,
}

impl StallingSmtp {
    /// Listens on a loopback port, stalling (at `stall`) until
    /// [`StallingSmtp::answer_from_now_on`].
    pub fn start(stall: Stall) -> StallingSmtp {
        let listener = std::net::TcpListener::bind(("127.0.0.1", 0)).expect("bind");
        let port = listener.local_addr().expect("local address").port();
        let stalling = Arc::new(AtomicBool::new(true));
        let received = Arc::new(Mutex::new(Vec::new()));
        let data_commands = Arc::new(Mutex::new(0));
        let (stalling_flag, store, data_count) =
            (stalling.clone(), received.clone(), data_commands.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let (stalling, store, data_count) =
                    (stalling_flag.clone(), store.clone(), data_count.clone());
                std::thread::spawn(move || {
                    let Ok(mut writer) = stream.try_clone() else {
                        return;
                    };
                    let mut reader = BufReader::new(stream);
                    let mut reply = |line: &str| {
                        let _ = writer.write_all(format!("{line}\r\n").as_bytes());
                    };
                    reply("220 stall.test ESMTP");
                    let mut line = String::new();
                    while reader.read_line(&mut line).unwrap_or(0) > 0 {
                        let command = line.trim_end().to_ascii_uppercase();
                        line.clear();
                        if command.starts_with("EHLO") {
                            reply("250-stall.test\r\n250 AUTH PLAIN LOGIN");
                        } else if command.starts_with("AUTH") {
                            reply("235 2.7.0 authenticated");
                        } else if command == "DATA" {
                            *data_count.lock().expect("count lock") += 1;
                            reply("354 go ahead");
                            let stall_now = stalling.load(Ordering::SeqCst);
                            let mut data = Vec::new();
                            let mut next = Vec::new();
                            while reader.read_until(b'\n', &mut next).unwrap_or(0) > 0 {
                                if next == b".\r\n" {
                                    break;
                                }
                                data.extend_from_slice(&next);
                                next.clear();
                                if stall_now && stall == Stall::MidData {
                                    // Stop reading and answering: the mail is
                                    // never complete here.
                                    std::thread::sleep(Duration::from_secs(600));
                                    return;
                                }
                            }
                            store.lock().expect("store lock").push(data);
                            if stall_now {
                                std::thread::sleep(Duration::from_secs(600));
                                return;
                            }
                            reply("250 2.0.0 queued");
                        } else if command == "QUIT" {
                            reply("221 bye");
                            return;
                        } else {
                            reply("250 ok");
                        }
                    }
                });
            }
        });
        StallingSmtp {
            port,
            stalling,
            received,
            data_commands,
        }
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Connections from now on are answered normally.
    pub fn answer_from_now_on(&self) {
        self.stalling.store(false, Ordering::SeqCst);
    }

    /// Every message received completely, in order.
    pub fn received(&self) -> Vec<Vec<u8>> {
        self.received.lock().expect("store lock").clone()
    }

    /// How many DATA commands were started (complete or not).
    pub fn data_commands(&self) -> u64 {
        *self.data_commands.lock().expect("count lock")
    }
}
