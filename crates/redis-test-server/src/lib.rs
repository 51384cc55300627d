//! A private `redis-server` for integration tests.
//!
//! [`RedisServer::start`] launches a `redis-server` process of its own on a free port of
//! 127.0.0.1, in a fresh temporary directory, with persistence off, and waits until it
//! answers a `PING`. Dropping the [`RedisServer`] kills the process and removes the
//! directory. Tests never connect to a Redis that was already running (such as one on the
//! default port 6379), so they cannot disturb it, and each test gets an empty server of its
//! own, so tests can run in parallel.
//!
//! The builder adds a password, ACL users, a unix socket, a TLS port (with a generated CA)
//! or any other option; [`RedisServer::kill`], [`RedisServer::restart`],
//! [`RedisServer::pause`] and [`RedisServer::resume`] simulate outages.
//!
//! [`RedisCluster`] starts a private Redis Cluster (3 primaries and 3 replicas by default)
//! and [`RedisSentinels`] a master, a replica and three sentinels, both made of such
//! servers, with helpers that kill a primary and wait for the failover, or move slots. Both
//! can serve TLS only, all their processes sharing one generated CA.
//!
//! Needs `redis-server` on `PATH` (`redis-cli` for clusters, `openssl` for TLS); unix only.
//!
//! ```
//! use redis_test_server::RedisServer;
//!
//! let server = RedisServer::builder().password("pw").start();
//! assert_ne!(server.port(), 6379);
//! let url = server.url(); // "redis://127.0.0.1:<port>/": hand it to the client under test
//! # assert!(url.starts_with("redis://127.0.0.1:"));
//! drop(server); // kills redis-server and removes its directory
//! ```

use std::fmt;
use std::fs::{self, File};
use std::io::ErrorKind;
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

mod builder;
mod cli;
mod cluster;
mod proxy;
mod resp;
mod sentinel;
mod tls;
mod util;

pub use builder::RedisServerBuilder;
pub use cli::{CliError, CliJob};
pub use cluster::{RedisCluster, RedisClusterBuilder, hash_tag_for_slot, key_slot};
pub use proxy::LatencyProxy;
pub use sentinel::{RedisSentinels, RedisSentinelsBuilder};

use builder::{Config, Endpoints, LOG_FILE, SENTINEL_CONFIG_FILE, redact};
use resp::Target;
use util::{
    answers_ping, create_temp_dir, file_len, free_cluster_ports, free_ports, last_lines, read_from,
};

const REDIS_NOT_FOUND: &str = "redis-server was not found on PATH. The Redis tests start a \
    private redis-server of their own (they never use one already running); install it with \
    `sudo apt-get install -y redis-server` (Debian/Ubuntu) or `brew install redis` (macOS)";

/// How many times [`RedisServer::start`] tries new ports when the chosen ones were taken.
const START_ATTEMPTS: u32 = 5;
/// How long to wait for the server to answer.
const READY_TIMEOUT: Duration = Duration::from_secs(10);
/// How often to probe it meanwhile.
const POLL_INTERVAL: Duration = Duration::from_millis(20);
/// How many lines of the log [`RedisServer::log_tail`] returns.
const LOG_TAIL_LINES: usize = 40;
/// Where the server's stdout and stderr go (configuration errors are printed there).
const STDIO_FILE: &str = "stdio.log";
/// The name of the unix socket in the server's directory.
const SOCKET_FILE: &str = "redis.sock";

/// A private `redis-server` process, killed (and its temporary directory removed) on drop.
///
/// The `Debug` output shows the ports, the process id and the command line, with passwords
/// replaced by `***`.
pub struct RedisServer {
    config: Config,
    /// Strings to scrub from anything printed.
    secrets: Vec<String>,
    endpoints: Endpoints,
    ca_cert_pem: Option<Vec<u8>>,
    /// `None` once killed.
    child: Option<Child>,
    /// The id of the current, or last, process.
    pid: u32,
    /// Whether the process was stopped by [`RedisServer::pause`] and not resumed since.
    paused: AtomicBool,
}

/// Why a launch of the process failed.
enum Failure {
    /// A port was taken by someone else.
    AddressInUse,
    /// It exited for another reason.
    Exited(ExitStatus),
    /// It did not answer in time.
    Timeout,
}

impl RedisServer {
    /// Starts a server with the default configuration and waits until it answers.
    ///
    /// # Panics
    ///
    /// If `redis-server` is not installed, or does not answer within 10 seconds; the
    /// message includes the end of its log.
    pub fn start() -> RedisServer {
        Self::builder().start()
    }

