use tarn_streams::ShardFilter;
use tarn_streams::model::parse_shard_id;

use super::{Ctx, StreamRef, shard_doc};
use crate::error::ApiError;
use crate::protocol::input::{Input, NAME, Violations};
use crate::protocol::{Doc, Obj};

const MAX_PER_PAGE: usize = 1000;

const FILTER_TYPES: &[&str] =
    &["AFTER_SHARD_ID", "AT_TRIM_HORIZON", "FROM_TRIM_HORIZON", "AT_LATEST", "AT_TIMESTAMP", "FROM_TIMESTAMP"];

pub fn handle(ctx: &Ctx<'_>, doc: &Doc<'_>) -> Result<Doc<'static>, ApiError> {
    let input = Input::root(doc)?;
    let mut v = Violations::default();
    let stream = StreamRef::read(&input, &mut v)?;
    let token = input.string(&mut v, "NextToken", false, 1, 1_048_576, None)?;
    let start = input.string(&mut v, "ExclusiveStartShardId", false, 1, 128, Some(NAME))?;
    let max = input.int(&mut v, "MaxResults", false, 1, 10_000)?;
    let created = input.timestamp("StreamCreationTimestamp")?;
    let filter = match input.structure("ShardFilter")? {
        Some(f) => {
            let kind = f.enumeration(&mut v, "Type", true, FILTER_TYPES)?;
            let shard = f.string(&mut v, "ShardId", false, 1, 128, Some(NAME))?;
            let ts = f.timestamp("Timestamp")?;
            Some((kind, shard, ts))
        }
        None => None,
    };
    v.finish()?;
    let limit = (max.unwrap_or(MAX_PER_PAGE as i64) as usize).min(MAX_PER_PAGE);

    let (name, filter, after) = match token {
        Some(token) => {
            if stream.given() || start.is_some() || created.is_some() {
                return Err(ApiError::invalid_argument("NextToken and StreamName cannot be provided together."));
            }
            let (name, last, filter) = ctx.streams.open_list_shards_token(token)?;
            (name, filter, Some(tarn_streams::model::shard_id(last)))
        }
        None => {
            if !stream.given() {
                return Err(ApiError::invalid_argument("Either NextToken or StreamName should be provided."));
            }
            let filter = match filter {
                None => ShardFilter::FromTrimHorizon,
                Some((kind, shard, ts)) => match kind.expect("required") {
                    "AFTER_SHARD_ID" => ShardFilter::AfterShardId(shard.and_then(parse_shard_id).ok_or_else(|| {
                        ApiError::invalid_argument("ShardId must be provided for the AFTER_SHARD_ID ShardFilter type.")
                    })?),
                    "AT_TRIM_HORIZON" => ShardFilter::AtTrimHorizon,
                    "FROM_TRIM_HORIZON" => ShardFilter::FromTrimHorizon,
                    "AT_LATEST" => ShardFilter::AtLatest,
                    timed => {
                        let ts = ts.ok_or_else(|| {
                            ApiError::invalid_argument(format!(
                                "Timestamp must be provided for the {timed} ShardFilter type."
                            ))
                        })?;
                        if timed == "AT_TIMESTAMP" {
                            ShardFilter::AtTimestamp(ts)
                        } else {
                            ShardFilter::FromTimestamp(ts)
                        }
                    }
                },
            };
            (stream.resolve(ctx)?, filter, start.map(str::to_owned))
        }
    };
    let snapshot = ctx.streams.snapshot(&name)?;
    let shards = ctx.streams.list_shards(&name, &filter, after.as_deref())?;
    let has_more = shards.len() > limit;
    let page = &shards[..shards.len().min(limit)];
    let next = has_more.then(|| ctx.streams.list_shards_token(&name, page.last().expect("non-empty").index, &filter));
    let docs: Vec<Doc<'static>> = page.iter().map(|s| shard_doc(&snapshot.meta, s)).collect();
    Ok(Obj::new().put("Shards", docs).opt("NextToken", next).done())
}
