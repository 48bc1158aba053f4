//! One configuration file → its `[DEFAULT]` options and sections, in the
//! INI dialect of CPython 3.11's `configparser.ConfigParser` as fail2ban
//! configures it (delimiters `=` and `:`, full-line comments `#` and `;`,
//! inline comments `;`, strict mode, blank lines kept inside values).
//!
//! Written by hand rather than with the `rust-ini` crate: that crate folds
//! the case of section names, knows neither Python's continuation-line and
//! comment rules nor its error messages, and fail2ban depends on all of
//! them (a section `[definition]` is not `[Definition]`, a regex containing
//! ` ;` is cut, an indented line continues a value ...).
//!
//! Interpolation is not done here: values are stored raw and interpolated
//! on each read (see [`crate::config::reader`]).

use super::{Error, is_py_space, py_rstrip, py_strip};
use indexmap::IndexMap;
use std::collections::HashSet;

/// Options of one section, in file order; names are lower-cased.
pub type Section = IndexMap<String, String>;

/// The content of one file, or of several merged files.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IniData {
    /// The `[DEFAULT]` options.
    pub defaults: Section,
    /// All other sections, in order of first appearance.
    pub sections: IndexMap<String, Section>,
}

/// The name of the default section.
pub const DEFAULT_SECTION: &str = "DEFAULT";

/// Size of the chunks Python's text reader decodes at once.
const DECODE_CHUNK: usize = 8192;

/// Reads and parses one file as Python's `ConfigParser.read` does.
///
/// `Ok(None)` when the file cannot be opened or read (Python silently skips
/// it); [`Error::Decode`] when it is not valid UTF-8 (unless an earlier line
/// already failed to parse, as Python decodes chunk by chunk while parsing).
pub fn read_file(path: &str) -> Result<Option<IniData>, Error> {
    let Ok(bytes) = std::fs::read(path) else {
        return Ok(None);
    };
    match std::str::from_utf8(&bytes) {
        Ok(text) => parse(text, path).map(Some),
        Err(err) => {
            let bad = err.valid_up_to();
            // Python decodes 8 KiB chunks as it parses: an invalid byte fails
            // its whole chunk, an incomplete character only the end of file.
            let mut decoded = match err.error_len() {
                None => bad,
                Some(_) => (bad / DECODE_CHUNK) * DECODE_CHUNK,
            };
            while !bytes.is_char_boundary_at(decoded) {
                decoded -= 1;
            }
            let text = std::str::from_utf8(&bytes[..decoded]).expect("valid prefix");
            // A final `\r` may still be the first half of `\r\n`.
            let held = text.strip_suffix('\r').unwrap_or(text);
            let complete = held.rfind(['\n', '\r']).map_or(0, |p| p + 1);
            let mut parser = Parser::new(path);
            for line in split_lines(&text[..complete]) {
                parser.line(line)?;
            }
            Err(Error::Decode(decode_message(&bytes, &err, decoded)))
        }
    }
}

/// Whether a byte offset of a byte string starts a UTF-8 character.
trait CharBoundary {
    fn is_char_boundary_at(&self, i: usize) -> bool;
}

impl CharBoundary for [u8] {
    fn is_char_boundary_at(&self, i: usize) -> bool {
        i == 0 || i >= self.len() || (self[i] as i8) >= -0x40
    }
}

/// Python's text of a `UnicodeDecodeError` for the UTF-8 codec; positions
/// are relative to the data being decoded (which starts at `chunk_start`).
fn decode_message(bytes: &[u8], err: &std::str::Utf8Error, chunk_start: usize) -> String {
    let start = err.valid_up_to();
    let (len, reason) = match err.error_len() {
        None => (bytes.len() - start, "unexpected end of data"),
        Some(n) if n == 1 && !(0xc2..=0xf4).contains(&bytes[start]) => (1, "invalid start byte"),
        Some(n) => (n, "invalid continuation byte"),
    };
    let pos = start - chunk_start;
    if len == 1 {
        format!(
            "'utf-8' codec can't decode byte 0x{:02x} in position {}: {}",
            bytes[start], pos, reason
        )
    } else {
        format!(
            "'utf-8' codec can't decode bytes in position {}-{}: {}",
            pos,
            pos + len - 1,
            reason
        )
    }
}

