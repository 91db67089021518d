//! Output for people and scripts: sizes, times, tables, JSON lines.

use anyhow::Result;
use comfy_table::{Table, presets};

/// `println!` that hands back the write error instead of panicking on it: into a closed pipe
/// (`archive ls | head`) the error reaches `main`, which ends with exit 0. Evaluates to
/// `std::io::Result<()>`.
macro_rules! outln {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        writeln!(std::io::stdout().lock(), $($arg)*)
    }};
}
pub(crate) use outln;

/// `1536` -> `1.5 KiB`.
pub fn size(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["KiB", "MiB", "GiB", "TiB", "PiB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    let mut v = bytes as f64 / 1024.0;
    let mut unit = UNITS[0];
    for u in UNITS.iter().skip(1) {
        if v < 1024.0 {
            break;
        }
        v /= 1024.0;
        unit = u;
    }
    format!("{v:.1} {unit}")
}

/// RFC 3339 in UTC, for JSON.
pub fn time_rfc3339(ns: i64) -> String {
    jiff::Timestamp::from_nanosecond(i128::from(ns))
        .map(|t| t.to_string())
        .unwrap_or_default()
}

/// Local time to the second, for people.
pub fn time_local(ns: i64) -> String {
    jiff::Timestamp::from_nanosecond(i128::from(ns))
        .map(|t| {
            t.to_zoned(jiff::tz::TimeZone::system())
                .strftime("%Y-%m-%d %H:%M:%S")
                .to_string()
        })
        .unwrap_or_default()
}

/// A borderless table with a header, as `ls` and `stats` print.
pub fn table(header: &[&str]) -> Table {
    let mut t = Table::new();
    t.load_preset(presets::NOTHING);
    if !header.is_empty() {
        t.set_header(header.to_vec());
    }
    t
}

/// Print a table, trimming the padding comfy-table leaves at line ends.
pub fn print_table(t: &Table) -> Result<()> {
    for line in t.to_string().lines() {
        outln!("{}", line.trim_end())?;
    }
    Ok(())
}

/// Print one JSON value on its own line.
pub fn json_line(v: &serde_json::Value) -> Result<()> {
    outln!("{v}")?;
    Ok(())
}

/// Tags as `k=v k=v`.
pub fn tags(tags: &[(String, String)]) -> String {
    tags.iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// A progress bar on stderr when it is a terminal; hidden otherwise.
pub fn progress(what: &str) -> indicatif::ProgressBar {
    let template = "{msg} [{bar:30}] {bytes}/{total_bytes} ({bytes_per_sec}, {eta})";
    on_terminal(indicatif::ProgressBar::new(0), template, what)
}

/// A progress bar counting `unit`s (rows, records) on stderr when it is a terminal.
pub fn progress_count(what: &str, unit: &str) -> indicatif::ProgressBar {
    let template = format!("{{msg}} [{{bar:30}}] {{human_pos}}/{{human_len}} {unit} ({{eta}})");
    on_terminal(indicatif::ProgressBar::new(0), &template, what)
}

/// A spinner counting items found so far, for work whose total is not known (a query's
/// matches); ticking on its own so that a long search shows it is alive. Hidden when stderr is
/// not a terminal.
pub fn spinner(what: &str) -> indicatif::ProgressBar {
    let template = "{spinner} {msg} {human_pos} ({elapsed})";
    let bar = on_terminal(indicatif::ProgressBar::new_spinner(), template, what);
    if !bar.is_hidden() {
        bar.enable_steady_tick(std::time::Duration::from_millis(120));
    }
    bar
}

/// `bar` styled by `template` and named `what` when stderr is a terminal; hidden otherwise.
fn on_terminal(bar: indicatif::ProgressBar, template: &str, what: &str) -> indicatif::ProgressBar {
    use std::io::IsTerminal;
    if !std::io::stderr().is_terminal() {
        return indicatif::ProgressBar::hidden();
    }
    if let Ok(style) = indicatif::ProgressStyle::with_template(template) {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.set_message(what.to_owned());
    bar
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_well() {
        assert_eq!(size(10), "10 B");
        assert_eq!(size(1536), "1.5 KiB");
        assert_eq!(size(64 << 20), "64.0 MiB");
    }
}
