//! Cron expressions as the controller's parser (ringtail/go-cron) reads
//! them: six fields with seconds first, day of week 0-6 from Sunday,
//! `N/step` meaning N to the field's end, day of month and day of week
//! combined by OR when both are restricted; the descriptors `@yearly`,
//! `@monthly`, `@weekly`, `@daily`, `@hourly`, `@every <duration>` and
//! `@date YYYY-MM-DD hh:mm:ss` (that month, day and time in every year).
//! croner evaluates the expressions; this module decides which ones the
//! controller would accept, so a scenario never relies on a croner-only
//! extension (`L`, `W`, `#`, a year field) that the real controller refuses.

use std::time::Duration;

use croner::parser::{CronParser, Seconds, Year};
use croner::Cron;
use jiff::{ToSpan, Zoned};

/// A parsed `schedule`.
#[derive(Debug, Clone)]
pub enum Plan {
    Cron(Box<Cron>),
    /// `@every`: the first run one period after the job is added.
    Every(Duration),
}

const FIELDS: [(&str, u32, u32); 6] = [
    ("second", 0, 59),
    ("minute", 0, 59),
    ("hour", 0, 23),
    ("day of month", 1, 31),
    ("month", 1, 12),
    ("day of week", 0, 6),
];
const MONTHS: [&str; 12] = [
    "JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC",
];
const DAYS: [&str; 7] = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"];

pub const SYNTAX: &str = "six fields `second minute hour day-of-month month day-of-week` \
(e.g. `0 0 9 * * *`, day of week 0-6 from Sunday), or @yearly, @monthly, @weekly, @daily, \
@hourly, `@every 90s`, `@date 2026-12-01 09:00:00`";

/// Parses a job's `schedule` or an `excludeDates` entry.
pub fn parse(spec: &str) -> Result<Plan, String> {
    let s = spec.trim();
    if s.is_empty() {
        return Err(format!("is empty; expected {SYNTAX}"));
    }
    if let Some(rest) = s.strip_prefix('@') {
        return descriptor(rest);
    }
    let fields: Vec<&str> = s.split_whitespace().collect();
    if fields.len() != 6 {
        return Err(format!(
            "`{s}` has {} fields; expected {SYNTAX}",
            fields.len()
        ));
    }
    for (f, (name, lo, hi)) in fields.iter().zip(FIELDS) {
        field(f, name, lo, hi).map_err(|why| format!("`{s}`: {name} `{f}`: {why}"))?;
    }
    pattern(s)
}

fn pattern(s: &str) -> Result<Plan, String> {
    CronParser::builder()
        .seconds(Seconds::Required)
        .year(Year::Disallowed)
        .sloppy_ranges(true)
        .build()
        .parse(s)
        .map(|c| Plan::Cron(Box::new(c)))
        .map_err(|e| format!("`{s}`: {e}"))
}

/// One field: `*`, `?` (days only), values, names, `a-b`, `x/step`, lists.
fn field(f: &str, name: &str, lo: u32, hi: u32) -> Result<(), String> {
    for item in f.split(',') {
        let (range, step) = match item.split_once('/') {
            Some((r, st)) => (r, Some(st)),
            None => (item, None),
        };
        if let Some(st) = step {
            match st.parse::<u32>() {
                Ok(n) if n > 0 => {}
                _ => return Err(format!("step `{st}` must be a whole number above 0")),
            }
        }
        if range == "*" || (range == "?" && name.starts_with("day")) {
            continue;
        }
        let bounds: Vec<&str> = range.splitn(2, '-').collect();
        for b in &bounds {
            value(b, name, lo, hi)?;
        }
        if let [a, b] = bounds[..] {
            if value(a, name, lo, hi)? > value(b, name, lo, hi)? {
                return Err(format!("range `{range}` runs backwards"));
            }
        }
    }
    Ok(())
}

