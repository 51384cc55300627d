//! [`LatencyProxy`]: a loopback TCP proxy in front of a server that delays every reply by an
//! adjustable amount, to test clients against a slow network.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, PoisonError};
use std::thread;
use std::time::{Duration, Instant};

/// A TCP proxy on a free loopback port that forwards to `127.0.0.1:<upstream>` and holds each
/// chunk the server sends for the current delay before passing it on, so every round trip
/// through it takes at least that long. Requests pass at once. Stops (closing every
/// connection) on drop.
///
/// ```no_run
/// use std::time::Duration;
/// use redis_test_server::{LatencyProxy, RedisServer};
///
/// let server = RedisServer::start();
/// let proxy = LatencyProxy::start(server.port());
/// proxy.set_delay(Duration::from_millis(600));
/// // Connect clients to proxy.url().
/// ```
#[derive(Debug)]
pub struct LatencyProxy {
    port: u16,
    shared: Arc<Shared>,
}

#[derive(Debug, Default)]
struct Shared {
    delay_ms: AtomicU64,
    stopped: AtomicBool,
    /// Every socket of every proxied connection, shut down on drop.
    sockets: Mutex<Vec<TcpStream>>,
}

impl LatencyProxy {
    /// Starts a proxy to the server on `127.0.0.1:upstream_port`, with no delay yet.
    ///
    /// # Panics
    /// If no loopback port can be bound.
    pub fn start(upstream_port: u16) -> Self {
        let listener =
            TcpListener::bind("127.0.0.1:0").expect("bind a loopback port for the proxy");
        let port = listener.local_addr().expect("proxy address").port();
        let shared = Arc::new(Shared::default());
        let accepting = Arc::clone(&shared);
        thread::spawn(move || {
            for client in listener.incoming() {
                if accepting.stopped.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(client) = client else { continue };
                let Ok(server) = TcpStream::connect(("127.0.0.1", upstream_port)) else {
                    let _ = client.shutdown(Shutdown::Both);
                    continue;
                };
                proxy_connection(&accepting, client, server);
            }
        });
        Self { port, shared }
    }

    /// The proxy's port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `redis://127.0.0.1:{port}/`, the proxy's URL.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    /// Holds every reply chunk received from now on for `delay` (whole milliseconds).
    pub fn set_delay(&self, delay: Duration) {
        let ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX);
        self.shared.delay_ms.store(ms, Ordering::SeqCst);
    }
}

impl Drop for LatencyProxy {
    fn drop(&mut self) {
        self.shared.stopped.store(true, Ordering::SeqCst);
        // Wake the accepting thread so it sees the flag.
        let _ = TcpStream::connect(("127.0.0.1", self.port));
        let sockets = self
            .shared
            .sockets
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        for socket in sockets.iter() {
            let _ = socket.shutdown(Shutdown::Both);
        }
    }
}

/// Pumps one connection: requests straight through, replies through a delay line.
fn proxy_connection(shared: &Arc<Shared>, client: TcpStream, server: TcpStream) {
    let _ = client.set_nodelay(true);
    let _ = server.set_nodelay(true);
    let (Ok(client_in), Ok(server_out), Ok(server_in), Ok(client_out)) = (
        client.try_clone(),
        server.try_clone(),
        server.try_clone(),
        client.try_clone(),
    ) else {
        return;
    };
    shared
        .sockets
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .extend([client, server]);

    thread::spawn(move || pump(client_in, server_out));

    let (due, delayed) = mpsc::channel::<(Instant, Vec<u8>)>();
    let delays = Arc::clone(shared);
    thread::spawn(move || {
        let mut server_in = server_in;
        let mut buf = vec![0; 64 * 1024];
        loop {
            match server_in.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    let delay = Duration::from_millis(delays.delay_ms.load(Ordering::SeqCst));
                    if due
                        .send((Instant::now() + delay, buf[..n].to_vec()))
                        .is_err()
                    {
                        break;
                    }
                }
            }
        }
    });
    thread::spawn(move || {
        let mut client_out = client_out;
        for (at, chunk) in delayed {
            if let Some(wait) = at.checked_duration_since(Instant::now()) {
                thread::sleep(wait);
            }
            if client_out.write_all(&chunk).is_err() {
                break;
            }
        }
        let _ = client_out.shutdown(Shutdown::Both);
    });
}

fn pump(mut from: TcpStream, mut to: TcpStream) {
    let _ = std::io::copy(&mut from, &mut to);
    let _ = to.shutdown(Shutdown::Write);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::RedisServer;

    fn ping(port: u16) -> Duration {
        let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
        let started = Instant::now();
        stream.write_all(b"*1\r\n$4\r\nPING\r\n").unwrap();
        let mut reply = [0; 7];
        stream.read_exact(&mut reply).unwrap();
        assert_eq!(&reply, b"+PONG\r\n");
        started.elapsed()
    }

    #[test]
    fn replies_are_held_for_the_delay() {
        let server = RedisServer::start();
        let proxy = LatencyProxy::start(server.port());
        assert!(ping(proxy.port()) < Duration::from_millis(150));
        proxy.set_delay(Duration::from_millis(300));
        let took = ping(proxy.port());
        assert!(took >= Duration::from_millis(300), "{took:?}");
    }
}
