//! A scan of HCL text ahead of the parser (hcl-edit, under hcl-rs), refusing at once the two
//! shapes on which the parser backtracks for seconds to hours, and naming where they start.
//!
//! 1. **Something left open**: a bracket, a string, a template interpolation (`${`, `%{`), a
//!    heredoc or a `/*` comment. 782 bytes with 18 unclosed `{` among operators took 12 s,
//!    a longer fuzzer input over 20 minutes. Such text can never parse.
//! 2. **Expressions nested deeply through binary operators.** When an operand of a chain
//!    like `a - b * X` fails to parse, hcl-edit ends the chain before `* X`, then its
//!    expression loop sees the operator again and parses `X` a second time before failing.
//!    Every level of nesting (an object, a list, parentheses, call arguments, an index or a
//!    string template inside such an operand) doubles the work: 320 balanced bytes of
//!    `x = 1 * {a = 1 - 1 * {a = …1 &}}` took 3.8 s, and a 3.6 KB fuzzer input 20 s. The
//!    scan counts, for every bracket, how many of the brackets around it hold a binary
//!    operator, and refuses more than [`MAX_OPERATOR_NESTING`]. Consul's HCL (HCL 1) has no
//!    operators at all, so no Consul config comes near it.
//!
//! The scan follows the parser's lexical rules in one pass: quoted strings (which may span
//! lines) with `\` escapes, `${`/`%{` templates and their `$${`/`%%{` escapes, heredocs
//! (`<<EOF`, `<<-EOF`) with templates, `#`, `//` and `/* */` comments, identifiers that
//! contain `-`. It is not a parser: what it cannot classify is left to hcl-edit, whose
//! errors are then quick. No I/O here.

/// How many enclosing brackets holding a binary operator a bracket may have. The parser's
/// work grows as 2 to this power times the text's length: at 4, the slowest 64 KiB text
/// tried (a 30,000-element list in the innermost of 4 failing levels) takes 0.12 s in a
/// release build, at 6 it took 0.4 s.
pub(crate) const MAX_OPERATOR_NESTING: usize = 4;

/// Why the scan refuses a text, and where (1-based line and column, in characters).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Refusal {
    /// The line where the offending construct starts.
    pub(crate) line: usize,
    /// The column where it starts.
    pub(crate) column: usize,
    /// What is wrong, naming the construct, e.g. "`{` opened here is never closed".
    pub(crate) problem: String,
}

/// Refuses `text` if something in it is left open or nests too deeply through operators;
/// otherwise the parser may have it.
pub(crate) fn check(text: &str) -> Result<(), Refusal> {
    Scan::new(text).run()
}

/// What the scan is inside of.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Kind {
    /// The top level of the file.
    Root,
    /// `{`, `[` or `(`.
    Bracket(char),
    /// `${` or `%{`, in a string or a heredoc: code until its `}`.
    Template(char),
    /// A quoted string.
    Quoted,
    /// A heredoc's body, up to the line holding only its marker.
    Heredoc(String),
}

#[derive(Debug)]
struct Frame {
    kind: Kind,
    line: usize,
    column: usize,
    /// How many enclosing frames hold a binary operator.
    weight: usize,
    /// This frame holds a binary operator at its own level.
    ops: bool,
}

impl Frame {
    /// The refusal for a text that ends with this frame open.
    fn unclosed(&self) -> Refusal {
        Refusal {
            line: self.line,
            column: self.column,
            problem: match &self.kind {
                Kind::Bracket(b) => format!("`{b}` opened here is never closed"),
                Kind::Template(t) => {
                    format!("template `{t}{{` opened here is never closed with `}}`")
                }
                Kind::Quoted => "the string opened here is never closed".to_string(),
                Kind::Heredoc(m) => {
                    format!("heredoc `<<{m}` opened here never ends with a `{m}` line")
                }
                Kind::Root => "unexpected end".to_string(),
            },
        }
    }
}

struct Scan {
    chars: Vec<char>,
    i: usize,
    line: usize,
    column: usize,
    stack: Vec<Frame>,
    /// The last token in code ended an operand, so an operator after it is binary.
    operand: bool,
    /// At the start of a heredoc line, where its marker may end it.
    line_start: bool,
}

impl Scan {
    fn new(text: &str) -> Self {
        let root = Frame {
            kind: Kind::Root,
            line: 1,
            column: 1,
            weight: 0,
            ops: false,
        };
        Self {
            chars: text.chars().collect(),
            i: 0,
            line: 1,
            column: 1,
            stack: vec![root],
            operand: false,
            line_start: false,
        }
    }

