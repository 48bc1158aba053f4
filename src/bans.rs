//! The ban list of a jail: current bans, their ends, expiry and prolongation.
//!
//! fail2ban's `BanManager`: a ban ends at the ticket time (the last counted
//! failure) plus the ticket's own ban time or, without one, the jail's
//! *current* ban time (so changing the jail's ban time moves the end of
//! such bans); `-1` is permanent.  A second ban of a banned id prolongs the
//! existing one when it would end later.

use indexmap::IndexMap;

use crate::dates::Timestamp;
use crate::failures::{IdKey, MAX_TIME, Ticket};
use crate::ipaddr::IpAddr;

/// Why a ticket was not added to the ban list.
#[derive(Debug, Clone, PartialEq)]
pub enum NotAdded {
    /// Its ban would already be over.
    Expired,
    /// The id is banned already (prolonged when the new end is later).
    AlreadyBanned {
        prolonged: bool,
        old_time: Timestamp,
        old_banned: bool,
        old_epoch: u64,
    },
}

/// The current bans of a jail.
pub struct BanManager {
    list: IndexMap<IdKey, Ticket>,
    ban_time: i64,
    total: u64,
    next_unban: f64,
}

impl Default for BanManager {
    fn default() -> Self {
        BanManager::new()
    }
}

impl BanManager {
    pub fn new() -> BanManager {
        BanManager {
            list: IndexMap::new(),
            ban_time: 600,
            total: 0,
            next_unban: MAX_TIME as f64,
        }
    }

    pub fn set_ban_time(&mut self, v: i64) {
        self.ban_time = v;
        // ends of bans without an own ban time change with it
        self.next_unban = 0.0;
    }

    pub fn ban_time(&self) -> i64 {
        self.ban_time
    }

    /// `Currently banned`.
    pub fn size(&self) -> usize {
        self.list.len()
    }

    /// `Total banned`.
    pub fn total(&self) -> u64 {
        self.total
    }

    pub fn set_total(&mut self, v: u64) {
        self.total = v;
    }

    pub fn contains(&self, id: &IpAddr) -> bool {
        self.list.contains_key(&IdKey::of(id))
    }

    pub fn get(&self, id: &IpAddr) -> Option<&Ticket> {
        self.list.get(&IdKey::of(id))
    }

    pub fn get_mut(&mut self, id: &IpAddr) -> Option<&mut Ticket> {
        self.list.get_mut(&IdKey::of(id))
    }

    /// The banned ids in insertion order.
    pub fn ids(&self) -> impl Iterator<Item = &IpAddr> {
        self.list.values().map(|t| t.id())
    }

    pub fn tickets(&self) -> impl Iterator<Item = &Ticket> {
        self.list.values()
    }

    /// The bans sorted by end of ban (fail2ban's `getBanList(ordered)`).
    pub fn ordered(&self) -> Vec<&Ticket> {
        let mut v: Vec<&Ticket> = self.list.values().collect();
        v.sort_by(|a, b| {
            a.end_of_ban_f(self.ban_time)
                .total_cmp(&b.end_of_ban_f(self.ban_time))
        });
        v
    }

    /// Adds a ticket (fail2ban's `addBanTicket`): rejected when expired at
    /// `now`; for an id already banned the old ban is prolonged to the new
    /// end when that is later.  On success the ban count is incremented.
    pub fn add(&mut self, mut ticket: Ticket, now: f64) -> Result<(), NotAdded> {
        let bt = self.ban_time;
        let eob = ticket.end_of_ban_f(bt);
        if eob < now {
            return Err(NotAdded::Expired);
        }
        let key = IdKey::of(ticket.id());
        if let Some(old) = self.list.get_mut(&key) {
            let prolonged = eob > old.end_of_ban_f(bt);
            if prolonged {
                let mut btm = ticket.ban_time().unwrap_or(bt);
                if btm != -1 {
                    let dif = ticket.time().as_f64() - old.time().as_f64();
                    if dif > 0.0 {
                        btm += dif as i64;
                    }
                }
                old.set_ban_time(Some(btm));
                self.next_unban = self.next_unban.min(old.end_of_ban_f(bt));
            }
            return Err(NotAdded::AlreadyBanned {
                prolonged,
                old_time: old.time(),
                old_banned: old.banned,
                old_epoch: old.ban_epoch,
            });
        }
        ticket.set_ban_count(ticket.ban_count() + 1);
        self.total += 1;
        if self.next_unban > eob {
            self.next_unban = eob;
        }
        self.list.insert(key, ticket);
        Ok(())
    }

