//! One command action (fail2ban's `CommandAction`): its properties, the
//! families it has started, and the flows of its operations.
//!
//! [`CommandAction`] holds the state: properties (free names, the command
//! templates `actionban` ..., `timeout`, the flags), the per-family state
//! (started, has items), the substitution caches and which operation
//! command already ran for which family.  [`Act`] runs the operations as
//! fail2ban's methods do (`start`, `ban` with on-demand start, retry,
//! `actioncheck`/`actionrepair`, `unban` only for families with items,
//! `flush`, `stop`, `reload`, `consistencyCheck`), written as async
//! functions: each command is awaited, and the jail's driver
//! ([`super::Actions`]) runs the process meanwhile.  The logic mirrors the
//! Python methods one to one, including their treatment of Python's `None`
//! family (ids that are not addresses).

use super::dns::DnsKey;
use super::str2seconds;
use super::tags::{
    ESCAPED_TAGS, Family, FamilyOnly, ShellCmd, TicketTags, replace_dynamic_tags, replace_tag,
};
use super::{ActionError, BanInfo, Event, JailCtx, Num, Op};
use crate::config::splitwords;
use crate::config::tags::substitute_recursive_tags;
use crate::logging::{CRITICAL, DEBUG, ERROR, INFO};
use crate::pyvalue::{PyValue, str_repr};
use indexmap::IndexMap;
use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};

const LOG_ACTION: &str = "fail2ban.CommandAction";
const LOG_EXEC: &str = "fail2ban.action";
const LOG_ACTIONS: &str = "fail2ban.actions";

/// The command templates every action has (empty by default).
const BUILTIN_COMMANDS: [&str; 9] = [
    "actionban",
    "actioncheck",
    "actionflush",
    "actionreban",
    "actionreload",
    "actionrepair",
    "actionstart",
    "actionstop",
    "actionunban",
];

/// The pattern of fail2ban's escaping and variable naming, which its
/// actions expose as the properties `ESCAPE_CRE` and `ESCAPE_VN_CRE`.
const ESCAPE_PATTERN: &str = r#"[\\#&;`|*?~<>\^\(\)\[\]{}$'"\n\r]"#;
const ESCAPE_VN_PATTERN: &str = r"\W";

/// The state of one command action.
pub(crate) struct CommandAction {
    pub(crate) name: String,
    /// Attributes set on the action, by name (sorted, as Python's `dir`).
    attrs: BTreeMap<String, PyValue>,
    /// Per family: bit 1 started, bit 2 has items.
    started: IndexMap<Family, u8>,
    pub(crate) ban_epoch: u64,
    props: Option<IndexMap<String, Option<String>>>,
    subst_tags: HashMap<String, IndexMap<String, Option<String>>>,
    subst: HashMap<(String, String), String>,
    executed: HashMap<String, IndexMap<Family, String>>,
}

impl CommandAction {
    pub(crate) fn new(name: &str) -> CommandAction {
        let mut a = CommandAction {
            name: name.to_string(),
            attrs: BTreeMap::new(),
            started: IndexMap::new(),
            ban_epoch: 0,
            props: None,
            subst_tags: HashMap::new(),
            subst: HashMap::new(),
            executed: HashMap::new(),
        };
        a.clear_all_params();
        a
    }

    /// Resets the command templates and the timeout (`clearAllParams`, at
    /// the start of a reload); other properties are kept.
    pub(crate) fn clear_all_params(&mut self) {
        self.attrs.insert("timeout".into(), PyValue::Int(60));
        for c in BUILTIN_COMMANDS {
            self.attrs.insert(c.into(), PyValue::str(""));
        }
        self.invalidate();
    }

    fn invalidate(&mut self) {
        self.props = None;
        self.subst_tags.clear();
        self.subst.clear();
        self.executed.clear();
    }

