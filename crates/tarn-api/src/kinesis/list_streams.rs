use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use super::{Ctx, mode_doc};
use crate::error::ApiError;
use crate::protocol::input::{Input, NAME, Violations};
use crate::protocol::{Doc, Obj, doc::timestamp};

const MAX_PER_PAGE: usize = 100;

pub fn handle(ctx: &Ctx<'_>, doc: &Doc<'_>) -> Result<Doc<'static>, ApiError> {
    let input = Input::root(doc)?;
    let mut v = Violations::default();
    let limit = input.int(&mut v, "Limit", false, 1, 10_000)?;
    let start = input.string(&mut v, "ExclusiveStartStreamName", false, 1, 128, Some(NAME))?;
    let token = input.string(&mut v, "NextToken", false, 1, 1_048_576, None)?;
    v.finish()?;
    let after = match token {
        Some(t) => Some(
            URL_SAFE_NO_PAD
                .decode(t)
                .ok()
                .and_then(|b| String::from_utf8(b).ok())
                .ok_or_else(|| ApiError::invalid_argument(format!("Invalid NextToken {t}.")))?,
        ),
        None => start.map(str::to_owned),
    };
    let limit = (limit.unwrap_or(100) as usize).min(MAX_PER_PAGE);
    let streams: Vec<_> =
        ctx.streams.list().into_iter().filter(|s| after.as_deref().is_none_or(|a| s.meta.name.as_str() > a)).collect();
    let has_more = streams.len() > limit;
    let page = &streams[..streams.len().min(limit)];
    let names: Vec<Doc<'static>> = page.iter().map(|s| s.meta.name.clone().into()).collect();
    let summaries: Vec<Doc<'static>> = page
        .iter()
        .map(|s| {
            Obj::new()
                .put("StreamName", s.meta.name.clone())
                .put("StreamARN", s.arn.clone())
                .put("StreamStatus", s.status.as_str())
                .put("StreamModeDetails", mode_doc(s.meta.mode))
                .put("StreamCreationTimestamp", timestamp(s.meta.created_ms))
                .done()
        })
        .collect();
    let next = has_more.then(|| URL_SAFE_NO_PAD.encode(page.last().expect("non-empty page").meta.name.as_bytes()));
    Ok(Obj::new()
        .put("StreamNames", names)
        .put("HasMoreStreams", has_more)
        .opt("NextToken", next)
        .put("StreamSummaries", summaries)
        .done())
}
