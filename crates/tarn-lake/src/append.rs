//! Writing batches as Parquet data files and committing them, with the checkpoint, in one snapshot.

use std::collections::BTreeMap;
use std::sync::Arc;

use arrow_array::cast::AsArray;
use arrow_array::{Array, ArrayRef, ListArray, RecordBatch, StructArray, new_null_array};
use arrow_schema::{ArrowError, DataType};
use iceberg::arrow::schema_to_arrow_schema;
use iceberg::spec::DataFileFormat;
use iceberg::table::Table;
use iceberg::transaction::{ApplyTransactionAction, Transaction};
use iceberg::writer::base_writer::data_file_writer::DataFileWriterBuilder;
use iceberg::writer::file_writer::ParquetWriterBuilder;
use iceberg::writer::file_writer::location_generator::{DefaultFileNameGenerator, DefaultLocationGenerator};
use iceberg::writer::file_writer::rolling_writer::RollingFileWriterBuilder;
use iceberg::writer::{IcebergWriter, IcebergWriterBuilder};
use parquet::basic::{GzipLevel, ZstdLevel};
use parquet::file::properties::WriterProperties;

use crate::catalog::Lake;
use crate::checkpoint::CHECKPOINT_PROPERTY;
use crate::{Error, Result};

/// Parquet compression codec of data files.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Compression {
    #[default]
    Snappy,
    Zstd,
    Gzip,
    None,
}

impl Compression {
    fn parquet(self) -> parquet::basic::Compression {
        match self {
            Compression::Snappy => parquet::basic::Compression::SNAPPY,
            Compression::Zstd => parquet::basic::Compression::ZSTD(ZstdLevel::default()),
            Compression::Gzip => parquet::basic::Compression::GZIP(GzipLevel::default()),
            Compression::None => parquet::basic::Compression::UNCOMPRESSED,
        }
    }
}

/// Rebuilds `array` with the target type's fields (the table's, which carry Iceberg field ids),
/// filling struct fields the array lacks with nulls.
fn retype(array: &ArrayRef, target: &DataType) -> Result<ArrayRef, ArrowError> {
    Ok(match target {
        DataType::Struct(fields) => {
            let s = array.as_struct();
            let children = fields
                .iter()
                .map(|f| match s.column_by_name(f.name()) {
                    Some(child) => retype(child, f.data_type()),
                    None => Ok(new_null_array(f.data_type(), s.len())),
                })
                .collect::<Result<Vec<_>, _>>()?;
            Arc::new(StructArray::try_new(fields.clone(), children, s.nulls().cloned())?)
        }
        DataType::List(field) => {
            let l = array.as_list::<i32>();
            let values = retype(l.values(), field.data_type())?;
            Arc::new(ListArray::try_new(field.clone(), l.offsets().clone(), values, l.nulls().cloned())?)
        }
        _ if array.data_type() == target => array.clone(),
        other => {
            return Err(ArrowError::SchemaError(format!(
                "a {} column cannot be written as the table's {other}",
                array.data_type()
            )));
        }
    })
}

/// `batch` in the table's Arrow schema: columns matched by name, missing ones null.
fn conform(batch: &RecordBatch, table: &Table) -> Result<RecordBatch> {
    let target = Arc::new(schema_to_arrow_schema(table.metadata().current_schema())?);
    let columns = target
        .fields()
        .iter()
        .map(|f| match batch.column_by_name(f.name()) {
            Some(c) => retype(c, f.data_type()),
            None => Ok(new_null_array(f.data_type(), batch.num_rows())),
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(RecordBatch::try_new(target, columns)?)
}

impl Lake {
    /// Writes `batches` to new Parquet files and commits them in one snapshot whose summary
    /// holds `checkpoint`. Returns the table as committed.
    pub async fn append(
        &self,
        table: &Table,
        batches: &[RecordBatch],
        checkpoint: &BTreeMap<String, String>,
        compression: Compression,
        file_prefix: &str,
    ) -> Result<Table> {
        let schema = table.metadata().current_schema().clone();
        let props = WriterProperties::builder().set_compression(compression.parquet()).build();
        let rolling = RollingFileWriterBuilder::new_with_default_file_size(
            ParquetWriterBuilder::new(props, schema),
            table.file_io().clone(),
            DefaultLocationGenerator::new(table.metadata())?,
            DefaultFileNameGenerator::new(file_prefix.to_owned(), None, DataFileFormat::Parquet),
        );
        let mut writer = DataFileWriterBuilder::new(rolling).build(None).await?;
        for batch in batches {
            writer.write(conform(batch, table)?).await?;
        }
        let files = writer.close().await?;
        let checkpoint = serde_json::to_string(checkpoint).map_err(|e| Error::Other(e.to_string()))?;
        let summary = [(CHECKPOINT_PROPERTY.to_string(), checkpoint)].into_iter().collect();
        let tx = Transaction::new(table);
        let tx = tx.fast_append().add_data_files(files).set_snapshot_properties(summary).apply(tx)?;
        Ok(tx.commit(&self.catalog).await?)
    }
}
