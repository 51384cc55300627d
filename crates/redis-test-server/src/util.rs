//! Small helpers: free ports, temporary directories, the readiness probe, polling, log
//! tails.

use std::collections::BTreeSet;
use std::fs;
use std::io::{Read, Write};
use std::net::{Ipv4Addr, TcpListener};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::RedisServer;
use crate::resp::Target;

/// The port of the Redis that may already run on this machine: never ours.
const SHARED_REDIS_PORT: u16 = 6379;

/// `n` distinct free ports on 127.0.0.1 (never 6379), none handed out before in this process.
///
/// The listeners are all held until every port is chosen, so the ports differ; they are
/// then closed, and someone else could take a port before `redis-server` binds it (the
/// caller retries). A port is never handed out twice in one process: a test that kills its
/// server and restarts it later on the same port must not find another test's server there
/// meanwhile (tests in one binary run in parallel).
pub(crate) fn free_ports(n: usize) -> Vec<u16> {
    reserve_ports(n, false).0
}

/// `n` distinct free ports on 127.0.0.1 as [`free_ports`] gives, each with its cluster bus
/// port (port + [`CLUSTER_BUS_OFFSET`], at most 65535) free and reserved too.
pub(crate) fn free_cluster_ports(n: usize) -> Vec<u16> {
    reserve_ports(n, true).0
}

/// How far above a cluster node's port Redis puts its cluster bus port.
pub(crate) const CLUSTER_BUS_OFFSET: u16 = 10_000;

/// How many ports [`reserve_ports`] tries before giving up.
const PORT_CANDIDATES: usize = 10_000;

/// The port of a listener bound on 127.0.0.1 (`port` 0: any free port), if it could bind.
fn bind(port: u16) -> Option<(TcpListener, u16)> {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, port)).ok()?;
    let port = listener
        .local_addr()
        .unwrap_or_else(|e| panic!("cannot read the address of a listener: {e}"))
        .port();
    Some((listener, port))
}

/// `n` ports, with their bus ports if `with_bus`: see [`free_ports`]. Also returns the
/// listeners that held them while they were chosen (each port's, after its bus port's).
fn reserve_ports(n: usize, with_bus: bool) -> (Vec<u16>, Vec<TcpListener>) {
    static HANDED_OUT: Mutex<BTreeSet<u16>> = Mutex::new(BTreeSet::new());
    let mut handed_out = HANDED_OUT.lock().unwrap_or_else(PoisonError::into_inner);
    let usable = |port: u16, handed_out: &BTreeSet<u16>| {
        port != SHARED_REDIS_PORT && !handed_out.contains(&port)
    };
    let mut listeners = Vec::with_capacity(if with_bus { 2 * n } else { n });
    let mut ports = Vec::with_capacity(n);
    for _ in 0..PORT_CANDIDATES {
        if ports.len() == n {
            break;
        }
        let (listener, port) =
            bind(0).unwrap_or_else(|| panic!("cannot bind a free port on 127.0.0.1"));
        if !usable(port, &handed_out) {
            continue;
        }
        if with_bus {
            let Some(bus) = port.checked_add(CLUSTER_BUS_OFFSET) else {
                continue;
            };
            if !usable(bus, &handed_out) {
                continue;
            }
            let Some(bus_listener) = bind(bus) else {
                continue;
            };
            handed_out.insert(bus);
            listeners.push(bus_listener.0);
        }
        handed_out.insert(port);
        listeners.push(listener);
        ports.push(port);
    }
    assert_eq!(
        ports.len(),
        n,
        "found only {} of {n} free ports on 127.0.0.1 in {PORT_CANDIDATES} tries",
        ports.len()
    );
    (ports, listeners)
}

/// Creates a fresh, uniquely named directory under the system's temporary directory.
pub(crate) fn create_temp_dir() -> PathBuf {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    // Short: a unix socket's path must stay under ~100 bytes.
    let dir = std::env::temp_dir().join(format!("rts-{}-{n}-{nanos}", std::process::id()));
    let mut builder = fs::DirBuilder::new();
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder
        .create(&dir)
        .unwrap_or_else(|e| panic!("cannot create the directory {}: {e}", dir.display()));
    dir
}