fn value(v: &str, name: &str, lo: u32, hi: u32) -> Result<u32, String> {
    let names: &[&str] = match name {
        "month" => &MONTHS,
        "day of week" => &DAYS,
        _ => &[],
    };
    let base = if name == "month" { 1 } else { 0 };
    if let Some(i) = names.iter().position(|n| n.eq_ignore_ascii_case(v)) {
        return Ok(i as u32 + base);
    }
    match v.parse::<u32>() {
        Ok(n) if (lo..=hi).contains(&n) => Ok(n),
        _ => Err(format!(
            "`{v}` is not allowed; {lo}-{hi}{}",
            if names.is_empty() {
                String::new()
            } else {
                format!(" or {}-{}", names[0], names[names.len() - 1])
            }
        )),
    }
}

fn descriptor(d: &str) -> Result<Plan, String> {
    let equivalent = match d.to_ascii_lowercase().as_str() {
        "yearly" | "annually" => "0 0 0 1 1 *",
        "monthly" => "0 0 0 1 * *",
        "weekly" => "0 0 0 * * 0",
        "daily" | "midnight" => "0 0 0 * * *",
        "hourly" => "0 0 * * * *",
        _ => "",
    };
    if !equivalent.is_empty() {
        return pattern(equivalent);
    }
    if let Some(dur) = d.strip_prefix("every ") {
        let period =
            humantime::parse_duration(dur.trim()).map_err(|e| format!("`@every {dur}`: {e}"))?;
        // go-cron rounds down to whole seconds, and to at least one.
        let secs = period.as_secs().max(1);
        return Ok(Plan::Every(Duration::from_secs(secs)));
    }
    if let Some(date) = d.strip_prefix("date ") {
        let dt: jiff::civil::DateTime = date
            .trim()
            .parse()
            .ok()
            .filter(|_| date.trim().len() == 19)
            .ok_or_else(|| format!("`@date {date}`: expected `@date YYYY-MM-DD hh:mm:ss`"))?;
        // The controller matches second, minute, hour, day and month: the
        // date recurs every year.
        return pattern(&format!(
            "{} {} {} {} {} *",
            dt.second(),
            dt.minute(),
            dt.hour(),
            dt.day(),
            dt.month()
        ));
    }
    Err(format!("`@{d}` is not a descriptor; expected {SYNTAX}"))
}

impl Plan {
    /// The first run strictly after `after` (a job added at `added`).
    pub fn next(&self, after: &Zoned, added: &Zoned) -> Option<Zoned> {
        match self {
            Plan::Cron(c) => c.find_next_occurrence(after, false).ok(),
            Plan::Every(d) => {
                let period = d.as_secs() as i64;
                let since = after.timestamp().as_second() - added.timestamp().as_second();
                let k = since.div_euclid(period) + 1;
                added.checked_add((k * period).seconds()).ok()
            }
        }
    }

