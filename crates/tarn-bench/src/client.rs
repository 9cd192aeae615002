//! A minimal SigV4-signing Kinesis client over hyper, so the load tool measures Tarn and not an SDK.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{Context, bail};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use tarn_api::protocol::{Obj, cbor};
use tarn_api::sigv4;

pub struct Signer {
    host: String,
    access_key: String,
    secret: String,
    http: Client<HttpConnector, Full<Bytes>>,
}

impl Signer {
    pub fn new(host: &str, (access_key, secret): (&str, &str)) -> Signer {
        let http = Client::builder(TokioExecutor::new()).pool_max_idle_per_host(256).build_http();
        Signer { host: host.to_owned(), access_key: access_key.to_owned(), secret: secret.to_owned(), http }
    }

    /// `GET path` (unsigned: `/metrics`), the body as text.
    pub async fn get(&self, path: &str) -> anyhow::Result<String> {
        let request = hyper::Request::get(format!("http://{}{path}", self.host)).body(Full::new(Bytes::new()))?;
        let response = self.http.request(request).await.context("request failed")?;
        Ok(String::from_utf8_lossy(&response.into_body().collect().await?.to_bytes()).into_owned())
    }

    /// Sends one signed Kinesis call in JSON and returns the response body; non-200 answers are errors.
    pub async fn call(&self, op: &str, body: impl Into<Bytes>) -> anyhow::Result<Bytes> {
        self.call_as(Wire::Json, op, body.into()).await
    }

    /// Sends one signed Kinesis call with the body in `wire`'s format.
    pub async fn call_as(&self, wire: Wire, op: &str, body: Bytes) -> anyhow::Result<Bytes> {
        let payload_hash = sigv4::hex_sha256(&body);
        self.send(wire, op, body, &payload_hash).await
    }

    /// Sends one signed JSON call whose body was hashed once beforehand.
    pub async fn call_hashed(&self, op: &str, body: &HashedBody) -> anyhow::Result<Bytes> {
        self.send(Wire::Json, op, body.body.clone(), &body.sha256).await
    }

    async fn send(&self, wire: Wire, op: &str, body: Bytes, payload_hash: &str) -> anyhow::Result<Bytes> {
        let content_type = wire.content_type();
        let now = SystemTime::now().duration_since(UNIX_EPOCH)?.as_millis() as i64;
        let amz_date = sigv4::format_amz_date(now);
        let date = &amz_date[..8];
        let target = format!("Kinesis_20131202.{op}");
        let signed = "content-type;host;x-amz-date;x-amz-target";
        let canonical = format!(
            "POST\n/\n\ncontent-type:{content_type}\nhost:{}\nx-amz-date:{amz_date}\nx-amz-target:{target}\n\n{signed}\n{payload_hash}",
            self.host
        );
        let scope = format!("{date}/us-east-1/kinesis/aws4_request");
        let key = sigv4::signing_key(&self.secret, date, "us-east-1", "kinesis");
        let signature = sigv4::sign(&key, &sigv4::string_to_sign(&amz_date, &scope, &canonical));
        let request = hyper::Request::post(format!("http://{}/", self.host))
            .header("content-type", content_type)
            .header("host", &self.host)
            .header("x-amz-date", &amz_date)
            .header("x-amz-target", &target)
            .header(
                "authorization",
                format!(
                    "AWS4-HMAC-SHA256 Credential={}/{scope}, SignedHeaders={signed}, Signature={signature}",
                    self.access_key
                ),
            )
            .body(Full::new(body))?;
        let response = self.http.request(request).await.context("request failed")?;
        let status = response.status();
        let bytes = response.into_body().collect().await?.to_bytes();
        if !status.is_success() {
            bail!("{op} answered {status}: {}", String::from_utf8_lossy(&bytes));
        }
        Ok(bytes)
    }
}

/// A request body and its hex SHA-256 (the signature's payload hash), computed once: a load
/// generator that sends the same body again and again then spends its CPU on sending, not on
/// hashing what it hashed before.
#[derive(Clone)]
pub struct HashedBody {
    pub body: Bytes,
    pub sha256: Arc<str>,
}

impl HashedBody {
    pub fn new(body: Bytes) -> HashedBody {
        let sha256 = sigv4::hex_sha256(&body).into();
        HashedBody { body, sha256 }
    }
}

