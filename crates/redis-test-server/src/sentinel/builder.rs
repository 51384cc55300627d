//! [`RedisSentinelsBuilder`]: the options of a [`RedisSentinels`] set-up, and the
//! configuration of its processes.

use std::fmt;
use std::time::Duration;

use crate::RedisServer;
use crate::builder::redact_value;
use crate::tls::SharedCertificates;

use super::RedisSentinels;

/// Configures a [`RedisSentinels`] set-up before it starts; get one from
/// [`RedisSentinels::builder`].
///
/// ```no_run
/// use std::time::Duration;
/// use redis_test_server::RedisSentinels;
///
/// let sentinels = RedisSentinels::builder()
///     .master_name("cache")
///     .password("data-pw")
///     .sentinel_password("sentinel-pw")
///     .down_after(Duration::from_millis(500))
///     .tls()
///     .start();
/// assert!(sentinels.url().starts_with("rediss+sentinel://"));
/// assert!(sentinels.url().ends_with("/cache"));
/// ```
#[derive(Clone)]
pub struct RedisSentinelsBuilder {
    pub(super) master_name: String,
    pub(super) password: Option<String>,
    pub(super) sentinel_password: Option<String>,
    down_after: Duration,
    failover_timeout: Duration,
    pub(super) tls: bool,
    extra: Vec<(String, String)>,
}

impl Default for RedisSentinelsBuilder {
    fn default() -> Self {
        RedisSentinelsBuilder {
            master_name: "mymaster".to_owned(),
            password: None,
            sentinel_password: None,
            down_after: Duration::from_secs(2),
            failover_timeout: Duration::from_secs(5),
            tls: false,
            extra: Vec::new(),
        }
    }
}

impl RedisSentinelsBuilder {
    /// The name the sentinels monitor the master under (default `"mymaster"`; no spaces).
    pub fn master_name(mut self, name: impl Into<String>) -> Self {
        self.master_name = name.into();
        self
    }

    /// Requires this password on the master and the replica (`requirepass`, and
    /// `masterauth` to replicate); the sentinels use it too (`sentinel auth-pass`).
    pub fn password(mut self, password: impl Into<String>) -> Self {
        self.password = Some(password.into());
        self
    }

    /// Requires this password on the sentinels (`requirepass`; they use it with each
    /// other through `sentinel sentinel-pass`).
    pub fn sentinel_password(mut self, password: impl Into<String>) -> Self {
        self.sentinel_password = Some(password.into());
        self
    }

    /// `sentinel down-after-milliseconds`: how long the master may not answer before a
    /// sentinel considers it down (default 2 s); a failover after a kill takes about this
    /// plus a second.
    ///
    /// Below about 1.5 s, failovers flap: a sentinel retries a connection at most once a
    /// second, so right after it switched to a new master its first answer from it can
    /// come a second later, it then finds the new master down, and fails over again (to
    /// the old master if that is back, which loses the data).
    pub fn down_after(mut self, after: Duration) -> Self {
        self.down_after = after;
        self
    }

    /// `sentinel failover-timeout` (default 5 s): a failover that has not finished by then
    /// is abandoned, and the sentinels do not start another automatic failover of the
    /// same master within twice this time.
    pub fn failover_timeout(mut self, timeout: Duration) -> Self {
        self.failover_timeout = timeout;
        self
    }

    /// Serves TLS only: the master, the replica and the sentinels each have a TLS port as
    /// their only TCP port (`tls-port`, `port 0`), and talk TLS to each other
    /// (`tls-replication`), so the sentinels name TLS ports. All share one certificate,
    /// valid for `localhost` and `127.0.0.1`, signed by one freshly generated CA (needs the
    /// `openssl` command); see [`RedisSentinels::url`] and [`RedisSentinels::ca_cert_pem`].
    pub fn tls(mut self) -> Self {
        self.tls = true;
        self
    }

    /// Passes any other option to the master and the replica (not the sentinels), as
    /// [`RedisServerBuilder::config`] does.
    ///
    /// [`RedisServerBuilder::config`]: crate::RedisServerBuilder::config
    pub fn config(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.extra.push((name.into(), value.into()));
        self
    }

