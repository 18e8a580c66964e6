//! Consul's `filter=` expression language for HTTP API reads: parsing an expression into
//! a [`Filter`] and evaluating it against one result row. Pure: no I/O, no state.
//!
//! ```text
//!   or     := and ("or" and)*                  precedence: not > and > or
//!   and    := unary ("and" unary)*
//!   unary  := "not" unary | "(" or ")" | match
//!   match  := sel ("==" | "!=") value  |  sel "is" ["not"] "empty"
//!           | sel ["not"] ("contains" | "matches") value  |  value ["not"] "in" sel
//!   sel    := word ("." word | "[" string "]")*      e.g. Node.Meta["rack"]
//!   value  := "double \"quoted\"" | `raw` | bare word, number or bool
//! ```
//!
//! Rows are the JSON the API returns (PascalCase keys, matched case-sensitively).
//! - `==` compares strings exactly, numbers numerically (the literal is parsed as a number
//!   when the field is one) and bools (`true`/`false`); null, arrays and objects equal no
//!   literal, and a missing field makes `==` false.
//! - `is empty` holds for a missing field, null, `""`, `[]` and `{}`.
//! - `in`/`contains`: on an array, some element `==` the value; on an object, the key is
//!   present; on a string, substring. Anything else: false.
//! - `matches` applies a `regex` crate pattern (compiled at parse time) to string fields.
//! - A key applied to an array of objects applies to each element (`Checks.Status` yields
//!   every check's status) and a positive operator holds if it holds for ANY of them.
//! - Every negated form is the exact negation of its positive form (`!=` is `not ==`,
//!   `not in` is `not (in)`, ...): `Checks.Status != "passing"` means "no check is
//!   passing", and a missing field makes `!=`, `not in` and `not matches` true.
//!
//! Nesting (parentheses and `not`) is limited to [`MAX_DEPTH`] levels.

use std::iter::Peekable;
use std::str::CharIndices;

use regex::{Regex, RegexBuilder};
use serde_json::Value;

/// Deepest nesting of parentheses and `not` that [`parse`] accepts.
pub(crate) const MAX_DEPTH: usize = 64;

/// Words that are never a selector or a bare value.
const RESERVED: &[&str] = &[
    "and", "or", "not", "is", "empty", "in", "contains", "matches", "==", "!=", "=", "!", "(", ")",
    "[", "]",
];

/// Why an expression could not be parsed. Columns are 1-based, counted in characters.
#[derive(Debug, thiserror::Error)]
pub(crate) enum FilterError {
    #[error("filter: empty expression")]
    Empty,
    /// `what` is e.g. `unexpected token "==" (expected a value)` or `unterminated string`.
    #[error("filter: {what} at column {column} in {expr:?}")]
    Syntax {
        what: String,
        column: usize,
        expr: String,
    },
    #[error("filter: nesting deeper than {MAX_DEPTH} levels at column {column} in {expr:?}")]
    TooDeep { column: usize, expr: String },
}

/// A parsed filter expression; cheap to evaluate against many rows.
#[derive(Debug, Clone)]
pub(crate) struct Filter {
    root: Expr,
}

#[derive(Debug, Clone)]
enum Expr {
    And(Vec<Expr>),
    Or(Vec<Expr>),
    Not(Box<Expr>),
    Match {
        path: Vec<String>,
        op: Op,
        negate: bool,
    },
}

#[derive(Debug, Clone)]
enum Op {
    Eq(String),
    Empty,
    Contains(String),
    Matches(Regex),
}

/// Parses `expr` (the `filter=` query value, already URL-decoded).
pub(crate) fn parse(expr: &str) -> Result<Filter, FilterError> {
    let toks = lex(expr)?;
    if toks.is_empty() {
        return Err(FilterError::Empty);
    }
    let mut p = Parser {
        expr,
        toks,
        pos: 0,
        depth: 0,
    };
    let root = p.parse_or()?;
    if p.pos < p.toks.len() {
        return Err(p.unexpected(p.pos, "`and`, `or` or the end"));
    }
    Ok(Filter { root })
}

