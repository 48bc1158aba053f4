//! Addresses as fail2ban parses, compares, prints and resolves them.
//!
//! fail2ban's `IPAddr` is not a plain IP type: text that does not parse
//! strictly (e.g. `192.030.0.6`, a leading zero) still makes an address
//! object that keeps its raw text, "raw" ids (failure ids that are not
//! addresses) compare by text, a prefix length masks the address, and an
//! IPv4-mapped IPv6 address becomes IPv4.  Parsing follows glibc's
//! `inet_pton` and printing its `inet_ntop` (which `std::net` does not match
//! exactly: `::a.b.c.d` forms), so both are written here.

use std::fmt;
use std::fmt::Write as _;
use std::net::{IpAddr as StdIp, ToSocketAddrs};

/// fail2ban's special `cidr` arguments.
pub const CIDR_RAW: i32 = -2;
pub const CIDR_UNSPEC: i32 = -1;
/// Restrict parsing to IPv4 (`CIDR_RAW - AF_INET`).
pub const FAM_IPV4: i32 = CIDR_RAW - 2;
/// Restrict parsing to IPv6 (`CIDR_RAW - AF_INET6`).
pub const FAM_IPV6: i32 = CIDR_RAW - 10;

/// What kind of address object this is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Family {
    /// A raw id: never parsed, compares by text.
    Raw,
    /// Text that is not a valid address (keeps its raw text).
    Invalid,
    V4,
    V6,
}

/// An address (or raw failure id) as fail2ban models it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct IpAddr {
    family: Family,
    addr: u128,
    plen: u32,
    raw: String,
}

/// Errors that fail2ban raises while building an address from text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddrError(pub String);

impl fmt::Display for AddrError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for AddrError {}

impl IpAddr {
    /// Builds an address from text with fail2ban's `cidr` argument:
    /// `CIDR_RAW` keeps the text as a raw id, `CIDR_UNSPEC` accepts an
    /// optional `/plen` (or `/mask`) suffix and `[...]` brackets, a
    /// non-negative value masks the address, `FAM_IPV4`/`FAM_IPV6`
    /// restrict the family.
    pub fn new(ipstr: &str, cidr: i32) -> Result<IpAddr, AddrError> {
        if cidr == CIDR_RAW {
            return Ok(IpAddr::raw(ipstr));
        }
        if cidr == CIDR_UNSPEC {
            let mut s = ipstr;
            if s.len() > 2 && s.starts_with('[') && s.ends_with(']') {
                s = &s[1..s.len() - 1];
            }
            if let Some((addr, mask)) = s.split_once('/') {
                let plen = if mask.contains('.') || mask.contains(':') {
                    IpAddr::new(mask, CIDR_UNSPEC)?.mask_plen()? as i64
                } else {
                    parse_py_int(mask).ok_or_else(|| {
                        AddrError(format!(
                            "invalid literal for int() with base 10: {}",
                            crate::pyvalue::str_repr(mask)
                        ))
                    })?
                };
                return Ok(IpAddr::parse(addr, plen as i32));
            }
            return Ok(IpAddr::parse(s, CIDR_UNSPEC));
        }
        Ok(IpAddr::parse(ipstr, cidr))
    }

    /// A raw id (never parsed).
    pub fn raw(text: &str) -> IpAddr {
        IpAddr {
            family: Family::Raw,
            addr: 0,
            plen: 0,
            raw: text.to_string(),
        }
    }

    fn parse(ipstr: &str, cidr: i32) -> IpAddr {
        let mut ip = IpAddr {
            family: Family::Invalid,
            addr: 0,
            plen: 0,
            raw: ipstr.to_string(),
        };
        let (try4, try6) = match cidr {
            FAM_IPV4 => (true, false),
            FAM_IPV6 => (false, true),
            c if c < CIDR_RAW => (false, false),
            _ => (true, true),
        };
        if try4 && let Some(a) = inet_pton4(ipstr) {
            ip.family = Family::V4;
            ip.addr = a as u128;
            ip.plen = 32;
            if cidr >= 0 {
                let c = cidr.min(32) as u32;
                let mask = if c == 0 { 0 } else { u32::MAX << (32 - c) };
                ip.addr &= mask as u128;
                ip.plen = cidr as u32;
            }
        } else if try6 && let Some(a) = inet_pton6(ipstr) {
            ip.family = Family::V6;
            ip.addr = a;
            ip.plen = 128;
            if cidr >= 0 {
                let c = cidr.min(128) as u32;
                let mask = if c == 0 { 0 } else { u128::MAX << (128 - c) };
                ip.addr &= mask;
                ip.plen = cidr as u32;
            } else if a >> 32 == 0xffff {
                // IPv4-mapped (::ffff:0:0/96) becomes the IPv4 address
                ip.family = Family::V4;
                ip.addr = a & 0xffff_ffff;
                ip.plen = 32;
            }
        }
        ip
    }