    /// A builder, to add a password, ACL users, a unix socket, TLS or other options.
    pub fn builder() -> RedisServerBuilder {
        RedisServerBuilder::default()
    }

    /// The plain TCP port, on 127.0.0.1 (never 6379); for a node of a TLS cluster or
    /// sentinel set-up, which has no plain port, its TLS port.
    pub fn port(&self) -> u16 {
        self.endpoints.port
    }

    /// `redis://127.0.0.1:{port}/`, without credentials; for a node of a TLS cluster or
    /// sentinel set-up, its [`tls_url`](Self::tls_url).
    pub fn url(&self) -> String {
        match self.tls_url() {
            Some(url) if self.config.tls_only => url,
            _ => format!("redis://127.0.0.1:{}/", self.endpoints.port),
        }
    }

    /// The TLS port, on 127.0.0.1, if built with [`RedisServerBuilder::tls`].
    pub fn tls_port(&self) -> Option<u16> {
        self.endpoints.tls_port
    }

    /// `rediss://localhost:{tls_port}/` (the certificate is valid for `localhost` and
    /// `127.0.0.1`), if built with [`RedisServerBuilder::tls`]. Clients must trust
    /// [`ca_cert_pem`](Self::ca_cert_pem).
    pub fn tls_url(&self) -> Option<String> {
        self.endpoints
            .tls_port
            .map(|port| format!("rediss://localhost:{port}/"))
    }

    /// The PEM of the CA that signed the server's TLS certificate, if built with
    /// [`RedisServerBuilder::tls`].
    pub fn ca_cert_pem(&self) -> Option<Vec<u8>> {
        self.ca_cert_pem.clone()
    }

    /// The path of the unix socket, if built with [`RedisServerBuilder::unix_socket`].
    pub fn unix_socket(&self) -> Option<&Path> {
        self.endpoints.unix_socket.as_deref()
    }

    /// `redis+unix://{path}`, if built with [`RedisServerBuilder::unix_socket`].
    pub fn unix_url(&self) -> Option<String> {
        self.unix_socket()
            .map(|path| format!("redis+unix://{}", path.display()))
    }

