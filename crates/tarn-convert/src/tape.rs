//! A payload's JSON as a flat tape of tokens, read in one pass without building maps or owned
//! strings: the input of [`crate::direct`], which hands values straight to column builders.
//!
//! The tape only has to be right when it accepts: anything it does not accept (malformed JSON,
//! a top-level value that is not an object, nesting deeper than [`MAX_DEPTH`], a lone surrogate
//! escape) is left to the general path ([`crate::split_payload`]), which says what is wrong.
//! So the tape is never more lenient than `serde_json`: whatever it accepts, `serde_json` reads
//! as the same values.

/// What a token is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Object,
    Array,
    /// A string without escapes: its text is the raw bytes between the quotes.
    Plain,
    /// A string with escapes: its decoded text is in [`Tape::unescaped`].
    Escaped,
    /// A number without fraction or exponent.
    Integer,
    /// A number with a fraction or an exponent.
    Float,
    True,
    False,
    Null,
}

/// One JSON value. Containers are followed by their contents (an object's as key, value, key,
/// value…), so a value's token is followed by the next one at the same level at `next`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Token {
    pub kind: Kind,
    /// The value's raw text in the payload: `payload[start..end]`.
    pub start: u32,
    pub end: u32,
    /// The index of the token after this value and everything inside it.
    pub next: u32,
    /// For [`Kind::Escaped`]: where its decoded text lies in [`Tape::unescaped`].
    pub text_start: u32,
    pub text_end: u32,
}

/// Where the run of string text starting at `at` ends: the first quote, backslash or control
/// character at or after `at`, or `b.len()`. Eight bytes at a time: in each word, a lane that
/// holds one of them (after XOR with a quote or backslash, zero; or below 0x20) gets its high bit
/// set. Only a lane that holds one borrows from the next, so lanes above the first may be marked
/// wrongly but the lowest marked lane (the first byte, read little-endian) is always right.
fn plain_run_end(b: &[u8], mut at: usize) -> usize {
    const LANES: u64 = 0x0101_0101_0101_0101;
    const HIGH_BITS: u64 = 0x8080_8080_8080_8080;
    let zero_lanes = |w: u64| w.wrapping_sub(LANES) & !w;
    while let Some(word) = b.get(at..at + 8) {
        let w = u64::from_le_bytes(word.try_into().expect("eight bytes"));
        let quote = zero_lanes(w ^ (LANES * u64::from(b'"')));
        let backslash = zero_lanes(w ^ (LANES * u64::from(b'\\')));
        let control = w.wrapping_sub(LANES * 0x20) & !w;
        let marked = (quote | backslash | control) & HIGH_BITS;
        if marked != 0 {
            return at + (marked.trailing_zeros() / 8) as usize;
        }
        at += 8;
    }
    while at < b.len() && !matches!(b[at], b'"' | b'\\' | 0..=0x1f) {
        at += 1;
    }
    at
}

/// Deeper nesting is left to the general path (`serde_json` stops at 128).
pub(crate) const MAX_DEPTH: usize = 100;

/// The tokens of one payload; reused from payload to payload to keep its allocations.
#[derive(Debug, Default)]
pub(crate) struct Tape<'p> {
    pub payload: &'p str,
    pub tokens: Vec<Token>,
    pub unescaped: String,
    /// The top-level objects, by token index.
    pub roots: Vec<u32>,
}

/// The payload is not (only) JSON objects, or not in a form the tape reads.
#[derive(Debug)]
pub(crate) struct Unread;

type Parsed<T> = Result<T, Unread>;

impl<'p> Tape<'p> {
    /// Reads `payload` (every value must be an object; they may be separated by white space or
    /// written back to back). On `Err` the tape's contents are meaningless.
    pub fn read(&mut self, payload: &'p [u8]) -> Parsed<()> {
        self.payload = std::str::from_utf8(payload).map_err(|_| Unread)?;
        self.tokens.clear();
        self.unescaped.clear();
        self.roots.clear();
        if payload.len() >= u32::MAX as usize {
            return Err(Unread);
        }
        let b = payload;
        let mut at = skip_space(b, 0);
        if at == b.len() {
            return Err(Unread);
        }
        while at < b.len() {
            if b[at] != b'{' {
                return Err(Unread);
            }
            self.roots.push(self.tokens.len() as u32);
            at = self.value(b, at, 0)?;
            at = skip_space(b, at);
        }
        Ok(())
    }

    /// The text of a string token.
    pub fn text(&self, t: &Token) -> &str {
        match t.kind {
            Kind::Escaped => &self.unescaped[t.text_start as usize..t.text_end as usize],
            _ => &self.payload[t.start as usize + 1..t.end as usize - 1],
        }
    }

