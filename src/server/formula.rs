//! The Python expressions of `bantime.formula` and `bantime.factor`.
//!
//! fail2ban evaluates them with Python's `eval`, with `ban.Time`,
//! `ban.Count`, `banFactor` and the `math` module in scope.  Written by
//! hand because no crate evaluates Python's expression grammar with its
//! number semantics (integers of arbitrary sign that turn into floats on
//! `/`, `//` flooring, `**`, shifts, `a if c else b`).  The subset covers
//! numeric expressions: literals, those names, `math.e`/`math.pi`,
//! arithmetic, shifts, bitwise, comparisons, `and`/`or`/`not`,
//! conditional expressions and the calls `math.exp`, `math.log`,
//! `math.sqrt`, `math.pow`, `math.floor`, `math.ceil`, `float`, `int`,
//! `abs`, `min`, `max`, `round`.

use crate::actions::Num;

/// Python's truth of a number.
fn truthy(n: Num) -> bool {
    n.as_f64() != 0.0
}

/// The values of the names an expression may use.
#[derive(Debug, Clone, Copy)]
pub struct Scope {
    pub time: Num,
    pub count: Num,
    pub factor: Num,
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Num(Num),
    Name(String),
    Op(&'static str),
}

const OPS: [&str; 26] = [
    "**", "//", "<<", ">>", "<=", ">=", "==", "!=", "+", "-", "*", "/", "%", "(", ")", ",", "<",
    ">", "&", "|", "^", "~", ".", "[", "]", ":",
];

fn tokenize(text: &str) -> Result<Vec<Tok>, String> {
    let b = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if c.is_ascii_whitespace() {
            i += 1;
        } else if c.is_ascii_digit() || (c == b'.' && b.get(i + 1).is_some_and(u8::is_ascii_digit))
        {
            let start = i;
            let mut float = false;
            while i < b.len()
                && (b[i].is_ascii_digit()
                    || b[i] == b'.'
                    || b[i] == b'_'
                    || b[i] == b'e'
                    || b[i] == b'E'
                    || ((b[i] == b'+' || b[i] == b'-') && matches!(b[i - 1], b'e' | b'E')))
            {
                float |= matches!(b[i], b'.' | b'e' | b'E');
                i += 1;
            }
            let lit = text[start..i].replace('_', "");
            let n = if float {
                Num::Float(lit.parse().map_err(|_| format!("invalid number {lit}"))?)
            } else {
                Num::Int(lit.parse().map_err(|_| format!("invalid number {lit}"))?)
            };
            out.push(Tok::Num(n));
        } else if c.is_ascii_alphabetic() || c == b'_' {
            let start = i;
            while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_') {
                i += 1;
            }
            out.push(Tok::Name(text[start..i].to_string()));
        } else {
            let op = OPS
                .iter()
                .find(|o| text[i..].starts_with(**o))
                .ok_or_else(|| format!("invalid syntax at {:?}", &text[i..]))?;
            out.push(Tok::Op(op));
            i += op.len();
        }
    }
    Ok(out)
}

/// A parsed expression.
#[derive(Debug, Clone)]
pub struct Expr {
    node: Node,
}

