//! A private PostgreSQL server for the tests: `initdb` in a temporary directory, started by
//! `pg_ctl` on a free loopback port, stopped and removed on drop. Never touches a PostgreSQL
//! that already runs (such as one on port 5432).
//!
//! PostgreSQL refuses to run as root. When the tests run as root (as CI does), `initdb` and
//! `pg_ctl` run as the `postgres` user through `runuser`, and the directory is handed to
//! that user; Debian's `postgresql` package creates the user.

use std::fs;
use std::net::{Ipv4Addr, TcpListener};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use tempfile::TempDir;

const NOT_FOUND: &str = "PostgreSQL's server programs (initdb, pg_ctl) were found neither on \
    PATH nor in /usr/lib/postgresql/*/bin. The PostgreSQL tests start a private server of their \
    own on a free port (never one already running); install it with \
    `sudo apt-get install -y postgresql` (Debian/Ubuntu)";

/// The user PostgreSQL runs as when the tests run as root.
const SERVER_USER: &str = "postgres";
/// How many times `start` tries another port when the chosen one was taken.
const START_ATTEMPTS: u32 = 5;

/// A running private PostgreSQL, stopped (and its directory removed) on drop.
#[derive(Debug)]
pub(crate) struct PostgresServer {
    dir: TempDir,
    bin: PathBuf,
    as_user: Option<&'static str>,
    port: u16,
}

impl PostgresServer {
    /// Creates a cluster in a temporary directory and starts it on a free port.
    ///
    /// # Panics
    /// When the server programs are missing (the message says how to install them), or the
    /// server does not start (the message has the end of its log).
    pub(crate) fn start() -> Self {
        let bin = server_bindir().unwrap_or_else(|| panic!("{NOT_FOUND}"));
        let dir = tempfile::Builder::new()
            .prefix("trace-service-pg-")
            .tempdir()
            .expect("a temporary directory");
        let as_user = running_as_root().then_some(SERVER_USER);
        if as_user.is_some() {
            hand_to_server_user(dir.path());
        }
        let mut server = Self {
            dir,
            bin,
            as_user,
            port: 0,
        };
        let data = server.data_dir();
        server.run(
            "initdb",
            &[
                "-D",
                path_str(&data),
                "-U",
                "postgres",
                "--auth=trust",
                "--encoding=UTF8",
                "--locale=C",
                "--no-sync",
            ],
        );
        for _ in 0..START_ATTEMPTS {
            server.port = free_port();
            let options = format!(
                "-c listen_addresses=127.0.0.1 -c port={} -c unix_socket_directories={} \
                 -c fsync=off -c synchronous_commit=off -c full_page_writes=off",
                server.port,
                server.dir.path().display()
            );
            let log = server.log_file();
            let started = server.try_run(
                "pg_ctl",
                &[
                    "-D",
                    path_str(&data),
                    "-l",
                    path_str(&log),
                    "-o",
                    &options,
                    "-w",
                    "-t",
                    "30",
                    "start",
                ],
            );
            if started.status.success() {
                return server;
            }
            let log = fs::read_to_string(&log).unwrap_or_default();
            if !log.contains("could not bind") && !log.contains("already in use") {
                panic!(
                    "PostgreSQL did not start: {}\n{}\nlog:\n{}",
                    String::from_utf8_lossy(&started.stdout),
                    String::from_utf8_lossy(&started.stderr),
                    tail(&log)
                );
            }
        }
        panic!("PostgreSQL found no free port in {START_ATTEMPTS} attempts");
    }

    /// A URL for sqlx: the `postgres` superuser and database, over TCP, no password.
    pub(crate) fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn log_file(&self) -> PathBuf {
        self.dir.path().join("postgres.log")
    }

    /// Runs one of the server programs, as the server user when we are root; panics with
    /// its output if it fails.
    fn run(&self, program: &str, args: &[&str]) {
        let output = self.try_run(program, args);
        assert!(
            output.status.success(),
            "{program} failed: {}\n{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }

    fn try_run(&self, program: &str, args: &[&str]) -> Output {
        let program = self.bin.join(program);
        let mut command = match self.as_user {
            Some(user) => {
                let mut command = Command::new("runuser");
                command.args(["-u", user, "--"]).arg(&program);
                command
            }
            None => Command::new(&program),
        };
        // The server user may not be allowed into the test's working directory.
        command.args(args).current_dir(self.dir.path());
        command
            .output()
            .unwrap_or_else(|err| panic!("cannot run {}: {err}", program.display()))
    }
}

impl Drop for PostgresServer {
    fn drop(&mut self) {
        if self.port != 0 {
            let data = self.data_dir();
            let _ = self.try_run(
                "pg_ctl",
                &["-D", path_str(&data), "-m", "immediate", "-w", "stop"],
            );
        }
    }
}

/// Where `initdb` and `pg_ctl` are: on PATH, or in the newest /usr/lib/postgresql/N/bin
/// (where Debian puts them, off PATH).
fn server_bindir() -> Option<PathBuf> {
    let has_both = |dir: &Path| dir.join("initdb").is_file() && dir.join("pg_ctl").is_file();
    if let Some(path) = std::env::var_os("PATH")
        && let Some(dir) = std::env::split_paths(&path).find(|dir| has_both(dir))
    {
        return Some(dir);
    }
    let mut versions: Vec<(u32, PathBuf)> = fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|entry| {
            let entry = entry.ok()?;
            let version = entry.file_name().to_str()?.parse().ok()?;
            Some((version, entry.path().join("bin")))
        })
        .filter(|(_, dir)| has_both(dir))
        .collect();
    versions.sort();
    versions.pop().map(|(_, dir)| dir)
}

/// Whether this process runs as root: `/proc/self` belongs to the process's user.
fn running_as_root() -> bool {
    fs::metadata("/proc/self").is_ok_and(|meta| meta.uid() == 0)
}

/// Gives `dir` to the server user, who must exist.
fn hand_to_server_user(dir: &Path) {
    let id = |flag: &str| -> u32 {
        let output = Command::new("id")
            .args([flag, SERVER_USER])
            .output()
            .expect("cannot run id");
        assert!(
            output.status.success(),
            "the tests run as root, and PostgreSQL refuses to run as root: they run it as the \
             user `{SERVER_USER}`, which does not exist here; \
             `sudo apt-get install -y postgresql` creates it"
        );
        String::from_utf8_lossy(&output.stdout)
            .trim()
            .parse()
            .expect("a numeric id")
    };
    std::os::unix::fs::chown(dir, Some(id("-u")), Some(id("-g")))
        .unwrap_or_else(|err| panic!("cannot give {} to {SERVER_USER}: {err}", dir.display()));
}

/// A port free on 127.0.0.1 now (someone could take it before the server binds it; `start`
/// tries again then). Never 5432, the port of a PostgreSQL that may already run.
fn free_port() -> u16 {
    loop {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("a free port");
        let port = listener.local_addr().expect("its address").port();
        if port != 5432 {
            return port;
        }
    }
}

fn path_str(path: &Path) -> &str {
    path.to_str().expect("temporary paths are UTF-8")
}

fn tail(log: &str) -> String {
    let lines: Vec<&str> = log.lines().collect();
    lines[lines.len().saturating_sub(30)..].join("\n")
}
