use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use super::Ctx;
use crate::error::ApiError;
use crate::protocol::input::{Input, STREAM_ARN, Violations};
use crate::protocol::{Doc, Obj, doc::timestamp};

const MAX_PER_PAGE: usize = 100;

pub fn handle(ctx: &Ctx<'_>, doc: &Doc<'_>) -> Result<Doc<'static>, ApiError> {
    let input = Input::root(doc)?;
    let mut v = Violations::default();
    let arn = input.string(&mut v, "StreamARN", true, 1, 2048, Some(STREAM_ARN))?;
    let max = input.int(&mut v, "MaxResults", false, 1, 10_000)?;
    let token = input.string(&mut v, "NextToken", false, 1, 1_048_576, None)?;
    input.timestamp("StreamCreationTimestamp")?;
    v.finish()?;
    let stream = ctx.streams.resolve_name(None, arn)?;
    let after = token
        .map(|t| {
            URL_SAFE_NO_PAD
                .decode(t)
                .ok()
                .and_then(|b| String::from_utf8(b).ok())
                .ok_or_else(|| ApiError::invalid_argument(format!("Invalid NextToken {t}.")))
        })
        .transpose()?;
    let limit = (max.unwrap_or(100) as usize).min(MAX_PER_PAGE);
    let mut consumers = ctx.streams.list_consumers(&stream)?;
    consumers.sort_by(|a, b| a.name.cmp(&b.name));
    consumers.retain(|c| after.as_deref().is_none_or(|a| c.name.as_str() > a));
    let has_more = consumers.len() > limit;
    consumers.truncate(limit);
    let next = has_more.then(|| URL_SAFE_NO_PAD.encode(consumers.last().expect("non-empty").name.as_bytes()));
    let docs: Vec<Doc<'static>> = consumers
        .into_iter()
        .map(|c| {
            Obj::new()
                .put("ConsumerName", c.name)
                .put("ConsumerARN", c.arn)
                .put("ConsumerStatus", "ACTIVE")
                .put("ConsumerCreationTimestamp", timestamp(c.created_ms))
                .done()
        })
        .collect();
    Ok(Obj::new().put("Consumers", docs).opt("NextToken", next).done())
}
