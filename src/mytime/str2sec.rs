//! fail2ban's time expressions (`MyTime.str2seconds`): `1h 30m`, `1d12h`,
//! `1year-6mo`, `2*1h` → seconds.
//!
//! Python rewrites the text with regular expressions (units become
//! `*<seconds>`, juxtaposed numbers are added) and hands the result to
//! `eval`.  The rewriting is done here with the same patterns through
//! [`crate::regex::PyRegex`] (Python `re` semantics, so `\b`, the
//! look-behinds and the case-insensitive alternations behave alike); the
//! `eval` is a small evaluator of Python's numeric expressions (integers,
//! floats, `+ - * / // % **`, unary signs, parentheses and tuples) that
//! reproduces Python's results (`int` stays `int`, `/` gives a `float`)
//! and its common error messages (`name 'x' is not defined`,
//! `invalid syntax (<string>, line 1)`, `division by zero` ...).  Integers
//! beyond 128 bits are refused instead of growing without bound.

use crate::pyvalue::PyValue;
use crate::regex::PyRegex;
use std::sync::LazyLock;

/// The unit words and their factors, in Python's replacement order.
const UNITS: [(&str, &str); 7] = [
    ("days?|da|dd?", "*86400"),
    ("weeks?|wee?|ww?", "*604800"),
    ("months?|mon?", "*2629800.0"),
    ("years?|yea?|yy?", "*31557600.0"),
    ("seconds?|sec?|ss?", "*1"),
    ("minutes?|min?|mm?", "*60"),
    ("hours?|hou?|hh?", "*3600"),
];

/// The patterns of [`str2seconds`], compiled once: a digit after a letter,
/// each of [`UNITS`], then digits separated by blanks.
static PATTERNS: LazyLock<Vec<PyRegex>> = LazyLock::new(|| {
    let mut patterns = vec![r"(?i)(?<=[a-z])(\d)".to_string()];
    patterns.extend(
        UNITS
            .iter()
            .map(|(units, _)| format!(r"(?i)(?<=[\d\s])({units})\b")),
    );
    patterns.push(r"(\d)\s+(\d)".to_string());
    patterns
        .iter()
        .map(|p| PyRegex::new(p).expect("time expression pattern"))
        .collect()
});

/// Python's `re.sub(pattern, repl, text)` where `repl` may refer to
/// groups 1 and 2 as `\1`, `\2`.
fn sub(re: &PyRegex, repl: &str, text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 16);
    let mut last = 0;
    let mut pos = 0;
    while pos <= text.len() {
        let Some(caps) = re.search_range(text, pos, text.len()) else {
            break;
        };
        let (start, end) = caps.span();
        out.push_str(&text[last..start]);
        let mut chars = repl.chars().peekable();
        while let Some(c) = chars.next() {
            match (c, chars.peek()) {
                ('\\', Some(d @ ('1' | '2'))) => {
                    let g = if *d == '1' { 1 } else { 2 };
                    if let Some((a, b)) = caps.get(g) {
                        out.push_str(&text[a..b]);
                    }
                    chars.next();
                }
                _ => out.push(c),
            }
        }
        last = end;
        pos = if end > start {
            end
        } else {
            end + text[end..].chars().next().map_or(1, char::len_utf8)
        };
    }
    out.push_str(&text[last.min(text.len())..]);
    out
}

