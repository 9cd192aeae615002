//! Payloads straight into Arrow: each payload is read onto a [`Tape`] and its values handed to
//! the column builders of a fixed schema, with no per-row maps and no owned strings. The result
//! is the batch [`crate::convert`] builds from the same records (same type policy, same rescue
//! column), at several times the speed.
//!
//! It handles the common case only and says when it cannot, so the caller can take the general
//! path ([`crate::split_payload`] / [`ConvertOptions::parse_objects`], [`crate::Shapes::evolve`],
//! [`crate::convert`]) for those records:
//! - [`Refused::Unreadable`]: the payload is not all JSON objects (nothing was appended);
//! - [`Refused::NewField`]: a record has a field the schema lacks, so the schema must evolve;
//! - [`Refused::Conflict`]: a value fits no column and there is no rescue column to keep it.
//!
//! After `NewField` or `Conflict` the builder holds part of a record and must be dropped.

use std::sync::Arc;

use arrow_array::builder::{BooleanBuilder, PrimitiveBuilder, StringBuilder};
use arrow_array::types::{Float64Type, Int64Type, TimestampMicrosecondType};
use arrow_array::{ArrayRef, ListArray, RecordBatch, RecordBatchOptions, StructArray};
use arrow_buffer::{BooleanBufferBuilder, NullBuffer, OffsetBuffer};
use arrow_schema::{ArrowError, Field};
use serde_json::{Map, Value};

use crate::convert::{Converted, double_of, long_of, timestamp_of};
use crate::keys::ConvertOptions;
use crate::schema::{Column, ColumnType, TableSchema, UTC};
use crate::split::kind;
use crate::tape::{Kind, Tape, Token, small_integer};
use crate::time::{epoch_to_micros, parse_iso8601};

/// Why a payload was not appended; see the module documentation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    Unreadable,
    NewField,
    Conflict,
}

/// Rows of one batch, built payload by payload.
pub struct DirectBatch<'s> {
    schema: &'s TableSchema,
    options: &'s ConvertOptions,
    /// Whether unknown fields mean the schema must grow ([`Refused::NewField`]) or are ignored
    /// (a declared schema).
    evolving: bool,
    /// Without a rescue column: misfits become nulls (and conflicts) instead of a refusal.
    lenient: bool,
    columns: Fields,
    rescued: Vec<Option<Map<String, Value>>>,
    conflicts: Vec<(usize, String)>,
    poisoned: bool,
    reader: Reader,
}