    pub fn family(&self) -> Family {
        self.family
    }

    /// `inet4`/`inet6`, or `None` for ids that are not addresses.
    pub fn family_str(&self) -> Option<&'static str> {
        match self.family {
            Family::V4 => Some("inet4"),
            Family::V6 => Some("inet6"),
            _ => None,
        }
    }

    /// fail2ban's `isValid`: everything but text that failed to parse
    /// (raw ids count as valid).
    pub fn is_valid(&self) -> bool {
        self.family != Family::Invalid
    }

    /// Whether this is a real address (not raw, not invalid).
    pub fn is_ip(&self) -> bool {
        matches!(self.family, Family::V4 | Family::V6)
    }

    /// A single host address (full prefix length).
    pub fn is_single(&self) -> bool {
        match self.family {
            Family::V4 => self.plen == 32,
            Family::V6 => self.plen == 128,
            _ => false,
        }
    }

    pub fn plen(&self) -> u32 {
        self.plen
    }

    /// The address as a number (IPv4 in the low 32 bits).
    pub fn addr(&self) -> u128 {
        self.addr
    }

    /// The text the object was built from.
    pub fn raw_text(&self) -> &str {
        &self.raw
    }

    /// The canonical text: `inet_ntop` form plus `/plen` for networks, or
    /// the raw text.
    pub fn ntoa(&self) -> String {
        match self.family {
            Family::V4 => {
                let a = self.addr as u32;
                let mut s = format!(
                    "{}.{}.{}.{}",
                    a >> 24,
                    (a >> 16) & 255,
                    (a >> 8) & 255,
                    a & 255
                );
                if self.plen > 0 && self.plen < 32 {
                    s.push_str(&format!("/{}", self.plen));
                }
                s
            }
            Family::V6 => {
                let mut s = inet_ntop6(self.addr);
                if self.plen > 0 && self.plen < 128 {
                    s.push_str(&format!("/{}", self.plen));
                }
                s
            }
            _ => self.raw.clone(),
        }
    }

    /// The reverse-DNS name (`4.3.2.1.in-addr.arpa.`), empty for non-addresses.
    pub fn ptr(&self) -> String {
        match self.family {
            Family::V4 => {
                let t = self.ntoa();
                let mut parts: Vec<&str> = t.split('.').collect();
                parts.reverse();
                format!("{}.in-addr.arpa.", parts.join("."))
            }
            Family::V6 => {
                let hex = format!("{:032x}", self.addr);
                let rev: Vec<String> = hex.chars().rev().map(String::from).collect();
                format!("{}.ip6.arpa.", rev.join("."))
            }
            _ => String::new(),
        }
    }

    /// Whether this address lies in `net` (same family, masked equality).
    /// A `net` that is a host name is resolved.
    pub fn is_in_net(&self, net: &IpAddr) -> bool {
        if net.family == Family::Invalid && !net.raw.is_empty() {
            return dns_to_ip(&net.raw).iter().any(|ip| ip == self);
        }
        if self.family != net.family {
            return false;
        }
        let mask = match self.family {
            Family::V4 => {
                if net.plen == 0 {
                    0
                } else {
                    (u32::MAX << (32 - net.plen.min(32))) as u128
                }
            }
            Family::V6 => {
                if net.plen == 0 {
                    0
                } else {
                    u128::MAX << (128 - net.plen.min(128))
                }
            }
            _ => return false,
        };
        (self.addr & mask) == net.addr
    }

    /// Prefix length of a netmask written as an address (`255.255.255.0`).
    pub fn mask_plen(&self) -> Result<u32, AddrError> {
        let width = match self.family {
            Family::V4 => 32,
            Family::V6 => 128,
            _ => 0,
        };
        let a = self.addr;
        if a == 0 {
            return Ok(0);
        }
        if width > 0 {
            let ones = (a << (128 - width)).leading_ones();
            let expected = (u128::MAX << (128 - ones)) >> (128 - width);
            if a == expected {
                return Ok(ones);
            }
        }
        Err(AddrError(format!(
            "invalid mask {}, no plen representation",
            crate::pyvalue::str_repr(&self.ntoa())
        )))
    }

    /// fail2ban's equality of an address object with a text (as the
    /// sample-log harness compares `host`): raw ids compare as text,
    /// otherwise the text is parsed and compared as an address.
    pub fn eq_text(&self, text: &str) -> bool {
        if self.family == Family::Raw {
            return self.raw == text;
        }
        match IpAddr::new(text, CIDR_UNSPEC) {
            Ok(other) => self.eq_addr(&other),
            Err(_) => false,
        }
    }

    /// fail2ban's equality of two address objects.
    pub fn eq_addr(&self, other: &IpAddr) -> bool {
        if self.family != other.family {
            return false;
        }
        match self.family {
            Family::Invalid | Family::Raw => self.raw == other.raw,
            _ => self.addr == other.addr && self.plen == other.plen,
        }
    }
}

