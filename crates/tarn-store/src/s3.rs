//! An S3-compatible object store: each request signed with SigV4 (service `s3`), path-style
//! (`endpoint/bucket/key`, what MinIO, Ceph and most self-hosted services expect) or virtual-host
//! style (`bucket.endpoint/key`, AWS's default). Transient failures (5xx, throttling, lost
//! connections) are retried a few times with backoff; every request is idempotent.

mod xml;

use std::ops::Range;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use reqwest::{Method, StatusCode};
use serde::{Deserialize, Serialize};
use tarn_sigv4::{Credentials, hex_sha256, uri_encode};

use crate::{Error, ObjectInfo, Result};

/// How many times a request is sent before its failure is reported.
const ATTEMPTS: u32 = 4;

/// Where the service is and who signs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct S3Config {
    pub bucket: String,
    /// `http(s)://host[:port]`; AWS's regional endpoint when unset.
    pub endpoint: Option<String>,
    pub region: String,
    pub access_key_id: String,
    pub secret_access_key: String,
    pub session_token: Option<String>,
    /// `endpoint/bucket/key` rather than `bucket.endpoint/key`.
    pub path_style: bool,
}

/// A client of one bucket.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(try_from = "S3Config", into = "S3Config")]
pub struct S3Store {
    config: S3Config,
    credentials: Credentials,
    /// Scheme and authority the requests go to (bucket included in virtual-host style).
    base: String,
    /// The `host` header signed.
    host: String,
    client: reqwest::Client,
}

impl TryFrom<S3Config> for S3Store {
    type Error = Error;
    fn try_from(config: S3Config) -> Result<S3Store> {
        S3Store::new(config)
    }
}

impl From<S3Store> for S3Config {
    fn from(s: S3Store) -> S3Config {
        s.config
    }
}

/// Splits `s3://bucket/prefix/` into the bucket and the prefix (no slashes at either end).
pub fn parse_url(url: &str) -> Result<(String, String)> {
    let rest = url
        .strip_prefix("s3://")
        .or_else(|| url.strip_prefix("s3a://"))
        .ok_or_else(|| Error::Config(format!("{url:?} is not an s3://bucket/prefix URL")))?;
    let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
    let valid = (3..=63).contains(&bucket.len())
        && bucket.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'-');
    if !valid {
        return Err(Error::Config(format!(
            "{bucket:?} in {url:?} is not a bucket name (3 to 63 lowercase letters, digits, dots and hyphens)"
        )));
    }
    Ok((bucket.to_owned(), prefix.trim_matches('/').to_owned()))
}

fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
}

impl S3Store {
    pub fn new(config: S3Config) -> Result<S3Store> {
        let endpoint = config.endpoint.clone().unwrap_or_else(|| format!("https://s3.{}.amazonaws.com", config.region));
        let (scheme, authority) = endpoint
            .trim_end_matches('/')
            .split_once("://")
            .map(|(s, a)| (s.to_owned(), a.to_owned()))
            .filter(|(s, a)| (s == "http" || s == "https") && !a.is_empty() && !a.contains('/'))
            .ok_or_else(|| Error::Config(format!("S3 endpoint {endpoint:?} is not http(s)://host[:port]")))?;
        let host = if config.path_style { authority } else { format!("{}.{authority}", config.bucket) };
        let client = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .timeout(Duration::from_secs(300))
            .build()
            .map_err(|e| Error::Config(format!("cannot set up the HTTP client for S3: {e}")))?;
        let credentials = Credentials {
            access_key_id: config.access_key_id.clone(),
            secret_access_key: config.secret_access_key.clone(),
            session_token: config.session_token.clone(),
        };
        Ok(S3Store { base: format!("{scheme}://{host}"), host, credentials, client, config })
    }

    pub fn bucket(&self) -> &str {
        &self.config.bucket
    }

    fn location(&self, key: &str) -> String {
        format!("s3://{}/{key}", self.config.bucket)
    }

    /// The request path of `key`, percent-encoded as it is both sent and signed.
    fn path(&self, key: &str) -> String {
        let key = uri_encode(key, false);
        if self.config.path_style { format!("/{}/{key}", self.config.bucket) } else { format!("/{key}") }
    }