impl<'s> DirectBatch<'s> {
    pub fn new(schema: &'s TableSchema, options: &'s ConvertOptions, evolving: bool) -> DirectBatch<'s> {
        let rescue = options.rescue_column.as_deref();
        let data: Vec<&Column> = schema.columns.iter().filter(|c| Some(c.name.as_str()) != rescue).collect();
        DirectBatch {
            schema,
            options,
            evolving,
            lenient: false,
            columns: Fields::new(data.into_iter(), "", true),
            rescued: Vec::new(),
            conflicts: Vec::new(),
            poisoned: false,
            reader: Reader::default(),
        }
    }

    /// Without a rescue column, a value that fits no column is read as null and listed in the
    /// conflicts, as [`crate::convert`] does, instead of refusing the record.
    pub fn nulls_for_misfits(mut self) -> Self {
        self.lenient = true;
        self
    }

    pub fn rows(&self) -> usize {
        self.rescued.len()
    }

    /// Appends every object of `payload` as a row; returns how many.
    pub fn append(&mut self, payload: &[u8]) -> Result<usize, Refused> {
        let mut reader = std::mem::take(&mut self.reader);
        let outcome = reader.read(payload).and_then(|objects| {
            let n = objects.len();
            let appended = (0..n).try_for_each(|i| self.append_object(&objects, i));
            reader.recycle(objects);
            appended.map(|()| n)
        });
        self.reader = reader;
        outcome
    }

    /// Appends object `i` of a read payload as a row.
    pub fn append_object(&mut self, objects: &Objects<'_>, i: usize) -> Result<(), Refused> {
        if self.poisoned {
            return Err(Refused::Conflict);
        }
        self.rescued.push(None);
        let mut at = At {
            tape: &objects.tape,
            options: self.options,
            evolving: self.evolving,
            lenient: self.lenient,
            rescue_name: self.options.rescue_column.as_deref(),
            row: self.rescued.len() - 1,
            rescued: &mut self.rescued,
            conflicts: &mut self.conflicts,
        };
        let outcome = self.columns.append_object(&mut at, objects.tape.roots[i] as usize);
        if outcome.is_err() {
            self.poisoned = true;
        }
        outcome
    }

    /// The batch, in the schema's column order (the rescue column where the schema has it).
    pub fn finish(self) -> Result<Converted, ArrowError> {
        if self.poisoned {
            return Err(ArrowError::InvalidArgumentError("a refused record left this batch incomplete".into()));
        }
        let rows = self.rescued.len();
        let mut built: Vec<(String, ArrayRef)> = self
            .columns
            .nodes
            .into_iter()
            .map(|n| Ok((n.name.clone(), n.finish()?)))
            .collect::<Result<_, ArrowError>>()?;
        if let Some(name) = self.options.rescue_column.as_deref() {
            let mut b = StringBuilder::new();
            for kept in self.rescued {
                match kept {
                    Some(map) => b.append_value(Value::Object(map).to_string()),
                    None => b.append_null(),
                }
            }
            built.push((name.to_owned(), Arc::new(b.finish())));
        }
        let ordered: Vec<ArrayRef> = self
            .schema
            .columns
            .iter()
            .map(|c| built.iter().find(|(n, _)| *n == c.name).map(|(_, a)| a.clone()).expect("every column was built"))
            .collect();
        let arrow_schema = Arc::new(self.schema.to_arrow());
        let batch = RecordBatch::try_new_with_options(
            arrow_schema,
            ordered,
            &RecordBatchOptions::new().with_row_count(Some(rows)),
        )?;
        Ok(Converted { batch, conflicts: self.conflicts })
    }
}

/// Reads payloads onto a tape, keeping the tape's buffers from payload to payload.
#[derive(Default)]
pub struct Reader {
    tokens: Vec<Token>,
    unescaped: String,
    roots: Vec<u32>,
}

impl Reader {
    /// The objects of `payload`, or [`Refused::Unreadable`] when it is not all JSON objects.
    pub fn read<'p>(&mut self, payload: &'p [u8]) -> Result<Objects<'p>, Refused> {
        let mut tape = Tape {
            payload: "",
            tokens: std::mem::take(&mut self.tokens),
            unescaped: std::mem::take(&mut self.unescaped),
            roots: std::mem::take(&mut self.roots),
        };
        match tape.read(payload) {
            Ok(()) => Ok(Objects { tape }),
            Err(_) => {
                self.recycle(Objects { tape });
                Err(Refused::Unreadable)
            }
        }
    }

    /// Takes back the buffers of a payload read earlier.
    pub fn recycle(&mut self, objects: Objects<'_>) {
        self.tokens = objects.tape.tokens;
        self.unescaped = objects.tape.unescaped;
        self.roots = objects.tape.roots;
    }
}

/// The objects of one payload, read.
pub struct Objects<'p> {
    tape: Tape<'p>,
}

impl Objects<'_> {
    pub fn len(&self) -> usize {
        self.tape.roots.len()
    }

    pub fn is_empty(&self) -> bool {
        self.tape.roots.is_empty()
    }

    /// The top-level fields of object `i` whose column names are in `names`, as the general
    /// path's normalized object holds them: for placing the row (partition keys, record time)
    /// without building the whole object.
    pub fn fields(&self, i: usize, names: &[String], options: &ConvertOptions) -> Map<String, Value> {
        let tape = &self.tape;
        let root = tape.roots[i] as usize;
        let mut out = Map::new();
        let mut key = root + 1;
        while key < tape.tokens[root].next as usize {
            let value = key + 1;
            let name = options.name_of_key(tape.text(&tape.tokens[key]), true);
            if names.contains(&name) {
                out.insert(name, options.normalize_nested(parsed(tape.raw(&tape.tokens[value]))));
            }
            key = tape.tokens[value].next as usize;
        }
        out
    }

    /// Object `i` as JSON text with its keys renamed, as the general path would show it.
    pub fn normalized_json(&self, i: usize, options: &ConvertOptions) -> Vec<u8> {
        let raw = self.tape.raw(&self.tape.tokens[self.tape.roots[i] as usize]);
        match parsed(raw) {
            Value::Object(object) => serde_json::to_vec(&options.normalize(object)).unwrap_or_else(|_| raw.into()),
            _ => raw.as_bytes().to_vec(),
        }
    }
}

