//! AWS Signature Version 4 verification, header and query-string forms.
//!
//! The canonical request is rebuilt from exactly the headers the client says it signed, the
//! signature recomputed with the secret of the access key, and the two compared in constant time.
//! The request time must be within the clock-skew window (15 minutes, as AWS allows).

use std::collections::HashMap;

use subtle::ConstantTimeEq;

use crate::error::ApiError;

pub use tarn_sigv4::{
    ALGORITHM, format_amz_date, hex_sha256, parse_amz_date, sign, signing_key, string_to_sign, uri_encode,
};
const SKEW_MS: i64 = 15 * 60 * 1000;

/// What the verifier needs to know of a request.
pub struct SignedRequest<'a> {
    pub method: &'a str,
    /// The path as sent, still percent-encoded.
    pub path: &'a str,
    /// The raw query string, without `?`.
    pub query: &'a str,
    /// Header names lowercased, in the order received; repeated headers appear repeatedly.
    pub headers: &'a [(String, String)],
    pub body: &'a [u8],
}

/// Who signed a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub access_key: String,
    pub region: String,
    pub service: String,
}

struct Parts {
    access_key: String,
    date: String,
    region: String,
    service: String,
    signed_headers: Vec<String>,
    signature: String,
    amz_date: String,
    /// For presigned URLs, how long the signature is valid.
    expires_secs: Option<i64>,
}

fn incomplete(message: impl Into<String>) -> ApiError {
    ApiError::new("IncompleteSignatureException", 400, message)
}

fn invalid_signature(message: impl Into<String>) -> ApiError {
    ApiError::new("InvalidSignatureException", 400, message)
}

fn header<'a>(req: &'a SignedRequest<'_>, name: &str) -> Option<&'a str> {
    req.headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let Ok(b) = u8::from_str_radix(&s[i + 1..i + 3], 16)
        {
            out.push(b);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn query_pairs(query: &str) -> Vec<(String, String)> {
    query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (percent_decode(k), percent_decode(v))
        })
        .collect()
}

fn parse_credential(credential: &str) -> Result<(String, String, String, String), ApiError> {
    let parts: Vec<&str> = credential.split('/').collect();
    if parts.len() != 5 || parts[4] != "aws4_request" {
        return Err(incomplete(format!(
            "Credential should be scoped to a valid region and service, and end with 'aws4_request'. Got \
             '{credential}'."
        )));
    }
    Ok((parts[0].into(), parts[1].into(), parts[2].into(), parts[3].into()))
}

fn parse_header_auth(auth: &str, req: &SignedRequest<'_>) -> Result<Parts, ApiError> {
    let rest = auth.strip_prefix(ALGORITHM).ok_or_else(|| {
        incomplete(format!("Unsupported authorization type; only {ALGORITHM} is accepted. Authorization={auth}"))
    })?;
    let mut fields: HashMap<&str, &str> = HashMap::new();
    for part in rest.split(',') {
        if let Some((k, v)) = part.trim().split_once('=') {
            fields.insert(k.trim(), v.trim());
        }
    }
    let mut missing = String::new();
    for name in ["Credential", "Signature", "SignedHeaders"] {
        if !fields.contains_key(name) {
            missing.push_str(&format!("Authorization header requires '{name}' parameter. "));
        }
    }
    if !missing.is_empty() {
        return Err(incomplete(format!("{missing}Authorization={auth}")));
    }
    let amz_date = header(req, "x-amz-date").ok_or_else(|| {
        incomplete("Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header.")
    })?;
    let (access_key, date, region, service) = parse_credential(fields["Credential"])?;
    Ok(Parts {
        access_key,
        date,
        region,
        service,
        signed_headers: fields["SignedHeaders"].split(';').map(str::to_owned).collect(),
        signature: fields["Signature"].to_owned(),
        amz_date: amz_date.to_owned(),
        expires_secs: None,
    })
}

fn parse_query_auth(pairs: &[(String, String)]) -> Result<Parts, ApiError> {
    let get = |k: &str| pairs.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
    if get("X-Amz-Algorithm") != Some(ALGORITHM) {
        return Err(incomplete(format!("X-Amz-Algorithm must be {ALGORITHM}.")));
    }
    let mut missing = Vec::new();
    for name in ["X-Amz-Credential", "X-Amz-Signature", "X-Amz-SignedHeaders", "X-Amz-Date"] {
        if get(name).is_none() {
            missing.push(name);
        }
    }
    if !missing.is_empty() {
        return Err(incomplete(format!("AWS query-string parameters missing: {}.", missing.join(", "))));
    }
    let (access_key, date, region, service) = parse_credential(get("X-Amz-Credential").unwrap_or_default())?;
    Ok(Parts {
        access_key,
        date,
        region,
        service,
        signed_headers: get("X-Amz-SignedHeaders").unwrap_or_default().split(';').map(str::to_owned).collect(),
        signature: get("X-Amz-Signature").unwrap_or_default().to_owned(),
        amz_date: get("X-Amz-Date").unwrap_or_default().to_owned(),
        expires_secs: get("X-Amz-Expires").and_then(|e| e.parse().ok()),
    })
}

