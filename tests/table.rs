//! Tables: `Archive::table` gives a row per matching entry (time, hash, record fields, tags),
//! oldest first, without removed entries; `archive export -o x.parquet` / `x.arrow` files are
//! read back by pyarrow, pandas and polars themselves; bad input is a clear error, no file.

use std::process::Command;

use arrow_array::cast::AsArray;
use arrow_array::types::{Float32Type, Int64Type, TimestampNanosecondType};
use arrow_array::{Array, FixedSizeListArray};
use predicates::prelude::PredicateBooleanExt;

use model_archive::{Archive, Dtype, Record, Shape, TensorView, Value};

use crate::util::TempStore;

/// Records `{probs: f32[3], label: i, id: "img-i", meta: {cam: i % 3}}` tagged split = i % 2,
/// committed in several batches; then a tensor and a text entry tagged split = "even".
/// Returns each record's (probs, label, id) in logging order.
fn fill(a: &Archive, n: u32) -> Vec<(Vec<f32>, i64, String)> {
    let mut w = a.writer();
    let mut rows = Vec::new();
    for i in 0..n {
        let probs: Vec<f32> = (0..3u32).map(|j| (i * 3 + j) as f32 / 7.0).collect();
        let bytes: Vec<u8> = probs.iter().flat_map(|v| v.to_le_bytes()).collect();
        let shape = Shape::new(vec![3]);
        let view = TensorView::new(Dtype::F32, &shape, &bytes).expect("view");
        let h = w.put_tensor_part(&view).expect("part");
        let meta = Record::new()
            .with("cam", Value::Int(i64::from(i % 3)))
            .expect("meta");
        let r = Record::new()
            .with("probs", Value::Ref(h))
            .and_then(|r| r.with("label", Value::Int(i64::from(i))))
            .and_then(|r| r.with("id", Value::Str(format!("img-{i}"))))
            .and_then(|r| r.with("meta", Value::Record(meta)))
            .expect("record");
        let split = if i % 2 == 0 { "even" } else { "odd" };
        w.put_record(&r, &[("split", split)]).expect("put");
        rows.push((probs, i64::from(i), format!("img-{i}")));
        if i % 37 == 0 {
            w.commit().expect("commit");
        }
    }
    w.commit().expect("commit");
    rows
}

#[test]
fn a_table_holds_every_field_and_tag_of_each_match_oldest_first() {
    let t = TempStore::new();
    let a = t.create();
    let rows = fill(&a, 300);
    let q = a.parse_query("split = \"odd\"").expect("query");
    let table = a.table(&q, None, &|_, _| {}).expect("table");
    let names = column_names(&table);
    assert_eq!(
        names,
        ["time", "hash", "probs", "label", "id", "meta.cam", "split"]
    );
    assert_eq!(table.num_rows(), 150);
    let b = arrow_concat(&table);
    let probs = b[2]
        .as_any()
        .downcast_ref::<FixedSizeListArray>()
        .expect("probs");
    let labels = b[3].as_primitive::<Int64Type>();
    let ids = b[4].as_string::<i32>();
    let cams = b[5].as_primitive::<Int64Type>();
    let odd: Vec<_> = rows.iter().filter(|r| r.1 % 2 == 1).collect();
    for (i, (p, label, id)) in odd.iter().enumerate() {
        let got = probs.value(i);
        assert_eq!(got.as_primitive::<Float32Type>().values().to_vec(), *p);
        assert_eq!(labels.value(i), *label);
        assert_eq!(ids.value(i), id);
        assert_eq!(cams.value(i), label % 3);
    }
    // Hashes and times are the entries' own, in logging order.
    let mut entries: Vec<_> = a.query(&q).collect::<Result<_, _>>().expect("query");
    entries.reverse();
    let hashes = b[1].as_string::<i32>();
    let times = b[0].as_primitive::<TimestampNanosecondType>();
    for (i, e) in entries.iter().enumerate() {
        assert_eq!(hashes.value(i), e.hash.to_string());
        assert_eq!(times.value(i), e.time_ns);
    }
    // Chosen columns, in order; the stack of a column is the table's.
    let cols = ["id".to_string(), "probs".to_string()];
    let two = a.table(&q, Some(&cols), &|_, _| {}).expect("table");
    assert_eq!(two.schema.fields().len(), 2);
    let s = a.stack(&q, Some("probs"), &|_, _| {}).expect("stack");
    let flat: Vec<f32> = odd.iter().flat_map(|r| r.0.clone()).collect();
    assert_eq!(
        s.data,
        flat.iter()
            .flat_map(|v| v.to_le_bytes())
            .collect::<Vec<_>>()
    );
}

