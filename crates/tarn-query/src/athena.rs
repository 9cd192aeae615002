//! An answer as Athena's `GetQueryResults` shows it: every value as text, columns typed with
//! Athena's (Trino's) type names. Timestamps read `2024-05-01 10:00:00.000`, arrays `[1, 2]`,
//! rows `{a=1, b=x}`, maps `{k=v}`, varbinary as spaced hex; a null value has no text. Pure
//! conversion, no I/O.

use datafusion::arrow::array::{Array, ArrayRef, AsArray};
use datafusion::arrow::datatypes::{DataType, TimeUnit};
use datafusion::arrow::error::ArrowError;
use datafusion::arrow::util::display::{ArrayFormatter, FormatOptions};

use crate::Answer;

/// A result column as Athena describes it (`ColumnInfo`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TextColumn {
    pub name: String,
    /// `varchar`, `bigint`, `timestamp`, `row(a integer, b varchar)`…
    pub type_name: String,
    pub precision: i32,
    pub scale: i32,
}

/// Every row of an answer as text.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TextResults {
    pub columns: Vec<TextColumn>,
    pub rows: Vec<Vec<Option<String>>>,
}

pub fn text_results(answer: &Answer) -> Result<TextResults, ArrowError> {
    let columns = answer
        .schema
        .fields()
        .iter()
        .map(|f| {
            let (precision, scale) = precision_and_scale(f.data_type());
            TextColumn { name: f.name().clone(), type_name: athena_type(f.data_type()), precision, scale }
        })
        .collect();
    let mut rows = Vec::with_capacity(answer.stats.rows as usize);
    for batch in &answer.batches {
        let texts: Vec<Vec<Option<String>>> = batch.columns().iter().map(column_text).collect::<Result<_, _>>()?;
        for i in 0..batch.num_rows() {
            rows.push(texts.iter().map(|column| column[i].clone()).collect());
        }
    }
    Ok(TextResults { columns, rows })
}

/// Athena's name for an Arrow type.
pub fn athena_type(data_type: &DataType) -> String {
    match data_type {
        DataType::Boolean => "boolean".into(),
        DataType::Int8 | DataType::UInt8 => "tinyint".into(),
        DataType::Int16 | DataType::UInt16 => "smallint".into(),
        DataType::Int32 | DataType::UInt32 => "integer".into(),
        DataType::Int64 | DataType::UInt64 => "bigint".into(),
        DataType::Float16 | DataType::Float32 => "float".into(),
        DataType::Float64 => "double".into(),
        DataType::Decimal32(p, s) | DataType::Decimal64(p, s) => format!("decimal({p},{s})"),
        DataType::Decimal128(p, s) | DataType::Decimal256(p, s) => format!("decimal({p},{s})"),
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => "varchar".into(),
        DataType::Binary | DataType::LargeBinary | DataType::BinaryView | DataType::FixedSizeBinary(_) => {
            "varbinary".into()
        }
        DataType::Date32 | DataType::Date64 => "date".into(),
        DataType::Time32(_) | DataType::Time64(_) => "time".into(),
        DataType::Timestamp(_, None) => "timestamp".into(),
        DataType::Timestamp(_, Some(_)) => "timestamp with time zone".into(),
        DataType::Interval(_) | DataType::Duration(_) => "interval day to second".into(),
        DataType::List(f) | DataType::LargeList(f) | DataType::ListView(f) | DataType::FixedSizeList(f, _) => {
            format!("array({})", athena_type(f.data_type()))
        }
        DataType::Struct(fields) => {
            let members: Vec<String> =
                fields.iter().map(|f| format!("{} {}", f.name(), athena_type(f.data_type()))).collect();
            format!("row({})", members.join(", "))
        }
        DataType::Map(entries, _) => match entries.data_type() {
            DataType::Struct(kv) if kv.len() == 2 => {
                format!("map({}, {})", athena_type(kv[0].data_type()), athena_type(kv[1].data_type()))
            }
            _ => "map".into(),
        },
        DataType::Dictionary(_, value) => athena_type(value),
        DataType::Null => "unknown".into(),
        other => other.to_string().to_ascii_lowercase(),
    }
}

