//! Go duration strings (`"10s"`, `"1.5h"`, `"1000ms"`, `"4.880273342132568s"`), as Consul writes
//! them in config files, HTTP query parameters and JSON bodies.
//!
//! Owns parsing ([`parse_go_duration`]), formatting ([`format_go_duration`], Go's
//! `time.Duration.String()`), and serde adapters for config structs. Pure functions: no I/O.
//! The HTTP layer reuses this module, so behaviour follows Go's `time.ParseDuration` exactly,
//! except that negative durations are rejected (a `std::time::Duration` cannot hold them).

use std::fmt;
use std::time::Duration;

/// Why a string is not a Go duration.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DurationError {
    /// The input was empty or otherwise not of the form `[0-9.]+unit...`.
    #[error("invalid duration {0:?}")]
    Invalid(String),
    /// A number had no unit (only a bare `0` may omit it).
    #[error("missing unit in duration {0:?}")]
    MissingUnit(String),
    /// A unit other than `ns`, `us`, `µs`, `ms`, `s`, `m`, `h`.
    #[error("unknown unit {unit:?} in duration {input:?}")]
    UnknownUnit {
        /// The unit as written.
        unit: String,
        /// The whole input.
        input: String,
    },
    /// A negative duration such as `-5s`.
    #[error("negative duration {0:?} is not allowed")]
    Negative(String),
    /// More than Go's maximum (about 292 years).
    #[error("duration {0:?} is out of range")]
    Overflow(String),
}

/// Go's limit: an `int64` count of nanoseconds.
const MAX_NANOS: u128 = i64::MAX as u128;

/// Parses a Go duration string such as `"300ms"`, `"1.5h"` or `"2h45m"`.
///
/// A leading `+` is accepted; a leading `-` is rejected unless the value is zero (`"-0s"`).
/// Fractions beyond nanosecond precision are truncated, as in Go.
pub fn parse_go_duration(input: &str) -> Result<Duration, DurationError> {
    let invalid = || DurationError::Invalid(input.to_string());
    let mut s = input;
    let mut negative = false;
    if let Some(rest) = s.strip_prefix('-') {
        negative = true;
        s = rest;
    } else if let Some(rest) = s.strip_prefix('+') {
        s = rest;
    }
    if s == "0" {
        return Ok(Duration::ZERO);
    }
    if s.is_empty() {
        return Err(invalid());
    }
    let mut total: u128 = 0;
    while !s.is_empty() {
        // Integer part.
        let int_len = s.bytes().take_while(u8::is_ascii_digit).count();
        let (int_digits, rest) = s.split_at(int_len);
        s = rest;
        // Fraction part.
        let mut frac_digits = "";
        if let Some(rest) = s.strip_prefix('.') {
            let frac_len = rest.bytes().take_while(u8::is_ascii_digit).count();
            (frac_digits, s) = rest.split_at(frac_len);
        }
        if int_digits.is_empty() && frac_digits.is_empty() {
            // No digits at all (e.g. ".s" or "s").
            return Err(invalid());
        }
        // Unit: everything up to the next digit or '.'.
        let unit_len = s
            .char_indices()
            .find(|(_, c)| c.is_ascii_digit() || *c == '.')
            .map_or(s.len(), |(i, _)| i);
        let (unit, rest) = s.split_at(unit_len);
        s = rest;
        if unit.is_empty() {
            return Err(DurationError::MissingUnit(input.to_string()));
        }
        let unit_nanos: u128 = match unit {
            "ns" => 1,
            "us" | "µs" | "μs" => 1_000,
            "ms" => 1_000_000,
            "s" => 1_000_000_000,
            "m" => 60 * 1_000_000_000,
            "h" => 3_600 * 1_000_000_000,
            _ => {
                return Err(DurationError::UnknownUnit {
                    unit: unit.to_string(),
                    input: input.to_string(),
                });
            }
        };
        let overflow = || DurationError::Overflow(input.to_string());
        let int: u128 = if int_digits.is_empty() {
            0
        } else {
            int_digits.parse().map_err(|_| overflow())?
        };
        // Keep at most 20 fraction digits: enough for ns precision of an hour, no u128 overflow.
        let frac_digits = &frac_digits[..frac_digits.len().min(20)];
        let frac: u128 = if frac_digits.is_empty() {
            0
        } else {
            frac_digits.parse().map_err(|_| overflow())?
        };
        let scale = 10u128.pow(frac_digits.len() as u32);
        let nanos = int
            .checked_mul(unit_nanos)
            .and_then(|v| v.checked_add(frac * unit_nanos / scale))
            .ok_or_else(overflow)?;
        total = total.checked_add(nanos).ok_or_else(overflow)?;
        if total > MAX_NANOS {
            return Err(overflow());
        }
    }
    if negative && total != 0 {
        return Err(DurationError::Negative(input.to_string()));
    }
    // `total <= i64::MAX`, so it fits in u64.
    Ok(Duration::from_nanos(total as u64))
}

