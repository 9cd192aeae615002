//! Firehose's S3 prefix expressions (`Prefix`, `ErrorOutputPrefix`): parsed and checked when a
//! segment is declared, evaluated for every flush. Free of I/O.
//!
//! `!{timestamp:<pattern>}` formats the record's arrival time (UTC) with a Java
//! `DateTimeFormatter` pattern (`yyyy`, `MM`, `dd`, `HH`, `mm`, `ss`, `'literal'`, and other
//! punctuation as is); `!{firehose:random-string}` is 11 random characters, new at each
//! occurrence; `!{firehose:error-output-type}` is the error type (error prefix only);
//! `!{partitionKeyFromQuery:<key>}` is a value the segment's MetadataExtraction query extracts
//! from the record (dynamic partitioning); `!{partitionKeyFromLambda:<key>}` needs a Lambda,
//! which Tarn does not run, so it is refused with that reason.
//!
//! Firehose's rules, enforced by [`Prefixes::new`]: `!{` only opens a valid expression; a prefix
//! without a timestamp gets `!{timestamp:yyyy/MM/dd/HH/}` appended; an error prefix is required
//! when the prefix has expressions, and must then hold `!{firehose:error-output-type}`; the
//! prefix must not hold it.

use std::fmt::Write;

#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Text(String),
    Timestamp(Vec<Token>),
    RandomString,
    ErrorOutputType,
    /// `!{partitionKeyFromQuery:<key>}`: a value the segment's MetadataExtraction query extracts.
    PartitionKey(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    Field(char, usize),
    Literal(String),
}

/// A parsed prefix expression.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Prefix {
    parts: Vec<Part>,
}

/// Why a prefix was refused, in words an operator can act on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrefixError(pub String);

impl std::fmt::Display for PrefixError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

fn pattern(text: &str) -> Result<Vec<Token>, PrefixError> {
    let mut tokens = Vec::new();
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\'' => {
                let mut literal = String::new();
                loop {
                    match chars.next() {
                        Some('\'') if chars.peek() == Some(&'\'') => {
                            chars.next();
                            literal.push('\'');
                        }
                        Some('\'') => break,
                        Some(c) => literal.push(c),
                        None => return Err(PrefixError(format!("unterminated quote in timestamp pattern {text:?}"))),
                    }
                }
                tokens.push(Token::Literal(if literal.is_empty() { "'".into() } else { literal }));
            }
            'y' | 'M' | 'd' | 'H' | 'm' | 's' => {
                let mut n = 1;
                while chars.peek() == Some(&c) {
                    chars.next();
                    n += 1;
                }
                tokens.push(Token::Field(c, n));
            }
            c if c.is_ascii_alphabetic() => {
                return Err(PrefixError(format!(
                    "timestamp pattern letter '{c}' in {text:?} is not supported; use yyyy, MM, dd, HH, mm, ss and quoted text"
                )));
            }
            c => tokens.push(Token::Literal(c.to_string())),
        }
    }
    Ok(tokens)
}

impl Prefix {
    pub fn parse(text: &str) -> Result<Prefix, PrefixError> {
        let mut parts = Vec::new();
        let mut rest = text;
        while let Some(at) = rest.find("!{") {
            if at > 0 {
                parts.push(Part::Text(rest[..at].to_owned()));
            }
            let inner_end = rest[at..]
                .find('}')
                .ok_or_else(|| PrefixError(format!("the expression at {:?} is not closed with '}}'", &rest[at..])))?;
            let inner = &rest[at + 2..at + inner_end];
            let (namespace, value) = inner
                .split_once(':')
                .ok_or_else(|| PrefixError(format!("!{{{inner}}} is not of the form !{{namespace:value}}")))?;
            parts.push(match (namespace, value) {
                ("timestamp", p) if !p.is_empty() => Part::Timestamp(pattern(p)?),
                ("firehose", "random-string") => Part::RandomString,
                ("firehose", "error-output-type") => Part::ErrorOutputType,
                ("partitionKeyFromQuery", key) if !key.is_empty() => Part::PartitionKey(key.to_owned()),
                ("partitionKeyFromLambda", _) => {
                    return Err(PrefixError(format!(
                        "!{{{inner}}} needs a Lambda processor, which this server does not run; use partitionKeyFromQuery"
                    )));
                }
                _ => return Err(PrefixError(format!("!{{{inner}}} is not a supported expression"))),
            });
            rest = &rest[at + inner_end + 1..];
        }
        if !rest.is_empty() {
            parts.push(Part::Text(rest.to_owned()));
        }
        Ok(Prefix { parts })
    }