/// Splits text into lines the way Python's text files iterate: universal
/// newlines (`\r\n`, `\r` and `\n` all become `\n`), line end kept.
fn split_lines(text: &str) -> impl Iterator<Item = String> + '_ {
    let mut rest = text;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let (line, next) = match rest.find(['\n', '\r']) {
            None => (rest.to_string(), ""),
            Some(p) => {
                let skip = if rest[p..].starts_with("\r\n") { 2 } else { 1 };
                (format!("{}\n", &rest[..p]), &rest[p + skip..])
            }
        };
        rest = next;
        Some(line)
    })
}

/// Parses the text of one file; `source` names it in error messages.
pub fn parse(text: &str, source: &str) -> Result<IniData, Error> {
    let mut parser = Parser::new(source);
    for line in split_lines(text) {
        parser.line(line)?;
    }
    parser.finish()
}

/// Where the lines being read go.
#[derive(Clone, PartialEq)]
enum Cursor {
    None,
    Defaults,
    Section(String),
}

/// The line-by-line state of `RawConfigParser._read`.
struct Parser<'a> {
    source: &'a str,
    defaults: IndexMap<String, Vec<String>>,
    sections: IndexMap<String, IndexMap<String, Vec<String>>>,
    added_options: HashSet<(String, String)>,
    cursor: Cursor,
    sectname: String,
    optname: Option<String>,
    indent_level: usize,
    lineno: usize,
    errors: Vec<(usize, String)>,
}

impl<'a> Parser<'a> {
    fn new(source: &'a str) -> Self {
        Parser {
            source,
            defaults: IndexMap::new(),
            sections: IndexMap::new(),
            added_options: HashSet::new(),
            cursor: Cursor::None,
            sectname: String::new(),
            optname: None,
            indent_level: 0,
            lineno: 0,
            errors: Vec::new(),
        }
    }

    fn current(&mut self) -> Option<&mut IndexMap<String, Vec<String>>> {
        match &self.cursor {
            Cursor::None => None,
            Cursor::Defaults => Some(&mut self.defaults),
            Cursor::Section(name) => self.sections.get_mut(name),
        }
    }

    /// The current option's value lines, if an option is being read.
    fn current_value(&mut self) -> Option<&mut Vec<String>> {
        let name = self.optname.clone().filter(|n| !n.is_empty())?;
        self.current()?.get_mut(&name)
    }

    fn line(&mut self, line: String) -> Result<(), Error> {
        self.lineno += 1;
        let comment_start = comment_start(&line);
        let value = py_strip(&line[..comment_start.unwrap_or(line.len())]);
        if value.is_empty() {
            if comment_start.is_none()
                && let Some(lines) = self.current_value()
            {
                lines.push(String::new());
            }
            return Ok(());
        }
        let indent = line.chars().take_while(|c| is_py_space(*c)).count();
        if self.cursor != Cursor::None
            && indent > self.indent_level
            && let Some(lines) = self.current_value()
        {
            lines.push(value.to_string());
            return Ok(());
        }
        self.indent_level = indent;
        if let Some(header) = section_header(value) {
            self.open_section(header)?;
        } else if self.cursor == Cursor::None {
            return Err(Error::MissingSectionHeader {
                source: self.source.to_string(),
                lineno: self.lineno,
                line,
            });
        } else if let Some(p) = value.find(['=', ':']) {
            let name = py_rstrip(&value[..p]).to_lowercase();
            if name.is_empty() {
                self.errors.push((self.lineno, line.clone()));
            }
            let key = (self.sectname.clone(), name.clone());
            if self.added_options.contains(&key) {
                return Err(Error::DuplicateOption {
                    section: self.sectname.clone(),
                    option: name,
                    source: self.source.to_string(),
                    lineno: self.lineno,
                });
            }
            self.added_options.insert(key);
            let optval = py_strip(&value[p + 1..]).to_string();
            self.current()
                .expect("a section is open")
                .insert(name.clone(), vec![optval]);
            self.optname = Some(name);
        } else {
            self.errors.push((self.lineno, line));
        }
        Ok(())
    }