/// Chosen columns that are all top-level names are read from each record alone: each equals
/// the whole table's column of that name, lists (as JSON text) and references included, and
/// a nested record's name takes no value.
#[test]
fn chosen_top_level_columns_equal_the_whole_tables() {
    let t = TempStore::new();
    let a = t.create();
    fill(&a, 90);
    let mut w = a.writer();
    for i in 0..30i64 {
        let r = Record::new()
            .with("label", Value::Int(i))
            .and_then(|r| r.with("spans", Value::List(vec![Value::Int(i), Value::Null])))
            .and_then(|r| r.with("id", Value::Str(format!("list-{i}"))))
            .expect("record");
        w.put_record(&r, &[("split", "odd")]).expect("put");
    }
    w.commit().expect("commit");
    let q = a.parse_query("split = \"odd\"").expect("query");
    let whole = a.table(&q, None, &|_, _| {}).expect("table");
    let by_name = |t: &model_archive::table::Table, name: &str| {
        let i = column_names(t).iter().position(|n| *n == name).expect(name);
        arrow_concat(t)[i].to_data()
    };
    let cols: Vec<String> = ["spans", "probs", "split", "label", "hash", "id", "time"]
        .map(String::from)
        .to_vec();
    let chosen = a.table(&q, Some(&cols), &|_, _| {}).expect("chosen");
    assert_eq!(column_names(&chosen), cols);
    for c in &cols {
        assert_eq!(by_name(&chosen, c), by_name(&whole, c), "column {c}");
    }
    let spans = by_name(&chosen, "spans");
    assert_eq!(spans.len(), 45 + 30);
    assert_eq!(
        spans.null_count(),
        45,
        "only the 30 list records have spans"
    );
    // A nested record's own name is no column of the whole table, and chosen, it takes no
    // value, as when a nested path beside it makes every field of each record be read.
    let meta = ["meta".to_string(), "label".to_string()];
    let t = a.table(&q, Some(&meta), &|_, _| {}).expect("meta");
    let all = ["meta".to_string(), "meta.cam".to_string()];
    let nested = a.table(&q, Some(&all), &|_, _| {}).expect("nested");
    assert_eq!(by_name(&t, "meta"), by_name(&nested, "meta"));
    assert_eq!(
        by_name(&t, "meta").data_type(),
        &arrow_schema::DataType::Null
    );
    assert_eq!(by_name(&nested, "meta.cam").null_count(), 30);
}

#[test]
fn entries_of_tensors_and_text_are_in_value() {
    let t = TempStore::new();
    let a = t.create();
    let shape = Shape::new(vec![2]);
    let v: Vec<u8> = [1i64, 2].iter().flat_map(|x| x.to_le_bytes()).collect();
    a.put_tensor(
        &TensorView::new(Dtype::I64, &shape, &v).expect("view"),
        &[("run", "a")],
    )
    .expect("put");
    a.put_text("hello", &[("run", "b")]).expect("put");
    let q = a.parse_query("").expect("query");
    // A tensor and a text cannot share the `value` column: the error names both.
    let e = a
        .table(&q, None, &|_, _| {})
        .expect_err("mixed")
        .to_string();
    assert!(
        e.contains("column `value`") && e.contains("a string"),
        "{e}"
    );
    let q = a.parse_query("run = \"a\"").expect("query");
    let table = a.table(&q, None, &|_, _| {}).expect("table");
    let b = arrow_concat(&table);
    let names = column_names(&table);
    assert_eq!(names, ["time", "hash", "value", "run"]);
    let value = b[2]
        .as_any()
        .downcast_ref::<FixedSizeListArray>()
        .expect("list");
    assert_eq!(
        value.value(0).as_primitive::<Int64Type>().values().to_vec(),
        vec![1, 2]
    );
}

