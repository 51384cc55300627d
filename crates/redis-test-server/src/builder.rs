//! The builder, the server's configuration, and how it becomes command-line arguments.

use std::fmt;
use std::path::{Path, PathBuf};

use crate::RedisServer;
use crate::tls::SharedCertificates;

/// What [`redact`] puts in place of a secret.
const REDACTED: &str = "***";

/// Configures a [`RedisServer`] before it starts; get one from [`RedisServer::builder`].
///
/// Every option adds to the command line of the private `redis-server`; nothing is ever
/// sent to a Redis that was already running.
///
/// ```no_run
/// use redis_test_server::RedisServer;
///
/// let server = RedisServer::builder()
///     .password("s3cret")
///     .acl_user("app", "app-pw", "~app:* resetchannels -@all +get +set")
///     .unix_socket()
///     .tls()
///     .config("maxmemory", "1mb")
///     .start();
/// assert!(server.tls_url().is_some());
/// ```
#[derive(Default)]
pub struct RedisServerBuilder {
    pub(crate) config: Config,
}

impl RedisServerBuilder {
    /// Requires this password of the default user (`--requirepass`).
    pub fn password(mut self, password: impl Into<String>) -> Self {
        self.config.password = Some(password.into());
        self
    }

    /// Adds an ACL user: `--user <name> on ><password> <rules...>`.
    ///
    /// `rules` is a space-separated list of ACL rules, for example
    /// `"~app:* resetchannels -@all +get +set"`. May be called several times.
    pub fn acl_user(
        mut self,
        name: impl Into<String>,
        password: impl Into<String>,
        rules: impl Into<String>,
    ) -> Self {
        self.config.acl_users.push(AclUser {
            name: name.into(),
            password: password.into(),
            rules: rules.into(),
        });
        self
    }

    /// Also listens on a unix socket in the server's temporary directory
    /// (`--unixsocket`, `--unixsocketperm 700`); see [`RedisServer::unix_socket`].
    pub fn unix_socket(mut self) -> Self {
        self.config.unix_socket = true;
        self
    }

    /// Also listens with TLS on a second free port, with a certificate for `localhost` and
    /// `127.0.0.1` signed by a freshly generated CA (needs the `openssl` command); see
    /// [`RedisServer::tls_url`] and [`RedisServer::ca_cert_pem`].
    pub fn tls(mut self) -> Self {
        self.config.tls = true;
        self
    }

    /// Serves TLS only, with the TLS files of `certificates` (a CA shared with other
    /// servers): the TLS port is its only TCP port (`--port 0`), and [`RedisServer::port`]
    /// returns it; the harness asks the server about its state over a unix socket in its
    /// directory.
    pub(crate) fn tls_only(mut self, certificates: &SharedCertificates) -> Self {
        self.config.tls = true;
        self.config.tls_only = true;
        self.config.unix_socket = true;
        self.config.tls_files_from = Some(certificates.dir().to_owned());
        self
    }

    /// Passes any other option as `--name value`, for example `("maxmemory", "1mb")`.
    ///
    /// The value is split on whitespace into separate arguments, so `("save", "900 1")`
    /// works; an empty value is passed as one empty argument. Values of options whose name
    /// mentions `pass` or `auth`, and `>password` rules of `("user", ..)`, are treated as
    /// secrets and never printed.
    pub fn config(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.config.extra.push((name.into(), value.into()));
        self
    }

    /// Gives `password` to the primary when replicating (`--masterauth`, as one argument
    /// even if it has spaces, unlike [`config`](Self::config)).
    pub(crate) fn masterauth(mut self, password: impl Into<String>) -> Self {
        self.config.masterauth = Some(password.into());
        self
    }

    /// Makes a cluster node: its port is chosen so that the cluster bus port (port + 10000)
    /// is free too. The `cluster-enabled` option itself is passed with
    /// [`config`](Self::config).
    pub(crate) fn cluster_bus(mut self) -> Self {
        self.config.cluster_bus = true;
        self
    }

