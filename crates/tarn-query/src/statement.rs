//! What a SQL statement asks of the lake: a read (handed to DataFusion as it is), or one of the
//! statements that write tables: `CREATE TABLE … [WITH (…)] AS SELECT`, `CREATE TABLE (columns)`,
//! `INSERT INTO … SELECT|VALUES` and `DROP TABLE`. Table options are taken in the forms Athena
//! (`WITH (format = 'PARQUET', partitioned_by = ARRAY['vendor'], write_compression = 'ZSTD')`),
//! Spark and Hive (`PARTITIONED BY (vendor, day(at))`, `STORED AS PARQUET`,
//! `TBLPROPERTIES ('write.parquet.compression-codec' = 'zstd')`) write them. No I/O here.

use std::collections::BTreeMap;

use datafusion::sql::sqlparser::ast::{
    self, CreateTableOptions, Expr, ObjectName, ObjectType, Query, SqlOption, Statement as Sql, Value,
};
use datafusion::sql::sqlparser::dialect::GenericDialect;
use datafusion::sql::sqlparser::parser::Parser;
use tarn_lake::{COMPRESSION_PROPERTY, Compression, PartitionColumn};

use crate::engine::{ATHENA_CATALOG, CATALOG, QueryError};

/// A table a statement names: its namespace (`None`: the session's default) and name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Target {
    pub namespace: Option<String>,
    pub name: String,
}

impl Target {
    pub fn in_schema(&self, default: &str) -> (String, String) {
        (self.namespace.clone().unwrap_or_else(|| default.to_owned()), self.name.clone())
    }
}

/// How a new table is laid out.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct Layout {
    pub partitioning: Vec<PartitionColumn>,
    pub compression: Compression,
    /// Further Iceberg table properties (from `TBLPROPERTIES`).
    pub properties: BTreeMap<String, String>,
}

#[derive(Debug)]
pub(crate) enum Statement {
    /// Anything that only reads (SELECT, EXPLAIN, SHOW, DESCRIBE, …).
    Read,
    CreateTable {
        target: Target,
        if_not_exists: bool,
        layout: Layout,
        /// The rows: the `AS` query, or for a table declared by its columns, a query of no rows
        /// with those columns.
        query: Box<Query>,
    },
    Insert {
        target: Target,
        /// The named target columns (`INSERT INTO t (a, b) …`); empty: all, in order.
        columns: Vec<String>,
        query: Box<Query>,
    },
    DropTable {
        target: Target,
        if_exists: bool,
    },
}

