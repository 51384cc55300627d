//! Small helpers: free ports, temporary directories, the readiness probe, log tails.

use std::collections::BTreeSet;
use std::fs;
use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

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
    static HANDED_OUT: Mutex<BTreeSet<u16>> = Mutex::new(BTreeSet::new());
    let mut handed_out = HANDED_OUT.lock().unwrap_or_else(PoisonError::into_inner);
    let mut listeners = Vec::with_capacity(n);
    while listeners.len() < n {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .unwrap_or_else(|e| panic!("cannot bind a free port on 127.0.0.1: {e}"));
        let port = listener
            .local_addr()
            .unwrap_or_else(|e| panic!("cannot read the address of a listener: {e}"))
            .port();
        if port != SHARED_REDIS_PORT && handed_out.insert(port) {
            listeners.push((listener, port));
        }
    }
    listeners.into_iter().map(|(_, port)| port).collect()
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

/// Whether a Redis answers a PING on 127.0.0.1:`port` (any `+` or `-` reply, so a
/// `-NOAUTH` counts).
pub(crate) fn answers_ping(port: u16) -> bool {
    let timeout = Duration::from_millis(250);
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let Ok(mut stream) = TcpStream::connect_timeout(&addr, timeout) else {
        return false;
    };
    if stream.set_read_timeout(Some(timeout)).is_err()
        || stream.set_write_timeout(Some(timeout)).is_err()
        || stream.write_all(b"*1\r\n$4\r\nPING\r\n").is_err()
    {
        return false;
    }
    let mut first = [0u8; 1];
    matches!(stream.read(&mut first), Ok(1) if matches!(first[0], b'+' | b'-'))
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
