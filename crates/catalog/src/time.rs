//! Calendar arithmetic for `timestamp` values: the one copy of the date conversions.
//!
//! A [`ColumnType::Timestamp`](crate::ColumnType::Timestamp) value is text of the form
//! `YYYY-MM-DD HH:MM:SS[.ffffff]` with no zone. The simulator writes such text, the Parquet sink
//! parses it into microseconds since 1970-01-01 00:00:00 and the test kit turns those back into
//! text; all three meet here, so that they cannot disagree about a leap day. Dates are on the
//! proleptic Gregorian calendar and days are 86,400 seconds (no leap seconds, no zones): the
//! timestamp is read as if it were UTC, which is what a zone-less Parquet timestamp means. The two
//! day conversions are Howard Hinnant's `days_from_civil` and `civil_from_days`, so that no date
//! crate is needed for a few lines of integer arithmetic.

/// Seconds in a day.
pub const SECS_PER_DAY: i64 = 86_400;

/// Days from 0000-03-01 to 1970-01-01: the shift between Hinnant's era-based day count, which
/// starts each year in March so that the leap day falls last, and Unix days.
const UNIX_EPOCH_SHIFT: i64 = 719_468;

/// Days in a 400-year era of the Gregorian calendar.
const DAYS_PER_ERA: i64 = 146_097;

/// Whether `year` is a Gregorian leap year (divisible by 4, and not by 100 unless by 400).
pub const fn is_leap_year(year: i64) -> bool {
    (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
}

/// The number of days of `month` (1 to 12) in `year`; 0 for a month that does not exist, so that
/// no day of it passes a range check.
pub const fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if is_leap_year(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        _ => 0,
    }
}

/// Days since 1970-01-01 of the date `year`-`month`-`day` (negative before it).
///
/// The date must exist (`month` 1 to 12, `day` 1 to [`days_in_month`]); for others the result is
/// that of the arithmetic continued past the month's end, not an error.
pub const fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    // Years start in March, so February's variable length comes last.
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * DAYS_PER_ERA + doe - UNIX_EPOCH_SHIFT
}

/// The date `(year, month, day)` that is `days` days after 1970-01-01 (before it when negative),
/// `month` 1 to 12 and `day` 1 to 31. The inverse of [`days_from_civil`].
pub fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + UNIX_EPOCH_SHIFT;
    let era = z.div_euclid(DAYS_PER_ERA);
    let doe = z - era * DAYS_PER_ERA;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// Parses `YYYY-MM-DD HH:MM:SS[.f…]` (1 to 6 fraction digits, no zone) to microseconds since
/// 1970-01-01 00:00:00, or `None` when the text is not such a timestamp or names no real instant
/// (month 13, February 30th, hour 24, …).
pub fn parse_timestamp(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() < 19
        || b[4] != b'-'
        || b[7] != b'-'
        || b[10] != b' '
        || b[13] != b':'
        || b[16] != b':'
    {
        return None;
    }
    let num = |range: std::ops::Range<usize>| -> Option<i64> {
        b[range]
            .iter()
            .try_fold(0i64, |acc, &d| d.is_ascii_digit().then(|| acc * 10 + i64::from(d - b'0')))
    };
    let (year, month, day) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (hour, minute, second) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if day < 1 || day > days_in_month(year, month) {
        return None;
    }
    if hour > 23 || minute > 59 || second > 59 {
        return None;
    }
    let micros = match &b[19..] {
        [] => 0,
        [b'.', frac @ ..] if (1..=6).contains(&frac.len()) => {
            let digits = num(20..b.len())?;
            // Scale to microseconds: ".5" is 500000 µs.
            digits * 10i64.pow(6 - u32::try_from(frac.len()).ok()?)
        }
        _ => return None,
    };
    let seconds =
        days_from_civil(year, month, day) * SECS_PER_DAY + hour * 3600 + minute * 60 + second;
    Some(seconds * 1_000_000 + micros)
}

