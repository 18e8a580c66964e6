//! Finds the line of a key path (`datacenter.dc1.servers`) in TOML or HCL text, for errors
//! that the parsers report without a position (type errors from hcl, rule violations).
//!
//! It walks the text once: each path segment is looked for as a whole word (bare or quoted)
//! after the previous one, so `[datacenter.dc1]` + `servers = 0` and
//! `datacenter "dc1" {` + `servers = 0` both lead to the `servers` line. Not a parser: it
//! may point at a comment that mentions the key, which is close enough for a message.

/// The 1-based line of the last segment of `path` that could be found, in order.
pub fn line_of_path(text: &str, path: &str) -> Option<usize> {
    let mut from = 0;
    let mut found = None;
    for segment in path.split('.').filter(|s| !s.is_empty() && *s != "?") {
        match find_word(&text[from..], segment) {
            Some(at) => {
                let abs = from + at;
                found = Some(abs);
                from = abs + segment.len();
            }
            None => break,
        }
    }
    found.map(|at| text[..at].matches('\n').count() + 1)
}

/// The byte offset of `word` in `text` where it stands alone (not part of a longer name).
fn find_word(text: &str, word: &str) -> Option<usize> {
    let is_name = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == '-';
    let mut start = 0;
    while let Some(pos) = text[start..].find(word) {
        let at = start + pos;
        let before = text[..at].chars().next_back();
        let after = text[at + word.len()..].chars().next();
        if !before.is_some_and(is_name) && !after.is_some_and(is_name) {
            return Some(at);
        }
        start = at + word.len();
    }
    None
}

#[cfg(test)]
mod tests {
    use super::line_of_path;

    #[test]
    fn finds_nested_toml_keys() {
        let t = "[datacenter.dc10]\nservers = 3\n\n[datacenter.dc1]\nclients = 1\nservers = 0\n";
        assert_eq!(line_of_path(t, "datacenter.dc1.servers"), Some(6));
        assert_eq!(line_of_path(t, "datacenter.dc1"), Some(4));
    }

    #[test]
    fn finds_hcl_block_labels() {
        let t = "datacenter \"dc1\" {\n  servers = 3\n}\nwan_link \"dc1\" \"dc9\" {\n}\n";
        assert_eq!(line_of_path(t, "wan_link.dc1.dc9"), Some(4));
        assert_eq!(line_of_path(t, "datacenter.dc1.servers"), Some(2));
    }

    #[test]
    fn falls_back_to_the_deepest_found_segment() {
        let t = "[datacenter.dc1]\nclients = 1\n";
        assert_eq!(line_of_path(t, "datacenter.dc1.servers"), Some(1));
        assert_eq!(line_of_path(t, "nothing"), None);
    }
}