    fn open_section(&mut self, name: &str) -> Result<(), Error> {
        if self.sections.contains_key(name) {
            // A fresh parser holds only this file's sections: strict mode.
            return Err(Error::DuplicateSection {
                section: name.to_string(),
                source: self.source.to_string(),
                lineno: self.lineno,
            });
        }
        if name == DEFAULT_SECTION {
            self.cursor = Cursor::Defaults;
        } else {
            self.sections.insert(name.to_string(), IndexMap::new());
            self.cursor = Cursor::Section(name.to_string());
        }
        self.sectname = name.to_string();
        self.optname = None;
        Ok(())
    }

    fn finish(self) -> Result<IniData, Error> {
        if !self.errors.is_empty() {
            return Err(Error::Parsing {
                source: self.source.to_string(),
                errors: self.errors,
            });
        }
        let join = |opts: IndexMap<String, Vec<String>>| -> Section {
            opts.into_iter()
                .map(|(k, v)| (k, py_rstrip(&v.join("\n")).to_string()))
                .collect()
        };
        Ok(IniData {
            defaults: join(self.defaults),
            sections: self
                .sections
                .into_iter()
                .map(|(name, opts)| (name, join(opts)))
                .collect(),
        })
    }
}

/// Byte offset where the comment of a line starts, if it has one: the
/// whole line when its stripped text starts with `#` or `;`, else the first
/// `;` at the line start or right after a whitespace character.
fn comment_start(line: &str) -> Option<usize> {
    let stripped = py_strip(line);
    if stripped.starts_with('#') || stripped.starts_with(';') {
        return Some(0);
    }
    let mut prev: Option<char> = None;
    for (i, c) in line.char_indices() {
        if c == ';' && prev.is_none_or(is_py_space) {
            return Some(i);
        }
        prev = Some(c);
    }
    None
}

