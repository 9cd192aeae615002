// Drives Tarn with @aws-sdk/client-kinesis over HTTP/2, its default transport: produce, read
// back, and SubscribeToShard. Usage: node kinesis_h2.mjs <endpoint> <access key> <secret>.
// Prints one JSON line with what it saw; exits non-zero on any failure.
import {
  KinesisClient,
  CreateStreamCommand,
  PutRecordsCommand,
  ListShardsCommand,
  GetShardIteratorCommand,
  GetRecordsCommand,
  DescribeStreamSummaryCommand,
  RegisterStreamConsumerCommand,
  SubscribeToShardCommand,
} from "@aws-sdk/client-kinesis";

const [endpoint, accessKeyId, secretAccessKey] = process.argv.slice(2);
const client = new KinesisClient({
  endpoint,
  region: "us-east-1",
  credentials: { accessKeyId, secretAccessKey },
  maxAttempts: 1,
});

const stream = `node-${Date.now()}`;
const enc = new TextEncoder();
const dec = new TextDecoder();
await client.send(new CreateStreamCommand({ StreamName: stream, ShardCount: 1 }));
const put = await client.send(
  new PutRecordsCommand({
    StreamName: stream,
    Records: Array.from({ length: 10 }, (_, i) => ({ Data: enc.encode(`r${i}`), PartitionKey: `k${i}` })),
  }),
);
const shards = (await client.send(new ListShardsCommand({ StreamName: stream }))).Shards;
const { ShardIterator } = await client.send(
  new GetShardIteratorCommand({ StreamName: stream, ShardId: shards[0].ShardId, ShardIteratorType: "TRIM_HORIZON" }),
);
const page = await client.send(new GetRecordsCommand({ ShardIterator }));
const read = page.Records.map((r) => dec.decode(r.Data));

const arn = (await client.send(new DescribeStreamSummaryCommand({ StreamName: stream }))).StreamDescriptionSummary
  .StreamARN;
const consumer = (await client.send(new RegisterStreamConsumerCommand({ StreamARN: arn, ConsumerName: "js" })))
  .Consumer.ConsumerARN;
const sub = await client.send(
  new SubscribeToShardCommand({
    ConsumerARN: consumer,
    ShardId: shards[0].ShardId,
    StartingPosition: { Type: "TRIM_HORIZON" },
  }),
);
const subscribed = [];
for await (const event of sub.EventStream) {
  if (event.SubscribeToShardEvent) {
    subscribed.push(...event.SubscribeToShardEvent.Records.map((r) => dec.decode(r.Data)));
    if (subscribed.length >= 10) break;
  }
}
console.log(JSON.stringify({ failed: put.FailedRecordCount, read, subscribed }));
client.destroy();
process.exit(0);
