//! What the calling tokio runtime can do, asked without panicking.
//!
//! tokio panics when a timer is created on a runtime built without `enable_time()`, or a
//! socket registered on one without `enable_io()`, and has no API to ask beforehand. A backend
//! that needs either calls [`require_tokio`] first, so its caller gets a
//! [`CacheError::InvalidConfig`] naming the fix instead of a panic, or [`tokio_drivers`] to
//! pick a fallback (the memory backend runs no background sweep without timers).
//!
//! The answer is found once per thread and runtime by creating a timer (and, for I/O, an
//! unbound Unix socket) inside [`std::panic::catch_unwind`], and remembered. The panic that
//! tokio raises on a runtime without the driver is caught and not printed: the first probe
//! installs a process-wide panic hook that stays silent for the probing thread while it
//! probes and hands every other panic to the hook that was installed before. With
//! `panic = "abort"` nothing can be caught: the probe then reports every driver as enabled,
//! and a runtime without them panics as tokio does.

use std::cell::Cell;

use tokio::runtime::{Handle, Id};

use crate::{CacheError, Result};

/// The drivers of the tokio runtime a call runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TokioDrivers {
    /// Timers (`tokio::time`): enabled by `enable_time()` or `enable_all()`.
    pub time: bool,
    /// Sockets (`tokio::net`): enabled by `enable_io()` or `enable_all()`. Not probed on
    /// platforms other than Unix, where it is always `true`.
    pub io: bool,
}

thread_local! {
    /// The runtime this thread last asked about, and its answer.
    static LAST: Cell<Option<(Id, TokioDrivers)>> = const { Cell::new(None) };
    /// Set while this thread probes: the hook then keeps the probe's panic quiet.
    static PROBING: Cell<bool> = const { Cell::new(false) };
}

/// The drivers of the tokio runtime the calling thread runs in, or `None` outside any tokio
/// runtime.
///
/// Cheap after the first call on a thread for a runtime: one thread-local read.
///
/// ```
/// use cache_core::runtime::tokio_drivers;
///
/// assert_eq!(tokio_drivers(), None);
/// let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
/// let drivers = runtime.block_on(async { tokio_drivers() }).unwrap();
/// assert!(!drivers.time, "built without enable_time()");
/// ```
pub fn tokio_drivers() -> Option<TokioDrivers> {
    let handle = Handle::try_current().ok()?;
    let id = handle.id();
    if let Some((last, drivers)) = LAST.with(Cell::get)
        && last == id
    {
        return Some(drivers);
    }
    let drivers = TokioDrivers {
        time: works_quietly(|| drop(tokio::time::sleep(std::time::Duration::ZERO))),
        io: io_works(),
    };
    LAST.with(|last| last.set(Some((id, drivers))));
    Some(drivers)
}

/// Checks that the call runs inside a tokio runtime with timers and, if `io`, sockets
/// enabled; `backend` names the crate in the error.
///
/// # Errors
/// [`CacheError::InvalidConfig`], which is not retryable, naming what is missing and how to
/// enable it.
///
/// ```
/// use cache_core::runtime::require_tokio;
///
/// let err = require_tokio("my-backend", true).unwrap_err();
/// assert!(err.to_string().contains("outside a tokio runtime"));
/// assert!(!err.is_retryable());
/// ```
pub fn require_tokio(backend: &'static str, io: bool) -> Result<()> {
    let missing = match tokio_drivers() {
        None => {
            return Err(CacheError::InvalidConfig {
                reason: format!(
                    "{backend} was called outside a tokio runtime; call it from a task of a \
                     runtime built with enable_all() (such as #[tokio::main])"
                ),
                source: None,
            });
        }
        Some(TokioDrivers { time: false, .. }) => "time",
        Some(TokioDrivers { io: false, .. }) if io => "io",
        Some(_) => return Ok(()),
    };
    Err(CacheError::InvalidConfig {
        reason: format!(
            "{backend} needs the tokio runtime's {missing} driver, which this runtime was built \
             without; build it with enable_all() (or enable_{missing}())"
        ),
        source: None,
    })
}

/// Whether the runtime can register a socket: an unbound Unix datagram socket needs no
/// address and no file.
#[cfg(unix)]
fn io_works() -> bool {
    let Ok(socket) = std::os::unix::net::UnixDatagram::unbound() else {
        // Out of file descriptors, say: no answer; let the real socket report the error.
        return true;
    };
    if socket.set_nonblocking(true).is_err() {
        return true;
    }
    works_quietly(move || drop(tokio::net::UnixDatagram::from_std(socket)))
}

#[cfg(not(unix))]
fn io_works() -> bool {
    true
}

/// Runs `probe` and tells whether it returned rather than panicked, without printing a
/// panic message.
#[cfg(panic = "unwind")]
fn works_quietly(probe: impl FnOnce()) -> bool {
    static QUIET_HOOK: std::sync::Once = std::sync::Once::new();
    QUIET_HOOK.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            // `try_with`: a thread that is exiting has no thread-locals left, and is not
            // probing.
            if !PROBING.try_with(Cell::get).unwrap_or(false) {
                previous(info);
            }
        }));
    });
    PROBING.with(|probing| probing.set(true));
    let returned = std::panic::catch_unwind(std::panic::AssertUnwindSafe(probe)).is_ok();
    PROBING.with(|probing| probing.set(false));
    returned
}

#[cfg(not(panic = "unwind"))]
fn works_quietly(_probe: impl FnOnce()) -> bool {
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::runtime::Builder;

    #[test]
    fn each_runtime_reports_its_own_drivers() {
        assert_eq!(tokio_drivers(), None);
        let none = Builder::new_current_thread().build().unwrap();
        let time = Builder::new_current_thread().enable_time().build().unwrap();
        let all = Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        // Twice each, in turn: the answer remembered for one runtime is not another's.
        for _ in 0..2 {
            let drivers = none.block_on(async { tokio_drivers() }).unwrap();
            assert_eq!((drivers.time, drivers.io), (false, !cfg!(unix)));
            let drivers = time.block_on(async { tokio_drivers() }).unwrap();
            assert_eq!((drivers.time, drivers.io), (true, !cfg!(unix)));
            let drivers = all.block_on(async { tokio_drivers() }).unwrap();
            assert_eq!((drivers.time, drivers.io), (true, true));
        }
    }

    #[test]
    fn the_error_names_the_missing_driver_and_the_fix() {
        let time_only = Builder::new_current_thread().enable_time().build().unwrap();
        let err = time_only
            .block_on(async { require_tokio("cache-test", true) })
            .unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains("cache-test") && text.contains("io driver"),
            "{text}"
        );
        assert!(text.contains("enable_all()"), "{text}");
        assert!(!err.is_retryable());
        time_only
            .block_on(async { require_tokio("cache-test", false) })
            .unwrap();

        let bare = Builder::new_current_thread().build().unwrap();
        let err = bare
            .block_on(async { require_tokio("cache-test", false) })
            .unwrap_err();
        assert!(err.to_string().contains("time driver"), "{err}");
    }
}
