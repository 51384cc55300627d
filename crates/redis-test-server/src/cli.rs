//! Running `redis-cli` against our own servers, with the password passed through the
//! `REDISCLI_AUTH` environment variable (never on a command line or in a log), in the
//! foreground or in the background, always bounded by a timeout.

use std::error::Error;
use std::fmt;
use std::io::{ErrorKind, Read};
use std::process::{Child, ChildStderr, ChildStdout, Command, ExitStatus, Stdio};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use crate::builder::redact;

const REDIS_CLI_NOT_FOUND: &str = "redis-cli was not found on PATH. The Redis cluster tests \
    create and reshard their private clusters with it; it comes with Redis: install it with \
    `sudo apt-get install -y redis-server` (Debian/Ubuntu) or `brew install redis` (macOS)";

/// How often a background `redis-cli` is checked on.
const POLL_INTERVAL: Duration = Duration::from_millis(20);

/// A `redis-cli` run that failed: it exited with an error, or did not finish in time.
///
/// Its `Display` (and `Debug`) show the command line, why it failed and all it printed,
/// with passwords replaced by `***`.
pub struct CliError {
    command: String,
    /// `None`: it was killed when its time ran out.
    status: Option<ExitStatus>,
    timeout: Duration,
    output: String,
}

impl CliError {
    /// Everything the command printed (stdout, then stderr), with passwords replaced by
    /// `***`.
    pub fn output(&self) -> &str {
        &self.output
    }

    /// Whether it was killed because it did not finish in time.
    pub fn timed_out(&self) -> bool {
        self.status.is_none()
    }
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.status {
            Some(status) => write!(f, "`{}` failed ({status})", self.command)?,
            None => write!(
                f,
                "`{}` did not finish within {:?} and was killed",
                self.command, self.timeout
            )?,
        }
        write!(f, "; its output:\n{}", self.output)
    }
}

impl fmt::Debug for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl Error for CliError {}

/// A `redis-cli` started in the background, for example by
/// [`RedisCluster::start_reshard`](crate::RedisCluster::start_reshard); killed on drop if
/// still running.
pub struct CliJob {
    /// `None` once waited for.
    child: Option<Child>,
    readers: Vec<JoinHandle<String>>,
    command: String,
    secrets: Vec<String>,
    started: Instant,
    timeout: Duration,
}

impl CliJob {
    /// Whether the command has exited (or was killed when its time ran out).
    pub fn is_finished(&mut self) -> bool {
        match &mut self.child {
            Some(child) => !matches!(child.try_wait(), Ok(None)),
            None => true,
        }
    }

    /// Waits until the command exits, or kills it when its time is up (counted from its
    /// start), and returns its stdout.
    ///
    /// # Errors
    ///
    /// A [`CliError`] with all it printed, if it exited with an error or was killed.
    pub fn wait(mut self) -> Result<String, CliError> {
        let deadline = self.started + self.timeout;
        let status = loop {
            let Some(child) = &mut self.child else {
                unreachable!("a CliJob is waited for once: `wait` takes it by value")
            };
            match child.try_wait() {
                Ok(Some(status)) => break Some(status),
                Ok(None) if Instant::now() >= deadline => break None,
                Ok(None) => thread::sleep(POLL_INTERVAL),
                Err(e) => panic!("cannot check on `{}`: {e}", self.command),
            }
        };
        self.kill();
        let mut texts = self
            .readers
            .drain(..)
            .map(|reader| reader.join().unwrap_or_default());
        let stdout = redact(&texts.next().unwrap_or_default(), &self.secrets);
        let stderr = redact(&texts.next().unwrap_or_default(), &self.secrets);
        match status {
            Some(status) if status.success() => Ok(stdout),
            status => Err(CliError {
                command: self.command.clone(),
                status,
                timeout: self.timeout,
                output: format!("{stdout}{stderr}"),
            }),
        }
    }