    /// The raw JSON text of a token's value.
    pub fn raw(&self, t: &Token) -> &str {
        &self.payload[t.start as usize..t.end as usize]
    }

    fn push(&mut self, kind: Kind, start: usize, end: usize) {
        let next = self.tokens.len() as u32 + 1;
        self.tokens.push(Token { kind, start: start as u32, end: end as u32, next, text_start: 0, text_end: 0 });
    }

    /// Reads the value at `at` (not white space), returns the position after it.
    fn value(&mut self, b: &[u8], at: usize, depth: usize) -> Parsed<usize> {
        match b[at] {
            b'{' => self.container(b, at, depth, Kind::Object),
            b'[' => self.container(b, at, depth, Kind::Array),
            b'"' => self.string(b, at),
            b't' => self.literal(b, at, b"true", Kind::True),
            b'f' => self.literal(b, at, b"false", Kind::False),
            b'n' => self.literal(b, at, b"null", Kind::Null),
            b'-' | b'0'..=b'9' => self.number(b, at),
            _ => Err(Unread),
        }
    }

    fn literal(&mut self, b: &[u8], at: usize, word: &[u8], kind: Kind) -> Parsed<usize> {
        if !b[at..].starts_with(word) {
            return Err(Unread);
        }
        self.push(kind, at, at + word.len());
        Ok(at + word.len())
    }

    fn container(&mut self, b: &[u8], start: usize, depth: usize, kind: Kind) -> Parsed<usize> {
        if depth >= MAX_DEPTH {
            return Err(Unread);
        }
        let index = self.tokens.len();
        self.push(kind, start, start);
        let close = if kind == Kind::Object { b'}' } else { b']' };
        let mut at = skip_space(b, start + 1);
        if b.get(at) == Some(&close) {
            at += 1;
        } else {
            loop {
                if kind == Kind::Object {
                    if b.get(at) != Some(&b'"') {
                        return Err(Unread);
                    }
                    at = skip_space(b, self.string(b, at)?);
                    if b.get(at) != Some(&b':') {
                        return Err(Unread);
                    }
                    at = skip_space(b, at + 1);
                }
                if at >= b.len() {
                    return Err(Unread);
                }
                at = skip_space(b, self.value(b, at, depth + 1)?);
                match b.get(at) {
                    Some(b',') => at = skip_space(b, at + 1),
                    Some(&c) if c == close => {
                        at += 1;
                        break;
                    }
                    _ => return Err(Unread),
                }
            }
        }
        let next = self.tokens.len() as u32;
        let token = &mut self.tokens[index];
        token.end = at as u32;
        token.next = next;
        Ok(at)
    }

    fn string(&mut self, b: &[u8], start: usize) -> Parsed<usize> {
        let at = plain_run_end(b, start + 1);
        match b.get(at) {
            Some(b'"') => {
                self.push(Kind::Plain, start, at + 1);
                Ok(at + 1)
            }
            Some(b'\\') => self.escaped(b, start, at),
            // A control character, or the end of the payload.
            _ => Err(Unread),
        }
    }

    /// The rest of a string from its first backslash at `at`, decoded into `unescaped`.
    fn escaped(&mut self, b: &[u8], start: usize, mut at: usize) -> Parsed<usize> {
        let text_start = self.unescaped.len();
        self.unescaped.push_str(&self.payload[start + 1..at]);
        loop {
            match b.get(at) {
                Some(b'"') => break,
                Some(b'\\') => {
                    let decoded = match b.get(at + 1).ok_or(Unread)? {
                        b'"' => '"',
                        b'\\' => '\\',
                        b'/' => '/',
                        b'b' => '\u{8}',
                        b'f' => '\u{c}',
                        b'n' => '\n',
                        b'r' => '\r',
                        b't' => '\t',
                        b'u' => {
                            let unit = hex4(b, at + 2)?;
                            at += 6;
                            let scalar = match unit {
                                0xD800..=0xDBFF => {
                                    // A surrogate pair; a lone half is left to the general path.
                                    if b.get(at) != Some(&b'\\') || b.get(at + 1) != Some(&b'u') {
                                        return Err(Unread);
                                    }
                                    let low = hex4(b, at + 2)?;
                                    if !(0xDC00..=0xDFFF).contains(&low) {
                                        return Err(Unread);
                                    }
                                    at += 6;
                                    0x10000 + ((unit - 0xD800) << 10) + (low - 0xDC00)
                                }
                                0xDC00..=0xDFFF => return Err(Unread),
                                _ => unit,
                            };
                            self.unescaped.push(char::from_u32(scalar).ok_or(Unread)?);
                            continue;
                        }
                        _ => return Err(Unread),
                    };
                    self.unescaped.push(decoded);
                    at += 2;
                }
                Some(&c) if c < 0x20 => return Err(Unread),
                Some(_) => {
                    let run = at;
                    at = plain_run_end(b, at);
                    self.unescaped.push_str(&self.payload[run..at]);
                }
                None => return Err(Unread),
            }
        }
        let text_end = self.unescaped.len();
        self.tokens.push(Token {
            kind: Kind::Escaped,
            start: start as u32,
            end: at as u32 + 1,
            next: self.tokens.len() as u32 + 1,
            text_start: text_start as u32,
            text_end: text_end as u32,
        });
        Ok(at + 1)
    }

