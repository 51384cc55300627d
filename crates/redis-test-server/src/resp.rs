//! A minimal blocking RESP2 client, to ask our own servers about their state while waiting
//! for them: one command per connection, every step bounded by a timeout, so a paused or
//! dead server makes a call fail instead of hang.
//!
//! redis-cli would do, but a process per probe is costly when polling several servers
//! every few milliseconds on a busy machine, and it has no read timeout. A server that
//! serves TLS only is asked over its unix socket, so this client needs no TLS.

use std::fmt;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::time::Duration;

/// How long a connection, a write or a read may take.
const TIMEOUT: Duration = Duration::from_secs(1);
/// Arrays deeper than this are refused (ours are at most 3 deep).
const MAX_DEPTH: usize = 8;

/// Where the probes reach a server: its plain port on 127.0.0.1, or the unix socket of a
/// server without one. Shown as `127.0.0.1:{port}`, the address the server is known by.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Target {
    /// Plain TCP on 127.0.0.1.
    Tcp(u16),
    /// The unix socket at `path` of the server listening (with TLS) on `port`.
    Unix { port: u16, path: PathBuf },
}

impl Target {
    /// The port the server is known by.
    pub(crate) fn port(&self) -> u16 {
        match self {
            Target::Tcp(port) | Target::Unix { port, .. } => *port,
        }
    }

    /// A connection with `timeout` on every read and write.
    pub(crate) fn connect(&self, timeout: Duration) -> io::Result<Stream> {
        let stream = match self {
            Target::Tcp(port) => {
                let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, *port));
                let stream = TcpStream::connect_timeout(&addr, timeout)?;
                stream.set_read_timeout(Some(timeout))?;
                stream.set_write_timeout(Some(timeout))?;
                Stream::Tcp(stream)
            }
            // A unix socket connects at once or fails (no timeout to set).
            Target::Unix { path, .. } => {
                let stream = UnixStream::connect(path)?;
                stream.set_read_timeout(Some(timeout))?;
                stream.set_write_timeout(Some(timeout))?;
                Stream::Unix(stream)
            }
        };
        Ok(stream)
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "127.0.0.1:{}", self.port())
    }
}

/// A connection made by [`Target::connect`].
#[derive(Debug)]
pub(crate) enum Stream {
    Tcp(TcpStream),
    Unix(UnixStream),
}

impl Read for &Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Tcp(stream) => (&*stream).read(buf),
            Stream::Unix(stream) => (&*stream).read(buf),
        }
    }
}

impl Write for &Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Stream::Tcp(stream) => (&*stream).write(buf),
            Stream::Unix(stream) => (&*stream).write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Stream::Tcp(stream) => (&*stream).flush(),
            Stream::Unix(stream) => (&*stream).flush(),
        }
    }
}

/// One reply. Error replies are returned as `Err` by [`call`] instead.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Reply {
    /// `+OK`
    Status(String),
    /// `:1`
    Integer(i64),
    /// `$3\r\nabc`, or `$-1` (`None`).
    Bulk(Option<String>),
    /// `*2...`, or `*-1` (`None`).
    Array(Option<Vec<Reply>>),
}

impl Reply {
    /// The text of a status or bulk string reply.
    pub(crate) fn into_text(self) -> Result<String, String> {
        match self {
            Reply::Status(text) | Reply::Bulk(Some(text)) => Ok(text),
            other => Err(format!("expected a string, got {other:?}")),
        }
    }
}

/// Sends `args` to the server at `target` (after `AUTH password` if given) and returns its
/// reply; `Err` says why not (connection refused, timeout, an error reply).
pub(crate) fn call(
    target: &Target,
    password: Option<&str>,
    args: &[&str],
) -> Result<Reply, String> {
    let fail = |what: &str| format!("{target} {}: {what}", args.join(" "));
    let stream = target.connect(TIMEOUT).map_err(|e| fail(&e.to_string()))?;
    let mut request = Vec::new();
    if let Some(password) = password {
        encode(&mut request, &["AUTH", password]);
    }
    encode(&mut request, args);
    (&stream)
        .write_all(&request)
        .map_err(|e| fail(&e.to_string()))?;
    let mut reader = BufReader::new(&stream);
    if password.is_some() {
        // The password is never part of an error text: only the server's reply is shown.
        read(&mut reader, 0).map_err(|e| format!("{target} AUTH: {e}"))?;
    }
    read(&mut reader, 0).map_err(|e| fail(&e))
}

/// Like [`call`], for a command whose reply is a string (`INFO`, `CLUSTER NODES`, ...).
pub(crate) fn call_text(
    target: &Target,
    password: Option<&str>,
    args: &[&str],
) -> Result<String, String> {
    call(target, password, args)?
        .into_text()
        .map_err(|e| format!("{target} {}: {e}", args.join(" ")))
}