fn canonical_headers(req: &SignedRequest<'_>, signed: &[String]) -> Result<String, ApiError> {
    let mut out = String::new();
    for name in signed {
        let values: Vec<String> = req
            .headers
            .iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.split_whitespace().collect::<Vec<_>>().join(" "))
            .collect();
        if values.is_empty() {
            return Err(invalid_signature(format!(
                "The request signature we calculated does not match the signature you provided. Signed header \
                 '{name}' is not present in the request."
            )));
        }
        out.push_str(name);
        out.push(':');
        out.push_str(&values.join(","));
        out.push('\n');
    }
    Ok(out)
}

fn canonical_query(pairs: &[(String, String)], presigned: bool) -> String {
    let kept: Vec<(String, String)> =
        pairs.iter().filter(|(k, _)| !(presigned && k == "X-Amz-Signature")).cloned().collect();
    tarn_sigv4::canonical_query(&kept)
}

fn canonical_path(path: &str) -> String {
    if path.is_empty() {
        return "/".into();
    }
    // Non-S3 services encode the (already encoded) path once more.
    path.split('/').map(|seg| uri_encode(seg, true)).collect::<Vec<_>>().join("/")
}

/// Verifies a request's signature. `secret_for` maps an access key to its secret.
pub fn verify(
    req: &SignedRequest<'_>,
    expected_service: &str,
    now_ms: i64,
    secret_for: impl Fn(&str) -> Option<String>,
) -> Result<Principal, ApiError> {
    let auth_header = header(req, "authorization");
    let pairs = query_pairs(req.query);
    let query_auth = pairs.iter().any(|(k, _)| k == "X-Amz-Algorithm");
    let parts = match (auth_header, query_auth) {
        (Some(_), true) => {
            return Err(invalid_signature(
                "Found both 'X-Amz-Algorithm' as a query-string param and 'Authorization' as HTTP header.",
            ));
        }
        (Some(auth), false) => parse_header_auth(auth, req)?,
        (None, true) => parse_query_auth(&pairs)?,
        (None, false) => {
            return Err(ApiError::new("MissingAuthenticationTokenException", 403, "Missing Authentication Token"));
        }
    };
    let request_ms = parse_amz_date(&parts.amz_date)
        .ok_or_else(|| incomplete(format!("Date must be in ISO-8601 'basic format'. Got '{}'.", parts.amz_date)))?;
    if !parts.amz_date.starts_with(&parts.date) {
        return Err(invalid_signature(format!(
            "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: '{}' != '{}'",
            parts.date,
            &parts.amz_date[..8]
        )));
    }
    if parts.service != expected_service {
        return Err(invalid_signature(format!(
            "Credential should be scoped to correct service: '{expected_service}'."
        )));
    }
    match parts.expires_secs {
        Some(expires) if now_ms > request_ms + expires * 1000 => {
            return Err(invalid_signature(format!(
                "Signature expired: {} is now earlier than {} ({} - {expires} sec.)",
                format_amz_date(request_ms + expires * 1000),
                format_amz_date(now_ms),
                format_amz_date(now_ms)
            )));
        }
        _ if request_ms < now_ms - SKEW_MS => {
            return Err(invalid_signature(format!(
                "Signature expired: {} is now earlier than {} ({} - 15 min.)",
                parts.amz_date,
                format_amz_date(now_ms - SKEW_MS),
                format_amz_date(now_ms)
            )));
        }
        _ if request_ms > now_ms + SKEW_MS => {
            return Err(invalid_signature(format!(
                "Signature not yet current: {} is still later than {} ({} + 15 min.)",
                parts.amz_date,
                format_amz_date(now_ms + SKEW_MS),
                format_amz_date(now_ms)
            )));
        }
        _ => {}
    }
    let secret = secret_for(&parts.access_key).ok_or_else(|| {
        ApiError::new("UnrecognizedClientException", 400, "The security token included in the request is invalid.")
    })?;
    let body_hash = hex_sha256(req.body);
    let payload_hash = match header(req, "x-amz-content-sha256") {
        Some(claimed) if claimed != "UNSIGNED-PAYLOAD" && !claimed.eq_ignore_ascii_case(&body_hash) => {
            return Err(invalid_signature(
                "The provided 'x-amz-content-sha256' header does not match what was computed.",
            ));
        }
        Some(claimed) => claimed.to_owned(),
        None => body_hash,
    };
    let canonical_request = format!(
        "{}\n{}\n{}\n{}\n{}\n{}",
        req.method,
        canonical_path(req.path),
        canonical_query(&pairs, query_auth),
        canonical_headers(req, &parts.signed_headers)?,
        parts.signed_headers.join(";"),
        payload_hash
    );
    let scope = format!("{}/{}/{}/aws4_request", parts.date, parts.region, parts.service);
    let key = signing_key(&secret, &parts.date, &parts.region, &parts.service);
    let expected = sign(&key, &string_to_sign(&parts.amz_date, &scope, &canonical_request));
    if !bool::from(expected.as_bytes().ct_eq(parts.signature.to_ascii_lowercase().as_bytes())) {
        return Err(invalid_signature(
            "The request signature we calculated does not match the signature you provided. Check your AWS Secret \
             Access Key and signing method. Consult the service documentation for details.",
        ));
    }
    Ok(Principal { access_key: parts.access_key, region: parts.region, service: parts.service })
}

#[cfg(test)]
mod tests;