    /// Whether the expression matches some second of `day`'s calendar date
    /// (an `excludeDates` entry: `* * * 15 11 *` is the whole of 15 November).
    pub fn matches_day(&self, day: &Zoned) -> bool {
        let Plan::Cron(c) = self else { return false };
        let Ok(start) = day.start_of_day() else {
            return false;
        };
        let Ok(end) = start.tomorrow().and_then(|t| t.start_of_day()) else {
            return false;
        };
        c.find_next_occurrence(&start, true)
            .is_ok_and(|next| next < end)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> Zoned {
        s.parse().unwrap()
    }

    fn next(spec: &str, after: &str) -> String {
        let z = at(after);
        parse(spec).unwrap().next(&z, &z).unwrap().to_string()
    }

    #[test]
    fn seconds_first_and_strictly_after() {
        assert_eq!(
            next("0 0 9 * * *", "2026-12-01T08:55:00+00:00[UTC]"),
            "2026-12-01T09:00:00+00:00[UTC]"
        );
        // At the very instant: the next one (go-cron's Next is strictly after).
        assert_eq!(
            next("0 0 9 * * *", "2026-12-01T09:00:00+00:00[UTC]"),
            "2026-12-02T09:00:00+00:00[UTC]"
        );
        assert_eq!(
            next("30 */1 * * * *", "2026-12-01T09:00:00+00:00[UTC]"),
            "2026-12-01T09:00:30+00:00[UTC]"
        );
    }

    #[test]
    fn day_of_week_from_sunday_and_or_only_when_both_restricted() {
        // 2026-12-01 is a Tuesday; day 1 is Monday.
        assert_eq!(
            next("0 0 9 * * 1", "2026-12-01T10:00:00+00:00[UTC]"),
            "2026-12-07T09:00:00+00:00[UTC]"
        );
        assert_eq!(
            next("0 0 9 * * SUN", "2026-12-01T10:00:00+00:00[UTC]"),
            "2026-12-06T09:00:00+00:00[UTC]"
        );
        // Day 15 or a Friday, whichever comes first.
        assert_eq!(
            next("0 0 9 15 * 5", "2026-12-01T10:00:00+00:00[UTC]"),
            "2026-12-04T09:00:00+00:00[UTC]"
        );
        // go-cron's `N/step`: from N to the end.
        assert_eq!(
            next("0 10/20 * * * *", "2026-12-01T10:31:00+00:00[UTC]"),
            "2026-12-01T10:50:00+00:00[UTC]"
        );
    }

    #[test]
    fn descriptors() {
        assert_eq!(
            next("@daily", "2026-12-01T10:00:00+08:00[Asia/Shanghai]"),
            "2026-12-02T00:00:00+08:00[Asia/Shanghai]"
        );
        assert_eq!(
            next(
                "@date 2020-11-16 23:59:00",
                "2026-12-01T10:00:00+00:00[UTC]"
            ),
            "2027-11-16T23:59:00+00:00[UTC]"
        );
        let added = at("2026-12-01T10:00:00+00:00[UTC]");
        let every = parse("@every 90s").unwrap();
        let first = every.next(&added, &added).unwrap();
        assert_eq!(first.to_string(), "2026-12-01T10:01:30+00:00[UTC]");
        assert_eq!(
            every.next(&first, &added).unwrap().to_string(),
            "2026-12-01T10:03:00+00:00[UTC]"
        );
    }

    #[test]
    fn refuses_what_the_controller_refuses() {
        for (spec, why) in [
            ("0 9 * * *", "has 5 fields"),
            ("0 0 9 * * * 2027", "has 7 fields"),
            ("0 0 24 * * *", "hour `24`"),
            ("0 0 9 L * *", "day of month `L`"),
            ("0 0 9 * * 5#2", "day of week `5#2`"),
            ("0 0 9 * * 7", "day of week `7`"),
            ("0 0 9 ? * ?", ""),
            ("0 0 */0 * * *", "step `0`"),
            ("0 0 17-9 * * *", "runs backwards"),
            ("@reboot", "not a descriptor"),
            ("@every soon", "@every soon"),
            ("@date 2026-12-01", "expected `@date"),
            ("", "is empty"),
        ] {
            match parse(spec) {
                Ok(_) if why.is_empty() => {}
                Ok(_) => panic!("`{spec}` was accepted"),
                Err(e) => assert!(!why.is_empty() && e.contains(why), "`{spec}`: {e}"),
            }
        }
    }

    #[test]
    fn exclude_dates_cover_whole_days() {
        let nov15 = parse("* * * 15 11 *").unwrap();
        assert!(nov15.matches_day(&at("2026-11-15T23:59:59+00:00[UTC]")));
        assert!(!nov15.matches_day(&at("2026-11-16T00:00:00+00:00[UTC]")));
        let friday = parse("* * * * * 5").unwrap();
        assert!(friday.matches_day(&at("2026-12-04T09:00:00+00:00[UTC]")));
        assert!(!friday.matches_day(&at("2026-12-03T09:00:00+00:00[UTC]")));
        // A single instant of the day counts too.
        assert!(parse("0 0 0 15 11 *")
            .unwrap()
            .matches_day(&at("2026-11-15T12:00:00+00:00[UTC]")));
    }
}