/// Classifies `sql` (one statement).
pub(crate) fn classify(sql: &str) -> Result<Statement, QueryError> {
    let first = first_word(sql);
    if !matches!(first.as_str(), "create" | "insert" | "drop") {
        return Ok(Statement::Read);
    }
    let (sql, clauses) = if first == "create" { take_clauses(sql)? } else { (sql.to_owned(), Clauses::default()) };
    let mut statements = Parser::new(&GenericDialect {})
        .try_with_sql(&sql)
        .and_then(|mut p| p.parse_statements())
        .map_err(|e| QueryError::User(format!("SQL error: {e}")))?;
    if statements.len() != 1 {
        return Err(QueryError::User(format!("expected one statement, found {}", statements.len())));
    }
    match statements.remove(0) {
        Sql::CreateTable(create) => {
            if create.or_replace {
                return Err(QueryError::User(
                    "CREATE OR REPLACE TABLE is not supported: DROP TABLE, then CREATE TABLE".into(),
                ));
            }
            if create.external {
                return Err(QueryError::User(
                    "CREATE EXTERNAL TABLE is not supported: tables of files other tools wrote are registered \
                     by `tarn crawl`"
                        .into(),
                ));
            }
            if create.location.is_some() {
                return Err(location_error());
            }
            if let Some(format) = create.hive_formats.as_ref().and_then(|f| f.storage.as_ref()) {
                let text = format!("{format:?}").to_ascii_lowercase();
                if !text.contains("parquet") {
                    return Err(QueryError::User(format!("Tarn writes Parquet only, not {format:?}")));
                }
            }
            if create.hive_formats.as_ref().is_some_and(|f| f.location.is_some()) {
                return Err(location_error());
            }
            let mut layout = Layout::default();
            match &create.table_options {
                CreateTableOptions::None => {}
                CreateTableOptions::With(options) => athena_options(options, &mut layout)?,
                other => return Err(QueryError::User(format!("table options {other} are not supported"))),
            }
            if !clauses.partitioned_by.is_empty() {
                if !layout.partitioning.is_empty() {
                    return Err(QueryError::User("the partitioning is given twice".into()));
                }
                layout.partitioning = clauses.partitioned_by;
            }
            for (key, value) in clauses.properties {
                match key.as_str() {
                    COMPRESSION_PROPERTY | "parquet.compression" | "write_compression" => {
                        layout.compression = compression(&value)?
                    }
                    "table_type" if value.eq_ignore_ascii_case("iceberg") => {}
                    "format" => check_format(&value)?,
                    _ => {
                        layout.properties.insert(key, value);
                    }
                }
            }
            let target = target(&create.name)?;
            let query = match create.query {
                Some(q) if create.columns.is_empty() => q,
                Some(_) => {
                    return Err(QueryError::User(
                        "CREATE TABLE … AS SELECT takes its columns from the query; leave out the column list".into(),
                    ));
                }
                None if create.columns.is_empty() => {
                    return Err(QueryError::User("CREATE TABLE needs columns or AS SELECT".into()));
                }
                None => empty_query(&create.columns)?,
            };
            Ok(Statement::CreateTable { target, if_not_exists: create.if_not_exists, layout, query })
        }
        Sql::Insert(insert) => {
            if insert.overwrite {
                return Err(QueryError::User("INSERT OVERWRITE is not supported; INSERT INTO appends".into()));
            }
            let ast::TableObject::TableName(name) = &insert.table else {
                return Err(QueryError::User("INSERT INTO needs a table name".into()));
            };
            let Some(query) = insert.source else {
                return Err(QueryError::User("INSERT INTO needs SELECT or VALUES".into()));
            };
            if insert.partitioned.is_some() || insert.on.is_some() || insert.returning.is_some() {
                return Err(QueryError::User(
                    "INSERT INTO … PARTITION, ON CONFLICT and RETURNING are not supported".into(),
                ));
            }
            Ok(Statement::Insert {
                target: target(name)?,
                columns: insert.columns.iter().map(|c| c.value.clone()).collect(),
                query,
            })
        }
        Sql::Drop { object_type: ObjectType::Table, if_exists, names, .. } => {
            let [name] = names.as_slice() else {
                return Err(QueryError::User("DROP TABLE takes one table".into()));
            };
            Ok(Statement::DropTable { target: target(name)?, if_exists })
        }
        // Other CREATE/DROP forms (views, schemas, …) go to DataFusion, which refuses them.
        _ => Ok(Statement::Read),
    }
}

fn location_error() -> QueryError {
    QueryError::User(
        "Tarn places tables itself (under the layer's warehouse folder); leave out LOCATION / external_location".into(),
    )
}

fn first_word(sql: &str) -> String {
    let mut rest = sql.trim_start();
    loop {
        if let Some(r) = rest.strip_prefix("--") {
            rest = r.split_once('\n').map_or("", |(_, r)| r).trim_start();
        } else if let Some(r) = rest.strip_prefix("/*") {
            rest = r.split_once("*/").map_or("", |(_, r)| r).trim_start();
        } else {
            break;
        }
    }
    rest.split(|c: char| !c.is_ascii_alphabetic()).next().unwrap_or("").to_ascii_lowercase()
}

fn target(name: &ObjectName) -> Result<Target, QueryError> {
    let parts: Vec<String> = name
        .0
        .iter()
        .map(|p| match p.as_ident() {
            // Unquoted names are folded to lower case, as DataFusion does for the tables it reads.
            Some(i) if i.quote_style.is_none() => Ok(i.value.to_ascii_lowercase()),
            Some(i) => Ok(i.value.clone()),
            None => Err(QueryError::User(format!("{name} is not a table name"))),
        })
        .collect::<Result<_, _>>()?;
    match parts.as_slice() {
        [name] => Ok(Target { namespace: None, name: name.clone() }),
        [ns, name] => Ok(Target { namespace: Some(ns.clone()), name: name.clone() }),
        [catalog, ns, name] if catalog == CATALOG || catalog.eq_ignore_ascii_case(ATHENA_CATALOG) => {
            Ok(Target { namespace: Some(ns.clone()), name: name.clone() })
        }
        _ => Err(QueryError::User(format!(
            "{name} is not a table of the lake: name it table, layer.table or {CATALOG}.layer.table"
        ))),
    }
}

