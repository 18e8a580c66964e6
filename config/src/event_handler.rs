//! serf's event handler specs (`-event-handler` / `event_handlers`): `[filter=]script`, where
//! the filter is a comma-separated list of `member-join`, `member-leave`, `member-failed`,
//! `member-update`, `member-reap`, `user`, `user:NAME` or `*` (absent means `*`). Parsing and
//! matching only, as serf's `ParseEventScript` / `EventFilter.Invoke`; running the scripts is
//! the agent's job. Pure: no I/O.
//!
//! As in serf, the value is split at its first `=`, so a script that itself contains `=`
//! needs an explicit filter in front (`*=FOO=1 handler.sh`); a would-be filter that is not
//! one is an error rather than silently becoming part of the script.

use std::fmt;

/// The filter names serf accepts (besides `user:NAME`), for error messages.
const KNOWN: &str =
    "member-join, member-leave, member-failed, member-update, member-reap, user, user:NAME or *";

/// One parsed `[filter=]script` value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventHandler {
    /// Which events run the script; never empty (no filter means [`EventFilter::Any`]).
    pub filters: Vec<EventFilter>,
    /// The shell command, run with `sh -c`.
    pub script: String,
}

/// Which events a handler runs for (serf's `EventFilter`).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum EventFilter {
    /// `*`: every event.
    Any,
    /// `member-join`.
    MemberJoin,
    /// `member-leave`.
    MemberLeave,
    /// `member-failed`.
    MemberFailed,
    /// `member-update`.
    MemberUpdate,
    /// `member-reap`.
    MemberReap,
    /// `user` (any user event, `None`) or `user:NAME` (only events named `NAME`).
    User(Option<String>),
}

/// Why an event handler value could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EventHandlerError {
    /// Nothing to run.
    #[error("{0:?} has no script")]
    EmptyScript(String),
    /// A filter is not one of serf's.
    #[error(
        "unknown event filter {filter:?} in {value:?}; filters are {KNOWN} (a script that contains '=' needs a filter first, e.g. \"*=FOO=1 handler.sh\")"
    )]
    UnknownFilter {
        /// The offending filter.
        filter: String,
        /// The whole value.
        value: String,
    },
    /// serf's `query` events exist, but Meridian's agent does not deliver them to handlers.
    #[error("{value:?}: query events are not delivered to event handlers; use {KNOWN}")]
    QueryFilter {
        /// The whole value.
        value: String,
    },
}

impl EventHandler {
    /// Parses `[filter=]script` (serf's `ParseEventScript`).
    pub fn parse(value: &str) -> Result<Self, EventHandlerError> {
        let (filter, script) = match value.split_once('=') {
            Some((filter, script)) => (filter, script),
            None => ("", value),
        };
        if script.trim().is_empty() {
            return Err(EventHandlerError::EmptyScript(value.to_string()));
        }
        let filter = if filter.trim().is_empty() {
            "*"
        } else {
            filter
        };
        let filters = filter
            .split(',')
            .map(|f| EventFilter::parse(f.trim(), value))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self {
            filters,
            script: script.to_string(),
        })
    }

    /// Whether an event of serf kind `kind` (`member-join`, ..., `user`) runs this handler;
    /// `user_event` is the user event's name.
    pub fn matches(&self, kind: &str, user_event: Option<&str>) -> bool {
        self.filters.iter().any(|f| f.matches(kind, user_event))
    }
}

impl EventFilter {
    fn parse(filter: &str, value: &str) -> Result<Self, EventHandlerError> {
        if let Some(name) = filter.strip_prefix("user:") {
            // serf: `user:` with no name is any user event.
            return Ok(Self::User((!name.is_empty()).then(|| name.to_string())));
        }
        Ok(match filter {
            "*" => Self::Any,
            "member-join" => Self::MemberJoin,
            "member-leave" => Self::MemberLeave,
            "member-failed" => Self::MemberFailed,
            "member-update" => Self::MemberUpdate,
            "member-reap" => Self::MemberReap,
            "user" => Self::User(None),
            q if q == "query" || q.starts_with("query:") => {
                return Err(EventHandlerError::QueryFilter {
                    value: value.to_string(),
                });
            }
            other => {
                return Err(EventHandlerError::UnknownFilter {
                    filter: other.to_string(),
                    value: value.to_string(),
                });
            }
        })
    }

