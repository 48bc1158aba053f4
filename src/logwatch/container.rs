//! One open log file: its identity (device, inode, first-line hash), the
//! read position, and the reading of complete lines from there (fail2ban's
//! `FileContainer`).
//!
//! Unlike fail2ban, the file stays open between reads: the descriptor is
//! what lets the watcher finish reading a file after it was renamed or
//! deleted, instead of losing its last lines.

use sha1::{Digest, Sha1};
use std::fs::File;
use std::io;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::time::{Duration, Instant};

/// How often fail2ban recomputes the first-line hash of a file that shows
/// no other sign of rotation.
const HASH_RECHECK: Duration = Duration::from_secs(30);
/// A first line up to this long is rehashed on every check (one small read)
/// so that a file rewritten in place is noticed at once; longer ones follow
/// fail2ban's 30-second rule.
const CHEAP_FIRST_LINE: usize = 4096;
/// Bytes read from the file at once.
const CHUNK: usize = 64 * 1024;

/// Why a container restarted from the beginning of its file: the tuple
/// fail2ban logs `(size, pos, ino, old_ino, newhash, oldhash)`.
pub struct Rotation {
    pub size: u64,
    pub pos: u64,
    pub ino: u64,
    pub old_ino: u64,
    pub new_hash: String,
    pub old_hash: String,
}

impl Rotation {
    /// fail2ban logs a rotation only when the file had a first-line hash.
    pub fn logged(&self) -> bool {
        !self.old_hash.is_empty()
    }

    /// The reason as Python prints the tuple.
    pub fn repr(&self) -> String {
        use crate::pyvalue::PyValue;
        PyValue::Tuple(vec![
            PyValue::Int(self.size as i64),
            PyValue::Int(self.pos as i64),
            PyValue::Int(self.ino as i64),
            PyValue::Int(self.old_ino as i64),
            PyValue::str(self.new_hash.clone()),
            PyValue::str(self.old_hash.clone()),
        ])
        .repr()
    }
}

/// An open log file being followed.
pub struct Container {
    file: File,
    dev: u64,
    ino: u64,
    hash: String,
    /// Length of the first line when it was last hashed (0: not complete).
    first_len: usize,
    hashed_at: Instant,
    /// Offset of the first byte not yet delivered as part of a line.
    pos: u64,
    /// Bytes of the file from `pos + start` on, read but not yet delivered
    /// (an incomplete last line, or lines left over by the read budget).
    buf: Vec<u8>,
    start: usize,
}

impl Container {
    /// Opens `path`, hashing its first line; `tail` starts at its end.
    pub fn open(path: &str, tail: bool) -> io::Result<Container> {
        let file = File::open(path)?;
        let meta = file.metadata()?;
        if meta.is_dir() {
            return Err(io::Error::from_raw_os_error(libc::EISDIR));
        }
        let (hash, first_len) = first_line_hash(&file)?;
        let pos = if tail { meta.len() } else { 0 };
        Ok(Container {
            file,
            dev: meta.dev(),
            ino: meta.ino(),
            hash,
            first_len,
            hashed_at: Instant::now(),
            pos,
            buf: Vec::new(),
            start: 0,
        })
    }

    pub fn file(&self) -> &File {
        &self.file
    }

    pub fn identity(&self) -> (u64, u64) {
        (self.dev, self.ino)
    }

    pub fn hash(&self) -> &str {
        &self.hash
    }

    pub fn pos(&self) -> u64 {
        self.pos
    }

    /// Moves the read position (a DB resume, the initial seek); buffered
    /// bytes are dropped.
    pub fn set_pos(&mut self, pos: u64) {
        self.pos = pos;
        self.buf.clear();
        self.start = 0;
    }

    /// The current size of the open file.
    pub fn size(&self) -> io::Result<u64> {
        Ok(self.file.metadata()?.len())
    }

    /// Whether the open file holds bytes not yet looked at.
    pub fn has_unread(&self) -> bool {
        self.size()
            .is_ok_and(|s| s > self.pos + (self.buf.len() - self.start) as u64)
    }