/// The value of `field` in an `INFO`-style text (`name:value` lines).
pub(crate) fn info_field<'a>(info: &'a str, field: &str) -> Option<&'a str> {
    info.lines().find_map(|line| {
        line.strip_prefix(field)
            .and_then(|rest| rest.strip_prefix(':'))
            .map(str::trim)
    })
}

/// Appends `args` as a RESP array of bulk strings.
fn encode(out: &mut Vec<u8>, args: &[&str]) {
    out.extend_from_slice(format!("*{}\r\n", args.len()).as_bytes());
    for arg in args {
        out.extend_from_slice(format!("${}\r\n", arg.len()).as_bytes());
        out.extend_from_slice(arg.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
}

/// Reads one reply; an error reply is an `Err` with its text.
fn read(reader: &mut impl BufRead, depth: usize) -> Result<Reply, String> {
    let mut line = String::new();
    match reader.read_line(&mut line) {
        Ok(0) => return Err("the connection was closed".to_owned()),
        Ok(_) => {}
        Err(e) => return Err(e.to_string()),
    }
    let line = line
        .strip_suffix("\r\n")
        .ok_or_else(|| format!("a reply line without CRLF: {line:?}"))?;
    let (kind, rest) = line.split_at_checked(1).unwrap_or(("", ""));
    let length = || {
        rest.parse::<i64>()
            .map_err(|_| format!("a bad length in {line:?}"))
    };
    match kind {
        "+" => Ok(Reply::Status(rest.to_owned())),
        "-" => Err(rest.to_owned()),
        ":" => Ok(Reply::Integer(length()?)),
        "$" => {
            let Ok(n) = usize::try_from(length()?) else {
                return Ok(Reply::Bulk(None));
            };
            let mut bytes = vec![0; n + 2];
            reader.read_exact(&mut bytes).map_err(|e| e.to_string())?;
            bytes.truncate(n);
            Ok(Reply::Bulk(Some(
                String::from_utf8_lossy(&bytes).into_owned(),
            )))
        }
        "*" if depth < MAX_DEPTH => {
            let Ok(n) = usize::try_from(length()?) else {
                return Ok(Reply::Array(None));
            };
            let items = (0..n)
                .map(|_| read(reader, depth + 1))
                .collect::<Result<_, _>>()?;
            Ok(Reply::Array(Some(items)))
        }
        _ => Err(format!("an unexpected reply line {line:?}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(bytes: &[u8]) -> Result<Reply, String> {
        read(&mut &bytes[..], 0)
    }

    #[test]
    fn replies_are_parsed() {
        assert_eq!(parse(b"+OK\r\n"), Ok(Reply::Status("OK".into())));
        assert_eq!(parse(b"-ERR no\r\n"), Err("ERR no".into()));
        assert_eq!(parse(b":-3\r\n"), Ok(Reply::Integer(-3)));
        assert_eq!(parse(b"$-1\r\n"), Ok(Reply::Bulk(None)));
        assert_eq!(parse(b"*-1\r\n"), Ok(Reply::Array(None)));
        assert_eq!(
            parse(b"*2\r\n$5\r\na\r\nbc\r\n*1\r\n:1\r\n"),
            Ok(Reply::Array(Some(vec![
                Reply::Bulk(Some("a\r\nbc".into())),
                Reply::Array(Some(vec![Reply::Integer(1)])),
            ])))
        );
        assert!(parse(b"$5\r\nab").is_err());
        assert!(parse(b"?\r\n").is_err());
        assert!(parse(b"").is_err());
    }

    #[test]
    fn info_fields_are_found() {
        let info = "# Replication\r\nrole:slave\r\nmaster_link_status:up\r\n";
        assert_eq!(info_field(info, "role"), Some("slave"));
        assert_eq!(info_field(info, "master_link_status"), Some("up"));
        assert_eq!(info_field(info, "master"), None);
    }

    #[test]
    fn a_call_to_a_server_works_and_a_closed_port_fails() {
        let server = crate::RedisServer::builder().password("pw").start();
        let target = Target::Tcp(server.port());
        let reply = call(&target, Some("pw"), &["ECHO", "hi"]);
        assert_eq!(reply, Ok(Reply::Bulk(Some("hi".into()))));
        let error = call(&target, Some("wrong"), &["PING"]).unwrap_err();
        assert!(error.contains("WRONGPASS"), "{error}");
        assert!(!error.contains("wrong"), "{error}");
        drop(server);
        assert!(call(&target, None, &["PING"]).is_err());
    }
}