    fn has_expressions(&self) -> bool {
        self.parts.iter().any(|p| !matches!(p, Part::Text(_)))
    }

    fn has(&self, wanted: fn(&Part) -> bool) -> bool {
        self.parts.iter().any(wanted)
    }

    fn partition_keys(&self) -> impl Iterator<Item = &str> {
        self.parts.iter().filter_map(|p| match p {
            Part::PartitionKey(k) => Some(k.as_str()),
            _ => None,
        })
    }

    /// The prefix for a record that arrived at `arrival_ms`, in the error type's folder if any.
    pub fn evaluate(&self, arrival_ms: i64, error_type: Option<&str>, random: &mut impl FnMut() -> String) -> String {
        self.evaluate_with(arrival_ms, error_type, &[], random)
    }

    /// [`Prefix::evaluate`] for a record whose partition keys are `partition` (key, value).
    pub fn evaluate_with(
        &self,
        arrival_ms: i64,
        error_type: Option<&str>,
        partition: &[(String, String)],
        random: &mut impl FnMut() -> String,
    ) -> String {
        let ((y, mo, d), (h, mi, s)) = tarn_time::civil_from_millis(arrival_ms);
        let mut out = String::new();
        for part in &self.parts {
            match part {
                Part::Text(t) => out.push_str(t),
                Part::RandomString => out.push_str(&random()),
                Part::ErrorOutputType => out.push_str(error_type.unwrap_or("")),
                Part::PartitionKey(key) => {
                    let value = partition.iter().find(|(k, _)| k == key).map_or("", |(_, v)| v.as_str());
                    // A value is one folder name: no separators, no parent references.
                    out.extend(value.chars().map(|c| if c == '/' || c == '\\' { '_' } else { c }));
                    if value == ".." || value == "." {
                        out.push('_');
                    }
                }
                Part::Timestamp(tokens) => {
                    for t in tokens {
                        match *t {
                            Token::Literal(ref l) => out.push_str(l),
                            Token::Field('y', 2) => {
                                let _ = write!(out, "{:02}", y.rem_euclid(100));
                            }
                            Token::Field('y', n) => {
                                let _ = write!(out, "{y:0n$}");
                            }
                            Token::Field(c, n) => {
                                let v = match c {
                                    'M' => mo,
                                    'd' => d,
                                    'H' => h,
                                    'm' => mi,
                                    _ => s,
                                };
                                let _ = write!(out, "{v:0n$}");
                            }
                        }
                    }
                }
            }
        }
        out
    }
}

/// A segment's data and error prefixes, checked together by Firehose's rules.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Prefixes {
    pub data: Prefix,
    pub error: Prefix,
}

/// Tarn's default: Hive-style hour folders, which Athena, Trino and DuckDB read as partitions.
pub const DEFAULT_PREFIX: &str =
    "year=!{timestamp:yyyy}/month=!{timestamp:MM}/day=!{timestamp:dd}/hour=!{timestamp:HH}/";

impl Prefixes {
    /// `data` and `error` as a CreateDeliveryStream gives them (`None`: not given).
    pub fn new(data: Option<&str>, error: Option<&str>) -> Result<Prefixes, PrefixError> {
        Prefixes::with_partition_keys(data, error, None)
    }

