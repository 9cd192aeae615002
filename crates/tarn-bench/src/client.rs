//! A minimal SigV4-signing Kinesis client over hyper, so the load tool measures Tarn and not an SDK.

use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{Context, bail};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
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

    /// Sends one signed Kinesis call and returns the response body; non-200 answers are errors.
    pub async fn call(&self, op: &str, body: impl Into<Bytes>) -> anyhow::Result<Bytes> {
        let body: Bytes = body.into();
        let now = SystemTime::now().duration_since(UNIX_EPOCH)?.as_millis() as i64;
        let amz_date = sigv4::format_amz_date(now);
        let date = &amz_date[..8];
        let target = format!("Kinesis_20131202.{op}");
        let payload_hash = sigv4::hex_sha256(&body);
        let signed = "content-type;host;x-amz-date;x-amz-target";
        let canonical = format!(
            "POST\n/\n\ncontent-type:application/x-amz-json-1.1\nhost:{}\nx-amz-date:{amz_date}\nx-amz-target:{target}\n\n{signed}\n{payload_hash}",
            self.host
        );
        let scope = format!("{date}/us-east-1/kinesis/aws4_request");
        let key = sigv4::signing_key(&self.secret, date, "us-east-1", "kinesis");
        let signature = sigv4::sign(&key, &sigv4::string_to_sign(&amz_date, &scope, &canonical));
        let request = hyper::Request::post(format!("http://{}/", self.host))
            .header("content-type", "application/x-amz-json-1.1")
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

/// Parses a GetRecords answer and decodes every record's data, as a consumer would.
pub fn decode_records(body: &[u8]) -> anyhow::Result<Page> {
    let raw: RawPage<'_> = serde_json::from_slice(body)?;
    let mut bytes = 0u64;
    let mut buf = Vec::new();
    for r in &raw.records {
        buf.clear();
        STANDARD.decode_vec(r.data, &mut buf)?;
        bytes += buf.len() as u64;
    }
    Ok(Page {
        records: raw.records.len() as u64,
        bytes,
        next_iterator: raw.next_shard_iterator,
        millis_behind_latest: raw.millis_behind_latest,
    })
}
