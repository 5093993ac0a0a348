//! Pure calendar arithmetic: term time, closures, the timetable week cycle, and local wall-clock
//! times in the tenant's zone. Apply uses it, so it must stay deterministic: jiff's time zone
//! database is bundled into the binary (`tzdb-bundle-always`), never read from the host.

use jiff::civil::{Date, DateTime, Time, Weekday};
use jiff::tz::TimeZone;
use jiff::{Timestamp, ToSpan};

use super::model::{Calendar, Closure, Lesson, Occurrence, Period, Term, WeeklyRule};

/// Weeks before any term is defined cycle from this Monday.
const CYCLE_EPOCH: Date = jiff::civil::date(2024, 1, 1);

/// ISO weekday number, Monday = 1.
pub fn weekday_number(d: Date) -> u8 {
    d.weekday().to_monday_one_offset() as u8
}

pub fn weekday_name(n: u8) -> &'static str {
    match n {
        1 => "Mon",
        2 => "Tue",
        3 => "Wed",
        4 => "Thu",
        5 => "Fri",
        6 => "Sat",
        _ => "Sun",
    }
}

fn monday_of(d: Date) -> Date {
    d.checked_sub((weekday_number(d) as i64 - 1).days())
        .unwrap_or(d)
}

/// The tenant's zone; a tenant's zone was validated when it was created.
pub fn zone(name: &str) -> TimeZone {
    TimeZone::get(name).unwrap_or(TimeZone::UTC)
}

/// The instant of local `date` at `time` in `tz`. In the spring-forward gap the time moves
/// forward, in the autumn fold the earlier instant is taken (RFC 5545's rule).
pub fn instant(tz: &TimeZone, date: Date, time: Time) -> Timestamp {
    tz.to_ambiguous_timestamp(DateTime::from_parts(date, time))
        .compatible()
        .unwrap_or(Timestamp::MAX)
}

/// The local date of an instant.
pub fn local_date(tz: &TimeZone, t: Timestamp) -> Date {
    t.to_zoned(tz.clone()).date()
}

/// Local dates touched by `[start, end)`.
pub fn dates_between(tz: &TimeZone, start: Timestamp, end: Timestamp) -> Vec<Date> {
    let first = local_date(tz, start);
    let last_instant = end
        .checked_sub(jiff::SignedDuration::from_nanos(1))
        .unwrap_or(end);
    let last = local_date(tz, last_instant.max(start));
    let mut out = Vec::new();
    let mut d = first;
    while d <= last && out.len() < 400 {
        out.push(d);
        match d.tomorrow() {
            Ok(n) => d = n,
            Err(_) => break,
        }
    }
    out
}

impl Calendar {
    pub fn term_of(&self, d: Date) -> Option<&Term> {
        self.terms.iter().find(|t| t.start <= d && d <= t.end)
    }

    pub fn closure_on(&self, d: Date) -> Option<&Closure> {
        self.closures.iter().find(|c| c.start <= d && d <= c.end)
    }

    /// Whether lessons run on `d`: in term (or no terms defined), and not closed.
    pub fn is_teaching_day(&self, d: Date) -> bool {
        (self.terms.is_empty() || self.term_of(d).is_some()) && self.closure_on(d).is_none()
    }

    /// A week whose every weekday (Monday to Friday) is closed, such as half term.
    fn week_closed(&self, monday: Date) -> bool {
        (0..5).all(|i| {
            monday
                .checked_add(i.days())
                .is_ok_and(|d| self.closure_on(d).is_some())
        })
    }

    /// The index into `week_labels` of the week containing `d`, or `None` outside term time.
    /// Within a term, weeks count from the term's first week; fully closed weeks do not count.
    pub fn week_index(&self, d: Date) -> Option<usize> {
        let n = self.week_labels.len().max(1);
        if self.terms.is_empty() {
            let weeks = (monday_of(d) - CYCLE_EPOCH).get_days().div_euclid(7);
            return Some(weeks.rem_euclid(n as i32) as usize);
        }
        let term = self.term_of(d)?;
        let target = monday_of(d);
        let mut monday = monday_of(term.start);
        let mut counted = 0usize;
        while monday < target {
            if !self.week_closed(monday) {
                counted += 1;
            }
            monday = monday.checked_add(7.days()).ok()?;
        }
        Some((term.first_week as usize + counted) % n)
    }

    pub fn week_label(&self, d: Date) -> Option<&str> {
        self.week_index(d)
            .and_then(|i| self.week_labels.get(i))
            .map(String::as_str)
    }

    /// The period called `name` (any case) on ISO weekday `weekday`.
    pub fn period_on(&self, weekday: u8, name: &str) -> Option<&Period> {
        self.periods_on(weekday)
            .find(|p| p.name.eq_ignore_ascii_case(name))
    }

    pub fn periods_on(&self, weekday: u8) -> impl Iterator<Item = &Period> {
        self.periods.iter().filter(move |p| p.weekday == weekday)
    }
}

impl Lesson {
    /// Whether the lesson occupies its room on `d`.
    pub fn occurs_on(&self, cal: &Calendar, d: Date) -> bool {
        let s = &self.spec;
        s.weekday == weekday_number(d)
            && s.from <= d
            && d <= s.to
            && !self.released.contains(&d)
            && cal.is_teaching_day(d)
            && match &s.week {
                None => true,
                Some(w) => cal.week_label(d) == Some(w.as_str()),
            }
    }
}

/// Every occurrence of `rule`, skipping closures, as instants in `tz`.
pub fn expand_weekly(cal: &Calendar, tz: &TimeZone, rule: &WeeklyRule) -> Vec<Occurrence> {
    let mut out = Vec::new();
    let mut d = rule.first;
    while d <= rule.until && out.len() < MAX_OCCURRENCES {
        let wanted = rule.weekdays.contains(&weekday_number(d))
            && cal.closure_on(d).is_none()
            && rule
                .week
                .as_deref()
                .is_none_or(|w| cal.week_label(d) == Some(w));
        if wanted {
            out.push(Occurrence {
                date: d,
                start: instant(tz, d, rule.start),
                end: instant(tz, d, rule.end),
            });
        }
        match d.tomorrow() {
            Ok(n) => d = n,
            Err(_) => break,
        }
    }
    out
}

/// Most occurrences one recurring booking may have.
pub const MAX_OCCURRENCES: usize = 500;

pub fn parse_weekday(s: &str) -> Option<u8> {
    let s = s.trim().to_ascii_lowercase();
    if let Ok(n) = s.parse::<u8>() {
        return (1..=7).contains(&n).then_some(n);
    }
    let wd = match s.get(..3)? {
        "mon" => Weekday::Monday,
        "tue" => Weekday::Tuesday,
        "wed" => Weekday::Wednesday,
        "thu" => Weekday::Thursday,
        "fri" => Weekday::Friday,
        "sat" => Weekday::Saturday,
        "sun" => Weekday::Sunday,
        _ => return None,
    };
    Some(wd.to_monday_one_offset() as u8)
}
