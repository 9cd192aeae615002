use tarn_streams::hash_key::parse_hash_key;

use super::{Ctx, StreamRef};
use crate::error::ApiError;
use crate::protocol::Doc;
use crate::protocol::input::{HASH_KEY, Input, NAME, Violations};

pub fn handle(ctx: &Ctx<'_>, doc: &Doc<'_>) -> Result<Doc<'static>, ApiError> {
    let input = Input::root(doc)?;
    let mut v = Violations::default();
    let stream = StreamRef::read(&input, &mut v)?;
    let shard = input.string(&mut v, "ShardToSplit", true, 1, 128, Some(NAME))?;
    let key = input.string(&mut v, "NewStartingHashKey", true, 0, 39, Some(HASH_KEY))?;
    v.finish()?;
    let key = key.expect("required");
    let hash = parse_hash_key(key).ok_or_else(|| {
        ApiError::invalid_argument(format!(
            "NewStartingHashKey {key} used in SplitShard() is not in the range of hash keys [0, 2^128-1]."
        ))
    })?;
    ctx.streams.split_shard(&stream.resolve(ctx)?, shard.expect("required"), hash)?;
    Ok(crate::server::empty())
}