    /// Starts the master, the replica and the sentinels, and waits until they are ready;
    /// see [`RedisSentinels::start`].
    pub fn start(self) -> RedisSentinels {
        RedisSentinels::launch(self)
    }

    /// Starts a data node, a replica of 127.0.0.1:`primary` if given, serving TLS only
    /// with `certificates` if given. Replicas sync at once, so a master killed right after
    /// the start already has a synced replica.
    pub(super) fn start_data_node(
        &self,
        primary: Option<u16>,
        certificates: Option<&SharedCertificates>,
    ) -> RedisServer {
        let mut builder = RedisServer::builder()
            .config("repl-diskless-sync", "yes")
            .config("repl-diskless-sync-delay", "0");
        if let Some(certificates) = certificates {
            // On the master too: after a failover it is a replica.
            builder = builder
                .tls_only(certificates)
                .config("tls-replication", "yes");
        }
        if let Some(password) = &self.password {
            builder = builder
                .password(password.clone())
                .masterauth(password.clone());
        }
        if let Some(port) = primary {
            builder = builder.config("replicaof", format!("127.0.0.1 {port}"));
        }
        for (name, value) in &self.extra {
            builder = builder.config(name.clone(), value.clone());
        }
        builder.start()
    }

    /// Starts a sentinel (`redis-server <file> --sentinel`) that monitors the master on
    /// 127.0.0.1:`master` with a quorum of 2; serving TLS only with `certificates` if given,
    /// and then talking TLS to the data nodes and the other sentinels.
    pub(super) fn start_sentinel(
        &self,
        master: u16,
        certificates: Option<&SharedCertificates>,
    ) -> RedisServer {
        let name = &self.master_name;
        let ms = |d: Duration| d.as_millis().max(1);
        let mut config = format!(
            "sentinel monitor {name} 127.0.0.1 {master} 2\n\
             sentinel down-after-milliseconds {name} {}\n\
             sentinel failover-timeout {name} {}\n\
             sentinel parallel-syncs {name} 1\n",
            ms(self.down_after),
            ms(self.failover_timeout),
        );
        if let Some(password) = &self.password {
            config.push_str(&format!("sentinel auth-pass {name} {}\n", quote(password)));
        }
        let mut builder = RedisServer::builder();
        if let Some(password) = &self.sentinel_password {
            config.push_str(&format!("sentinel sentinel-pass {}\n", quote(password)));
            builder = builder.password(password.clone());
        }
        if let Some(certificates) = certificates {
            builder = builder
                .tls_only(certificates)
                .config("tls-replication", "yes");
        }
        builder.sentinel(config, self.secrets()).start()
    }

    /// The secrets to scrub from anything printed.
    pub(super) fn secrets(&self) -> Vec<String> {
        self.password
            .iter()
            .chain(&self.sentinel_password)
            .cloned()
            .collect()
    }
}

/// `text` as a double-quoted string of a Redis configuration file.
fn quote(text: &str) -> String {
    let mut quoted = String::from("\"");
    for c in text.chars() {
        match c {
            '"' | '\\' => {
                quoted.push('\\');
                quoted.push(c);
            }
            '\n' => quoted.push_str("\\n"),
            '\r' => quoted.push_str("\\r"),
            '\t' => quoted.push_str("\\t"),
            c => quoted.push(c),
        }
    }
    quoted.push('"');
    quoted
}

impl fmt::Debug for RedisSentinelsBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let extra: Vec<String> = self
            .extra
            .iter()
            .map(|(name, value)| format!("--{name} {}", redact_value(name, value)))
            .collect();
        f.debug_struct("RedisSentinelsBuilder")
            .field("master_name", &self.master_name)
            .field("password", &self.password.as_ref().map(|_| "***"))
            .field(
                "sentinel_password",
                &self.sentinel_password.as_ref().map(|_| "***"),
            )
            .field("down_after", &self.down_after)
            .field("failover_timeout", &self.failover_timeout)
            .field("tls", &self.tls)
            .field("config", &extra)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting_escapes() {
        assert_eq!(quote(r#"a "b" \c"#), r#""a \"b\" \\c""#);
    }
}
