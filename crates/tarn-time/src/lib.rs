//! Calendar arithmetic for the proleptic Gregorian calendar (Howard Hinnant's algorithms):
//! what SigV4 dates, AWS error messages and ISO-8601 parsing need, and no more.

/// Days from 1970-01-01 to the civil date `year-month-day` (month 1-12).
pub fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * ((month + 9) % 12) + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The civil date `(year, month, day)` of a day count from 1970-01-01.
pub fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(month <= 2), month, day)
}

/// Splits epoch milliseconds into the civil date and the time of day `(hour, minute, second)`.
pub fn civil_from_millis(ms: i64) -> ((i64, i64, i64), (i64, i64, i64)) {
    let secs = ms.div_euclid(1000);
    let rem = secs.rem_euclid(86_400);
    (civil_from_days(secs.div_euclid(86_400)), (rem / 3600, (rem % 3600) / 60, rem % 60))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_every_day_over_eight_centuries() {
        for days in -200_000..200_000 {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days);
        }
    }

    #[test]
    fn known_dates() {
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(civil_from_days(19_675), (2023, 11, 14));
        assert_eq!(civil_from_days(days_from_civil(2024, 2, 29)), (2024, 2, 29));
        assert_eq!(civil_from_millis(1_700_000_000_999), ((2023, 11, 14), (22, 13, 20)));
    }
}