    /// Sends one signed request, retrying transient failures; returns the answer of a 2xx.
    async fn send(
        &self,
        op: &'static str,
        method: Method,
        key: &str,
        query: &[(String, String)],
        extra: &[(&str, String)],
        body: Bytes,
    ) -> Result<reqwest::Response> {
        let path = self.path(key);
        let payload_hash = if body.is_empty() { hex_sha256(b"") } else { hex_sha256(&body) };
        let mut url = format!("{}{path}", self.base);
        if !query.is_empty() {
            url.push('?');
            url.push_str(&tarn_sigv4::canonical_query(query));
        }
        let mut attempt = 0;
        loop {
            attempt += 1;
            let amz_date = tarn_sigv4::format_amz_date(now_ms());
            let mut headers: Vec<(String, String)> = vec![
                ("host".into(), self.host.clone()),
                ("x-amz-content-sha256".into(), payload_hash.clone()),
                ("x-amz-date".into(), amz_date.clone()),
            ];
            if let Some(token) = &self.credentials.session_token {
                headers.push(("x-amz-security-token".into(), token.clone()));
            }
            headers.extend(extra.iter().map(|(k, v)| ((*k).to_owned(), v.clone())));
            let request = tarn_sigv4::Request {
                method: method.as_str(),
                path: &path,
                query,
                headers: &headers,
                payload_hash: &payload_hash,
            };
            let auth = tarn_sigv4::authorization(&request, &self.credentials, &self.config.region, "s3", &amz_date);
            let mut req = self.client.request(method.clone(), &url).header("authorization", auth);
            for (k, v) in headers.iter().filter(|(k, _)| k != "host") {
                req = req.header(k, v);
            }
            if method == Method::PUT {
                req = req.header("content-length", body.len()).body(body.clone());
            }
            // Bodies are hashed rather than sent unsigned, so a corrupted upload is refused.
            match req.send().await {
                Ok(answer) if answer.status().is_success() => return Ok(answer),
                Ok(answer) => {
                    let status = answer.status();
                    let transient = status.is_server_error() || status == StatusCode::TOO_MANY_REQUESTS;
                    let text = answer.text().await.unwrap_or_default();
                    let (code, message) = xml::error(&text);
                    let error = if status == StatusCode::NOT_FOUND && code.as_deref() != Some("NoSuchBucket") {
                        Error::NotFound { op, location: self.location(key) }
                    } else {
                        Error::Service {
                            op,
                            location: self.location(key),
                            status: status.as_u16(),
                            code: code.unwrap_or_else(|| status.canonical_reason().unwrap_or("Error").replace(' ', "")),
                            message: message.unwrap_or_default(),
                        }
                    };
                    if !transient || attempt == ATTEMPTS {
                        return Err(error);
                    }
                    tracing::warn!(error = %error, attempt, "S3 request failed; retrying");
                }
                Err(e) => {
                    let error = Error::Unreachable { op, location: self.location(key), message: e.to_string() };
                    if attempt == ATTEMPTS {
                        return Err(error);
                    }
                    tracing::warn!(error = %error, attempt, "S3 request failed; retrying");
                }
            }
            tokio::time::sleep(Duration::from_millis(100 * 4u64.pow(attempt - 1))).await;
        }
    }

    pub async fn put(&self, key: &str, body: Bytes) -> Result<()> {
        self.send("PUT", Method::PUT, key, &[], &[], body).await.map(drop)
    }

    /// The object, or the bytes of `range` of it.
    pub async fn get(&self, key: &str, range: Option<Range<u64>>) -> Result<Bytes> {
        let extra: Vec<(&str, String)> = match &range {
            Some(r) if r.is_empty() => return Ok(Bytes::new()),
            Some(r) => vec![("range", format!("bytes={}-{}", r.start, r.end - 1))],
            None => vec![],
        };
        let answer = self.send("GET", Method::GET, key, &[], &extra, Bytes::new()).await?;
        answer.bytes().await.map_err(|e| Error::Unreachable {
            op: "GET",
            location: self.location(key),
            message: e.to_string(),
        })
    }

    pub async fn head(&self, key: &str) -> Result<Option<u64>> {
        match self.send("HEAD", Method::HEAD, key, &[], &[], Bytes::new()).await {
            Ok(answer) => Ok(answer
                .headers()
                .get("content-length")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse().ok())
                .or(Some(0))),
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(e),
        }
    }

    pub async fn delete(&self, key: &str) -> Result<()> {
        match self.send("DELETE", Method::DELETE, key, &[], &[], Bytes::new()).await {
            Err(e) if e.is_not_found() => Ok(()),
            other => other.map(drop),
        }
    }

    /// Every object whose key starts with `prefix` (ListObjectsV2, page after page).
    pub async fn list(&self, prefix: &str) -> Result<Vec<ObjectInfo>> {
        let mut out = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let mut query = vec![("list-type".to_owned(), "2".to_owned()), ("prefix".to_owned(), prefix.to_owned())];
            if let Some(t) = &token {
                query.push(("continuation-token".to_owned(), t.clone()));
            }
            let answer = self.send("LIST", Method::GET, "", &query, &[], Bytes::new()).await?;
            let text = answer.text().await.map_err(|e| Error::Unreachable {
                op: "LIST",
                location: self.location(prefix),
                message: e.to_string(),
            })?;
            let page = xml::list_page(&text).map_err(|message| Error::Service {
                op: "LIST",
                location: self.location(prefix),
                status: 200,
                code: "MalformedListing".into(),
                message,
            })?;
            out.extend(page.objects);
            match page.next_token {
                Some(t) if page.truncated => token = Some(t),
                _ => break,
            }
        }
        out.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_s3_urls_and_rejects_bad_buckets() {
        assert_eq!(parse_url("s3://lake-bucket/tarn/prod/").unwrap(), ("lake-bucket".into(), "tarn/prod".into()));
        assert_eq!(parse_url("s3://lake-bucket").unwrap(), ("lake-bucket".into(), String::new()));
        assert!(parse_url("http://x/y").is_err());
        assert!(parse_url("s3://Upper_Case/x").unwrap_err().to_string().contains("bucket name"));
    }

    fn config(path_style: bool, endpoint: Option<&str>) -> S3Config {
        S3Config {
            bucket: "lake".into(),
            endpoint: endpoint.map(str::to_owned),
            region: "eu-west-1".into(),
            access_key_id: "k".into(),
            secret_access_key: "s".into(),
            session_token: None,
            path_style,
        }
    }

    #[test]
    fn addresses_path_and_virtual_host_style() {
        let path = S3Store::new(config(true, Some("http://127.0.0.1:9000"))).unwrap();
        assert_eq!((path.base.as_str(), path.host.as_str()), ("http://127.0.0.1:9000", "127.0.0.1:9000"));
        assert_eq!(path.path("year=2026/a b.parquet"), "/lake/year%3D2026/a%20b.parquet");
        let aws = S3Store::new(config(false, None)).unwrap();
        assert_eq!(aws.base, "https://lake.s3.eu-west-1.amazonaws.com");
        assert_eq!(aws.path("k"), "/k");
        assert!(S3Store::new(config(true, Some("ftp://x"))).is_err());
    }
}
