//! Which failures a jail never counts: `ignoreself`, `ignoreip` (single
//! addresses, networks, host names) and `ignorecommand`, with the
//! `ignorecache` of decisions.
//!
//! fail2ban's `Filter.inIgnoreIPList` and friends: the order of the checks
//! and the log lines (`[jail] Ignore 192.0.2.1 by ip`) are fail2ban's.

use std::time::{Duration, Instant};

use crate::failures::Ticket;
use crate::ipaddr::{self, CIDR_UNSPEC, IpAddr, UseDns};

const LOG_FILTER: &str = "fail2ban.filter";

/// How long the machine's own addresses are cached (fail2ban: 5 minutes).
const SELF_TTL: Duration = Duration::from_secs(300);

/// A jail's ignore rules.
pub struct IgnoreList {
    jail: String,
    pub ignore_self: bool,
    singles: Vec<IpAddr>,
    others: Vec<IpAddr>,
    pub command: Option<String>,
    cache: Option<IgnoreCache>,
    self_ips: Option<(Instant, Vec<IpAddr>)>,
}

/// The `ignorecache` option: decisions cached per key.
pub struct IgnoreCache {
    pub key: String,
    pub max_count: usize,
    pub max_time: f64,
    entries: indexmap::IndexMap<String, (bool, Instant)>,
}

impl IgnoreCache {
    pub fn new(key: String, max_count: usize, max_time: f64) -> IgnoreCache {
        IgnoreCache {
            key,
            max_count,
            max_time,
            entries: indexmap::IndexMap::new(),
        }
    }

    fn get(&mut self, k: &str) -> Option<bool> {
        let (v, exp) = *self.entries.get(k)?;
        if exp > Instant::now() {
            return Some(v);
        }
        self.entries.shift_remove(k);
        None
    }

    fn set(&mut self, k: String, v: bool) {
        let now = Instant::now();
        while self.entries.len() >= self.max_count.max(1) {
            self.entries.shift_remove_index(0);
        }
        self.entries.insert(
            k,
            (v, now + Duration::from_secs_f64(self.max_time.max(0.0))),
        );
    }
}

impl IgnoreList {
    pub fn new(jail: &str) -> IgnoreList {
        IgnoreList {
            jail: jail.to_string(),
            ignore_self: true,
            singles: Vec::new(),
            others: Vec::new(),
            command: None,
            cache: None,
            self_ips: None,
        }
    }

    /// `addignoreip`: a single address, a network or a host name.
    pub fn add(&mut self, text: &str) -> Result<(), String> {
        if text.is_empty() {
            return Ok(());
        }
        let ip = IpAddr::new(text, CIDR_UNSPEC).map_err(|e| e.to_string())?;
        if self
            .singles
            .iter()
            .chain(&self.others)
            .any(|o| o.eq_addr(&ip))
        {
            crate::f2b_log!(
                MSG,
                LOG_FILTER,
                "  Ignore duplicate {} ({}), already in ignore list",
                crate::pyvalue::str_repr(&ip.ntoa()),
                crate::pyvalue::str_repr(text)
            );
            return Ok(());
        }
        if ip.is_single() {
            self.singles.push(ip);
        } else {
            self.others.push(ip);
        }
        Ok(())
    }

    /// `delignoreip`.
    pub fn remove(&mut self, text: &str) -> Result<(), String> {
        let ip = IpAddr::new(text, CIDR_UNSPEC).map_err(|e| e.to_string())?;
        self.singles.retain(|o| !o.eq_addr(&ip));
        self.others.retain(|o| !o.eq_addr(&ip));
        Ok(())
    }

    /// Clears the address lists (reload).
    pub fn clear(&mut self) {
        self.singles.clear();
        self.others.clear();
    }

    /// The entries as `get <jail> ignoreip` lists them: networks and
    /// names first, then single addresses.
    pub fn entries(&self) -> Vec<String> {
        self.others
            .iter()
            .chain(&self.singles)
            .map(IpAddr::ntoa)
            .collect()
    }

    pub fn set_cache(&mut self, cache: Option<IgnoreCache>) {
        self.cache = cache;
    }

    pub fn cache(&self) -> Option<&IgnoreCache> {
        self.cache.as_ref()
    }

    fn log_ignore(&self, ip: &IpAddr, source: &str) {
        crate::f2b_log!(
            INFO,
            LOG_FILTER,
            "[{}] Ignore {} by {}",
            self.jail,
            ip,
            source
        );
    }

    /// The machine's own addresses (localhost, host name, fully qualified
    /// name, resolved; cached for 5 minutes).
    fn own_ips(&mut self) -> &[IpAddr] {
        let fresh = self
            .self_ips
            .as_ref()
            .is_some_and(|(t, _)| t.elapsed() < SELF_TTL);
        if !fresh {
            let mut names = vec!["localhost".to_string()];
            for fq in [false, true] {
                let n = ipaddr::get_hostname(fq);
                if !n.is_empty() && !names.contains(&n) {
                    names.push(n);
                }
            }
            let mut ips: Vec<IpAddr> = Vec::new();
            for n in names {
                for ip in ipaddr::text_to_ip(&n, UseDns::Yes) {
                    if !ips.iter().any(|o| o.eq_addr(&ip)) {
                        ips.push(ip);
                    }
                }
            }
            self.self_ips = Some((Instant::now(), ips));
        }
        &self.self_ips.as_ref().expect("just filled").1
    }