    /// The earliest end of ban, for scheduling.
    pub fn next_unban(&self) -> f64 {
        self.next_unban
    }

    /// Removes and returns the bans that are over at `time` (strictly
    /// later than their end), at most `max`.
    pub fn unban_list(&mut self, time: f64, max: usize) -> Vec<Ticket> {
        if self.next_unban > time {
            return Vec::new();
        }
        let bt = self.ban_time;
        let mut next = MAX_TIME as f64;
        let mut taken = 0;
        // one pass in order, without shifting the list once per ban
        let expired: Vec<Ticket> = self
            .list
            .extract_if(.., |_, t| {
                if taken >= max {
                    return false;
                }
                let eob = t.end_of_ban_f(bt);
                if time > eob {
                    taken += 1;
                    true
                } else {
                    next = next.min(eob);
                    false
                }
            })
            .map(|(_, t)| t)
            .collect();
        if taken < max {
            self.next_unban = next;
        }
        expired
    }

    /// Removes all bans (for flush/stop), in insertion order.
    pub fn flush(&mut self) -> Vec<Ticket> {
        self.next_unban = MAX_TIME as f64;
        self.list.drain(..).map(|(_, t)| t).collect()
    }

    /// Removes the ban of an id.
    pub fn take(&mut self, id: &IpAddr) -> Option<Ticket> {
        self.list.shift_remove(&IdKey::of(id))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::failregex::Groups;
    use crate::ipaddr::CIDR_UNSPEC;

    fn ip(s: &str) -> IpAddr {
        IpAddr::new(s, CIDR_UNSPEC).unwrap()
    }

    fn fail(addr: &str, t: f64) -> Ticket {
        Ticket::failure(ip(addr), Timestamp::Float(t), vec![], Groups::new())
    }

    #[test]
    fn bans_expire_and_prolong() {
        let mut bm = BanManager::new();
        bm.set_ban_time(10);
        let t = fail("192.0.2.7", 1000.0);
        assert_eq!(bm.add(t.clone(), 1005.0), Ok(()));
        assert_eq!(bm.get(&ip("192.0.2.7")).unwrap().ban_count(), 1);
        // a later failure of the same address prolongs the ban by the difference
        let later = fail("192.0.2.7", 1004.0);
        assert!(matches!(
            bm.add(later, 1005.0),
            Err(NotAdded::AlreadyBanned {
                prolonged: true,
                ..
            })
        ));
        assert_eq!(bm.get(&ip("192.0.2.7")).unwrap().end_of_ban(10), 1014);
        assert_eq!(
            bm.add(fail("192.0.2.8", 900.0), 1005.0),
            Err(NotAdded::Expired)
        );
        assert!(bm.unban_list(1014.0, 100).is_empty());
        let gone = bm.unban_list(1014.5, 100);
        assert_eq!(gone.len(), 1);
        assert_eq!(bm.size(), 0);
        assert_eq!(bm.total(), 1);
    }

    #[test]
    fn permanent_bans_never_expire() {
        let mut bm = BanManager::new();
        bm.set_ban_time(-1);
        bm.add(fail("2001:db8::1", 0.0), 1.0).unwrap();
        assert!(bm.unban_list(1e12, 10).is_empty());
        assert_eq!(bm.flush().len(), 1);
    }
}