/// Athena's CTAS properties (an allow-list, as Athena has).
fn athena_options(options: &[SqlOption], layout: &mut Layout) -> Result<(), QueryError> {
    for option in options {
        let SqlOption::KeyValue { key, value } = option else {
            return Err(QueryError::User(format!("table option {option} is not a key = value pair")));
        };
        match key.value.to_ascii_lowercase().as_str() {
            "format" => check_format(&text(value)?)?,
            "write_compression" | "parquet_compression" => layout.compression = compression(&text(value)?)?,
            "partitioned_by" | "partitioning" => {
                let Expr::Array(array) = value else {
                    return Err(QueryError::User(format!("{key} takes ARRAY['column', …], not {value}")));
                };
                for element in &array.elem {
                    let term = text(element)?;
                    layout.partitioning.push(PartitionColumn::parse(&term).map_err(QueryError::User)?);
                }
            }
            "table_type" => {
                let kind = text(value)?;
                if !kind.eq_ignore_ascii_case("iceberg") && !kind.eq_ignore_ascii_case("hive") {
                    return Err(QueryError::User(format!("table_type {kind}: Tarn's tables are Iceberg tables")));
                }
            }
            "is_external" => {}
            "location" | "external_location" => return Err(location_error()),
            "bucketed_by" | "bucket_count" => {
                return Err(QueryError::User(
                    "bucketed_by is not supported: partition by buckets instead, partitioning = ARRAY['bucket(16, col)']"
                        .into(),
                ));
            }
            other => {
                return Err(QueryError::User(format!(
                    "unknown table property {other}: Tarn takes format, write_compression, partitioned_by \
                     (or partitioning), table_type and is_external"
                )));
            }
        }
    }
    Ok(())
}

fn text(value: &Expr) -> Result<String, QueryError> {
    match value {
        Expr::Value(v) => match &v.value {
            Value::SingleQuotedString(s) | Value::DoubleQuotedString(s) => Ok(s.clone()),
            Value::Boolean(b) => Ok(b.to_string()),
            Value::Number(n, _) => Ok(n.to_string()),
            _ => Err(QueryError::User(format!("expected a string, found {value}"))),
        },
        Expr::Identifier(i) => Ok(i.value.clone()),
        _ => Err(QueryError::User(format!("expected a string, found {value}"))),
    }
}

fn check_format(format: &str) -> Result<(), QueryError> {
    if format.eq_ignore_ascii_case("parquet") {
        Ok(())
    } else {
        Err(QueryError::User(format!("format {format}: Tarn writes Parquet only")))
    }
}

fn compression(name: &str) -> Result<Compression, QueryError> {
    Compression::from_name(&name.to_ascii_lowercase()).ok_or_else(|| {
        QueryError::User(format!("compression {name} is not one of SNAPPY, ZSTD, GZIP, NONE (or UNCOMPRESSED)"))
    })
}

/// A query of no rows with `columns`' names and types: `SELECT CAST(NULL AS t) AS c, … LIMIT 0`.
fn empty_query(columns: &[ast::ColumnDef]) -> Result<Box<Query>, QueryError> {
    let select: Vec<String> = columns.iter().map(|c| format!("CAST(NULL AS {}) AS {}", c.data_type, c.name)).collect();
    let sql = format!("SELECT {} LIMIT 0", select.join(", "));
    Parser::new(&GenericDialect {})
        .try_with_sql(&sql)
        .and_then(|mut p| p.parse_query())
        .map_err(|e| QueryError::User(format!("SQL error in the column list: {e}")))
}

/// The clauses of a CREATE TABLE that the SQL parser does not read in the forms users write
/// them, taken out of the text: `PARTITIONED BY (vendor, day(at))` (columns without types,
/// transforms) and `TBLPROPERTIES ('k' = 'v', …)` (quoted keys).
#[derive(Debug, Default)]
struct Clauses {
    partitioned_by: Vec<PartitionColumn>,
    properties: Vec<(String, String)>,
}

