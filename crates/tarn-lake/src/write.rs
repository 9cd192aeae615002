//! Tables that SQL creates and fills (`CREATE TABLE … AS SELECT`, `INSERT INTO … SELECT`): a new
//! table from an Arrow schema, with an Iceberg partition spec (identity, time and bucket
//! transforms) and a Parquet codec kept as the table's `write.parquet.compression-codec`; batches
//! split by partition into Parquet files under `data/<partition path>/`; one fast-append commit.

use std::collections::HashSet;
use std::sync::Arc;

use arrow_array::RecordBatch;
use arrow_schema::{DataType, Field, Fields, Schema as ArrowSchema, TimeUnit};
use iceberg::arrow::arrow_schema_to_schema_auto_assign_ids;
use iceberg::spec::{DataFile, DataFileFormat, Struct, Transform, UnboundPartitionSpec};
use iceberg::table::Table;
use iceberg::transaction::{ApplyTransactionAction, Transaction};
use iceberg::writer::base_writer::data_file_writer::{DataFileWriter, DataFileWriterBuilder};
use iceberg::writer::file_writer::ParquetWriterBuilder;
use iceberg::writer::file_writer::location_generator::{DefaultFileNameGenerator, DefaultLocationGenerator};
use iceberg::writer::file_writer::rolling_writer::RollingFileWriterBuilder;
use iceberg::writer::partitioning::PartitioningWriter;
use iceberg::writer::partitioning::fanout_writer::FanoutWriter;
use iceberg::writer::{IcebergWriter, IcebergWriterBuilder};
use iceberg::{Catalog, ErrorKind, NamespaceIdent, TableCreation, TableIdent};

use crate::append::{Compression, conform};
use crate::catalog::Lake;
use crate::partition_split::PartitionSplitter;
use crate::{Error, Result};

/// The Iceberg table property naming the Parquet codec of a table's data files.
pub const COMPRESSION_PROPERTY: &str = "write.parquet.compression-codec";

/// How a partition field derives from its source column (Iceberg's transforms).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PartitionTransform {
    Identity,
    Year,
    Month,
    Day,
    Hour,
    Bucket(u32),
    Truncate(u32),
}

/// One field of a table's partitioning: `vendor`, `day(at)`, `bucket(16, id)`, `truncate(id, 4)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionColumn {
    pub column: String,
    pub transform: PartitionTransform,
}

impl PartitionColumn {
    /// Parses one partitioning term as Athena, Spark and Trino write them. The width of `bucket`
    /// and `truncate` may come first or last (`truncate(4, id)` = `truncate(id, 4)`).
    pub fn parse(text: &str) -> Result<PartitionColumn, String> {
        let text = text.trim();
        let bad = || {
            format!(
                "partitioning term '{text}' is not a column or one of year(col), month(col), day(col), \
                 hour(col), bucket(n, col), truncate(col, width)"
            )
        };
        let Some((function, rest)) = text.split_once('(') else {
            let column = unquote(text);
            if column.is_empty() || column.contains(|c: char| c.is_whitespace() || c == ',') {
                return Err(bad());
            }
            return Ok(PartitionColumn { column, transform: PartitionTransform::Identity });
        };
        let args = rest.strip_suffix(')').ok_or_else(bad)?;
        let args: Vec<&str> = args.split(',').map(str::trim).collect();
        let width_and_column = || -> Result<(u32, String), String> {
            match args.as_slice() {
                [a, b] => match (a.parse::<u32>(), b.parse::<u32>()) {
                    (Ok(n), Err(_)) => Ok((n, unquote(b))),
                    (Err(_), Ok(n)) => Ok((n, unquote(a))),
                    _ => Err(bad()),
                },
                _ => Err(bad()),
            }
        };
        let one_column = || -> Result<String, String> {
            match args.as_slice() {
                [c] if !c.is_empty() => Ok(unquote(c)),
                _ => Err(bad()),
            }
        };
        let (column, transform) = match function.trim().to_ascii_lowercase().as_str() {
            "year" | "years" => (one_column()?, PartitionTransform::Year),
            "month" | "months" => (one_column()?, PartitionTransform::Month),
            "day" | "days" => (one_column()?, PartitionTransform::Day),
            "hour" | "hours" => (one_column()?, PartitionTransform::Hour),
            "bucket" => {
                let (n, c) = width_and_column()?;
                (c, PartitionTransform::Bucket(n))
            }
            "truncate" => {
                let (n, c) = width_and_column()?;
                (c, PartitionTransform::Truncate(n))
            }
            _ => return Err(bad()),
        };
        if matches!(transform, PartitionTransform::Bucket(0) | PartitionTransform::Truncate(0)) {
            return Err(format!("partitioning term '{text}': the width must be at least 1"));
        }
        Ok(PartitionColumn { column, transform })
    }