    fn run(mut self) -> Result<(), Refusal> {
        while self.i < self.chars.len() {
            match self.top().kind {
                Kind::Quoted => self.quoted()?,
                Kind::Heredoc(_) => self.heredoc()?,
                Kind::Root | Kind::Bracket(_) | Kind::Template(_) => self.code()?,
            }
        }
        // The outermost construct left open is the one to close first, except that a string
        // or heredoc holding an open template stays open because of it: name the template.
        let mut open = self.stack.iter().skip(1).peekable();
        while let Some(frame) = open.next_if(|f| matches!(f.kind, Kind::Quoted | Kind::Heredoc(_)))
        {
            if open.peek().is_none() {
                return Err(frame.unclosed());
            }
        }
        match open.next() {
            None => Ok(()),
            Some(frame) => Err(frame.unclosed()),
        }
    }

    // === characters ===

    fn top(&self) -> &Frame {
        // The root frame is never popped: `close` keeps it.
        &self.stack[self.stack.len() - 1]
    }

    fn peek(&self, ahead: usize) -> Option<char> {
        self.chars.get(self.i + ahead).copied()
    }

    fn bump(&mut self) {
        if let Some(&c) = self.chars.get(self.i) {
            self.i += 1;
            if c == '\n' {
                self.line += 1;
                self.column = 1;
            } else {
                self.column += 1;
            }
        }
    }

    fn bump_n(&mut self, n: usize) {
        for _ in 0..n {
            self.bump();
        }
    }

    fn starts_with(&self, s: &str) -> bool {
        let mut ahead = self.chars.get(self.i..).unwrap_or_default().iter();
        s.chars().all(|c| ahead.next() == Some(&c))
    }

    // === frames ===

    /// Opens `kind` at the current position, refusing a bracket or template when too many
    /// enclosing frames hold an operator. (Strings and heredocs are frames without
    /// operators: a template in a string weighs what the string does.)
    fn open(&mut self, kind: Kind) -> Result<(), Refusal> {
        let top = self.top();
        let weight = top.weight + usize::from(top.ops);
        let parsed_as_expression = matches!(kind, Kind::Bracket(_) | Kind::Template(_));
        if parsed_as_expression && weight > MAX_OPERATOR_NESTING {
            return Err(Refusal {
                line: self.line,
                column: self.column,
                problem: format!(
                    "expression nested here inside more than {MAX_OPERATOR_NESTING} levels of \
                     operators (+ - * / % == != < > && ||); the HCL parser's time doubles with \
                     each level, so Meridian refuses it"
                ),
            });
        }
        self.stack.push(Frame {
            kind,
            line: self.line,
            column: self.column,
            weight,
            ops: false,
        });
        Ok(())
    }

    fn close(&mut self) {
        if self.stack.len() > 1 {
            self.stack.pop();
        }
    }

    fn binary_operator(&mut self, len: usize) {
        if let Some(top) = self.stack.last_mut() {
            top.ops = true;
        }
        self.operand = false;
        self.bump_n(len);
    }

    // === modes ===

    /// One token of code (the top level, brackets and templates).
    fn code(&mut self) -> Result<(), Refusal> {
        let Some(c) = self.peek(0) else {
            return Ok(());
        };
        let next = self.peek(1);
        match c {
            '#' => self.skip_line(),
            '/' if next == Some('/') => self.skip_line(),
            '/' if next == Some('*') => return self.skip_block_comment(),
            '"' => {
                self.open(Kind::Quoted)?;
                self.bump();
            }
            '{' | '[' | '(' => {
                self.open(Kind::Bracket(c))?;
                self.operand = false;
                self.bump();
            }
            '}' | ']' | ')' => self.closer(c),
            '<' if next == Some('<') => self.heredoc_start()?,
            c if c.is_alphabetic() || c == '_' => {
                while self
                    .peek(0)
                    .is_some_and(|c| c.is_alphanumeric() || c == '_' || c == '-')
                {
                    self.bump();
                }
                self.operand = true;
            }
            c if c.is_ascii_digit() => self.number(),
            '=' | '!' | '<' | '>' if next == Some('=') => self.binary_operator(2),
            '&' if next == Some('&') => self.binary_operator(2),
            '|' if next == Some('|') => self.binary_operator(2),
            // After an operand these start a binary operation (the parser tries one, even
            // where it then fails, like `!x`); elsewhere `-` and `!` are unary.
            '+' | '-' | '*' | '/' | '%' | '<' | '>' | '!' | '&' | '|' if self.operand => {
                self.binary_operator(1)
            }
            // Traversals (`a.b`) and strip markers keep the operand as it is.
            '.' | '~' => self.bump(),
            c if c.is_whitespace() => self.bump(),
            _ => {
                self.operand = false;
                self.bump();
            }
        }
        Ok(())
    }