/// Formats a duration the way Go's `time.Duration.String()` does: `"0s"`, `"1.5µs"`,
/// `"250ms"`, `"10s"`, `"1m30s"`, `"72h0m0s"`.
pub fn format_go_duration(d: Duration) -> String {
    let nanos = d.as_nanos();
    if nanos == 0 {
        return "0s".to_string();
    }
    if nanos < 1_000_000_000 {
        // Sub-second: a single unit with a fraction.
        let (unit, per) = if nanos < 1_000 {
            ("ns", 1)
        } else if nanos < 1_000_000 {
            ("µs", 1_000)
        } else {
            ("ms", 1_000_000)
        };
        return format!("{}{unit}", fraction(nanos, per));
    }
    let secs_total = nanos / 1_000_000_000;
    let sub = nanos % 1_000_000_000;
    let hours = secs_total / 3600;
    let minutes = (secs_total % 3600) / 60;
    let secs = secs_total % 60;
    let secs = fraction(secs * 1_000_000_000 + sub, 1_000_000_000);
    if hours > 0 {
        format!("{hours}h{minutes}m{secs}s")
    } else if minutes > 0 {
        format!("{minutes}m{secs}s")
    } else {
        format!("{secs}s")
    }
}

/// `value / per` as a decimal with trailing zeros trimmed (`1500, 1000` → `"1.5"`).
fn fraction(value: u128, per: u128) -> String {
    let whole = value / per;
    let rem = value % per;
    if rem == 0 {
        return whole.to_string();
    }
    let width = per.ilog10() as usize;
    let digits = format!("{rem:0width$}");
    format!("{whole}.{}", digits.trim_end_matches('0'))
}

/// Serde adapter for `Duration` fields written as Go duration strings.
///
/// Use as `#[serde(with = "meridian_config::duration::serde_go")]`. Deserializing also accepts
/// the integer `0` (figment reads `MERIDIAN_X=0` from the environment as a number); any other
/// bare number is rejected with Go's "missing unit" error rather than guessing a unit.
pub mod serde_go {
    use super::*;
    use serde::{Deserializer, Serializer, de};

