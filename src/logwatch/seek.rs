//! The first read of a `head` log starts at the first line dated at or
//! after `now - findtime`, found by bisection over the file (fail2ban's
//! `FileFilter.seekToTime`), so that a restart does not re-read a whole
//! log. Ported step by step, quirks included, because where it lands
//! decides which old lines the jail sees again.

use super::container::read_line_at;
use std::fs::File;
use std::io;

/// A read cursor with the moves fail2ban's seek uses.
struct Cursor<'a> {
    file: &'a File,
    pos: u64,
}

impl Cursor<'_> {
    /// Goes to `off`; unless `off` is 0 or `end_line` is false, on to the
    /// start of the next line. Returns the position reached.
    fn seek(&mut self, off: u64, end_line: bool) -> io::Result<u64> {
        self.pos = off;
        if off > 0 && end_line {
            self.read_line()?;
        }
        Ok(self.pos)
    }

    /// The next line's bytes (possibly without `\n` at the end of file);
    /// `None` at the end of the file.
    fn read_line(&mut self) -> io::Result<Option<Vec<u8>>> {
        let line = read_line_at(self.file, self.pos)?;
        if line.is_empty() {
            return Ok(None);
        }
        self.pos += line.len() as u64;
        Ok(Some(line))
    }
}

/// Bisects `file` (of `size` bytes) between `start` and its end for the
/// first line whose time (`time_of` on the decoded line, `None` when it has
/// no date) is at least `date`, never going before `start`; `decode` turns
/// the raw line into text without its terminator. Returns the position
/// reading should start from.
pub fn seek_to_time(
    file: &File,
    size: u64,
    start: u64,
    date: f64,
    decode: &mut dyn FnMut(&[u8]) -> String,
    time_of: &mut dyn FnMut(&str) -> Option<f64>,
) -> io::Result<u64> {
    log::debug!(target: "fail2ban.filter",
        "Seek to find time {} ({}), file size {}",
        crate::pyvalue::float_repr(date),
        crate::mytime::format_local(date, "%Y-%m-%d %H:%M:%S"), size);
    if size == 0 {
        return Ok(start);
    }
    let accuracy = 3;
    let mut cur = Cursor { file, pos: start };
    let mut minp = start;
    let mut maxp = size;
    let mut try_pos = Some(minp);
    let mut last_pos: Option<u64> = None;
    let mut found_time: Option<f64> = None;
    let mut seeks = 0;
    let mut movecntr = accuracy;
    while maxp > minp {
        let mut pos = match try_pos.take() {
            Some(p) => p,
            None => minp + (maxp - minp) / 2,
        };
        // the seek goes on to the start of the next line: step back over a
        // possible CRLF so that a line starting right here is not skipped
        pos = pos.saturating_sub(2);
        pos = cur.seek(pos, true)?;
        let seekpos = pos;
        seeks += 1;
        let mut lines_left = 5;
        let mut dated: Option<f64> = None;
        let mut nextp: Option<u64> = None;
        while let Some(raw) = cur.read_line()? {
            let line = decode(&raw);
            match time_of(&line) {
                Some(t) => dated = Some(t),
                None => {
                    let np = cur.pos;
                    nextp = Some(np);
                    if np > maxp {
                        pos = seekpos;
                        break;
                    }
                    pos = np;
                }
            }
            if dated.is_none() && lines_left > 0 {
                lines_left -= 1;
                continue;
            }
            break;
        }
        if let Some(t) = dated {
            if t >= date {
                if found_time.is_none_or(|f| t <= f) {
                    found_time = Some(t);
                }
                if pos == maxp {
                    pos = seekpos;
                }
                if pos < maxp {
                    maxp = pos;
                }
            } else {
                if found_time.is_none_or(|f| t >= f) {
                    found_time = Some(t);
                }
                pos = nextp.unwrap_or(cur.pos);
                if pos > minp {
                    minp = pos;
                }
            }
        }
        if last_pos == Some(pos) {
            movecntr -= 1;
            if movecntr <= 0 {
                break;
            }
            // a long stretch without dates, or the end of the search: try
            // the lower bound, which may be the end of the previous line
            if last_pos != Some(minp) {
                last_pos = Some(minp);
                try_pos = Some(minp);
                continue;
            }
            break;
        }
        last_pos = Some(pos);
    }
    log::debug!(target: "fail2ban.filter",
        "Position {} from {}, found time {} ({}) within {} seeks",
        last_pos.map_or("-1".to_string(), |p| p.to_string()), size,
        found_time.map_or("None".to_string(), crate::pyvalue::float_repr),
        found_time.map_or(String::new(), |t| crate::mytime::format_local(t, "%Y-%m-%d %H:%M:%S")),
        seeks);
    Ok(minp)
}