impl fmt::Display for IpAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.ntoa())
    }
}

/// Python's `int(text)` for the small integers of masks and prefix lengths.
fn parse_py_int(s: &str) -> Option<i64> {
    let t = s.trim();
    let t = t.strip_prefix('+').unwrap_or(t);
    let cleaned: String = t.chars().filter(|c| *c != '_').collect();
    if cleaned.is_empty() || t.starts_with('_') || t.ends_with('_') || t.contains("__") {
        return None;
    }
    cleaned.parse().ok()
}

/// glibc `inet_pton(AF_INET)`: exactly four decimal octets, no leading
/// zeros, each at most 255.
pub fn inet_pton4(s: &str) -> Option<u32> {
    let mut out: u32 = 0;
    let mut octets = 0;
    for part in s.split('.') {
        if part.is_empty() || part.len() > 3 || !part.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        if part.len() > 1 && part.starts_with('0') {
            return None;
        }
        let v: u32 = part.parse().ok()?;
        if v > 255 {
            return None;
        }
        out = (out << 8) | v;
        octets += 1;
    }
    (octets == 4).then_some(out)
}

/// glibc `inet_pton(AF_INET6)`.
pub fn inet_pton6(s: &str) -> Option<u128> {
    let b = s.as_bytes();
    if b.is_empty() {
        return None;
    }
    let mut words: Vec<u16> = Vec::with_capacity(8);
    let mut gap: Option<usize> = None;
    let mut i = 0;
    if b[0] == b':' {
        if b.len() < 2 || b[1] != b':' {
            return None;
        }
        i = 1;
    }
    let mut cur_start = i;
    let mut saw_xdigit = false;
    let mut val: u32 = 0;
    while i < b.len() {
        let c = b[i];
        if c.is_ascii_hexdigit() {
            val = (val << 4) | (c as char).to_digit(16)?;
            if i - cur_start >= 4 {
                return None;
            }
            saw_xdigit = true;
            i += 1;
            continue;
        }
        if c == b':' {
            if !saw_xdigit {
                if gap.is_some() {
                    return None;
                }
                gap = Some(words.len());
                i += 1;
                cur_start = i;
                continue;
            }
            if i + 1 >= b.len() {
                return None;
            }
            if words.len() >= 8 {
                return None;
            }
            words.push(val as u16);
            saw_xdigit = false;
            val = 0;
            i += 1;
            cur_start = i;
            continue;
        }
        if c == b'.' && words.len() <= 6 {
            let v4 = inet_pton4(&s[cur_start..])?;
            words.push((v4 >> 16) as u16);
            words.push(v4 as u16);
            saw_xdigit = false;
            break;
        }
        return None;
    }
    if saw_xdigit {
        if words.len() >= 8 {
            return None;
        }
        words.push(val as u16);
    }
    let full: Vec<u16> = match gap {
        Some(g) => {
            if words.len() >= 8 {
                return None;
            }
            let mut v = words[..g].to_vec();
            v.extend(std::iter::repeat_n(0, 8 - words.len()));
            v.extend_from_slice(&words[g..]);
            v
        }
        None => {
            if words.len() != 8 {
                return None;
            }
            words
        }
    };
    Some(full.iter().fold(0u128, |acc, w| (acc << 16) | *w as u128))
}