    /// As [`Prefixes::new`], for a segment with dynamic partitioning on `keys` (`None`: off).
    pub fn with_partition_keys(
        data: Option<&str>,
        error: Option<&str>,
        keys: Option<&[&str]>,
    ) -> Result<Prefixes, PrefixError> {
        let prefixes = Prefixes::checked(data, error)?;
        if prefixes.error.partition_keys().next().is_some() {
            return Err(PrefixError("The ErrorOutputPrefix must not contain partitionKeyFromQuery expressions".into()));
        }
        match keys {
            None => {
                if let Some(k) = prefixes.data.partition_keys().next() {
                    return Err(PrefixError(format!(
                        "!{{partitionKeyFromQuery:{k}}} needs dynamic partitioning: a DynamicPartitioningConfiguration and a MetadataExtraction processor"
                    )));
                }
            }
            Some(keys) => {
                if error.is_none_or(str::is_empty) {
                    return Err(PrefixError("An ErrorOutputPrefix is required with dynamic partitioning".into()));
                }
                if let Some(k) = prefixes.data.partition_keys().find(|k| !keys.contains(k)) {
                    return Err(PrefixError(format!(
                        "The Prefix uses !{{partitionKeyFromQuery:{k}}} but the MetadataExtractionQuery defines no key {k}"
                    )));
                }
                if let Some(k) = keys.iter().find(|k| !prefixes.data.partition_keys().any(|p| p == **k)) {
                    return Err(PrefixError(format!(
                        "The MetadataExtractionQuery key {k} must be used in the Prefix as !{{partitionKeyFromQuery:{k}}}"
                    )));
                }
            }
        }
        Ok(prefixes)
    }

    fn checked(data: Option<&str>, error: Option<&str>) -> Result<Prefixes, PrefixError> {
        let data_text = data.unwrap_or("");
        let mut prefix = Prefix::parse(data_text)?;
        if prefix.has(|p| matches!(p, Part::ErrorOutputType)) {
            return Err(PrefixError(
                "The Prefix must not contain !{firehose:error-output-type}; it belongs in the ErrorOutputPrefix".into(),
            ));
        }
        let error = match error.filter(|e| !e.is_empty()) {
            Some(e) => {
                let parsed = Prefix::parse(e)?;
                if parsed.has_expressions() && !parsed.has(|p| matches!(p, Part::ErrorOutputType)) {
                    return Err(PrefixError(
                        "An ErrorOutputPrefix with expressions must contain !{firehose:error-output-type}".into(),
                    ));
                }
                parsed
            }
            None if prefix.has_expressions() => {
                return Err(PrefixError("ErrorOutputPrefix can't be null when Prefix contains expressions".into()));
            }
            // Firehose's default: errors beside the data, under the error type, by hour.
            None => {
                Prefix::parse(&format!("{data_text}!{{firehose:error-output-type}}/!{{timestamp:yyyy/MM/dd/HH/}}"))?
            }
        };
        if !prefix.has(|p| matches!(p, Part::Timestamp(_))) {
            prefix = Prefix::parse(&format!("{data_text}!{{timestamp:yyyy/MM/dd/HH/}}"))?;
        }
        Ok(Prefixes { data: prefix, error })
    }