    /// Whether `ip` is ignored (fail2ban's `inIgnoreIPList`), logging why.
    pub fn is_ignored(&mut self, ip: &IpAddr, ticket: Option<&Ticket>) -> bool {
        let key = self
            .cache
            .as_ref()
            .map(|c| c.key.replace("<ip>", &ip.ntoa()));
        if let (Some(c), Some(k)) = (self.cache.as_mut(), key.as_deref())
            && let Some(v) = c.get(k)
        {
            return v;
        }
        let decided = |me: &mut IgnoreList, v: bool| {
            if let (Some(c), Some(k)) = (me.cache.as_mut(), key.clone()) {
                c.set(k, v);
            }
            v
        };
        if self.ignore_self && self.own_ips().iter().any(|o| o.eq_addr(ip)) {
            self.log_ignore(ip, "ignoreself rule");
            return decided(self, true);
        }
        if self.singles.iter().any(|o| o.eq_addr(ip)) {
            self.log_ignore(ip, "ip");
            return true;
        }
        if let Some(net) = self.others.iter().find(|n| ip.is_in_net(n)) {
            let source = if net.is_valid() { "ip" } else { "dns" };
            self.log_ignore(ip, source);
            return decided(self, true);
        }
        if let Some(command) = self.command.as_deref().filter(|c| !c.is_empty()) {
            let info = match ticket {
                Some(t) => ticket_info(t),
                None => {
                    let mut i = crate::actions::BanInfo::empty(crate::mytime::now());
                    i.ip = ip.clone();
                    i.fid = ip.ntoa();
                    i
                }
            };
            let (script, args) =
                crate::actions::dynamic_command(command, &info, Default::default());
            let ignored = run_ignore_command(&script, &args);
            if ignored {
                self.log_ignore(ip, "command");
            }
            return decided(self, ignored);
        }
        decided(self, false)
    }
}

/// What the tags of a failure ticket show.
fn ticket_info(t: &Ticket) -> crate::actions::BanInfo {
    let mut data = t.groups().clone();
    data.pop("ip");
    crate::actions::BanInfo {
        ip: t.ip(),
        fid: t.id().ntoa(),
        failures: t.attempts(),
        time: match t.time() {
            crate::dates::Timestamp::Int(i) => crate::actions::Num::Int(i),
            crate::dates::Timestamp::Float(f) => crate::actions::Num::Float(f),
        },
        bantime: None,
        bancount: 0,
        matches: t.matches().to_vec(),
        restored: false,
        data,
        merged_all: None,
        merged_jail: None,
    }
}

/// Runs an ignore command (`/bin/sh -c`, 60 s at most, synchronously as
/// fail2ban does: the decision is needed before the failure is counted):
/// exit 0 ignores, 1 does not, anything else is an error (not ignored).
fn run_ignore_command(cmd: &str, args: &[String]) -> bool {
    let child = std::process::Command::new("/bin/sh")
        .arg("-c")
        .arg(cmd)
        .args(args)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn();
    let mut child = match child {
        Ok(c) => c,
        Err(e) => {
            crate::f2b_log!(ERROR, "fail2ban.utils", "{cmd} -- failed with {e}");
            return false;
        }
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        match child.try_wait() {
            Ok(Some(status)) => {
                return match status.code() {
                    Some(0) => true,
                    Some(1) => false,
                    other => {
                        crate::f2b_log!(
                            ERROR,
                            "fail2ban.utils",
                            "{cmd} -- returned {}",
                            other.map_or("a signal".to_string(), |c| c.to_string())
                        );
                        false
                    }
                };
            }
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(5)),
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                crate::f2b_log!(
                    ERROR,
                    "fail2ban.utils",
                    "{cmd} -- timed out after 60 seconds."
                );
                return false;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        IpAddr::new(s, CIDR_UNSPEC).unwrap()
    }

    #[test]
    fn addresses_and_networks_are_ignored() {
        let mut l = IgnoreList::new("j");
        l.ignore_self = false;
        for e in ["192.0.2.1", "198.51.100.0/24", "2001:db8::/32", "192.0.2.1"] {
            l.add(e).unwrap();
        }
        assert_eq!(
            l.entries(),
            vec!["198.51.100.0/24", "2001:db8::/32", "192.0.2.1"]
        );
        assert!(l.is_ignored(&ip("192.0.2.1"), None));
        assert!(l.is_ignored(&ip("198.51.100.77"), None));
        assert!(l.is_ignored(&ip("2001:db8:1::5"), None));
        assert!(!l.is_ignored(&ip("203.0.113.9"), None));
        l.remove("198.51.100.0/24").unwrap();
        assert!(!l.is_ignored(&ip("198.51.100.77"), None));
    }

    #[test]
    fn self_addresses_are_ignored() {
        let mut l = IgnoreList::new("j");
        assert!(l.is_ignored(&ip("127.0.0.1"), None));
        l.ignore_self = false;
        assert!(!l.is_ignored(&ip("127.0.0.1"), None));
    }

    #[test]
    fn ignore_command_decides_by_exit_status() {
        let mut l = IgnoreList::new("j");
        l.ignore_self = false;
        l.command = Some("test <ip> = 203.0.113.5".to_string());
        assert!(l.is_ignored(&ip("203.0.113.5"), None));
        assert!(!l.is_ignored(&ip("203.0.113.6"), None));
        l.set_cache(Some(IgnoreCache::new("<ip>".to_string(), 10, 60.0)));
        assert!(l.is_ignored(&ip("203.0.113.5"), None));
        l.command = Some("exit 1".to_string());
        // cached decision
        assert!(l.is_ignored(&ip("203.0.113.5"), None));
    }
}
