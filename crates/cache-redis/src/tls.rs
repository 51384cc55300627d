//! TLS through rustls (feature `tls`).

use rustls::crypto::CryptoProvider;

/// Makes sure rustls has a process-wide crypto provider before a TLS connection is configured.
///
/// rustls panics when it has to pick a provider and finds none installed and not exactly one
/// compiled in. If the application installed one, it is used; otherwise this installs *ring*,
/// which the `tls` feature compiles in. Losing the race to another installer is fine: a
/// provider is installed either way.
pub(crate) fn ensure_crypto_provider() {
    if CryptoProvider::get_default().is_none() {
        let _ = rustls::crypto::ring::default_provider().install_default();
    }
}