/// A PutRecords body of `n` records of `size` random bytes with varied partition keys.
pub fn put_records_body(stream: &str, connection: usize, n: usize, size: usize) -> Bytes {
    let mut out = format!(r#"{{"StreamName":"{stream}","Records":["#);
    for i in 0..n {
        let data: Vec<u8> = (0..size).map(|_| rand::random::<u8>()).collect();
        if i > 0 {
            out.push(',');
        }
        out.push_str(&format!(r#"{{"Data":"{}","PartitionKey":"c{connection}-k{i}"}}"#, STANDARD.encode(&data)));
    }
    out.push_str("]}");
    Bytes::from(out)
}

/// The two body formats of the Kinesis API: JSON (boto3, the CLI, the JavaScript SDK) and CBOR
/// (the Java SDKs and the KCL).
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Wire {
    Json,
    Cbor,
}

impl Wire {
    fn content_type(self) -> &'static str {
        match self {
            Wire::Json => "application/x-amz-json-1.1",
            Wire::Cbor => "application/x-amz-cbor-1.1",
        }
    }

    /// A GetRecords request body.
    pub fn get_records(self, iterator: &str, limit: u32) -> Bytes {
        match self {
            Wire::Json => Bytes::from(format!(r#"{{"ShardIterator":"{iterator}","Limit":{limit}}}"#)),
            Wire::Cbor => {
                let doc = Obj::new().put("ShardIterator", iterator.to_owned()).put("Limit", limit).done();
                let mut out = Vec::new();
                cbor::encode(&doc, &mut out);
                Bytes::from(out)
            }
        }
    }

    /// Reads a GetRecords answer and copies out every record's data, as a consumer would.
    pub fn decode_records(self, body: &[u8]) -> anyhow::Result<Page> {
        match self {
            Wire::Json => decode_json_records(body),
            Wire::Cbor => decode_cbor_records(body),
        }
    }
}

pub struct Page {
    pub records: u64,
    pub bytes: u64,
    pub next_iterator: Option<String>,
    pub millis_behind_latest: i64,
}

#[derive(serde::Deserialize)]
#[serde(rename_all = "PascalCase")]
struct RawPage<'a> {
    #[serde(borrow)]
    records: Vec<RawRecord<'a>>,
    next_shard_iterator: Option<String>,
    millis_behind_latest: i64,
}

#[derive(serde::Deserialize)]
#[serde(rename_all = "PascalCase")]
struct RawRecord<'a> {
    data: &'a str,
}

fn decode_json_records(body: &[u8]) -> anyhow::Result<Page> {
    let raw: RawPage<'_> = serde_json::from_slice(body)?;
    let mut bytes = 0u64;
    for r in &raw.records {
        let data = base64_simd::STANDARD.decode_to_vec(r.data)?;
        bytes += data.len() as u64;
    }
    Ok(Page {
        records: raw.records.len() as u64,
        bytes,
        next_iterator: raw.next_shard_iterator,
        millis_behind_latest: raw.millis_behind_latest,
    })
}

fn decode_cbor_records(body: &[u8]) -> anyhow::Result<Page> {
    let mut r = CborReader { body, at: 0 };
    let mut page = Page { records: 0, bytes: 0, next_iterator: None, millis_behind_latest: 0 };
    for _ in 0..r.head(5)? {
        match r.text()? {
            "Records" => {
                for _ in 0..r.head(4)? {
                    for _ in 0..r.head(5)? {
                        if r.text()? == "Data" {
                            let data = r.bytes()?.to_vec();
                            page.bytes += data.len() as u64;
                        } else {
                            r.skip()?;
                        }
                    }
                    page.records += 1;
                }
            }
            "NextShardIterator" => page.next_iterator = Some(r.text()?.to_owned()),
            "MillisBehindLatest" => page.millis_behind_latest = r.head(0)? as i64,
            _ => r.skip()?,
        }
    }
    Ok(page)
}

/// Just enough of a CBOR reader for GetRecords answers: definite lengths, borrowed strings.
struct CborReader<'a> {
    body: &'a [u8],
    at: usize,
}

impl<'a> CborReader<'a> {
    fn take(&mut self, n: usize) -> anyhow::Result<&'a [u8]> {
        let out = self.body.get(self.at..self.at + n).context("CBOR answer ends early")?;
        self.at += n;
        Ok(out)
    }

    /// A head of major type `major`, returning its argument.
    fn head(&mut self, major: u8) -> anyhow::Result<u64> {
        let (m, arg) = self.any_head()?;
        if m != major {
            bail!("expected CBOR major type {major}, found {m}");
        }
        Ok(arg)
    }

    fn any_head(&mut self) -> anyhow::Result<(u8, u64)> {
        let first = self.take(1)?[0];
        let arg = match first & 0x1f {
            n @ 0..=23 => u64::from(n),
            24 => u64::from(self.take(1)?[0]),
            25 => u64::from(u16::from_be_bytes(self.take(2)?.try_into()?)),
            26 => u64::from(u32::from_be_bytes(self.take(4)?.try_into()?)),
            27 => u64::from_be_bytes(self.take(8)?.try_into()?),
            _ => bail!("indefinite or reserved CBOR length"),
        };
        Ok((first >> 5, arg))
    }

    fn text(&mut self) -> anyhow::Result<&'a str> {
        let n = self.head(3)? as usize;
        Ok(std::str::from_utf8(self.take(n)?)?)
    }

    fn bytes(&mut self) -> anyhow::Result<&'a [u8]> {
        let n = self.head(2)? as usize;
        self.take(n)
    }

    fn skip(&mut self) -> anyhow::Result<()> {
        let (major, arg) = self.any_head()?;
        match major {
            2 | 3 => {
                self.take(arg as usize)?;
            }
            4 => (0..arg).try_for_each(|_| self.skip())?,
            5 => (0..arg * 2).try_for_each(|_| self.skip())?,
            6 => self.skip()?,
            _ => {}
        }
        Ok(())
    }
}