/// The name of a section header line (`\[(?P<header>.+)\]` at its start:
/// everything up to the last `]`).
fn section_header(value: &str) -> Option<&str> {
    if !value.starts_with('[') {
        return None;
    }
    let end = value.rfind(']')?;
    (end >= 2).then(|| &value[1..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(text: &str) -> IniData {
        parse(text, "<t>").expect("parses")
    }

    fn opt<'a>(d: &'a IniData, sec: &str, name: &str) -> &'a str {
        &d.sections[sec][name]
    }

    #[test]
    fn options_delimiters_and_case() {
        let d = p("[Definition]\nFailRegex = a=b\nk3: a=b:c\n k4 =  spaced  \n");
        assert_eq!(opt(&d, "Definition", "failregex"), "a=b");
        // Indented, but directly after an option of lower indentation:
        // continuation of `k3`, not an option of its own.
        assert!(!d.sections["Definition"].contains_key("k4"));
        assert_eq!(opt(&d, "Definition", "k3"), "a=b:c\nk4 =  spaced");
    }

    #[test]
    fn section_names_are_verbatim() {
        let d = p("[definition]\na=1\n[B] junk]x\nb=2\n[]]\nc=3\n");
        assert!(d.sections.contains_key("definition"));
        assert!(!d.sections.contains_key("Definition"));
        assert_eq!(opt(&d, "B] junk", "b"), "2");
        assert_eq!(opt(&d, "]", "c"), "3");
    }

    #[test]
    fn comments() {
        let d = p("# c\n; c\n[S]\na = x ;c\nb = a;b\nc = x #c\nd=;all\n    # indented\ne = 1\n");
        let s = &d.sections["S"];
        assert_eq!(s["a"], "x");
        assert_eq!(s["b"], "a;b");
        assert_eq!(s["c"], "x #c");
        assert_eq!(s["d"], ";all");
        assert_eq!(s["e"], "1");
    }

    #[test]
    fn continuation_and_blank_lines() {
        let d = p("[S]\nkey =\n  l1\n\n  l2\n\t# comment\n  ; comment\n  [x]\nnext = 1\n\n\n");
        assert_eq!(opt(&d, "S", "key"), "\nl1\n\nl2\n[x]");
        assert_eq!(opt(&d, "S", "next"), "1");
        // Directly after a header there is no option to continue.
        let d = p("[S]\n  a = 1\n   b\n");
        assert_eq!(opt(&d, "S", "a"), "1\nb");
        // A comment-only line is not a blank line of the value.
        let d = p("[S]\na = 1\n  ; c\n  2\n");
        assert_eq!(opt(&d, "S", "a"), "1\n2");
        // A tab counts as one character of indentation.
        let d = p("[S]\n  a = 1\n\tb = 2\n");
        assert_eq!(opt(&d, "S", "b"), "2");
    }

    #[test]
    fn universal_newlines() {
        let d = p("[S]\r\na = 1\r\n  2\rb = 3");
        assert_eq!(opt(&d, "S", "a"), "1\n2");
        assert_eq!(opt(&d, "S", "b"), "3");
    }

    #[test]
    fn defaults_may_reopen_but_not_repeat_keys() {
        let d = p("[DEFAULT]\na=1\n[S]\nx=1\n[DEFAULT]\nb=2\n");
        assert_eq!(d.defaults["a"], "1");
        assert_eq!(d.defaults["b"], "2");
        assert!(!d.sections.contains_key("DEFAULT"));
        let e = parse("[DEFAULT]\na=1\n[DEFAULT]\na=2\n", "f.conf").unwrap_err();
        assert_eq!(
            e.to_string(),
            "While reading from 'f.conf' [line  4]: option 'a' in section 'DEFAULT' already exists"
        );
    }

    #[test]
    fn errors() {
        let e = parse("# x\na = 1\n", "/t/f.conf").unwrap_err();
        assert_eq!(
            e.to_string(),
            "File contains no section headers.\nfile: '/t/f.conf', line: 2\n'a = 1\\n'"
        );
        let e = parse("[S]\njunk\nok = 1\n= v\nmore junk", "f").unwrap_err();
        assert_eq!(
            e.to_string(),
            "Source contains parsing errors: 'f'\n\t[line  2]: 'junk\\n'\n\t[line  4]: '= v\\n'\n\t[line  5]: 'more junk'"
        );
        let e = parse("[S]\na=1\n[T]\n[S]\n", "f").unwrap_err();
        assert_eq!(
            e.to_string(),
            "While reading from 'f' [line  4]: section 'S' already exists"
        );
        let e = parse("[S]\nA=1\na=2\n", "f").unwrap_err();
        assert!(matches!(e, Error::DuplicateOption { lineno: 3, .. }));
    }

    #[test]
    fn unreadable_and_undecodable_files() {
        assert_eq!(read_file("/nonexistent/x.conf").unwrap(), None);
        assert_eq!(read_file("/").unwrap(), None);
        let dir = std::env::temp_dir().join(format!("f2b-ini-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let f = dir.join("bad.conf");
        std::fs::write(&f, b"[S]\na = \xff\n").unwrap();
        let e = read_file(f.to_str().unwrap()).unwrap_err();
        assert_eq!(
            e.to_string(),
            "'utf-8' codec can't decode byte 0xff in position 8: invalid start byte"
        );
        std::fs::write(&f, b"a = 1\n\xe2\x82").unwrap();
        let e = read_file(f.to_str().unwrap()).unwrap_err();
        assert_eq!(e.py_type(), "MissingSectionHeaderError");
        std::fs::write(&f, b"[S]\na = \xe2\x82").unwrap();
        let e = read_file(f.to_str().unwrap()).unwrap_err();
        assert_eq!(
            e.to_string(),
            "'utf-8' codec can't decode bytes in position 0-1: unexpected end of data"
        );
        // Positions are relative to the 8 KiB chunk being decoded, including
        // the bytes of a character cut by the previous chunk.
        let mut big = b"[S]\n".to_vec();
        big.extend([b'#'; 9000]);
        big.extend(b"\na = \xff\n");
        std::fs::write(&f, &big).unwrap();
        let e = read_file(f.to_str().unwrap()).unwrap_err();
        assert!(
            e.to_string()
                .ends_with("0xff in position 817: invalid start byte"),
            "{e}"
        );
        let mut cut = b"[S]\n".to_vec();
        cut.extend([b'#'; 8185]);
        cut.extend(b"\n\xe2\x82\xac\xff");
        std::fs::write(&f, &cut).unwrap();
        let e = read_file(f.to_str().unwrap()).unwrap_err();
        assert!(
            e.to_string()
                .ends_with("0xff in position 3: invalid start byte"),
            "{e}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
