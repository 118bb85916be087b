//! A five-field cron schedule (`minute hour day-of-month month day-of-week`, UTC), the
//! arrivals of scheduled job categories. Small enough to own: each field is a set of
//! allowed values, and arrivals are found by testing every minute of the simulated span.
//!
//! Fields take `*`, `N`, `A-B`, `*/S`, `A-B/S`, `N/S` (from N to the field's end) and
//! comma-separated lists of those; months also `jan`–`dec`, days of week `sun`–`sat`
//! (0 and 7 are both Sunday). As in Vixie cron, when both day-of-month and day-of-week
//! are restricted a day matching *either* fires.

use chrono::{DateTime, Datelike, Timelike, Utc};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cron {
    minutes: u64,
    hours: u64,
    days_of_month: u64,
    months: u64,
    days_of_week: u64,
    /// Day-of-month and day-of-week were both given (not `*`): either may match.
    either_day: bool,
}

const MONTHS: [&str; 12] = [
    "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
];
const DAYS: [&str; 7] = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"];

struct Field {
    name: &'static str,
    low: u32,
    high: u32,
    names: &'static [&'static str],
}

impl Field {
    fn value(&self, text: &str) -> Result<u32, String> {
        let lower = text.to_ascii_lowercase();
        if let Some(i) = self.names.iter().position(|n| *n == lower) {
            return Ok(i as u32 + self.low);
        }
        let v: u32 = text
            .parse()
            .map_err(|_| format!("{}: {text:?} is not a number", self.name))?;
        if v < self.low || v > self.high {
            return Err(format!(
                "{}: {v} is outside {}-{}",
                self.name, self.low, self.high
            ));
        }
        Ok(v)
    }

    /// The field as a bit set of allowed values; `None` for a plain `*`.
    fn parse(&self, text: &str) -> Result<Option<u64>, String> {
        if text == "*" {
            return Ok(None);
        }
        let mut bits = 0u64;
        for part in text.split(',') {
            let (range, step) = match part.split_once('/') {
                Some((r, s)) => {
                    let step: u32 = s.parse().ok().filter(|s| *s > 0).ok_or_else(|| {
                        format!("{}: step {s:?} is not a positive number", self.name)
                    })?;
                    (r, step)
                }
                None => (part, 1),
            };
            let (from, to) = if range == "*" {
                (self.low, self.high)
            } else if let Some((a, b)) = range.split_once('-') {
                (self.value(a)?, self.value(b)?)
            } else {
                let v = self.value(range)?;
                // `N/S` runs from N to the end of the field.
                (v, if part.contains('/') { self.high } else { v })
            };
            if from > to {
                return Err(format!("{}: range {range:?} runs backwards", self.name));
            }
            for v in (from..=to).step_by(step as usize) {
                bits |= 1 << v;
            }
        }
        Ok(Some(bits))
    }
}

impl Cron {
    pub fn parse(text: &str) -> Result<Cron, String> {
        let fields: Vec<&str> = text.split_whitespace().collect();
        if fields.len() != 5 {
            return Err(format!(
                "{text:?} has {} fields; a cron schedule has 5 (minute hour day-of-month month day-of-week)",
                fields.len()
            ));
        }
        let spec = [
            Field {
                name: "minute",
                low: 0,
                high: 59,
                names: &[],
            },
            Field {
                name: "hour",
                low: 0,
                high: 23,
                names: &[],
            },
            Field {
                name: "day-of-month",
                low: 1,
                high: 31,
                names: &[],
            },
            Field {
                name: "month",
                low: 1,
                high: 12,
                names: &MONTHS,
            },
            Field {
                name: "day-of-week",
                low: 0,
                high: 7,
                names: &DAYS,
            },
        ];
        let mut parsed = [None; 5];
        for (i, (field, text)) in spec.iter().zip(&fields).enumerate() {
            parsed[i] = field.parse(text)?;
        }
        let all = |f: &Field| (f.low..=f.high).fold(0u64, |b, v| b | 1 << v);
        let mut days_of_week = parsed[4].unwrap_or_else(|| all(&spec[4]));
        if days_of_week & (1 << 7) != 0 {
            days_of_week |= 1; // 7 is Sunday too
        }
        Ok(Cron {
            minutes: parsed[0].unwrap_or_else(|| all(&spec[0])),
            hours: parsed[1].unwrap_or_else(|| all(&spec[1])),
            days_of_month: parsed[2].unwrap_or_else(|| all(&spec[2])),
            months: parsed[3].unwrap_or_else(|| all(&spec[3])),
            days_of_week,
            either_day: parsed[2].is_some() && parsed[4].is_some(),
        })
    }

    /// Whether the schedule fires in the minute `t` falls in.
    pub fn matches(&self, t: DateTime<Utc>) -> bool {
        let bit = |set: u64, v: u32| set & (1 << v) != 0;
        if !(bit(self.minutes, t.minute())
            && bit(self.hours, t.hour())
            && bit(self.months, t.month()))
        {
            return false;
        }
        let dom = bit(self.days_of_month, t.day());
        let dow = bit(self.days_of_week, t.weekday().num_days_from_sunday());
        if self.either_day {
            dom || dow
        } else {
            dom && dow
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    #[test]
    fn fields_match_minute_by_minute() {
        let every5 = Cron::parse("*/5 * * * *").unwrap();
        assert!(every5.matches(at("2026-03-02T10:15:00Z")));
        assert!(!every5.matches(at("2026-03-02T10:16:00Z")));
        let business = Cron::parse("0 7-19 * * mon-fri").unwrap();
        assert!(business.matches(at("2026-03-02T07:00:00Z")), "a Monday");
        assert!(!business.matches(at("2026-03-07T07:00:00Z")), "a Saturday");
        assert!(!business.matches(at("2026-03-02T20:00:00Z")));
        let monthly = Cron::parse("30 2 1 * *").unwrap();
        assert!(monthly.matches(at("2026-04-01T02:30:00Z")));
        assert!(!monthly.matches(at("2026-04-02T02:30:00Z")));
        let sunday = Cron::parse("0 0 * * 7").unwrap();
        assert!(sunday.matches(at("2026-03-01T00:00:00Z")), "7 is Sunday");
        let list = Cron::parse("0,30 9 * jan,mar *").unwrap();
        assert!(list.matches(at("2026-03-02T09:30:00Z")));
        assert!(!list.matches(at("2026-02-02T09:30:00Z")));
        let from = Cron::parse("10/20 * * * *").unwrap();
        assert!(from.matches(at("2026-03-02T09:50:00Z")));
        assert!(!from.matches(at("2026-03-02T09:00:00Z")));
    }

    #[test]
    fn day_of_month_or_day_of_week() {
        // Vixie cron: both restricted → either fires.
        let c = Cron::parse("0 0 13 * fri").unwrap();
        assert!(c.matches(at("2026-03-13T00:00:00Z")), "the 13th");
        assert!(c.matches(at("2026-03-06T00:00:00Z")), "a Friday");
        assert!(!c.matches(at("2026-03-07T00:00:00Z")));
    }

    #[test]
    fn bad_schedules_say_which_field() {
        assert!(Cron::parse("* * * *").unwrap_err().contains("has 4 fields"));
        assert!(Cron::parse("61 * * * *")
            .unwrap_err()
            .starts_with("minute: 61"));
        assert!(Cron::parse("* 5-2 * * *")
            .unwrap_err()
            .contains("backwards"));
        assert!(Cron::parse("*/0 * * * *").unwrap_err().contains("step"));
        assert!(Cron::parse("* * * foo *").unwrap_err().starts_with("month"));
    }
}
