//! The Firehose API (`X-Amz-Target: Firehose_20150804.<Action>`), one file per action. A
//! delivery stream is a data segment: DirectPut ones get their own Kinesis stream of the same
//! name (readable with the Kinesis API too), KinesisStreamAsSource ones read an existing stream.
//! The destination's bucket names the table's layer unless the format conversion's
//! SchemaConfiguration names the database (layer) and table.

use tarn_segments::{SegmentDef, SegmentError, Segments};
use tarn_streams::Streams;

use crate::error::ApiError;
use crate::metrics::Metrics;
use crate::protocol::input::{Input, Pattern, Violations};
use crate::protocol::{Doc, Obj};

mod create_delivery_stream;
mod delete_delivery_stream;
mod describe_delivery_stream;
mod destination;
mod list_delivery_streams;
mod list_tags_for_delivery_stream;
mod put_record;
mod put_record_batch;
mod tag_delivery_stream;
mod untag_delivery_stream;
mod update_destination;

pub const TARGET_PREFIX: &str = "Firehose_20150804";

/// What an action needs from the server.
pub struct Ctx<'a> {
    pub streams: &'a Streams,
    pub segments: &'a Segments,
    pub metrics: &'a Metrics,
}

type Handler = fn(&Ctx<'_>, &Doc<'_>) -> Result<Doc<'static>, ApiError>;

const ACTIONS: &[(&str, Handler)] = &[
    ("CreateDeliveryStream", create_delivery_stream::handle),
    ("DeleteDeliveryStream", delete_delivery_stream::handle),
    ("DescribeDeliveryStream", describe_delivery_stream::handle),
    ("ListDeliveryStreams", list_delivery_streams::handle),
    ("ListTagsForDeliveryStream", list_tags_for_delivery_stream::handle),
    ("PutRecord", put_record::handle),
    ("PutRecordBatch", put_record_batch::handle),
    ("TagDeliveryStream", tag_delivery_stream::handle),
    ("UntagDeliveryStream", untag_delivery_stream::handle),
    ("UpdateDestination", update_destination::handle),
];

pub fn is_operation(op: &str) -> bool {
    ACTIONS.iter().any(|(name, _)| *name == op)
}

pub fn dispatch(ctx: &Ctx<'_>, op: &str, doc: &Doc<'_>) -> Result<Doc<'static>, ApiError> {
    crate::actions::find(ACTIONS, TARGET_PREFIX, op)?(ctx, doc)
}

/// `[a-zA-Z0-9_.-]+`, 1 to 64: delivery stream names.
pub(crate) const DELIVERY_STREAM_NAME: Pattern = crate::protocol::input::NAME;

/// The `DeliveryStreamName` member every action takes.
pub(crate) fn read_name<'d>(input: &Input<'d, '_>, v: &mut Violations) -> Result<Option<&'d str>, ApiError> {
    input.string(v, "DeliveryStreamName", true, 1, 64, Some(DELIVERY_STREAM_NAME))
}

impl Ctx<'_> {
    fn account(&self) -> &str {
        &self.streams.config().account_id
    }

    pub(crate) fn arn(&self, name: &str) -> String {
        format!("arn:aws:firehose:{}:{}:deliverystream/{name}", self.streams.config().region, self.account())
    }

    pub(crate) fn not_found(&self, name: &str) -> ApiError {
        ApiError::new(
            "ResourceNotFoundException",
            400,
            format!("Firehose {name} under account {} not found.", self.account()),
        )
    }

    /// The segment behind a delivery stream, or AWS's not-found error.
    pub(crate) fn segment(&self, name: &str) -> Result<SegmentDef, ApiError> {
        self.segments.get(name).ok_or_else(|| self.not_found(name))
    }

    pub(crate) fn segment_error(&self, e: SegmentError) -> ApiError {
        match e {
            SegmentError::NotFound(name) => self.not_found(&name),
            SegmentError::Exists(name) => ApiError::new(
                "ResourceInUseException",
                400,
                format!("Firehose {name} under account {} already exists.", self.account()),
            ),
            SegmentError::Declared(name) => ApiError::new(
                "ResourceInUseException",
                400,
                format!("Firehose {name} is declared in the server's configuration file; change it there."),
            ),
            SegmentError::Invalid(m) => ApiError::invalid_argument(m),
            SegmentError::Io(m) => ApiError::internal(m),
        }
    }
}

/// Tags as Firehose lists them: `[{Key, Value}]`.
pub(crate) fn tag_list(tags: &std::collections::BTreeMap<String, String>) -> Vec<Doc<'static>> {
    tags.iter().map(|(k, v)| Obj::new().put("Key", k.clone()).put("Value", v.clone()).done()).collect()
}

/// Reads a `Tags` list member (`[{Key, Value}]`), 1 to 50 when present.
pub(crate) fn read_tags(input: &Input<'_, '_>, v: &mut Violations) -> Result<Vec<(String, String)>, ApiError> {
    let Some(list) = input.list_of_structures("Tags")? else { return Ok(Vec::new()) };
    if list.is_empty() || list.len() > 50 {
        let rule = if list.is_empty() {
            "Member must have length greater than or equal to 1"
        } else {
            "Member must have length less than or equal to 50"
        };
        v.add(Some("[...]".into()), &input.path("Tags"), rule);
    }
    let mut tags = Vec::new();
    for t in &list {
        let key = t.string(v, "Key", true, 1, 128, None)?;
        let value = t.string(v, "Value", false, 0, 256, None)?;
        if let Some(k) = key {
            if k.starts_with("aws:") {
                v.add(Some(format!("'{k}'")), &t.path("Key"), "Member must not start with aws:");
            }
            tags.push((k.to_owned(), value.unwrap_or("").to_owned()));
        }
    }
    Ok(tags)
}
