//! systemd: readiness, reload and stop notifications, the watchdog, and socket activation.
//!
//! **Notifications.** Under `Type=notify` systemd waits for `READY=1` before it starts the
//! units ordered after edgelogd, so it is sent only once every source listens and the control
//! socket answers. A reload is bracketed by `RELOADING=1` (with `MONOTONIC_USEC`, which
//! systemd 253 and later require) and `READY=1`; a stop starts with `STOPPING=1`. With
//! `WatchdogSec=` the daemon pets the watchdog at half the interval from its runtime, so a
//! daemon whose runtime is wedged is restarted. Without `NOTIFY_SOCKET` all of this is a no-op.
//!
//! **Socket activation.** systemd may hand over sockets it opened (`LISTEN_FDS`,
//! `LISTEN_FDNAMES`): the box's `/dev/log` from `syslog.socket`, where journald forwards what
//! it receives (`ForwardToSyslog=yes`), or ports below 1024 for a daemon that is not root.
//! A source takes the passed socket whose name is the source's name, or whose address is the
//! source's, instead of binding its own; a passed socket no source claims becomes a source of
//! its own (a unix datagram socket an `unix_datagram` source, a UDP one `syslog_udp`, a TCP
//! one `syslog_tcp`), named after it. The daemon keeps each passed socket for its whole life
//! and hands sources a duplicate, so a reload that restarts a source gets it again, and
//! a source never unlinks a path systemd created.

use std::net::SocketAddr;
use std::os::fd::{AsFd as _, FromRawFd as _, OwnedFd};
use std::path::PathBuf;
use std::time::Duration;

use nix::sys::socket::{
    AddressFamily, SockType, SockaddrLike as _, SockaddrStorage, getsockname, getsockopt, sockopt,
};

/// `READY=1`, with a status line.
pub fn ready(status: &str) {
    notify(&[
        sd_notify::NotifyState::Ready,
        sd_notify::NotifyState::Status(status),
    ]);
}

/// `RELOADING=1` and the monotonic time, at the start of a reload; [`ready`] ends it.
pub fn reloading() {
    match sd_notify::NotifyState::monotonic_usec_now() {
        Ok(now) => notify(&[sd_notify::NotifyState::Reloading, now]),
        Err(_) => notify(&[sd_notify::NotifyState::Reloading]),
    }
}

/// `STOPPING=1`.
pub fn stopping() {
    notify(&[sd_notify::NotifyState::Stopping]);
}

fn notify(states: &[sd_notify::NotifyState<'_>]) {
    if std::env::var_os("NOTIFY_SOCKET").is_none() {
        return;
    }
    if let Err(e) = sd_notify::notify(states) {
        tracing::warn!("telling systemd: {e}");
    }
}

/// Pets the watchdog every half interval when systemd asks for it (`WatchdogSec=`).
pub fn spawn_watchdog() {
    let Some(interval) = sd_notify::watchdog_enabled() else {
        return;
    };
    let every = (interval / 2).max(Duration::from_millis(100));
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        loop {
            tick.tick().await;
            notify(&[sd_notify::NotifyState::Watchdog]);
        }
    });
}

/// What a passed socket listens on.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Endpoint {
    UnixDatagram(PathBuf),
    Udp(SocketAddr),
    Tcp(SocketAddr),
    /// A kind no source takes (a unix stream socket, a FIFO).
    Other,
}

/// A socket systemd passed, kept open for the daemon's life.
#[derive(Debug)]
pub(crate) struct Passed {
    pub fd: OwnedFd,
    /// Its `FileDescriptorName=` (by default the socket unit's name).
    pub name: String,
    pub endpoint: Endpoint,
    /// A source has taken it.
    claimed: std::sync::atomic::AtomicBool,
}

/// The sockets systemd passed at start. See the module documentation.
#[derive(Debug, Default)]
pub(crate) struct Activated {
    passed: Vec<Passed>,
}

static ACTIVATED: std::sync::OnceLock<std::sync::Arc<Activated>> = std::sync::OnceLock::new();