    /// Sets a property (`set <jail> action <act> <key> <value>`).
    /// `bantime` is ignored and `timeout` is read as a time expression, as
    /// fail2ban does.  Returns the value stored, for the debug line.
    pub(crate) fn set(
        &mut self,
        key: &str,
        value: PyValue,
    ) -> Result<Option<PyValue>, ActionError> {
        if key.starts_with('_') {
            self.attrs.insert(key.to_string(), value);
            return Ok(None);
        }
        let value = match (key, value) {
            ("bantime", _) => return Ok(None),
            ("timeout", PyValue::Str(s)) => match str2seconds(&s)? {
                Num::Int(i) => PyValue::Int(i),
                Num::Float(f) => PyValue::Float(f),
            },
            (_, v) => v,
        };
        self.attrs.insert(key.to_string(), value.clone());
        self.invalidate();
        Ok(Some(value))
    }

    /// A property's value (`get <jail> action <act> <key>`).
    pub(crate) fn get(&self, key: &str) -> Option<PyValue> {
        match key {
            "banEpoch" => Some(PyValue::Int(self.ban_epoch as i64)),
            "ESCAPE_CRE" => Some(PyValue::Str(pattern_repr(ESCAPE_PATTERN))),
            "ESCAPE_VN_CRE" => Some(PyValue::Str(pattern_repr(ESCAPE_VN_PATTERN))),
            _ => self.attrs.get(key).cloned(),
        }
    }

    /// The names of the public properties, sorted.
    pub(crate) fn property_names(&self) -> Vec<String> {
        let mut names: Vec<String> = self
            .attrs
            .keys()
            .filter(|k| !k.starts_with('_'))
            .cloned()
            .chain(["ESCAPE_CRE", "ESCAPE_VN_CRE", "banEpoch"].map(String::from))
            .collect();
        names.sort();
        names
    }

    fn truthy(&self, key: &str) -> bool {
        self.attrs.get(key).is_some_and(PyValue::truthy)
    }

    pub(crate) fn norestored(&self) -> bool {
        self.truthy("norestored")
    }

    /// Whether `actionflush` is set (flush instead of single unbans).
    pub(crate) fn flushable(&self) -> bool {
        self.truthy("actionflush")
    }

    /// `_prolongable`: an `actionprolong` that is not just blanks.
    pub(crate) fn prolongable(&self) -> bool {
        match self.attrs.get("actionprolong") {
            Some(PyValue::Str(s)) => !s.is_empty() && !s.chars().all(char::is_whitespace),
            Some(v) => v.truthy(),
            None => false,
        }
    }

    /// Some property is family-conditional (`name?family=...`).
    fn has_cond_section(&self) -> bool {
        self.attrs.keys().any(|k| match k.split_once('?') {
            Some((head, rest)) => {
                !head.is_empty()
                    && head.chars().all(|c| c.is_alphanumeric() || c == '_')
                    && rest.starts_with("family=")
                    && !rest.contains('\n')
            }
            None => false,
        })
    }

    /// `_startOnDemand`.
    fn start_on_demand(&self) -> bool {
        match self.attrs.get("actionstart_on_demand") {
            Some(PyValue::None) | None => self.has_cond_section(),
            Some(v) => v.truthy(),
        }
    }

    /// `_families`: where a start without family runs.
    fn families(&self, allow_ipv6: bool) -> Vec<Family> {
        match self.attrs.get("families") {
            Some(PyValue::Str(s)) if !s.is_empty() => {
                return splitwords(s).iter().map(|f| Family::name(f)).collect();
            }
            Some(PyValue::List(v) | PyValue::Set(v)) if !v.is_empty() => {
                return v.iter().map(|f| Family::Name(f.to_py_str())).collect();
            }
            _ => {}
        }
        if self.has_cond_section() {
            let mut f = vec![Family::name("inet4")];
            if allow_ipv6 {
                f.push(Family::name("inet6"));
            }
            f
        } else {
            vec![Family::name("")]
        }
    }

    fn started(&self, f: &Family) -> u8 {
        self.started.get(f).copied().unwrap_or(0)
    }