    /// JSON's number grammar: `-? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?`.
    fn number(&mut self, b: &[u8], start: usize) -> Parsed<usize> {
        let mut at = start;
        if b[at] == b'-' {
            at += 1;
        }
        match b.get(at) {
            Some(b'0') => at += 1,
            Some(b'1'..=b'9') => at = digits(b, at),
            _ => return Err(Unread),
        }
        let integral_digits = at - start;
        let mut kind = Kind::Integer;
        if b.get(at) == Some(&b'.') {
            let after = digits(b, at + 1);
            if after == at + 1 {
                return Err(Unread);
            }
            at = after;
            kind = Kind::Float;
        }
        // At most 10^magnitude: the integral digits plus the exponent.
        let mut magnitude = integral_digits as i64;
        if matches!(b.get(at), Some(b'e' | b'E')) {
            at += 1;
            let negative = b.get(at) == Some(&b'-');
            if matches!(b.get(at), Some(b'+' | b'-')) {
                at += 1;
            }
            let after = digits(b, at);
            if after == at {
                return Err(Unread);
            }
            let exponent = b[at..after].iter().fold(0i64, |e, d| (e * 10 + i64::from(d - b'0')).min(1_000_000));
            magnitude += if negative { -exponent } else { exponent };
            at = after;
            kind = Kind::Float;
        }
        // `serde_json` refuses numbers beyond f64's range (about 1.8e308; integers too long for
        // u64 are read as floats); leave those, and anything near them, to it. Below 10^300 a
        // number cannot round to infinity, so only larger ones are parsed here to tell.
        if integral_digits > 300
            || (kind == Kind::Float
                && magnitude > 300
                && !self.payload[start..at].parse::<f64>().is_ok_and(f64::is_finite))
        {
            return Err(Unread);
        }
        self.push(kind, start, at);
        Ok(at)
    }
}

fn digits(b: &[u8], mut at: usize) -> usize {
    while b.get(at).is_some_and(u8::is_ascii_digit) {
        at += 1;
    }
    at
}

fn skip_space(b: &[u8], mut at: usize) -> usize {
    while matches!(b.get(at), Some(b' ' | b'\n' | b'\r' | b'\t')) {
        at += 1;
    }
    at
}

fn hex4(b: &[u8], at: usize) -> Parsed<u32> {
    let digits = b.get(at..at + 4).ok_or(Unread)?;
    digits.iter().try_fold(0u32, |acc, &d| Ok(acc * 16 + (d as char).to_digit(16).ok_or(Unread)?))
}