fn take_clauses(sql: &str) -> Result<(String, Clauses), QueryError> {
    let mut clauses = Clauses::default();
    let mut out = sql.to_owned();
    if let Some((range, inner)) = find_clause(&out, &["partitioned", "by"]) {
        for term in split_top_level(&inner) {
            // `vendor string` (Hive's typed form) names the column `vendor`.
            let term = term.trim();
            let column = if !term.contains('(') && term.split_whitespace().count() == 2 {
                term.split_whitespace().next().unwrap_or(term)
            } else {
                term
            };
            clauses.partitioned_by.push(PartitionColumn::parse(column).map_err(QueryError::User)?);
        }
        out.replace_range(range, " ");
    }
    if let Some((range, inner)) = find_clause(&out, &["tblproperties"]) {
        for pair in split_top_level(&inner) {
            let Some((key, value)) = pair.split_once('=') else {
                return Err(QueryError::User(format!("TBLPROPERTIES entry {pair} is not 'key' = 'value'")));
            };
            let strip = |s: &str| s.trim().trim_matches(|c| c == '\'' || c == '"').to_owned();
            clauses.properties.push((strip(key).to_ascii_lowercase(), strip(value)));
        }
        out.replace_range(range, " ");
    }
    Ok((out, clauses))
}

/// Where the keywords `words` followed by a parenthesised list appear outside quotes, comments
/// and parentheses, before the statement's `AS`/`SELECT`: the byte range of the whole clause and
/// the text between the parentheses.
fn find_clause(sql: &str, words: &[&str]) -> Option<(std::ops::Range<usize>, String)> {
    let tokens = scan(sql);
    for (i, t) in tokens.iter().enumerate() {
        if t.depth != 0 {
            continue;
        }
        if t.word == "select" {
            // The query has begun: the clause is not in the statement's head.
            return None;
        }
        let matched =
            words.iter().enumerate().all(|(k, w)| tokens.get(i + k).is_some_and(|t| t.word == *w && t.depth == 0));
        if !matched {
            continue;
        }
        let after = tokens[i + words.len() - 1].range.end;
        let rest = &sql[after..];
        let open = after + rest.find(|c: char| !c.is_whitespace())?;
        if !sql[open..].starts_with('(') {
            continue;
        }
        let close = matching_paren(sql, open)?;
        return Some((t.range.start..close + 1, sql[open + 1..close].to_owned()));
    }
    None
}

struct Word {
    word: String,
    depth: usize,
    range: std::ops::Range<usize>,
}

/// The bare words of `sql` (lower case) with their parenthesis depth, skipping quoted text and
/// comments.
fn scan(sql: &str) -> Vec<Word> {
    let bytes = sql.as_bytes();
    let mut words = Vec::new();
    let mut depth = 0usize;
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i];
        match c {
            b'\'' | b'"' | b'`' => {
                i += 1;
                while i < bytes.len() {
                    if bytes[i] == c {
                        if bytes.get(i + 1) == Some(&c) {
                            i += 2;
                            continue;
                        }
                        break;
                    }
                    i += 1;
                }
                i += 1;
            }
            b'-' if bytes.get(i + 1) == Some(&b'-') => {
                while i < bytes.len() && bytes[i] != b'\n' {
                    i += 1;
                }
            }
            b'/' if bytes.get(i + 1) == Some(&b'*') => {
                i += 2;
                while i + 1 < bytes.len() && !(bytes[i] == b'*' && bytes[i + 1] == b'/') {
                    i += 1;
                }
                i += 2;
            }
            b'(' => {
                depth += 1;
                i += 1;
            }
            b')' => {
                depth = depth.saturating_sub(1);
                i += 1;
            }
            c if c.is_ascii_alphabetic() || c == b'_' => {
                let start = i;
                while i < bytes.len() && (bytes[i].is_ascii_alphanumeric() || bytes[i] == b'_') {
                    i += 1;
                }
                words.push(Word { word: sql[start..i].to_ascii_lowercase(), depth, range: start..i });
            }
            _ => i += 1,
        }
    }
    words
}

fn matching_paren(sql: &str, open: usize) -> Option<usize> {
    let mut depth = 0usize;
    let mut quote: Option<u8> = None;
    for (i, &b) in sql.as_bytes().iter().enumerate().skip(open) {
        match (quote, b) {
            (Some(q), b) if b == q => quote = None,
            (Some(_), _) => {}
            (None, b'\'' | b'"' | b'`') => quote = Some(b),
            (None, b'(') => depth += 1,
            (None, b')') => {
                depth -= 1;
                if depth == 0 {
                    return Some(i);
                }
            }
            _ => {}
        }
    }
    None
}