    /// The id of the `redis-server` process (the last one, once killed).
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// Kills the process (SIGKILL) and waits for it; does nothing if it is not running.
    ///
    /// Its ports stay reserved for this server by convention (nothing else in the tests
    /// binds them), so [`restart`](Self::restart) can reuse them.
    pub fn kill(&mut self) {
        self.paused.store(false, Ordering::SeqCst);
        if let Some(mut child) = self.child.take() {
            // Fails only if it already exited; either way, reap it.
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Kills the process if it is running, then starts it again with the same arguments on
    /// the same ports (the data is gone: persistence is off), and waits until it answers.
    ///
    /// # Panics
    ///
    /// If a port was taken meanwhile, or the server does not come back within 10 seconds.
    pub fn restart(&mut self) {
        self.kill();
        if let Err(failure) = self.spawn() {
            self.fail("restart", failure);
        }
    }

    /// Freezes the process (SIGSTOP): connections are still accepted by the kernel, but
    /// nothing is answered until [`resume`](Self::resume). Does nothing if it was killed.
    pub fn pause(&self) {
        if self.signal("-STOP") {
            self.paused.store(true, Ordering::SeqCst);
        }
    }

    /// Lets a [paused](Self::pause) process go on (SIGCONT); the requests sent meanwhile are
    /// then answered. Does nothing if it was killed.
    pub fn resume(&self) {
        if self.signal("-CONT") {
            self.paused.store(false, Ordering::SeqCst);
        }
    }

    /// Whether the process was started and not [killed](Self::kill) since (it is not
    /// checked whether it exited on its own).
    pub fn is_running(&self) -> bool {
        self.child.is_some()
    }

    /// Whether the process is [paused](Self::pause) (and not resumed, killed or restarted
    /// since).
    pub fn is_paused(&self) -> bool {
        self.paused.load(Ordering::SeqCst)
    }

    /// The last lines of the server's log (and of its stdout/stderr, if any), with
    /// passwords replaced by `***`: for panic messages.
    pub fn log_tail(&self) -> String {
        let dir = &self.endpoints.dir;
        let mut tail = last_lines(&read_from(&dir.join(LOG_FILE), 0), LOG_TAIL_LINES);
        let stdio = read_from(&dir.join(STDIO_FILE), 0);
        if !stdio.trim().is_empty() {
            tail.push_str("\n--- stdout/stderr ---\n");
            tail.push_str(&last_lines(&stdio, LOG_TAIL_LINES / 2));
        }
        redact(&tail, &self.secrets)
    }

    /// Creates the directory and the TLS files, then starts the process on free ports,
    /// trying new ones if those were taken.
    pub(crate) fn launch(config: Config) -> RedisServer {
        let dir = create_temp_dir();
        let unix_socket = config.unix_socket.then(|| dir.join(SOCKET_FILE));
        let mut server = RedisServer {
            secrets: config.secrets(),
            endpoints: Endpoints {
                port: 0,
                tls_port: None,
                dir,
                unix_socket,
            },
            ca_cert_pem: None,
            child: None,
            pid: 0,
            paused: AtomicBool::new(false),
            config,
        };
        // From here on, a panic drops `server`, which kills the process and removes the
        // directory.
        if server.config.tls {
            let dir = &server.endpoints.dir;
            server.ca_cert_pem = Some(match &server.config.tls_files_from {
                Some(from) => tls::copy(from, dir),
                None => tls::generate(dir),
            });
        }
        if let Some(text) = &server.config.sentinel_config {
            let file = server.endpoints.dir.join(SENTINEL_CONFIG_FILE);
            fs::write(&file, text)
                .unwrap_or_else(|e| panic!("cannot write {}: {e}", file.display()));
        }
        let mut attempt = 1;
        loop {
            let config = &server.config;
            let ports = if config.cluster_bus {
                // A cluster node's bus port is its client port (the TLS one if
                // `tls-cluster`) + 10000.
                free_cluster_ports(1)
            } else {
                free_ports(if config.tls && !config.tls_only { 2 } else { 1 })
            };
            server.endpoints.port = ports[0];
            server.endpoints.tls_port = if config.tls_only {
                Some(ports[0])
            } else {
                ports.get(1).copied()
            };
            match server.spawn() {
                Ok(()) => return server,
                Err(Failure::AddressInUse) if attempt < START_ATTEMPTS => attempt += 1,
                Err(failure) => server.fail("start", failure),
            }
        }
    }

    /// Spawns `redis-server` with the configuration and endpoints, and waits until it
    /// answers a PING on the plain port.
    fn spawn(&mut self) -> Result<(), Failure> {
        let dir = &self.endpoints.dir;
        let (log, stdio) = (dir.join(LOG_FILE), dir.join(STDIO_FILE));
        let (log_offset, stdio_offset) = (file_len(&log), file_len(&stdio));
        let open = || {
            File::options()
                .create(true)
                .append(true)
                .open(&stdio)
                .unwrap_or_else(|e| panic!("cannot open {}: {e}", stdio.display()))
        };
        let spawned = Command::new("redis-server")
            .args(self.config.args(&self.endpoints, false))
            .stdin(Stdio::null())
            .stdout(open())
            .stderr(open())
            .spawn();
        let child = match spawned {
            Ok(child) => child,
            Err(e) if e.kind() == ErrorKind::NotFound => panic!("{REDIS_NOT_FOUND}"),
            Err(e) => panic!("cannot run redis-server: {e}"),
        };
        self.pid = child.id();
        let target = self.target();
        let child = self.child.insert(child);

        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            match child.try_wait() {
                Ok(None) => {}
                Ok(Some(status)) => {
                    self.child = None;
                    let output = read_from(&log, log_offset) + &read_from(&stdio, stdio_offset);
                    return Err(if output.contains("Address already in use") {
                        Failure::AddressInUse
                    } else {
                        Failure::Exited(status)
                    });
                }
                Err(e) => panic!("cannot check on redis-server (pid {}): {e}", self.pid),
            }
            if answers_ping(&target) {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(Failure::Timeout);
            }
            thread::sleep(POLL_INTERVAL);
        }
    }

    /// Where the harness's own probes reach the server: its plain port, or the unix socket
    /// of a server that serves TLS only.
    pub(crate) fn target(&self) -> Target {
        match &self.endpoints.unix_socket {
            Some(path) if self.config.tls_only => Target::Unix {
                port: self.endpoints.port,
                path: path.clone(),
            },
            _ => Target::Tcp(self.endpoints.port),
        }
    }

    /// Kills the process and panics with the reason and the end of the log.
    fn fail(&mut self, action: &str, failure: Failure) -> ! {
        self.kill();
        let (ports, were) = match self.endpoints.tls_port {
            Some(tls) if self.config.tls_only => (format!("port {tls} (TLS)"), "was"),
            Some(tls) => (
                format!("ports {} and {tls} (TLS)", self.endpoints.port),
                "were",
            ),
            None => (format!("port {}", self.endpoints.port), "was"),
        };
        let reason = match failure {
            Failure::AddressInUse if action == "start" => format!(
                "the free {ports} it was given {were} taken by another process before it \
                 could bind, {START_ATTEMPTS} times in a row"
            ),
            Failure::AddressInUse => {
                format!("its {ports} {were} taken by another process meanwhile")
            }
            Failure::Exited(status) => format!("it exited ({status})"),
            Failure::Timeout => format!(
                "it did not answer PING on {} within {READY_TIMEOUT:?}",
                self.target()
            ),
        };
        panic!(
            "cannot {action} the private redis-server: {reason}\n\
             command: {}\n\
             log tail:\n{}",
            self.redacted_command(),
            self.log_tail(),
        );
    }

    /// The command line, with passwords replaced by `***`.
    fn redacted_command(&self) -> String {
        let mut command = String::from("redis-server");
        for arg in self.config.args(&self.endpoints, true) {
            command.push(' ');
            if arg.is_empty() || arg.contains(|c: char| c.is_whitespace() || c == '\'') {
                command.push_str(&format!("'{}'", arg.replace('\'', r"'\''")));
            } else {
                command.push_str(&arg);
            }
        }
        redact(&command, &self.secrets)
    }

    /// Sends a signal with the `kill` command (no `unsafe` here), if the process is running;
    /// returns whether it did.
    fn signal(&self, signal: &str) -> bool {
        if self.child.is_none() {
            return false;
        }
        let pid = self.pid.to_string();
        match Command::new("kill").args([signal, &pid]).status() {
            Ok(status) if status.success() => true,
            Ok(status) => panic!("`kill {signal} {pid}` failed: {status}"),
            Err(e) => panic!("cannot run `kill {signal} {pid}`: {e}"),
        }
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
        let _ = fs::remove_dir_all(&self.endpoints.dir);
    }
}

impl fmt::Debug for RedisServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisServer")
            .field("pid", &self.pid)
            .field("running", &self.child.is_some())
            .field("paused", &self.is_paused())
            .field("port", &self.endpoints.port)
            .field("tls_port", &self.endpoints.tls_port)
            .field("unix_socket", &self.endpoints.unix_socket)
            .field("dir", &self.endpoints.dir)
            .field("command", &self.redacted_command())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::builder::TLS_FILES;

