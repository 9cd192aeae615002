use tarn_streams::model::StreamMode;

use super::Ctx;
use crate::error::ApiError;
use crate::protocol::input::Input;
use crate::protocol::{Doc, Obj};

/// On-demand streams allowed per account.
const ON_DEMAND_STREAM_LIMIT: usize = 50;

pub fn handle(ctx: &Ctx<'_>, doc: &Doc<'_>) -> Result<Doc<'static>, ApiError> {
    Input::root(doc)?;
    let streams = ctx.streams.list();
    let open: usize = streams.iter().map(|s| s.meta.open_shards().count()).sum();
    let on_demand = streams.iter().filter(|s| s.meta.mode == StreamMode::OnDemand).count();
    Ok(Obj::new()
        .put("ShardLimit", ctx.streams.config().shard_limit)
        .put("OpenShardCount", open)
        .put("OnDemandStreamCount", on_demand)
        .put("OnDemandStreamCountLimit", ON_DEMAND_STREAM_LIMIT)
        .done())
}
