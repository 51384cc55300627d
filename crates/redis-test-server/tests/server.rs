//! Tests of the harness against real `redis-server` processes (never the one on 6379).

use std::io::ErrorKind;
use std::net::{Ipv4Addr, TcpStream};
use std::os::unix::net::UnixStream;
use std::process::Command;
use std::thread;
use std::time::{Duration, Instant};

use redis_test_server::RedisServer;

mod common;

use common::{TIMEOUT, call, connect_port, read_line, send};

/// Connects to the server's plain port.
fn connect(server: &RedisServer) -> TcpStream {
    connect_port(server.port())
}

#[test]
fn start_answers_and_drop_cleans_up() {
    let server = RedisServer::start();
    let port = server.port();
    assert_eq!(server.url(), format!("redis://127.0.0.1:{port}/"));
    assert_eq!(server.tls_port(), None);
    assert_eq!(server.tls_url(), None);
    assert_eq!(server.ca_cert_pem(), None);
    assert_eq!(server.unix_socket(), None);
    assert_eq!(server.unix_url(), None);
    assert!(server.pid() > 0);
    let mut stream = connect(&server);
    assert_eq!(call(&mut stream, &["PING"]), "+PONG");
    // Persistence is off.
    for (option, value) in [("appendonly", "no"), ("save", "")] {
        send(&mut stream, &["CONFIG", "GET", option]);
        let reply: Vec<String> = (0..5).map(|_| read_line(&mut stream).unwrap()).collect();
        assert_eq!(reply[4], value, "{reply:?}");
    }
    assert!(server.log_tail().contains("Ready to accept connections"));
    // The directory is only shown by `Debug`.
    let debug = format!("{server:?}");
    let dir = debug
        .split("dir: \"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .map(std::path::PathBuf::from)
        .unwrap();
    assert!(dir.is_dir());
    drop(stream);

    drop(server);
    assert!(!dir.exists(), "{} is left", dir.display());
    let deadline = Instant::now() + Duration::from_secs(2);
    while TcpStream::connect((Ipv4Addr::LOCALHOST, port)).is_ok() {
        assert!(Instant::now() < deadline, "port {port} still accepts");
        thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn password_is_required() {
    let server = RedisServer::builder().password("pw-123").start();
    let mut stream = connect(&server);
    assert!(call(&mut stream, &["PING"]).starts_with("-NOAUTH"));
    assert_eq!(call(&mut stream, &["AUTH", "pw-123"]), "+OK");
    assert_eq!(call(&mut stream, &["PING"]), "+PONG");
    assert!(!server.url().contains("pw-123"));
}

#[test]
fn acl_users_are_limited_to_their_rules() {
    let server = RedisServer::builder()
        .acl_user("app", "app-pw", "~app:* resetchannels -@all +get +set")
        .acl_user("reader", "reader-pw", "~* +@read")
        .start();
    let mut stream = connect(&server);
    assert!(call(&mut stream, &["AUTH", "app", "wrong"]).starts_with("-WRONGPASS"));
    assert_eq!(call(&mut stream, &["AUTH", "app", "app-pw"]), "+OK");
    assert_eq!(call(&mut stream, &["SET", "app:1", "x"]), "+OK");
    assert!(call(&mut stream, &["SET", "other:1", "x"]).starts_with("-NOPERM"));
    assert!(call(&mut stream, &["DEL", "app:1"]).starts_with("-NOPERM"));
    assert_eq!(call(&mut stream, &["AUTH", "reader", "reader-pw"]), "+OK");
    assert_eq!(call(&mut stream, &["EXISTS", "app:1"]), ":1");
    assert!(call(&mut stream, &["SET", "app:1", "y"]).starts_with("-NOPERM"));
}

#[test]
fn unix_socket_answers() {
    let server = RedisServer::builder().unix_socket().start();
    let path = server.unix_socket().unwrap();
    assert_eq!(
        server.unix_url().unwrap(),
        format!("redis+unix://{}", path.display())
    );
    let mut stream = UnixStream::connect(path).unwrap();
    stream.set_read_timeout(Some(TIMEOUT)).unwrap();
    assert_eq!(call(&mut stream, &["PING"]), "+PONG");
}

#[test]
fn tls_answers_with_a_certificate_signed_by_the_ca() {
    let server = RedisServer::builder().tls().password("tls-pw").start();
    let tls_port = server.tls_port().unwrap();
    assert_ne!(tls_port, server.port());
    assert_eq!(
        server.tls_url().unwrap(),
        format!("rediss://localhost:{tls_port}/")
    );
    let pem = server.ca_cert_pem().unwrap();
    assert!(pem.starts_with(b"-----BEGIN CERTIFICATE-----"));

    let ca_file = std::env::temp_dir().join(format!("rts-test-ca-{}.pem", std::process::id()));
    std::fs::write(&ca_file, &pem).unwrap();
    let output = Command::new("redis-cli")
        .args(["--tls", "--cacert"])
        .arg(&ca_file)
        .args(["-h", "localhost", "-p", &tls_port.to_string()])
        .args([
            "--user",
            "default",
            "--pass",
            "tls-pw",
            "--no-auth-warning",
            "ping",
        ])
        .output()
        .expect("redis-cli is needed by this test");
    std::fs::remove_file(&ca_file).unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(stdout.trim(), "PONG", "{output:?}");

    // The plain port still answers.
    let mut stream = connect(&server);
    assert!(call(&mut stream, &["PING"]).starts_with("-NOAUTH"));
}

#[test]
fn kill_then_restart_on_the_same_port() {
    let mut server = RedisServer::builder().unix_socket().start();
    let (port, pid) = (server.port(), server.pid());
    let mut stream = connect(&server);
    assert_eq!(call(&mut stream, &["SET", "k", "v"]), "+OK");

    assert!(server.is_running());
    server.kill();
    server.kill(); // a no-op
    assert!(!server.is_running());
    server.pause(); // no-ops when not running
    assert!(!server.is_paused());
    server.resume();
    assert!(read_line(&mut stream).is_err(), "the connection is closed");
    assert!(TcpStream::connect((Ipv4Addr::LOCALHOST, port)).is_err());

    server.restart();
    assert!(server.is_running());
    assert_eq!(server.port(), port);
    assert_ne!(server.pid(), pid);
    let mut stream = connect(&server);
    assert_eq!(
        call(&mut stream, &["EXISTS", "k"]),
        ":0",
        "data is not persisted"
    );
    let mut unix = UnixStream::connect(server.unix_socket().unwrap()).unwrap();
    unix.set_read_timeout(Some(TIMEOUT)).unwrap();
    assert_eq!(call(&mut unix, &["PING"]), "+PONG");

    // Restarting a running server kills it first.
    server.restart();
    assert_eq!(server.port(), port);
    assert!(read_line(&mut stream).is_err());
    assert_eq!(call(&mut connect(&server), &["PING"]), "+PONG");
}

#[test]
fn restart_panics_if_the_port_was_taken() {
    let mut server = RedisServer::start();
    server.kill();
    let _squatter = std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, server.port())).unwrap();
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| server.restart()));
    let message = *result.unwrap_err().downcast::<String>().unwrap();
    assert!(message.contains("taken"), "{message}");
}

