//! Hive-style folders as columns: `year=2026/month=11/day=22/hour=10/` in a data file's path
//! becomes the columns `year`, `month`, `day` and `hour` (strings, as Glue registers Firehose's
//! partitions), so `WHERE day = '22' AND hour = '10'` skips the other folders' files unread.

/// The part of a data file's path below its table's `data/` folder.
pub fn below_data(path: &str) -> &str {
    path.split_once("/data/").map_or(path, |(_, rest)| rest)
}

/// The `key=value` folders of `relative` (a path below the table's data folder), in order.
/// Values are percent-decoded; folders without `=` (custom prefixes) are not partitions.
pub fn partition_pairs(relative: &str) -> Vec<(String, String)> {
    let Some((folders, _file)) = relative.rsplit_once('/') else { return Vec::new() };
    folders
        .split('/')
        .filter_map(|folder| folder.split_once('='))
        .filter(|(key, _)| !key.is_empty())
        .map(|(key, value)| (percent_decode(key), percent_decode(value)))
        .collect()
}

/// The partition columns of a table whose files lie at `paths` (below its data folder): every
/// key in the order first met, leaving out keys that name a data column (the data wins).
pub fn partition_columns<'a>(paths: impl IntoIterator<Item = &'a str>, data_columns: &[&str]) -> Vec<String> {
    let mut keys: Vec<String> = Vec::new();
    for path in paths {
        for (key, _) in partition_pairs(path) {
            let clashes = data_columns.iter().any(|c| c.eq_ignore_ascii_case(&key));
            if !clashes && !keys.contains(&key) {
                keys.push(key);
            }
        }
    }
    keys
}

/// The value of each of `columns` in `relative` (`None` where the path lacks the key).
pub fn partition_values(relative: &str, columns: &[String]) -> Vec<Option<String>> {
    let pairs = partition_pairs(relative);
    columns.iter().map(|c| pairs.iter().find(|(k, _)| k == c).map(|(_, v)| v.clone())).collect()
}

fn percent_decode(text: &str) -> String {
    if !text.contains('%') {
        return text.to_owned();
    }
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let (Some(h), Some(l)) = (hex(bytes[i + 1]), hex(bytes[i + 2]))
        {
            out.push((h * 16 + l) as u8);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folders_with_equals_signs_are_partitions() {
        let path = "year=2026/month=11/day=22/hour=09/part-1.parquet";
        assert_eq!(
            partition_pairs(path),
            [("year", "2026"), ("month", "11"), ("day", "22"), ("hour", "09")]
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .to_vec()
        );
        assert!(partition_pairs("2026/11/22/part.parquet").is_empty(), "custom prefixes are not partitions");
        assert!(partition_pairs("part.parquet").is_empty());
        assert_eq!(partition_pairs("vendor=a%2Fb%20c/x=%zz/f")[0].1, "a/b c");
        assert_eq!(partition_pairs("vendor=a%2Fb%20c/x=%zz/f")[1].1, "%zz", "a bad escape stays as written");
    }

    #[test]
    fn columns_are_the_union_of_keys_minus_data_columns() {
        let paths = ["year=2026/hour=01/a.parquet", "vendor=x/year=2026/hour=02/b.parquet", "c.parquet"];
        assert_eq!(partition_columns(paths, &["Vendor", "id"]), ["year", "hour"]);
        let columns = partition_columns(paths, &[]);
        assert_eq!(columns, ["year", "hour", "vendor"]);
        assert_eq!(partition_values(paths[0], &columns), [Some("2026".into()), Some("01".into()), None]);
    }
}