    /// Writes `d` as a Go duration string.
    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format_go_duration(*d))
    }

    /// Reads a Go duration string.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        d.deserialize_any(GoDurationVisitor)
    }

    pub(crate) struct GoDurationVisitor;

    impl de::Visitor<'_> for GoDurationVisitor {
        type Value = Duration;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a Go duration string such as \"10s\" or \"1.5h\"")
        }

        fn visit_str<E: de::Error>(self, v: &str) -> Result<Duration, E> {
            parse_go_duration(v).map_err(E::custom)
        }

        fn visit_u64<E: de::Error>(self, v: u64) -> Result<Duration, E> {
            if v == 0 {
                Ok(Duration::ZERO)
            } else {
                Err(E::custom(DurationError::MissingUnit(v.to_string())))
            }
        }

        fn visit_i64<E: de::Error>(self, v: i64) -> Result<Duration, E> {
            match u64::try_from(v) {
                Ok(v) => self.visit_u64(v),
                Err(_) => Err(E::custom(DurationError::Negative(v.to_string()))),
            }
        }
    }

    /// The same adapter for `BTreeMap<String, Duration>` (e.g. `dns_config.service_ttl`).
    pub mod map {
        use std::collections::BTreeMap;

        use super::*;
        use serde::ser::SerializeMap;

        /// Writes each value as a Go duration string.
        pub fn serialize<S: Serializer>(
            m: &BTreeMap<String, Duration>,
            s: S,
        ) -> Result<S::Ok, S::Error> {
            let mut map = s.serialize_map(Some(m.len()))?;
            for (k, v) in m {
                map.serialize_entry(k, &format_go_duration(*v))?;
            }
            map.end()
        }

        /// Reads a map whose values are Go duration strings.
        pub fn deserialize<'de, D: Deserializer<'de>>(
            d: D,
        ) -> Result<BTreeMap<String, Duration>, D::Error> {
            struct V;
            impl<'de> de::Visitor<'de> for V {
                type Value = BTreeMap<String, Duration>;
                fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                    f.write_str("a map of names to Go duration strings")
                }
                fn visit_map<A: de::MapAccess<'de>>(
                    self,
                    mut a: A,
                ) -> Result<Self::Value, A::Error> {
                    let mut out = BTreeMap::new();
                    while let Some((k, v)) = a.next_entry::<String, Wrapped>()? {
                        out.insert(k, v.0);
                    }
                    Ok(out)
                }
            }
            d.deserialize_map(V)
        }

        struct Wrapped(Duration);
        impl<'de> serde::Deserialize<'de> for Wrapped {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                super::deserialize(d).map(Wrapped)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(v: u64) -> Duration {
        Duration::from_millis(v)
    }

    #[test]
    fn parses_the_forms_real_clients_send() {
        assert_eq!(parse_go_duration("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_go_duration("1000ms"), Ok(ms(1000)));
        assert_eq!(parse_go_duration("15.0s"), Ok(Duration::from_secs(15)));
        assert_eq!(parse_go_duration("1.5h"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_go_duration("0.001s"), Ok(ms(1)));
        assert_eq!(
            parse_go_duration("4.880273342132568s"),
            Ok(Duration::from_nanos(4_880_273_342))
        );
        assert_eq!(parse_go_duration("2h45m"), Ok(Duration::from_secs(9900)));
        assert_eq!(
            parse_go_duration("1h2m3s4ms5us6ns"),
            Ok(Duration::new(3723, 4_005_006))
        );
        assert_eq!(parse_go_duration("3µs"), Ok(Duration::from_micros(3)));
        assert_eq!(parse_go_duration("3μs"), Ok(Duration::from_micros(3)));
        assert_eq!(parse_go_duration(".5s"), Ok(ms(500)));
        assert_eq!(parse_go_duration("5.s"), Ok(Duration::from_secs(5)));
        assert_eq!(parse_go_duration("+5s"), Ok(Duration::from_secs(5)));
        assert_eq!(
            parse_go_duration("87600h"),
            Ok(Duration::from_secs(87600 * 3600))
        );
    }

    #[test]
    fn zero_needs_no_unit() {
        assert_eq!(parse_go_duration("0"), Ok(Duration::ZERO));
        assert_eq!(parse_go_duration("-0"), Ok(Duration::ZERO));
        assert_eq!(parse_go_duration("0s"), Ok(Duration::ZERO));
    }

    #[test]
    fn rejects_what_go_rejects() {
        assert!(matches!(
            parse_go_duration(""),
            Err(DurationError::Invalid(_))
        ));
        assert!(matches!(
            parse_go_duration("s"),
            Err(DurationError::Invalid(_))
        ));
        assert!(matches!(
            parse_go_duration("."),
            Err(DurationError::Invalid(_))
        ));
        assert!(matches!(
            parse_go_duration("10"),
            Err(DurationError::MissingUnit(_))
        ));
        assert!(matches!(
            parse_go_duration("1s5"),
            Err(DurationError::MissingUnit(_))
        ));
        assert_eq!(
            parse_go_duration("10parsecs"),
            Err(DurationError::UnknownUnit {
                unit: "parsecs".into(),
                input: "10parsecs".into()
            })
        );
        assert!(matches!(
            parse_go_duration("10 s"),
            Err(DurationError::UnknownUnit { .. })
        ));
        assert!(matches!(
            parse_go_duration("-5s"),
            Err(DurationError::Negative(_))
        ));
        assert!(matches!(
            parse_go_duration("3000000h"),
            Err(DurationError::Overflow(_))
        ));
        assert!(matches!(
            parse_go_duration("99999999999999999999999999h"),
            Err(DurationError::Overflow(_))
        ));
    }

    #[test]
    fn error_messages_name_the_input() {
        let e = parse_go_duration("10parsecs").unwrap_err().to_string();
        assert_eq!(e, r#"unknown unit "parsecs" in duration "10parsecs""#);
    }

    #[test]
    fn formats_like_go() {
        assert_eq!(format_go_duration(Duration::ZERO), "0s");
        assert_eq!(format_go_duration(Duration::from_nanos(1)), "1ns");
        assert_eq!(format_go_duration(Duration::from_nanos(1500)), "1.5µs");
        assert_eq!(format_go_duration(ms(250)), "250ms");
        assert_eq!(format_go_duration(Duration::from_micros(1500)), "1.5ms");
        assert_eq!(format_go_duration(Duration::from_secs(10)), "10s");
        assert_eq!(format_go_duration(ms(1500)), "1.5s");
        assert_eq!(format_go_duration(Duration::from_secs(90)), "1m30s");
        assert_eq!(format_go_duration(Duration::from_secs(3600)), "1h0m0s");
        assert_eq!(
            format_go_duration(Duration::from_secs(72 * 3600)),
            "72h0m0s"
        );
        assert_eq!(
            format_go_duration(Duration::from_nanos(4_880_273_342)),
            "4.880273342s"
        );
    }

    #[test]
    fn format_then_parse_round_trips() {
        for d in [
            Duration::from_nanos(7),
            Duration::from_nanos(123_456_789),
            Duration::new(3723, 4_005_006),
            Duration::from_secs(87600 * 3600),
        ] {
            assert_eq!(parse_go_duration(&format_go_duration(d)), Ok(d));
        }
    }

    #[test]
    fn serde_adapter_reads_strings_and_zero() {
        #[derive(serde::Deserialize, serde::Serialize)]
        struct T {
            #[serde(with = "serde_go")]
            d: Duration,
        }
        let t: T = serde_json::from_str(r#"{"d":"1.5s"}"#).unwrap();
        assert_eq!(t.d, ms(1500));
        let t: T = serde_json::from_str(r#"{"d":0}"#).unwrap();
        assert_eq!(t.d, Duration::ZERO);
        let e = serde_json::from_str::<T>(r#"{"d":30}"#)
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("missing unit"), "{e}");
        assert_eq!(
            serde_json::to_string(&T { d: ms(1500) }).unwrap(),
            r#"{"d":"1.5s"}"#
        );
    }
}
