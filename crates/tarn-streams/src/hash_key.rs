//! The 128-bit hash-key space that shards divide among themselves.

use md5::{Digest, Md5};

/// The largest hash key, 2^128 - 1.
pub const MAX_HASH_KEY: u128 = u128::MAX;

/// The hash key of a partition key: MD5 of its UTF-8 bytes read as a big-endian integer.
pub fn hash_partition_key(partition_key: &str) -> u128 {
    u128::from_be_bytes(Md5::digest(partition_key.as_bytes()).into())
}

/// The hash keys of many partition keys at once ([`hash_partition_key`] of each, in order).
/// Keys of up to 55 bytes (one MD5 block: nearly all of them) are hashed several at a time, the
/// keys' words side by side in arrays the compiler turns into vector instructions: 16 keys to a
/// group where the CPU has AVX-512 (which rotates in one instruction), about 3.7 times as fast
/// here as 4 keys to a group (which is what other CPUs get: without a vector rotate the compiler
/// keeps to scalar instructions, about as fast as before, 1.3 times the `md-5` crate's speed).
/// Longer keys take the `md-5` crate.
pub fn hash_partition_keys<'k>(keys: impl Iterator<Item = &'k str>, out: &mut Vec<u128>) {
    hash_keys_in_lanes(Lanes::detected(), keys, out);
}

fn hash_keys_in_lanes<'k>(lanes: Lanes, keys: impl Iterator<Item = &'k str>, out: &mut Vec<u128>) {
    let start = out.len();
    let mut group: Vec<(usize, &[u8])> = Vec::with_capacity(MAX_LANES);
    for (i, key) in keys.enumerate() {
        let bytes = key.as_bytes();
        if bytes.len() > MAX_SINGLE_BLOCK_KEY {
            out.push(hash_partition_key(key));
            continue;
        }
        out.push(0);
        group.push((start + i, bytes));
        if group.len() == lanes.count() {
            lanes.hash_into(&group, out);
            group.clear();
        }
    }
    if !group.is_empty() {
        lanes.hash_into(&group, out);
    }
}

/// The most keys hashed side by side.
const MAX_LANES: usize = 16;

/// The longest message that fits one MD5 block with its padding (a 0x80 byte and the length).
const MAX_SINGLE_BLOCK_KEY: usize = 55;

/// How many keys [`hash_partition_keys`] hashes side by side, by the vector instructions the CPU
/// has (detected once per process; the standard library caches it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Lanes {
    Four,
    Avx512,
}

impl Lanes {
    fn detected() -> Lanes {
        #[cfg(target_arch = "x86_64")]
        {
            if std::arch::is_x86_feature_detected!("avx512f") && std::arch::is_x86_feature_detected!("avx512vl") {
                return Lanes::Avx512;
            }
        }
        Lanes::Four
    }

    fn count(self) -> usize {
        match self {
            Lanes::Four => 4,
            Lanes::Avx512 => 16,
        }
    }

    /// Hashes the keys of `group` (at most [`Lanes::count`]) into `out` at their indexes.
    fn hash_into(self, group: &[(usize, &[u8])], out: &mut [u128]) {
        match self {
            #[cfg(target_arch = "x86_64")]
            // SAFETY: `detected` returns these lanes only where the CPU has the features the
            // function is compiled for.
            #[allow(unsafe_code)]
            Lanes::Avx512 => unsafe { hash_group_avx512(group, out) },
            _ => hash_group::<4>(group, out),
        }
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512vl")]
fn hash_group_avx512(group: &[(usize, &[u8])], out: &mut [u128]) {
    hash_group::<16>(group, out);
}

/// MD5 of up to `N` keys of at most [`MAX_SINGLE_BLOCK_KEY`] bytes, as hash keys, each written
/// to `out` at its index (unused lanes hash the empty message and are dropped). Inlined into
/// the functions above so that it is compiled with their vector instructions; plain loops over
/// the lanes, which the compiler vectorizes.
#[inline(always)]
fn hash_group<const N: usize>(group: &[(usize, &[u8])], out: &mut [u128]) {
    debug_assert!(group.len() <= N);
    // The padded block of each message, as sixteen little-endian words per lane.
    let mut m = [[0u32; N]; 16];
    for lane in 0..N {
        let key = group.get(lane).map_or(&[][..], |(_, key)| *key);
        debug_assert!(key.len() <= MAX_SINGLE_BLOCK_KEY);
        let mut block = [0u8; 64];
        block[..key.len()].copy_from_slice(key);
        block[key.len()] = 0x80;
        block[56..].copy_from_slice(&(key.len() as u64 * 8).to_le_bytes());
        for (word, bytes) in m.iter_mut().zip(block.chunks_exact(4)) {
            word[lane] = u32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]);
        }
    }
    let init = [0x67452301u32, 0xefcdab89, 0x98badcfe, 0x10325476];
    let (mut a, mut b, mut c, mut d) = ([init[0]; N], [init[1]; N], [init[2]; N], [init[3]; N]);
    // The 64 steps written out, so that every word index, constant and shift is a constant and
    // each step is a few vector instructions over all lanes.
    macro_rules! step {
        ($f:expr, $a:ident, $b:ident, $c:ident, $d:ident, $g:expr, $shift:expr, $k:expr) => {
            for l in 0..N {
                let (b, c, d) = ($b[l], $c[l], $d[l]);
                let sum = $a[l].wrapping_add($f(b, c, d)).wrapping_add($k).wrapping_add(m[$g][l]);
                $a[l] = b.wrapping_add(sum.rotate_left($shift));
            }
        };
    }
    macro_rules! four {
        ($f:expr, $i:expr, [$g0:expr, $g1:expr, $g2:expr, $g3:expr], [$s0:expr, $s1:expr, $s2:expr, $s3:expr]) => {
            step!($f, a, b, c, d, $g0, $s0, K[$i]);
            step!($f, d, a, b, c, $g1, $s1, K[$i + 1]);
            step!($f, c, d, a, b, $g2, $s2, K[$i + 2]);
            step!($f, b, c, d, a, $g3, $s3, K[$i + 3]);
        };
    }
    let f = |b: u32, c: u32, d: u32| (b & c) | (!b & d);
    let g = |b: u32, c: u32, d: u32| (d & b) | (!d & c);
    let h = |b: u32, c: u32, d: u32| b ^ c ^ d;
    let i = |b: u32, c: u32, d: u32| c ^ (b | !d);
    four!(f, 0, [0, 1, 2, 3], [7, 12, 17, 22]);
    four!(f, 4, [4, 5, 6, 7], [7, 12, 17, 22]);
    four!(f, 8, [8, 9, 10, 11], [7, 12, 17, 22]);
    four!(f, 12, [12, 13, 14, 15], [7, 12, 17, 22]);
    four!(g, 16, [1, 6, 11, 0], [5, 9, 14, 20]);
    four!(g, 20, [5, 10, 15, 4], [5, 9, 14, 20]);
    four!(g, 24, [9, 14, 3, 8], [5, 9, 14, 20]);
    four!(g, 28, [13, 2, 7, 12], [5, 9, 14, 20]);
    four!(h, 32, [5, 8, 11, 14], [4, 11, 16, 23]);
    four!(h, 36, [1, 4, 7, 10], [4, 11, 16, 23]);
    four!(h, 40, [13, 0, 3, 6], [4, 11, 16, 23]);
    four!(h, 44, [9, 12, 15, 2], [4, 11, 16, 23]);
    four!(i, 48, [0, 7, 14, 5], [6, 10, 15, 21]);
    four!(i, 52, [12, 3, 10, 1], [6, 10, 15, 21]);
    four!(i, 56, [8, 15, 6, 13], [6, 10, 15, 21]);
    four!(i, 60, [4, 11, 2, 9], [6, 10, 15, 21]);
    for (lane, (at, _)) in group.iter().enumerate() {
        let words = [a[lane], b[lane], c[lane], d[lane]];
        let mut digest = [0u8; 16];
        for ((bytes, word), init) in digest.chunks_exact_mut(4).zip(words).zip(init) {
            bytes.copy_from_slice(&word.wrapping_add(init).to_le_bytes());
        }
        out[*at] = u128::from_be_bytes(digest);
    }
}