/// `ColumnInfo.Precision` and `Scale`, as Athena reports them.
fn precision_and_scale(data_type: &DataType) -> (i32, i32) {
    match data_type {
        DataType::Int8 | DataType::UInt8 => (3, 0),
        DataType::Int16 | DataType::UInt16 => (5, 0),
        DataType::Int32 | DataType::UInt32 => (10, 0),
        DataType::Int64 | DataType::UInt64 => (19, 0),
        DataType::Float16 | DataType::Float32 => (17, 0),
        DataType::Float64 => (17, 0),
        DataType::Decimal32(p, s) | DataType::Decimal64(p, s) => (*p as i32, *s as i32),
        DataType::Decimal128(p, s) | DataType::Decimal256(p, s) => (*p as i32, *s as i32),
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => (2_147_483_647, 0),
        DataType::Timestamp(unit, _) => (fraction_digits(unit) as i32, 0),
        _ => (0, 0),
    }
}

fn fraction_digits(unit: &TimeUnit) -> usize {
    match unit {
        TimeUnit::Second => 0,
        TimeUnit::Millisecond => 3,
        TimeUnit::Microsecond => 6,
        TimeUnit::Nanosecond => 9,
    }
}

/// One column's values as text: `None` for a null at the top level.
fn column_text(array: &ArrayRef) -> Result<Vec<Option<String>>, ArrowError> {
    let nested = nested_text(array)?;
    Ok(nested.into_iter().enumerate().map(|(i, text)| array.is_valid(i).then_some(text)).collect())
}

/// Every value of `array` as text, nulls as `null` (how they read inside arrays and rows).
fn nested_text(array: &ArrayRef) -> Result<Vec<String>, ArrowError> {
    match array.data_type() {
        DataType::Struct(fields) => {
            let s = array.as_struct();
            let children: Vec<Vec<String>> = s.columns().iter().map(nested_text).collect::<Result<_, _>>()?;
            Ok((0..s.len())
                .map(|i| {
                    if s.is_null(i) {
                        return "null".to_owned();
                    }
                    let members: Vec<String> =
                        fields.iter().zip(&children).map(|(f, c)| format!("{}={}", f.name(), c[i])).collect();
                    format!("{{{}}}", members.join(", "))
                })
                .collect())
        }
        DataType::List(_) => {
            let list = array.as_list::<i32>();
            let values = nested_text(list.values())?;
            Ok(joined(list.len(), |i| list.is_null(i), |i| list.value_offsets()[i] as usize, &values, "[", "]"))
        }
        DataType::LargeList(_) => {
            let list = array.as_list::<i64>();
            let values = nested_text(list.values())?;
            Ok(joined(list.len(), |i| list.is_null(i), |i| list.value_offsets()[i] as usize, &values, "[", "]"))
        }
        DataType::Map(..) => {
            let map = array.as_map();
            let keys = nested_text(map.keys())?;
            let values = nested_text(map.values())?;
            let pairs: Vec<String> = keys.iter().zip(&values).map(|(k, v)| format!("{k}={v}")).collect();
            Ok(joined(map.len(), |i| map.is_null(i), |i| map.value_offsets()[i] as usize, &pairs, "{", "}"))
        }
        DataType::Binary | DataType::LargeBinary | DataType::BinaryView | DataType::FixedSizeBinary(_) => {
            let hex = ArrayFormatter::try_new(array.as_ref(), &FormatOptions::default().with_null("null"))?;
            // Arrow prints bytes as one hex string; Athena spaces them.
            Ok((0..array.len())
                .map(|i| {
                    let packed = hex.value(i).to_string();
                    if array.is_null(i) {
                        return packed;
                    }
                    let pairs: Vec<&str> = (0..packed.len() / 2).map(|k| &packed[2 * k..2 * k + 2]).collect();
                    pairs.join(" ")
                })
                .collect())
        }
        data_type => {
            let timestamp = match data_type {
                DataType::Timestamp(unit, None) => Some(timestamp_format(unit, false)),
                DataType::Timestamp(unit, Some(_)) => Some(timestamp_format(unit, true)),
                _ => None,
            };
            let options = FormatOptions::default()
                .with_null("null")
                .with_timestamp_format(timestamp.as_deref())
                .with_timestamp_tz_format(timestamp.as_deref());
            let formatter = ArrayFormatter::try_new(array.as_ref(), &options)?;
            Ok((0..array.len()).map(|i| formatter.value(i).to_string()).collect())
        }
    }
}

