//! First-response SLA: how long each priority may wait, on the clock or in business days.

use chrono::{DateTime, Datelike, Duration, FixedOffset, NaiveTime, Weekday};
use supportd_core::Priority;

use crate::config::RawSla;

/// How long a first response may take.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SlaDuration {
    /// Wall-clock seconds, nights and weekends included.
    Clock(i64),
    /// Business days (Monday to Friday) in the desk's time zone: due at the same
    /// time of day N business days later (from the next business day's start
    /// when the ticket arrives on a weekend).
    BusinessDays(u32),
}

impl SlaDuration {
    /// Parses `"90m"`, `"4h"`, `"2d"` or `"1 business day"` / `"3 business days"`.
    pub fn parse(text: &str) -> Result<SlaDuration, String> {
        let text = text.trim();
        let invalid = || {
            format!(
                "`{text}` is not a duration (expected e.g. \"30m\", \"4h\", \"2d\" or \"1 business day\")"
            )
        };
        if let Some(count) = text
            .strip_suffix("business days")
            .or_else(|| text.strip_suffix("business day"))
        {
            let days: u32 = count.trim().parse().map_err(|_| invalid())?;
            if days == 0 || days > 60 {
                return Err(invalid());
            }
            return Ok(SlaDuration::BusinessDays(days));
        }
        let split = text
            .find(|c: char| !c.is_ascii_digit())
            .ok_or_else(invalid)?;
        let (count, unit) = text.split_at(split);
        let count: i64 = count.parse().map_err(|_| invalid())?;
        let unit_seconds = match unit.trim() {
            "m" | "min" | "minutes" => 60,
            "h" | "hours" => 3_600,
            "d" | "days" => 86_400,
            _ => return Err(invalid()),
        };
        if count == 0 || count > 10_000 {
            return Err(invalid());
        }
        Ok(SlaDuration::Clock(count * unit_seconds))
    }
}

/// The SLA of each priority, validated.
#[derive(Debug, Clone)]
pub struct SlaPolicy {
    urgent: SlaDuration,
    high: SlaDuration,
    normal: SlaDuration,
    low: SlaDuration,
    utc_offset: FixedOffset,
}

impl SlaPolicy {
    pub(crate) fn from_raw(raw: &RawSla) -> Result<SlaPolicy, String> {
        let parse = |key: &str, text: &str| {
            SlaDuration::parse(text).map_err(|message| format!("`{key}`: {message}"))
        };
        let utc_offset: FixedOffset = raw.utc_offset.parse().map_err(|_| {
            format!(
                "`utc_offset`: `{}` is not an offset like \"-06:00\"",
                raw.utc_offset
            )
        })?;
        Ok(SlaPolicy {
            urgent: parse("urgent", &raw.urgent)?,
            high: parse("high", &raw.high)?,
            normal: parse("normal", &raw.normal)?,
            low: parse("low", &raw.low)?,
            utc_offset,
        })
    }

    /// When the first response to a ticket of `priority` that arrived at
    /// `received_at` (Unix seconds) is due.
    pub fn due(&self, priority: Priority, received_at: i64) -> i64 {
        let duration = match priority {
            Priority::Urgent => self.urgent,
            Priority::High => self.high,
            Priority::Normal => self.normal,
            Priority::Low => self.low,
        };
        match duration {
            SlaDuration::Clock(seconds) => received_at.saturating_add(seconds),
            SlaDuration::BusinessDays(days) => {
                add_business_days(received_at, days, self.utc_offset).unwrap_or(received_at)
            }
        }
    }
}

fn is_weekend(weekday: Weekday) -> bool {
    matches!(weekday, Weekday::Sat | Weekday::Sun)
}

fn add_business_days(received_at: i64, days: u32, utc_offset: FixedOffset) -> Option<i64> {
    let mut local: DateTime<FixedOffset> =
        DateTime::from_timestamp(received_at, 0)?.with_timezone(&utc_offset);
    if is_weekend(local.weekday()) {
        // Arrived on a weekend: the clock starts on Monday morning.
        while is_weekend(local.weekday()) {
            local += Duration::days(1);
        }
        local = local
            .with_time(NaiveTime::from_hms_opt(8, 0, 0)?)
            .single()?;
    }
    let mut remaining = days;
    while remaining > 0 {
        local += Duration::days(1);
        if !is_weekend(local.weekday()) {
            remaining -= 1;
        }
    }
    Some(local.timestamp())
}