impl Filter {
    /// Whether `row` (one element of the API response, as JSON) passes the filter.
    pub(crate) fn matches(&self, row: &Value) -> bool {
        self.root.eval(row)
    }
}

fn column(expr: &str, byte: usize) -> usize {
    expr.get(..byte).map_or(0, |s| s.chars().count()) + 1
}

fn syntax(expr: &str, byte: usize, what: impl Into<String>) -> FilterError {
    let (what, column) = (what.into(), column(expr, byte));
    FilterError::Syntax {
        what,
        column,
        expr: expr.into(),
    }
}

// ---- lexer: everything is a quoted string or a word (punctuation and `==` included) ----

#[derive(Debug, Clone)]
enum Tok {
    Str(String),
    Word(String),
}

/// A token and its byte span in the expression.
#[derive(Debug)]
struct Token {
    tok: Tok,
    start: usize,
    end: usize,
}

fn is_word_char(c: char) -> bool {
    !c.is_whitespace() && !matches!(c, '(' | ')' | '[' | ']' | '"' | '`' | '=' | '!')
}

fn lex(expr: &str) -> Result<Vec<Token>, FilterError> {
    let mut out = Vec::new();
    let mut it = expr.char_indices().peekable();
    while let Some((start, c)) = it.next() {
        let tok = match c {
            c if c.is_whitespace() => continue,
            '"' | '`' => Tok::Str(lex_string(expr, c, start, &mut it)?),
            '(' | ')' | '[' | ']' => Tok::Word(c.into()),
            '=' | '!' => {
                let eq = it.next_if(|&(_, n)| n == '=').is_some();
                Tok::Word(if eq { format!("{c}=") } else { c.into() })
            }
            _ => {
                let mut s = String::from(c);
                while let Some((_, n)) = it.next_if(|&(_, n)| is_word_char(n)) {
                    s.push(n);
                }
                Tok::Word(s)
            }
        };
        let end = it.peek().map_or(expr.len(), |&(j, _)| j);
        out.push(Token { tok, start, end });
    }
    Ok(out)
}

/// The rest of a string opened by `quote` at byte `start`: backtick strings are raw,
/// double-quoted ones take JSON-style escapes.
fn lex_string(
    expr: &str,
    quote: char,
    start: usize,
    it: &mut Peekable<CharIndices<'_>>,
) -> Result<String, FilterError> {
    let mut s = String::new();
    loop {
        let Some((at, c)) = it.next() else {
            return Err(syntax(expr, start, "unterminated string"));
        };
        if c == quote {
            return Ok(s);
        }
        if c != '\\' || quote == '`' {
            s.push(c);
            continue;
        }
        let Some((_, e)) = it.next() else { continue }; // reported as unterminated
        let bad = || syntax(expr, at, "invalid escape sequence");
        s.push(match e {
            '"' | '\\' | '/' | '\'' => e,
            'n' => '\n',
            't' => '\t',
            'r' => '\r',
            'b' => '\u{8}',
            'f' => '\u{c}',
            'u' => {
                let hex = |_| it.next_if(|&(_, h)| h.is_ascii_hexdigit()).map(|(_, h)| h);
                let hex: String = (0..4).map_while(hex).collect();
                let code = u32::from_str_radix(&hex, 16)
                    .ok()
                    .filter(|_| hex.len() == 4);
                code.and_then(char::from_u32).ok_or_else(bad)?
            }
            _ => return Err(bad()),
        });
    }
}

// ---- parser: recursive descent, depth-limited ----

struct Parser<'a> {
    expr: &'a str,
    toks: Vec<Token>,
    pos: usize,
    depth: usize,
}

