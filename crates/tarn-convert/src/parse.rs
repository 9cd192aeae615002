//! Payloads straight to normalized objects: keys become column names (OpenX options) while the
//! JSON is parsed, so each object's map is built once instead of parsed, then rebuilt by
//! [`ConvertOptions::normalize`]. Payloads that are not all objects, or not all JSON, take the
//! general path ([`split_payload`] then `normalize`), which keeps the bad parts' bytes.

use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt;

use serde::de::{DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};

use crate::keys::ConvertOptions;
use crate::split::{SplitError, split_payload};

impl ConvertOptions {
    /// The objects of `payload` with column-name keys, and what could not be read, as
    /// [`split_payload`] followed by [`ConvertOptions::normalize`] would give them.
    pub fn parse_objects(&self, payload: &[u8]) -> (Vec<Map<String, Value>>, Vec<SplitError>) {
        let key_to_column: HashMap<&str, &str> =
            self.column_to_key.iter().map(|(c, k)| (k.as_str(), c.as_str())).collect();
        let rules = Rules { options: self, key_to_column: &key_to_column };
        if let Some(objects) = rules.fast(payload) {
            return (objects, Vec::new());
        }
        let (objects, errors) = split_payload(payload);
        (objects.into_iter().map(|o| self.normalize(o)).collect(), errors)
    }
}

struct Rules<'o> {
    options: &'o ConvertOptions,
    key_to_column: &'o HashMap<&'o str, &'o str>,
}

impl Rules<'_> {
    /// Every value of the payload as a normalized object, or `None` if any is not an object.
    fn fast(&self, payload: &[u8]) -> Option<Vec<Map<String, Value>>> {
        let mut de = serde_json::Deserializer::from_slice(payload);
        let mut objects = Vec::new();
        loop {
            objects.push(ObjectSeed { rules: self, top: true }.deserialize(&mut de).ok()?);
            // `end` succeeds when only white space is left; otherwise another value follows.
            if de.end().is_ok() {
                return Some(objects);
            }
        }
    }

    fn name(&self, key: Cow<'_, str>, top: bool) -> String {
        match self.key_to_column.get(key.as_ref()).filter(|_| top) {
            Some(column) => (*column).to_owned(),
            None => self.options.renamed(key),
        }
    }
}

struct ObjectSeed<'r, 'o> {
    rules: &'r Rules<'o>,
    top: bool,
}

impl<'de> DeserializeSeed<'de> for ObjectSeed<'_, '_> {
    type Value = Map<String, Value>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for ObjectSeed<'_, '_> {
    type Value = Map<String, Value>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut out = Map::with_capacity(map.size_hint().unwrap_or(8));
        while let Some(key) = map.next_key::<Cow<'de, str>>()? {
            let value = map.next_value_seed(ValueSeed { rules: self.rules })?;
            // When two keys land on one name the later value wins, as in OpenX.
            out.insert(self.rules.name(key, self.top), value);
        }
        Ok(out)
    }
}

struct ValueSeed<'r, 'o> {
    rules: &'r Rules<'o>,
}

impl<'de> DeserializeSeed<'de> for ValueSeed<'_, '_> {
    type Value = Value;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for ValueSeed<'_, '_> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(Number::from_f64(v).map_or(Value::Null, Value::Number))
    }
    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }
    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(1024));
        while let Some(item) = seq.next_element_seed(ValueSeed { rules: self.rules })? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Value, A::Error> {
        ObjectSeed { rules: self.rules, top: false }.visit_map(map).map(Value::Object)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn both(options: &ConvertOptions, payload: &[u8]) {
        let (fast, fast_errors) = options.parse_objects(payload);
        let (slow, slow_errors) = split_payload(payload);
        let slow: Vec<_> = slow.into_iter().map(|o| options.normalize(o)).collect();
        assert_eq!(fast, slow, "{}", String::from_utf8_lossy(payload));
        assert_eq!(fast_errors, slow_errors);
    }

    #[test]
    fn matches_split_then_normalize() {
        let openx = ConvertOptions {
            dots_to_underscores: true,
            column_to_key: HashMap::from([("ts".to_string(), "@Timestamp".to_string())]),
            ..ConvertOptions::default()
        };
        let sensitive = ConvertOptions { case_insensitive: false, ..ConvertOptions::default() };
        let payloads: [&[u8]; 7] = [
            br#"{"UserId":1,"geo.lat":2.5,"@Timestamp":"x","Nested":{"InnerKey":true,"@Timestamp":1},"L":[{"A":1},null,[2]]}"#,
            b"{\"a\":1}\n{\"A\":2}\n",
            br#"{"a":1}{"b":"\u00e9\n"} {"C":-3e2}"#,
            br#"{"Dup":1,"dup":2}"#,
            b"{\"a\":1}\n42\n{\"a\":",
            b"not json",
            "{\"\u{c9}T\u{c9}\":1,\"big\":18446744073709551615}".as_bytes(),
        ];
        for options in [&ConvertOptions::default(), &openx, &sensitive] {
            for p in payloads {
                both(options, p);
            }
        }
    }
}