/// glibc `inet_ntop(AF_INET6)`: the longest run (≥ 2) of zero words is
/// compressed, and `::a.b.c.d` / `::ffff:a.b.c.d` keep the dotted tail.
pub fn inet_ntop6(a: u128) -> String {
    let words: [u16; 8] = std::array::from_fn(|i| (a >> (112 - 16 * i)) as u16);
    let (mut best, mut cur): ((i32, i32), (i32, i32)) = ((-1, 0), (-1, 0));
    for (i, w) in words.iter().enumerate() {
        if *w == 0 {
            if cur.0 == -1 {
                cur = (i as i32, 1);
            } else {
                cur.1 += 1;
            }
        } else if cur.0 != -1 {
            if best.0 == -1 || cur.1 > best.1 {
                best = cur;
            }
            cur = (-1, 0);
        }
    }
    if cur.0 != -1 && (best.0 == -1 || cur.1 > best.1) {
        best = cur;
    }
    if best.0 != -1 && best.1 < 2 {
        best = (-1, 0);
    }
    let mut out = String::with_capacity(39);
    let mut i = 0i32;
    while i < 8 {
        if best.0 != -1 && i >= best.0 && i < best.0 + best.1 {
            if i == best.0 {
                out.push(':');
            }
            i += 1;
            continue;
        }
        if i != 0 {
            out.push(':');
        }
        if i == 6 && best.0 == 0 && (best.1 == 6 || (best.1 == 5 && words[5] == 0xffff)) {
            let v4 = (a & 0xffff_ffff) as u32;
            let _ = write!(
                out,
                "{}.{}.{}.{}",
                v4 >> 24,
                (v4 >> 16) & 255,
                (v4 >> 8) & 255,
                v4 & 255
            );
            return out;
        }
        let _ = write!(out, "{:x}", words[i as usize]);
        i += 1;
    }
    if best.0 != -1 && best.0 + best.1 == 8 {
        out.push(':');
    }
    out
}

/// Resolves a host name to its IPv4 and IPv6 addresses (fail2ban's
/// `DNSUtils.dnsToIp`; lookups that fail give an empty list with a warning).
pub fn dns_to_ip(name: &str) -> Vec<IpAddr> {
    let mut out: Vec<IpAddr> = Vec::new();
    match (name, 0u16).to_socket_addrs() {
        Ok(addrs) => {
            for sa in addrs {
                let ip = match sa.ip() {
                    StdIp::V4(v4) => IpAddr::parse(&v4.to_string(), FAM_IPV4),
                    StdIp::V6(v6) => IpAddr::parse(&v6.to_string(), FAM_IPV6),
                };
                if ip.is_ip() && !out.iter().any(|o| o.eq_addr(&ip)) {
                    out.push(ip);
                }
            }
        }
        Err(e) => {
            log::warn!("Unable to find a corresponding IP address for {name}: {e}");
        }
    }
    out
}

/// Reverse lookup of an address (`DNSUtils.ipToName`); `None` when the
/// address has no name.
pub fn ip_to_name(ip: &str) -> Option<String> {
    let addr: StdIp = ip.parse().ok()?;
    dns_lookup_addr(addr)
}

fn dns_lookup_addr(addr: StdIp) -> Option<String> {
    let sa = std::net::SocketAddr::new(addr, 0);
    let (storage, len) = socket_addr_to_raw(&sa);
    let mut host = [0 as libc::c_char; 1025];
    // SAFETY: storage/len describe a valid sockaddr; host is a writable buffer of the given size.
    let rc = unsafe {
        libc::getnameinfo(
            &storage as *const libc::sockaddr_storage as *const libc::sockaddr,
            len,
            host.as_mut_ptr(),
            host.len() as libc::socklen_t,
            std::ptr::null_mut(),
            0,
            libc::NI_NAMEREQD,
        )
    };
    if rc != 0 {
        return None;
    }
    // SAFETY: getnameinfo NUL-terminates the host buffer on success.
    let name = unsafe { std::ffi::CStr::from_ptr(host.as_ptr()) };
    Some(name.to_string_lossy().into_owned())
}