    /// The properties as text, sorted by name (`_properties`).
    fn props(&mut self) -> &IndexMap<String, Option<String>> {
        let epoch = self.ban_epoch;
        self.props.get_or_insert_with(|| {
            let mut m: Vec<(String, Option<String>)> = self
                .attrs
                .iter()
                .filter(|(k, _)| !k.starts_with('_'))
                .map(|(k, v)| {
                    let text = match v {
                        PyValue::None => None,
                        v => Some(v.to_py_str()),
                    };
                    (k.clone(), text)
                })
                .collect();
            m.push(("ESCAPE_CRE".into(), Some(pattern_repr(ESCAPE_PATTERN))));
            m.push((
                "ESCAPE_VN_CRE".into(),
                Some(pattern_repr(ESCAPE_VN_PATTERN)),
            ));
            m.push(("banEpoch".into(), Some(epoch.to_string())));
            m.sort_by(|a, b| a.0.cmp(&b.0));
            m.into_iter().collect()
        })
    }

    /// Static phase of `query` for `family` (`replaceTag` with cache).
    fn static_cmd(
        &mut self,
        query: &str,
        family: &Family,
    ) -> Result<Result<String, DnsKey>, String> {
        let cond = family.conditional();
        if !query.contains('<') {
            return Ok(Ok(query.to_string()));
        }
        let key = (query.to_string(), cond.clone());
        if let Some(v) = self.subst.get(&key) {
            return Ok(Ok(v.clone()));
        }
        if !self.subst_tags.contains_key(&cond) {
            let ignore: HashSet<String> = ESCAPED_TAGS.iter().map(|t| t.to_string()).collect();
            let props = self.props().clone();
            let resolved = substitute_recursive_tags(&props, &cond, &ignore, &mut |_| Ok(None))
                .map_err(|e| e.to_string())?;
            self.subst_tags.insert(cond.clone(), resolved);
        }
        let r = replace_tag(query, &self.subst_tags[&cond], &cond)?;
        if let Ok(v) = &r {
            self.subst.insert(key, v.clone());
        }
        Ok(r)
    }

    /// `_getOperation`: the static phase, then `<family>` (and empty
    /// `<F-*>`) for a family-dependent operation.
    fn operation(&mut self, tag: &str, family: &Family) -> Result<Result<String, DnsKey>, String> {
        let cmd = match self.static_cmd(tag, family)? {
            Ok(c) => c,
            Err(k) => return Ok(Err(k)),
        };
        if !family.truthy() || !cmd.contains('<') {
            return Ok(Ok(cmd));
        }
        Ok(replace_dynamic_tags(&cmd, &FamilyOnly(family.text())).map(|c| c.script))
    }