    fn closer(&mut self, c: char) {
        match self.top().kind {
            Kind::Bracket(_) => {
                self.close();
                self.operand = true;
            }
            Kind::Template(_) if c == '}' => self.close(),
            // A stray closer: the parser reports it.
            _ => self.operand = false,
        }
        self.bump();
    }

    fn number(&mut self) {
        while let Some(c) = self.peek(0) {
            let exponent_sign = matches!(c, '+' | '-')
                && self.i > 0
                && matches!(self.chars[self.i - 1], 'e' | 'E')
                && self.peek(1).is_some_and(|d| d.is_ascii_digit());
            if c.is_ascii_digit() || matches!(c, '.' | 'e' | 'E') || exponent_sign {
                self.bump();
            } else {
                break;
            }
        }
        self.operand = true;
    }

    fn skip_line(&mut self) {
        while self.peek(0).is_some_and(|c| c != '\n') {
            self.bump();
        }
    }

    fn skip_block_comment(&mut self) -> Result<(), Refusal> {
        let (line, column) = (self.line, self.column);
        self.bump_n(2);
        while self.i < self.chars.len() {
            if self.starts_with("*/") {
                self.bump_n(2);
                return Ok(());
            }
            self.bump();
        }
        Err(Refusal {
            line,
            column,
            problem: "the `/*` comment opened here is never closed with `*/`".to_string(),
        })
    }

    /// `<<EOF` or `<<-EOF` and a line ending start a heredoc; anything else is operators.
    fn heredoc_start(&mut self) -> Result<(), Refusal> {
        let mut at = self.i + 2;
        if self.chars.get(at) == Some(&'-') {
            at += 1;
        }
        let marker_start = at;
        while self
            .chars
            .get(at)
            .is_some_and(|&c| c.is_alphanumeric() || c == '_' || c == '-')
        {
            at += 1;
        }
        let marker: String = self.chars[marker_start..at].iter().collect();
        let line_end = match (self.chars.get(at), self.chars.get(at + 1)) {
            (Some('\n'), _) => 1,
            (Some('\r'), Some('\n')) => 2,
            _ => 0,
        };
        let starts_with_letter = marker
            .chars()
            .next()
            .is_some_and(|c| c.is_alphabetic() || c == '_');
        if marker.is_empty() || !starts_with_letter || line_end == 0 {
            // Not a heredoc: `<` twice, as binary operators after an operand.
            if self.operand {
                self.binary_operator(1);
            } else {
                self.bump();
            }
            return Ok(());
        }
        self.open(Kind::Heredoc(marker))?;
        self.bump_n(at - self.i + line_end);
        self.line_start = true;
        Ok(())
    }

    /// One character of a quoted string.
    fn quoted(&mut self) -> Result<(), Refusal> {
        match self.peek(0) {
            Some('\\') => self.bump_n(2),
            Some('"') => {
                self.close();
                self.operand = true;
                self.bump();
            }
            _ => self.template_char()?,
        }
        Ok(())
    }

    /// One character of a heredoc body, or its end.
    fn heredoc(&mut self) -> Result<(), Refusal> {
        if std::mem::take(&mut self.line_start) && self.at_heredoc_end() {
            return Ok(());
        }
        if self.peek(0) == Some('\n') {
            self.line_start = true;
        }
        self.template_char()
    }

    /// At the start of a heredoc line: ends the heredoc if the line holds its marker.
    fn at_heredoc_end(&mut self) -> bool {
        let Kind::Heredoc(marker) = &self.top().kind else {
            return false;
        };
        let mut at = self.i;
        while matches!(self.chars.get(at), Some(' ' | '\t')) {
            at += 1;
        }
        let len = marker.chars().count();
        let matches = self.chars.len() >= at + len
            && self.chars[at..at + len].iter().copied().eq(marker.chars())
            && !self
                .chars
                .get(at + len)
                .is_some_and(|&c| c.is_alphanumeric() || c == '_' || c == '-');
        if matches {
            let skip = at + len - self.i;
            self.close();
            self.operand = true;
            self.bump_n(skip);
        }
        matches
    }