    /// Tarn's default layout: Hive-style hour folders, errors by type and hour.
    pub fn hive() -> Prefixes {
        Prefixes::new(Some(DEFAULT_PREFIX), Some("!{firehose:error-output-type}/!{timestamp:yyyy/MM/dd/HH/}"))
            .expect("the default prefixes are valid")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const AT: i64 = 1_535_365_800_000; // 2018-08-27T10:30:00Z, the Firehose docs' example time

    fn eval(p: &Prefix, error: Option<&str>) -> String {
        let mut n = 0;
        p.evaluate(AT, error, &mut || {
            n += 1;
            format!("r{n}")
        })
    }

    #[test]
    fn evaluates_the_documented_examples() {
        let hive = Prefixes::hive();
        assert_eq!(eval(&hive.data, None), "year=2018/month=08/day=27/hour=10/");
        assert_eq!(eval(&hive.error, Some("format-conversion-failed")), "format-conversion-failed/2018/08/27/10/");
        let p = Prefixes::new(None, Some("myFirehoseFailures/!{firehose:error-output-type}/")).unwrap();
        assert_eq!(eval(&p.data, None), "2018/08/27/10/");
        assert_eq!(eval(&p.error, Some("processing-failed")), "myFirehoseFailures/processing-failed/");
        let p = Prefixes::new(Some("myFirehosePrefix/"), None).unwrap();
        assert_eq!(eval(&p.data, None), "myFirehosePrefix/2018/08/27/10/");
        assert_eq!(eval(&p.error, Some("processing-failed")), "myFirehosePrefix/processing-failed/2018/08/27/10/");
        let p = Prefix::parse(
            "a/!{timestamp:yyyy'-'MM'-'dd}/!{firehose:random-string}/!{firehose:random-string}/!{timestamp:mm:ss yy}",
        )
        .unwrap();
        assert_eq!(eval(&p, None), "a/2018-08-27/r1/r2/30:00 18");
    }

    #[test]
    fn refuses_what_firehose_refuses() {
        let err = |d: Option<&str>, e: Option<&str>| Prefixes::new(d, e).unwrap_err().0;
        assert!(err(Some("x/!{timestamp:yyyy}/"), None).contains("ErrorOutputPrefix can't be null"));
        assert!(err(Some("x/!{firehose:error-output-type}/"), Some("e/")).contains("must not contain"));
        assert!(err(Some("x/"), Some("e/!{timestamp:yyyy}/")).contains("must contain !{firehose:error-output-type}"));
        assert!(err(Some("x/!{timestamp:yyyy"), Some("e/")).contains("not closed"));
        assert!(err(Some("x/!{nope:1}/"), Some("e/")).contains("not a supported expression"));
        assert!(err(Some("x/!{timestamp:EEE}/"), Some("e/!{firehose:error-output-type}")).contains("'E'"));
        assert!(
            err(Some("!{partitionKeyFromQuery:id}/"), Some("e/!{firehose:error-output-type}"))
                .contains("dynamic partitioning")
        );
        assert!(err(Some("!{partitionKeyFromLambda:id}/"), Some("e/!{firehose:error-output-type}")).contains("Lambda"));
    }

    #[test]
    fn partition_keys_come_from_the_query_and_are_one_folder_each() {
        let keys = ["customer", "kind"];
        let dynamic = |d: &str, e: Option<&str>| Prefixes::with_partition_keys(Some(d), e, Some(&keys));
        let p = dynamic(
            "c=!{partitionKeyFromQuery:customer}/k=!{partitionKeyFromQuery:kind}/!{timestamp:yyyy}/",
            Some("err/!{firehose:error-output-type}/"),
        )
        .unwrap();
        let partition = [("customer".to_string(), "a/../b".to_string()), ("kind".to_string(), "..".to_string())];
        let folder = p.data.evaluate_with(AT, None, &partition, &mut String::new);
        assert_eq!(folder, "c=a_.._b/k=.._/2018/");
        let e = Some("e/!{firehose:error-output-type}/");
        assert!(dynamic("c=!{partitionKeyFromQuery:customer}/", e).unwrap_err().0.contains("kind must be used"));
        assert!(dynamic("c=!{partitionKeyFromQuery:other}/", e).unwrap_err().0.contains("defines no key other"));
        let both = "c=!{partitionKeyFromQuery:customer}/!{partitionKeyFromQuery:kind}/";
        assert!(dynamic(both, None).unwrap_err().0.contains("ErrorOutputPrefix"));
    }
}