/// An integer token's value when it fits `i64` in its simple form (at most 18 digits, so no
/// overflow check is needed); `None` leaves it to `serde_json` (which also reads `-0` as the
/// float -0.0).
pub(crate) fn small_integer(raw: &str) -> Option<i64> {
    let (negative, digits) = match raw.as_bytes() {
        b"-0" => return None,
        [b'-', rest @ ..] => (true, rest),
        all => (false, all),
    };
    if digits.is_empty() || digits.len() > 18 {
        return None;
    }
    let magnitude = digits.iter().fold(0i64, |acc, d| acc * 10 + i64::from(d - b'0'));
    Some(if negative { -magnitude } else { magnitude })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(payload: &str) -> Option<Vec<(Kind, String)>> {
        let mut tape = Tape::default();
        tape.read(payload.as_bytes()).ok()?;
        Some(tape.tokens.iter().map(|t| (t.kind, tape.raw(t).to_owned())).collect())
    }

    #[test]
    fn reads_objects_back_to_back_and_skips_over_containers() {
        let mut tape = Tape::default();
        tape.read(br#" {"a":[1,{"b":null}],"c":"x"}{"d":true}"#).unwrap();
        assert_eq!(tape.roots, [0, 9]);
        let t = &tape.tokens;
        assert_eq!((t[0].kind, t[0].next), (Kind::Object, 9));
        assert_eq!((t[2].kind, t[2].next, tape.raw(&t[2])), (Kind::Array, 7, r#"[1,{"b":null}]"#));
        assert_eq!(tape.text(&t[8]), "x");
        assert_eq!(tape.raw(&t[9]), r#"{"d":true}"#);
    }

    #[test]
    fn a_run_of_text_ends_at_the_first_quote_backslash_or_control_character() {
        let naive =
            |b: &[u8], at: usize| (at..b.len()).find(|&i| matches!(b[i], b'"' | b'\\' | 0..=0x1f)).unwrap_or(b.len());
        // Every byte value at every lane of two words, after fillers that sit next to the
        // thresholds (0x20, 0x21 and 0x23 around the quote, 0x5b and 0x5d around the backslash,
        // 0x7f, 0x80 and 0xff), and two of them in one word so a false lane above the first hit
        // cannot win.
        for filler in [b'a', 0x20, 0x21, 0x23, 0x5b, 0x5d, 0x7f, 0x80, 0xff] {
            for stop in 0..=255u8 {
                for len in 0..20 {
                    for pos in 0..len {
                        let mut b = vec![filler; len];
                        b[pos] = stop;
                        if pos + 1 < len {
                            b[pos + 1] = b'"';
                        }
                        for start in [0, 1, 3] {
                            assert_eq!(
                                plain_run_end(&b, start.min(len)),
                                naive(&b, start.min(len)),
                                "{b:?} from {start}"
                            );
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn escapes_are_decoded() {
        let mut tape = Tape::default();
        tape.read(br#"{"k\u00e9y":"a\"b\\c\/\n\ud83d\ude00 end"}"#).unwrap();
        assert_eq!(tape.text(&tape.tokens[1]), "k\u{e9}y");
        assert_eq!(tape.text(&tape.tokens[2]), "a\"b\\c/\n\u{1f600} end");
    }

    #[test]
    fn numbers_near_the_end_of_f64s_range_are_taken_as_serde_json_takes_them() {
        for number in [
            "1.5e308",
            "2e308",
            "-2e308",
            "1.7976931348623157e308",
            "1.7976931348623159e308",
            "0.00001e310",
            "0.00001e314",
            "17976931348623157e292",
            "1e300",
            "123.5e298",
            "1e-400",
            "-0.0e999999999999",
            "9e299",
            "99e299",
        ] {
            let json = format!(r#"{{"a":{number}}}"#);
            let serde_ok = serde_json::from_str::<serde_json::Value>(&json).is_ok();
            assert_eq!(read(&json).is_some(), serde_ok, "{number}: serde_json accepts it: {serde_ok}");
        }
    }

    #[test]
    fn refuses_what_is_not_objects_of_valid_json() {
        for bad in [
            "",
            " ",
            "42",
            r#"{"a":1} 2"#,
            r#"{"a":1,}"#,
            r#"{"a":01}"#,
            r#"{"a":1.}"#,
            r#"{"a":-}"#,
            r#"{"a":1e}"#,
            r#"{"a":1e999}"#,
            r#"{"a":"\ud800"}"#,
            r#"{"a":"\x"}"#,
            "{\"a\":\"tab\there\"}",
            r#"{"a":tru}"#,
            r#"{"a" 1}"#,
            r#"{"a":[1 2]}"#,
            r#"{"a":1"#,
        ] {
            assert!(read(bad).is_none(), "{bad:?} should be refused");
            if !bad.trim().is_empty() {
                let serde_ok = serde_json::Deserializer::from_str(bad)
                    .into_iter::<serde_json::Value>()
                    .all(|v| v.is_ok_and(|v| v.is_object()));
                assert!(!serde_ok || bad.contains("\\ud800"), "{bad:?}: serde_json accepts it");
            }
        }
        let long = format!("{{\"a\":1{}}}", "0".repeat(400));
        assert!(read(&long).is_none() && serde_json::from_str::<serde_json::Value>(&long).is_err());
        let deep = format!("{{\"a\":{}{}}}", "[".repeat(MAX_DEPTH), "]".repeat(MAX_DEPTH));
        assert!(read(&deep).is_none());
    }

    #[test]
    fn numbers_keep_their_kind() {
        let kinds = read(r#"{"a":-0,"b":12,"c":1.5,"d":2e3,"e":-3.25E-2}"#).unwrap();
        let numbers: Vec<Kind> = kinds.iter().skip(2).step_by(2).map(|(k, _)| *k).collect();
        assert_eq!(numbers, [Kind::Integer, Kind::Integer, Kind::Float, Kind::Float, Kind::Float]);
        assert_eq!(small_integer("-42"), Some(-42));
        assert_eq!(small_integer("-0"), None);
        assert_eq!(small_integer("1234567890123456789"), None);
    }
}
