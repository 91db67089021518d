//! `.npy` against the real numpy: numpy writes (every numeric dtype, Fortran order, big-endian,
//! 0-d, empty, format 2.0), `archive put`, `archive get -o`, numpy reads back bit for bit; and
//! the content hash is the same whichever layout the same values came in.

use std::process::Command;

use crate::util::TempStore;

fn python() -> Option<&'static str> {
    let ok = Command::new("python3")
        .args(["-c", "import numpy"])
        .output()
        .is_ok_and(|o| o.status.success());
    if ok {
        return Some("python3");
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "CI must install numpy (tools/requirements.txt)"
    );
    eprintln!("skipping numpy interop: python3 with numpy is not installed");
    None
}

#[test]
fn numpy_writes_archive_round_trips_numpy_reads_bit_exact() {
    let Some(py) = python() else { return };
    let t = TempStore::new();
    t.cmd().arg("init").arg(t.path()).assert().success();
    let fixtures = t.dir.path().join("fixtures");
    let out = t.dir.path().join("out");
    std::fs::create_dir_all(&out).expect("mkdir");
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tools/npy_interop.py");
    let status = Command::new(py)
        .arg(script)
        .arg("write")
        .arg(&fixtures)
        .status()
        .expect("python");
    assert!(status.success());
    let mut names: Vec<String> = std::fs::read_dir(&fixtures)
        .expect("fixtures")
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.ends_with(".npy") && !n.ends_with(".c.npy"))
        .collect();
    names.sort();
    assert!(names.len() >= 20, "{names:?}");
    for name in &names {
        let stem = name.trim_end_matches(".npy");
        let put = |file: String| {
            let o = t
                .cmd()
                .arg("put")
                .arg(fixtures.join(file))
                .assert()
                .success();
            String::from_utf8(o.get_output().stdout.clone())
                .expect("utf8")
                .trim()
                .to_owned()
        };
        let h = put(name.clone());
        assert_eq!(
            h,
            put(format!("{stem}.c.npy")),
            "{stem}: same values, same hash"
        );
        t.cmd()
            .args(["get", &h, "-o"])
            .arg(out.join(name))
            .assert()
            .success();
    }
    let check = Command::new(py)
        .arg(script)
        .arg("check")
        .arg(&fixtures)
        .arg(&out)
        .output()
        .expect("python");
    let report = String::from_utf8_lossy(&check.stdout);
    assert!(check.status.success(), "{report}");
    assert!(
        report.contains(&format!("{} passed, 0 failed", names.len())),
        "{report}"
    );
}