    fn iceberg(&self) -> (Transform, String) {
        let c = &self.column;
        match self.transform {
            PartitionTransform::Identity => (Transform::Identity, c.clone()),
            PartitionTransform::Year => (Transform::Year, format!("{c}_year")),
            PartitionTransform::Month => (Transform::Month, format!("{c}_month")),
            PartitionTransform::Day => (Transform::Day, format!("{c}_day")),
            PartitionTransform::Hour => (Transform::Hour, format!("{c}_hour")),
            PartitionTransform::Bucket(n) => (Transform::Bucket(n), format!("{c}_bucket")),
            PartitionTransform::Truncate(n) => (Transform::Truncate(n), format!("{c}_trunc")),
        }
    }
}

fn unquote(text: &str) -> String {
    let t = text.trim();
    for q in ['"', '`', '\''] {
        if let Some(inner) = t.strip_prefix(q).and_then(|r| r.strip_suffix(q)) {
            return inner.to_owned();
        }
    }
    t.to_ascii_lowercase()
}

/// A table to create from a query's result schema.
#[derive(Debug, Clone)]
pub struct NewTable<'a> {
    pub namespace: &'a str,
    pub name: &'a str,
    pub schema: &'a ArrowSchema,
    pub partitioning: &'a [PartitionColumn],
    pub compression: Compression,
    /// Further Iceberg table properties.
    pub properties: &'a [(String, String)],
}

/// The type a column of `data_type` is stored as: what Iceberg has (microsecond timestamps in
/// UTC, 32-bit dates, no unsigned 64-bit), every field nullable.
pub fn lake_type(data_type: &DataType) -> Result<DataType, String> {
    Ok(match data_type {
        DataType::Null => DataType::Utf8,
        DataType::UInt64 => DataType::Int64,
        DataType::Float16 => DataType::Float32,
        DataType::Utf8View | DataType::LargeUtf8 => DataType::Utf8,
        DataType::BinaryView | DataType::LargeBinary => DataType::Binary,
        DataType::Date64 => DataType::Date32,
        DataType::Time32(_) | DataType::Time64(_) => DataType::Time64(TimeUnit::Microsecond),
        DataType::Timestamp(_, None) => DataType::Timestamp(TimeUnit::Microsecond, None),
        DataType::Timestamp(_, Some(_)) => DataType::Timestamp(TimeUnit::Microsecond, Some("+00:00".into())),
        DataType::Dictionary(_, value) => lake_type(value)?,
        DataType::Struct(fields) => DataType::Struct(lake_fields(fields)?),
        DataType::List(item)
        | DataType::LargeList(item)
        | DataType::ListView(item)
        | DataType::FixedSizeList(item, _) => {
            DataType::List(Arc::new(Field::new("element", lake_type(item.data_type())?, true)))
        }
        DataType::Map(entries, sorted) => {
            let DataType::Struct(kv) = entries.data_type() else { return Err("a map without key and value".into()) };
            let key = Field::new("key", lake_type(kv[0].data_type())?, false);
            let value = Field::new("value", lake_type(kv[1].data_type())?, true);
            DataType::Map(Arc::new(Field::new("key_value", DataType::Struct(vec![key, value].into()), false)), *sorted)
        }
        DataType::Decimal32(p, s) | DataType::Decimal64(p, s) => DataType::Decimal128(*p, *s),
        DataType::Decimal256(p, _) if *p > 38 => {
            return Err(format!("{data_type} has more than Iceberg's 38 digits of precision"));
        }
        DataType::Decimal256(p, s) => DataType::Decimal128(*p, *s),
        DataType::Interval(_) | DataType::Duration(_) => {
            return Err(format!("{data_type} cannot be stored in a table (Iceberg has no interval type)"));
        }
        other => other.clone(),
    })
}

fn lake_fields(fields: &Fields) -> Result<Fields, String> {
    fields.iter().map(|f| Ok(Field::new(f.name(), lake_type(f.data_type())?, true))).collect()
}

/// `schema` as a table stores it (see [`lake_type`]).
pub fn lake_schema(schema: &ArrowSchema) -> Result<ArrowSchema, String> {
    Ok(ArrowSchema::new(lake_fields(schema.fields())?))
}

