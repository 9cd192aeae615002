//! The two XML answers the client reads: a ListObjectsV2 page and an error. A scanner for the
//! few flat elements needed, not a general XML parser; no I/O.

use crate::ObjectInfo;

/// One page of a listing.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct ListPage {
    pub objects: Vec<ObjectInfo>,
    pub truncated: bool,
    pub next_token: Option<String>,
}

/// The text of the first `<tag>…</tag>` in `xml`, entities decoded.
fn element(xml: &str, tag: &str) -> Option<String> {
    let open = format!("<{tag}>");
    let start = xml.find(&open)? + open.len();
    let end = start + xml[start..].find(&format!("</{tag}>"))?;
    Some(unescape(&xml[start..end]))
}

fn unescape(s: &str) -> String {
    if !s.contains('&') {
        return s.to_owned();
    }
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find('&') {
        out.push_str(&rest[..i]);
        rest = &rest[i..];
        let Some(end) = rest.find(';') else { break };
        let entity = &rest[1..end];
        let decoded = match entity {
            "amp" => Some('&'),
            "lt" => Some('<'),
            "gt" => Some('>'),
            "quot" => Some('"'),
            "apos" => Some('\''),
            _ if entity.starts_with("#x") => u32::from_str_radix(&entity[2..], 16).ok().and_then(char::from_u32),
            _ if entity.starts_with('#') => entity[1..].parse().ok().and_then(char::from_u32),
            _ => None,
        };
        match decoded {
            Some(c) => {
                out.push(c);
                rest = &rest[end + 1..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// Parses a `ListBucketResult`.
pub fn list_page(xml: &str) -> Result<ListPage, String> {
    if !xml.contains("<ListBucketResult") {
        return Err(format!("expected a ListBucketResult, got {:?}", &xml[..xml.len().min(200)]));
    }
    let mut page = ListPage {
        truncated: element(xml, "IsTruncated").is_some_and(|t| t == "true"),
        next_token: element(xml, "NextContinuationToken"),
        objects: Vec::new(),
    };
    let mut rest = xml;
    while let Some(i) = rest.find("<Contents>") {
        let body = &rest[i..];
        let end = body.find("</Contents>").ok_or("a <Contents> element is not closed")?;
        let entry = &body[..end];
        let key = element(entry, "Key").ok_or("a listed object has no <Key>")?;
        let size = element(entry, "Size").and_then(|s| s.parse().ok()).ok_or("a listed object has no <Size>")?;
        page.objects.push(ObjectInfo { key, size });
        rest = &body[end..];
    }
    Ok(page)
}

/// The `Code` and `Message` of an S3 error answer (either may be missing, as on HEAD).
pub fn error(xml: &str) -> (Option<String>, Option<String>) {
    (element(xml, "Code"), element(xml, "Message"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_truncated_listing_page() {
        let xml = r#"<?xml version="1.0" encoding="UTF-8"?>
<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Name>lake</Name><Prefix>w/</Prefix>
<KeyCount>2</KeyCount><MaxKeys>1000</MaxKeys><IsTruncated>true</IsTruncated>
<Contents><Key>w/a&amp;b.parquet</Key><LastModified>2026-11-22T07:00:00.000Z</LastModified><Size>1234</Size></Contents>
<Contents><Key>w/year=2026/c.json</Key><Size>5</Size></Contents>
<NextContinuationToken>1ueGcxLPRx1Tr/XYExHnhbYLgveDs2J/wm36Hy4vbOwM=</NextContinuationToken></ListBucketResult>"#;
        let page = list_page(xml).unwrap();
        assert_eq!(
            page.objects,
            [
                ObjectInfo { key: "w/a&b.parquet".into(), size: 1234 },
                ObjectInfo { key: "w/year=2026/c.json".into(), size: 5 }
            ]
        );
        assert!(page.truncated);
        assert_eq!(page.next_token.as_deref(), Some("1ueGcxLPRx1Tr/XYExHnhbYLgveDs2J/wm36Hy4vbOwM="));
    }

    #[test]
    fn reads_errors_and_rejects_other_documents() {
        let xml = "<Error><Code>NoSuchBucket</Code><Message>The bucket &quot;x&quot; does not exist</Message></Error>";
        assert_eq!(error(xml), (Some("NoSuchBucket".into()), Some("The bucket \"x\" does not exist".into())));
        assert_eq!(error(""), (None, None));
        assert!(list_page(xml).is_err());
        assert_eq!(unescape("a&#x41;&#66;&zz;"), "aAB&zz;");
    }
}