    /// One character of template text, a string's or a heredoc's, or a template's start.
    fn template_char(&mut self) -> Result<(), Refusal> {
        if self.starts_with("$${") || self.starts_with("%%{") {
            self.bump_n(3);
        } else if self.starts_with("${") || self.starts_with("%{") {
            let t = self.peek(0).unwrap_or('$');
            self.open(Kind::Template(t))?;
            self.operand = false;
            self.bump_n(2);
        } else {
            self.bump();
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(text: &str) -> (usize, usize) {
        let r = check(text).expect_err("refused");
        (r.line, r.column)
    }

    #[test]
    fn balanced_configs_pass_and_the_first_thing_left_open_is_named() {
        let ok = r#"
            # a { comment
            service { name = "web" tags = ["a", "b{"] }  // trailing {
            /* block { comment */ check { args = ["sh", "-c", "echo \"}\""] }
            script = <<EOF
              if x { unclosed "
            EOF
            x = (1 + 2)
            meta { rack-id = "r-1" weight = -1 ratio = 1e-3 }
            bind_addr = "{{ GetPrivateInterfaces | include \"network\" \"10.0.0.0/8\" }}"
            t = "${upper("a{")} $${not {a template} %%{ nor this"
            h = <<-EOT
              ${ {a = "}"}.a } and EOF in the middle of a line
              EOT
        "#;
        assert_eq!(check(ok), Ok(()));
        assert_eq!(refused("a {\n  b = [1,\n"), (1, 3));
        assert_eq!(refused("x = ((1)"), (1, 5));
        assert_eq!(refused("x = \"a ${ {b = 1}\n"), (1, 8));
        assert_eq!(refused("x = 1\ny = \"abc\n"), (2, 5));
        assert_eq!(refused("x = <<EOF\nabc\n"), (1, 5));
        assert_eq!(refused("x = 1 /* abc\n"), (1, 7));
        let r = check("x = \"${ {a = 1 \"}\"").expect_err("refused");
        assert!(r.problem.contains("`${`"), "{}", r.problem);
    }

    #[test]
    fn operators_may_nest_a_few_levels_but_not_more() {
        let nest = |n: usize| format!("x = 1 * {}1{}", "{a = 1 - 1 * ".repeat(n), "}".repeat(n));
        assert_eq!(check(&nest(MAX_OPERATOR_NESTING)), Ok(()));
        assert!(check(&nest(MAX_OPERATOR_NESTING + 1)).is_err());
        // Brackets without operators nest as deep as the parser allows.
        let plain = format!("x = {}1{}", "[".repeat(60), "]".repeat(60));
        assert_eq!(check(&plain), Ok(()));
        // Negative numbers and dashed names are no operators.
        let signs = format!("x = {}-1{}", "{a-b = -".repeat(20), "}".repeat(20));
        assert_eq!(check(&signs), Ok(()));
        // Templates inside strings are levels too.
        let templates = format!("x = {}1{}", "1 - 1 * \"${".repeat(10), "}\"".repeat(10));
        let r = check(&templates).expect_err("refused");
        assert!(r.problem.contains("levels of operators"), "{}", r.problem);
    }

    #[test]
    fn the_fuzzers_slow_inputs_are_refused_quickly() {
        for name in [
            "slow-hcl-nesting",
            "timeout-5a5b4fed91587b52111bc44620cdd35ada90289b",
        ] {
            let path = format!(
                "{}/../fuzz/regressions/config_parse/{name}",
                env!("CARGO_MANIFEST_DIR")
            );
            let bytes = std::fs::read(&path).expect("regression input");
            // The fuzz target's first byte picks HCL (odd) or JSON; the rest is the text.
            let text = String::from_utf8_lossy(&bytes[1..]);
            let started = std::time::Instant::now();
            assert!(check(&text).is_err(), "{name}");
            assert!(crate::validate_text(&text, true).is_err(), "{name}");
            assert!(
                crate::validate_text(&text, true).is_err(),
                "{name}: deterministic"
            );
            let took = started.elapsed();
            assert!(took < std::time::Duration::from_secs(2), "{name}: {took:?}");
        }
    }
}