impl Parser<'_> {
    fn tok(&self, ahead: usize) -> Option<&Tok> {
        self.toks.get(self.pos + ahead).map(|t| &t.tok)
    }

    fn start(&self) -> usize {
        self.toks.get(self.pos).map_or(self.expr.len(), |t| t.start)
    }

    fn is_kw(&self, ahead: usize, kw: &str) -> bool {
        matches!(self.tok(ahead), Some(Tok::Word(w)) if w == kw)
    }

    fn eat(&mut self, kw: &str) -> bool {
        let hit = self.is_kw(0, kw);
        self.pos += usize::from(hit);
        hit
    }

    fn want(&mut self, kw: &str, expected: &str) -> Result<(), FilterError> {
        if self.eat(kw) {
            Ok(())
        } else {
            Err(self.unexpected(self.pos, expected))
        }
    }

    /// The error for the token at index `at` (or the end of input) not being `expected`.
    fn unexpected(&self, at: usize, expected: &str) -> FilterError {
        match self.toks.get(at) {
            Some(t) => {
                let token = self.expr.get(t.start..t.end).unwrap_or_default();
                let what = format!("unexpected token {token:?} (expected {expected})");
                syntax(self.expr, t.start, what)
            }
            None => {
                let what = format!("unexpected end of expression (expected {expected})");
                syntax(self.expr, self.expr.len(), what)
            }
        }
    }

    fn enter(&mut self) -> Result<(), FilterError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            let column = column(self.expr, self.start());
            return Err(FilterError::TooDeep {
                column,
                expr: self.expr.into(),
            });
        }
        self.pos += 1;
        Ok(())
    }

    fn parse_or(&mut self) -> Result<Expr, FilterError> {
        let mut items = vec![self.parse_and()?];
        while self.eat("or") {
            items.push(self.parse_and()?);
        }
        Ok(collapse(items, Expr::Or))
    }

    fn parse_and(&mut self) -> Result<Expr, FilterError> {
        let mut items = vec![self.parse_unary()?];
        while self.eat("and") {
            items.push(self.parse_unary()?);
        }
        Ok(collapse(items, Expr::And))
    }

    fn parse_unary(&mut self) -> Result<Expr, FilterError> {
        let inner = if self.is_kw(0, "not") {
            self.enter()?;
            Expr::Not(Box::new(self.parse_unary()?))
        } else if self.is_kw(0, "(") {
            self.enter()?;
            let inner = self.parse_or()?;
            self.want(")", "`)`")?;
            inner
        } else {
            return self.parse_match();
        };
        self.depth -= 1;
        Ok(inner)
    }

    fn parse_match(&mut self) -> Result<Expr, FilterError> {
        let value_first = match self.tok(0) {
            Some(Tok::Str(_)) => true,
            _ => self.is_kw(1, "in") || (self.is_kw(1, "not") && self.is_kw(2, "in")),
        };
        if value_first {
            let value = self.value()?.0;
            let negate = self.eat("not");
            self.want("in", "`in` or `not in` after a value")?;
            let path = self.selector()?;
            return Ok(Expr::Match {
                path,
                op: Op::Contains(value),
                negate,
            });
        }
        let path = self.selector()?;
        let at = self.pos;
        let word = match self.tok(0) {
            Some(Tok::Word(w)) => w.clone(),
            _ => String::new(),
        };
        self.pos += 1;
        let (op, negate) = match word.as_str() {
            "==" | "!=" => (Op::Eq(self.value()?.0), word == "!="),
            "is" => {
                let negate = self.eat("not");
                self.want("empty", "`empty`")?;
                (Op::Empty, negate)
            }
            "contains" => (Op::Contains(self.value()?.0), false),
            "matches" => (self.regex()?, false),
            "not" if self.eat("contains") => (Op::Contains(self.value()?.0), true),
            "not" if self.eat("matches") => (self.regex()?, true),
            _ => return Err(self.unexpected(at, "an operator")),
        };
        Ok(Expr::Match { path, op, negate })
    }

    /// A literal value and the byte offset where it starts.
    fn value(&mut self) -> Result<(String, usize), FilterError> {
        let start = self.start();
        let value = match self.tok(0) {
            Some(Tok::Str(s)) => s.clone(),
            Some(Tok::Word(w)) if !RESERVED.contains(&w.as_str()) => w.clone(),
            _ => return Err(self.unexpected(self.pos, "a value")),
        };
        self.pos += 1;
        Ok((value, start))
    }

    fn regex(&mut self) -> Result<Op, FilterError> {
        let (pattern, at) = self.value()?;
        match RegexBuilder::new(&pattern).size_limit(1 << 20).build() {
            Ok(re) => Ok(Op::Matches(re)),
            Err(e) => {
                // Syntax errors render as several lines ending in "error: <reason>".
                let text = e.to_string();
                let reason = text.lines().map(str::trim).rfind(|l| !l.is_empty());
                let reason = reason.unwrap_or("invalid").trim_start_matches("error: ");
                let what = format!("invalid regular expression {pattern:?}: {reason}");
                Err(syntax(self.expr, at, what))
            }
        }
    }

    fn selector(&mut self) -> Result<Vec<String>, FilterError> {
        let start = self.start();
        let word = match self.tok(0) {
            Some(Tok::Word(w)) if !RESERVED.contains(&w.as_str()) => w.clone(),
            _ => return Err(self.unexpected(self.pos, "a selector")),
        };
        self.pos += 1;
        let mut path = Vec::new();
        let expr = self.expr;
        let bad = |at, word: &str| syntax(expr, at, format!("invalid selector {word:?}"));
        let first_ok = word.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_');
        if !first_ok || !push_segments(&word, &mut path) {
            return Err(bad(start, &word));
        }
        loop {
            if self.eat("[") {
                let Some(Tok::Str(key)) = self.tok(0).cloned() else {
                    return Err(self.unexpected(self.pos, "a quoted key"));
                };
                self.pos += 1;
                self.want("]", "`]`")?;
                path.push(key);
            } else if let Some(Tok::Word(w)) = self.tok(0)
                && let Some(rest) = w.strip_prefix('.')
            {
                if !push_segments(rest, &mut path) {
                    return Err(bad(self.start(), w));
                }
                self.pos += 1;
            } else {
                return Ok(path);
            }
        }
    }
}

