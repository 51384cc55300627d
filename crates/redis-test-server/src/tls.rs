//! Generates, with the `openssl` command, a CA and a server certificate signed by it.
//!
//! A single self-signed certificate would not do: rustls (webpki) rejects a CA
//! certificate used as the end-entity certificate.

use std::fs;
use std::io::ErrorKind;
use std::path::Path;
use std::process::Command;
use std::time::{SystemTime, UNIX_EPOCH};

use crate::builder::TLS_FILES;

const OPENSSL_NOT_FOUND: &str = "openssl was not found on PATH. The Redis TLS tests generate \
    the certificates of their private redis-server with it; install it with \
    `sudo apt-get install -y openssl` (Debian/Ubuntu) or `brew install openssl` (macOS)";

/// How many days the certificates are valid.
const DAYS: &str = "3";

/// The configuration of the CA certificate.
const CA_CONFIG: &str = "\
[req]
distinguished_name = dn
prompt = no
x509_extensions = v3_ca

[dn]
CN = redis-test-server CA

[v3_ca]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
";

/// The configuration of the server's certificate request.
const SERVER_CONFIG: &str = "\
[req]
distinguished_name = dn
prompt = no

[dn]
CN = localhost
";

/// The extensions of the server's certificate.
const SERVER_EXTENSIONS: &str = "\
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = serverAuth
subjectAltName = DNS:localhost, IP:127.0.0.1
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid, issuer
";

/// Writes the CA certificate, the server's certificate and the server's key (names in
/// [`TLS_FILES`]) into `dir`, and returns the CA certificate's PEM.
pub(crate) fn generate(dir: &Path) -> Vec<u8> {
    write(dir, "ca.cnf", CA_CONFIG);
    write(dir, "server.cnf", SERVER_CONFIG);
    write(dir, "server.ext", SERVER_EXTENSIONS);
    let p256 = ["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"];

    openssl(
        dir,
        &[&["genpkey"], &p256[..], &["-out", "ca.key"]].concat(),
    );
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-new",
            "-config",
            "ca.cnf",
            "-key",
            "ca.key",
            "-days",
            DAYS,
            "-out",
            TLS_FILES.ca_cert,
        ],
    );
    openssl(
        dir,
        &[&["genpkey"], &p256[..], &["-out", TLS_FILES.key]].concat(),
    );
    openssl(
        dir,
        &[
            "req",
            "-new",
            "-config",
            "server.cnf",
            "-key",
            TLS_FILES.key,
            "-out",
            "server.csr",
        ],
    );
    let serial = serial();
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            TLS_FILES.ca_cert,
            "-CAkey",
            "ca.key",
            "-set_serial",
            &serial,
            "-days",
            DAYS,
            "-extfile",
            "server.ext",
            "-out",
            TLS_FILES.cert,
        ],
    );
    let ca_file = dir.join(TLS_FILES.ca_cert);
    fs::read(&ca_file).unwrap_or_else(|e| panic!("cannot read {}: {e}", ca_file.display()))
}

/// A positive serial number, different for each certificate in practice.
fn serial() -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!("0x{:x}", (nanos & ((1 << 62) - 1)) | 1)
}

fn write(dir: &Path, name: &str, contents: &str) {
    let path = dir.join(name);
    fs::write(&path, contents).unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
}

/// Runs `openssl args...` in `dir`; panics with its output if it fails.
fn openssl(dir: &Path, args: &[&str]) {
    let output = match Command::new("openssl").args(args).current_dir(dir).output() {
        Ok(output) => output,
        Err(e) if e.kind() == ErrorKind::NotFound => panic!("{OPENSSL_NOT_FOUND}"),
        Err(e) => panic!("cannot run openssl: {e}"),
    };
    assert!(
        output.status.success(),
        "`openssl {}` failed ({}):\n{}{}",
        args.join(" "),
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr),
    );
}
