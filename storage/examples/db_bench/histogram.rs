//! `--histogram`: per-operation latencies printed as RocksDB's `HistogramStat::ToString`
//! prints them, so the two tools' outputs read the same way side by side.
//!
//! The buckets are RocksDB's `HistogramBucketMapper`: limits 1 and 2, then each next
//! limit is the previous unrounded one times 1.5, cut to two significant digits
//! (1, 2, 3, 4, 6, 10, 15, 22, 34, 51, 76, 110, 170, ...), up to `u64::MAX`.
//! Latencies are whole microseconds. Unlike RocksDB, the percentiles and the median
//! are exact (taken from the sorted samples), not interpolated within a bucket.

/// The upper limits of RocksDB's histogram buckets, in increasing order.
pub fn bucket_limits() -> Vec<u64> {
    let mut limits = vec![1u64, 2];
    let mut value = 2.0f64;
    loop {
        value *= 1.5;
        if value > u64::MAX as f64 {
            break;
        }
        let pow_of_ten = 10f64.powi(value.log10().floor() as i32 - 1);
        let rounded = (value / pow_of_ten).floor() * pow_of_ten;
        // Above 2^53 the f64 is no longer exact; the last limits are approximate,
        // as in RocksDB, and `as` saturates at u64::MAX.
        limits.push(rounded as u64);
    }
    if limits.last() != Some(&u64::MAX) {
        limits.push(u64::MAX);
    }
    limits
}

/// Prints the histogram of `micros` (sorted in place) under "Microseconds per OP:".
pub fn print(op_kind: &str, micros: &mut [u64]) {
    if micros.is_empty() {
        return;
    }
    micros.sort_unstable();
    let n = micros.len();
    let sum: f64 = micros.iter().map(|&x| x as f64).sum();
    let mean = sum / n as f64;
    let var = micros
        .iter()
        .map(|&x| (x as f64 - mean).powi(2))
        .sum::<f64>()
        / n as f64;
    let pct = |p: f64| {
        let idx = ((p / 100.0) * n as f64).ceil() as usize;
        micros[idx.clamp(1, n) - 1] as f64
    };
    println!("Microseconds per {op_kind}:");
    println!("Count: {n} Average: {mean:.4}  StdDev: {:.2}", var.sqrt());
    println!(
        "Min: {}  Median: {:.4}  Max: {}",
        micros[0],
        pct(50.0),
        micros[n - 1]
    );
    println!(
        "Percentiles: P50: {:.2} P75: {:.2} P99: {:.2} P99.9: {:.2} P99.99: {:.2}",
        pct(50.0),
        pct(75.0),
        pct(99.0),
        pct(99.9),
        pct(99.99)
    );
    println!("------------------------------------------------------");
    for line in bucket_lines(micros) {
        println!("{line}");
    }
}

/// RocksDB's bucket lines for sorted `micros`: only non-empty buckets, each
/// `[ left, right ] count percent cumulative-percent` and one `#` per 5%.
pub fn bucket_lines(micros: &[u64]) -> Vec<String> {
    let limits = bucket_limits();
    let mult = 100.0 / micros.len().max(1) as f64;
    let mut lines = Vec::new();
    let mut cumulative = 0u64;
    let mut rest = micros;
    for (b, &limit) in limits.iter().enumerate() {
        // Bucket b holds values v with limits[b-1] < v <= limits[b] (bucket 0: v <= 1,
        // RocksDB puts 0 and 1 both in it).
        let count = rest.partition_point(|&v| v <= limit);
        rest = &rest[count..];
        if count == 0 {
            continue;
        }
        cumulative += count as u64;
        let left = if b == 0 { 0 } else { limits[b - 1] };
        let marks = (mult * count as f64 / 5.0 + 0.5) as usize;
        lines.push(format!(
            "{} {:>7}, {:>7} ] {:>8} {:>7.3}% {:>7.3}% {}",
            if b == 0 { '[' } else { '(' },
            left,
            limit,
            count,
            mult * count as f64,
            mult * cumulative as f64,
            "#".repeat(marks)
        ));
        if rest.is_empty() {
            break;
        }
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_are_rocksdbs() {
        let limits = bucket_limits();
        assert_eq!(
            &limits[..22],
            &[
                1, 2, 3, 4, 6, 10, 15, 22, 34, 51, 76, 110, 170, 250, 380, 580, 870, 1300, 1900,
                2900, 4400, 6600
            ]
        );
        assert!(limits.windows(2).all(|w| w[0] < w[1]));
        assert_eq!(limits.last(), Some(&u64::MAX));
    }

    #[test]
    fn each_sample_lands_in_one_bucket_and_cumulative_reaches_100() {
        let mut micros = vec![0, 1, 2, 5, 6, 7, 1000, 1301, 1301];
        micros.sort_unstable();
        let lines = bucket_lines(&micros);
        assert_eq!(lines.len(), 6, "{lines:#?}");
        assert!(
            lines[0].starts_with("[       0,       1 ]        2"),
            "{}",
            lines[0]
        );
        assert!(
            lines[2].starts_with("(       4,       6 ]        2"),
            "{}",
            lines[2]
        );
        assert!(
            lines[5].starts_with("(    1300,    1900 ]        2"),
            "{}",
            lines[5]
        );
        assert!(lines[5].contains("100.000%"), "{}", lines[5]);
    }
}