fn socket_addr_to_raw(sa: &std::net::SocketAddr) -> (libc::sockaddr_storage, libc::socklen_t) {
    // SAFETY: an all-zero sockaddr_storage is valid; the family-specific view is filled below.
    let mut storage: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
    let len = match sa {
        std::net::SocketAddr::V4(v4) => {
            // SAFETY: sockaddr_storage is large and aligned enough for sockaddr_in.
            let sin = unsafe { &mut *(&mut storage as *mut _ as *mut libc::sockaddr_in) };
            sin.sin_family = libc::AF_INET as libc::sa_family_t;
            sin.sin_addr.s_addr = u32::from(*v4.ip()).to_be();
            std::mem::size_of::<libc::sockaddr_in>()
        }
        std::net::SocketAddr::V6(v6) => {
            // SAFETY: sockaddr_storage is large and aligned enough for sockaddr_in6.
            let sin6 = unsafe { &mut *(&mut storage as *mut _ as *mut libc::sockaddr_in6) };
            sin6.sin6_family = libc::AF_INET6 as libc::sa_family_t;
            sin6.sin6_addr.s6_addr = v6.ip().octets();
            std::mem::size_of::<libc::sockaddr_in6>()
        }
    };
    (storage, len as libc::socklen_t)
}

/// The machine's host name, short or fully qualified
/// (`DNSUtils.getHostname`, which uses `socket.getfqdn`).
pub fn get_hostname(fqdn: bool) -> String {
    let mut buf = [0u8; 256];
    // SAFETY: buf is writable for its length; gethostname NUL-terminates or truncates.
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr() as *mut libc::c_char, buf.len()) };
    if rc != 0 {
        return String::new();
    }
    let end = buf.iter().position(|b| *b == 0).unwrap_or(buf.len());
    let short = String::from_utf8_lossy(&buf[..end]).into_owned();
    if !fqdn {
        return short;
    }
    // getfqdn: the first name of the host's address that contains a dot
    let addrs: Vec<StdIp> = match (short.as_str(), 0u16).to_socket_addrs() {
        Ok(a) => a.map(|sa| sa.ip()).collect(),
        Err(_) => return short,
    };
    for a in addrs {
        if let Some(n) = dns_lookup_addr(a)
            && n.contains('.')
        {
            return n;
        }
    }
    short
}

/// How host names found in log lines are treated (`usedns`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UseDns {
    Yes,
    Warn,
    No,
    Raw,
}

impl UseDns {
    /// Parses a `usedns` value as fail2ban does: unknown values log an
    /// error and mean `no`.
    pub fn parse(value: &str) -> UseDns {
        match value.to_lowercase().as_str() {
            "yes" | "true" => UseDns::Yes,
            "warn" => UseDns::Warn,
            "no" | "false" => UseDns::No,
            "raw" => UseDns::Raw,
            _ => {
                log::error!(
                    "Incorrect value {} specified for usedns. Using safe 'no'",
                    crate::pyvalue::str_repr(value)
                );
                UseDns::No
            }
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            UseDns::Yes => "yes",
            UseDns::Warn => "warn",
            UseDns::No => "no",
            UseDns::Raw => "raw",
        }
    }
}

/// fail2ban's `DNSUtils.textToIp`: a plain IPv4 literal is taken as is
/// (an IPv6 literal is not: fail2ban's literal check only ever returns the
/// IPv4 group); otherwise, with `yes`/`warn`, the text is resolved.
pub fn text_to_ip(text: &str, usedns: UseDns) -> Vec<IpAddr> {
    if let Some(v4) = plain_ipv4(text) {
        let ip = IpAddr::parse(v4, CIDR_UNSPEC);
        if ip.is_ip() {
            return vec![ip];
        }
    }
    if matches!(usedns, UseDns::Yes | UseDns::Warn) {
        let ips = dns_to_ip(text);
        if !ips.is_empty() && usedns == UseDns::Warn {
            let list: Vec<String> = ips
                .iter()
                .map(|i| crate::pyvalue::str_repr(&i.ntoa()))
                .collect();
            log::warn!(
                "Determined IP using DNS Lookup: {text} = {{{}}}",
                list.join(", ")
            );
        }
        return ips;
    }
    Vec::new()
}