/// A value's raw text read by `serde_json`. The tape accepts only what `serde_json` reads, so
/// this does not fail; if it ever did, the text itself is kept (as a string) rather than
/// stopping delivery.
fn parsed(raw: &str) -> Value {
    serde_json::from_str(raw).unwrap_or_else(|_| Value::String(raw.to_owned()))
}

/// What appending one row needs besides the builders.
struct At<'a, 't> {
    tape: &'a Tape<'t>,
    options: &'a ConvertOptions,
    evolving: bool,
    lenient: bool,
    rescue_name: Option<&'a str>,
    row: usize,
    rescued: &'a mut Vec<Option<Map<String, Value>>>,
    conflicts: &'a mut Vec<(usize, String)>,
}

impl At<'_, '_> {
    fn token(&self, i: usize) -> Token {
        self.tape.tokens[i]
    }

    /// The value of token `i` as `serde_json` reads it, nested keys renamed: what the general
    /// path would hold for it.
    fn value(&self, i: usize) -> Value {
        self.options.normalize_nested(parsed(self.tape.raw(&self.tape.tokens[i])))
    }

    /// Keeps a value that fits no column in the rescue column (with its path), or refuses the
    /// payload when there is none.
    fn rescue(&mut self, node: &Node, i: usize) -> Result<(), Refused> {
        if self.rescue_name.is_none() && !self.lenient {
            return Err(Refused::Conflict);
        }
        let value = self.value(i);
        let message = format!("field {}: {} does not fit a {} column", node.path, kind(&value), node.ty.name());
        if self.rescue_name.is_some() {
            self.rescued[self.row].get_or_insert_with(Map::new).insert(node.path.clone(), value);
        }
        self.conflicts.push((self.row, message));
        Ok(())
    }

    /// Whether a field without a column can be passed over: `null`, or a list of nulls (neither
    /// creates a column).
    fn adds_nothing(&self, i: usize) -> bool {
        let t = self.token(i);
        match t.kind {
            Kind::Null => true,
            Kind::Array => {
                let mut e = i + 1;
                while e < t.next as usize {
                    let item = self.token(e);
                    if item.kind != Kind::Null {
                        return false;
                    }
                    e = item.next as usize;
                }
                true
            }
            _ => false,
        }
    }
}

/// Where a field at one position of an object goes.
#[derive(Debug, Clone, Copy)]
enum Slot {
    Column(usize),
    /// No column takes it, and none should be made (the rescue column, or a declared schema).
    Ignored,
    /// No column takes it yet.
    Unknown,
}

/// The columns of a struct (or of the table), and the key each position of the last objects
/// had: records of one stream share their key order, so a key is usually matched by comparing
/// it with the one at the same position last time instead of renaming and looking it up.
struct Fields {
    nodes: Vec<Node>,
    seen: Vec<(Box<str>, Slot)>,
    /// Per column, the token of its value in the object being appended.
    slots: Vec<Option<usize>>,
    valid: BooleanBufferBuilder,
    top: bool,
}

