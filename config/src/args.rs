//! `normalize_args`: lets Consul's single-dash long flags (`-server`, `-data-dir=/x`) reach a
//! clap parser that expects GNU `--long` flags. Pure string rewriting.

/// Rewrites single-dash long flags into double-dash ones.
///
/// An argument is rewritten when it starts with one `-`, then an ASCII letter, and is longer
/// than two characters (`-server` → `--server`, `-data-dir=/x` → `--data-dir=/x`). Left alone:
/// `--flags`, short flags such as `-h`, a bare `-` (stdin), negative numbers (`-1`), and
/// everything after a bare `--`.
///
/// Known difference from Go's flag package: Go stops reading flags at the first positional
/// argument, so `consul kv put k -v` stores `-v`; here `-v` is a flag unless it follows `--`.
pub fn normalize_args(args: impl Iterator<Item = String>) -> Vec<String> {
    let mut rest_is_positional = false;
    args.map(|arg| {
        if rest_is_positional {
            return arg;
        }
        if arg == "--" {
            rest_is_positional = true;
            return arg;
        }
        let mut chars = arg.chars();
        let single_dash_long = chars.next() == Some('-')
            && chars.next().is_some_and(|c| c.is_ascii_alphabetic())
            && arg.chars().count() > 2;
        if single_dash_long {
            format!("-{arg}")
        } else {
            arg
        }
    })
    .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn norm(args: &[&str]) -> Vec<String> {
        normalize_args(args.iter().map(|s| s.to_string()))
    }

    #[test]
    fn single_dash_long_flags_get_a_second_dash() {
        assert_eq!(
            norm(&[
                "meridian",
                "agent",
                "-server",
                "-bootstrap-expect",
                "3",
                "-data-dir=/x"
            ]),
            [
                "meridian",
                "agent",
                "--server",
                "--bootstrap-expect",
                "3",
                "--data-dir=/x"
            ]
        );
        assert_eq!(
            norm(&["-http-addr=http://127.0.0.1:8500"]),
            ["--http-addr=http://127.0.0.1:8500"]
        );
    }

    #[test]
    fn gnu_flags_short_flags_and_stdin_are_untouched() {
        assert_eq!(
            norm(&["--server", "-h", "-V", "-", "--data-dir=/x"]),
            ["--server", "-h", "-V", "-", "--data-dir=/x"]
        );
    }

    #[test]
    fn negative_numbers_are_untouched() {
        assert_eq!(
            norm(&["-http-port", "-1", "-10", "-1.5"]),
            ["--http-port", "-1", "-10", "-1.5"]
        );
    }

    #[test]
    fn everything_after_double_dash_is_untouched() {
        assert_eq!(
            norm(&["kv", "put", "--", "k", "-value"]),
            ["kv", "put", "--", "k", "-value"]
        );
    }

    #[test]
    fn program_path_and_positionals_are_untouched() {
        assert_eq!(
            norm(&["/usr/bin/meridian", "kv", "get", "a/b-c"]),
            ["/usr/bin/meridian", "kv", "get", "a/b-c"]
        );
    }
}