#[test]
fn lists_are_json_text_and_nested_records_flatten() {
    let t = TempStore::new();
    let a = t.create();
    let topk = Value::List(vec![Value::Str("cat".into()), Value::Int(2)]);
    let inner = Record::new().with("x", Value::Float(0.5)).expect("inner");
    let meta = Record::new()
        .with("deep", Value::Record(inner))
        .and_then(|r| r.with("tags", Value::List(vec![])))
        .and_then(|r| r.with("empty", Value::Record(Record::new())))
        .expect("meta");
    let r = Record::new()
        .with("topk", topk)
        .and_then(|r| r.with("meta", Value::Record(meta)))
        .and_then(|r| r.with("metadata", Value::Int(7)))
        .expect("record");
    a.put_record(&r, &[]).expect("put");
    let q = a.parse_query("").expect("query");
    let table = a.table(&q, None, &|_, _| {}).expect("table");
    let names = column_names(&table);
    assert_eq!(
        names,
        [
            "time",
            "hash",
            "meta.deep.x",
            "metadata",
            "topk",
            "meta.tags"
        ]
    );
    let b = arrow_concat(&table);
    assert_eq!(b[4].as_string::<i32>().value(0), r#"["cat",2]"#);
    assert_eq!(b[5].as_string::<i32>().value(0), "[]");
    assert_eq!(b[3].as_primitive::<Int64Type>().value(0), 7);
}

#[test]
fn removed_entries_are_not_in_tables_or_stacks() {
    let t = TempStore::new();
    let a = t.create();
    fill(&a, 200);
    let gone = "label < 50";
    let q = a.parse_query(gone).expect("query");
    a.rm(&q, gone, false).expect("rm");
    let all = a.parse_query("").expect("query");
    let table = a.table(&all, None, &|_, _| {}).expect("table");
    assert_eq!(table.num_rows(), 150);
    let b = arrow_concat(&table);
    assert_eq!(b[3].as_primitive::<Int64Type>().value(0), 50);
    let s = a.stack(&all, Some("probs"), &|_, _| {}).expect("stack");
    assert_eq!(s.shape.dims(), &[150, 3]);
}

fn column_names(t: &model_archive::table::Table) -> Vec<&str> {
    t.schema
        .fields()
        .iter()
        .map(|f| f.name().as_str())
        .collect()
}

/// Every batch of a table, column by column, as one array each.
fn arrow_concat(t: &model_archive::table::Table) -> Vec<arrow_array::ArrayRef> {
    assert!(!t.batches.is_empty());
    let n = t.schema.fields().len();
    assert_eq!(t.batches.len(), 1, "these tables fit one batch");
    (0..n).map(|i| t.batches[0].column(i).clone()).collect()
}

#[test]
fn exported_tables_are_read_by_pyarrow_pandas_and_polars() {
    let t = TempStore::new();
    let a = t.create();
    let rows = fill(&a, 120);
    drop(a);
    let dir = tempfile::tempdir().expect("tmp");
    for name in ["t.parquet", "t.arrow"] {
        let out = dir.path().join(name);
        t.cmd()
            .args(["export", "split = \"even\"", "-o"])
            .arg(&out)
            .assert()
            .success()
            .stdout(predicates::str::contains(
                "60 rows, 7 columns (time, hash, probs",
            ));
    }
    let cols = dir.path().join("cols.parquet");
    t.cmd()
        .args(["export", "", "--field", "id", "--field", "probs", "-o"])
        .arg(&cols)
        .assert()
        .success();
    let Some(python) = crate::interop::python_with("pyarrow.parquet, pandas, polars") else {
        return;
    };
    let even: Vec<_> = rows.iter().filter(|r| r.1 % 2 == 0).collect();
    let probs: Vec<f32> = even.iter().flat_map(|r| r.0.clone()).collect();
    let labels: Vec<i64> = even.iter().map(|r| r.1).collect();
    let script = format!(
        "import sys, numpy as np, pyarrow as pa, pyarrow.parquet as pq, pyarrow.feather as pf\n\
         import pandas as pd, polars as pl\n\
         d = sys.argv[1]\n\
         want = np.array({probs:?}, dtype=np.float32).reshape(-1, 3)\n\
         labels = {labels:?}\n\
         names = ['time', 'hash', 'probs', 'label', 'id', 'meta.cam', 'split']\n\
         for t in [pq.read_table(d + '/t.parquet'), pf.read_table(d + '/t.arrow')]:\n\
         \x20   assert t.column_names == names, t.column_names\n\
         \x20   assert t.schema.field('probs').type == pa.list_(pa.float32(), 3), t.schema\n\
         \x20   assert str(t.schema.field('time').type) == 'timestamp[ns, tz=UTC]'\n\
         \x20   p = t['probs'].combine_chunks().flatten().to_numpy().reshape(-1, 3)\n\
         \x20   assert np.array_equal(p, want)\n\
         \x20   assert t['label'].to_pylist() == labels\n\
         \x20   assert t['id'].to_pylist() == ['img-%d' % i for i in labels]\n\
         \x20   assert set(t['split'].to_pylist()) == {{'even'}}\n\
         df = pd.read_parquet(d + '/t.parquet')\n\
         assert list(df.columns) == names and len(df) == len(labels)\n\
         assert df['label'].tolist() == labels\n\
         assert np.array_equal(np.stack(df['probs'].to_numpy()), want)\n\
         assert str(df['time'].dtype) == 'datetime64[ns, UTC]', df['time'].dtype\n\
         for f in [pl.read_parquet(d + '/t.parquet'), pl.read_ipc(d + '/t.arrow')]:\n\
         \x20   assert f.columns == names and f.height == len(labels)\n\
         \x20   assert f['probs'].dtype == pl.Array(pl.Float32, 3), f['probs'].dtype\n\
         \x20   assert np.array_equal(f['probs'].to_numpy(), want)\n\
         \x20   assert f['label'].to_list() == labels\n\
         c = pq.read_table(d + '/cols.parquet')\n\
         assert c.column_names == ['id', 'probs'] and c.num_rows == {n}\n\
         print('ok')\n",
        n = rows.len()
    );
    let out = Command::new(python)
        .args(["-c", &script])
        .arg(dir.path())
        .output()
        .expect("python");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "ok");
}

