//! fail2ban's time expressions (`MyTime.str2seconds`), as the `timeout`
//! property of an action takes them: `60`, `1m`, `1h 30m`, `1d12h`,
//! `(1+2)*3m`, `1y-6mo`.
//!
//! fail2ban rewrites the text into a Python expression (a unit word after
//! a number becomes `*<seconds>`, numbers separated by blanks are added)
//! and hands it to `eval`.  The rewrite is reproduced here and the result
//! is evaluated by a small arithmetic parser with Python's number rules
//! (integers stay integers, `/` gives a float, `//` and `%` floor); other
//! Python expressions are not accepted.

use super::Num;

/// Unit words (case-insensitive) and the multiplier text fail2ban puts in
/// their place.
const UNITS: [(&[&str], &str); 7] = [
    (&["days", "day", "da", "dd", "d"], "86400"),
    (&["weeks", "week", "wee", "we", "ww", "w"], "604800"),
    (&["months", "month", "mon", "mo"], "2629800.0"),
    (&["years", "year", "yea", "ye", "yy", "y"], "31557600.0"),
    (&["seconds", "second", "sec", "se", "ss", "s"], "1"),
    (&["minutes", "minute", "min", "mi", "mm", "m"], "60"),
    (&["hours", "hour", "hou", "ho", "hh", "h"], "3600"),
];

/// The number of seconds `text` stands for.
pub fn str2seconds(text: &str) -> Result<Num, String> {
    let expr = rewrite(text);
    let mut p = Parser {
        s: expr.as_bytes(),
        i: 0,
    };
    p.skip_ws();
    let v = p.expr()?;
    p.skip_ws();
    if p.i != p.s.len() {
        return Err(format!("invalid time expression: {text:?}"));
    }
    Ok(v)
}

fn is_word(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// The text as the expression fail2ban evaluates.
fn rewrite(text: &str) -> String {
    // A digit right after a letter starts a new number: `1d12h` → `1d 12h`.
    let mut spaced = String::with_capacity(text.len() + 4);
    let mut prev = None;
    for c in text.chars() {
        if c.is_ascii_digit() && prev.is_some_and(|p: char| p.is_ascii_alphabetic()) {
            spaced.push(' ');
        }
        spaced.push(c);
        prev = Some(c);
    }
    // A unit word after a digit or blank becomes a multiplication.
    let chars: Vec<char> = spaced.chars().collect();
    let mut out = String::with_capacity(spaced.len() + 8);
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let starts_word = c.is_ascii_alphabetic()
            && i > 0
            && (chars[i - 1].is_ascii_digit() || chars[i - 1].is_whitespace());
        if starts_word {
            let mut j = i;
            while j < chars.len() && chars[j].is_ascii_alphabetic() {
                j += 1;
            }
            let word: String = chars[i..j].iter().collect::<String>().to_ascii_lowercase();
            let ends_word = j == chars.len() || !is_word(chars[j]);
            let unit = UNITS
                .iter()
                .find(|(words, _)| words.contains(&word.as_str()));
            if let (true, Some((_, secs))) = (ends_word, unit) {
                out.push('*');
                out.push_str(secs);
                i = j;
                continue;
            }
        }
        out.push(c);
        i += 1;
    }
    // Numbers separated by blanks are added (`1h 30m` → `1*3600+30*60`).
    let chars: Vec<char> = out.chars().collect();
    let mut res = String::with_capacity(out.len());
    let mut i = 0;
    while i < chars.len() {
        if chars[i].is_ascii_digit() {
            let mut j = i + 1;
            while j < chars.len() && chars[j].is_whitespace() {
                j += 1;
            }
            if j > i + 1 && j < chars.len() && chars[j].is_ascii_digit() {
                res.push(chars[i]);
                res.push('+');
                res.push(chars[j]);
                i = j + 1;
                continue;
            }
        }
        res.push(chars[i]);
        i += 1;
    }
    res
}

struct Parser<'a> {
    s: &'a [u8],
    i: usize,
}