    /// serf's `EventFilter.Invoke`.
    pub fn matches(&self, kind: &str, user_event: Option<&str>) -> bool {
        match self {
            Self::Any => true,
            Self::User(None) => kind == "user",
            Self::User(Some(name)) => kind == "user" && user_event == Some(name.as_str()),
            other => other.kind() == Some(kind),
        }
    }

    /// serf's name of the member event kind this filter selects.
    fn kind(&self) -> Option<&'static str> {
        Some(match self {
            Self::MemberJoin => "member-join",
            Self::MemberLeave => "member-leave",
            Self::MemberFailed => "member-failed",
            Self::MemberUpdate => "member-update",
            Self::MemberReap => "member-reap",
            Self::Any | Self::User(_) => return None,
        })
    }
}

impl fmt::Display for EventFilter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Any => f.write_str("*"),
            Self::User(None) => f.write_str("user"),
            Self::User(Some(name)) => write!(f, "user:{name}"),
            other => f.write_str(other.kind().unwrap_or("?")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(v: &str) -> EventHandler {
        EventHandler::parse(v).unwrap_or_else(|e| panic!("{v}: {e}"))
    }

    #[test]
    fn no_filter_means_every_event() {
        let h = parse("./handler.sh");
        assert_eq!(h.filters, [EventFilter::Any]);
        assert_eq!(h.script, "./handler.sh");
        assert!(h.matches("member-reap", None) && h.matches("user", Some("x")));
        assert_eq!(parse("=x.sh").filters, [EventFilter::Any]);
    }

    #[test]
    fn filters_split_at_the_first_equals_and_on_commas() {
        let h = parse("member-join,user:deploy=echo a=b");
        assert_eq!(h.script, "echo a=b");
        assert!(h.matches("member-join", None));
        assert!(h.matches("user", Some("deploy")));
        assert!(!h.matches("user", Some("other")));
        assert!(!h.matches("member-leave", None));
        let h = parse("user=cat");
        assert!(h.matches("user", Some("anything")) && !h.matches("member-join", None));
        assert_eq!(parse("user:=cat").filters, [EventFilter::User(None)]);
        let all = parse("member-join,member-leave,member-failed,member-update,member-reap=x");
        for kind in [
            "member-join",
            "member-leave",
            "member-failed",
            "member-update",
            "member-reap",
        ] {
            assert!(all.matches(kind, None), "{kind}");
        }
        assert!(!all.matches("user", Some("e")));
        assert_eq!(parse("*=A=1 x.sh").script, "A=1 x.sh");
        let shown: Vec<String> = parse("user:d,member-reap,*=x")
            .filters
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(shown, ["user:d", "member-reap", "*"]);
    }

    #[test]
    fn bad_values_say_what_is_wrong() {
        let e = EventHandler::parse("FOO=1 ./h.sh").expect_err("FOO is no filter");
        assert!(
            matches!(&e, EventHandlerError::UnknownFilter { filter, .. } if filter == "FOO"),
            "{e}"
        );
        assert!(e.to_string().contains("*=FOO=1 handler.sh"), "{e}");
        assert!(matches!(
            EventHandler::parse("member-join= "),
            Err(EventHandlerError::EmptyScript(_))
        ));
        assert!(matches!(
            EventHandler::parse(""),
            Err(EventHandlerError::EmptyScript(_))
        ));
        assert!(matches!(
            EventHandler::parse("query:ping=x"),
            Err(EventHandlerError::QueryFilter { .. })
        ));
    }
}
