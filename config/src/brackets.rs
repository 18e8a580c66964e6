//! A bracket check ahead of the HCL parser: HCL with brackets left open makes the parser
//! (hcl-edit) backtrack for a very long time — 782 bytes with 18 unclosed `{` among
//! operators took 12 s, a longer fuzzer input over 20 min (#19's fuzzing). Text whose
//! `{`, `[` or `(` are still open at the end cannot parse anyway, so it is refused at once,
//! naming where the first unclosed bracket opened. Strings, comments and heredocs are
//! skipped; anything this scan is unsure of is left to the parser.

/// An unclosed bracket: `(line, column, bracket)`, 1-based.
pub(crate) type Unclosed = (usize, usize, char);

/// The first bracket still open at the end of `text`, if any.
pub(crate) fn first_unclosed(text: &str) -> Option<Unclosed> {
    let mut open: Vec<Unclosed> = Vec::new();
    let mut lines = text.lines().enumerate().peekable();
    let mut in_block_comment = false;
    while let Some((n, line)) = lines.next() {
        let chars: Vec<char> = line.chars().collect();
        let mut i = 0;
        while i < chars.len() {
            let c = chars[i];
            let next = chars.get(i + 1).copied();
            if in_block_comment {
                if c == '*' && next == Some('/') {
                    in_block_comment = false;
                    i += 1;
                }
            } else if c == '#' || (c == '/' && next == Some('/')) {
                break;
            } else if c == '/' && next == Some('*') {
                in_block_comment = true;
                i += 1;
            } else if c == '"' {
                // To the closing quote (escapes skipped); an unterminated string is the
                // parser's to report.
                i += 1;
                while i < chars.len() && chars[i] != '"' {
                    i += if chars[i] == '\\' { 2 } else { 1 };
                }
            } else if c == '<' && next == Some('<') {
                // A heredoc: skip to the line holding only its marker.
                let rest: String = chars[i + 2..].iter().collect();
                let marker = rest.trim_start_matches('-').trim().to_string();
                if !marker.is_empty() && marker.chars().all(|c| c.is_alphanumeric() || c == '_') {
                    for (_, l) in lines.by_ref() {
                        if l.trim() == marker {
                            break;
                        }
                    }
                    break;
                }
                i += 1;
            } else if matches!(c, '{' | '[' | '(') {
                open.push((n + 1, i + 1, c));
            } else if matches!(c, '}' | ']' | ')') {
                open.pop();
            }
            i += 1;
        }
    }
    open.first().copied()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn balanced_configs_pass_and_the_first_unclosed_bracket_is_named() {
        let ok = r#"
            # a { comment
            service { name = "web" tags = ["a", "b{"] }  // trailing {
            /* block { comment */ check { args = ["sh", "-c", "echo \"}\""] }
            script = <<EOF
              if x { unclosed
            EOF
            x = (1 + 2)
        "#;
        assert_eq!(first_unclosed(ok), None);
        assert_eq!(first_unclosed("a {\n  b = [1,\n"), Some((1, 3, '{')));
        assert_eq!(first_unclosed("x = ((1)"), Some((1, 5, '(')));
    }

    #[test]
    fn the_fuzzers_slow_input_is_refused_quickly() {
        let slow = include_bytes!("../../fuzz/regressions/config_parse/slow-hcl-nesting");
        let text = String::from_utf8_lossy(slow);
        let started = std::time::Instant::now();
        assert!(first_unclosed(&text).is_some());
        assert!(crate::validate_text(&text, true).is_err());
        assert!(started.elapsed() < std::time::Duration::from_secs(1));
    }
}
