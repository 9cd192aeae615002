//! Dynamic partitioning's MetadataExtraction query: the subset of jq Firehose users write to pick
//! partition keys out of a record, `{customer_id: .customer_id, device: .device.type}`. Parsed
//! when a segment is declared, evaluated per record. Free of I/O.

use serde_json::{Map, Value};

/// `{key: .path, ...}`: each key names a value found along a path of object fields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionQuery {
    keys: Vec<(String, Vec<String>)>,
}

fn is_ident(c: char, first: bool) -> bool {
    c == '_' || c.is_ascii_alphabetic() || (!first && c.is_ascii_digit())
}

struct Cursor<'a> {
    text: &'a str,
    at: usize,
}

impl Cursor<'_> {
    fn ws(&mut self) {
        while self.text[self.at..].starts_with(char::is_whitespace) {
            self.at += self.text[self.at..].chars().next().map_or(1, char::len_utf8);
        }
    }

    fn eat(&mut self, c: char) -> bool {
        self.ws();
        if self.text[self.at..].starts_with(c) {
            self.at += c.len_utf8();
            true
        } else {
            false
        }
    }

    fn name(&mut self) -> Result<String, String> {
        self.ws();
        let rest = &self.text[self.at..];
        if let Some(quoted) = rest.strip_prefix('"') {
            let end = quoted.find('"').ok_or_else(|| format!("unterminated string at {}", self.at))?;
            self.at += end + 2;
            return Ok(quoted[..end].to_owned());
        }
        let len = rest.char_indices().take_while(|&(i, c)| is_ident(c, i == 0)).map(|(_, c)| c.len_utf8()).sum();
        if len == 0 {
            return Err(format!("expected a name at position {} of the query", self.at));
        }
        self.at += len;
        Ok(rest[..len].to_owned())
    }
}

impl PartitionQuery {
    pub fn parse(text: &str) -> Result<PartitionQuery, String> {
        let mut c = Cursor { text, at: 0 };
        let wrong = |why: String| {
            format!("MetadataExtractionQuery {text:?} is not supported: {why}; write {{key: .field.path, ...}}")
        };
        if !c.eat('{') {
            return Err(wrong("it does not start with {".into()));
        }
        let mut keys = Vec::new();
        loop {
            let key = c.name().map_err(wrong)?;
            if !c.eat(':') {
                return Err(wrong(format!("expected ':' after {key}")));
            }
            let mut path = Vec::new();
            while c.eat('.') {
                path.push(c.name().map_err(wrong)?);
            }
            if path.is_empty() {
                return Err(wrong(format!("the value of {key} is not a .field path")));
            }
            if keys.iter().any(|(k, _)| *k == key) {
                return Err(wrong(format!("{key} appears twice")));
            }
            keys.push((key, path));
            if c.eat(',') {
                continue;
            }
            if c.eat('}') {
                break;
            }
            return Err(wrong("expected ',' or '}'".into()));
        }
        c.ws();
        if c.at != text.len() {
            return Err(wrong("text after the closing }".into()));
        }
        Ok(PartitionQuery { keys })
    }

    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.keys.iter().map(|(k, _)| k.as_str())
    }

    /// The field path each key reads (path segments as written in the query).
    pub fn paths(&self) -> impl Iterator<Item = &[String]> {
        self.keys.iter().map(|(_, p)| p.as_slice())
    }

    /// The partition keys of `object`: strings as they are, numbers and booleans as their JSON
    /// text. `field` maps a path segment (and whether it is the first) to the object's key for
    /// it (the segment's OpenX column name). Missing, null or nested values are errors.
    pub fn evaluate(
        &self,
        object: &Map<String, Value>,
        field: impl Fn(&str, bool) -> String,
    ) -> Result<Vec<(String, String)>, String> {
        let mut out = Vec::with_capacity(self.keys.len());
        for (key, path) in &self.keys {
            let text = match lookup(object, path, &field) {
                Some(Value::String(s)) => s.clone(),
                Some(v @ (Value::Number(_) | Value::Bool(_))) => v.to_string(),
                Some(Value::Null) | None => return Err(format!("partition key {key}: .{} is missing", path.join("."))),
                Some(_) => return Err(format!("partition key {key}: .{} is not a scalar", path.join("."))),
            };
            out.push((key.clone(), text));
        }
        Ok(out)
    }
}

/// The value at `path` in `object` (a field name per level), if every level is there. `field`
/// maps a path segment (and whether it is the first) to the object's key for it.
pub fn lookup<'v>(
    object: &'v Map<String, Value>,
    path: &[String],
    field: impl Fn(&str, bool) -> String,
) -> Option<&'v Value> {
    let mut at: Option<&Value> = None;
    for (i, segment) in path.iter().enumerate() {
        let map = match (i, at) {
            (0, _) => Some(object),
            (_, Some(Value::Object(m))) => Some(m),
            _ => None,
        };
        at = map.and_then(|m| m.get(&field(segment, i == 0)));
    }
    at
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn parses_and_evaluates_field_paths() {
        let q = PartitionQuery::parse(r#"{ customer_id: .customerId, device : .device."type", n:.n }"#).unwrap();
        assert_eq!(q.keys().collect::<Vec<_>>(), ["customer_id", "device", "n"]);
        let o = json!({"customerid": "c-7", "device": {"type": "phone"}, "n": 3}).as_object().unwrap().clone();
        let lower = |s: &str, _: bool| s.to_lowercase();
        let got = q.evaluate(&o, lower).unwrap();
        assert_eq!(
            got,
            [("customer_id".into(), "c-7".into()), ("device".into(), "phone".into()), ("n".into(), "3".into())]
        );
        let missing = json!({"customerid": "c"}).as_object().unwrap().clone();
        assert!(q.evaluate(&missing, lower).unwrap_err().contains(".device.type is missing"));
    }

    #[test]
    fn refuses_what_it_cannot_evaluate() {
        for bad in ["customer_id: .c", "{a: .b | ascii_downcase}", "{a: b}", "{a: .b, a: .c}", "{a: .b} x", "{}"] {
            assert!(PartitionQuery::parse(bad).is_err(), "{bad}");
        }
    }
}