/// `text` split at commas outside parentheses and quotes.
fn split_top_level(text: &str) -> Vec<String> {
    let mut parts = Vec::new();
    let mut depth = 0usize;
    let mut quote: Option<char> = None;
    let mut current = String::new();
    for c in text.chars() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), _) => {}
            (None, '\'' | '"' | '`') => quote = Some(c),
            (None, '(') => depth += 1,
            (None, ')') => depth = depth.saturating_sub(1),
            (None, ',') if depth == 0 => {
                parts.push(std::mem::take(&mut current));
                continue;
            }
            _ => {}
        }
        current.push(c);
    }
    if !current.trim().is_empty() {
        parts.push(current);
    }
    parts
}

#[cfg(test)]
mod tests {
    use tarn_lake::PartitionTransform;

    use super::*;

    fn create(sql: &str) -> (Target, Layout) {
        match classify(sql).unwrap() {
            Statement::CreateTable { target, layout, .. } => (target, layout),
            other => panic!("{sql}: {other:?}"),
        }
    }

    #[test]
    fn reads_athenas_ctas_properties() {
        let (target, layout) = create(
            "CREATE TABLE AwsDataCatalog.Curated.\"ByVendor\" WITH (format = 'PARQUET', \
             partitioned_by = ARRAY['vendor', 'day(at)'], write_compression = 'ZSTD', is_external = false) \
             AS SELECT * FROM raw.vehicles",
        );
        assert_eq!(target, Target { namespace: Some("curated".into()), name: "ByVendor".into() });
        assert_eq!(layout.compression, Compression::Zstd);
        let terms: Vec<_> = layout.partitioning.iter().map(|p| (p.column.as_str(), p.transform)).collect();
        assert_eq!(terms, [("vendor", PartitionTransform::Identity), ("at", PartitionTransform::Day)]);
    }

    #[test]
    fn reads_spark_and_hive_clauses_without_disturbing_the_query() {
        let (_, layout) = create(
            "-- nightly\nCREATE TABLE IF NOT EXISTS t PARTITIONED BY (vendor, bucket(16, id)) STORED AS PARQUET \
             TBLPROPERTIES ('write.parquet.compression-codec'='gzip', 'owner'='etl') \
             AS SELECT 'PARTITIONED BY (x)' AS s, (SELECT 1) AS one",
        );
        assert_eq!(layout.compression, Compression::Gzip);
        assert_eq!(layout.partitioning.len(), 2);
        assert_eq!(layout.partitioning[1].transform, PartitionTransform::Bucket(16));
        assert_eq!(layout.properties.get("owner").map(String::as_str), Some("etl"));
        let (_, typed) = create("CREATE TABLE t (id bigint, vendor string) PARTITIONED BY (vendor string)");
        assert_eq!(typed.partitioning[0].column, "vendor");
    }

    #[test]
    fn tells_writes_from_reads() {
        assert!(matches!(classify("SELECT 1").unwrap(), Statement::Read));
        assert!(matches!(classify("  /* x */ with a as (select 1) select * from a").unwrap(), Statement::Read));
        assert!(matches!(classify("CREATE VIEW v AS SELECT 1").unwrap(), Statement::Read));
        match classify("insert into raw.t (a, b) values (1, 2)").unwrap() {
            Statement::Insert { target, columns, .. } => {
                assert_eq!(target.namespace.as_deref(), Some("raw"));
                assert_eq!(columns, ["a", "b"]);
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(classify("DROP TABLE IF EXISTS x").unwrap(), Statement::DropTable { if_exists: true, .. }));
        for bad in [
            "CREATE OR REPLACE TABLE t AS SELECT 1",
            "CREATE TABLE t (a int) AS SELECT 1",
            "CREATE TABLE t LOCATION '/tmp/x' AS SELECT 1",
            "CREATE TABLE other.cat.t.x AS SELECT 1",
            "CREATE TABLE t PARTITIONED BY (sqrt(x)) AS SELECT 1 AS x",
        ] {
            assert!(matches!(classify(bad), Err(QueryError::User(_))), "{bad}");
        }
    }
}