    /// Makes a sentinel (`redis-server <file> --sentinel`) whose configuration file holds
    /// `config`; `secrets` are the passwords in it, scrubbed from anything printed.
    pub(crate) fn sentinel(mut self, config: String, secrets: Vec<String>) -> Self {
        self.config.sentinel_config = Some(config);
        self.config.config_file_secrets = secrets;
        self
    }

    /// Starts the server and waits until it answers; see [`RedisServer::start`].
    pub fn start(self) -> RedisServer {
        RedisServer::launch(self.config)
    }
}

impl fmt::Debug for RedisServerBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let c = &self.config;
        let users: Vec<String> = c
            .acl_users
            .iter()
            .map(|u| format!("{} on >{REDACTED} {}", u.name, redact_rules(&u.rules)))
            .collect();
        let extra: Vec<String> = c
            .extra
            .iter()
            .map(|(name, value)| format!("--{name} {}", redact_value(name, value)))
            .collect();
        f.debug_struct("RedisServerBuilder")
            .field("password", &c.password.as_ref().map(|_| REDACTED))
            .field("masterauth", &c.masterauth.as_ref().map(|_| REDACTED))
            .field("acl_users", &users)
            .field("unix_socket", &c.unix_socket)
            .field("tls", &c.tls)
            .field("tls_only", &c.tls_only)
            .field("config", &extra)
            .finish()
    }
}

/// One `--user` line.
#[derive(Clone)]
pub(crate) struct AclUser {
    name: String,
    password: String,
    rules: String,
}

/// Everything the builder collected; kept by the server so that a restart uses the same
/// arguments.
#[derive(Clone, Default)]
pub(crate) struct Config {
    password: Option<String>,
    /// The password a replica gives its primary (`--masterauth`, one argument).
    masterauth: Option<String>,
    acl_users: Vec<AclUser>,
    pub(crate) unix_socket: bool,
    pub(crate) tls: bool,
    /// No plain TCP port: TLS only, on [`Endpoints::port`].
    pub(crate) tls_only: bool,
    /// A directory to copy the TLS files from, instead of generating them.
    pub(crate) tls_files_from: Option<PathBuf>,
    extra: Vec<(String, String)>,
    /// A cluster node: its port must have a free cluster bus port (port + 10000) too.
    pub(crate) cluster_bus: bool,
    /// A sentinel: the text of its configuration file, written as [`SENTINEL_CONFIG_FILE`]
    /// into its directory at the first start (the sentinel rewrites it; a restart keeps
    /// the rewritten file).
    pub(crate) sentinel_config: Option<String>,
    /// Secrets that only appear in `sentinel_config` (such as `sentinel auth-pass`).
    pub(crate) config_file_secrets: Vec<String>,
}

/// Where a server listens and keeps its files.
#[derive(Debug, Clone)]
pub(crate) struct Endpoints {
    /// The port clients use: the plain port, or the TLS port of a server without one
    /// ([`Config::tls_only`]).
    pub(crate) port: u16,
    pub(crate) tls_port: Option<u16>,
    pub(crate) dir: PathBuf,
    pub(crate) unix_socket: Option<PathBuf>,
}

/// The TLS files generated in the server's directory.
pub(crate) const TLS_FILES: TlsFiles = TlsFiles {
    ca_cert: "ca.pem",
    cert: "server.pem",
    key: "server.key",
};

/// Names (inside the server's directory) of the TLS files.
#[derive(Debug, Clone, Copy)]
pub(crate) struct TlsFiles {
    pub(crate) ca_cert: &'static str,
    pub(crate) cert: &'static str,
    pub(crate) key: &'static str,
}

/// The name of the server's log file inside its directory.
pub(crate) const LOG_FILE: &str = "redis.log";

/// The name of a sentinel's configuration file inside its directory.
pub(crate) const SENTINEL_CONFIG_FILE: &str = "sentinel.conf";