/// Takes the sockets systemd passed (`LISTEN_FDS`) into the daemon's keeping. Called once,
/// first thing in `main`, while the process has one thread: it edits the environment.
pub fn take_passed_sockets() {
    let _ = ACTIVATED.set(std::sync::Arc::new(Activated::from_env()));
}

/// The sockets [`take_passed_sockets`] took (none if it was not called).
pub(crate) fn passed_sockets() -> std::sync::Arc<Activated> {
    ACTIVATED.get_or_init(Default::default).clone()
}

impl Activated {
    /// The sockets in `LISTEN_FDS` (for this process), and forgets the variables so a child
    /// (`edgelog run` started from a shell under us) does not take them for its own.
    fn from_env() -> Activated {
        let fds = match sd_notify::listen_fds_with_names() {
            Ok(fds) => fds,
            Err(e) => {
                tracing::warn!("reading the sockets systemd passed: {e}");
                return Activated::default();
            }
        };
        let passed = fds
            .map(|(raw, name)| {
                // SAFETY: systemd passed the descriptor to this process (LISTEN_PID checked);
                // nothing else owns it, and the `OwnedFd` is its only owner from here.
                let fd = unsafe { OwnedFd::from_raw_fd(raw) };
                let _ = nix::fcntl::fcntl(
                    fd.as_fd(),
                    nix::fcntl::FcntlArg::F_SETFD(nix::fcntl::FdFlag::FD_CLOEXEC),
                );
                let endpoint = endpoint(&fd);
                let claimed = Default::default();
                Passed {
                    fd,
                    name,
                    endpoint,
                    claimed,
                }
            })
            .collect();
        for var in ["LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES"] {
            // SAFETY: only `take_passed_sockets` calls this, first thing in `main`, while the
            // process is single-threaded: no other thread reads the environment.
            unsafe { std::env::remove_var(var) };
        }
        Activated { passed }
    }

    /// A duplicate of the passed socket named `name`, or else listening on `endpoint`.
    pub(crate) fn take(&self, name: &str, endpoint: &Endpoint) -> Option<OwnedFd> {
        let p = self
            .passed
            .iter()
            .find(|p| p.name == name)
            .or_else(|| self.passed.iter().find(|p| p.endpoint == *endpoint))?;
        match p.fd.try_clone() {
            Ok(fd) => {
                p.claimed.store(true, std::sync::atomic::Ordering::Relaxed);
                Some(fd)
            }
            Err(e) => {
                tracing::warn!("duplicating the socket systemd passed as {:?}: {e}", p.name);
                None
            }
        }
    }

    /// The passed sockets no source has taken.
    pub(crate) fn unclaimed(&self) -> impl Iterator<Item = &Passed> {
        self.passed
            .iter()
            .filter(|p| !p.claimed.load(std::sync::atomic::Ordering::Relaxed))
    }
}

/// What `fd` is bound to.
fn endpoint(fd: &OwnedFd) -> Endpoint {
    let Ok(ty) = getsockopt(fd, sockopt::SockType) else {
        return Endpoint::Other;
    };
    let Ok(addr) = getsockname::<SockaddrStorage>(std::os::fd::AsRawFd::as_raw_fd(fd)) else {
        return Endpoint::Other;
    };
    match (addr.family(), ty) {
        (Some(AddressFamily::Unix), SockType::Datagram) => addr
            .as_unix_addr()
            .and_then(|u| u.path())
            .map_or(Endpoint::Other, |p| Endpoint::UnixDatagram(p.to_owned())),
        (Some(AddressFamily::Inet | AddressFamily::Inet6), ty) => {
            let sa = addr
                .as_sockaddr_in()
                .map(|a| SocketAddr::from(std::net::SocketAddrV4::from(*a)))
                .or_else(|| {
                    addr.as_sockaddr_in6()
                        .map(|a| SocketAddr::from(std::net::SocketAddrV6::from(*a)))
                });
            match (sa, ty) {
                (Some(a), SockType::Datagram) => Endpoint::Udp(a),
                (Some(a), SockType::Stream) => Endpoint::Tcp(a),
                _ => Endpoint::Other,
            }
        }
        _ => Endpoint::Other,
    }
}
