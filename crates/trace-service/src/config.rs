//! The service's settings, from the environment.

use std::net::SocketAddr;
use std::time::Duration;

/// How the service runs. [`Config::from_env`] reads it from the environment; every field
/// has a default, so the service runs with nothing set.
#[derive(Clone)]
pub struct Config {
    /// `DATABASE_URL`: `sqlite://path?mode=rwc` or `postgres://user@host:port/db`. Default:
    /// the SQLite file `trace-service.db` in the system's temporary directory.
    pub database_url: String,
    /// `DATABASE_MAX_CONNECTIONS`: the size of the pool. Default 10.
    pub database_max_connections: u32,
    /// `CACHE_URL`: a URL of the `cache_url` crate, or `none`; default
    /// [`DEFAULT_CACHE_URL`](crate::DEFAULT_CACHE_URL). See
    /// [`cache_from_url`](crate::cache_from_url).
    pub cache_url: String,
    /// `CACHE_TTL_SECS`: how long a trace stays cached. Default 300 seconds.
    pub cache_ttl: Duration,
    /// `BIND`: the address to listen on. Default `127.0.0.1:3000`; port 0 picks a free one.
    pub bind: SocketAddr,
}

impl Config {
    /// The settings from the environment variables named on each field, with the defaults
    /// for those not set.
    ///
    /// # Errors
    /// A message naming the variable whose value does not parse.
    pub fn from_env() -> Result<Self, String> {
        let mut config = Self::default();
        if let Some(url) = var("DATABASE_URL")? {
            config.database_url = url;
        }
        if let Some(n) = var("DATABASE_MAX_CONNECTIONS")? {
            config.database_max_connections = parse("DATABASE_MAX_CONNECTIONS", &n)?;
        }
        if let Some(url) = var("CACHE_URL")? {
            config.cache_url = url;
        }
        if let Some(secs) = var("CACHE_TTL_SECS")? {
            let secs: u64 = parse("CACHE_TTL_SECS", &secs)?;
            if secs == 0 {
                return Err(
                    "CACHE_TTL_SECS must be at least 1; use CACHE_URL=none to turn \
                            caching off"
                        .into(),
                );
            }
            config.cache_ttl = Duration::from_secs(secs);
        }
        if let Some(bind) = var("BIND")? {
            config.bind = parse("BIND", &bind)?;
        }
        Ok(config)
    }

    /// The same settings with another database.
    pub fn database_url(mut self, url: impl Into<String>) -> Self {
        self.database_url = url.into();
        self
    }

    /// The same settings with another cache.
    pub fn cache_url(mut self, url: impl Into<String>) -> Self {
        self.cache_url = url.into();
        self
    }

    /// The same settings with another listening address.
    pub fn bind(mut self, bind: SocketAddr) -> Self {
        self.bind = bind;
        self
    }
}

impl Default for Config {
    fn default() -> Self {
        let db = std::env::temp_dir().join("trace-service.db");
        Self {
            database_url: format!("sqlite://{}?mode=rwc", db.display()),
            database_max_connections: 10,
            cache_url: crate::DEFAULT_CACHE_URL.into(),
            cache_ttl: Duration::from_secs(300),
            bind: SocketAddr::from(([127, 0, 0, 1], 3000)),
        }
    }
}

/// Shows the kind of database and cache, never the URLs (they may hold passwords).
impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("database", &database_kind(&self.database_url))
            .field("database_max_connections", &self.database_max_connections)
            .field("cache", &crate::cache::describe(&self.cache_url))
            .field("cache_ttl", &self.cache_ttl)
            .field("bind", &self.bind)
            .finish()
    }
}

/// The kind of database a URL names (for logs, and the store's SQLite locking): its scheme,
/// never the rest.
pub(crate) fn database_kind(url: &str) -> &str {
    url.split_once(':').map_or("unknown", |(scheme, _)| scheme)
}

fn var(name: &str) -> Result<Option<String>, String> {
    match std::env::var(name) {
        Ok(value) if value.is_empty() => Ok(None),
        Ok(value) => Ok(Some(value)),
        Err(std::env::VarError::NotPresent) => Ok(None),
        Err(std::env::VarError::NotUnicode(_)) => Err(format!("{name} is not valid UTF-8")),
    }
}

fn parse<T: std::str::FromStr>(name: &str, value: &str) -> Result<T, String>
where
    T::Err: std::fmt::Display,
{
    value
        .parse()
        .map_err(|err| format!("{name}={value:?} does not parse: {err}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_output_never_shows_the_urls() {
        let config = Config::default()
            .database_url("postgres://app:secret@db:5432/traces")
            .cache_url("tiered+redis://:hunter2@cache:6379/0");
        let shown = format!("{config:?}");
        assert!(
            !shown.contains("secret") && !shown.contains("hunter2"),
            "{shown}"
        );
        assert!(
            shown.contains("postgres") && shown.contains("tiered"),
            "{shown}"
        );
    }

    #[test]
    fn the_default_database_is_a_sqlite_file_in_the_temporary_directory() {
        let config = Config::default();
        assert!(config.database_url.starts_with("sqlite://"));
        assert!(config.database_url.ends_with("trace-service.db?mode=rwc"));
        assert_eq!(config.cache_url, crate::DEFAULT_CACHE_URL);
    }
}
