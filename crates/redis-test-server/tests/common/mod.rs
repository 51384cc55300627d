//! A few lines of RESP, shared by the tests: enough to send commands and read simple
//! replies without a client library.

#![allow(dead_code, unreachable_pub)] // each test file uses a part

use std::io::{ErrorKind, Read, Write};
use std::net::{Ipv4Addr, TcpStream};
use std::time::Duration;

/// How long a test waits for one reply.
pub const TIMEOUT: Duration = Duration::from_secs(5);

/// Connects to 127.0.0.1:`port`, which must not be the shared Redis.
pub fn connect_port(port: u16) -> TcpStream {
    assert_ne!(port, 6379, "must never touch the shared Redis");
    let stream = TcpStream::connect((Ipv4Addr::LOCALHOST, port)).unwrap();
    stream.set_read_timeout(Some(TIMEOUT)).unwrap();
    stream
}

/// The bytes of a command as a RESP array of bulk strings.
pub fn encode(args: &[&str]) -> Vec<u8> {
    let mut request = format!("*{}\r\n", args.len());
    for arg in args {
        request.push_str(&format!("${}\r\n{arg}\r\n", arg.len()));
    }
    request.into_bytes()
}

/// Sends a command as a RESP array of bulk strings.
pub fn send(stream: &mut impl Write, args: &[&str]) {
    stream.write_all(&encode(args)).unwrap();
}

/// Reads one line of reply (enough for simple strings, errors and integers).
pub fn read_line(stream: &mut impl Read) -> std::io::Result<String> {
    let mut line = Vec::new();
    let mut byte = [0u8; 1];
    while !line.ends_with(b"\r\n") {
        match stream.read(&mut byte)? {
            0 => return Err(ErrorKind::UnexpectedEof.into()),
            _ => line.push(byte[0]),
        }
    }
    line.truncate(line.len() - 2);
    Ok(String::from_utf8(line).unwrap())
}

/// Sends a command and reads the first line of its reply.
pub fn call(stream: &mut (impl Read + Write), args: &[&str]) -> String {
    send(stream, args);
    read_line(stream).unwrap()
}