#[derive(Debug, Clone)]
enum Node {
    Num(Num),
    Var(&'static str),
    Unary(&'static str, Box<Node>),
    Binary(&'static str, Box<Node>, Box<Node>),
    Cond(Box<Node>, Box<Node>, Box<Node>),
    Call(&'static str, Vec<Node>),
}

struct Parser {
    toks: Vec<Tok>,
    pos: usize,
}

const FUNCS: [&str; 12] = [
    "math.exp",
    "math.log",
    "math.sqrt",
    "math.pow",
    "math.floor",
    "math.ceil",
    "float",
    "int",
    "abs",
    "min",
    "max",
    "round",
];

impl Parser {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.pos)
    }

    fn eat_op(&mut self, op: &str) -> bool {
        if matches!(self.peek(), Some(Tok::Op(o)) if *o == op) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn eat_name(&mut self, name: &str) -> bool {
        if matches!(self.peek(), Some(Tok::Name(n)) if n == name) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn expect_op(&mut self, op: &str) -> Result<(), String> {
        if self.eat_op(op) {
            Ok(())
        } else {
            Err(format!("expected {op:?}"))
        }
    }

    fn cond(&mut self) -> Result<Node, String> {
        let a = self.or()?;
        if self.eat_name("if") {
            let c = self.or()?;
            if !self.eat_name("else") {
                return Err("expected 'else'".into());
            }
            let b = self.cond()?;
            return Ok(Node::Cond(Box::new(c), Box::new(a), Box::new(b)));
        }
        Ok(a)
    }

    fn or(&mut self) -> Result<Node, String> {
        let mut a = self.and()?;
        while self.eat_name("or") {
            a = Node::Binary("or", Box::new(a), Box::new(self.and()?));
        }
        Ok(a)
    }

    fn and(&mut self) -> Result<Node, String> {
        let mut a = self.not()?;
        while self.eat_name("and") {
            a = Node::Binary("and", Box::new(a), Box::new(self.not()?));
        }
        Ok(a)
    }

    fn not(&mut self) -> Result<Node, String> {
        if self.eat_name("not") {
            return Ok(Node::Unary("not", Box::new(self.not()?)));
        }
        self.compare()
    }

    fn compare(&mut self) -> Result<Node, String> {
        let mut a = self.binary(0)?;
        for op in ["<=", ">=", "==", "!=", "<", ">"] {
            if self.eat_op(op) {
                a = Node::Binary(op, Box::new(a), Box::new(self.binary(0)?));
                break;
            }
        }
        Ok(a)
    }

    /// Binary operators by precedence level, loosest first.
    fn binary(&mut self, level: usize) -> Result<Node, String> {
        const LEVELS: [&[&str]; 6] = [
            &["|"],
            &["^"],
            &["&"],
            &["<<", ">>"],
            &["+", "-"],
            &["*", "/", "//", "%"],
        ];
        if level == LEVELS.len() {
            return self.unary();
        }
        let mut a = self.binary(level + 1)?;
        'outer: loop {
            for op in LEVELS[level] {
                if self.eat_op(op) {
                    a = Node::Binary(op, Box::new(a), Box::new(self.binary(level + 1)?));
                    continue 'outer;
                }
            }
            return Ok(a);
        }
    }

    fn unary(&mut self) -> Result<Node, String> {
        for op in ["-", "+", "~"] {
            if self.eat_op(op) {
                return Ok(Node::Unary(op, Box::new(self.unary()?)));
            }
        }
        self.power()
    }

    fn power(&mut self) -> Result<Node, String> {
        let a = self.atom()?;
        if self.eat_op("**") {
            return Ok(Node::Binary("**", Box::new(a), Box::new(self.unary()?)));
        }
        Ok(a)
    }

    fn dotted(&mut self, first: String) -> Result<String, String> {
        let mut name = first;
        while self.eat_op(".") {
            match self.peek().cloned() {
                Some(Tok::Name(n)) => {
                    self.pos += 1;
                    name.push('.');
                    name.push_str(&n);
                }
                _ => return Err("expected a name after '.'".into()),
            }
        }
        Ok(name)
    }

    fn atom(&mut self) -> Result<Node, String> {
        match self.peek().cloned() {
            Some(Tok::Num(n)) => {
                self.pos += 1;
                Ok(Node::Num(n))
            }
            Some(Tok::Op("(")) => {
                self.pos += 1;
                let e = self.cond()?;
                self.expect_op(")")?;
                Ok(e)
            }
            Some(Tok::Name(n)) => {
                self.pos += 1;
                let name = self.dotted(n)?;
                if self.eat_op("(") {
                    let f = FUNCS
                        .iter()
                        .find(|f| **f == name)
                        .ok_or_else(|| format!("name '{name}' is not defined"))?;
                    let mut args = Vec::new();
                    if !self.eat_op(")") {
                        loop {
                            args.push(self.cond()?);
                            if self.eat_op(")") {
                                break;
                            }
                            self.expect_op(",")?;
                        }
                    }
                    return Ok(Node::Call(f, args));
                }
                match name.as_str() {
                    "ban.Time" => Ok(Node::Var("time")),
                    "ban.Count" => Ok(Node::Var("count")),
                    "banFactor" => Ok(Node::Var("factor")),
                    "math.e" => Ok(Node::Num(Num::Float(std::f64::consts::E))),
                    "math.pi" => Ok(Node::Num(Num::Float(std::f64::consts::PI))),
                    "True" => Ok(Node::Num(Num::Int(1))),
                    "False" => Ok(Node::Num(Num::Int(0))),
                    _ => Err(format!("name '{name}' is not defined")),
                }
            }
            _ => Err("invalid syntax".into()),
        }
    }
}

impl Expr {
    /// Parses an expression; `Err` with the reason it is not understood.
    pub fn parse(text: &str) -> Result<Expr, String> {
        let mut p = Parser {
            toks: tokenize(text)?,
            pos: 0,
        };
        let node = p.cond()?;
        if p.pos != p.toks.len() {
            return Err("invalid syntax".into());
        }
        Ok(Expr { node })
    }

    /// The value with `scope`; `Err` on a Python error (division by zero,
    /// overflow ...).
    pub fn eval(&self, scope: &Scope) -> Result<Num, String> {
        eval(&self.node, scope)
    }
}

fn float(v: f64) -> Result<Num, String> {
    if v.is_finite() {
        Ok(Num::Float(v))
    } else {
        Err("math range error".into())
    }
}

fn eval(n: &Node, s: &Scope) -> Result<Num, String> {
    use Num::{Float as F, Int as I};
    Ok(match n {
        Node::Num(v) => *v,
        Node::Var(v) => match *v {
            "time" => s.time,
            "count" => s.count,
            _ => s.factor,
        },
        Node::Cond(c, a, b) => {
            if truthy(eval(c, s)?) {
                eval(a, s)?
            } else {
                eval(b, s)?
            }
        }
        Node::Unary(op, a) => {
            let v = eval(a, s)?;
            match (*op, v) {
                ("not", v) => I(i64::from(!truthy(v))),
                ("-", I(i)) => I(i.checked_neg().ok_or("integer overflow")?),
                ("-", F(f)) => F(-f),
                ("~", I(i)) => I(!i),
                ("~", F(_)) => return Err("bad operand type for unary ~: 'float'".into()),
                (_, v) => v,
            }
        }
        Node::Binary("and", a, b) => {
            let x = eval(a, s)?;
            if truthy(x) { eval(b, s)? } else { x }
        }
        Node::Binary("or", a, b) => {
            let x = eval(a, s)?;
            if truthy(x) { x } else { eval(b, s)? }
        }
        Node::Binary(op, a, b) => binary(op, eval(a, s)?, eval(b, s)?)?,
        Node::Call(f, args) => {
            let v: Vec<Num> = args.iter().map(|a| eval(a, s)).collect::<Result<_, _>>()?;
            call(f, &v)?
        }
    })
}

fn binary(op: &str, x: Num, y: Num) -> Result<Num, String> {
    use Num::{Float as F, Int as I};
    let overflow = || "integer overflow".to_string();
    Ok(match (op, x, y) {
        ("+", I(a), I(b)) => I(a.checked_add(b).ok_or_else(overflow)?),
        ("-", I(a), I(b)) => I(a.checked_sub(b).ok_or_else(overflow)?),
        ("*", I(a), I(b)) => I(a.checked_mul(b).ok_or_else(overflow)?),
        ("+", a, b) => float(a.as_f64() + b.as_f64())?,
        ("-", a, b) => float(a.as_f64() - b.as_f64())?,
        ("*", a, b) => float(a.as_f64() * b.as_f64())?,
        ("/", a, b) => {
            if b.as_f64() == 0.0 {
                return Err("division by zero".into());
            }
            float(a.as_f64() / b.as_f64())?
        }
        ("//", I(a), I(b)) => {
            if b == 0 {
                return Err("integer division or modulo by zero".into());
            }
            I(a.div_euclid(b) - i64::from(b < 0 && a.rem_euclid(b) != 0))
        }
        ("%", I(a), I(b)) => {
            if b == 0 {
                return Err("integer division or modulo by zero".into());
            }
            let r = a % b;
            I(if r != 0 && (r < 0) != (b < 0) {
                r + b
            } else {
                r
            })
        }
        ("//", a, b) | ("%", a, b) => {
            let (a, b) = (a.as_f64(), b.as_f64());
            if b == 0.0 {
                return Err("float division by zero".into());
            }
            let q = (a / b).floor();
            if op == "//" { F(q) } else { F(a - q * b) }
        }
        ("**", I(a), I(b)) if b >= 0 => I(u32::try_from(b)
            .ok()
            .and_then(|b| a.checked_pow(b))
            .ok_or_else(overflow)?),
        ("**", a, b) => float(a.as_f64().powf(b.as_f64()))?,
        ("<<", I(a), I(b)) if (0..63).contains(&b) => {
            I(a.checked_mul(1i64 << b).ok_or_else(overflow)?)
        }
        (">>", I(a), I(b)) if b >= 0 => I(a >> b.min(63)),
        ("&", I(a), I(b)) => I(a & b),
        ("|", I(a), I(b)) => I(a | b),
        ("^", I(a), I(b)) => I(a ^ b),
        ("<", a, b) => I(i64::from(a.as_f64() < b.as_f64())),
        ("<=", a, b) => I(i64::from(a.as_f64() <= b.as_f64())),
        (">", a, b) => I(i64::from(a.as_f64() > b.as_f64())),
        (">=", a, b) => I(i64::from(a.as_f64() >= b.as_f64())),
        ("==", a, b) => I(i64::from(a.as_f64() == b.as_f64())),
        ("!=", a, b) => I(i64::from(a.as_f64() != b.as_f64())),
        (op, _, _) => return Err(format!("unsupported operand type(s) for {op}")),
    })
}

fn call(f: &str, v: &[Num]) -> Result<Num, String> {
    use Num::{Float as F, Int as I};
    let one = || -> Result<Num, String> {
        match v {
            [x] => Ok(*x),
            _ => Err(format!(
                "{f}() takes exactly one argument ({} given)",
                v.len()
            )),
        }
    };
    let to_int = |x: f64| -> Result<Num, String> {
        if x.is_finite() && x.abs() < 9.2e18 {
            Ok(I(x as i64))
        } else {
            Err("cannot convert float to integer".into())
        }
    };
    Ok(match f {
        "math.exp" => float(one()?.as_f64().exp())?,
        "math.sqrt" => float(one()?.as_f64().sqrt())?,
        "math.log" => match v {
            [x] if x.as_f64() > 0.0 => F(x.as_f64().ln()),
            [x, b] if x.as_f64() > 0.0 && b.as_f64() > 0.0 => F(x.as_f64().ln() / b.as_f64().ln()),
            _ => return Err("math domain error".into()),
        },
        "math.pow" => match v {
            [x, y] => float(x.as_f64().powf(y.as_f64()))?,
            _ => return Err("pow expected 2 arguments".into()),
        },
        "math.floor" => match one()? {
            I(i) => I(i),
            F(x) => to_int(x.floor())?,
        },
        "math.ceil" => match one()? {
            I(i) => I(i),
            F(x) => to_int(x.ceil())?,
        },
        "float" => F(one()?.as_f64()),
        "int" => match one()? {
            I(i) => I(i),
            F(x) => to_int(x.trunc())?,
        },
        "abs" => match one()? {
            I(i) => I(i.checked_abs().ok_or("integer overflow")?),
            F(x) => F(x.abs()),
        },
        "round" => match v {
            [I(i)] => I(*i),
            [F(x)] => to_int(x.round_ties_even())?,
            _ => return Err("round() with digits is not supported".into()),
        },
        _ => {
            // min / max: the first extreme, as Python's
            let mut it = v.iter().copied();
            let mut best = it.next().ok_or(format!("{f} expected 1 argument, got 0"))?;
            for x in it {
                let better = if f == "min" {
                    x.as_f64() < best.as_f64()
                } else {
                    x.as_f64() > best.as_f64()
                };
                if better {
                    best = x;
                }
            }
            best
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(text: &str, time: i64, count: i64, factor: Num) -> Num {
        Expr::parse(text)
            .unwrap()
            .eval(&Scope {
                time: Num::Int(time),
                count: Num::Int(count),
                factor,
            })
            .unwrap()
    }

    #[test]
    fn default_formula() {
        let f = super::super::increment::DEFAULT_FORMULA;
        assert_eq!(ev(f, 600, 1, Num::Int(1)), Num::Int(1200));
        assert_eq!(ev(f, 600, 30, Num::Int(1)), Num::Int(600 << 20));
        assert_eq!(ev(f, 600, 2, Num::Float(1.5)), Num::Float(3600.0));
    }

    #[test]
    fn python_semantics() {
        assert_eq!(ev("7 // -2", 0, 0, Num::Int(1)), Num::Int(-4));
        assert_eq!(ev("-7 % 3", 0, 0, Num::Int(1)), Num::Int(2));
        assert_eq!(ev("7 / 2", 0, 0, Num::Int(1)), Num::Float(3.5));
        assert_eq!(ev("2 ** 3 ** 2", 0, 0, Num::Int(1)), Num::Int(512));
        assert_eq!(ev("-2 ** 2", 0, 0, Num::Int(1)), Num::Int(-4));
        assert_eq!(
            ev("1 if 0 else 2 if 1 else 3", 0, 0, Num::Int(1)),
            Num::Int(2)
        );
        assert_eq!(ev("max(1, 2.0, 2)", 0, 0, Num::Int(1)), Num::Float(2.0));
        assert_eq!(ev("0 or 5 and 6", 0, 0, Num::Int(1)), Num::Int(6));
        assert!(Expr::parse("__import__('os')").is_err());
        assert!(Expr::parse("ban.Time +").is_err());
        assert!(
            Expr::parse("1/0")
                .unwrap()
                .eval(&Scope {
                    time: Num::Int(0),
                    count: Num::Int(0),
                    factor: Num::Int(1)
                })
                .is_err()
        );
    }

    #[test]
    fn same_values_as_python() {
        let py = "/usr/bin/python3";
        if !std::path::Path::new(py).exists() {
            eprintln!("SKIP: {py} is missing; formulas not compared");
            return;
        }
        let formulas = [
            "ban.Time * math.exp(float(ban.Count+1)*banFactor)/math.exp(1*banFactor)",
            "ban.Time * (1<<(ban.Count if ban.Count<20 else 20)) * banFactor",
            "ban.Time + ban.Count ** 2 * 60 // 7 - (ban.Count % 3)",
            "max(ban.Time, min(86400, int(round(ban.Time * math.log(ban.Count + 1, 2) * banFactor))))",
            "math.pow(2, ban.Count) * ban.Time if ban.Count > 2 and not ban.Count == 5 else ban.Time",
        ];
        let mut code = String::from("import math\nclass B: pass\nres = []\n");
        for f in formulas {
            code.push_str(&format!(
                "for c in range(0, 9):\n ban = B(); ban.Time = 600; ban.Count = c; banFactor = 1.5\n res.append(repr({f}))\n"
            ));
        }
        code.push_str("print('\\n'.join(res))\n");
        let out = std::process::Command::new(py)
            .arg("-c")
            .arg(&code)
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        let theirs: Vec<String> = String::from_utf8(out.stdout)
            .unwrap()
            .lines()
            .map(str::to_string)
            .collect();
        let mut ours = Vec::new();
        for f in formulas {
            for c in 0..9 {
                ours.push(ev(f, 600, c, Num::Float(1.5)).to_string());
            }
        }
        assert_eq!(ours, theirs);
    }
}
