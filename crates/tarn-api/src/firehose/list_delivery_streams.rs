use super::{Ctx, DELIVERY_STREAM_NAME};
use crate::error::ApiError;
use crate::protocol::input::{Input, Violations};
use crate::protocol::{Doc, Obj};

const TYPES: &[&str] = &["DirectPut", "KinesisStreamAsSource", "MSKAsSource", "DatabaseAsSource"];

pub fn handle(ctx: &Ctx<'_>, doc: &Doc<'_>) -> Result<Doc<'static>, ApiError> {
    let input = Input::root(doc)?;
    let mut v = Violations::default();
    let limit = input.int(&mut v, "Limit", false, 1, 10_000)?.unwrap_or(10) as usize;
    let kind = input.enumeration(&mut v, "DeliveryStreamType", false, TYPES)?;
    let after = input.string(&mut v, "ExclusiveStartDeliveryStreamName", false, 1, 64, Some(DELIVERY_STREAM_NAME))?;
    v.finish()?;
    let names: Vec<String> = ctx
        .segments
        .list()
        .into_iter()
        .filter(|d| kind.is_none_or(|k| d.source.as_str() == k))
        .map(|d| d.name)
        .filter(|n| after.is_none_or(|a| n.as_str() > a))
        .collect();
    let more = names.len() > limit;
    let page: Vec<Doc<'static>> = names.into_iter().take(limit).map(Doc::from).collect();
    Ok(Obj::new().put("DeliveryStreamNames", page).put("HasMoreDeliveryStreams", more).done())
}
