//! Name lookups for `<fq-hostname>` and `<ip-host>`, kept off the poll loop.
//!
//! Both tags need the resolver, which can take seconds to answer (or to
//! give up); fail2ban simply waits in its actions thread.  Here a lookup
//! runs on a short-lived thread, its answer goes to a process-wide cache
//! kept five minutes (fail2ban's `CACHE_ipToName` lifetime, negative
//! answers included), and a byte on a pipe wakes the poll loop, which then
//! finishes the substitution that asked for it.

use crate::ipaddr::{get_hostname, ip_to_name};
use nix::fcntl::OFlag;
use std::collections::{HashMap, HashSet};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::sync::mpsc::{Receiver, Sender, channel};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// What to look up.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) enum DnsKey {
    /// The fully qualified name of this host.
    Fqdn,
    /// The name of an address.
    Ptr(String),
}

const TTL: Duration = Duration::from_secs(300);

type Cache = HashMap<DnsKey, (Option<String>, Instant)>;

static CACHE: Mutex<Option<Cache>> = Mutex::new(None);

/// The cached answer (`Some(None)`: known to have no name), or `None` when
/// a lookup is needed.
pub(crate) fn cached(key: &DnsKey) -> Option<Option<String>> {
    let cache = CACHE.lock().unwrap_or_else(|e| e.into_inner());
    let (value, at) = cache.as_ref()?.get(key)?;
    (at.elapsed() < TTL).then(|| value.clone())
}

fn store(key: DnsKey, value: Option<String>) {
    let mut cache = CACHE.lock().unwrap_or_else(|e| e.into_inner());
    let cache = cache.get_or_insert_with(HashMap::new);
    cache.retain(|_, (_, at)| at.elapsed() < TTL);
    cache.insert(key, (value, Instant::now()));
}

/// The blocking lookup itself.
fn lookup(key: &DnsKey) -> Option<String> {
    match key {
        DnsKey::Fqdn => Some(get_hostname(true)),
        DnsKey::Ptr(ip) => ip_to_name(ip),
    }
}

/// Looks `key` up here and now (scripted test runs).
#[cfg(test)]
pub(crate) fn resolve_now(key: &DnsKey) {
    if cached(key).is_none() {
        store(key.clone(), lookup(key));
    }
}

/// The short host name (no resolver involved).
pub(crate) fn short_hostname() -> String {
    get_hostname(false)
}

/// The lookups one jail has in flight, and the pipe that reports them.
pub(crate) struct Resolver {
    pending: HashSet<DnsKey>,
    tx: Sender<DnsKey>,
    rx: Receiver<DnsKey>,
    wake: Option<(OwnedFd, Arc<OwnedFd>)>,
}

impl Resolver {
    pub(crate) fn new() -> Resolver {
        let (tx, rx) = channel();
        Resolver {
            pending: HashSet::new(),
            tx,
            rx,
            wake: None,
        }
    }

    /// Starts looking `key` up.  Returns false when the answer is already
    /// cached (a thread could not be started: the lookup was done here).
    pub(crate) fn request(&mut self, key: DnsKey) -> bool {
        if self.pending.contains(&key) {
            return true;
        }
        if self.wake.is_none() {
            match nix::unistd::pipe2(OFlag::O_NONBLOCK | OFlag::O_CLOEXEC) {
                Ok((r, w)) => self.wake = Some((r, Arc::new(w))),
                Err(_) => {
                    store(key.clone(), lookup(&key));
                    return false;
                }
            }
        }
        let wake = self.wake.as_ref().map(|(_, w)| w.clone());
        let tx = self.tx.clone();
        let k = key.clone();
        let started = std::thread::Builder::new()
            .name("f2b-dns".into())
            .spawn(move || {
                store(k.clone(), lookup(&k));
                let _ = tx.send(k);
                if let Some(w) = wake {
                    let _ = nix::unistd::write(&*w, &[1]);
                }
            });
        if started.is_err() {
            store(key.clone(), lookup(&key));
            return false;
        }
        self.pending.insert(key);
        true
    }

    /// The pipe to watch while lookups are in flight.
    pub(crate) fn fd(&self) -> Option<RawFd> {
        if self.pending.is_empty() {
            return None;
        }
        self.wake.as_ref().map(|(r, _)| r.as_raw_fd())
    }

    /// The lookups that have finished since the last call.
    pub(crate) fn on_ready(&mut self) -> Vec<DnsKey> {
        if let Some((r, _)) = &self.wake {
            let mut buf = [0u8; 64];
            while matches!(nix::unistd::read(r, &mut buf), Ok(n) if n > 0) {}
        }
        let done: Vec<DnsKey> = self.rx.try_iter().collect();
        for k in &done {
            self.pending.remove(k);
        }
        done
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookups_report_through_the_pipe() {
        let mut r = Resolver::new();
        let key = DnsKey::Ptr("192.0.2.250".to_string());
        assert!(r.request(key.clone()));
        // A second request of the same key does not start another lookup.
        assert!(r.request(key.clone()));
        let fd = r.fd().expect("a pipe while the lookup runs");
        let mut done = Vec::new();
        let start = Instant::now();
        while done.is_empty() && start.elapsed() < Duration::from_secs(30) {
            let mut fds = [nix::poll::PollFd::new(
                // SAFETY: fd stays open while `r` lives.
                unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) },
                nix::poll::PollFlags::POLLIN,
            )];
            let _ = nix::poll::poll(&mut fds, 1000u16);
            done = r.on_ready();
        }
        assert_eq!(done, vec![key.clone()]);
        assert!(cached(&key).is_some());
        assert_eq!(r.fd(), None);
    }
}
