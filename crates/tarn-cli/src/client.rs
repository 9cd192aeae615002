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

impl AwsError {
    /// The error of an AWS JSON error body (`__type`, `message`).
    pub fn from_json(json: &serde_json::Value) -> AwsError {
        let code = json["__type"].as_str().unwrap_or("Error").rsplit('#').next().unwrap_or("Error").to_owned();
        let message = json["message"].as_str().or(json["Message"].as_str()).unwrap_or("").to_owned();
        AwsError { code, message }
    }
}

/// An HTTP answer.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    /// Names in lower case.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Answer {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }
}

/// The body of a `Transfer-Encoding: chunked` answer.
fn dechunk(mut raw: &[u8]) -> anyhow::Result<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let line_end = raw.windows(2).position(|w| w == b"\r\n").context("malformed chunk")?;
        let size_text = String::from_utf8_lossy(&raw[..line_end]);
        let size = usize::from_str_radix(size_text.split(';').next().unwrap_or("").trim(), 16)
            .with_context(|| format!("malformed chunk size {size_text:?}"))?;
        raw = &raw[line_end + 2..];
        if size == 0 {
            return Ok(out);
        }
        anyhow::ensure!(raw.len() >= size + 2, "truncated chunk");
        out.extend_from_slice(&raw[..size]);
        raw = &raw[size + 2..];
    }
}

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
        let body = serde_json::to_vec(body)?;
        let target = format!("{target_prefix}.{op}");
        let answer = self.post("/", "application/x-amz-json-1.1", Some(&target), signing_name, &body)?;
        let json: serde_json::Value =
            if answer.body.is_empty() { serde_json::json!({}) } else { serde_json::from_slice(&answer.body)? };
        if answer.status != 200 {
            return Err(AwsError::from_json(&json).into());
        }
        Ok(json)
    }

    /// A SigV4-signed POST of `body` to `path`.
    pub fn post(
        &self,
        path: &str,
        content_type: &str,
        target: Option<&str>,
        signing_name: &str,
        body: &[u8],
    ) -> anyhow::Result<Answer> {
        self.send("POST", path, content_type, target, signing_name, body)
    }

    /// A SigV4-signed GET of `path` that answers JSON, or the AWS error it answered with.
    pub fn get_json(&self, path: &str, signing_name: &str) -> anyhow::Result<serde_json::Value> {
        let answer = self.send("GET", path, "application/json", None, signing_name, b"")?;
        let json: serde_json::Value = serde_json::from_slice(&answer.body)
            .with_context(|| format!("HTTP {}: {}", answer.status, String::from_utf8_lossy(&answer.body)))?;
        if answer.status != 200 {
            return Err(AwsError::from_json(&json).into());
        }
        Ok(json)
    }

    fn send(
        &self,
        method: &str,
        path: &str,
        content_type: &str,
        target: Option<&str>,
        signing_name: &str,
        body: &[u8],
    ) -> anyhow::Result<Answer> {
        let host = self.host()?;
        let now = SystemTime::now().duration_since(UNIX_EPOCH)?.as_millis() as i64;
        let amz_date = sigv4::format_amz_date(now);
        let (signed, target_line, target_header) = match target {
            Some(t) => (
                "content-type;host;x-amz-date;x-amz-target",
                format!("x-amz-target:{t}\n"),
                format!("x-amz-target: {t}\r\n"),
            ),
            None => ("content-type;host;x-amz-date", String::new(), String::new()),
        };
        let canonical = format!(
            "{method}\n{path}\n\ncontent-type:{content_type}\nhost:{host}\nx-amz-date:{amz_date}\n{target_line}\n{signed}\n{}",
            sigv4::hex_sha256(body)
        );
        let scope = format!("{}/{}/{signing_name}/aws4_request", &amz_date[..8], self.region);
        let key = sigv4::signing_key(&self.secret_key, &amz_date[..8], &self.region, signing_name);
        let signature = sigv4::sign(&key, &sigv4::string_to_sign(&amz_date, &scope, &canonical));
        let mut stream = TcpStream::connect(host).with_context(|| format!("cannot reach Tarn at {}", self.endpoint))?;
        stream.set_read_timeout(Some(Duration::from_secs(600)))?;
        write!(
            stream,
            "{method} {path} HTTP/1.1\r\nhost: {host}\r\ncontent-type: {content_type}\r\nx-amz-date: {amz_date}\r\n\
             {target_header}authorization: AWS4-HMAC-SHA256 Credential={}/{scope}, SignedHeaders={signed}, \
             Signature={signature}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
            self.access_key,
            body.len()
        )?;
        stream.write_all(body)?;
        let mut raw = Vec::new();
        stream.read_to_end(&mut raw)?;
        let split = raw.windows(4).position(|w| w == b"\r\n\r\n").context("malformed HTTP answer")?;
        let head = String::from_utf8_lossy(&raw[..split]).into_owned();
        let mut lines = head.split("\r\n");
        let status: u16 = lines
            .next()
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|s| s.parse().ok())
            .context("no HTTP status")?;
        let headers = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
            .collect();
        let mut body = raw[split + 4..].to_vec();
        if head.to_ascii_lowercase().contains("transfer-encoding: chunked") {
            body = dechunk(&body)?;
        }
        Ok(Answer { status, headers, body })
    }

    pub fn firehose(&self, op: &str, body: serde_json::Value) -> anyhow::Result<serde_json::Value> {
        self.call("Firehose_20150804", "firehose", op, &body)
    }

    pub fn kinesis(&self, op: &str, body: serde_json::Value) -> anyhow::Result<serde_json::Value> {
        self.call("Kinesis_20131202", "kinesis", op, &body)
    }
}