impl Lake {
    /// Creates `new.namespace.new.name` (and its namespace) with the schema, partition spec and
    /// codec asked for. A table of that name already there is an error naming it.
    pub async fn create_table_from(&self, new: &NewTable<'_>) -> Result<Table> {
        let ns = NamespaceIdent::new(new.namespace.to_owned());
        let ident = TableIdent::new(ns.clone(), new.name.to_owned());
        let schema = lake_schema(new.schema).map_err(Error::Other)?;
        let schema = arrow_schema_to_schema_auto_assign_ids(&schema)?;
        let mut spec = UnboundPartitionSpec::builder();
        for p in new.partitioning {
            let field = schema.field_by_name(&p.column).ok_or_else(|| {
                Error::Other(format!("cannot partition {ident} by {}: the result has no such column", p.column))
            })?;
            let (transform, name) = p.iceberg();
            transform.result_type(&field.field_type).map_err(|_| {
                Error::Other(format!(
                    "cannot partition {ident} by {:?} of column {} ({})",
                    p.transform, p.column, field.field_type
                ))
            })?;
            spec = spec.add_partition_field(field.id, name, transform)?;
        }
        if !self.catalog.namespace_exists(&ns).await? {
            self.catalog.create_namespace(&ns, Default::default()).await?;
        }
        if self.catalog.table_exists(&ident).await? {
            return Err(Error::Exists(ident.to_string()));
        }
        let creation = TableCreation::builder()
            .name(new.name.to_owned())
            .schema(schema)
            .partition_spec(spec.build())
            .properties(
                new.properties
                    .iter()
                    .cloned()
                    .chain([(COMPRESSION_PROPERTY.to_string(), new.compression.iceberg_name().to_string())]),
            )
            .build();
        match self.catalog.create_table(&ns, creation).await {
            Err(e) if e.kind() == ErrorKind::TableAlreadyExists => Err(Error::Exists(ident.to_string())),
            other => Ok(other?),
        }
    }

    /// Removes `namespace.name` from the catalog and deletes its files. `false` if there was no
    /// such table.
    pub async fn drop_table(&self, namespace: &str, name: &str) -> Result<bool> {
        let ident = TableIdent::new(NamespaceIdent::new(namespace.to_owned()), name.to_owned());
        if self.existing(namespace, name).await?.is_none() {
            return Ok(false);
        }
        self.catalog.purge_table(&ident).await?;
        Ok(true)
    }

    /// Commits `files` (written by a [`TableWriter`] on `table`) as one appended snapshot. Commits
    /// that came first (delivery's, another statement's) are fine: the append is retried on the
    /// table as it is then. If it cannot be committed, the files are removed.
    pub async fn commit_written(&self, table: &Table, files: Vec<DataFile>) -> Result<Table> {
        const ATTEMPTS: usize = 8;
        let ident = table.identifier().clone();
        let mut last = None;
        for attempt in 0..ATTEMPTS {
            let current = self.catalog.load_table(&ident).await?;
            let tx = Transaction::new(&current);
            let tx = tx.fast_append().add_data_files(files.clone()).apply(tx)?;
            match tx.commit(&self.catalog).await {
                Ok(t) => return Ok(t),
                Err(e) if e.kind() == ErrorKind::CatalogCommitConflicts || e.retryable() => {
                    last = Some(e);
                    tokio::time::sleep(std::time::Duration::from_millis(20 << attempt.min(5))).await;
                }
                Err(e) => {
                    last = Some(e);
                    break;
                }
            }
        }
        for f in &files {
            let _ = table.file_io().delete(f.file_path()).await;
        }
        Err(match last {
            Some(e) => Error::Conflict(format!("{ident}: the written files could not be committed: {e}")),
            None => Error::Conflict(format!("{ident}: the written files could not be committed")),
        })
    }
}

/// The codec a table's data files are written with (its `write.parquet.compression-codec`;
/// Snappy when unset).
pub fn table_compression(table: &Table) -> Compression {
    table
        .metadata()
        .properties()
        .get(COMPRESSION_PROPERTY)
        .and_then(|c| Compression::from_name(&c.to_ascii_lowercase()))
        .unwrap_or_default()
}

type FileWriter = DataFileWriter<ParquetWriterBuilder, DefaultLocationGenerator, DefaultFileNameGenerator>;
type FileWriterBuilder =
    DataFileWriterBuilder<ParquetWriterBuilder, DefaultLocationGenerator, DefaultFileNameGenerator>;

enum Sink {
    Unpartitioned(Box<FileWriter>),
    Partitioned(Box<PartitionedSink>),
}

struct PartitionedSink {
    splitter: PartitionSplitter,
    writer: FanoutWriter<FileWriterBuilder>,
}

/// Writes batches into Parquet data files of one table (not yet committed), a file set per
/// partition, at most `max_partitions` partitions per statement.
pub struct TableWriter {
    table: Table,
    sink: Sink,
    partitions: HashSet<Struct>,
    max_partitions: usize,
    rows: u64,
}