/// The IPv4 literal of fail2ban's `searchIP` (whole text `(?:\d{1,3}\.){3}\d{1,3}`).
fn plain_ipv4(text: &str) -> Option<&str> {
    let mut parts = 0;
    let ok = text.split('.').all(|p| {
        parts += 1;
        (1..=3).contains(&p.len()) && p.bytes().all(|b| b.is_ascii_digit())
    });
    (ok && parts == 4).then_some(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv4_parsing_is_strict() {
        assert_eq!(inet_pton4("192.0.2.1"), Some(0xc0000201));
        assert_eq!(inet_pton4("192.030.0.6"), None);
        assert_eq!(inet_pton4("256.1.1.1"), None);
        assert_eq!(inet_pton4("1.2.3"), None);
        let ip = IpAddr::new("192.030.0.6", FAM_IPV4).unwrap();
        assert_eq!(ip.family(), Family::Invalid);
        assert_eq!(ip.ntoa(), "192.030.0.6");
    }

    #[test]
    fn ipv6_round_trips_like_glibc() {
        for (text, canon) in [
            ("2001:db8::1", "2001:db8::1"),
            ("2001:DB8:0:0:0:0:0:1", "2001:db8::1"),
            ("::1", "::1"),
            ("::", "::"),
            ("1::", "1::"),
            ("::1.2.3.4", "::1.2.3.4"),
            ("2001:db8:0:1:0:0:0:1", "2001:db8:0:1::1"),
            ("2001:0:0:1:0:0:0:1", "2001:0:0:1::1"),
            ("1:0:2:0:3:0:4:0", "1:0:2:0:3:0:4:0"),
        ] {
            let a = inet_pton6(text).unwrap_or_else(|| panic!("{text}"));
            assert_eq!(inet_ntop6(a), canon, "{text}");
        }
        for bad in [
            ":1",
            "1:::2",
            "1:2:3:4:5:6:7:8:9",
            "12345::",
            "1::2::3",
            "1:",
        ] {
            assert_eq!(inet_pton6(bad), None, "{bad}");
        }
    }

    #[test]
    fn mapped_ipv6_becomes_ipv4_and_cidr_masks() {
        let ip = IpAddr::new("::ffff:102:304", FAM_IPV6).unwrap();
        assert_eq!(ip.ntoa(), "1.2.3.4");
        assert_eq!(ip.family_str(), Some("inet4"));
        let net = IpAddr::new("1.2.3.4", 24).unwrap();
        assert_eq!(net.ntoa(), "1.2.3.0/24");
        let net = IpAddr::new("10.0.0.0/255.255.0.0", CIDR_UNSPEC).unwrap();
        assert_eq!(net.ntoa(), "10.0.0.0/16");
        assert!(
            IpAddr::new("10.0.5.1", CIDR_UNSPEC)
                .unwrap()
                .is_in_net(&net)
        );
        assert!(
            !IpAddr::new("10.1.5.1", CIDR_UNSPEC)
                .unwrap()
                .is_in_net(&net)
        );
    }

    #[test]
    fn ptr_names() {
        assert_eq!(
            IpAddr::new("69.26.117.194", CIDR_UNSPEC).unwrap().ptr(),
            "194.117.26.69.in-addr.arpa."
        );
        assert!(
            IpAddr::new("2001:db8::1", CIDR_UNSPEC)
                .unwrap()
                .ptr()
                .starts_with("1.0.0.0.")
        );
        assert_eq!(IpAddr::raw("abc").ptr(), "");
    }

    #[test]
    fn raw_ids_compare_by_text() {
        let r = IpAddr::raw("user@example");
        assert!(r.eq_text("user@example"));
        assert!(!r.eq_text("user"));
        let v = IpAddr::new("2001:db8::1", CIDR_UNSPEC).unwrap();
        assert!(v.eq_text("2001:DB8:0::1"));
    }
}