fn collapse(mut items: Vec<Expr>, make: fn(Vec<Expr>) -> Expr) -> Expr {
    if items.len() == 1
        && let Some(only) = items.pop()
    {
        return only;
    }
    make(items)
}

/// Appends the `.`-separated parts of `word`; false if one is empty or has a character
/// outside `[A-Za-z0-9_-]`.
fn push_segments(word: &str, path: &mut Vec<String>) -> bool {
    word.split('.').all(|seg| {
        let ok = !seg.is_empty()
            && seg
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
        path.push(seg.into());
        ok
    })
}

// ---- evaluation ----

impl Expr {
    fn eval(&self, row: &Value) -> bool {
        match self {
            Expr::And(items) => items.iter().all(|e| e.eval(row)),
            Expr::Or(items) => items.iter().any(|e| e.eval(row)),
            Expr::Not(inner) => !inner.eval(row),
            Expr::Match { path, op, negate } => {
                let found = resolve(row, path);
                let hit = match op {
                    Op::Eq(lit) => found.iter().any(|v| scalar_eq(v, lit)),
                    Op::Empty => found.is_empty() || found.iter().any(|v| is_empty(v)),
                    Op::Contains(lit) => found.iter().any(|v| contains(v, lit)),
                    Op::Matches(re) => found
                        .iter()
                        .any(|v| v.as_str().is_some_and(|s| re.is_match(s))),
                };
                hit != *negate
            }
        }
    }
}