impl Parser<'_> {
    fn skip_ws(&mut self) {
        while self.i < self.s.len() && self.s[self.i].is_ascii_whitespace() {
            self.i += 1;
        }
    }

    fn eat(&mut self, tok: &str) -> bool {
        self.skip_ws();
        if self.s[self.i..].starts_with(tok.as_bytes()) {
            self.i += tok.len();
            true
        } else {
            false
        }
    }

    fn err(&self) -> String {
        format!(
            "invalid time expression: {:?}",
            String::from_utf8_lossy(self.s)
        )
    }

    fn expr(&mut self) -> Result<Num, String> {
        let mut v = self.term()?;
        loop {
            if self.eat("+") {
                v = arith(v, self.term()?, Op::Add)?;
            } else if self.eat("-") {
                v = arith(v, self.term()?, Op::Sub)?;
            } else {
                return Ok(v);
            }
        }
    }

    fn term(&mut self) -> Result<Num, String> {
        let mut v = self.unary()?;
        loop {
            let op = if self.eat("**") {
                // `**` binds tighter: handled by `unary`; give it back.
                self.i -= 2;
                return Ok(v);
            } else if self.eat("*") {
                Op::Mul
            } else if self.eat("//") {
                Op::FloorDiv
            } else if self.eat("/") {
                Op::Div
            } else if self.eat("%") {
                Op::Mod
            } else {
                return Ok(v);
            };
            v = arith(v, self.unary()?, op)?;
        }
    }

    fn unary(&mut self) -> Result<Num, String> {
        if self.eat("-") {
            return arith(Num::Int(0), self.unary()?, Op::Sub);
        }
        if self.eat("+") {
            return self.unary();
        }
        let base = self.atom()?;
        if self.eat("**") {
            let exp = self.unary()?;
            return arith(base, exp, Op::Pow);
        }
        Ok(base)
    }

    fn atom(&mut self) -> Result<Num, String> {
        if self.eat("(") {
            let v = self.expr()?;
            if !self.eat(")") {
                return Err(self.err());
            }
            return Ok(v);
        }
        self.skip_ws();
        self.number()
    }

    /// A Python number literal (`12`, `1_000`, `0.5`, `.5`, `1.`, `1e+5`).
    fn number(&mut self) -> Result<Num, String> {
        let start = self.i;
        let digits = |p: &mut Parser| {
            let from = p.i;
            while p.i < p.s.len()
                && (p.s[p.i].is_ascii_digit()
                    || (p.s[p.i] == b'_'
                        && p.i > from
                        && p.s.get(p.i + 1).is_some_and(u8::is_ascii_digit)))
            {
                p.i += 1;
            }
            p.i > from
        };
        let int_part = digits(self);
        let mut is_float = false;
        if self.s.get(self.i) == Some(&b'.') {
            self.i += 1;
            let frac = digits(self);
            if !int_part && !frac {
                return Err(self.err());
            }
            is_float = true;
        } else if !int_part {
            return Err(self.err());
        }
        if matches!(self.s.get(self.i), Some(b'e' | b'E')) {
            let save = self.i;
            self.i += 1;
            if matches!(self.s.get(self.i), Some(b'+' | b'-')) {
                self.i += 1;
            }
            if digits(self) {
                is_float = true;
            } else {
                self.i = save;
            }
        }
        if self
            .s
            .get(self.i)
            .is_some_and(|c| c.is_ascii_alphanumeric() || *c == b'_')
        {
            return Err(self.err());
        }
        let text: String = String::from_utf8_lossy(&self.s[start..self.i]).replace('_', "");
        if is_float {
            return text.parse().map(Num::Float).map_err(|_| self.err());
        }
        if text.len() > 1 && text.starts_with('0') && text.bytes().any(|b| b != b'0') {
            return Err(self.err());
        }
        text.parse().map(Num::Int).map_err(|_| self.err())
    }
}

#[derive(Clone, Copy)]
enum Op {
    Add,
    Sub,
    Mul,
    Div,
    FloorDiv,
    Mod,
    Pow,
}

/// Python's arithmetic on ints and floats.
fn arith(a: Num, b: Num, op: Op) -> Result<Num, String> {
    let overflow = || "time expression out of range".to_string();
    let zero = || "division by zero".to_string();
    if let (Num::Int(x), Num::Int(y)) = (a, b) {
        return match op {
            Op::Add => x.checked_add(y).map(Num::Int).ok_or_else(overflow),
            Op::Sub => x.checked_sub(y).map(Num::Int).ok_or_else(overflow),
            Op::Mul => x.checked_mul(y).map(Num::Int).ok_or_else(overflow),
            Op::Div if y == 0 => Err(zero()),
            Op::Div => Ok(Num::Float(x as f64 / y as f64)),
            Op::FloorDiv | Op::Mod => {
                if y == 0 {
                    return Err(zero());
                }
                let q = x.checked_div(y).ok_or_else(overflow)?;
                let q = if x % y != 0 && ((x < 0) != (y < 0)) {
                    q - 1
                } else {
                    q
                };
                match op {
                    Op::FloorDiv => Ok(Num::Int(q)),
                    _ => Ok(Num::Int(x - y * q)),
                }
            }
            Op::Pow if y < 0 => Ok(Num::Float((x as f64).powf(y as f64))),
            Op::Pow => u32::try_from(y)
                .ok()
                .and_then(|e| x.checked_pow(e))
                .map(Num::Int)
                .ok_or_else(overflow),
        };
    }
    let (x, y) = (a.as_f64(), b.as_f64());
    Ok(Num::Float(match op {
        Op::Add => x + y,
        Op::Sub => x - y,
        Op::Mul => x * y,
        Op::Div | Op::FloorDiv | Op::Mod if y == 0.0 => return Err(zero()),
        Op::Div => x / y,
        Op::FloorDiv => (x / y).floor(),
        Op::Mod => x - y * (x / y).floor(),
        Op::Pow => x.powf(y),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rewrite_follows_fail2ban() {
        assert_eq!(rewrite("1d12h"), "1*86400+12*3600");
        assert_eq!(rewrite("1h 30m"), "1*3600+30*60");
        assert_eq!(rewrite("1dax"), "1dax");
        assert_eq!(rewrite("1 2 3"), "1+2 3");
        assert_eq!(rewrite("1e2"), "1e 2");
    }

    #[test]
    fn python_floor_semantics() {
        assert_eq!(
            arith(Num::Int(-7), Num::Int(2), Op::FloorDiv),
            Ok(Num::Int(-4))
        );
        assert_eq!(arith(Num::Int(-7), Num::Int(2), Op::Mod), Ok(Num::Int(1)));
        assert_eq!(arith(Num::Int(7), Num::Int(-2), Op::Mod), Ok(Num::Int(-1)));
        assert_eq!(
            arith(Num::Int(2), Num::Int(-1), Op::Pow),
            Ok(Num::Float(0.5))
        );
    }
}