#[test]
fn bad_table_exports_are_refused_with_no_file() {
    let t = TempStore::new();
    let a = t.create();
    fill(&a, 10);
    // `probs` is an integer in one more record: a tensor column cannot hold it.
    let r = Record::new().with("probs", Value::Int(3)).expect("record");
    a.put_record(&r, &[("split", "even")]).expect("put");
    drop(a);
    let dir = tempfile::tempdir().expect("tmp");
    let out = dir.path().join("x.parquet");
    t.cmd()
        .args(["export", "", "-o"])
        .arg(&out)
        .assert()
        .code(2)
        .stderr(
            predicates::str::contains("entry 10").and(predicates::str::contains("column `probs`")),
        );
    assert!(!out.exists());
    let npy = dir.path().join("x.npy");
    t.cmd()
        .args(["export", "", "--field", "a", "--field", "b", "-o"])
        .arg(&npy)
        .assert()
        .code(2)
        .stderr(predicates::str::contains("--field was given 2 times"));
    assert!(!npy.exists());
}

/// Every batch of a Parquet file, and its row group count.
fn parquet_batches(path: &std::path::Path) -> (Vec<arrow_array::RecordBatch>, usize) {
    let file = std::fs::File::open(path).expect("open");
    let reader =
        parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file).expect("read");
    let groups = reader.metadata().num_row_groups();
    let batches = reader
        .build()
        .expect("reader")
        .map(|b| b.expect("batch"))
        .collect();
    (batches, groups)
}

#[test]
fn a_table_is_written_a_row_group_at_a_time_and_whole_when_a_later_row_widens_a_column() {
    let t = TempStore::new();
    let a = t.create();
    let rows = fill(&a, 120);
    drop(a);
    let dir = tempfile::tempdir().expect("tmp");
    let out = dir.path().join("t.parquet");
    let export = |out: &std::path::Path| {
        t.cmd()
            .args(["export", "", "--row-group-rows", "16", "-o"])
            .arg(out)
            .assert()
            .success();
    };
    export(&out);
    // Written as read: several row groups (the packs come 37 records at a time).
    let (batches, groups) = parquet_batches(&out);
    assert!(groups >= 3, "{groups} row groups");
    let a = t.open();
    let whole = a
        .table(&model_archive::query::Query::All, None, &|_, _| {})
        .expect("table");
    let hashes = |batches: &[arrow_array::RecordBatch], col: usize| -> Vec<String> {
        batches
            .iter()
            .flat_map(|b| {
                let s = b.column(col).as_string::<i32>();
                (0..s.len())
                    .map(|i| s.value(i).to_owned())
                    .collect::<Vec<_>>()
            })
            .collect()
    };
    assert_eq!(hashes(&batches, 1), hashes(&whole.batches, 1));
    let labels: Vec<i64> = batches
        .iter()
        .flat_map(|b| b.column(3).as_primitive::<Int64Type>().values().to_vec())
        .collect();
    let want: Vec<i64> = rows.iter().map(|r| r.1).collect();
    assert_eq!(&labels[..120], &want[..]);
    // A later record whose label is a float: the column turns float after groups were
    // written, so the file is written again from the whole table.
    let r = Record::new()
        .with("label", Value::Float(1.5))
        .expect("record");
    a.put_record(&r, &[("split", "odd")]).expect("put");
    drop(a);
    export(&out);
    let (batches, _) = parquet_batches(&out);
    let labels: Vec<f64> = batches
        .iter()
        .flat_map(|b| {
            b.column(3)
                .as_primitive::<arrow_array::types::Float64Type>()
                .values()
                .to_vec()
        })
        .collect();
    let mut want: Vec<f64> = rows.iter().map(|r| r.1 as f64).collect();
    want.push(1.5);
    assert_eq!(labels, want);
    // Nothing else is left beside the file.
    let names: Vec<_> = std::fs::read_dir(dir.path())
        .expect("dir")
        .map(|e| e.expect("entry").file_name())
        .collect();
    assert_eq!(names, vec![std::ffi::OsString::from("t.parquet")]);
}