    #[test]
    fn the_tls_files_are_those_generated() {
        let server = RedisServer::builder().tls().start();
        let dir = &server.endpoints.dir;
        for name in [TLS_FILES.ca_cert, TLS_FILES.cert, TLS_FILES.key] {
            assert!(dir.join(name).is_file(), "{name}");
        }
        let output = Command::new("openssl")
            .args(["verify", "-purpose", "sslserver", "-CAfile"])
            .args([TLS_FILES.ca_cert, TLS_FILES.cert])
            .current_dir(dir)
            .output()
            .unwrap();
        assert!(output.status.success(), "{output:?}");
        let text = Command::new("openssl")
            .args(["x509", "-noout", "-text", "-in", TLS_FILES.cert])
            .current_dir(dir)
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&text.stdout);
        assert!(text.contains("CA:FALSE"), "{text}");
        assert!(
            text.contains("DNS:localhost, IP Address:127.0.0.1"),
            "{text}"
        );
        assert!(text.contains("TLS Web Server Authentication"), "{text}");
        assert!(text.contains("TLS Web Client Authentication"), "{text}");
    }

    #[test]
    fn a_bad_option_panics_with_the_log_and_no_password() {
        let result = std::panic::catch_unwind(|| {
            RedisServer::builder()
                .password("hunter2-pw")
                .config("no-such-option", "hunter2-pw")
                .start()
        });
        let message = *result.unwrap_err().downcast::<String>().unwrap();
        assert!(
            message.contains("cannot start the private redis-server"),
            "{message}"
        );
        assert!(message.contains("no-such-option"), "{message}");
        assert!(message.contains("--save '' --appendonly no"), "{message}");
        assert!(!message.contains("hunter2"), "{message}");
    }
}
