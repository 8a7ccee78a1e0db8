//! `--plot FILE.svg`: the measured latency drawn with plotters' SVG backend. Top: p50,
//! p99 and max of each second of the run (log scale). Bottom: the whole run's latency
//! by percentile, the x axis in "nines" (50%, 90%, 99%, 99.9%, ...) as HdrHistogram's
//! plots draw it, so the tail is as wide as the body.
//!
//! Only the SVG backend is built, without plotters' `ttf` and `ab_glyph` features:
//! plotters then sizes text by a rough estimate and the SVG names the font family
//! (`sans-serif`) for the viewer to draw, so no font library or font file is needed.

use super::timeline::Second;
use hdrhistogram::Histogram;
use plotters::prelude::*;
use std::path::Path;

/// A line of the top chart: its name, colour, and value of a second.
type Series = (&'static str, RGBColor, fn(&Second) -> u64);

/// Width and height of the picture.
const SIZE: (u32, u32) = (1000, 760);
/// The most nines the percentile curve goes to (99.999%).
const NINES_MAX: f64 = 5.0;

/// Draws the plot of a run to `path`; `title` names the run.
pub fn draw(
    path: &Path,
    title: &str,
    what: &str,
    seconds: &[Second],
    overall: &Histogram<u64>,
) -> Result<(), String> {
    draw_inner(path, title, what, seconds, overall)
        .map_err(|e| format!("drawing {}: {e}", path.display()))
}

/// Milliseconds from microseconds, never below the log axis' floor.
fn ms(us: u64) -> f64 {
    (us as f64 / 1000.0).max(0.001)
}

/// A y range (ms, log scale) covering `values`.
fn y_range(values: impl Iterator<Item = u64>) -> std::ops::Range<f64> {
    let (lo, hi) = values.fold((u64::MAX, 0), |(lo, hi), v| (lo.min(v), hi.max(v)));
    if hi == 0 {
        return 0.01..10.0;
    }
    // Room above the highest line for the legend.
    let lo = (ms(lo) / 2.0).max(0.001);
    let hi = (ms(hi) * 4.0).max(lo * 10.0);
    lo..hi
}

/// A percentile for people: 0.9 -> "90%", 0.999 -> "99.9%".
fn percent_label(nines: f64) -> String {
    let p = 100.0 * (1.0 - 10f64.powf(-nines));
    let digits = (nines - 2.0).ceil().clamp(0.0, 6.0) as usize;
    format!("{p:.digits$}%")
}

fn draw_inner(
    path: &Path,
    title: &str,
    what: &str,
    seconds: &[Second],
    overall: &Histogram<u64>,
) -> Result<(), Box<dyn std::error::Error>> {
    let root = SVGBackend::new(path, SIZE).into_drawing_area();
    root.fill(&WHITE)?;
    let root = root.titled(title, ("sans-serif", 22))?;
    let (top, bottom) = root.split_vertically(SIZE.1 / 2 - 20);

    // Latency over time.
    let busy: Vec<&Second> = seconds.iter().filter(|s| s.count > 0).collect();
    let x_max = (seconds.len() as f64).max(1.0);
    let mut chart = ChartBuilder::on(&top)
        .caption(format!("{what} latency per second"), ("sans-serif", 17))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(70)
        .build_cartesian_2d(
            0f64..x_max,
            y_range(busy.iter().flat_map(|s| [s.p50, s.max])).log_scale(),
        )?;
    chart
        .configure_mesh()
        .x_desc("seconds since the start")
        .y_desc("latency (ms)")
        .y_labels(8)
        .y_label_formatter(&|v| format!("{v}"))
        .draw()?;
    let series: [Series; 3] = [
        ("p50", BLUE, |s| s.p50),
        ("p99", RED, |s| s.p99),
        ("max", RGBColor(120, 120, 120), |s| s.max),
    ];
    for (name, color, value) in series {
        // Each second is drawn at its middle.
        let points = busy.iter().map(|s| (s.second as f64 + 0.5, ms(value(s))));
        chart
            .draw_series(LineSeries::new(points, color.stroke_width(2)))?
            .label(name)
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2))
            });
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()?;

    // The distribution, by percentile.
    let count = overall.len();
    // Past 1 - 1/count the curve only repeats the max: stop there (at least 90%).
    let nines_max = if count > 1 {
        (count as f64).log10().clamp(1.0, NINES_MAX)
    } else {
        1.0
    };
    const STEPS: u32 = 400;
    let curve: Vec<(f64, u64)> = (0..=STEPS)
        .map(|i| {
            let nines = nines_max * f64::from(i) / f64::from(STEPS);
            let q = 1.0 - 10f64.powf(-nines);
            (nines, overall.value_at_quantile(q))
        })
        .collect();
    let mut chart = ChartBuilder::on(&bottom)
        .caption(
            format!("{what} latency by percentile ({count} samples)"),
            ("sans-serif", 17),
        )
        .margin(12)
        // Room for the last percentile's label, centred on the right edge.
        .margin_right(40)
        .x_label_area_size(40)
        .y_label_area_size(70)
        .build_cartesian_2d(
            0f64..nines_max,
            y_range(curve.iter().map(|(_, v)| *v).filter(|v| *v > 0)).log_scale(),
        )?;
    chart
        .configure_mesh()
        .x_labels(nines_max as usize + 1)
        .x_label_formatter(&|n| percent_label(*n))
        .x_desc("percentile")
        .y_desc("latency (ms)")
        .y_labels(8)
        .y_label_formatter(&|v| format!("{v}"))
        .draw()?;
    chart
        .draw_series(LineSeries::new(
            curve.iter().map(|(n, v)| (*n, ms(*v))),
            BLUE.stroke_width(2),
        ))?
        .label("latency")
        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], BLUE.stroke_width(2)));
    root.present()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_read_as_people_write_them() {
        assert_eq!(percent_label(0.0), "0%");
        assert_eq!(percent_label(1.0), "90%");
        assert_eq!(percent_label(2.0), "99%");
        assert_eq!(percent_label(3.0), "99.9%");
        assert_eq!(percent_label(4.0), "99.99%");
    }
}
