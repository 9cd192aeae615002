//! Timestamp recognition: ISO-8601 date-times and epoch numbers, to microseconds UTC.

fn digits(b: &[u8], at: usize, n: usize) -> Option<i64> {
    let s = b.get(at..at + n)?;
    s.iter().all(u8::is_ascii_digit).then(|| s.iter().fold(0i64, |acc, d| acc * 10 + i64::from(d - b'0')))
}

/// Parses `YYYY-MM-DD[T ]HH:MM[:SS[.fff…]][Z|±HH[:]MM]` into microseconds since the epoch.
/// Without a zone the time is taken as UTC.
pub fn parse_iso8601(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() < 16
        || b[4] != b'-'
        || b[7] != b'-'
        || !(b[10] == b'T' || b[10] == b' ' || b[10] == b't')
        || b[13] != b':'
    {
        return None;
    }
    let (y, mo, d) = (digits(b, 0, 4)?, digits(b, 5, 2)?, digits(b, 8, 2)?);
    let (h, mi) = (digits(b, 11, 2)?, digits(b, 14, 2)?);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 {
        return None;
    }
    let mut at = 16;
    let mut sec = 0;
    let mut micros = 0i64;
    if b.get(at) == Some(&b':') {
        sec = digits(b, at + 1, 2)?;
        if sec > 60 {
            return None;
        }
        at += 3;
        if matches!(b.get(at), Some(b'.') | Some(b',')) {
            at += 1;
            let start = at;
            while b.get(at).is_some_and(u8::is_ascii_digit) {
                if at - start < 6 {
                    micros = micros * 10 + i64::from(b[at] - b'0');
                }
                at += 1;
            }
            if at == start {
                return None;
            }
            for _ in (at - start)..6 {
                micros *= 10;
            }
        }
    }
    let offset_secs = match b.get(at) {
        None => 0,
        Some(b'Z') | Some(b'z') if at + 1 == b.len() => 0,
        Some(&sign @ (b'+' | b'-')) => {
            let oh = digits(b, at + 1, 2)?;
            let om = match b.get(at + 3) {
                Some(b':') => digits(b, at + 4, 2)?,
                _ => digits(b, at + 3, 2)?,
            };
            let len = if b.get(at + 3) == Some(&b':') { 6 } else { 5 };
            if at + len != b.len() || oh > 23 || om > 59 {
                return None;
            }
            let off = oh * 3600 + om * 60;
            if sign == b'+' { off } else { -off }
        }
        _ => return None,
    };
    let secs = tarn_time::days_from_civil(y, mo, d) * 86_400 + h * 3600 + mi * 60 + sec - offset_secs;
    Some(secs * 1_000_000 + micros)
}

/// Reads an epoch number as microseconds, telling seconds, milliseconds and microseconds apart by
/// magnitude (seconds below 10^11, i.e. until the year 5138; milliseconds below 10^14).
pub fn epoch_to_micros(n: f64) -> Option<i64> {
    if !n.is_finite() {
        return None;
    }
    let a = n.abs();
    let micros = if a < 1e11 {
        n * 1e6
    } else if a < 1e14 {
        n * 1e3
    } else {
        n
    };
    (micros.abs() < 9.2e18).then(|| micros.round() as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iso8601_forms() {
        let base = 1_700_000_000_000_000; // 2023-11-14T22:13:20Z
        assert_eq!(parse_iso8601("2023-11-14T22:13:20Z"), Some(base));
        assert_eq!(parse_iso8601("2023-11-14 22:13:20"), Some(base));
        assert_eq!(parse_iso8601("2023-11-14T22:13:20.5Z"), Some(base + 500_000));
        assert_eq!(parse_iso8601("2023-11-14T22:13:20.123456789Z"), Some(base + 123_456));
        assert_eq!(parse_iso8601("2023-11-14T23:13:20+01:00"), Some(base));
        assert_eq!(parse_iso8601("2023-11-14T21:13:20-0100"), Some(base));
        assert_eq!(parse_iso8601("2023-11-14T22:13Z"), Some(base - 20_000_000));
        for bad in ["2023-11-14", "hello", "2023-13-14T22:13:20Z", "2023-11-14T22:13:20Zjunk", "2023-11-14T22:13:20+1"]
        {
            assert_eq!(parse_iso8601(bad), None, "{bad}");
        }
    }

    #[test]
    fn epoch_units_by_magnitude() {
        assert_eq!(epoch_to_micros(1_700_000_000.0), Some(1_700_000_000_000_000));
        assert_eq!(epoch_to_micros(1_700_000_000_123.0), Some(1_700_000_000_123_000));
        assert_eq!(epoch_to_micros(1_700_000_000_123_456.0), Some(1_700_000_000_123_456));
        assert_eq!(epoch_to_micros(f64::NAN), None);
    }
}