/// Per-step constants of MD5 (RFC 1321; its shift amounts and word order are in [`hash_group`]).
const K: [u32; 64] = [
    0xd76aa478, 0xe8c7b756, 0x242070db, 0xc1bdceee, 0xf57c0faf, 0x4787c62a, 0xa8304613, 0xfd469501, 0x698098d8,
    0x8b44f7af, 0xffff5bb1, 0x895cd7be, 0x6b901122, 0xfd987193, 0xa679438e, 0x49b40821, 0xf61e2562, 0xc040b340,
    0x265e5a51, 0xe9b6c7aa, 0xd62f105d, 0x02441453, 0xd8a1e681, 0xe7d3fbc8, 0x21e1cde6, 0xc33707d6, 0xf4d50d87,
    0x455a14ed, 0xa9e3e905, 0xfcefa3f8, 0x676f02d9, 0x8d2a4c8a, 0xfffa3942, 0x8771f681, 0x6d9d6122, 0xfde5380c,
    0xa4beea44, 0x4bdecfa9, 0xf6bb4b60, 0xbebfbc70, 0x289b7ec6, 0xeaa127fa, 0xd4ef3085, 0x04881d05, 0xd9d4d039,
    0xe6db99e5, 0x1fa27cf8, 0xc4ac5665, 0xf4292244, 0x432aff97, 0xab9423a7, 0xfc93a039, 0x655b59c3, 0x8f0ccc92,
    0xffeff47d, 0x85845dd1, 0x6fa87e4f, 0xfe2ce6e0, 0xa3014314, 0x4e0811a1, 0xf7537e82, 0xbd3af235, 0x2ad7d2bb,
    0xeb86d391,
];

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
    fn keys_hashed_side_by_side_hash_as_one_at_a_time() {
        // Every length up to one block and past it, in runs that fill the lanes or do not,
        // with long keys (the md-5 crate's) in between.
        let keys: Vec<String> = (0..200)
            .map(|i: usize| {
                let len = (i * 7) % 70;
                (0..len).map(|j| char::from(b'!' + ((i + j * 13) % 90) as u8)).collect()
            })
            .chain(["é🚗".to_string(), "a".to_string()])
            .collect();
        // Every width this CPU can run (the widest is what `hash_partition_keys` picks).
        let widths = match Lanes::detected() {
            Lanes::Avx512 => vec![Lanes::Four, Lanes::Avx512],
            Lanes::Four => vec![Lanes::Four],
        };
        for lanes in widths {
            for count in [0, 1, 3, 4, 5, 8, 9, 15, 16, 17, 33, keys.len()] {
                let mut hashed = vec![42];
                hash_keys_in_lanes(lanes, keys[..count].iter().map(String::as_str), &mut hashed);
                let expected: Vec<u128> =
                    std::iter::once(42).chain(keys[..count].iter().map(|k| hash_partition_key(k))).collect();
                assert_eq!(hashed, expected, "{count} keys, {lanes:?}");
            }
        }
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
