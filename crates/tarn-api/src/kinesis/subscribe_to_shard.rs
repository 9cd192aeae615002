//! SubscribeToShard: enhanced fan-out over an event stream.
//!
//! The response is `200` with `application/vnd.amazon.eventstream`: an `initial-response`
//! event, then `SubscribeToShardEvent`s as records arrive (and at least once a second while
//! idle, so the ContinuationSequenceNumber keeps advancing), until the subscription's lifetime
//! (5 minutes) runs out or the end of a closed shard is reached (its last event names the child
//! shards). Failures after the start are `exception` messages. One subscription per consumer and
//! shard: a second one within 5 seconds is refused with ResourceInUseException; a later one
//! takes over and the old one ends with that exception.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use tarn_streams::StartingPosition;
use tarn_streams::token::IteratorPosition;
use tokio::sync::{mpsc, watch};

use super::{Ctx, child_shard_doc, records_doc};
use crate::error::ApiError;
use crate::protocol::input::{CONSUMER_ARN, Input, NAME, SEQUENCE, Violations};
use crate::protocol::{Codec, Doc, Obj, event_stream};
use crate::server::AppState;

/// A subscription younger than this cannot be taken over.
const TAKEOVER_AFTER: Duration = Duration::from_secs(5);
/// An idle subscription still sends an event this often.
const IDLE_EVENT_EVERY: Duration = Duration::from_secs(1);
/// How often an idle subscription looks for new records.
const POLL_EVERY: Duration = Duration::from_millis(20);
/// Most data one event carries.
const MAX_EVENT_BYTES: usize = 2 * 1024 * 1024;

const TYPES: &[&str] = &["AT_SEQUENCE_NUMBER", "AFTER_SEQUENCE_NUMBER", "TRIM_HORIZON", "LATEST", "AT_TIMESTAMP"];

/// Live subscriptions, by consumer ARN and shard.
#[derive(Default)]
pub struct Subscriptions {
    active: Mutex<HashMap<(String, u32), Active>>,
    next_id: std::sync::atomic::AtomicU64,
}

struct Active {
    id: u64,
    started: Instant,
    /// Set to true to make the subscription end with ResourceInUseException.
    taken_over: watch::Sender<bool>,
}

/// A validated request, ready to stream.
pub struct Subscription {
    key: (String, u32),
    id: u64,
    position: IteratorPosition,
    taken_over: watch::Receiver<bool>,
}

/// Validates the request and registers the subscription (blocking: it reads stream metadata).
pub fn start(ctx: &Ctx<'_>, subs: &Subscriptions, doc: &Doc<'_>) -> Result<Subscription, ApiError> {
    let input = Input::root(doc)?;
    let mut v = Violations::default();
    let consumer_arn = input.string(&mut v, "ConsumerARN", true, 1, 2048, Some(CONSUMER_ARN))?;
    let shard = input.string(&mut v, "ShardId", true, 1, 128, Some(NAME))?;
    let (kind, seq, ts) = match input.structure("StartingPosition")? {
        Some(p) => (
            p.enumeration(&mut v, "Type", true, TYPES)?,
            p.string(&mut v, "SequenceNumber", false, 0, 129, Some(SEQUENCE))?,
            p.timestamp("Timestamp")?,
        ),
        None => {
            v.add(None, "startingPosition", "Member must not be null");
            (None, None, None)
        }
    };
    v.finish()?;
    let consumer = ctx.streams.describe_consumer(None, None, consumer_arn)?;
    let stream = ctx.streams.resolve_name(None, Some(&consumer.stream_arn))?;
    let missing = |what: &str| {
        ApiError::invalid_argument(format!("StartingPosition of type {} requires {what}.", kind.unwrap_or("")))
    };
    let start = match kind.expect("required") {
        "TRIM_HORIZON" => StartingPosition::TrimHorizon,
        "LATEST" => StartingPosition::Latest,
        "AT_SEQUENCE_NUMBER" => {
            StartingPosition::AtSequenceNumber(seq.ok_or_else(|| missing("a SequenceNumber"))?.to_owned())
        }
        "AFTER_SEQUENCE_NUMBER" => {
            StartingPosition::AfterSequenceNumber(seq.ok_or_else(|| missing("a SequenceNumber"))?.to_owned())
        }
        _ => StartingPosition::AtTimestamp(ts.ok_or_else(|| missing("a Timestamp"))?),
    };
    let position = ctx.streams.start_position(&stream, shard.expect("required"), start)?;
    let key = (consumer.arn.clone(), position.shard_index);
    let mut active = subs.active.lock().expect("subscriptions lock");
    if let Some(existing) = active.get(&key) {
        if existing.started.elapsed() < TAKEOVER_AFTER {
            return Err(ApiError::new(
                "ResourceInUseException",
                400,
                format!(
                    "Another active subscription exists for consumer {} on shard {}; a new one may take over 5 seconds \
                     after it started.",
                    consumer.arn,
                    tarn_streams::model::shard_id(position.shard_index)
                ),
            ));
        }
        let _ = existing.taken_over.send(true);
    }
    let id = subs.next_id.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let (taken_over, rx) = watch::channel(false);
    active.insert(key.clone(), Active { id, started: Instant::now(), taken_over });
    Ok(Subscription { key, id, position, taken_over: rx })
}