impl Config {
    /// The command-line arguments of `redis-server`; with `redact`, secrets are replaced
    /// by `***` (for printing).
    pub(crate) fn args(&self, ep: &Endpoints, redact: bool) -> Vec<String> {
        let secret = |s: &str| {
            if redact {
                REDACTED.to_owned()
            } else {
                s.to_owned()
            }
        };
        let dir = path_str(&ep.dir);
        let mut args = Vec::new();
        if self.sentinel_config.is_some() {
            // The configuration file must come first.
            let file = ep.dir.join(SENTINEL_CONFIG_FILE);
            args.extend([path_str(&file).to_owned(), "--sentinel".to_owned()]);
        }
        let plain_port = if self.tls_only { 0 } else { ep.port };
        args.extend(
            [
                "--port",
                &plain_port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                dir,
                "--logfile",
                path_str(&ep.dir.join(LOG_FILE)),
                "--daemonize",
                "no",
            ]
            .iter()
            .map(|s| (*s).to_owned()),
        );
        if let Some(path) = &ep.unix_socket {
            args.extend(["--unixsocket".to_owned(), path_str(path).to_owned()]);
            args.extend(["--unixsocketperm".to_owned(), "700".to_owned()]);
        }
        if let Some(tls_port) = ep.tls_port {
            let file = |name: &str| path_str(&ep.dir.join(name)).to_owned();
            args.extend(["--tls-port".to_owned(), tls_port.to_string()]);
            args.extend(["--tls-cert-file".to_owned(), file(TLS_FILES.cert)]);
            args.extend(["--tls-key-file".to_owned(), file(TLS_FILES.key)]);
            args.extend(["--tls-ca-cert-file".to_owned(), file(TLS_FILES.ca_cert)]);
            args.extend(["--tls-auth-clients".to_owned(), "no".to_owned()]);
        }
        if let Some(password) = &self.password {
            args.extend(["--requirepass".to_owned(), secret(password)]);
        }
        if let Some(password) = &self.masterauth {
            args.extend(["--masterauth".to_owned(), secret(password)]);
        }
        for user in &self.acl_users {
            args.extend([
                "--user".to_owned(),
                user.name.clone(),
                "on".to_owned(),
                format!(">{}", secret(&user.password)),
            ]);
            let rules = if redact {
                redact_rules(&user.rules)
            } else {
                user.rules.clone()
            };
            args.extend(rules.split_whitespace().map(str::to_owned));
        }
        for (name, value) in &self.extra {
            args.push(format!("--{name}"));
            let value = if redact {
                redact_value(name, value)
            } else {
                value.clone()
            };
            if value.trim().is_empty() {
                args.push(String::new());
            } else {
                args.extend(value.split_whitespace().map(str::to_owned));
            }
        }
        args
    }

    /// Every secret in the configuration, to scrub from anything printed.
    pub(crate) fn secrets(&self) -> Vec<String> {
        let mut secrets: Vec<String> = self.password.iter().cloned().collect();
        secrets.extend(self.masterauth.iter().cloned());
        secrets.extend(self.config_file_secrets.iter().cloned());
        secrets.extend(self.acl_users.iter().map(|u| u.password.clone()));
        for user in &self.acl_users {
            secrets.extend(rule_secrets(&user.rules));
        }
        for (name, value) in &self.extra {
            if is_secret_option(name) {
                secrets.push(value.clone());
            } else if name.eq_ignore_ascii_case("user") {
                secrets.extend(rule_secrets(value));
            }
        }
        secrets.retain(|s| !s.is_empty());
        // Longest first, so that a secret containing another is replaced whole.
        secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
        secrets
    }
}

/// Replaces every occurrence of every secret in `text` by `***`.
pub(crate) fn redact(text: &str, secrets: &[String]) -> String {
    secrets.iter().fold(text.to_owned(), |text, secret| {
        text.replace(secret, REDACTED)
    })
}

