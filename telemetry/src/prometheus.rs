//! The Prometheus text exposition format (version 0.0.4): `# HELP` and `# TYPE` once
//! per metric family, then its samples. Histograms are written cumulative, with
//! `_bucket{le=...}`, `_sum` and `_count`, their values divided into the family's base
//! unit (seconds for latencies recorded in nanoseconds).
//!
//! Invariant: label values are escaped (`\\`, `"` and newline), so no value can break
//! the document; names are the caller's constants.

use crate::HistogramSnapshot;
use std::fmt::Write;

/// Nanoseconds per second: the divisor of every `_seconds` histogram recorded in
/// nanoseconds (dividing, not multiplying by 1e-9, keeps 0.0225 from printing as
/// 0.022500000000000003).
pub const NANOS_PER_SECOND: f64 = 1e9;

/// The divisor of a histogram recorded in its base unit (counts, bytes).
pub const UNSCALED: f64 = 1.0;

/// Writes the `# HELP` and `# TYPE` lines of a family (`kind`: gauge, counter, histogram).
pub fn family(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

/// Writes one sample line: `name{labels} value`.
pub fn sample(
    out: &mut String,
    name: &str,
    labels: &[(&str, &str)],
    value: impl std::fmt::Display,
) {
    out.push_str(name);
    write_labels(out, labels, None);
    let _ = writeln!(out, " {value}");
}

/// A whole gauge family with one unlabelled sample.
pub fn gauge(out: &mut String, name: &str, help: &str, value: u64) {
    family(out, name, "gauge", help);
    sample(out, name, &[], value);
}

/// A whole counter family with one unlabelled sample (`name` ends in `_total`).
pub fn counter(out: &mut String, name: &str, help: &str, value: u64) {
    family(out, name, "counter", help);
    sample(out, name, &[], value);
}

/// The samples of one histogram (its family lines written before, once).
pub fn histogram(
    out: &mut String,
    name: &str,
    labels: &[(&str, &str)],
    snap: &HistogramSnapshot,
    divisor: f64,
) {
    let mut cumulative = 0u64;
    for (i, count) in snap.counts.iter().enumerate() {
        cumulative += count;
        let le = match snap.bounds.get(i) {
            Some(&b) => format_float(b as f64 / divisor),
            None => "+Inf".to_string(),
        };
        let _ = write!(out, "{name}_bucket");
        write_labels(out, labels, Some(&le));
        let _ = writeln!(out, " {cumulative}");
    }
    let _ = write!(out, "{name}_sum");
    write_labels(out, labels, None);
    let _ = writeln!(out, " {}", format_float(snap.sum as f64 / divisor));
    let _ = write!(out, "{name}_count");
    write_labels(out, labels, None);
    let _ = writeln!(out, " {}", snap.count);
}

/// A whole histogram family with one unlabelled histogram.
pub fn histogram_family(
    out: &mut String,
    name: &str,
    help: &str,
    snap: &HistogramSnapshot,
    divisor: f64,
) {
    family(out, name, "histogram", help);
    histogram(out, name, &[], snap, divisor);
}

fn format_float(v: f64) -> String {
    // Shortest round-trip form; Rust never prints exponents for Display of f64.
    let s = format!("{v}");
    if s.contains('.') || s.contains("inf") || s.contains("NaN") {
        s
    } else {
        format!("{s}.0")
    }
}

fn write_labels(out: &mut String, labels: &[(&str, &str)], le: Option<&str>) {
    if labels.is_empty() && le.is_none() {
        return;
    }
    out.push('{');
    let mut first = true;
    let all = labels.iter().copied().chain(le.map(|le| ("le", le)));
    for (k, v) in all {
        if !first {
            out.push(',');
        }
        first = false;
        out.push_str(k);
        out.push_str("=\"");
        for c in v.chars() {
            match c {
                '\\' => out.push_str("\\\\"),
                '"' => out.push_str("\\\""),
                '\n' => out.push_str("\\n"),
                c => out.push(c),
            }
        }
        out.push('"');
    }
    out.push('}');
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Histogram;

    #[test]
    fn histogram_is_cumulative_scaled_and_labelled() {
        let h = Histogram::new(&[1_000_000, 10_000_000]);
        h.observe(500_000);
        h.observe(2_000_000);
        h.observe(20_000_000);
        let mut out = String::new();
        histogram(
            &mut out,
            "x_seconds",
            &[("route", "/v1/keys/{key}"), ("odd", "a\"b\\c\nd")],
            &h.snapshot(),
            NANOS_PER_SECOND,
        );
        let want = "\
x_seconds_bucket{route=\"/v1/keys/{key}\",odd=\"a\\\"b\\\\c\\nd\",le=\"0.001\"} 1
x_seconds_bucket{route=\"/v1/keys/{key}\",odd=\"a\\\"b\\\\c\\nd\",le=\"0.01\"} 2
x_seconds_bucket{route=\"/v1/keys/{key}\",odd=\"a\\\"b\\\\c\\nd\",le=\"+Inf\"} 3
x_seconds_sum{route=\"/v1/keys/{key}\",odd=\"a\\\"b\\\\c\\nd\"} 0.0225
x_seconds_count{route=\"/v1/keys/{key}\",odd=\"a\\\"b\\\\c\\nd\"} 3
";
        assert_eq!(out, want);
    }

    #[test]
    fn gauges_and_counters_have_their_family_lines() {
        let mut out = String::new();
        gauge(&mut out, "g", "A gauge.", 7);
        counter(&mut out, "c_total", "A counter.", 8);
        assert_eq!(
            out,
            "# HELP g A gauge.\n# TYPE g gauge\ng 7\n# HELP c_total A counter.\n# TYPE c_total counter\nc_total 8\n"
        );
    }
}
