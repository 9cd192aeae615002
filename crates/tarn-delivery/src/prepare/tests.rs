use super::*;
use tarn_segments::partition_query::PartitionQuery;

fn seq(n: u64) -> SequenceNumber {
    SequenceNumber::of_record(7, 0, n)
}

fn pending(n: u64, arrival_ms: i64, json: &str) -> Pending {
    Pending { sequence_number: seq(n), arrival_ms, data: Bytes::copy_from_slice(json.as_bytes()) }
}

const H7: i64 = 1_795_330_800_000; // 2026-11-22T07:00:00Z

fn prepare(
    records: &[Pending],
    schema: &TableSchema,
    options: &ConvertOptions,
    table: &str,
    now_ms: i64,
) -> Result<Prepared, tarn_lake::Error> {
    let prefixes = Prefixes::hive();
    let folders = Folders { prefixes: &prefixes, random: "r", query: None, time_field: None };
    super::prepare(records, schema, Some(&mut Shapes::default()), options, &folders, table, now_ms, 2)
}
const H8: i64 = H7 + 3_600_000;

#[test]
fn groups_by_arrival_hour_and_evolves_across_the_whole_flush() {
    let records = [
        pending(1, H7 + 5, r#"{"Id":1}"#),
        pending(2, H7 + 9, "{\"Id\":2}\n{\"Id\":3,\"Speed\":4}"),
        pending(3, H8, r#"{"Id":4,"Gps":{"Lat":1.5}}"#),
    ];
    let p = prepare(&records, &TableSchema::default(), &ConvertOptions::default(), "t", 0).unwrap();
    let folders: Vec<&str> = p.groups.iter().map(|g| g.folder.as_str()).collect();
    assert_eq!(folders, ["year=2026/month=11/day=22/hour=07", "year=2026/month=11/day=22/hour=08"]);
    assert_eq!(p.rows, 4);
    let names: Vec<&str> = p.schema.columns.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["id", "speed", "_rescued", "gps"]);
    // Both hours' batches have the whole schema, so one table schema covers the flush.
    for g in &p.groups {
        assert_eq!(g.batches[0].num_columns(), 4);
    }
    assert!(p.errors.is_empty());
}

#[test]
fn unreadable_parts_become_error_documents_and_the_rest_is_delivered() {
    let records = [pending(10, H7, "{\"Id\":1}\nnot json"), pending(11, H7, r#"{"Id":2}"#), pending(12, H8, "[1,2]")];
    let p = prepare(&records, &TableSchema::default(), &ConvertOptions::default(), "raw.t", 99).unwrap();
    assert_eq!(p.rows, 2);
    let docs: Vec<&Value> = p.errors.values().flatten().collect();
    assert_eq!(docs.len(), 2);
    assert_eq!(docs[0]["sequenceNumber"], seq(10).to_string());
    assert_eq!(docs[0]["rawData"], STANDARD.encode("not json"));
    assert_eq!(docs[0]["dataCatalogTable"]["tableName"], "raw.t");
    assert_eq!(docs[1]["sequenceNumber"], seq(12).to_string());
    let folders = ["format-conversion-failed/2026/11/22/07", "format-conversion-failed/2026/11/22/08"];
    assert_eq!(p.errors.keys().collect::<Vec<_>>(), folders);
}

#[test]
fn records_with_known_fields_are_converted_straight_to_the_same_rows_and_errors() {
    let records = [
        pending(10, H7, "{\"Id\":1,\"Gps\":{\"Lat\":1.5}}\nnot json"),
        pending(11, H7 + 1, r#"{"Id":"two","Gps":{"Lat":2}}{"id":3}"#),
        pending(12, H8, "[1,2]"),
        pending(13, H8, r#"{"Gps":null,"Id":4}"#),
    ];
    let options = ConvertOptions::default();
    // The first flush meets new fields and takes the general path; the same records again,
    // with the schema they made, go straight from the payloads to the columns.
    let general = prepare(&records, &TableSchema::default(), &options, "t", 5).unwrap();
    let prefixes = Prefixes::hive();
    let folders = Folders { prefixes: &prefixes, random: "r", query: None, time_field: None };
    let direct = direct_chunk(&records, &general.schema, true, &options, &folders, "t", 5)
        .expect("every field is known, so the chunk converts directly");
    let again = prepare(&records, &general.schema, &options, "t", 5).unwrap();
    assert_eq!(again.schema, general.schema);
    assert_eq!((again.rows, general.rows), (4, 4));
    assert_eq!(again.errors, general.errors);
    let batches = |p: &Prepared| -> Vec<(String, Vec<arrow_array::RecordBatch>)> {
        p.groups.iter().map(|g| (g.folder.clone(), g.batches.clone())).collect()
    };
    assert_eq!(batches(&again), batches(&general));
    assert_eq!(direct.batches.len(), 2);
    assert_eq!(direct.errors.len(), 2);
    // A field the schema lacks sends the chunk to the general path.
    let new = [pending(14, H7, r#"{"Id":5,"Speed":1}"#)];
    assert!(direct_chunk(&new, &general.schema, true, &options, &folders, "t", 5).is_none());
    assert!(direct_chunk(&new, &general.schema, false, &options, &folders, "t", 5).is_some());
}

#[test]
fn without_a_rescue_column_conflicting_rows_go_to_the_error_output() {
    let options = ConvertOptions { rescue_column: None, ..ConvertOptions::default() };
    let first = prepare(&[pending(1, H7, r#"{"N":1}"#)], &TableSchema::default(), &options, "t", 0).unwrap();
    let records = [pending(2, H7, r#"{"N":2}"#), pending(3, H7, r#"{"N":"x"}"#), pending(4, H7, r#"{"N":4}"#)];
    let p = prepare(&records, &first.schema, &options, "t", 0).unwrap();
    assert_eq!(p.rows, 2);
    let docs: Vec<&Value> = p.errors.values().flatten().collect();
    assert_eq!(docs.len(), 1);
    assert_eq!(docs[0]["sequenceNumber"], seq(3).to_string());
    assert_eq!(docs[0]["rawData"], STANDARD.encode(r#"{"n":"x"}"#));
}

#[test]
fn large_flushes_are_converted_in_chunks_that_all_reach_the_table_schema() {
    // A field that first appears in the second chunk.
    let n = CHUNK_RECORDS as u64 + 10;
    let records: Vec<Pending> = (0..n)
        .map(|i| {
            let json = if i < CHUNK_RECORDS as u64 {
                format!(r#"{{"Id":{i}}}"#)
            } else {
                format!(r#"{{"Id":{i},"Late":true}}"#)
            };
            pending(i, H7, &json)
        })
        .collect();
    let prefixes = Prefixes::hive();
    let folders = Folders { prefixes: &prefixes, random: "r", query: None, time_field: None };
    let options = ConvertOptions::default();
    let run = |threads| {
        let mut shapes = Shapes::default();
        super::prepare(&records, &TableSchema::default(), Some(&mut shapes), &options, &folders, "t", 0, threads)
            .unwrap()
    };
    // One thread: chunk by chunk, the first batch is built before the field appears.
    let one = run(1);
    // Two threads: both chunks are parsed, the schema evolves over both, then they convert.
    let two = run(2);
    for (p, first_has_late) in [(&one, false), (&two, true)] {
        assert_eq!(p.rows, n as usize);
        assert_eq!(p.groups.len(), 1);
        let batches = &p.groups[0].batches;
        assert_eq!(batches.len(), 2);
        assert_eq!(batches[0].column_by_name("late").is_some(), first_has_late);
        assert!(batches[1].column_by_name("late").is_some());
        assert!(p.schema.column("late").is_some());
    }
    // The same rows either way, in the same order.
    let ids = |p: &Prepared| -> Vec<i64> {
        p.groups[0]
            .batches
            .iter()
            .flat_map(|b| {
                let a = b.column_by_name("id").unwrap().as_any().downcast_ref::<arrow_array::Int64Array>().unwrap();
                a.values().to_vec()
            })
            .collect()
    };
    assert_eq!(ids(&one), ids(&two));
    assert_eq!(ids(&two), (0..n as i64).collect::<Vec<_>>());
}

#[test]
fn a_record_field_can_place_rows_in_time_folders_and_unusable_ones_go_to_errors() {
    let records = [
        pending(1, H8, r#"{"Id":1,"Status":{"At":"2026-11-21T23:59:59Z"}}"#),
        pending(2, H8, r#"{"Id":2,"Status":{"At":1795330800000}}"#),
        pending(3, H8, r#"{"Id":3,"Status":{"At":"1795330800"}}"#),
        pending(4, H8, r#"{"Id":4,"Status":{"At":"yesterday"}}"#),
        pending(5, H8, r#"{"Id":5}"#),
    ];
    let prefixes = Prefixes::hive();
    let path = ["Status".to_owned(), "At".to_owned()];
    let folders = Folders { prefixes: &prefixes, random: "r", query: None, time_field: Some(&path) };
    let options = ConvertOptions::default();
    let mut shapes = Shapes::default();
    let p =
        super::prepare(&records, &TableSchema::default(), Some(&mut shapes), &options, &folders, "t", 0, 1).unwrap();
    let folders_rows: Vec<(String, usize)> =
        p.groups.iter().map(|g| (g.folder.clone(), g.batches.iter().map(|b| b.num_rows()).sum())).collect();
    assert_eq!(
        folders_rows,
        [("year=2026/month=11/day=21/hour=23".to_owned(), 1), ("year=2026/month=11/day=22/hour=07".to_owned(), 2)],
        "event time, not arrival time (08:00), places the rows"
    );
    let docs: Vec<&Value> = p.errors.values().flatten().collect();
    assert_eq!(docs.len(), 2);
    assert!(p.errors.keys().all(|k| k.starts_with("partitioning-failed/")), "{:?}", p.errors.keys());
    let messages: Vec<&str> = docs.iter().map(|d| d["lastErrorMessage"].as_str().unwrap()).collect();
    assert!(messages[0].contains("not a timestamp") && messages[1].contains("missing"), "{messages:?}");
}

#[test]
fn rows_placed_by_record_fields_go_straight_to_the_same_folders_and_errors() {
    let records = [
        pending(1, H8, r#"{"Id":1,"Vendor":"acme","Status":{"At":"2026-11-21T23:59:59Z"}}"#),
        pending(
            2,
            H8,
            "{\"Id\":2,\"Vendor\":\"globex\",\"Status\":{\"At\":1795330800000}}\n{\"Id\":3,\"Vendor\":7,\"Status\":{\"At\":\"1795330800\"}}",
        ),
        pending(3, H8, r#"{"Id":4,"Vendor":"acme","Status":{"At":"yesterday"}}"#),
        pending(
            4,
            H8,
            "{\"Id\":5,\"Status\":{\"At\":1795330800}}\n{\"Id\":6,\"Vendor\":{\"x\":1},\"Status\":{\"At\":1795330800}}",
        ),
        pending(5, H8, "{\"Id\":7,\"Vendor\":\"acme\",\"Status\":{\"At\":1795330800}}\nnot json"),
    ];
    let prefixes = Prefixes::with_partition_keys(
        Some("vendor=!{partitionKeyFromQuery:vendor}/!{timestamp:yyyy/MM/dd/HH}/"),
        Some("errors/!{firehose:error-output-type}/"),
        Some(&["vendor"]),
    )
    .unwrap();
    let query = PartitionQuery::parse("{vendor: .Vendor}").unwrap();
    let path = ["Status".to_owned(), "At".to_owned()];
    let folders = Folders { prefixes: &prefixes, random: "r", query: Some(&query), time_field: Some(&path) };
    let options = ConvertOptions::default();
    let run = |schema: &TableSchema| {
        super::prepare(&records, schema, Some(&mut Shapes::default()), &options, &folders, "t", 0, 1).unwrap()
    };
    let general = run(&TableSchema::default());
    assert!(direct_chunk(&records, &general.schema, true, &options, &folders, "t", 0).is_some());
    let direct = run(&general.schema);
    let layout = |p: &Prepared| -> Vec<(String, Vec<arrow_array::RecordBatch>)> {
        p.groups.iter().map(|g| (g.folder.clone(), g.batches.clone())).collect()
    };
    assert_eq!(layout(&direct), layout(&general));
    assert_eq!(direct.errors, general.errors);
    let folders: Vec<&str> = direct.groups.iter().map(|g| g.folder.as_str()).collect();
    assert_eq!(
        folders,
        [
            "vendor=7/2026/11/22/07",
            "vendor=acme/2026/11/21/23",
            "vendor=acme/2026/11/22/07",
            "vendor=globex/2026/11/22/07"
        ]
    );
    // Bad time, missing key, nested key (whose raw is the parsed object), not JSON.
    let docs: Vec<&Value> = direct.errors.values().flatten().collect();
    assert_eq!(docs.len(), 4);
    assert_eq!(docs.iter().filter(|d| d["lastErrorCode"] == PARTITIONING_FAILED.code).count(), 3);
}

#[test]
fn kpl_aggregated_records_become_one_row_per_user_record() {
    let agg = crate::kpl::tests::aggregate(&["k"], &[(0, br#"{"Id":1}"#), (0, br#"{"Id":2}"#), (0, b"oops")]);
    let records =
        [Pending { sequence_number: seq(5), arrival_ms: H7, data: Bytes::from(agg) }, pending(6, H7, r#"{"Id":3}"#)];
    let p = prepare(&records, &TableSchema::default(), &ConvertOptions::default(), "t", 0).unwrap();
    assert_eq!(p.rows, 3);
    let docs: Vec<&Value> = p.errors.values().flatten().collect();
    assert_eq!(docs.len(), 1);
    assert_eq!(docs[0]["rawData"], STANDARD.encode("oops"));
    assert_eq!(docs[0]["sequenceNumber"], seq(5).to_string());
}