/// `MyTime.str2seconds`: the value of a time expression (an `int` or a
/// `float`, or whatever else the expression computes, such as a tuple), or
/// the message of the exception Python raises.
pub fn str2seconds(value: &str) -> Result<PyValue, String> {
    let re = &*PATTERNS;
    let mut v = sub(&re[0], r" \1", value);
    for (i, (_, factor)) in UNITS.iter().enumerate() {
        v = sub(&re[i + 1], factor, &v);
    }
    let v = sub(&re[UNITS.len() + 1], r"\1+\2", &v);
    eval(&v)
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Int(i128),
    Float(f64),
    Name(String),
    Op(&'static str),
    Open,
    Close,
    Comma,
}

const SYNTAX: &str = "invalid syntax (<string>, line 1)";

fn tokenize(s: &str) -> Result<Vec<Tok>, String> {
    let b = s.as_bytes();
    let mut toks = Vec::new();
    let mut i = 0;
    let mut depth = 0i32;
    while i < b.len() {
        let c = b[i];
        if c.is_ascii_whitespace() {
            i += 1;
            continue;
        }
        if c.is_ascii_digit() || (c == b'.' && b.get(i + 1).is_some_and(u8::is_ascii_digit)) {
            let start = i;
            let mut float = false;
            while i < b.len() && (b[i].is_ascii_digit() || b[i] == b'_') {
                i += 1;
            }
            if i < b.len() && b[i] == b'.' {
                float = true;
                i += 1;
                while i < b.len() && (b[i].is_ascii_digit() || b[i] == b'_') {
                    i += 1;
                }
            }
            if i < b.len() && (b[i] == b'e' || b[i] == b'E') {
                let mut j = i + 1;
                if j < b.len() && (b[j] == b'+' || b[j] == b'-') {
                    j += 1;
                }
                if j < b.len() && b[j].is_ascii_digit() {
                    float = true;
                    i = j;
                    while i < b.len() && (b[i].is_ascii_digit() || b[i] == b'_') {
                        i += 1;
                    }
                } else {
                    return Err("invalid decimal literal (<string>, line 1)".into());
                }
            }
            if i < b.len() && (b[i].is_ascii_alphabetic() || b[i] == b'_') {
                return Err("invalid decimal literal (<string>, line 1)".into());
            }
            let text = &s[start..i];
            if text.ends_with('_') || text.contains("__") || text.contains("_.") {
                return Err("invalid decimal literal (<string>, line 1)".into());
            }
            let clean: String = text.chars().filter(|&c| c != '_').collect();
            if float {
                toks.push(Tok::Float(clean.parse().map_err(|_| SYNTAX.to_string())?));
            } else {
                if clean.len() > 1 && clean.starts_with('0') && clean.bytes().any(|d| d != b'0') {
                    return Err(
                        "leading zeros in decimal integer literals are not permitted; \
                                use an 0o prefix for octal integers (<string>, line 1)"
                            .into(),
                    );
                }
                toks.push(Tok::Int(clean.parse().map_err(|_| {
                    "integer too large for a time expression".to_string()
                })?));
            }
            continue;
        }
        if c.is_ascii_alphabetic() || c == b'_' || c >= 0x80 {
            let start = i;
            while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_' || b[i] >= 0x80) {
                i += 1;
            }
            toks.push(Tok::Name(s[start..i].to_string()));
            continue;
        }
        let two = s.get(i..i + 2);
        let (tok, n) = match (c, two) {
            (_, Some("**")) => (Tok::Op("**"), 2),
            (_, Some("//")) => (Tok::Op("//"), 2),
            (b'+', _) => (Tok::Op("+"), 1),
            (b'-', _) => (Tok::Op("-"), 1),
            (b'*', _) => (Tok::Op("*"), 1),
            (b'/', _) => (Tok::Op("/"), 1),
            (b'%', _) => (Tok::Op("%"), 1),
            (b'~', _) => (Tok::Op("~"), 1),
            (b'(', _) => {
                depth += 1;
                (Tok::Open, 1)
            }
            (b')', _) => {
                depth -= 1;
                if depth < 0 {
                    return Err("unmatched ')' (<string>, line 1)".into());
                }
                (Tok::Close, 1)
            }
            (b',', _) => (Tok::Comma, 1),
            _ => return Err(SYNTAX.into()),
        };
        toks.push(tok);
        i += n;
    }
    if depth > 0 {
        return Err("'(' was never closed (<string>, line 1)".into());
    }
    Ok(toks)
}

/// The parsed expression.
#[derive(Debug)]
enum Expr {
    Int(i128),
    Float(f64),
    Name(String),
    Tuple(Vec<Expr>),
    Unary(&'static str, Box<Expr>),
    Binary(&'static str, Box<Expr>, Box<Expr>),
}

struct Parser {
    toks: Vec<Tok>,
    pos: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.pos)
    }