#[test]
fn pause_and_resume() {
    let server = RedisServer::start();
    let mut stream = connect(&server);
    assert_eq!(call(&mut stream, &["PING"]), "+PONG");

    server.pause();
    assert!(server.is_paused());
    stream
        .set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    send(&mut stream, &["PING"]);
    let error = read_line(&mut stream).unwrap_err();
    assert!(
        matches!(error.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut),
        "{error:?}"
    );

    server.resume();
    assert!(!server.is_paused());
    stream.set_read_timeout(Some(TIMEOUT)).unwrap();
    assert_eq!(read_line(&mut stream).unwrap(), "+PONG");
}

#[test]
fn options_are_passed() {
    let server = RedisServer::builder()
        .config("maxmemory", "1mb")
        .config("save", "900 1")
        .start();
    let mut stream = connect(&server);
    send(&mut stream, &["CONFIG", "GET", "maxmemory"]);
    let reply: Vec<String> = (0..5).map(|_| read_line(&mut stream).unwrap()).collect();
    assert_eq!(reply, ["*2", "$9", "maxmemory", "$7", "1048576"]);
    send(&mut stream, &["CONFIG", "GET", "save"]);
    let reply: Vec<String> = (0..5).map(|_| read_line(&mut stream).unwrap()).collect();
    assert_eq!(reply[4], "900 1");
}

#[test]
fn debug_hides_passwords() {
    let server = RedisServer::builder()
        .password("very-secret-pw")
        .acl_user("app", "other-secret-pw", "~* +@all")
        .start();
    let debug = format!("{server:?}");
    assert!(!debug.contains("secret-pw"), "{debug}");
    assert!(debug.contains(&server.port().to_string()), "{debug}");
    assert!(debug.contains("--requirepass ***"), "{debug}");
    let builder = RedisServer::builder().password("very-secret-pw");
    assert!(!format!("{builder:?}").contains("secret"));
    assert!(!server.log_tail().contains("secret-pw"));
}