impl TableWriter {
    pub async fn new(table: &Table, file_prefix: &str, max_partitions: usize) -> Result<TableWriter> {
        let metadata = table.metadata();
        let schema = metadata.current_schema().clone();
        let props = crate::append::writer_properties(table_compression(table));
        let rolling = RollingFileWriterBuilder::new_with_default_file_size(
            ParquetWriterBuilder::new(props, schema.clone()),
            table.file_io().clone(),
            DefaultLocationGenerator::new(metadata)?,
            DefaultFileNameGenerator::new(file_prefix.to_owned(), None, DataFileFormat::Parquet),
        );
        let builder = DataFileWriterBuilder::new(rolling);
        let spec = metadata.default_partition_spec().clone();
        let sink = if spec.is_unpartitioned() {
            Sink::Unpartitioned(Box::new(builder.build(None).await?))
        } else {
            let splitter = PartitionSplitter::new(schema, spec)?;
            Sink::Partitioned(Box::new(PartitionedSink { splitter, writer: FanoutWriter::new(builder) }))
        };
        Ok(TableWriter { table: table.clone(), sink, partitions: HashSet::new(), max_partitions, rows: 0 })
    }

    /// Writes `batch`, whose columns are matched to the table's by name (missing ones null) and
    /// cast to the table's types.
    pub async fn write(&mut self, batch: &RecordBatch) -> Result<()> {
        if batch.num_rows() == 0 {
            return Ok(());
        }
        let batch = conform(batch, &self.table)?;
        self.rows += batch.num_rows() as u64;
        match &mut self.sink {
            Sink::Unpartitioned(writer) => writer.write(batch).await?,
            Sink::Partitioned(sink) => {
                let PartitionedSink { splitter, writer } = sink.as_mut();
                for (key, part) in splitter.split(&batch)? {
                    if self.partitions.insert(key.data().clone()) && self.partitions.len() > self.max_partitions {
                        return Err(Error::Other(format!(
                            "the statement writes more than {} partitions of {} (query.max_write_partitions)",
                            self.max_partitions,
                            self.table.identifier()
                        )));
                    }
                    writer.write(key, part).await?;
                }
            }
        }
        Ok(())
    }

    /// Rows written so far.
    pub fn rows(&self) -> u64 {
        self.rows
    }

    /// Closes every file; returns them for [`Lake::commit_written`].
    pub async fn finish(self) -> Result<Vec<DataFile>> {
        Ok(match self.sink {
            Sink::Unpartitioned(mut writer) => writer.close().await?,
            Sink::Partitioned(sink) => sink.writer.close().await?,
        })
    }

    /// Removes files written so far (a statement that failed half-way); best effort.
    pub async fn abandon(self) {
        let table = self.table.clone();
        if let Ok(files) = self.finish().await {
            for f in files {
                let _ = table.file_io().delete(f.file_path()).await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_partitioning_terms_as_athena_spark_and_trino_write_them() {
        let p = |t: &str| PartitionColumn::parse(t).unwrap();
        assert_eq!(p("vendor"), PartitionColumn { column: "vendor".into(), transform: PartitionTransform::Identity });
        assert_eq!(p(" Vendor "), PartitionColumn { column: "vendor".into(), transform: PartitionTransform::Identity });
        assert_eq!(p("\"Mixed\"").column, "Mixed");
        assert_eq!(p("day(at)"), PartitionColumn { column: "at".into(), transform: PartitionTransform::Day });
        assert_eq!(p("HOURS(at)").transform, PartitionTransform::Hour);
        assert_eq!(
            p("bucket(16, id)"),
            PartitionColumn { column: "id".into(), transform: PartitionTransform::Bucket(16) }
        );
        assert_eq!(p("bucket(id, 16)").transform, PartitionTransform::Bucket(16));
        assert_eq!(p("truncate(id, 4)").transform, PartitionTransform::Truncate(4));
        for bad in ["", "a b", "day()", "bucket(id)", "bucket(0, id)", "sqrt(x)", "day(a, b)", "day(a"] {
            assert!(PartitionColumn::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn stores_types_iceberg_has() {
        let ns = DataType::Timestamp(TimeUnit::Nanosecond, Some("UTC".into()));
        assert_eq!(lake_type(&ns).unwrap(), DataType::Timestamp(TimeUnit::Microsecond, Some("+00:00".into())));
        assert_eq!(lake_type(&DataType::Utf8View).unwrap(), DataType::Utf8);
        assert_eq!(lake_type(&DataType::UInt64).unwrap(), DataType::Int64);
        assert!(lake_type(&DataType::Duration(TimeUnit::Second)).is_err());
    }
}