    fn eat_op(&mut self, ops: &[&str]) -> Option<&'static str> {
        if let Some(Tok::Op(o)) = self.peek()
            && ops.contains(o)
        {
            let o = *o;
            self.pos += 1;
            return Some(o);
        }
        None
    }

    /// `expr (',' expr)* [',']`: a tuple when there is a comma.
    fn tuple(&mut self) -> Result<Expr, String> {
        let first = self.sum()?;
        if self.peek() != Some(&Tok::Comma) {
            return Ok(first);
        }
        let mut items = vec![first];
        while self.peek() == Some(&Tok::Comma) {
            self.pos += 1;
            match self.peek() {
                None | Some(Tok::Close) => break,
                _ => items.push(self.sum()?),
            }
        }
        Ok(Expr::Tuple(items))
    }

    fn sum(&mut self) -> Result<Expr, String> {
        let mut e = self.term()?;
        while let Some(op) = self.eat_op(&["+", "-"]) {
            e = Expr::Binary(op, Box::new(e), Box::new(self.term()?));
        }
        Ok(e)
    }

    fn term(&mut self) -> Result<Expr, String> {
        let mut e = self.unary()?;
        while let Some(op) = self.eat_op(&["*", "/", "//", "%"]) {
            e = Expr::Binary(op, Box::new(e), Box::new(self.unary()?));
        }
        Ok(e)
    }

    fn unary(&mut self) -> Result<Expr, String> {
        if let Some(op) = self.eat_op(&["+", "-", "~"]) {
            return Ok(Expr::Unary(op, Box::new(self.unary()?)));
        }
        self.power()
    }

    fn power(&mut self) -> Result<Expr, String> {
        let base = self.atom()?;
        if self.eat_op(&["**"]).is_some() {
            return Ok(Expr::Binary("**", Box::new(base), Box::new(self.unary()?)));
        }
        Ok(base)
    }

    fn atom(&mut self) -> Result<Expr, String> {
        let tok = self.peek().cloned().ok_or_else(|| SYNTAX.to_string())?;
        self.pos += 1;
        match tok {
            Tok::Int(i) => Ok(Expr::Int(i)),
            Tok::Float(f) => Ok(Expr::Float(f)),
            Tok::Name(n) => Ok(Expr::Name(n)),
            Tok::Open => {
                if self.peek() == Some(&Tok::Close) {
                    self.pos += 1;
                    return Ok(Expr::Tuple(Vec::new()));
                }
                let e = self.tuple()?;
                if self.peek() != Some(&Tok::Close) {
                    return Err(SYNTAX.into());
                }
                self.pos += 1;
                Ok(e)
            }
            _ => Err(SYNTAX.into()),
        }
    }
}

/// A value during evaluation.
#[derive(Debug, Clone)]
enum Val {
    Int(i128),
    Float(f64),
    Tuple(Vec<Val>),
}

impl Val {
    fn type_name(&self) -> &'static str {
        match self {
            Val::Int(_) => "int",
            Val::Float(_) => "float",
            Val::Tuple(_) => "tuple",
        }
    }

    fn to_py(&self) -> Result<PyValue, String> {
        Ok(match self {
            Val::Int(i) => PyValue::Int(
                i64::try_from(*i).map_err(|_| "integer too large for a time expression")?,
            ),
            Val::Float(f) => PyValue::Float(*f),
            Val::Tuple(items) => {
                PyValue::Tuple(items.iter().map(Val::to_py).collect::<Result<_, _>>()?)
            }
        })
    }
}

fn eval(text: &str) -> Result<PyValue, String> {
    let toks = tokenize(text)?;
    if toks.is_empty() {
        return Err("invalid syntax (<string>, line 0)".into());
    }
    let mut p = Parser { toks, pos: 0 };
    let e = p.tuple()?;
    if p.pos != p.toks.len() {
        return Err(SYNTAX.into());
    }
    compute(&e)?.to_py()
}

fn overflow() -> String {
    "integer too large for a time expression".to_string()
}

fn compute(e: &Expr) -> Result<Val, String> {
    match e {
        Expr::Int(i) => Ok(Val::Int(*i)),
        Expr::Float(f) => Ok(Val::Float(*f)),
        Expr::Name(n) => Err(format!("name '{n}' is not defined")),
        Expr::Tuple(items) => Ok(Val::Tuple(
            items.iter().map(compute).collect::<Result<_, _>>()?,
        )),
        Expr::Unary(op, a) => match (*op, compute(a)?) {
            ("+", v @ (Val::Int(_) | Val::Float(_))) => Ok(v),
            ("-", Val::Int(i)) => Ok(Val::Int(-i)),
            ("-", Val::Float(f)) => Ok(Val::Float(-f)),
            ("~", Val::Int(i)) => Ok(Val::Int(!i)),
            (op, v) => Err(format!(
                "bad operand type for unary {op}: '{}'",
                v.type_name()
            )),
        },
        Expr::Binary(op, a, b) => binary(op, compute(a)?, compute(b)?),
    }
}

fn binary(op: &str, a: Val, b: Val) -> Result<Val, String> {
    match (a, b) {
        (Val::Int(x), Val::Int(y)) => int_op(op, x, y),
        (a @ (Val::Int(_) | Val::Float(_)), b @ (Val::Int(_) | Val::Float(_))) => {
            let f = |v: &Val| match v {
                Val::Int(i) => *i as f64,
                Val::Float(f) => *f,
                Val::Tuple(_) => f64::NAN,
            };
            float_op(op, f(&a), f(&b))
        }
        (a, b) => Err(format!(
            "unsupported operand type(s) for {op}: '{}' and '{}'",
            a.type_name(),
            b.type_name()
        )),
    }
}

