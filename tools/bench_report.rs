//! scratch
use model_archive::{Archive, Record, Value};
fn main() {
    let dir = std::path::PathBuf::from("target/tmp/markbug");
    let _ = std::fs::remove_dir_all(&dir);
    {
        let a = Archive::create(&dir).expect("create");
        let mut w = a.writer();
        for i in 0..3 {
            let r = Record::new().with("i", Value::Int(i)).expect("rec");
            w.put_record(&r, &[]).expect("put");
        }
        w.commit().expect("commit");
        println!("entries after write: {}", a.stats().expect("stats").entries);
    }
    {
        let db = sled::open(dir.join("index")).expect("sled");
        for kv in db.iter() { let (k, v) = kv.expect("kv"); println!("{:?} => {} bytes {:?}", &k[..k.len().min(10)], v.len(), &v[..v.len().min(40)]); }
    }
    for k in 0..3 {
        let a = Archive::open(&dir).expect("open");
        println!("entries after open {k}: {}", a.stats().expect("stats").entries);
        for e in a.entries() { let e = e.expect("e"); println!("  seq {} time {}", e.seq, e.time_ns); }
    }
}
#[allow(dead_code)]
fn dump() {}