fn event(codec: Codec, event_type: &str, body: &Doc<'_>) -> Bytes {
    let content_type = match codec {
        Codec::Json => "application/x-amz-json-1.1",
        Codec::Cbor => "application/x-amz-cbor-1.1",
    };
    let mut out = Vec::new();
    let headers = [(":message-type", "event"), (":event-type", event_type), (":content-type", content_type)];
    event_stream::encode(&headers, &codec.encode(body), &mut out);
    Bytes::from(out)
}

fn exception(codec: Codec, e: &ApiError) -> Bytes {
    let mut out = Vec::new();
    let headers =
        [(":message-type", "exception"), (":exception-type", e.code), (":content-type", codec.content_type())];
    let body = Obj::new().put("message", e.message.clone()).done();
    event_stream::encode(&headers, &codec.encode(&body), &mut out);
    Bytes::from(out)
}

/// Runs a subscription, sending encoded messages into `tx` until it ends.
pub async fn run(state: Arc<AppState>, sub: Subscription, codec: Codec, lifetime: Duration, tx: mpsc::Sender<Bytes>) {
    let Subscription { key, id, mut position, mut taken_over } = sub;
    let deadline = Instant::now() + lifetime;
    let mut last_event: Option<Instant> = None;
    let send = |bytes: Bytes| {
        let tx = tx.clone();
        async move { tx.send(bytes).await.is_ok() }
    };
    if send(event(codec, "initial-response", &Obj::new().done())).await {
        loop {
            if *taken_over.borrow() {
                let e =
                    ApiError::new("ResourceInUseException", 400, "This subscription was taken over by a newer one.");
                send(exception(codec, &e)).await;
                break;
            }
            if Instant::now() >= deadline {
                break;
            }
            let streams = state.streams.clone();
            let at = position.clone();
            let page = tokio::task::spawn_blocking(move || streams.read_from(&at, 10_000, MAX_EVENT_BYTES)).await;
            let mut page = match page {
                Ok(Ok(page)) => page,
                Ok(Err(e)) => {
                    send(exception(codec, &ApiError::from(e))).await;
                    break;
                }
                Err(e) => {
                    send(exception(codec, &ApiError::internal(format!("subscription task failed: {e}")))).await;
                    break;
                }
            };
            let at_end = page.next_iterator.is_none();
            let idle_due = last_event.is_none_or(|t| t.elapsed() >= IDLE_EVENT_EVERY);
            if !page.records.is_empty() || idle_due || at_end {
                let records = records_doc(&mut page, &state.metrics);
                let children: Vec<Doc<'static>> = page.child_shards.iter().map(child_shard_doc).collect();
                let body = Obj::new()
                    .put("Records", records)
                    .put("ContinuationSequenceNumber", page.continuation().to_string())
                    .put("MillisBehindLatest", page.millis_behind_latest)
                    .opt("ChildShards", at_end.then_some(children))
                    .done();
                if !send(event(codec, "SubscribeToShardEvent", &body)).await {
                    break; // the client went away
                }
                last_event = Some(Instant::now());
            }
            if at_end {
                break;
            }
            position.offset = page.next_offset;
            if page.records.is_empty() {
                tokio::select! {
                    _ = tokio::time::sleep(POLL_EVERY) => {}
                    _ = taken_over.changed() => {}
                }
            }
        }
    }
    let mut active = state.subscriptions.active.lock().expect("subscriptions lock");
    if active.get(&key).is_some_and(|a| a.id == id) {
        active.remove(&key);
    }
}