    /// Kills the process if it still runs, and reaps it.
    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            // Fails only if it already exited; either way, reap it.
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for CliJob {
    fn drop(&mut self) {
        self.kill();
    }
}

impl fmt::Debug for CliJob {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CliJob")
            .field("command", &self.command)
            .field("pid", &self.child.as_ref().map(Child::id))
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

/// Starts `redis-cli args...` in the background, authenticating with `password` if given;
/// [`CliJob::wait`] kills it after `timeout`. `secrets` are scrubbed from its output.
pub(crate) fn spawn(
    args: &[String],
    password: Option<&str>,
    secrets: &[String],
    timeout: Duration,
) -> CliJob {
    let mut command = Command::new("redis-cli");
    command
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    match password {
        Some(password) => command.env("REDISCLI_AUTH", password),
        None => command.env_remove("REDISCLI_AUTH"),
    };
    let printed = redact(&format!("redis-cli {}", args.join(" ")), secrets);
    let mut child = match command.spawn() {
        Ok(child) => child,
        Err(e) if e.kind() == ErrorKind::NotFound => panic!("{REDIS_CLI_NOT_FOUND}"),
        Err(e) => panic!("cannot run `{printed}`: {e}"),
    };
    // Read both pipes meanwhile, so a chatty command never blocks on a full pipe.
    let stdout: Option<ChildStdout> = child.stdout.take();
    let stderr: Option<ChildStderr> = child.stderr.take();
    let readers = vec![
        thread::spawn(move || read_all(stdout)),
        thread::spawn(move || read_all(stderr)),
    ];
    CliJob {
        child: Some(child),
        readers,
        command: printed,
        secrets: secrets.to_vec(),
        started: Instant::now(),
        timeout,
    }
}

/// Runs `redis-cli args...` and returns its stdout; see [`spawn`].
pub(crate) fn run(
    args: &[String],
    password: Option<&str>,
    secrets: &[String],
    timeout: Duration,
) -> Result<String, CliError> {
    spawn(args, password, secrets, timeout).wait()
}

/// All of a pipe, as text.
fn read_all(pipe: Option<impl Read>) -> String {
    let mut bytes = Vec::new();
    if let Some(mut pipe) = pipe {
        let _ = pipe.read_to_end(&mut bytes);
    }
    String::from_utf8_lossy(&bytes).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::RedisServer;

    fn args(port: u16, command: &[&str]) -> Vec<String> {
        let mut args = vec!["-h".to_owned(), "127.0.0.1".to_owned()];
        args.extend(["-p".to_owned(), port.to_string()]);
        args.extend(command.iter().map(|s| (*s).to_owned()));
        args
    }

    #[test]
    fn the_password_goes_through_the_environment() {
        let server = RedisServer::builder().password("cli-pw").start();
        let secrets = vec!["cli-pw".to_owned()];
        let timeout = Duration::from_secs(10);
        let echo = args(server.port(), &["ECHO", "cli-pw"]);
        let out = run(&echo, Some("cli-pw"), &secrets, timeout).unwrap();
        assert_eq!(out.trim(), "***", "the output is redacted");
        let out = run(&echo, None, &secrets, timeout).unwrap();
        assert!(out.contains("NOAUTH"), "{out}");
    }

    #[test]
    fn a_failure_and_a_timeout_are_errors() {
        let server = RedisServer::start();
        let port = server.port();
        let timeout = Duration::from_secs(10);
        let blocking = args(port, &["BLPOP", "nothing", "0"]);
        let error = run(&blocking, None, &[], Duration::from_millis(300)).unwrap_err();
        assert!(error.timed_out(), "{error}");
        drop(server);
        let error = run(&args(port, &["PING"]), None, &[], timeout).unwrap_err();
        assert!(!error.timed_out());
        assert!(error.output().contains("Connection refused"), "{error}");
        assert!(
            error.to_string().contains("redis-cli -h 127.0.0.1"),
            "{error}"
        );
    }
}