fn timestamp_format(unit: &TimeUnit, zoned: bool) -> String {
    let fraction = match fraction_digits(unit) {
        0 => "",
        3 => "%.3f",
        6 => "%.6f",
        _ => "%.9f",
    };
    let zone = if zoned { " %Z" } else { "" };
    format!("%Y-%m-%d %H:%M:%S{fraction}{zone}")
}

/// Lists and maps: each row's slice of `items` between its offsets, joined.
fn joined(
    len: usize,
    is_null: impl Fn(usize) -> bool,
    offset: impl Fn(usize) -> usize,
    items: &[String],
    open: &str,
    close: &str,
) -> Vec<String> {
    (0..len)
        .map(|i| {
            if is_null(i) {
                "null".to_owned()
            } else {
                format!("{open}{}{close}", items[offset(i)..offset(i + 1)].join(", "))
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use datafusion::prelude::SessionContext;

    use super::*;
    use crate::Stats;

    async fn answer(sql: &str) -> Answer {
        let frame = SessionContext::new().sql(sql).await.unwrap();
        let schema = std::sync::Arc::new(frame.schema().as_arrow().clone());
        let batches = frame.collect().await.unwrap();
        Answer { schema, batches, stats: Stats::default() }
    }

    #[tokio::test]
    async fn values_read_as_athena_prints_them() {
        let sql = "SELECT named_struct('a', 1, 'b', 'x') AS r, make_array(1, NULL) AS l, CAST(NULL AS VARCHAR) AS n, \
                   X'0102ff' AS bin, arrow_cast(TIMESTAMP '2026-01-02 03:04:05.678', 'Timestamp(Millisecond, None)') AS ts, \
                   map(['k'], [2.5]) AS m, CAST(1.25 AS DECIMAL(10, 2)) AS d, true AS b";
        let text = text_results(&answer(sql).await).unwrap();
        let cells: Vec<Option<&str>> = text.rows[0].iter().map(|c| c.as_deref()).collect();
        assert_eq!(
            cells,
            [
                Some("{a=1, b=x}"),
                Some("[1, null]"),
                None,
                Some("01 02 ff"),
                Some("2026-01-02 03:04:05.678"),
                Some("{k=2.5}"),
                Some("1.25"),
                Some("true")
            ]
        );
        let types: Vec<&str> = text.columns.iter().map(|c| c.type_name.as_str()).collect();
        assert_eq!(
            types,
            [
                "row(a bigint, b varchar)",
                "array(bigint)",
                "varchar",
                "varbinary",
                "timestamp",
                "map(varchar, double)",
                "decimal(10,2)",
                "boolean"
            ]
        );
        assert_eq!((text.columns[4].precision, text.columns[6].precision, text.columns[6].scale), (3, 10, 2));
    }

    #[tokio::test]
    async fn every_row_of_every_batch_is_kept_in_order() {
        let text = text_results(&answer("SELECT * FROM (VALUES (1), (2), (3)) AS t(x) ORDER BY x DESC").await).unwrap();
        assert_eq!(text.rows, [[Some("3".to_owned())], [Some("2".to_owned())], [Some("1".to_owned())]]);
    }
}