    /// Commands of operation `tag` that ran for families other than `f`.
    fn executed_elsewhere(&self, tag: &str, f: &Family) -> Vec<String> {
        self.executed
            .get(tag)
            .map(|m| {
                m.iter()
                    .filter(|(k, _)| *k != f)
                    .map(|(_, v)| v.clone())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Records (`Some`) or forgets (`None`, also for the other families
    /// with the same command) that operation `tag` ran for `f`.
    fn set_executed(&mut self, tag: &str, f: &Family, cmd: Option<String>) {
        match cmd {
            Some(c) if !c.is_empty() => {
                self.executed
                    .entry(tag.to_string())
                    .or_default()
                    .insert(f.clone(), c);
            }
            _ => {
                if let Some(m) = self.executed.get_mut(tag)
                    && let Some(c) = m.shift_remove(f)
                {
                    m.retain(|_, v| *v != c);
                }
            }
        }
    }
}

/// `str(re.compile(pattern))`.
fn pattern_repr(pattern: &str) -> String {
    format!("re.compile({})", str_repr(pattern))
}

/// What a job waits for.
pub(crate) enum Request {
    Exec(ShellCmd, Num, Kind),
    Dns(DnsKey),
}

/// What a command is for, which decides how it waits for others (see the
/// command gate in the parent module).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    /// Start, stop, flush, check, repair, reload: changes the firewall's
    /// structure (chains, tables, sets), one at a time.
    Operation,
    /// Ban, unban, prolong of one address: adds or removes an entry.
    Ticket,
}

/// The exchange between a job and its driver: the job leaves a request,
/// the driver answers (command succeeded, or lookup done).
#[derive(Default)]
pub(crate) struct Io {
    pub(crate) request: Option<Request>,
    pub(crate) response: Option<bool>,
}

/// A future resolved by the driver's answer to one request.
struct Answer<'a> {
    io: &'a RefCell<Io>,
    request: Option<Request>,
}

impl Future for Answer<'_> {
    type Output = bool;

    fn poll(mut self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<bool> {
        if let Some(r) = self.request.take() {
            self.io.borrow_mut().request = Some(r);
            return Poll::Pending;
        }
        match self.io.borrow_mut().response.take() {
            Some(ok) => Poll::Ready(ok),
            None => Poll::Pending,
        }
    }
}

/// Hooks of `_executeOperation` (`afterExec`).
#[derive(Clone, Copy, PartialEq)]
enum After {
    Nothing,
    Started,
    Stopped,
    Flushed,
}

/// The `beforeRepair` callbacks.
#[derive(Clone, Copy, PartialEq)]
pub(crate) enum BeforeRepair {
    /// No callback, or one that allows the repair.
    Allow,
    /// `_processCmd` of an unban: repair only with `actionrepair_on_unban`.
    Unban,
    /// A flush that failed while stopping: no repair unless
    /// `actionrepair_on_unban`.
    FlushAtStop,
}

/// An action with its jail, as the jobs see it.
pub(crate) struct Act {
    pub(crate) core: RefCell<CommandAction>,
    pub(crate) io: RefCell<Io>,
    pub(crate) jail: Rc<JailCtx>,
}

type Res<T> = Result<T, String>;

impl Act {
    pub(crate) fn new(name: &str, jail: Rc<JailCtx>) -> Act {
        Act {
            core: RefCell::new(CommandAction::new(name)),
            io: RefCell::new(Io::default()),
            jail,
        }
    }

    pub(crate) fn name(&self) -> String {
        self.core.borrow().name.clone()
    }

    fn log(&self, level: i64, logger: &'static str, message: String) {
        self.jail.log(level, logger, message);
    }

    /// `CommandAction.executeCmd` for an operation (start, stop, check ...).
    async fn exec(&self, cmd: ShellCmd) -> bool {
        self.exec_as(cmd, Kind::Operation).await
    }

    /// `CommandAction.executeCmd`.
    async fn exec_as(&self, cmd: ShellCmd, kind: Kind) -> bool {
        self.log(DEBUG - 1, LOG_EXEC, cmd.display());
        if cmd.is_empty() {
            self.log(DEBUG, LOG_EXEC, "Nothing to do".into());
            return true;
        }
        let timeout = match self.core.borrow().attrs.get("timeout") {
            Some(PyValue::Int(i)) => Num::Int(*i),
            Some(PyValue::Float(f)) => Num::Float(*f),
            Some(PyValue::Bool(b)) => Num::Int(i64::from(*b)),
            _ => Num::Int(60),
        };
        Answer {
            io: &self.io,
            request: Some(Request::Exec(cmd, timeout, kind)),
        }
        .await
    }

    async fn resolve(&self, key: DnsKey) {
        Answer {
            io: &self.io,
            request: Some(Request::Dns(key)),
        }
        .await;
    }

    /// `_getOperation`, waiting for name lookups as needed.
    async fn operation(&self, tag: &str, family: &Family) -> Res<String> {
        loop {
            let r = self.core.borrow_mut().operation(tag, family)?;
            match r {
                Ok(cmd) => return Ok(cmd),
                Err(key) => self.resolve(key).await,
            }
        }
    }

    /// Both phases of `tag` for a ticket.
    async fn ticket_cmd(&self, tag: &str, family: &Family, tags: &TicketTags<'_>) -> Res<ShellCmd> {
        loop {
            let r = self.core.borrow_mut().static_cmd(tag, family)?;
            let key = match r.map(|cmd| replace_dynamic_tags(&cmd, tags)) {
                Ok(Ok(cmd)) => return Ok(cmd),
                Ok(Err(key)) | Err(key) => key,
            };
            self.resolve(key).await;
        }
    }

    /// `_executeOperation`.
    async fn execute_operation(
        &self,
        tag: &str,
        operation: &str,
        families: Vec<Family>,
        after: After,
    ) -> Res<bool> {
        let families = if families.is_empty() {
            let core = self.core.borrow();
            core.started
                .iter()
                .filter(|(_, v)| **v != 0)
                .map(|(f, _)| f.clone())
                .collect()
        } else {
            families
        };
        let mut res = true;
        let mut err = str_repr("Script error");
        for fam in families {
            let cmd = match self.operation(tag, &fam).await {
                Ok(c) => c,
                Err(e) => {
                    res = false;
                    err = format!("ValueError({})", str_repr(&e));
                    continue;
                }
            };
            let mut ret = true;
            let done_elsewhere = self
                .core
                .borrow()
                .executed_elsewhere(tag, &fam)
                .contains(&cmd);
            if !cmd.is_empty() && !done_elsewhere {
                let now = self.jail.now();
                let empty = BanInfo::empty(now);
                let real = loop {
                    let tags = TicketTags::new(&empty, self.jail.stats.get(), Some(fam.clone()));
                    match replace_dynamic_tags(&cmd, &tags) {
                        Ok(c) => break c,
                        Err(key) => self.resolve(key).await,
                    }
                };
                ret = self.exec(real).await;
                res &= ret;
            }
            let mut core = self.core.borrow_mut();
            match after {
                After::Started if ret => {
                    core.set_executed("<actionstop>", &fam, None);
                    core.started.insert(fam.clone(), 1);
                }
                After::Stopped if ret => core.set_executed("<actionstart>", &fam, None),
                After::Flushed if ret && core.started(&fam) != 0 => {
                    let v = core.started(&fam) & !2;
                    core.started.insert(fam.clone(), v);
                }
                _ => {}
            }
            core.set_executed(tag, &fam, ret.then_some(cmd));
        }
        if !res {
            return Err(format!(
                "Error {operation} action Jail({})/{}: {err}",
                str_repr(&self.jail.name),
                self.name()
            ));
        }
        Ok(true)
    }

    /// `_start`: `Family::None` means the action's families.
    async fn start(&self, family: Family, force: bool) -> Res<bool> {
        let families = {
            let core = self.core.borrow();
            if core.start_on_demand() {
                if !force {
                    return Ok(true);
                }
            } else if !force && core.started(&family) != 0 {
                return Ok(true);
            }
            match family {
                Family::None => core.families(self.jail.allow_ipv6.get()),
                f => vec![f],
            }
        };
        self.execute_operation("<actionstart>", "starting", families, After::Started)
            .await
    }

    /// `_stop`: `Family::None` stops every started family.
    async fn stop(&self, family: Family) -> Res<bool> {
        let families = {
            let mut core = self.core.borrow_mut();
            match family {
                Family::None => {
                    let f: Vec<Family> = core
                        .started
                        .iter()
                        .filter(|(_, v)| **v != 0)
                        .map(|(f, _)| f.clone())
                        .collect();
                    if f.is_empty() {
                        return Ok(true);
                    }
                    core.started.clear();
                    f
                }
                f => match core.started.get_mut(&f) {
                    Some(v) => {
                        *v = 0;
                        vec![f]
                    }
                    None => return Ok(true),
                },
            }
        };
        self.execute_operation("<actionstop>", "stopping", families, After::Stopped)
            .await
    }

    /// `ban` (also `reban` with `<actionreban>`).
    async fn ban(&self, tags: &TicketTags<'_>, cmd: &str) -> Res<()> {
        let family = tags.family();
        let need_start = {
            let core = self.core.borrow();
            core.start_on_demand() && core.started(&family) == 0
        };
        if need_start {
            self.start(family.clone(), true).await?;
        }
        if !self.process_cmd(cmd, tags).await? {
            return Err(format!("Error banning {}", tags.ip()));
        }
        let mut core = self.core.borrow_mut();
        let v = core.started(&family) | 3;
        core.started.insert(family, v);
        Ok(())
    }

    async fn unban(&self, tags: &TicketTags<'_>) -> Res<()> {
        let family = tags.family();
        let has_items = self.core.borrow().started(&family) & 2 != 0;
        if has_items && !self.process_cmd("<actionunban>", tags).await? {
            return Err(format!("Error unbanning {}", tags.ip()));
        }
        Ok(())
    }

    async fn prolong(&self, tags: &TicketTags<'_>) -> Res<()> {
        if !self.process_cmd("<actionprolong>", tags).await? {
            return Err(format!("Error prolonging {}", tags.ip()));
        }
        Ok(())
    }

    async fn flush(&self) -> Res<bool> {
        let families: Vec<Family> = {
            let core = self.core.borrow();
            core.started
                .iter()
                .filter(|(_, v)| **v & 3 == 3)
                .map(|(f, _)| f.clone())
                .collect()
        };
        if families.is_empty() {
            return Ok(true);
        }
        self.execute_operation("<actionflush>", "flushing", families, After::Flushed)
            .await
    }

    /// `_processCmd`: run the command; on failure check (and repair) and
    /// run it once more.
    async fn process_cmd(&self, cmd: &str, tags: &TicketTags<'_>) -> Res<bool> {
        let family = tags.family();
        let mut repcnt = 0;
        loop {
            if repcnt > 0 && self.core.borrow().truthy("actioncheck") {
                let unban = cmd == "<actionunban>";
                let before = if unban {
                    BeforeRepair::Unban
                } else {
                    BeforeRepair::Allow
                };
                if self.invariant_check(&family, before, !unban).await? != 1 {
                    return Ok(false);
                }
            }
            let real = self.ticket_cmd(cmd, &family, tags).await?;
            let ret = self.exec_as(real, Kind::Ticket).await;
            repcnt += 1;
            if ret || repcnt > 1 {
                return Ok(ret);
            }
        }
    }

    fn before_repair(&self, before: BeforeRepair) -> bool {
        let repair_on_unban = self.core.borrow().truthy("actionrepair_on_unban");
        match before {
            BeforeRepair::Allow => true,
            _ if repair_on_unban => true,
            BeforeRepair::Unban => {
                self.log(
                    ERROR,
                    LOG_ACTION,
                    "Invariant check failed. Unban is impossible.".into(),
                );
                false
            }
            BeforeRepair::FlushAtStop => {
                self.log(
                    ERROR,
                    LOG_ACTIONS,
                    "Invariant check failed. Flush is impossible.".into(),
                );
                false
            }
        }
    }

    /// `_invariantCheck`: 1 sane (or restored), 0 broken, -1 broken and
    /// not to be repaired.
    async fn invariant_check(
        &self,
        family: &Family,
        before: BeforeRepair,
        force: bool,
    ) -> Res<i32> {
        let known = self.core.borrow().started.contains_key(family);
        if !force && *family != Family::None && !known {
            return Ok(1);
        }
        let check = self.operation("<actioncheck>", family).await?;
        if check.is_empty() || self.exec(ShellCmd::plain(check.clone())).await {
            return Ok(1);
        }
        if !self.before_repair(before) {
            return Ok(-1);
        }
        self.log(
            ERROR,
            LOG_ACTION,
            "Invariant check failed. Trying to restore a sane environment".into(),
        );
        {
            let e = self.jail.epoch.get() + 1;
            self.jail.epoch.set(e);
            self.core.borrow_mut().ban_epoch = e;
        }
        let repair = self.operation("<actionrepair>", family).await?;
        if !repair.is_empty() {
            if !self.exec(ShellCmd::plain(repair)).await {
                self.core.borrow_mut().started.insert(family.clone(), 0);
                self.log(CRITICAL, LOG_ACTION, "Unable to restore environment".into());
                return Ok(0);
            }
            self.core.borrow_mut().started.insert(family.clone(), 1);
        } else {
            let _ = self.stop(family.clone()).await;
            let on_demand = self.core.borrow().start_on_demand();
            self.start(family.clone(), force || !on_demand).await?;
        }
        let started = self.core.borrow().started(family) != 0;
        if started && !self.exec(ShellCmd::plain(check)).await {
            self.log(CRITICAL, LOG_ACTION, "Unable to restore environment".into());
            return Ok(0);
        }
        Ok(1)
    }

    /// `consistencyCheck`.
    async fn consistency_check(&self, before: BeforeRepair) -> Res<bool> {
        let mut ret = true;
        if !self.core.borrow().truthy("actioncheck") {
            return Ok(ret);
        }
        let snapshot: Vec<(Family, u8)> = self
            .core
            .borrow()
            .started
            .iter()
            .map(|(f, v)| (f.clone(), *v))
            .collect();
        for (family, started) in snapshot {
            if started != 0 && self.invariant_check(&family, before, true).await? == 0 {
                let mut core = self.core.borrow_mut();
                core.started.insert(family.clone(), 0);
                core.set_executed("<actionstart>", &family, None);
                ret = false;
            }
        }
        Ok(ret)
    }
}

/// One unit of work of an action, as the jail asks for it.
#[derive(Clone)]
pub(crate) enum Job {
    Start,
    Ban(Rc<BanInfo>),
    Reban(Rc<BanInfo>),
    Unban(Rc<BanInfo>),
    Prolong(Rc<BanInfo>),
    /// Flush; `stop`: while the jail stops (no repair on failure).
    Flush {
        stop: bool,
    },
    Stop,
    Reload,
    Check,
}

/// Runs one job of `act` with the jail's handling of its errors (the
/// `Failed to ...` log lines of `fail2ban.actions`), then reports it.
pub(crate) async fn run_job(act: Rc<Act>, job: Job) {
    let jail = act.jail.name.clone();
    let name = act.name();
    let stats = act.jail.stats.get();
    let (op, ip, result) = match &job {
        Job::Start => (
            Op::Start,
            None,
            act.start(Family::None, false).await.map(drop),
        ),
        Job::Ban(info) | Job::Reban(info) | Job::Unban(info) | Job::Prolong(info) => {
            let tags = TicketTags::new(info, stats, None);
            let (op, what, r) = match &job {
                Job::Ban(_) => (Op::Ban, "ban", act.ban(&tags, "<actionban>").await),
                Job::Reban(_) => {
                    let cmd = if act.core.borrow().truthy("actionreban") {
                        "<actionreban>"
                    } else {
                        "<actionban>"
                    };
                    (Op::Reban, "reban", act.ban(&tags, cmd).await)
                }
                Job::Unban(_) => (Op::Unban, "unban", act.unban(&tags).await),
                _ => (Op::Prolong, "ban", act.prolong(&tags).await),
            };
            if let Err(e) = &r {
                act.log(
                    ERROR,
                    LOG_ACTIONS,
                    format!(
                        "Failed to execute {what} jail '{jail}' action '{name}' info '{}': {e}",
                        tags.repr()
                    ),
                );
            }
            (op, Some(info.fid.clone()), r)
        }
        Job::Flush { stop } => {
            let r = match act.flush().await {
                Ok(_) => Ok(()),
                Err(e) => {
                    act.log(
                        ERROR,
                        LOG_ACTIONS,
                        format!("Failed to flush bans in jail '{jail}' action '{name}': {e}"),
                    );
                    act.log(
                        INFO,
                        LOG_ACTIONS,
                        "No flush occurred, do consistency check".into(),
                    );
                    let before = if *stop {
                        BeforeRepair::FlushAtStop
                    } else {
                        BeforeRepair::Allow
                    };
                    match act.consistency_check(before).await {
                        Ok(_) => Err(e),
                        Err(e2) => Err(e2),
                    }
                }
            };
            (Op::Flush, None, r)
        }
        Job::Stop => (Op::Stop, None, act.stop(Family::None).await.map(drop)),
        Job::Reload => (
            Op::Reload,
            None,
            act.execute_operation("<actionreload>", "reloading", Vec::new(), After::Nothing)
                .await
                .map(drop),
        ),
        Job::Check => (
            Op::Check,
            None,
            act.consistency_check(BeforeRepair::Allow).await.map(drop),
        ),
    };
    if let Err(e) = &result {
        let text = match op {
            Op::Start => Some(format!(
                "Failed to start jail '{jail}' action '{name}': {e}"
            )),
            Op::Stop => Some(format!("Failed to stop jail '{jail}' action '{name}': {e}")),
            Op::Check => Some(format!("[{jail}] unhandled error in actions thread: {e}")),
            _ => None,
        };
        if let Some(t) = text {
            act.log(ERROR, LOG_ACTIONS, t);
        }
    }
    act.jail.push(Event::Done(super::Done {
        action: name,
        op,
        ip,
        ok: result.is_ok(),
        error: result.err(),
    }));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn properties_and_conditions() {
        let mut a = CommandAction::new("x");
        assert!(!a.has_cond_section());
        assert!(!a.start_on_demand());
        assert_eq!(a.families(true), vec![Family::name("")]);
        a.set("blocktype?family=inet6", PyValue::str("b6")).unwrap();
        assert!(a.has_cond_section());
        assert!(a.start_on_demand());
        assert_eq!(
            a.families(true),
            vec![Family::name("inet4"), Family::name("inet6")]
        );
        assert_eq!(a.families(false), vec![Family::name("inet4")]);
        a.set("actionstart_on_demand", PyValue::Bool(false))
            .unwrap();
        assert!(!a.start_on_demand());
        // A string from the socket is a truthy Python value.
        a.set("actionstart_on_demand", PyValue::str("false"))
            .unwrap();
        assert!(a.start_on_demand());
        a.set("bantime", PyValue::str("100")).unwrap();
        assert_eq!(a.get("bantime"), None);
        a.set("timeout", PyValue::str("1m 30")).unwrap();
        assert_eq!(a.get("timeout"), Some(PyValue::Int(90)));
        assert!(a.set("timeout", PyValue::str("soon")).is_err());
        assert_eq!(
            a.property_names(),
            [
                "ESCAPE_CRE",
                "ESCAPE_VN_CRE",
                "actionban",
                "actioncheck",
                "actionflush",
                "actionreban",
                "actionreload",
                "actionrepair",
                "actionstart",
                "actionstart_on_demand",
                "actionstop",
                "actionunban",
                "banEpoch",
                "blocktype?family=inet6",
                "timeout"
            ]
        );
        assert!(!a.prolongable());
        a.set("actionprolong", PyValue::str("  \n")).unwrap();
        assert!(!a.prolongable());
        a.set("actionprolong", PyValue::str("x")).unwrap();
        assert!(a.prolongable());
    }

    #[test]
    fn executed_operations_are_forgotten_together() {
        let mut a = CommandAction::new("x");
        let (f4, f6) = (Family::name("inet4"), Family::name("inet6"));
        a.set_executed("<actionstart>", &f4, Some("go".into()));
        a.set_executed("<actionstart>", &f6, Some("go".into()));
        assert_eq!(a.executed_elsewhere("<actionstart>", &f4), vec!["go"]);
        a.set_executed("<actionstart>", &f4, None);
        assert!(a.executed_elsewhere("<actionstart>", &f4).is_empty());
        assert!(a.executed_elsewhere("<actionstart>", &f6).is_empty());
    }
}