/// Every value `path` reaches from `row`: a key applied to an array applies to each
/// object in it, so `Checks.Status` yields one value per check; missing keys yield none.
fn resolve<'a>(row: &'a Value, path: &[String]) -> Vec<&'a Value> {
    let mut cur = vec![row];
    for seg in path {
        let mut next = Vec::new();
        for v in cur {
            match v {
                Value::Object(map) => next.extend(map.get(seg)),
                Value::Array(items) => {
                    next.extend(items.iter().filter_map(|i| i.get(seg.as_str())))
                }
                _ => {}
            }
        }
        cur = next;
    }
    cur
}

fn scalar_eq(v: &Value, lit: &str) -> bool {
    match v {
        Value::String(s) => s == lit,
        Value::Bool(b) => lit.parse::<bool>() == Ok(*b),
        Value::Number(n) => {
            if let (Some(a), Ok(b)) = (n.as_i64(), lit.parse::<i64>()) {
                a == b
            } else if let (Some(a), Ok(b)) = (n.as_u64(), lit.parse::<u64>()) {
                a == b
            } else {
                matches!((n.as_f64(), lit.parse::<f64>()), (Some(a), Ok(b)) if a == b)
            }
        }
        Value::Null | Value::Array(_) | Value::Object(_) => false,
    }
}

fn is_empty(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::String(s) => s.is_empty(),
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.is_empty(),
        Value::Bool(_) | Value::Number(_) => false,
    }
}