    /// fail2ban's rotation test for a file whose inode did not change: a
    /// size below the position (truncation, copytruncate) or a changed
    /// first-line hash (a file rewritten in place). On rotation the
    /// position returns to 0 and the reason is returned.
    pub fn check_in_place(&mut self) -> io::Result<Option<Rotation>> {
        let size = self.size()?;
        let shrunk = size < self.pos;
        let rehash = shrunk
            || self.hash.is_empty()
            || (self.first_len > 0 && self.first_len <= CHEAP_FIRST_LINE)
            || self.hashed_at.elapsed() >= HASH_RECHECK;
        if !rehash {
            return Ok(None);
        }
        let (hash, first_len) = first_line_hash(&self.file)?;
        self.first_len = first_len;
        if !hash.is_empty() {
            self.hashed_at = Instant::now();
        }
        if !shrunk && hash == self.hash {
            return Ok(None);
        }
        if !shrunk && self.hash.is_empty() {
            // the first line was not complete before: nothing was rotated
            self.hash = hash;
            return Ok(None);
        }
        let rot = Rotation {
            size,
            pos: self.pos,
            ino: self.ino,
            old_ino: self.ino,
            new_hash: hash.clone(),
            old_hash: std::mem::replace(&mut self.hash, hash),
        };
        self.set_pos(0);
        Ok(Some(rot))
    }

    /// The rotation record for this container replacing `old` (the path
    /// now names another file).
    pub fn replacing(&self, old: &Container) -> Rotation {
        Rotation {
            size: self.size().unwrap_or(0),
            pos: old.pos,
            ino: self.ino,
            old_ino: old.ino,
            new_hash: self.hash.clone(),
            old_hash: old.hash.clone(),
        }
    }

    /// Reads complete lines from the position on and hands each one (with
    /// its `\n`) to `each`, until the end of the file or until more than
    /// `budget` bytes were delivered. Returns whether the end of the data
    /// was reached; an incomplete last line stays unread until its `\n`
    /// arrives.
    pub fn read_lines(&mut self, budget: u64, each: &mut dyn FnMut(&[u8])) -> io::Result<bool> {
        let mut delivered = 0u64;
        let mut scanned = 0usize;
        loop {
            let pending = &self.buf[self.start..];
            if let Some(i) = memchr::memchr(b'\n', &pending[scanned..]) {
                let end = scanned + i + 1;
                each(&pending[..end]);
                self.start += end;
                self.pos += end as u64;
                delivered += end as u64;
                scanned = 0;
                if delivered > budget {
                    return Ok(false);
                }
                continue;
            }
            scanned = pending.len();
            if self.start > 0 {
                self.buf.drain(..self.start);
                self.start = 0;
            }
            let have = self.buf.len();
            self.buf.resize(have + CHUNK, 0);
            let n = read_at_retry(&self.file, &mut self.buf[have..], self.pos + have as u64);
            let n = match n {
                Ok(n) => n,
                Err(e) => {
                    self.buf.truncate(have);
                    return Err(e);
                }
            };
            self.buf.truncate(have + n);
            if n == 0 {
                if self.buf.is_empty() {
                    self.buf = Vec::new();
                }
                return Ok(true);
            }
        }
    }
}

fn read_at_retry(file: &File, buf: &mut [u8], off: u64) -> io::Result<usize> {
    loop {
        match file.read_at(buf, off) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            r => return r,
        }
    }
}

/// Reads one line from `off` on: its bytes up to and including `\n`, or
/// up to the end of the file; empty at the end of the file.
pub fn read_line_at(file: &File, off: u64) -> io::Result<Vec<u8>> {
    let mut line = Vec::new();
    let mut chunk = vec![0u8; 8192];
    loop {
        let n = read_at_retry(file, &mut chunk, off + line.len() as u64)?;
        if n == 0 {
            return Ok(line);
        }
        if let Some(i) = memchr::memchr(b'\n', &chunk[..n]) {
            line.extend_from_slice(&chunk[..=i]);
            return Ok(line);
        }
        line.extend_from_slice(&chunk[..n]);
        if chunk.len() < CHUNK {
            chunk.resize(chunk.len() * 2, 0);
        }
    }
}

/// fail2ban's first-line hash: the SHA-1 (hex) of the first line with its
/// terminator, or `""` while that line is not complete. Also returns the
/// line's length (0 when not complete).
pub fn first_line_hash(file: &File) -> io::Result<(String, usize)> {
    let line = read_line_at(file, 0)?;
    if !matches!(line.last(), Some(b'\n' | b'\r')) {
        return Ok((String::new(), 0));
    }
    let digest = Sha1::digest(&line);
    let mut hex = String::with_capacity(40);
    for b in digest.iter() {
        hex.push_str(&format!("{b:02x}"));
    }
    Ok((hex, line.len()))
}
