use super::{Ctx, StreamRef, encryption, enhanced_monitoring, mode_doc};
use crate::error::ApiError;
use crate::protocol::input::{Input, Violations};
use crate::protocol::{Doc, Obj, doc::timestamp};

pub fn handle(ctx: &Ctx<'_>, doc: &Doc<'_>) -> Result<Doc<'static>, ApiError> {
    let input = Input::root(doc)?;
    let mut v = Violations::default();
    let stream = StreamRef::read(&input, &mut v)?;
    v.finish()?;
    let snap = ctx.streams.snapshot(&stream.resolve(ctx)?)?;
    let meta = &snap.meta;
    let summary = Obj::new()
        .put("StreamName", meta.name.clone())
        .put("StreamARN", snap.arn.clone())
        .put("StreamStatus", snap.status.as_str())
        .put("StreamModeDetails", mode_doc(meta.mode))
        .put("RetentionPeriodHours", meta.retention_hours)
        .put("StreamCreationTimestamp", timestamp(meta.created_ms))
        .put("EnhancedMonitoring", enhanced_monitoring())
        .put("EncryptionType", encryption(meta))
        .opt("KeyId", meta.encryption_key.clone())
        .put("OpenShardCount", meta.open_shards().count())
        .put("ConsumerCount", meta.consumers.len())
        .put("MaxRecordSizeInKiB", meta.max_record_size_kib);
    Ok(Obj::new().put("StreamDescriptionSummary", summary).done())
}