/// Whether the value of option `name` is a secret (`requirepass`, `masterauth`, ...).
fn is_secret_option(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    name.contains("pass") || name.contains("auth")
}

/// The value of option `name`, redacted if it is a secret.
pub(crate) fn redact_value(name: &str, value: &str) -> String {
    if is_secret_option(name) {
        REDACTED.to_owned()
    } else if name.eq_ignore_ascii_case("user") {
        redact_rules(value)
    } else {
        value.to_owned()
    }
}

/// ACL rules that carry a password or its hash (`>pw`, `<pw`, `#hash`, `!hash`).
fn is_secret_rule(rule: &str) -> bool {
    rule.starts_with(['>', '<', '#', '!'])
}

/// The passwords and hashes in space-separated ACL rules.
fn rule_secrets(rules: &str) -> Vec<String> {
    rules
        .split_whitespace()
        .filter(|rule| is_secret_rule(rule))
        .map(|rule| rule[1..].to_owned())
        .collect()
}

/// ACL rules with passwords and hashes replaced by `***`.
fn redact_rules(rules: &str) -> String {
    rules
        .split_whitespace()
        .map(|rule| {
            if is_secret_rule(rule) {
                format!("{}{REDACTED}", &rule[..1])
            } else {
                rule.to_owned()
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// A path as UTF-8, which `redis-server`'s arguments need.
fn path_str(path: &Path) -> &str {
    path.to_str()
        .unwrap_or_else(|| panic!("the path {path:?} is not valid UTF-8"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn endpoints() -> Endpoints {
        Endpoints {
            port: 40001,
            tls_port: Some(40002),
            dir: PathBuf::from("/tmp/x"),
            unix_socket: Some(PathBuf::from("/tmp/x/redis.sock")),
        }
    }

    fn builder() -> RedisServerBuilder {
        RedisServer::builder()
            .password("top-secret")
            .acl_user("app", "app-secret", "~app:* -@all +get >extra-secret")
            .config("masterauth", "master-secret")
            .config("user", "bob on >bob-secret ~* +@all")
            .config("save", "900 1")
            .config("maxmemory", "1mb")
            .unix_socket()
            .tls()
    }

    const SECRETS: [&str; 6] = [
        "top-secret",
        "app-secret",
        "extra-secret",
        "master-secret",
        "bob-secret",
        "secret",
    ];

    #[test]
    fn args_contain_everything() {
        let args = builder().config.args(&endpoints(), false);
        let joined = args.join(" ");
        assert!(joined.starts_with("--port 40001 --bind 127.0.0.1 --save  --appendonly no"));
        assert_eq!(args[5], "");
        assert!(joined.contains("--requirepass top-secret"));
        assert!(joined.contains("--user app on >app-secret ~app:* -@all +get >extra-secret"));
        assert!(joined.contains("--save 900 1"));
        assert!(joined.contains("--tls-port 40002"));
        assert!(joined.contains("--unixsocket /tmp/x/redis.sock --unixsocketperm 700"));
        assert!(!args.iter().any(|a| a.contains("6379")));
    }

    #[test]
    fn redacted_args_and_debug_hide_secrets() {
        let builder = builder();
        let redacted = builder.config.args(&endpoints(), true).join(" ");
        let debug = format!("{builder:?}");
        for text in [&redacted, &debug] {
            for secret in SECRETS {
                assert!(!text.contains(secret), "{secret} in {text}");
            }
        }
        assert!(redacted.contains("--requirepass ***"));
        assert!(debug.contains("app on >***"));
    }

    #[test]
    fn redact_scrubs_all_secrets() {
        let config = builder().config;
        let text = "'user \"app\" \"on\" \">app-secret\"' top-secret bob-secret master-secret";
        let scrubbed = redact(text, &config.secrets());
        for secret in SECRETS {
            assert!(!scrubbed.contains(secret), "{scrubbed}");
        }
    }
}
