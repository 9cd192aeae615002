//! A small SigV4-signing client for the CLI's own calls to a running server (`tarn segment`,
//! `tarn generate`): one HTTP/1.1 request per connection, JSON 1.1 bodies.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::Context;
use tarn_api::sigv4;

/// Where the server is and who calls it.
#[derive(clap::Args, Clone, Debug)]
pub struct Endpoint {
    /// The server's address.
    #[arg(long, env = "TARN_ENDPOINT", default_value = "http://127.0.0.1:4567")]
    pub endpoint: String,
    /// Access key (default: AWS_ACCESS_KEY_ID, else the development key).
    #[arg(long, env = "AWS_ACCESS_KEY_ID", default_value = tarn_config::DEV_ACCESS_KEY, hide_env_values = true)]
    pub access_key: String,
    /// Secret key (default: AWS_SECRET_ACCESS_KEY, else the development secret).
    #[arg(long, env = "AWS_SECRET_ACCESS_KEY", default_value = tarn_config::DEV_SECRET_KEY, hide_env_values = true)]
    pub secret_key: String,
    #[arg(long, env = "AWS_DEFAULT_REGION", default_value = "us-east-1")]
    pub region: String,
}

/// An AWS error answer.
#[derive(Debug)]
pub struct AwsError {
    pub code: String,
    pub message: String,
}

impl std::fmt::Display for AwsError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

impl std::error::Error for AwsError {}

impl Endpoint {
    fn host(&self) -> anyhow::Result<&str> {
        let host = self.endpoint.strip_prefix("http://").context("--endpoint must start with http://")?;
        Ok(host.trim_end_matches('/'))
    }

    /// Calls `<service prefix>.<op>` (signed for `signing_name`) and returns the JSON answer.
    pub fn call(
        &self,
        target_prefix: &str,
        signing_name: &str,
        op: &str,
        body: &serde_json::Value,
    ) -> anyhow::Result<serde_json::Value> {
        let host = self.host()?;
        let body = serde_json::to_vec(body)?;
        let now = SystemTime::now().duration_since(UNIX_EPOCH)?.as_millis() as i64;
        let amz_date = sigv4::format_amz_date(now);
        let target = format!("{target_prefix}.{op}");
        let signed = "content-type;host;x-amz-date;x-amz-target";
        let canonical = format!(
            "POST\n/\n\ncontent-type:application/x-amz-json-1.1\nhost:{host}\nx-amz-date:{amz_date}\nx-amz-target:{target}\n\n{signed}\n{}",
            sigv4::hex_sha256(&body)
        );
        let scope = format!("{}/{}/{signing_name}/aws4_request", &amz_date[..8], self.region);
        let key = sigv4::signing_key(&self.secret_key, &amz_date[..8], &self.region, signing_name);
        let signature = sigv4::sign(&key, &sigv4::string_to_sign(&amz_date, &scope, &canonical));
        let mut stream = TcpStream::connect(host).with_context(|| format!("cannot reach Tarn at {}", self.endpoint))?;
        stream.set_read_timeout(Some(Duration::from_secs(60)))?;
        write!(
            stream,
            "POST / HTTP/1.1\r\nhost: {host}\r\ncontent-type: application/x-amz-json-1.1\r\nx-amz-date: {amz_date}\r\n\
             x-amz-target: {target}\r\nauthorization: AWS4-HMAC-SHA256 Credential={}/{scope}, SignedHeaders={signed}, \
             Signature={signature}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
            self.access_key,
            body.len()
        )?;
        stream.write_all(&body)?;
        let mut answer = Vec::new();
        stream.read_to_end(&mut answer)?;
        let split = answer.windows(4).position(|w| w == b"\r\n\r\n").context("malformed HTTP answer")?;
        let head = String::from_utf8_lossy(&answer[..split]);
        let status: u16 = head.split_whitespace().nth(1).and_then(|s| s.parse().ok()).context("no HTTP status")?;
        let payload = &answer[split + 4..];
        let json: serde_json::Value =
            if payload.is_empty() { serde_json::json!({}) } else { serde_json::from_slice(payload)? };
        if status != 200 {
            let code = json["__type"].as_str().unwrap_or("Error").rsplit('#').next().unwrap_or("Error").to_owned();
            let message = json["message"].as_str().or(json["Message"].as_str()).unwrap_or("").to_owned();
            return Err(AwsError { code, message }.into());
        }
        Ok(json)
    }

    pub fn firehose(&self, op: &str, body: serde_json::Value) -> anyhow::Result<serde_json::Value> {
        self.call("Firehose_20150804", "firehose", op, &body)
    }

    pub fn kinesis(&self, op: &str, body: serde_json::Value) -> anyhow::Result<serde_json::Value> {
        self.call("Kinesis_20131202", "kinesis", op, &body)
    }
}
