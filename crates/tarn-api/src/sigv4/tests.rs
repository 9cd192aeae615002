use super::*;

const SECRET: &str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
const NOW: &str = "20150830T123600Z";

fn secrets(key: &str) -> Option<String> {
    (key == "AKIDEXAMPLE").then(|| SECRET.to_owned())
}

fn now() -> i64 {
    parse_amz_date(NOW).unwrap()
}

fn headers(auth: &str) -> Vec<(String, String)> {
    vec![
        ("host".into(), "example.amazonaws.com".into()),
        ("x-amz-date".into(), NOW.into()),
        ("authorization".into(), auth.into()),
    ]
}

/// The `get-vanilla` case of AWS's SigV4 test suite.
const VANILLA: &str = "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, \
                       SignedHeaders=host;x-amz-date, \
                       Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31";

fn get<'a>(h: &'a [(String, String)], query: &'a str) -> SignedRequest<'a> {
    SignedRequest { method: "GET", path: "/", query, headers: h, body: b"" }
}

#[test]
fn accepts_the_aws_test_suite_vector() {
    let h = headers(VANILLA);
    let p = verify(&get(&h, ""), "service", now(), secrets).unwrap();
    assert_eq!((p.access_key.as_str(), p.region.as_str()), ("AKIDEXAMPLE", "us-east-1"));
}

#[test]
fn rejects_a_wrong_secret_a_changed_header_and_an_unknown_key() {
    let h = headers(VANILLA);
    let err = verify(&get(&h, ""), "service", now(), |_| Some("other".into())).unwrap_err();
    assert_eq!(err.code, "InvalidSignatureException");
    let mut h2 = headers(VANILLA);
    h2[0].1 = "evil.example.com".into();
    assert_eq!(verify(&get(&h2, ""), "service", now(), secrets).unwrap_err().code, "InvalidSignatureException");
    let err = verify(&get(&h, ""), "service", now(), |_| None).unwrap_err();
    assert_eq!(err.code, "UnrecognizedClientException");
}

#[test]
fn enforces_the_fifteen_minute_skew_window() {
    let h = headers(VANILLA);
    assert!(verify(&get(&h, ""), "service", now() + 14 * 60_000, secrets).is_ok());
    let err = verify(&get(&h, ""), "service", now() + 16 * 60_000, secrets).unwrap_err();
    assert!(err.message.starts_with("Signature expired: 20150830T123600Z is now earlier than"), "{}", err.message);
    let err = verify(&get(&h, ""), "service", now() - 16 * 60_000, secrets).unwrap_err();
    assert!(err.message.starts_with("Signature not yet current"), "{}", err.message);
}

#[test]
fn missing_and_malformed_authorization_get_aws_error_types() {
    let h = vec![("host".to_string(), "x".to_string())];
    assert_eq!(
        verify(&get(&h, ""), "service", now(), secrets).unwrap_err().code,
        "MissingAuthenticationTokenException"
    );
    let h = headers("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request");
    let err = verify(&get(&h, ""), "service", now(), secrets).unwrap_err();
    assert_eq!(err.code, "IncompleteSignatureException");
    assert!(err.message.contains("requires 'Signature' parameter"));
    let h = headers(VANILLA);
    let err = verify(&get(&h, "X-Amz-Algorithm=AWS4-HMAC-SHA256"), "service", now(), secrets).unwrap_err();
    assert!(err.message.starts_with("Found both"));
    assert!(verify(&get(&h, ""), "kinesis", now(), secrets).unwrap_err().message.contains("correct service"));
}

/// Signs like a client would, for the query-string form.
fn presign(expires: i64) -> String {
    let scope = "20150830/us-east-1/service/aws4_request";
    let mut pairs = vec![
        ("X-Amz-Algorithm".to_string(), ALGORITHM.to_string()),
        ("X-Amz-Credential".into(), format!("AKIDEXAMPLE/{scope}")),
        ("X-Amz-Date".into(), NOW.into()),
        ("X-Amz-Expires".into(), expires.to_string()),
        ("X-Amz-SignedHeaders".into(), "host".into()),
    ];
    let cq = canonical_query(&pairs, true);
    let creq = format!("GET\n/\n{cq}\nhost:example.amazonaws.com\n\nhost\n{}", hex_sha256(b""));
    let key = signing_key(SECRET, "20150830", "us-east-1", "service");
    pairs.push(("X-Amz-Signature".into(), sign(&key, &string_to_sign(NOW, scope, &creq))));
    pairs.iter().map(|(k, v)| format!("{}={}", uri_encode(k, true), uri_encode(v, true))).collect::<Vec<_>>().join("&")
}

#[test]
fn verifies_presigned_query_strings_and_their_expiry() {
    let h = vec![("host".to_string(), "example.amazonaws.com".to_string())];
    let q = presign(60);
    assert!(verify(&get(&h, &q), "service", now() + 30_000, secrets).is_ok());
    let err = verify(&get(&h, &q), "service", now() + 61_000, secrets).unwrap_err();
    assert!(err.message.starts_with("Signature expired"), "{}", err.message);
    let tampered = q.replace("X-Amz-Expires=60", "X-Amz-Expires=6000");
    assert_eq!(verify(&get(&h, &tampered), "service", now(), secrets).unwrap_err().code, "InvalidSignatureException");
}

#[test]
fn amz_dates_round_trip() {
    for s in ["20150830T123600Z", "19700101T000000Z", "20241231T235959Z", "20240229T120000Z"] {
        assert_eq!(format_amz_date(parse_amz_date(s).unwrap()), s);
    }
    assert!(parse_amz_date("2015-08-30T12:36:00Z").is_none());
}