/// `YYYY-MM-DD HH:MM:SS` of `secs` seconds since 1970-01-01 00:00:00: the form the portal sends a
/// timestamp in, without a fraction. The inverse of [`parse_timestamp`] for whole seconds of
/// years 0 to 9999.
pub fn format_timestamp(secs: i64) -> String {
    let (year, month, day) = civil_from_days(secs.div_euclid(SECS_PER_DAY));
    let rem = secs.rem_euclid(SECS_PER_DAY);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02}",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_days() {
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(days_from_civil(1969, 12, 31), -1);
        assert_eq!(days_from_civil(2000, 3, 1), 11_017);
        assert_eq!(days_from_civil(2024, 2, 29), 19_782);
        assert_eq!(civil_from_days(19_782), (2024, 2, 29));
        assert_eq!(civil_from_days(-719_468), (0, 3, 1));
    }

    /// Every day over about ±2,700 years converts there and back, and consecutive days are
    /// consecutive dates: the next day of the month, or the first of the next month or year.
    #[test]
    fn days_round_trip_over_a_wide_range() {
        let mut prev = civil_from_days(-1_000_001);
        for days in -1_000_000..=1_000_000 {
            let (y, m, d) = civil_from_days(days);
            assert!((1..=12).contains(&m) && (1..=days_in_month(y, m)).contains(&d), "{days}");
            assert_eq!(days_from_civil(y, m, d), days, "{y}-{m}-{d}");
            let (py, pm, pd) = prev;
            let expected = if pd < days_in_month(py, pm) {
                (py, pm, pd + 1)
            } else if pm < 12 {
                (py, pm + 1, 1)
            } else {
                (py + 1, 1, 1)
            };
            assert_eq!((y, m, d), expected, "{days}");
            prev = (y, m, d);
        }
    }

    #[test]
    fn leap_years_follow_the_gregorian_rule() {
        assert!(is_leap_year(2024) && is_leap_year(2000) && is_leap_year(-4));
        assert!(!is_leap_year(2023) && !is_leap_year(1900) && !is_leap_year(2100));
        assert_eq!(days_in_month(2024, 2), 29);
        assert_eq!(days_in_month(1900, 2), 28);
        assert_eq!(days_in_month(2023, 4), 30);
        assert_eq!(days_in_month(2023, 13), 0);
        assert_eq!(days_in_month(2023, 0), 0);
    }

    #[test]
    fn timestamps_parse_to_unix_microseconds() {
        assert_eq!(parse_timestamp("1970-01-01 00:00:00"), Some(0));
        assert_eq!(parse_timestamp("2023-01-01 10:00:00"), Some(1_672_567_200_000_000));
        assert_eq!(parse_timestamp("2024-02-29 23:59:59.5"), Some(1_709_251_199_500_000));
        assert_eq!(parse_timestamp("1969-12-31 23:59:59.000001"), Some(-999_999));
        for bad in [
            "2023-02-29 00:00:00",
            "2023-13-01 00:00:00",
            "2023-01-01T00:00:00",
            "2023-01-01 24:00:00",
            "2023-01-01 00:00:00.",
            "2023-01-01 00:00:00.1234567",
            "2023-01-01 00:00:00Z",
            "2023-1-01 00:00:00",
        ] {
            assert_eq!(parse_timestamp(bad), None, "{bad}");
        }
    }

    #[test]
    fn timestamps_format_as_civil_dates() {
        assert_eq!(format_timestamp(0), "1970-01-01 00:00:00");
        assert_eq!(format_timestamp(1_546_300_800), "2019-01-01 00:00:00");
        assert_eq!(format_timestamp(1_709_210_096), "2024-02-29 12:34:56");
        assert_eq!(format_timestamp(-1), "1969-12-31 23:59:59");
    }

    #[test]
    fn format_and_parse_are_inverse_on_whole_seconds() {
        // A step coprime to a day's seconds visits every time of day across the years.
        const YEAR_0: i64 = -62_167_219_200; // 0000-01-01 00:00:00
        const YEAR_10000: i64 = 253_402_300_800; // 10000-01-01 00:00:00
        let mut secs = YEAR_0;
        while secs < YEAR_10000 {
            let text = format_timestamp(secs);
            assert_eq!(parse_timestamp(&text), Some(secs * 1_000_000), "{text}");
            secs += 7_777_777;
        }
    }
}
