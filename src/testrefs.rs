//! Where the unit tests find fail2ban's reference material: the paths that
//! `compat-tests/refs.py` resolves (exported by `compat-tests/run-all.sh`
//! as `REF102_CONFIG`, `REF102_FILES`, `UPSTREAM_CONFIG`, `UPSTREAM_FILES`,
//! `REALWORLD`), else the shared copies beside the repository
//! (`../shared`). A test whose reference is missing says so and skips.

use std::path::PathBuf;

/// Which reference.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Ref {
    /// fail2ban 1.0.2's configuration directory.
    Config102,
    /// fail2ban 1.0.2's `tests/files` (sample logs under `logs/`).
    Files102,
    /// The newest upstream configuration directory.
    ConfigUpstream,
    /// The newest upstream `tests/files`.
    FilesUpstream,
    /// Real-world logs.
    Realworld,
}

impl Ref {
    fn var(self) -> &'static str {
        match self {
            Ref::Config102 => "REF102_CONFIG",
            Ref::Files102 => "REF102_FILES",
            Ref::ConfigUpstream => "UPSTREAM_CONFIG",
            Ref::FilesUpstream => "UPSTREAM_FILES",
            Ref::Realworld => "REALWORLD",
        }
    }

    fn shared(self) -> &'static str {
        match self {
            Ref::Config102 => "fail2ban-1.0.2/config",
            Ref::Files102 => "fail2ban-1.0.2/tests/files",
            Ref::ConfigUpstream => "fail2ban-upstream/config",
            Ref::FilesUpstream => "fail2ban-upstream/tests/files",
            Ref::Realworld => "realworld-logs",
        }
    }
}

/// The directory of `r`, or `None` (with a line saying so) when absent.
pub(crate) fn path(r: Ref) -> Option<PathBuf> {
    let p = match std::env::var_os(r.var()).filter(|v| !v.is_empty()) {
        Some(v) => PathBuf::from(v),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../shared")
            .join(r.shared()),
    };
    if p.is_dir() {
        Some(p)
    } else {
        eprintln!(
            "SKIP: reference {} not found at {} (set {} or run compat-tests/run-all.sh)",
            r.shared(),
            p.display(),
            r.var()
        );
        None
    }
}
