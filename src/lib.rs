//! fail2ban in Rust: a drop-in replacement for the Python fail2ban.
//!
//! The crate is organised by concept, one module each:
//! - [`config`]: fail2ban's INI dialect, includes, interpolation, and the
//!   readers that turn `filter.d`, `action.d`, jails and `fail2ban.conf`
//!   into the command stream fail2ban's client sends to its server;
//! - [`regex`]: Python `re` semantics: a parser of Python's syntax, the
//!   `regex` crate's automata, and a port of sre's backtracker for groups;
//! - [`failregex`]: fail2ban's regex tags (`<HOST>`, `<F-*>` ...) and the
//!   failure-regex objects built from them;
//! - [`dates`]: the date detector, date templates and `strptime`;
//! - [`ipaddr`]: addresses as fail2ban parses, prints and resolves them;
//! - [`failures`], [`bans`]: failure counting per address and the ban list;
//! - [`database`]: the persistent SQLite database (bans, log positions);
//! - [`filter`]: the per-line decision (date cut, prefregex, failregex,
//!   ignoreregex, multi-line merge, failure id);
//! - [`regextool`]: the `fail2ban-regex` command;
//! - [`actions`]: a jail's `action.d` commands, tag substitution and the
//!   non-blocking execution of the resulting shell commands;
//! - [`logwatch`]: following log files (inotify or polling, rotation);
//! - [`server`]: `fail2ban-server`, its jails, command table and loop;
//! - [`protocol`]: the client/server wire format (pickles over a Unix
//!   socket) and [`client`]: the `fail2ban-client` command;
//! - [`logging`]: fail2ban's log levels, format and targets;
//! - [`mytime`], [`pyvalue`], [`optparse`]: the clock, Python value
//!   rendering, and Python-style command-line parsing.

pub mod actions;
pub mod bans;
pub mod client;
pub mod config;
pub mod database;
pub mod dates;
pub mod failregex;
pub mod failures;
pub mod filter;
pub mod ipaddr;
pub mod logging;
pub mod logwatch;
pub mod mytime;
pub mod optparse;
pub mod protocol;
pub mod pyvalue;
pub mod regex;
pub mod regextool;
pub mod server;
#[cfg(test)]
mod testrefs;