fn contains(v: &Value, lit: &str) -> bool {
    match v {
        Value::Array(items) => items.iter().any(|i| scalar_eq(i, lit)),
        Value::Object(map) => map.contains_key(lit),
        Value::String(s) => s.contains(lit),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn catalog_row() -> Value {
        json!({
            "Node": "n1", "Address": "10.0.0.1", "NodeMeta": {"rack": "r1"},
            "ServiceName": "web", "ServiceTags": ["v1", "primary"], "ServiceAddress": "",
            "ServiceMeta": {"version": "1.2", "a.b": "dotted", "q": "say \"hi\"", "raw": "a\\b"},
            "ServicePort": 8080, "ServiceWeight": 1.5, "ServiceEnableTagOverride": false,
            "ServiceProxy": null, "ServiceTaggedAddresses": {}, "ServiceChecks": [],
        })
    }

    fn health_row() -> Value {
        json!({
            "Node": {"Node": "n1", "Meta": {"rack": "r1", "zone-id": "z"}},
            "Service": {"Service": "web", "Tags": ["v1"], "Port": 8080},
            "Checks": [
                {"CheckID": "serfHealth", "Status": "passing", "Output": "ok"},
                {"CheckID": "service:web", "Status": "critical", "Output": ""},
            ],
        })
    }

    /// One case a line: `+ expr` must match `row`, `- expr` must not.
    fn check(row: &Value, cases: &str) {
        for line in cases.lines().map(str::trim).filter(|l| !l.is_empty()) {
            let (want, expr) = line.split_at(2);
            match parse(expr) {
                Ok(f) => assert_eq!(f.matches(row), want == "+ ", "{expr}"),
                Err(e) => panic!("{expr}: {e}"),
            }
        }
    }

    #[test]
    fn equality_and_missing_fields() {
        check(
            &catalog_row(),
            r#"
            + ServiceName == web
            + ServiceName == "web"
            - ServiceName == Web
            + ServiceName != db
            + ServicePort == 8080
            + ServicePort == "8080"
            + ServicePort == 8080.0
            + ServiceWeight == 1.5
            + ServiceEnableTagOverride == false
            - ServiceEnableTagOverride == true
            + ServiceMeta.version == "1.2"
            + Address == 10.0.0.1
            - ServiceTags == v1
            - ServiceMeta.nope == x
            + ServiceMeta.nope != x
            - Nope.Deeper.Still == x
            - ServiceName.Sub == x
            + x not in Nope
        "#,
        );
    }

    #[test]
    fn emptiness() {
        check(
            &catalog_row(),
            r#"
            + ServiceAddress is empty
            + ServiceProxy is empty
            + ServiceTaggedAddresses is empty
            + ServiceChecks is empty
            + ServiceMeta.nope is empty
            - ServiceTags is empty
            + ServiceTags is not empty
            + NodeMeta.rack is not empty
            - ServicePort is empty
        "#,
        );
    }

    #[test]
    fn membership_and_regex() {
        check(
            &catalog_row(),
            r#"
            + "v1" in ServiceTags
            - v2 in ServiceTags
            + v2 not in ServiceTags
            + ServiceTags contains primary
            + ServiceTags not contains v2
            + rack in NodeMeta
            - NodeMeta contains r1
            + "0.0" in Address
            + Address not contains "192."
            - 8080 in ServicePort
            + ServiceName matches "^w.b$"
            - ServiceName matches "^db"
            + ServiceName not matches "^db"
            + ServiceMeta.version matches `^1\.\d+$`
            - ServicePort matches "8080"
        "#,
        );
    }

    #[test]
    fn precedence_and_parentheses() {
        // T is true and F false on the row; a wrong grouping flips each result.
        let cases = r#"
            + T or F and F
            + F and F or T
            - not F and F
            + not T or T
            + not not T
            - (T or F) and F
            + not (F and F)
            + ((T))and(T)
        "#;
        let cases = cases
            .replace('T', "ServiceName == web")
            .replace('F', "Node == other");
        check(&catalog_row(), &cases);
    }

    #[test]
    fn quoting_and_selectors() {
        check(
            &catalog_row(),
            r#"
            + ServiceMeta.q == "say \"hi\""
            + ServiceMeta.raw == "a\\b"
            + ServiceMeta.raw == `a\b`
            + ServiceName == "\u0077eb"
            + ServiceMeta.q==`say "hi"`and ServiceName!="db"
            + ServiceMeta["a.b"] == dotted
        "#,
        );
        check(
            &health_row(),
            r#"
            + Node.Meta["rack"] == r1
            + Node.Meta[`zone-id`] == z
            + Node.Meta.zone-id == z
            + Node["Meta"].rack == r1
            - Node["Meta"]["rack"] != r1
        "#,
        );
    }

    #[test]
    fn any_element_of_array() {
        // `!=` negates the whole "any": true only when NO check is passing.
        check(
            &health_row(),
            r#"
            + Checks.Status == critical
            - Checks.Status == warning
            - Checks.Status != passing
            + Checks.Status != warning
            + Checks.CheckID contains web
            + Checks.CheckID matches "^serf"
            + Checks.Output is empty
            + Checks.Nope is empty
        "#,
        );
    }

    #[test]
    fn errors() {
        // column | start of the message | expression
        let cases = r#"
            8  | unterminated string | Foo == "abc
            8  | unterminated string | Foo == `abc
            8  | unterminated string | Foo == "a\
            9  | invalid escape sequence | Foo == "\q"
            9  | invalid escape sequence | Foo == "\u12"
            9  | invalid escape sequence | Foo == "\ud800"
            7  | unexpected end of expression (expected a value) | Foo ==
            13 | unexpected end of expression | Foo == x and
            4  | unexpected end of expression (expected a selector) | not
            10 | unexpected end of expression (expected `)`) | (Foo == x
            1  | unexpected token "==" (expected a selector) | == x
            9  | unexpected token ")" | Foo == x)
            10 | unexpected token "Bar" (expected `and`, `or` or the end) | Foo == x Bar
            5  | unexpected token "like" (expected an operator) | Foo like x
            5  | unexpected token "=" (expected an operator) | Foo = x
            8  | unexpected token "full" (expected `empty`) | Foo is full
            5  | unexpected token "not" (expected an operator) | Foo not == x
            5  | unexpected token "==" (expected `in` or `not in` | "x" == Foo
            8  | unexpected token "and" (expected a value) | Foo == and
            5  | unexpected token "bar" (expected a quoted key) | Foo[bar] == x
            8  | unexpected token "\"b\"" (expected a selector) | "a" in "b"
            1  | invalid selector "Foo..Bar" | Foo..Bar == x
            9  | invalid selector ".." | Foo["a"].. == x
            1  | invalid selector "3" | 3 == 3
            13 | invalid regular expression "(": unclosed group | Foo matches "("
        "#;
        for line in cases.lines().map(str::trim).filter(|l| !l.is_empty()) {
            let [col, what, expr] =
                <[&str; 3]>::try_from(line.splitn(3, " | ").collect::<Vec<_>>())
                    .unwrap_or_else(|_| panic!("bad case {line}"));
            match parse(expr) {
                Err(FilterError::Syntax {
                    what: w, column, ..
                }) => {
                    let ok = w.starts_with(what) && col.trim().parse() == Ok(column);
                    assert!(ok, "{expr}: {w} at {column}");
                }
                other => panic!("{expr}: {other:?}"),
            }
        }
        assert!(matches!(parse(" \t"), Err(FilterError::Empty)));
        let deep = |n| format!("{}A == x{}", "(".repeat(n), ")".repeat(n));
        assert!(parse(&deep(MAX_DEPTH)).is_ok());
        for expr in [
            deep(MAX_DEPTH + 1),
            "(".repeat(100_000),
            "not ".repeat(10_000),
        ] {
            assert!(
                matches!(parse(&expr), Err(FilterError::TooDeep { .. })),
                "{expr:.20}"
            );
        }
        let msg = |expr: &str| parse(expr).err().map(|e| e.to_string()).unwrap_or_default();
        let want =
            r#"filter: unexpected token "==" (expected a value) at column 8 in "Foo == == x""#;
        assert_eq!(msg("Foo == == x"), want);
        assert_eq!(
            msg("é == \"x"),
            r#"filter: unterminated string at column 6 in "é == \"x""#
        );
        let want = "filter: nesting deeper than 64 levels at column 65 in \"(((";
        assert!(msg(&deep(MAX_DEPTH + 1)).starts_with(want));
    }

    #[test]
    fn garbage_never_panics() {
        const ATOMS: &[&str] = &[
            "ServiceName == web",
            "\"v1\" in ServiceTags",
            "Checks.Status != passing",
            "Node.Meta[\"rack\"] is not empty",
            "ServiceName matches `^w`",
            "x not in Nope",
        ];
        const PIECES: &[&str] = &[
            "(", ")", "[", "]", "==", "!=", "=", "!", "and", "or", "not", "is", "empty", "in",
            "contains", "matches", "\"x\"", "`y`", "\"", "`", "\\", "\\u00", "Foo", ".x", "..",
            "3", "-1.5", "true", "é", "\"(\"", "\"[a-\"", " ",
        ];
        let rows = [catalog_row(), health_row(), json!(null), json!([1, "x"])];
        let mut seed: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut rand = move |n: usize| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            (seed % n as u64) as usize
        };
        let (mut parsed, mut hits) = (0, 0);
        for _ in 0..1000 {
            // A valid expression from the grammar, then a few random edits to it.
            let mut expr = String::from(ATOMS[rand(ATOMS.len())]);
            for _ in 0..rand(4) {
                let joiner = [" and ", " or ", " and not "][rand(3)];
                expr = format!("({expr}){joiner}{}", ATOMS[rand(ATOMS.len())]);
            }
            let mut chars: Vec<char> = expr.chars().collect();
            for _ in 0..rand(4) {
                let at = rand(chars.len() + 1);
                if rand(2) == 0 && at < chars.len() {
                    chars.remove(at);
                } else {
                    chars.splice(at..at, PIECES[rand(PIECES.len())].chars());
                }
            }
            let expr: String = chars.into_iter().collect();
            match parse(&expr) {
                Ok(f) => {
                    parsed += 1;
                    hits += rows.iter().filter(|row| f.matches(row)).count();
                }
                Err(e) => assert!(e.to_string().starts_with("filter: "), "{e}"),
            }
        }
        assert!(parsed > 100 && hits > 0, "{parsed} parsed, {hits} matched");
    }
}