/// Whether a Redis answers a PING at `target` (any `+` or `-` reply, so a `-NOAUTH`
/// counts).
pub(crate) fn answers_ping(target: &Target) -> bool {
    let Ok(stream) = target.connect(Duration::from_millis(250)) else {
        return false;
    };
    if (&stream).write_all(b"*1\r\n$4\r\nPING\r\n").is_err() {
        return false;
    }
    let mut first = [0u8; 1];
    matches!((&stream).read(&mut first), Ok(1) if matches!(first[0], b'+' | b'-'))
}

/// Calls `check` every `interval` until it returns `Ok`, for at most `timeout`; the `Err`
/// is the reason it last gave for not being ready.
pub(crate) fn poll_until<T>(
    timeout: Duration,
    interval: Duration,
    mut check: impl FnMut() -> Result<T, String>,
) -> Result<T, String> {
    let deadline = Instant::now() + timeout;
    loop {
        let reason = match check() {
            Ok(value) => return Ok(value),
            Err(reason) => reason,
        };
        if Instant::now() >= deadline {
            return Err(reason);
        }
        thread::sleep(interval);
    }
}

/// `text` percent-encoded for the user-info part of a URL (only unreserved characters stay).
pub(crate) fn encode_userinfo(text: &str) -> String {
    let mut encoded = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            encoded.push(char::from(byte));
        } else {
            encoded.push_str(&format!("%{byte:02X}"));
        }
    }
    encoded
}

/// The length of a file, 0 if it does not exist.
pub(crate) fn file_len(path: &Path) -> u64 {
    fs::metadata(path).map_or(0, |m| m.len())
}

/// The text of a file from byte `offset` on ("" if it does not exist).
pub(crate) fn read_from(path: &Path, offset: u64) -> String {
    let bytes = fs::read(path).unwrap_or_default();
    let start = usize::try_from(offset)
        .unwrap_or(usize::MAX)
        .min(bytes.len());
    String::from_utf8_lossy(&bytes[start..]).into_owned()
}

/// The last `n` lines of `text`.
pub(crate) fn last_lines(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// The last `lines` lines of each server's log, under a header naming it (`kind`), its
/// port, process id and state.
pub(crate) fn log_tails<'a>(
    servers: impl Iterator<Item = (&'a str, &'a RedisServer)>,
    lines: usize,
) -> String {
    let mut logs = String::new();
    for (kind, server) in servers {
        let state = match (server.is_running(), server.is_paused()) {
            (false, _) => "killed",
            (true, true) => "paused",
            (true, false) => "running",
        };
        logs.push_str(&format!(
            "--- {kind} 127.0.0.1:{} (pid {}, {state}) ---\n{}\n",
            server.port(),
            server.pid(),
            last_lines(&server.log_tail(), lines)
        ));
    }
    logs
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The bus ports were bound (so free) while the ports were chosen. Once the listeners
    /// close, anything on the machine may take a port again, so the test checks the
    /// listeners that held them rather than binding again afterwards.
    #[test]
    fn cluster_ports_come_with_a_free_bus_port() {
        let (ports, listeners) = reserve_ports(4, true);
        let others = free_ports(20);
        assert_eq!(listeners.len(), 2 * ports.len());
        for (port, pair) in ports.iter().zip(listeners.chunks(2)) {
            let bus = port + CLUSTER_BUS_OFFSET;
            assert!(!others.contains(port) && !others.contains(&bus));
            assert_eq!(pair[0].local_addr().unwrap().port(), bus);
            assert_eq!(pair[1].local_addr().unwrap().port(), *port);
        }
    }

    #[test]
    fn userinfo_is_percent_encoded() {
        assert_eq!(encode_userinfo("a b/c:d@e~-._9"), "a%20b%2Fc%3Ad%40e~-._9");
        assert_eq!(encode_userinfo("é"), "%C3%A9");
    }
}