fn int_op(op: &str, x: i128, y: i128) -> Result<Val, String> {
    let v = match op {
        "+" => x.checked_add(y),
        "-" => x.checked_sub(y),
        "*" => x.checked_mul(y),
        "/" => {
            if y == 0 {
                return Err("division by zero".into());
            }
            return Ok(Val::Float(x as f64 / y as f64));
        }
        "//" | "%" => {
            if y == 0 {
                return Err(if op == "//" {
                    "integer division or modulo by zero".into()
                } else {
                    "integer modulo by zero".into()
                });
            }
            let (q, r) = (x.div_euclid(y), x.rem_euclid(y));
            // Python floors towards negative infinity.
            let (q, r) = if r != 0 && y < 0 {
                (q - 1, r + y)
            } else {
                (q, r)
            };
            Some(if op == "//" { q } else { r })
        }
        _ => {
            if y < 0 {
                return float_op("**", x as f64, y as f64);
            }
            u32::try_from(y).ok().and_then(|e| x.checked_pow(e))
        }
    };
    v.map(Val::Int).ok_or_else(overflow)
}

fn float_op(op: &str, x: f64, y: f64) -> Result<Val, String> {
    Ok(Val::Float(match op {
        "+" => x + y,
        "-" => x - y,
        "*" => x * y,
        "/" => {
            if y == 0.0 {
                return Err("float division by zero".into());
            }
            x / y
        }
        "//" => {
            if y == 0.0 {
                return Err("float floor division by zero".into());
            }
            (x / y).floor()
        }
        "%" => {
            if y == 0.0 {
                return Err("float modulo".into());
            }
            let r = x % y;
            if r != 0.0 && (r < 0.0) != (y < 0.0) {
                r + y
            } else {
                r
            }
        }
        _ => {
            if x < 0.0 && y.fract() != 0.0 {
                return Err("complex results are not supported".into());
            }
            x.powf(y)
        }
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn show(s: &str) -> String {
        match str2seconds(s) {
            Ok(PyValue::Float(f)) => crate::pyvalue::float_repr(f),
            Ok(v) => v.repr(),
            Err(e) => format!("ERROR: {e}"),
        }
    }

    #[test]
    fn python_results() {
        // Outputs of `fail2ban-client --str2sec <expr>` (1.0.2).
        for (expr, want) in [
            ("1h30m", "5400"),
            ("1mo", "2629800.0"),
            ("1h 30m", "5400"),
            ("-1d", "-86400"),
            ("1d12h", "129600"),
            ("10", "10"),
            ("3.5h", "12600.0"),
            ("1 2", "3"),
            ("1year-6mo", "15778800.0"),
            ("2*1h", "7200"),
            ("1mm", "60"),
            ("5 seconds", "5"),
            ("1wee", "604800"),
            ("1 mon", "2629800.0"),
            ("1h,2", "(3600, 2)"),
            ("1_000", "1000"),
            ("1d 1", "86401"),
            ("1 day", "86400"),
            ("1,5", "(1, 5)"),
            ("2**0.5", "1.4142135623730951"),
            ("", "ERROR: invalid syntax (<string>, line 0)"),
            ("abc", "ERROR: name 'abc' is not defined"),
            ("1 +", "ERROR: invalid syntax (<string>, line 1)"),
            ("(1", "ERROR: '(' was never closed (<string>, line 1)"),
            ("1/0", "ERROR: division by zero"),
            ("1.5.5", "ERROR: invalid syntax (<string>, line 1)"),
            (
                "007",
                "ERROR: leading zeros in decimal integer literals are not permitted; \
                 use an 0o prefix for octal integers (<string>, line 1)",
            ),
            ("1e3", "ERROR: invalid decimal literal (<string>, line 1)"),
            ("abc def", "ERROR: invalid syntax (<string>, line 1)"),
            ("1d+", "ERROR: invalid syntax (<string>, line 1)"),
        ] {
            assert_eq!(show(expr), want, "{expr:?}");
        }
    }

    #[test]
    fn python_arithmetic() {
        for (expr, want) in [
            ("2**3**2", "512"),
            ("-2**2", "-4"),
            ("7//2", "3"),
            ("7//-2", "-4"),
            ("7%-2", "-1"),
            ("-7//-2", "3"),
            ("-7//2", "-4"),
            ("-7%3", "2"),
            ("7.5%2", "1.5"),
            ("1.5e+3", "1500.0"),
            ("2**-1", "0.5"),
            ("+-1", "-1"),
            ("~1", "-2"),
            ("(1)", "1"),
            ("()", "()"),
            ("1//0", "ERROR: integer division or modulo by zero"),
            ("1%0", "ERROR: integer modulo by zero"),
            ("1.0//0", "ERROR: float floor division by zero"),
            ("-(1,)", "ERROR: bad operand type for unary -: 'tuple'"),
        ] {
            assert_eq!(show(expr), want, "{expr:?}");
        }
    }
}