impl Fields {
    fn new<'c>(columns: impl Iterator<Item = &'c Column>, prefix: &str, top: bool) -> Fields {
        let nodes: Vec<Node> = columns.map(|c| Node::new(c, &format!("{prefix}{}", c.name))).collect();
        Fields { slots: vec![None; nodes.len()], nodes, seen: Vec::new(), valid: BooleanBufferBuilder::new(0), top }
    }

    fn slot(&mut self, at: &At<'_, '_>, position: usize, key: &str) -> Slot {
        if let Some((seen, slot)) = self.seen.get(position)
            && seen.as_ref() == key
        {
            return *slot;
        }
        let name = at.options.name_of_key(key, self.top);
        let slot = if self.top && Some(name.as_str()) == at.rescue_name {
            Slot::Ignored
        } else {
            match self.nodes.iter().position(|n| n.name == name) {
                Some(c) => Slot::Column(c),
                None if at.evolving => Slot::Unknown,
                None => Slot::Ignored,
            }
        };
        let entry = (Box::<str>::from(key), slot);
        match self.seen.get_mut(position) {
            Some(e) => *e = entry,
            None => self.seen.push(entry),
        }
        slot
    }

    /// Hands the fields of the object at token `object` to the columns (absent ones get null).
    fn append_object(&mut self, at: &mut At<'_, '_>, object: usize) -> Result<(), Refused> {
        self.slots.fill(None);
        let end = at.token(object).next as usize;
        let mut key = object + 1;
        let mut position = 0;
        while key < end {
            let value = key + 1;
            match self.slot(at, position, at.tape.text(&at.tape.tokens[key])) {
                // When two keys land on one column the later value wins, as in OpenX.
                Slot::Column(c) => self.slots[c] = Some(value),
                Slot::Ignored => {}
                Slot::Unknown if at.adds_nothing(value) => {}
                Slot::Unknown => return Err(Refused::NewField),
            }
            key = at.token(value).next as usize;
            position += 1;
        }
        for (node, slot) in self.nodes.iter_mut().zip(&self.slots) {
            node.append(at, *slot)?;
        }
        self.valid.append(true);
        Ok(())
    }

    fn append_null(&mut self) {
        for node in &mut self.nodes {
            node.append_null();
        }
        self.valid.append(false);
    }
}

struct ListColumn {
    element: Node,
    offsets: Vec<i32>,
    valid: BooleanBufferBuilder,
}

enum Builder {
    Boolean(BooleanBuilder),
    Long(PrimitiveBuilder<Int64Type>),
    Double(PrimitiveBuilder<Float64Type>),
    String(StringBuilder),
    Timestamp(PrimitiveBuilder<TimestampMicrosecondType>),
    Struct(Box<Fields>),
    List(Box<ListColumn>),
}

/// One column (or struct field, or list element) being built.
struct Node {
    name: String,
    /// The dotted path rescued values are kept under (`gps.lat`, `alerts[]`).
    path: String,
    ty: ColumnType,
    builder: Builder,
}

impl Node {
    fn new(column: &Column, path: &str) -> Node {
        Node::of_type(&column.name, &column.ty, path)
    }

    fn of_type(name: &str, ty: &ColumnType, path: &str) -> Node {
        let builder = match ty {
            ColumnType::Boolean => Builder::Boolean(BooleanBuilder::new()),
            ColumnType::Long => Builder::Long(PrimitiveBuilder::new()),
            ColumnType::Double => Builder::Double(PrimitiveBuilder::new()),
            ColumnType::String => Builder::String(StringBuilder::new()),
            ColumnType::Timestamp => Builder::Timestamp(PrimitiveBuilder::new()),
            ColumnType::Struct(children) => {
                Builder::Struct(Box::new(Fields::new(children.iter(), &format!("{path}."), false)))
            }
            ColumnType::List(element) => Builder::List(Box::new(ListColumn {
                element: Node::of_type("element", element, &format!("{path}[]")),
                offsets: vec![0],
                valid: BooleanBufferBuilder::new(0),
            })),
        };
        Node { name: name.to_owned(), path: path.to_owned(), ty: ty.clone(), builder }
    }

    fn append_null(&mut self) {
        match &mut self.builder {
            Builder::Boolean(b) => b.append_null(),
            Builder::Long(b) => b.append_null(),
            Builder::Double(b) => b.append_null(),
            Builder::String(b) => b.append_null(),
            Builder::Timestamp(b) => b.append_null(),
            Builder::Struct(fields) => fields.append_null(),
            Builder::List(list) => {
                list.offsets.push(*list.offsets.last().expect("starts with 0"));
                list.valid.append(false);
            }
        }
    }

