//! The 128-bit hash-key space that shards divide among themselves.

use md5::{Digest, Md5};

/// The largest hash key, 2^128 - 1.
pub const MAX_HASH_KEY: u128 = u128::MAX;

/// The hash key of a partition key: MD5 of its UTF-8 bytes read as a big-endian integer.
pub fn hash_partition_key(partition_key: &str) -> u128 {
    u128::from_be_bytes(Md5::digest(partition_key.as_bytes()).into())
}

/// Parses a decimal hash key as Kinesis writes them (`0|[1-9]\d{0,38}`), up to 2^128 - 1.
pub fn parse_hash_key(s: &str) -> Option<u128> {
    if s.is_empty() || s.len() > 39 || !s.bytes().all(|b| b.is_ascii_digit()) || (s.len() > 1 && s.starts_with('0')) {
        return None;
    }
    s.parse().ok()
}

/// Splits the hash-key space into `n` contiguous ranges, as AWS does for a new stream:
/// equal steps of floor(2^128 / n), the last range ending at 2^128 - 1.
pub fn even_ranges(n: u32) -> Vec<(u128, u128)> {
    assert!(n > 0);
    if n == 1 {
        return vec![(0, MAX_HASH_KEY)];
    }
    // floor(2^128 / n) computed without overflowing u128.
    let step = (u128::MAX / u128::from(n)) + u128::from(u128::MAX % u128::from(n) == u128::from(n) - 1);
    (0..n)
        .map(|i| {
            let start = step * u128::from(i);
            let end = if i + 1 == n { MAX_HASH_KEY } else { step * u128::from(i + 1) - 1 };
            (start, end)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn md5_of_a_is_the_documented_value() {
        assert_eq!(hash_partition_key("a"), 16955237001963240173058271559858726497);
    }

    #[test]
    fn two_shards_split_where_aws_splits() {
        let r = even_ranges(2);
        assert_eq!(r[0], (0, 170141183460469231731687303715884105727));
        assert_eq!(r[1], (170141183460469231731687303715884105728, MAX_HASH_KEY));
    }

    #[test]
    fn ranges_cover_the_space_without_gaps() {
        for n in [1, 3, 4, 7, 10, 1000] {
            let r = even_ranges(n);
            assert_eq!(r[0].0, 0);
            assert_eq!(r.last().unwrap().1, MAX_HASH_KEY);
            assert!(r.windows(2).all(|w| w[0].1 + 1 == w[1].0));
        }
    }

    #[test]
    fn hash_keys_parse_strictly() {
        assert_eq!(parse_hash_key("0"), Some(0));
        assert_eq!(parse_hash_key("340282366920938463463374607431768211455"), Some(u128::MAX));
        assert_eq!(parse_hash_key("340282366920938463463374607431768211456"), None);
        assert_eq!(parse_hash_key("01"), None);
        assert_eq!(parse_hash_key("-1"), None);
        assert_eq!(parse_hash_key(""), None);
    }
}
