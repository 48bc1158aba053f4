//! fail2ban in Rust: a drop-in replacement for the Python fail2ban.
//!
//! The crate is organised by concept, one module each:
//! - [`config`]: fail2ban's INI dialect, includes, interpolation, and the
//!   readers that turn `filter.d` (and later jail/action) files into the
//!   command stream fail2ban's client sends to its server;
//! - [`regex`]: Python `re` semantics on top of the `regex` and
//!   `fancy-regex` crates;
//! - [`failregex`]: fail2ban's regex tags (`<HOST>`, `<F-*>` ...) and the
//!   failure-regex objects built from them;
//! - [`dates`]: the date detector, date templates and `strptime`;
//! - [`ipaddr`]: addresses as fail2ban parses, prints and resolves them;
//! - [`filter`]: the per-line decision (date cut, prefregex, failregex,
//!   ignoreregex, multi-line merge, failure id);
//! - [`regextool`]: the `fail2ban-regex` command;
//! - [`protocol`]: the client/server wire format (pickles over a Unix
//!   socket) and [`client`]: the `fail2ban-client` command;
//! - [`mytime`], [`pyvalue`], [`optparse`]: the clock, Python value
//!   rendering, and Python-style command-line parsing.

pub mod client;
pub mod config;
pub mod dates;
pub mod failregex;
pub mod filter;
pub mod ipaddr;
pub mod logging;
pub mod mytime;
pub mod optparse;
pub mod protocol;
pub mod pyvalue;
pub mod regex;
pub mod regextool;
