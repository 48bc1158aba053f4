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
//! - [`failures`], [`bans`]: failure counting per address and the ban list;
//! - [`filter`]: the per-line decision (date cut, prefregex, failregex,
//!   ignoreregex, multi-line merge, failure id);
//! - [`regextool`]: the `fail2ban-regex` command;
//! - [`actions`]: a jail's `action.d` commands, tag substitution and the
//!   non-blocking execution of the resulting shell commands;
//! - [`mytime`], [`pyvalue`], [`optparse`]: the clock, Python value
//!   rendering, and Python-style command-line parsing.

pub mod actions;
pub mod bans;
pub mod config;
pub mod dates;
pub mod failregex;
pub mod failures;
pub mod filter;
pub mod ipaddr;
pub mod logging;
pub mod logwatch;
pub mod mytime;
pub mod optparse;
pub mod pyvalue;
pub mod regex;
pub mod regextool;