    /// Appends the value at token `value` (`None`: the field is absent), or null and a rescued
    /// value when it does not fit.
    fn append(&mut self, at: &mut At<'_, '_>, value: Option<usize>) -> Result<(), Refused> {
        let Some(i) = value.filter(|&i| at.token(i).kind != Kind::Null) else {
            self.append_null();
            return Ok(());
        };
        let t = at.token(i);
        let tape = at.tape;
        let fits = match &mut self.builder {
            Builder::Boolean(b) => {
                let v = match t.kind {
                    Kind::True => Some(true),
                    Kind::False => Some(false),
                    Kind::Plain | Kind::Escaped => match tape.text(&t) {
                        "true" => Some(true),
                        "false" => Some(false),
                        _ => None,
                    },
                    _ => None,
                };
                v.map(|v| b.append_value(v)).is_some()
            }
            Builder::Long(b) => {
                let v = match t.kind {
                    Kind::Integer => small_integer(tape.raw(&t)).or_else(|| long_of(&at.value(i))),
                    Kind::Float => long_of(&at.value(i)),
                    Kind::Plain | Kind::Escaped => tape.text(&t).parse::<i64>().ok(),
                    _ => None,
                };
                v.map(|v| b.append_value(v)).is_some()
            }
            Builder::Double(b) => {
                let v = match t.kind {
                    Kind::Integer => small_integer(tape.raw(&t)).map(|n| n as f64).or_else(|| double_of(&at.value(i))),
                    Kind::Float => tape.raw(&t).parse::<f64>().ok(),
                    Kind::Plain | Kind::Escaped => tape.text(&t).parse::<f64>().ok(),
                    _ => None,
                };
                v.map(|v| b.append_value(v)).is_some()
            }
            Builder::Timestamp(b) => {
                let v = match t.kind {
                    Kind::Plain | Kind::Escaped => parse_iso8601(tape.text(&t)),
                    Kind::Integer => match small_integer(tape.raw(&t)) {
                        Some(n) => epoch_to_micros(n as f64),
                        None => timestamp_of(&at.value(i)),
                    },
                    Kind::Float => tape.raw(&t).parse::<f64>().ok().and_then(epoch_to_micros),
                    _ => None,
                };
                v.map(|v| b.append_value(v)).is_some()
            }
            Builder::String(b) => {
                match t.kind {
                    Kind::Plain | Kind::Escaped => b.append_value(tape.text(&t)),
                    Kind::True | Kind::False => b.append_value(tape.raw(&t)),
                    Kind::Integer if small_integer(tape.raw(&t)).is_some() => b.append_value(tape.raw(&t)),
                    // Other values as the JSON text the general path writes for them.
                    _ => b.append_value(at.value(i).to_string()),
                }
                true
            }
            Builder::Struct(fields) => {
                if t.kind == Kind::Object {
                    return fields.append_object(at, i);
                }
                false
            }
            Builder::List(list) => {
                if t.kind == Kind::Array {
                    let mut item = i + 1;
                    let mut count = 0;
                    while item < t.next as usize {
                        list.element.append(at, Some(item))?;
                        item = at.token(item).next as usize;
                        count += 1;
                    }
                    list.offsets.push(list.offsets.last().expect("starts with 0") + count);
                    list.valid.append(true);
                    return Ok(());
                }
                false
            }
        };
        if !fits {
            at.rescue(self, i)?;
            self.append_null();
        }
        Ok(())
    }

    fn finish(self) -> Result<ArrayRef, ArrowError> {
        Ok(match self.builder {
            Builder::Boolean(mut b) => Arc::new(b.finish()),
            Builder::Long(mut b) => Arc::new(b.finish()),
            Builder::Double(mut b) => Arc::new(b.finish()),
            Builder::String(mut b) => Arc::new(b.finish()),
            Builder::Timestamp(mut b) => Arc::new(b.finish().with_timezone(UTC)),
            Builder::Struct(mut fields) => {
                let valid = NullBuffer::new(fields.valid.finish());
                let arrow_fields: Vec<Field> =
                    fields.nodes.iter().map(|n| Field::new(&n.name, n.ty.to_arrow(), true)).collect();
                let arrays = fields.nodes.into_iter().map(Node::finish).collect::<Result<Vec<_>, _>>()?;
                Arc::new(StructArray::try_new(arrow_fields.into(), arrays, Some(valid))?)
            }
            Builder::List(list) => {
                let ListColumn { element, offsets, mut valid } = *list;
                let field = Arc::new(Field::new("element", element.ty.to_arrow(), true));
                let values = element.finish()?;
                Arc::new(ListArray::try_new(
                    field,
                    OffsetBuffer::new(offsets.into()),
                    values,
                    Some(NullBuffer::new(valid.finish())),
                )?)
            }
        })
    }
}

#[cfg(test)]
mod tests;
