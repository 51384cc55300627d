//! Generates, with the `openssl` command, a CA and a server certificate signed by it.
//!
//! A single self-signed certificate would not do: rustls (webpki) rejects a CA
//! certificate used as the end-entity certificate.

use std::fmt;
use std::fs;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{SystemTime, UNIX_EPOCH};

use crate::builder::TLS_FILES;
use crate::util::create_temp_dir;

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

/// The extensions of the server's certificate. It serves as a client certificate too
/// (`clientAuth`): the nodes of a TLS cluster present it to each other on the cluster bus,
/// which always asks for one, and OpenSSL refuses a client certificate for `serverAuth`
/// only (the cluster never forms).
const SERVER_EXTENSIONS: &str = "\
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = serverAuth, clientAuth
subjectAltName = DNS:localhost, IP:127.0.0.1
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid, issuer
";

/// The TLS files of several servers that share one CA (a cluster's nodes, a sentinel
/// set-up), generated once in a temporary directory removed on drop; each server copies them
/// into its own directory ([`copy`]).
pub(crate) struct SharedCertificates {
    dir: PathBuf,
    ca_cert_pem: Vec<u8>,
}

impl SharedCertificates {
    /// Generates the CA, the server's certificate and its key.
    ///
    /// # Panics
    ///
    /// If `openssl` is not installed or fails.
    pub(crate) fn generate() -> SharedCertificates {
        let mut certificates = SharedCertificates {
            dir: create_temp_dir(),
            ca_cert_pem: Vec::new(),
        };
        // A panic from here on drops `certificates`, which removes the directory.
        certificates.ca_cert_pem = generate(&certificates.dir);
        certificates
    }

    /// The directory holding the files named in [`TLS_FILES`].
    pub(crate) fn dir(&self) -> &Path {
        &self.dir
    }

    /// The path of the CA certificate (for `redis-cli --cacert`).
    pub(crate) fn ca_cert_file(&self) -> PathBuf {
        self.dir.join(TLS_FILES.ca_cert)
    }

    /// The PEM of the CA certificate.
    pub(crate) fn ca_cert_pem(&self) -> &[u8] {
        &self.ca_cert_pem
    }
}

impl Drop for SharedCertificates {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.dir);
    }
}

impl fmt::Debug for SharedCertificates {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SharedCertificates")
            .field("dir", &self.dir)
            .finish_non_exhaustive()
    }
}

/// Copies the files named in [`TLS_FILES`] from `from` into `to`, and returns the CA
/// certificate's PEM.
pub(crate) fn copy(from: &Path, to: &Path) -> Vec<u8> {
    for name in [TLS_FILES.ca_cert, TLS_FILES.cert, TLS_FILES.key] {
        let (source, target) = (from.join(name), to.join(name));
        fs::copy(&source, &target).unwrap_or_else(|e| {
            panic!(
                "cannot copy {} to {}: {e}",
                source.display(),
                target.display()
            )
        });
    }
    let ca_file = to.join(TLS_FILES.ca_cert);
    fs::read(&ca_file).unwrap_or_else(|e| panic!("cannot read {}: {e}", ca_file.display()))
}

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
